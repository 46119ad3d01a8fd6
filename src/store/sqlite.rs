//! SQLite backend: the embedded default, one file next to the binary's working directory.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};

use super::common::impl_store;
use super::common::lite as shared;
use super::{ACQUIRE_TIMEOUT, MigrationStatus, StoreError, connect_error, status_from};
use crate::config::{Backend, DatabaseUrl};

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url.expose())
            .map_err(|e| connect_error(url, e))?
            .create_if_missing(true)
            // WAL lets readers go on while the one writer writes.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        // Every connection to an in-memory database is a new, empty database.
        let max = if url.expose().contains(":memory:") {
            1
        } else {
            8
        };
        // One direct connection first, so a bad path reports its cause rather than a timeout.
        SqliteConnection::connect_with(&options)
            .await
            .map_err(|e| connect_error(url, e))?
            .close()
            .await
            .map_err(|e| connect_error(url, e))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| connect_error(url, e))?;
        Ok(SqliteStore { pool })
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl_store!(SqliteStore, Backend::Sqlite);
