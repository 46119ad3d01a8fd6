//! The audit trail: security events (sign-ins, refusals, admin changes, feed imports, sync
//! runs) in `audit_events`. Every feature records them, so the queries live here beside the
//! pool, each written once for both databases.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;

use super::{Db, StoreError, like_pattern};
use crate::{execute, on_db};

/// A security event to record.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub kind: &'static str,
    pub outcome: &'static str,
    pub actor_id: Option<i64>,
    pub actor: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Value,
}

/// A recorded event, as the admin page lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub kind: String,
    pub outcome: String,
    pub actor: Option<String>,
    pub client_ip: Option<String>,
    #[sqlx(json)]
    pub details: Value,
}

pub async fn record(db: &Db, e: &AuditEvent) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO audit_events \
          (occurred_at, kind, outcome, actor_id, actor, client_ip, request_id, details) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
    let now = Utc::now();
    execute!(
        db,
        SQL,
        now,
        e.kind,
        e.outcome,
        e.actor_id,
        &e.actor,
        &e.client_ip,
        &e.request_id,
        Json(&e.details)
    )?;
    Ok(())
}

/// One page of events, newest first, filtered by kind and by who (a case-insensitive
/// substring of the actor); with the total that matches.
pub async fn list(
    db: &Db,
    kind: Option<&str>,
    actor: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<AuditRecord>, i64), StoreError> {
    // Unset filters match everything: ($1 IS NULL OR …) keeps one statement.
    const FILTER: &str = "($1 IS NULL OR kind = $1) \
        AND ($2 IS NULL OR lower(coalesce(actor, '')) LIKE $2 ESCAPE '\\')";
    let count = format!("SELECT COUNT(*) FROM audit_events WHERE {FILTER}");
    let page = format!(
        "SELECT id, occurred_at, kind, outcome, actor, client_ip, details \
         FROM audit_events WHERE {FILTER} ORDER BY id DESC LIMIT $3 OFFSET $4"
    );
    let pattern = actor.map(|a| like_pattern(&a.to_lowercase()));
    let total: i64 = on_db!(db, |pool| sqlx::query_scalar(&count)
        .bind(kind)
        .bind(&pattern)
        .fetch_one(pool)
        .await)?;
    let rows: Vec<AuditRecord> = on_db!(db, |pool| sqlx::query_as(&page)
        .bind(kind)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await)?;
    Ok((rows, total))
}

/// Every kind recorded so far, for the admin page's filter.
pub async fn kinds(db: &Db) -> Result<Vec<String>, StoreError> {
    const SQL: &str = "SELECT DISTINCT kind FROM audit_events ORDER BY kind";
    Ok(on_db!(db, |pool| sqlx::query_scalar(SQL)
        .fetch_all(pool)
        .await)?)
}

/// Deletes events older than `before`; how many.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM audit_events WHERE occurred_at < $1";
    let done = execute!(db, SQL, before)?;
    Ok(done)
}
