//! PostgreSQL backend: the production store, optionally over TLS with client certificates.

use std::str::FromStr;

use secrecy::ExposeSecret;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};

use super::common::impl_store;
use super::common::pg as shared;
use super::{ACQUIRE_TIMEOUT, MigrationStatus, StoreError, connect_error, status_from};
use crate::config::{Backend, DatabaseTls, DatabaseUrl};

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

impl_store!(PgStore, Backend::Postgres);
