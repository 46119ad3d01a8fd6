//! Sessions in the database, for deployments without Redis: one `sessions` row per session
//! or login transaction, keyed by a hash of the cookie value, never the value. Each query is
//! written once for both databases.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;

use crate::store::{Db, StoreError};
use crate::{execute, on_db};

/// One record: a session (with its user) or a login transaction (without).
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: Option<i64>,
    pub data: Value,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub expires_at: DateTime<Utc>,
}

/// Inserts an empty record unless one with this key exists (even expired and not yet pruned:
/// it is kept no longer than what it guards stays valid); `true` when inserted.
pub async fn insert_new(
    db: &Db,
    id_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    const SQL: &str = "INSERT INTO sessions \
          (id_hash, user_id, data, client_ip, user_agent, created_at, last_seen_at, expires_at) \
        VALUES ($1, NULL, $2, NULL, NULL, $3, $3, $4) ON CONFLICT (id_hash) DO NOTHING";
    let inserted = execute!(db, SQL, id_hash, Json(&Value::Null), Utc::now(), expires_at)?;
    Ok(inserted == 1)
}

/// Inserts a new record. Records are never replaced here: a write-back goes through
/// [`touch`], which cannot bring back a record that was deleted.
pub async fn insert(db: &Db, row: &SessionRow) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO sessions \
          (id_hash, user_id, data, client_ip, user_agent, created_at, last_seen_at, expires_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $6, $7)";
    let now = Utc::now();
    execute!(
        db,
        SQL,
        &row.id_hash,
        row.user_id,
        Json(&row.data),
        &row.client_ip,
        &row.user_agent,
        now,
        row.expires_at
    )?;
    Ok(())
}

/// Rewrites a live record's data and expiry; `false` when there is no live record. An
/// upsert here would recreate a session that was signed out or revoked after the caller
/// read it: only an `UPDATE` of a row that is still there is safe.
pub async fn touch(
    db: &Db,
    id_hash: &str,
    data: &Value,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    const SQL: &str = "UPDATE sessions SET data = $2, last_seen_at = $3, expires_at = $4 \
        WHERE id_hash = $1 AND expires_at > $3";
    let now = Utc::now();
    let changed = execute!(db, SQL, id_hash, Json(data), now, expires_at)?;
    Ok(changed > 0)
}

/// Writes a record without a user (a remembered value), replacing any with the same key.
pub async fn put(
    db: &Db,
    id_hash: &str,
    data: &Value,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO sessions \
          (id_hash, user_id, data, client_ip, user_agent, created_at, last_seen_at, expires_at) \
        VALUES ($1, NULL, $2, NULL, NULL, $3, $3, $4) \
        ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, \
          last_seen_at = excluded.last_seen_at, expires_at = excluded.expires_at";
    execute!(db, SQL, id_hash, Json(data), Utc::now(), expires_at)?;
    Ok(())
}

/// A live record's data; `None` when there is none or it has expired.
pub async fn get(db: &Db, id_hash: &str) -> Result<Option<Value>, StoreError> {
    const SQL: &str = "SELECT data FROM sessions WHERE id_hash = $1 AND expires_at > $2";
    let now = Utc::now();
    let data: Option<Json<Value>> = on_db!(db, |pool| sqlx::query_scalar(SQL)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await)?;
    Ok(data.map(|d| d.0))
}

/// Deletes a record and returns its data if it was live: one use only, whoever comes second
/// gets `None`.
pub async fn take(db: &Db, id_hash: &str) -> Result<Option<Value>, StoreError> {
    const SQL: &str = "DELETE FROM sessions WHERE id_hash = $1 RETURNING data, expires_at";
    let row: Option<(Json<Value>, DateTime<Utc>)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(id_hash)
        .fetch_optional(pool)
        .await)?;
    Ok(row
        .filter(|(_, expires)| *expires > Utc::now())
        .map(|(d, _)| d.0))
}

pub async fn delete(db: &Db, id_hash: &str) -> Result<(), StoreError> {
    const SQL: &str = "DELETE FROM sessions WHERE id_hash = $1";
    execute!(db, SQL, id_hash)?;
    Ok(())
}

/// A user's live sessions: (storage key, data).
pub async fn for_user(db: &Db, user_id: i64) -> Result<Vec<(String, Value)>, StoreError> {
    const SQL: &str = "SELECT id_hash, data FROM sessions WHERE user_id = $1 AND expires_at > $2";
    let now = Utc::now();
    let rows: Vec<(String, Json<Value>)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(user_id)
        .bind(now)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(|(k, d)| (k, d.0)).collect())
}

/// The users who have a live session.
pub async fn users_with_sessions(db: &Db) -> Result<Vec<i64>, StoreError> {
    const SQL: &str = "SELECT DISTINCT user_id FROM sessions \
        WHERE user_id IS NOT NULL AND expires_at > $1 ORDER BY user_id";
    let now = Utc::now();
    let rows: Vec<(i64,)> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(now)
        .fetch_all(pool)
        .await)?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Deletes expired records; how many.
pub async fn purge_expired(db: &Db) -> Result<u64, StoreError> {
    const SQL: &str = "DELETE FROM sessions WHERE expires_at <= $1";
    let now = Utc::now();
    let done = execute!(db, SQL, now)?;
    Ok(done)
}
