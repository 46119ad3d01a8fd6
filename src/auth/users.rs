//! Users as Gatehouse knows them, keyed by (issuer, subject): written at every sign-in, read
//! on every signed-in request, listed for admins. The queries are this feature's own, each
//! written once for both databases.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::on_db;
use crate::store::{Db, StoreError, User, UserListing, UserLogin, like_pattern};

const COLUMNS: &str = "id, issuer, subject, email, email_verified, name, groups, is_admin";

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    issuer: String,
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    groups: Json<Vec<String>>,
    is_admin: bool,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            issuer: r.issuer,
            subject: r.subject,
            email: r.email,
            email_verified: r.email_verified,
            name: r.name,
            groups: r.groups.0,
            is_admin: r.is_admin,
        }
    }
}

/// Creates the user, or writes what this sign-in learned over the stored facts.
pub async fn upsert(db: &Db, login: &UserLogin) -> Result<User, StoreError> {
    let sql = format!(
        "INSERT INTO users \
           (issuer, subject, email, email_verified, name, groups, is_admin, last_login_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (issuer, subject) DO UPDATE SET \
           email = excluded.email, email_verified = excluded.email_verified, \
           name = excluded.name, groups = excluded.groups, \
           is_admin = excluded.is_admin, last_login_at = excluded.last_login_at \
         RETURNING {COLUMNS}"
    );
    let now = Utc::now();
    let row: UserRow = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(&login.issuer)
        .bind(&login.subject)
        .bind(&login.email)
        .bind(login.email_verified)
        .bind(&login.name)
        .bind(Json(&login.groups))
        .bind(login.is_admin)
        .bind(now)
        .fetch_one(pool)
        .await)?;
    Ok(row.into())
}

pub async fn get(db: &Db, id: i64) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE id = $1");
    let row: Option<UserRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Into::into))
}

/// The user an access token speaks for: the account that signed in with this subject at this
/// issuer, if any.
pub async fn by_subject(db: &Db, issuer: &str, subject: &str) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE issuer = $1 AND subject = $2");
    let row: Option<UserRow> = on_db!(db, |pool| sqlx::query_as(&sql)
        .bind(issuer)
        .bind(subject)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(Into::into))
}

/// One page of users whose name or email contains `query` (case-insensitive), most recent
/// sign-in first, with their assigned role names; and the total that match.
pub async fn list(
    db: &Db,
    query: &str,
    limit: i64,
    offset: i64,
) -> Result<(Vec<UserListing>, i64), StoreError> {
    const FILTER: &str = "lower(coalesce(name, '')) LIKE $1 ESCAPE '\\' \
                          OR lower(coalesce(email, '')) LIKE $1 ESCAPE '\\'";
    // The account's own assignments and those of its verified address ($2, NULL otherwise).
    const ROLES: &str = "SELECT r.name FROM roles r \
                         WHERE r.id IN (SELECT role_id FROM user_roles WHERE user_id = $1) \
                         OR r.id IN (SELECT role_id FROM role_email_assignments WHERE email = $2) \
                         ORDER BY r.name";
    #[derive(sqlx::FromRow)]
    struct ListingRow {
        #[sqlx(flatten)]
        user: UserRow,
        last_login_at: Option<DateTime<Utc>>,
    }
    let pattern = like_pattern(&query.to_lowercase());
    let count = format!("SELECT COUNT(*) FROM users WHERE {FILTER}");
    let page = format!(
        "SELECT {COLUMNS}, last_login_at FROM users WHERE {FILTER} \
         ORDER BY last_login_at DESC NULLS LAST, id LIMIT $2 OFFSET $3"
    );
    let total: i64 = on_db!(db, |pool| sqlx::query_scalar(&count)
        .bind(&pattern)
        .fetch_one(pool)
        .await)?;
    let rows: Vec<ListingRow> = on_db!(db, |pool| sqlx::query_as(&page)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(pool)
        .await)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let user: User = row.user.into();
        let email = super::access::trusted_email(&user);
        let roles: Vec<String> = on_db!(db, |pool| sqlx::query_scalar(ROLES)
            .bind(user.id)
            .bind(&email)
            .fetch_all(pool)
            .await)?;
        out.push(UserListing {
            user,
            last_login_at: row.last_login_at,
            roles,
        });
    }
    Ok((out, total))
}
