//! Storage: the connection pools of both backends (PostgreSQL and SQLite), migrations, and
//! what every feature shares (`Db` and `on_db!`, `like_pattern`, the audit trail).
//!
//! A feature writes its queries once, in its own folder, as functions over `Db`: `on_db!`
//! expands one query body for each pool (SQL both backends accept, `$1` placeholders). A
//! `Store` trait object keeps what differs per backend (connection options, migrations) and
//! the start-up work (readiness ping, sample data).

pub mod audit;
mod common;
use common::{lite, pg};
mod postgres;
mod sqlite;
pub mod versions;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::config::{Backend, Config, DatabaseUrl};
use crate::sample::SampleData;

pub use audit::{AuditEvent, AuditRecord};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How long a request waits for a pooled connection before giving up with an error.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to database {url}: {cause}")]
    Connect { url: String, cause: String },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// Work on what was read failed (a panicked task building an in-memory index).
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    pub applied: Vec<i64>,
    pub pending: Vec<i64>,
}

/// Counts shown on the landing page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DirectorySummary {
    pub people: i64,
    pub laptops: i64,
    pub lists: i64,
    pub repos: i64,
}

impl DirectorySummary {
    pub fn is_empty(&self) -> bool {
        self.people == 0 && self.laptops == 0 && self.lists == 0 && self.repos == 0
    }
}

/// A person as Gatehouse knows them, keyed by (issuer, subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub is_admin: bool,
}

/// What a sign-in learned about a user; written over the stored facts at every sign-in.
#[derive(Debug, Clone)]
pub struct UserLogin {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub is_admin: bool,
}

/// A user row for the admin list.
#[derive(Debug, Clone, Serialize)]
pub struct UserListing {
    pub user: User,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    pub roles: Vec<String>,
}

/// `%term%` for `LIKE … ESCAPE '\'`, with the term's own wildcards escaped.
pub fn like_pattern(term: &str) -> String {
    let escaped = term
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// A connection pool of either backend. Features write their queries once, over this, with
/// [`on_db!`]; the `Store` trait below keeps what is per backend (migrations) or start-up.
#[derive(Clone)]
pub enum Db {
    Postgres(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

/// One query body for whichever pool `$db` holds: written once, compiled for each backend
/// (SQL both accept, `$1` placeholders). `|pool|` names the pool inside the body.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Postgres($pool) => $body,
            $crate::store::Db::Sqlite($pool) => $body,
        }
    };
}

impl From<sqlx::PgPool> for Db {
    fn from(pool: sqlx::PgPool) -> Self {
        Db::Postgres(pool)
    }
}

impl From<sqlx::SqlitePool> for Db {
    fn from(pool: sqlx::SqlitePool) -> Self {
        Db::Sqlite(pool)
    }
}

/// Runs one statement with its bound values on whichever pool `$db` holds; the number of
/// rows it changed.
#[macro_export]
macro_rules! execute {
    ($db:expr, $sql:expr $(, $arg:expr)*) => {
        $crate::on_db!($db, |pool| sqlx::query($sql)
            $(.bind($arg))*
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
    };
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    async fn migrate(&self) -> Result<MigrationStatus, StoreError>;
    async fn migration_status(&self) -> Result<MigrationStatus, StoreError>;
    /// The pool itself, for queries a feature owns (written once with [`on_db!`]).
    fn db(&self) -> Db;
    async fn close(&self);
}

/// Calls the function `$f` of module `$pg` or `$lite`, whichever backend `$db` holds: for
/// queries a macro expands once per backend (where `on_db!`'s single expression would not
/// read well: transactions, backend-specific parts).
#[macro_export]
macro_rules! per_backend {
    ($db:expr, $pg:ident, $lite:ident, $f:ident($($arg:expr),*)) => {
        match $db {
            $crate::store::Db::Postgres(pool) => $pg::$f(pool, $($arg),*).await,
            $crate::store::Db::Sqlite(pool) => $lite::$f(pool, $($arg),*).await,
        }
    };
}

/// A round trip to the database, for readiness.
pub async fn ping(db: &Db) -> Result<(), StoreError> {
    per_backend!(db, pg, lite, ping())
}

/// The start page's counts.
pub async fn directory_summary(db: &Db) -> Result<DirectorySummary, StoreError> {
    per_backend!(db, pg, lite, directory_summary())
}

/// Loads the demo data in one transaction if the directory is empty; `false` if it was not.
pub async fn load_sample_data(db: &Db, data: &SampleData) -> Result<bool, StoreError> {
    per_backend!(db, pg, lite, load_sample_data(data))
}

/// Connects to the configured database (creating a SQLite file when missing).
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let url = &config.database;
    Ok(match url.backend() {
        Backend::Postgres => Arc::new(PgStore::connect(url, &config.database_tls).await?),
        Backend::Sqlite => Arc::new(SqliteStore::connect(url).await?),
    })
}

