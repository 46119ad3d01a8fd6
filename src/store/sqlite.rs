//! SQLite backend: the embedded default, one file next to the binary's working directory.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection, SqlitePool};

use super::common::lite as shared;
use super::{
    ACQUIRE_TIMEOUT, DirectorySummary, MigrationStatus, Store, StoreError, connect_error,
    status_from,
};
use crate::config::{Backend, DatabaseUrl};
use crate::sample::SampleData;

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

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        shared::ping(&self.pool).await
    }

    async fn migrate(&self) -> Result<MigrationStatus, StoreError> {
        MIGRATOR.run(&self.pool).await?;
        self.migration_status().await
    }

    async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        let applied = shared::applied_migrations(&self.pool).await?;
        Ok(status_from(&MIGRATOR, applied))
    }

    async fn directory_summary(&self) -> Result<DirectorySummary, StoreError> {
        shared::directory_summary(&self.pool).await
    }

    async fn load_sample_data(&self, data: &SampleData) -> Result<bool, StoreError> {
        shared::load_sample_data(&self.pool, data).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
