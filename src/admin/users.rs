//! Users: the list, one user with their roles and sessions, role changes and revoking
//! their sessions.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::json;

use crate::account::sessions::when;
use crate::auth::access::{AdminReason, HeldRole, RoleSource};
use crate::auth::extract::AdminUser;
use crate::auth::roles::{self, Role};
use crate::auth::users;
use crate::state::AppState;
use crate::store::{User, UserListing};
use crate::web::error::AppError;
use crate::web::extract::{Form, Path, Query};
use crate::web::pages::Layout;

use super::{PAGE_SIZE, page_count};

#[derive(Deserialize)]
pub(super) struct UsersQuery {
    q: Option<String>,
    page: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_users.html")]
pub(super) struct UsersPage {
    layout: Layout,
    user: User,
    csrf: String,
    q: String,
    rows: Vec<(UserListing, String)>,
    total: i64,
    page: i64,
    pages: i64,
}

pub(super) async fn list_users(
    State(state): State<AppState>,
    admin: AdminUser,
    Query(query): Query<UsersQuery>,
) -> Result<UsersPage, AppError> {
    let q = query.q.unwrap_or_default().trim().to_string();
    let page = query.page.unwrap_or(1).max(1);
    let (rows, total) =
        users::list(&state.store.db(), &q, PAGE_SIZE, (page - 1) * PAGE_SIZE).await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let seen = r
                .last_login_at
                .map_or_else(|| "never".into(), |t| when(t.timestamp()));
            (r, seen)
        })
        .collect();
    Ok(UsersPage {
        layout: admin.layout(&state, "Users — Gatehouse").await,
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        q,
        rows,
        total,
        page,
        pages: page_count(total),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_user.html")]
pub(super) struct UserPage {
    layout: Layout,
    user: User,
    csrf: String,
    subject: User,
    reason: AdminReason,
    held: Vec<HeldRole>,
    assignable: Vec<Role>,
    sessions: usize,
    /// The last Okta Users API check, in words; `None` when the API is not configured.
    okta_check: Option<String>,
    /// Why the groups may be incomplete.
    groups_note: Option<String>,
}

pub(super) async fn show_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<UserPage, AppError> {
    let subject = subject(&state, id).await?;
    let rules = state.access_rules(state.versions().await?).await?;
    let reason = rules.admin_reason(&state.auth.admin_groups, &subject);
    let held = rules.effective_roles(&subject);
    let assignable = roles::all(&state.store.db())
        .await?
        .into_iter()
        .filter(|r| !held.iter().any(|h| h.role.id == r.id && h.is_assigned()))
        .collect();
    let sessions = session_count(&state, id).await?;
    let lifecycle = crate::lifecycle::store::get(&state.store.db(), id).await?;
    let now = chrono::Utc::now();
    let okta_check = state.auth.okta.as_ref().map(|_| {
        match (&lifecycle.checked_at, &lifecycle.status, &lifecycle.outcome) {
            (Some(at), Some(status), Some(outcome)) => {
                format!("{status} ({}): {outcome}", crate::web::pages::ago(*at, now))
            }
            _ => "not checked yet (users are checked while they have a session)".to_string(),
        }
    });
    Ok(UserPage {
        layout: admin.layout(&state, "User — Gatehouse").await,
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        subject,
        reason,
        held,
        assignable,
        sessions,
        okta_check,
        groups_note: lifecycle.groups_note,
    })
}

#[derive(Deserialize)]
pub(super) struct RoleChange {
    action: String,
    role_id: i64,
}

pub(super) async fn change_user_roles(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<i64>,
    Form(form): Form<RoleChange>,
) -> Result<Response, AppError> {
    let subject = subject(&state, id).await?;
    let role = roles::all(&state.store.db())
        .await?
        .into_iter()
        .find(|r| r.id == form.role_id)
        .ok_or_else(|| AppError::BadRequest("No such role.".into()))?;
    let changed = match form.action.as_str() {
        "add" => roles::assign(&state.store.db(), id, role.id, &admin.name()).await?,
        "remove" => roles::remove(&state.store.db(), id, role.id).await?,
        _ => return Err(AppError::BadRequest("Unknown action.".into())),
    };
    if changed {
        admin
            .audit(
                &state,
                "role_change",
                json!({ "action": form.action, "role": role.name, "user_id": id, "user": subject.email }),
            )
            .await;
    }
    let who = display_name(&subject);
    let role = &role.name;
    let notice = match (form.action.as_str(), changed) {
        ("add", true) => format!("{who} now holds the role “{role}”."),
        ("add", false) => format!("{who} already held the role “{role}”: nothing changed."),
        (_, true) => format!("{who} no longer holds the role “{role}” by assignment."),
        (_, false) => {
            format!("{who} did not hold the role “{role}” by assignment: nothing changed.")
        }
    };
    admin.current.flash(&state, notice).await;
    Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
}

/// The user an admin page is about; 404 when there is none.
async fn subject(state: &AppState, id: i64) -> Result<User, AppError> {
    users::get(&state.store.db(), id)
        .await?
        .ok_or_else(AppError::not_found)
}

/// How many live sessions a user has.
async fn session_count(state: &AppState, id: i64) -> Result<usize, AppError> {
    Ok(state
        .auth
        .sessions
        .list(id)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
        .len())
}

/// How a person is named in a notice: their name, else their email, else their subject.
fn display_name(user: &User) -> String {
    user.name
        .clone()
        .or_else(|| user.email.clone())
        .unwrap_or_else(|| user.subject.clone())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_user_revoke.html")]
pub(super) struct RevokePage {
    layout: Layout,
    user: User,
    csrf: String,
    subject: User,
    sessions: usize,
}

/// The second step before signing someone out everywhere: what will happen, and a button
/// that does it (a page, not a script's `confirm()`, so it works without JavaScript).
pub(super) async fn confirm_revoke(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<RevokePage, AppError> {
    let subject = subject(&state, id).await?;
    let sessions = session_count(&state, id).await?;
    Ok(RevokePage {
        layout: Layout::new("Sign out everywhere — Gatehouse"),
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        subject,
        sessions,
    })
}

pub(super) async fn revoke_user_sessions(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let subject = subject(&state, id).await?;
    let count = state
        .auth
        .sessions
        .revoke_all(id)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?;
    admin
        .audit(
            &state,
            "session_revoked",
            json!({ "user_id": id, "user": subject.email, "sessions": count, "by": "admin" }),
        )
        .await;
    let who = display_name(&subject);
    let notice = match count {
        0 => format!("{who} had no sessions to end."),
        1 => format!("{who} is signed out of 1 session."),
        n => format!("{who} is signed out of {n} sessions."),
    };
    // Signing oneself out everywhere ends this session too: the notice would have nowhere
    // to go, and the next page is the sign-in.
    if id != admin.current.user.id {
        admin.current.flash(&state, notice).await;
    }
    Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
}
