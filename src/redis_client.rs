//! The shared Redis connection (sessions and rate-limit counters use it in later features).
//!
//! Connected lazily so `serve` starts, and reports not-ready, while Redis is briefly down;
//! `ConnectionManager` then reconnects on its own.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Value};
use tokio::sync::OnceCell;
use tracing::Instrument;

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
    pub async fn connection(&self) -> Result<Connection, RedisError> {
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
        Ok(Connection(manager.clone()))
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

/// The shared connection, with a client span per command (or pipeline) while traces are
/// exported; otherwise each call goes straight through.
#[derive(Clone)]
pub struct Connection(ConnectionManager);

/// The command's name (`GET`, `EVALSHA`): never its keys or values, which name sessions.
fn command_name(cmd: &Cmd) -> String {
    cmd.args_iter()
        .next()
        .and_then(|arg| match arg {
            redis::Arg::Simple(name) => std::str::from_utf8(name).ok(),
            _ => None,
        })
        .unwrap_or("?")
        .to_ascii_uppercase()
}

fn redis_span(name: &str) -> tracing::Span {
    tracing::info_span!(
        target: crate::telemetry::TARGET,
        "redis",
        otel.name = %format_args!("redis {name}"),
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = name,
    )
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        if !crate::telemetry::enabled() {
            return self.0.req_packed_command(cmd);
        }
        let span = redis_span(&command_name(cmd));
        Box::pin(self.0.req_packed_command(cmd).instrument(span))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if !crate::telemetry::enabled() {
            return self.0.req_packed_commands(pipeline, offset, count);
        }
        let names: Vec<String> = pipeline.cmd_iter().map(command_name).collect();
        let span = redis_span(&format!("PIPELINE {}", names.join(" ")));
        Box::pin(
            self.0
                .req_packed_commands(pipeline, offset, count)
                .instrument(span),
        )
    }

    fn get_db(&self) -> i64 {
        self.0.get_db()
    }
}
