//! The shared Redis connection (sessions and rate-limit counters use it in later features).
//!
//! Connected lazily so `serve` starts, and reports not-ready, while Redis is briefly down;
//! `ConnectionManager` then reconnects on its own.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use crate::config::RedisUrl;

/// Longest wait for one Redis round trip before it counts as down.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("redis {url}: {cause}")]
    Unavailable { url: String, cause: String },
}

pub struct RedisHandle {
    client: redis::Client,
    url: String,
    manager: OnceCell<ConnectionManager>,
}

impl RedisHandle {
    pub fn new(url: &RedisUrl) -> Result<Self, RedisError> {
        let client = redis::Client::open(url.expose()).map_err(|e| RedisError::Unavailable {
            url: url.redacted().to_string(),
            cause: e.to_string(),
        })?;
        Ok(RedisHandle {
            client,
            url: url.redacted().to_string(),
            manager: OnceCell::new(),
        })
    }

    fn unavailable(&self, cause: impl ToString) -> RedisError {
        RedisError::Unavailable {
            url: self.url.clone(),
            cause: cause.to_string(),
        }
    }

    /// A connection, made on first use; bounded by `REDIS_TIMEOUT`.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let manager = tokio::time::timeout(
            REDIS_TIMEOUT,
            self.manager.get_or_try_init(|| {
                // Fail fast on the first connection so callers see the cause (e.g. refused);
                // later reconnects retry with backoff inside the manager.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT));
                ConnectionManager::new_with_config(self.client.clone(), config)
            }),
        )
        .await
        .map_err(|_| self.unavailable(format!("no answer within {}s", REDIS_TIMEOUT.as_secs())))?
        .map_err(|e| self.unavailable(e))?;
        Ok(manager.clone())
    }

    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let pong: String =
            tokio::time::timeout(REDIS_TIMEOUT, redis::cmd("PING").query_async(&mut conn))
                .await
                .map_err(|_| {
                    self.unavailable(format!("no answer within {}s", REDIS_TIMEOUT.as_secs()))
                })?
                .map_err(|e| self.unavailable(e))?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(self.unavailable(format!("unexpected answer to PING: {pong}")))
        }
    }
}
