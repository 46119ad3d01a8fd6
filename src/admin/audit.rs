//! The audit log, newest first, filterable.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use serde::Deserialize;

use crate::auth::extract::AdminUser;
use crate::state::AppState;
use crate::store::{AuditRecord, User};
use crate::web::error::AppError;
use crate::web::extract::Query;
use crate::web::pages::Layout;

use super::{PAGE_SIZE, page_count};

#[derive(Deserialize)]
pub(super) struct AuditQuery {
    kind: Option<String>,
    actor: Option<String>,
    page: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "admin_audit.html")]
pub(super) struct AuditPage {
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

pub(super) async fn show_audit(
    State(state): State<AppState>,
    admin: AdminUser,
    Query(query): Query<AuditQuery>,
) -> Result<AuditPage, AppError> {
    let kind = query.kind.unwrap_or_default().trim().to_string();
    let actor = query.actor.unwrap_or_default().trim().to_string();
    let page = query.page.unwrap_or(1).max(1);
    let (rows, total) = crate::store::audit::list(
        &state.store.db(),
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
        kinds: crate::store::audit::kinds(&state.store.db()).await?,
        kind,
        actor,
        rows,
        total,
        page,
        pages: page_count(total),
    })
}
