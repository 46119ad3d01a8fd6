//! The signed-in user's sessions, each revocable.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::web::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::auth::extract::CurrentUser;
use crate::state::AppState;
use crate::store::{AuditEvent, User};
use crate::web::error::AppError;
use crate::web::pages::Layout;

/// One row of the sessions table, ready to show.
pub struct SessionRow {
    pub handle: String,
    pub created: String,
    pub last_seen: String,
    pub client_ip: String,
    pub browser: String,
    pub current: bool,
}

pub fn when(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0).map_or_else(
        || "—".into(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

#[derive(Template, WebTemplate)]
#[template(path = "account_sessions.html")]
pub struct SessionsPage {
    layout: Layout,
    user: User,
    csrf: String,
    sessions: Vec<SessionRow>,
}

pub async fn list_sessions(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<SessionsPage, AppError> {
    let mine = state.auth.sessions.handles_of(&current.session_id);
    let sessions = state
        .auth
        .sessions
        .list(current.user.id)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
        .into_iter()
        .map(|(handle, d)| SessionRow {
            current: mine.contains(&handle),
            handle,
            created: when(d.created_at),
            last_seen: when(d.last_seen),
            client_ip: d.client_ip.unwrap_or_else(|| "—".into()),
            browser: d.user_agent.unwrap_or_else(|| "—".into()),
        })
        .collect();
    Ok(SessionsPage {
        layout: Layout::new("Your sessions — Gatehouse"),
        csrf: current.session.csrf.clone(),
        user: current.user,
        sessions,
    })
}

pub async fn revoke_session(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(handle): Path<String>,
) -> Result<Response, AppError> {
    let revoked = state
        .auth
        .sessions
        .revoke(current.user.id, &handle)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    if !revoked {
        return Err(AppError::not_found());
    }
    let _ = crate::store::audit::record(
        &state.store.db(),
        &AuditEvent {
            kind: "session_revoked",
            outcome: "success",
            actor_id: Some(current.user.id),
            actor: current.user.email.clone(),
            client_ip: Some(current.client_ip.clone()),
            details: json!({
                "handle": handle, "user_id": current.user.id, "by": "self",
                "session_client_ip": current.session.client_ip,
            }),
            ..AuditEvent::default()
        },
    )
    .await;
    Ok(Redirect::to("/account/sessions").into_response())
}
