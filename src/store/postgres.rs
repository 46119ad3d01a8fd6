//! PostgreSQL backend: the production store, optionally over TLS with client certificates.

use std::str::FromStr;

use async_trait::async_trait;
use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};

use super::common::pg as shared;
use super::{
    ACQUIRE_TIMEOUT, DirectorySummary, MigrationStatus, Store, StoreError, connect_error,
    status_from,
};
use crate::config::{Backend, DatabaseTls, DatabaseUrl};
use crate::sample::SampleData;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub async fn connect(url: &DatabaseUrl, tls: &DatabaseTls) -> Result<Self, StoreError> {
        let mut options =
            PgConnectOptions::from_str(url.expose()).map_err(|e| connect_error(url, e))?;
        if let Some(ca) = &tls.ca {
            options = options.ssl_root_cert_from_pem(ca.expose_secret().as_bytes().to_vec());
            // A configured CA means the operator wants the server verified, unless the URL
            // already chose a mode.
            if !url.expose().contains("sslmode=") {
                options = options.ssl_mode(PgSslMode::VerifyFull);
            }
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            options = options
                .ssl_client_cert_from_pem(cert.expose_secret().as_bytes())
                .ssl_client_key_from_pem(key.expose_secret().as_bytes());
        }
        // One direct connection first: a pool retries until its timeout and then reports only
        // the timeout, while this reports the cause (refused, bad password, TLS) at once.
        PgConnection::connect_with(&options)
            .await
            .map_err(|e| connect_error(url, e))?
            .close()
            .await
            .map_err(|e| connect_error(url, e))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| connect_error(url, e))?;
        Ok(PgStore { pool })
    }

    pub fn from_pool(pool: PgPool) -> Self {
        PgStore { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
