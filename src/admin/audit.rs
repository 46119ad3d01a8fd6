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
    /// Every event kind on record, with its name in words.
    kinds: Vec<(String, String)>,
    kind: String,
    actor: String,
    rows: Vec<Row>,
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
        .map(|r| Row {
            at: r.occurred_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            event: event_words(&r.kind),
            details: detail_lines(&r.details),
            record: r,
        })
        .collect();
    let kinds = crate::store::audit::kinds(&state.store.db())
        .await?
        .into_iter()
        .map(|k| {
            let words = event_words(&k);
            (k, words)
        })
        .collect();
    Ok(AuditPage {
        layout: Layout::new("Audit log — Gatehouse"),
        csrf: admin.current.session.csrf.clone(),
        user: admin.current.user,
        kinds,
        kind,
        actor,
        rows,
        total,
        page,
        pages: page_count(total),
    })
}

/// One event as the page shows it.
pub(super) struct Row {
    record: AuditRecord,
    at: String,
    event: String,
    details: Vec<(String, String)>,
}

/// An event kind as words: the ones Gatehouse writes by name, anything else (an older or
/// newer kind) with its underscores as spaces.
fn event_words(kind: &str) -> String {
    let known = match kind {
        "login" => "Sign-in",
        "logout" => "Sign-out",
        "rate_limited" => "Rate limit reached",
        "csrf_failure" => "Form refused (CSRF check)",
        "session_revoked" => "Sessions ended",
        "sync_run" => "Sync run",
        "feed_import" => "Feed import",
        "role_created" => "Role created",
        "role_updated" => "Role changed",
        "role_deleted" => "Role deleted",
        "role_change" => "Role assignment",
        "group_mapping" => "Group mapping",
        "admin_grant" => "Break-glass grant",
        "admin_revoke" => "Break-glass grant removed",
        other => return capitalised(&other.replace('_', " ")),
    };
    known.to_string()
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// An event's details as label and value lines: the top level of the object, names in
/// words; lists joined; anything deeper as compact JSON. A detail that is not an object
/// is one line.
fn detail_lines(details: &serde_json::Value) -> Vec<(String, String)> {
    use serde_json::Value;
    let text = |v: &Value| match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    match details {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.replace('_', " "), text(v)))
            .collect(),
        Value::Null => Vec::new(),
        other => vec![(String::new(), text(other))],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn event_kinds_read_as_words() {
        assert_eq!(event_words("login"), "Sign-in");
        assert_eq!(event_words("group_mapping"), "Group mapping");
        assert_eq!(event_words("some_future_kind"), "Some future kind");
        assert_eq!(event_words(""), "");
    }

    #[test]
    fn details_read_as_a_list() {
        let lines = detail_lines(&json!({
            "role": "web",
            "repos": ["web-*", "site"],
            "user_id": 7,
            "reason": null,
            "extra": { "a": 1 },
        }));
        assert_eq!(
            lines,
            vec![
                ("extra".into(), r#"{"a":1}"#.into()),
                ("reason".into(), "—".into()),
                ("repos".into(), "web-*, site".into()),
                ("role".into(), "web".into()),
                ("user id".into(), "7".into()),
            ]
        );
        assert!(detail_lines(&json!(null)).is_empty());
        assert_eq!(
            detail_lines(&json!("text")),
            vec![(String::new(), "text".into())]
        );
    }
}
