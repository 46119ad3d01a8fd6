//! Administration: users and their roles, group → role mappings, revoking anyone's sessions.
//! Every handler takes an `AdminUser`, so only admins reach it; every change is audited.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;

use crate::web::extract::{Form, Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use crate::account::when;
use crate::auth::access::{AdminReason, HeldRole, RoleSource, admin_reason, effective_roles};
use crate::auth::extract::AdminUser;
use crate::state::AppState;
use crate::store::{AdminGrant, AuditEvent, AuditRecord, GroupMapping, Role, User, UserListing};
use crate::web::error::AppError;
use crate::web::pages::Layout;
use crate::web::routes::Route;

const PAGE_SIZE: i64 = 50;

/// How many pages of `PAGE_SIZE` hold `total` rows (at least one, for an empty list).
fn page_count(total: i64) -> i64 {
    ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1)
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::page("/admin/users", &["GET"], get(list_users)).admin(),
        Route::page("/admin/users/{id}", &["GET"], get(show_user)).admin(),
        Route::page(
            "/admin/users/{id}/roles",
            &["POST"],
            post(change_user_roles),
        )
        .admin(),
        Route::page(
            "/admin/users/{id}/sessions/revoke",
            &["POST"],
            post(revoke_user_sessions),
        )
        .admin(),
        Route::page(
            "/admin/groups",
            &["GET", "POST"],
            get(show_groups).post(change_groups),
        )
        .admin(),
        Route::page("/admin/audit", &["GET"], get(show_audit)).admin(),
        Route::page("/admin/sync", &["GET"], get(show_sync)).admin(),
        Route::page("/admin/sync/run", &["POST"], post(run_sync)).admin(),
    ]
}

impl AdminUser {
    async fn audit(&self, state: &AppState, kind: &'static str, details: serde_json::Value) {
        let result = state
            .store
            .record_audit(&AuditEvent {
                kind,
                outcome: "success",
                actor_id: Some(self.current.user.id),
                actor: self.current.user.email.clone(),
                client_ip: self.current.session.client_ip.clone(),
                details,
                ..AuditEvent::default()
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, kind, "audit event not stored");
        }
    }

    fn name(&self) -> String {
        self.current
            .user
            .email
            .clone()
            .unwrap_or_else(|| self.current.user.subject.clone())
    }
}