fn connect_error(url: &DatabaseUrl, err: sqlx::Error) -> StoreError {
    let cause = describe(&err);
    let host = url::Url::parse(url.expose())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let cause = match tls_hint(&cause, &host) {
        Some(hint) => format!("{cause} ({hint})"),
        None => cause,
    };
    StoreError::Connect {
        url: url.redacted().to_string(),
        cause,
    }
}

/// What to change when a TLS connection fails: rustls's and PostgreSQL's words name neither
/// the setting nor the fix. `None` for any other failure.
fn tls_hint(cause: &str, host: &str) -> Option<String> {
    let lower = cause.to_ascii_lowercase();
    if lower.contains("invalid peer certificate") {
        return Some(
            if lower.contains("notvalidforname") || lower.contains("not valid for name") {
                format!(
                    "the server's certificate does not name {host}: connect by a name it \
                     lists, in GATEHOUSE_DATABASE_URL"
                )
            } else {
                "the server's certificate is not signed by GATEHOUSE_DATABASE_CA: give the CA \
                 that signed the server's certificate"
                    .into()
            },
        );
    }
    if lower.contains("requires a valid client certificate")
        || lower.contains("certificate authentication failed")
    {
        return Some(
            "the server wants a client certificate it trusts, for this user: set \
             GATEHOUSE_DATABASE_CERT and GATEHOUSE_DATABASE_KEY"
                .into(),
        );
    }
    if lower.contains("no pg_hba.conf entry") && lower.contains("no encryption") {
        return Some(
            "the server takes only TLS connections: set GATEHOUSE_DATABASE_CA, or add \
             sslmode=require to GATEHOUSE_DATABASE_URL"
                .into(),
        );
    }
    None
}

/// sqlx's I/O errors read "error communicating with database: …"; the cause is what helps.
fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::PoolTimedOut => format!(
            "no connection within {}s (is the server up and reachable?)",
            ACQUIRE_TIMEOUT.as_secs()
        ),
        other => other.to_string(),
    }
}

fn status_from(migrator: &sqlx::migrate::Migrator, applied: Vec<i64>) -> MigrationStatus {
    let pending = migrator
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    MigrationStatus { applied, pending }
}

#[cfg(test)]
mod connect_hint_tests {
    use super::tls_hint;

    #[test]
    fn tls_failures_name_the_setting_to_change() {
        let hint = |cause: &str| tls_hint(cause, "db.internal").unwrap_or_default();
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("GATEHOUSE_DATABASE_CA"));
        assert!(
            hint("invalid peer certificate: certificate not valid for name \"db.internal\"")
                .contains("does not name db.internal")
        );
        assert!(
            hint("error returned from database: connection requires a valid client certificate")
                .contains("GATEHOUSE_DATABASE_CERT")
        );
        assert!(
            hint("error returned from database: no pg_hba.conf entry for host \"10.0.0.1\", user \"g\", database \"g\", no encryption")
                .contains("sslmode=require")
        );
        assert_eq!(
            tls_hint("Connection refused (os error 111)", "db.internal"),
            None
        );
    }
}
