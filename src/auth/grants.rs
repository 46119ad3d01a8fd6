//! Break-glass administrators: grants by verified email, for when the identity provider
//! sends no groups (`gatehouse admin grant|revoke|list`). The queries are this feature's own,
//! each written once for both databases.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::store::{Db, StoreError};
use crate::{execute, on_db};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AdminGrant {
    pub email: String,
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
}

pub async fn list(db: &Db) -> Result<Vec<AdminGrant>, StoreError> {
    const SQL: &str = "SELECT email, granted_by, granted_at FROM admin_grants ORDER BY email";
    Ok(on_db!(db, |pool| sqlx::query_as(SQL)
        .fetch_all(pool)
        .await)?)
}

/// `false` when the email already had a grant.
pub async fn grant(db: &Db, email: &str, by: &str) -> Result<bool, StoreError> {
    const SQL: &str = "INSERT INTO admin_grants (email, granted_by, granted_at) \
                       VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING";
    let (email, now) = (email.to_ascii_lowercase(), Utc::now());
    let done = execute!(db, SQL, &email, by, now)?;
    Ok(done > 0)
}

/// `false` when the email had no grant.
pub async fn revoke(db: &Db, email: &str) -> Result<bool, StoreError> {
    const SQL: &str = "DELETE FROM admin_grants WHERE email = $1";
    let email = email.to_ascii_lowercase();
    let done = execute!(db, SQL, &email)?;
    Ok(done > 0)
}
