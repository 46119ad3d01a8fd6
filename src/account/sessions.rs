//! The signed-in user's sessions, each revocable.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::web::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

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
    /// Short: "Chrome on macOS".
    pub browser: String,
    /// The whole `User-Agent`, for whoever wants the detail.
    pub user_agent: String,
    pub current: bool,
    last_seen_at: i64,
}

/// A browser and its system in a few words ("Firefox on Windows"), from a `User-Agent`.
/// Parsed by `woothee` (its data is compiled in: no rules file to ship or load at start);
/// its names are kept but for the systems, which it names by version ("Windows 10" for
/// Windows 11 too, "Mac OSX").
pub fn describe_browser(user_agent: &str) -> String {
    const UNKNOWN: &str = "UNKNOWN";
    let Some(found) = woothee::parser::Parser::new().parse(user_agent) else {
        return "Unknown browser".into();
    };
    let browser = match found.name {
        UNKNOWN | "" => "Unknown browser",
        "HTTP Library" => "A program",
        name => name,
    };
    let system = match found.os {
        UNKNOWN | "" => None,
        os if os.starts_with("Windows") && !os.starts_with("Windows Phone") => Some("Windows"),
        "Mac OSX" => Some("macOS"),
        "iPhone" | "iPod" | "iOS" => Some("iOS"),
        "iPad" => Some("iPadOS"),
        os => Some(os),
    };
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_string(),
    }
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
    let mut sessions: Vec<SessionRow> = state
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
            browser: d
                .user_agent
                .as_deref()
                .map_or_else(|| "Unknown browser".into(), describe_browser),
            user_agent: d.user_agent.unwrap_or_default(),
            last_seen_at: d.last_seen,
        })
        .collect();
    // This browser first, then the most recently used.
    sessions.sort_by_key(|s| (!s.current, std::cmp::Reverse(s.last_seen_at)));
    let mut layout = Layout::new("Your sessions — Gatehouse");
    layout.flash = current.take_flash(&state).await;
    Ok(SessionsPage {
        layout,
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
    audit_own_revocation(&state, &current, json!({ "handle": handle })).await;
    Ok(Redirect::to("/account/sessions").into_response())
}

/// An audit row for sessions a user ended themselves: `details` and who, from where.
async fn audit_own_revocation(state: &AppState, current: &CurrentUser, mut details: Value) {
    if let Some(map) = details.as_object_mut() {
        map.insert("user_id".into(), current.user.id.into());
        map.insert("by".into(), "self".into());
        map.insert(
            "session_client_ip".into(),
            current.session.client_ip.clone().into(),
        );
    }
    let _ = crate::store::audit::record(
        &state.store.db(),
        &AuditEvent {
            kind: "session_revoked",
            outcome: "success",
            actor_id: Some(current.user.id),
            actor: current.user.email.clone(),
            client_ip: Some(current.client_ip.clone()),
            details,
            ..AuditEvent::default()
        },
    )
    .await;
}

/// Signs the user out everywhere but here: every other session ends at once.
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    current: CurrentUser,
) -> Result<Response, AppError> {
    let unavailable = |e: crate::auth::session::SessionError| AppError::Unavailable(e.to_string());
    let mine = state.auth.sessions.handles_of(&current.session_id);
    let mut ended = 0;
    for (handle, _) in state
        .auth
        .sessions
        .list(current.user.id)
        .await
        .map_err(unavailable)?
    {
        if !mine.contains(&handle)
            && state
                .auth
                .sessions
                .revoke(current.user.id, &handle)
                .await
                .map_err(unavailable)?
        {
            ended += 1;
        }
    }
    if ended > 0 {
        audit_own_revocation(
            &state,
            &current,
            json!({ "sessions": ended, "kept": "this session" }),
        )
        .await;
    }
    let notice = match ended {
        0 => "You were signed in nowhere else: nothing to end.".to_string(),
        1 => "Signed out of 1 other session. This one stays signed in.".to_string(),
        n => format!("Signed out of {n} other sessions. This one stays signed in."),
    };
    current.flash(&state, notice).await;
    Ok(Redirect::to("/account/sessions").into_response())
}

#[cfg(test)]
mod tests {
    use super::describe_browser;

    #[test]
    fn browsers_in_a_few_words() {
        for (agent, words) in [
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                "Chrome on macOS",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox on Windows",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari on iOS",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Chrome on Linux",
            ),
            ("", "Unknown browser"),
            ("something else entirely", "Unknown browser"),
        ] {
            assert_eq!(describe_browser(agent), words, "{agent}");
        }
    }
}