#[derive(Deserialize)]
struct UsersQuery {
    q: Option<String>,
    page: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_users.html")]
struct UsersPage {
    layout: Layout,
    user: User,
    csrf: String,
    q: String,
    rows: Vec<(UserListing, String)>,
    total: i64,
    page: i64,
    pages: i64,
}

async fn list_users(
    State(state): State<AppState>,
    admin: AdminUser,
    Query(query): Query<UsersQuery>,
) -> Result<UsersPage, AppError> {
    let q = query.q.unwrap_or_default().trim().to_string();
    let page = query.page.unwrap_or(1).max(1);
    let (rows, total) = state
        .store
        .list_users(&q, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        .await?;
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
        layout: Layout::new("Users — Gatehouse"),
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
struct UserPage {
    layout: Layout,
    user: User,
    csrf: String,
    subject: User,
    reason: AdminReason,
    held: Vec<HeldRole>,
    assignable: Vec<Role>,
    sessions: usize,
}

async fn show_user(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<UserPage, AppError> {
    let subject = state
        .store
        .user(id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let reason = admin_reason(state.store.as_ref(), &state.auth.admin_groups, &subject).await?;
    let held = effective_roles(state.store.as_ref(), &subject).await?;
    let assignable = state
        .store
        .roles()
        .await?
        .into_iter()
        .filter(|r| !held.iter().any(|h| h.role.id == r.id && h.is_assigned()))
        .collect();
    let sessions = state
        .auth
        .sessions
        .list(id)
        .await
        .map_err(|e| AppError::Unavailable(e.to_string()))?
        .len();
    Ok(UserPage {
        layout: Layout::new("User — Gatehouse"),
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        subject,
        reason,
        held,
        assignable,
        sessions,
    })
}

#[derive(Deserialize)]
struct RoleChange {
    action: String,
    role_id: i64,
}

async fn change_user_roles(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<i64>,
    Form(form): Form<RoleChange>,
) -> Result<Response, AppError> {
    let subject = state
        .store
        .user(id)
        .await?
        .ok_or_else(AppError::not_found)?;
    let role = state
        .store
        .roles()
        .await?
        .into_iter()
        .find(|r| r.id == form.role_id)
        .ok_or_else(|| AppError::BadRequest("No such role.".into()))?;
    let changed = match form.action.as_str() {
        "add" => state.store.assign_role(id, role.id, &admin.name()).await?,
        "remove" => state.store.remove_role(id, role.id).await?,
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
    Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
}

async fn revoke_user_sessions(
    State(state): State<AppState>,
    admin: AdminUser,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let subject = state
        .store
        .user(id)
        .await?
        .ok_or_else(AppError::not_found)?;
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
    Ok(Redirect::to(&format!("/admin/users/{id}")).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_groups.html")]
struct GroupsPage {
    layout: Layout,
    user: User,
    csrf: String,
    mappings: Vec<GroupMapping>,
    roles: Vec<Role>,
    admin_groups: Vec<String>,
    grants: Vec<(AdminGrant, String)>,
}

async fn show_groups(
    State(state): State<AppState>,
    admin: AdminUser,
) -> Result<GroupsPage, AppError> {
    let grants = state
        .store
        .admin_grants()
        .await?
        .into_iter()
        .map(|g| {
            let at = when(g.granted_at.timestamp());
            (g, at)
        })
        .collect();
    Ok(GroupsPage {
        layout: Layout::new("Groups and roles — Gatehouse"),
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        mappings: state.store.group_mappings().await?,
        roles: state.store.roles().await?,
        admin_groups: state.auth.admin_groups.clone(),
        grants,
    })
}

#[derive(Deserialize)]
struct GroupChange {
    action: String,
    group: Option<String>,
    role_id: Option<i64>,
    name: Option<String>,
    description: Option<String>,
    repos: Option<String>,
}

async fn change_groups(
    State(state): State<AppState>,
    admin: AdminUser,
    Form(form): Form<GroupChange>,
) -> Result<Response, AppError> {
    let text = |v: &Option<String>, what: &str| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= 200)
            .map(str::to_string)
            .ok_or_else(|| {
                AppError::BadRequest(format!("{what} is required (at most 200 characters)."))
            })
    };
    match form.action.as_str() {
        "create_role" => {
            let name = text(&form.name, "A role name")?;
            let repos: Vec<String> = form
                .repos
                .unwrap_or_default()
                .split([',', '\n', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let description = form.description.unwrap_or_default();
            let role = state
                .store
                .create_role(&name, description.trim(), &repos)
                .await?
                .ok_or_else(|| {
                    AppError::BadRequest(format!("A role named {name} exists already."))
                })?;
            admin
                .audit(
                    &state,
                    "role_created",
                    json!({ "role": role.name, "repos": role.repo_patterns }),
                )
                .await;
        }
        action @ ("map" | "unmap") => {
            let group = text(&form.group, "A group name")?;
            let role_id = form
                .role_id
                .ok_or_else(|| AppError::BadRequest("A role is required.".into()))?;
            let role = state
                .store
                .roles()
                .await?
                .into_iter()
                .find(|r| r.id == role_id)
                .ok_or_else(|| AppError::BadRequest("No such role.".into()))?;
            let changed = if action == "map" {
                state
                    .store
                    .map_group(&group, role.id, &admin.name())
                    .await?
            } else {
                state.store.unmap_group(&group, role.id).await?
            };
            if changed {
                admin
                    .audit(
                        &state,
                        "group_mapping",
                        json!({ "action": action, "group": group, "role": role.name }),
                    )
                    .await;
            }
        }
        _ => return Err(AppError::BadRequest("Unknown action.".into())),
    }
    Ok(Redirect::to("/admin/groups").into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    kind: Option<String>,
    actor: Option<String>,
    page: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_audit.html")]
struct AuditPage {
    layout: Layout,
    user: User,
    csrf: String,
    kinds: Vec<String>,
    kind: String,
    actor: String,
    rows: Vec<(AuditRecord, String, String)>,
    total: i64,
    page: i64,
    pages: i64,
}

async fn show_audit(
    State(state): State<AppState>,
    admin: AdminUser,
    Query(query): Query<AuditQuery>,
) -> Result<AuditPage, AppError> {
    let kind = query.kind.unwrap_or_default().trim().to_string();
    let actor = query.actor.unwrap_or_default().trim().to_string();
    let page = query.page.unwrap_or(1).max(1);
    let (rows, total) = state
        .store
        .audit_events(
            Some(kind.as_str()).filter(|k| !k.is_empty()),
            Some(actor.as_str()).filter(|a| !a.is_empty()),
            PAGE_SIZE,
            (page - 1) * PAGE_SIZE,
        )
        .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let at = r.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
            let details = r.details.to_string();
            (r, at, details)
        })
        .collect();
    Ok(AuditPage {
        layout: Layout::new("Audit log — Gatehouse"),
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        kinds: state.store.audit_kinds().await?,
        kind,
        actor,
        rows,
        total,
        page,
        pages: page_count(total),
    })
}

/// One `sync_runs` row, ready to show.
pub struct RunRow {
    pub id: i64,
    pub trigger: String,
    pub started: String,
    pub finished: String,
    pub outcome: String,
    pub summary: String,
    pub error: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_sync.html")]
pub struct SyncPage {
    layout: Layout,
    user: User,
    csrf: String,
    configured: Option<String>,
    runs: Vec<RunRow>,
    started: bool,
}

#[derive(Deserialize)]
struct SyncQuery {
    started: Option<String>,
}

async fn show_sync(
    State(state): State<AppState>,
    admin: AdminUser,
    Query(q): Query<SyncQuery>,
) -> Result<SyncPage, AppError> {
    let runs = state
        .store
        .sync_runs(50)
        .await?
        .into_iter()
        .map(|r| {
            let c = &r.counts.0;
            let summary = if c["identities"].is_object() {
                let i = &c["identities"];
                format!(
                    "{} fetched, {} added, {} changed, {} returned, {} departed; {} repos, {} traffic days",
                    i["fetched"], i["added"], i["changed"], i["returned"], i["departed"],
                    c["repos"], c["traffic_days"]
                )
            } else {
                String::new()
            };
            RunRow {
                id: r.id,
                trigger: r.trigger,
                started: when(r.started_at.timestamp()),
                finished: r.finished_at.map_or_else(|| "—".into(), |t| when(t.timestamp())),
                outcome: r.outcome,
                summary,
                error: r.error.unwrap_or_default(),
            }
        })
        .collect();
    Ok(SyncPage {
        layout: Layout::new("GitHub sync — Gatehouse"),
        csrf: admin.current.session.csrf.clone(),
        configured: state.config.github.as_ref().map(|g| g.org.clone()),
        user: admin.current.user,
        runs,
        started: q.started.is_some(),
    })
}

/// Starts a run in the background (a full sync can take minutes) and returns to the list,
/// where it shows as running; the lease keeps it from overlapping a scheduled one.
async fn run_sync(State(state): State<AppState>, admin: AdminUser) -> Result<Response, AppError> {
    let Some(sync) = state.sync.clone() else {
        return Err(AppError::BadRequest(
            "The GitHub sync is not configured: set GATEHOUSE_GITHUB_ORG and GATEHOUSE_GITHUB_TOKEN."
                .into(),
        ));
    };
    let who = admin
        .current
        .user
        .email
        .clone()
        .unwrap_or_else(|| admin.current.user.subject.clone());
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = sync.run(store, &format!("manual ({who})")).await {
            tracing::warn!(error = %e, "manual GitHub sync could not reach the database");
        }
    });
    Ok(Redirect::to("/admin/sync?started=1").into_response())
}
