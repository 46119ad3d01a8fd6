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
            let summary = run_summary(&r.counts.0);
            RunRow {
                id: r.id,
                trigger: r.trigger,
                started: when(r.started_at.timestamp()),
                finished: r
                    .finished_at
                    .map_or_else(|| "—".into(), |t| when(t.timestamp())),
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

/// A run's counts in a line: people, then repositories (with what changed among them) and
/// the traffic written. Empty for a run that did not get that far.
fn run_summary(c: &serde_json::Value) -> String {
    let Some(i) = c.get("identities").filter(|i| i.is_object()) else {
        return String::new();
    };
    let mut line = format!(
        "{} fetched, {} added, {} changed, {} returned, {} departed; {} repos",
        i["fetched"], i["added"], i["changed"], i["returned"], i["departed"], c["repos"]
    );
    let changes: Vec<String> = ["added", "renamed", "returned", "removed"]
        .iter()
        .filter_map(|k| {
            let n = c["repo_changes"][*k].as_u64().filter(|n| *n > 0)?;
            Some(format!("{n} {k}"))
        })
        .collect();
    if !changes.is_empty() {
        line.push_str(&format!(" ({})", changes.join(", ")));
    }
    line.push_str(&format!(", {} traffic days", c["traffic_days"]));
    line
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_says_what_changed_among_repositories() {
        let mut counts = json!({
            "identities": {"fetched": 3, "added": 1, "changed": 0, "returned": 0, "departed": 0},
            "repos": 8,
            "repo_changes": {"fetched": 8, "active_before": 8, "added": 0, "renamed": 1,
                             "returned": 0, "removed": 2},
            "traffic_days": 112,
        });
        assert_eq!(
            run_summary(&counts),
            "3 fetched, 1 added, 0 changed, 0 returned, 0 departed; 8 repos \
             (1 renamed, 2 removed), 112 traffic days"
        );
        counts["repo_changes"] = json!({"renamed": 0, "removed": 0});
        assert!(run_summary(&counts).ends_with("8 repos, 112 traffic days"));
        assert_eq!(run_summary(&json!({})), "");
    }
}
