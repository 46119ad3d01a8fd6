//! The GitHub sync: its runs, and "Run now".

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::account::sessions::when;
use crate::auth::extract::AdminUser;
use crate::state::AppState;
use crate::store::User;
use crate::web::error::AppError;
use crate::web::extract::Query;
use crate::web::pages::Layout;

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
pub(super) struct SyncQuery {
    started: Option<String>,
}

pub(super) async fn show_sync(
    State(state): State<AppState>,
    admin: AdminUser,
    Query(q): Query<SyncQuery>,
) -> Result<SyncPage, AppError> {
    let runs = crate::sync::store::sync_runs(&state.store.db(), 50)
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
pub(super) async fn run_sync(
    State(state): State<AppState>,
    admin: AdminUser,
) -> Result<Response, AppError> {
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
