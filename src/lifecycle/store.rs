//! What the lifecycle keeps per user (table `user_lifecycle`): the Users API's last check, and
//! why the groups of the last sign-in may be incomplete. Each query is written once for both
//! databases.

use chrono::{DateTime, Utc};

use crate::store::{Db, StoreError};
use crate::{execute, on_db};

#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Lifecycle {
    pub checked_at: Option<DateTime<Utc>>,
    /// Okta's status, `GONE` for a 404, or `—` when the check failed.
    pub status: Option<String>,
    /// What was done, or why nothing could be.
    pub outcome: Option<String>,
    pub groups_note: Option<String>,
    pub groups_noted_at: Option<DateTime<Utc>>,
}

pub async fn record_check(
    db: &Db,
    user_id: i64,
    status: &str,
    outcome: &str,
) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO user_lifecycle (user_id, checked_at, status, outcome) \
        VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET \
          checked_at = excluded.checked_at, status = excluded.status, \
          outcome = excluded.outcome";
    execute!(db, SQL, user_id, Utc::now(), status, outcome)?;
    Ok(())
}

/// Sets (or, with `None`, clears) the note on a user's groups.
pub async fn note_groups(db: &Db, user_id: i64, note: Option<&str>) -> Result<(), StoreError> {
    const SQL: &str = "INSERT INTO user_lifecycle (user_id, groups_note, groups_noted_at) \
        VALUES ($1, $2, $3) ON CONFLICT (user_id) DO UPDATE SET \
          groups_note = excluded.groups_note, groups_noted_at = excluded.groups_noted_at";
    let at = note.map(|_| Utc::now());
    execute!(db, SQL, user_id, note, at)?;
    Ok(())
}

pub async fn get(db: &Db, user_id: i64) -> Result<Lifecycle, StoreError> {
    const SQL: &str = "SELECT checked_at, status, outcome, groups_note, groups_noted_at \
        FROM user_lifecycle WHERE user_id = $1";
    let row: Option<Lifecycle> = on_db!(db, |pool| sqlx::query_as(SQL)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?;
    Ok(row.unwrap_or_default())
}
