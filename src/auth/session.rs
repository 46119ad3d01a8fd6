//! Server-side sessions and login transactions, in Redis when configured, else the database.
//! The cookie holds only an opaque random id. Stores see only an HMAC of it keyed by
//! `GATEHOUSE_SESSION_KEY`, so a dump of either hands out no live session, and neither can a
//! guess at the storage key without the secret. With several keys the first names new
//! records and all are tried on lookup, so a key can be rotated without signing anyone out.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use chrono::Utc;
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::oidc::{LoginTransaction, random_token};
use crate::redis_client::RedisHandle;
use crate::store::{SessionRow, Store};

/// A login transaction lives this long: enough to type a password, short enough to be useless
/// when stolen.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// `last_seen` is written at most this often, not on every request.
const TOUCH_EVERY_SECS: i64 = 60;

#[derive(Debug, thiserror::Error)]
#[error("session storage is unavailable: {0}")]
pub struct SessionError(String);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    pub user_id: i64,
    /// Per-session CSRF token for forms.
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
    /// For `id_token_hint` at the provider's logout.
    pub id_token: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

enum Backend {
    Database(Arc<dyn Store>),
    Redis(Arc<RedisHandle>),
}

pub struct Sessions {
    backend: Backend,
    ttl: Duration,
    idle: Duration,
    /// Newest first; never empty.
    keys: Vec<hmac::Key>,
}

/// A public, unkeyed hash of a session id: what pages may show as a session's handle.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

impl Sessions {
    /// `secrets` empty (dev mode without a key) means a random key for this process.
    pub fn new(
        store: Arc<dyn Store>,
        redis: Option<Arc<RedisHandle>>,
        ttl: Duration,
        idle: Duration,
        secrets: &[SecretString],
    ) -> Self {
        let backend = match redis {
            Some(r) => Backend::Redis(r),
            None => Backend::Database(store),
        };
        let mut keys: Vec<hmac::Key> = secrets
            .iter()
            .map(|s| hmac::Key::new(hmac::HMAC_SHA256, s.expose_secret().as_bytes()))
            .collect();
        if keys.is_empty() {
            let random: [u8; 32] = rand::random();
            keys.push(hmac::Key::new(hmac::HMAC_SHA256, &random));
        }
        Sessions {
            backend,
            ttl,
            idle,
            keys,
        }
    }

    /// Storage keys for a cookie value, newest secret first.
    fn storage_keys(&self, kind: &str, id: &str) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| {
                let tag = hmac::sign(k, format!("{kind}\0{id}").as_bytes());
                format!("gatehouse:{kind}:{}", hex::encode(tag.as_ref()))
            })
            .collect()
    }

    fn newest_key(&self, kind: &str, id: &str) -> String {
        self.storage_keys(kind, id)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// A new session for a user who just signed in; the id is new, never reused (rotation).
    pub async fn create(
        &self,
        user_id: i64,
        id_token: Option<String>,
        client_ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<(String, SessionData), SessionError> {
        let id = random_token();
        let now = Utc::now().timestamp();
        let data = SessionData {
            user_id,
            csrf: random_token(),
            created_at: now,
            last_seen: now,
            id_token,
            client_ip,
            user_agent,
        };
        self.write(&id, &data).await?;
        Ok((id, data))
    }

    /// The live session for a cookie value, enforcing idle and absolute lifetimes.
    pub async fn load(&self, id: &str) -> Result<Option<SessionData>, SessionError> {
        let mut found = None;
        for k in self.storage_keys("session", id) {
            if let Some(data) = self.read(&k).await? {
                found = Some((k, data));
                break;
            }
        }
        let Some((storage_key, mut data)) = found else {
            return Ok(None);
        };
        let now = Utc::now().timestamp();
        if now - data.created_at >= secs(self.ttl) || now - data.last_seen >= secs(self.idle) {
            self.delete(&storage_key).await?;
            return Ok(None);
        }
        if now - data.last_seen >= TOUCH_EVERY_SECS {
            data.last_seen = now;
            self.write_at(&storage_key, &data).await?;
        }
        Ok(Some(data))
    }

    pub async fn destroy(&self, id: &str) -> Result<(), SessionError> {
        for k in self.storage_keys("session", id) {
            self.delete(&k).await?;
        }
        Ok(())
    }

    pub async fn save_login(&self, tx: &LoginTransaction) -> Result<String, SessionError> {
        let id = random_token();
        let value = serde_json::to_value(tx).map_err(|e| SessionError(e.to_string()))?;
        self.put(
            &self.newest_key("login", &id),
            None,
            value,
            LOGIN_TTL,
            None,
            None,
        )
        .await?;
        Ok(id)
    }

    /// The transaction for a login cookie, at most once.
    pub async fn take_login(&self, id: &str) -> Result<Option<LoginTransaction>, SessionError> {
        for k in self.storage_keys("login", id) {
            let value = match &self.backend {
                Backend::Database(store) => store.session_take(&k).await.map_err(err)?,
                Backend::Redis(redis) => {
                    let mut conn = redis.connection().await.map_err(err)?;
                    let raw: Option<String> = conn.get_del(&k).await.map_err(err)?;
                    raw.and_then(|r| serde_json::from_str(&r).ok())
                }
            };
            if let Some(v) = value {
                return Ok(serde_json::from_value(v).ok());
            }
        }
        Ok(None)
    }

    async fn write(&self, id: &str, data: &SessionData) -> Result<(), SessionError> {
        self.write_at(&self.newest_key("session", id), data).await
    }

    async fn write_at(&self, storage_key: &str, data: &SessionData) -> Result<(), SessionError> {
        let now = Utc::now().timestamp();
        let left = (data.created_at + secs(self.ttl) - now)
            .min(secs(self.idle))
            .max(1);
        let value = serde_json::to_value(data).map_err(|e| SessionError(e.to_string()))?;
        self.put(
            storage_key,
            Some(data.user_id),
            value,
            Duration::from_secs(left.unsigned_abs()),
            data.client_ip.clone(),
            data.user_agent.clone(),
        )
        .await
    }

    async fn put(
        &self,
        k: &str,
        user_id: Option<i64>,
        value: serde_json::Value,
        ttl: Duration,
        client_ip: Option<String>,
        user_agent: Option<String>,
    ) -> Result<(), SessionError> {
        match &self.backend {
            Backend::Database(store) => {
                let expires_at = Utc::now()
                    + chrono::Duration::from_std(ttl).map_err(|e| SessionError(e.to_string()))?;
                store
                    .session_put(&SessionRow {
                        id_hash: k.to_string(),
                        user_id,
                        data: value,
                        client_ip,
                        user_agent,
                        expires_at,
                    })
                    .await
                    .map_err(err)
            }
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                conn.set_ex::<_, _, ()>(k, value.to_string(), ttl.as_secs().max(1))
                    .await
                    .map_err(err)
            }
        }
    }

    async fn read(&self, k: &str) -> Result<Option<SessionData>, SessionError> {
        let value = match &self.backend {
            Backend::Database(store) => store.session_get(k).await.map_err(err)?,
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                let raw: Option<String> = conn.get(k).await.map_err(err)?;
                raw.and_then(|r| serde_json::from_str(&r).ok())
            }
        };
        // A record that no longer parses (an older format) is treated as signed out.
        Ok(value.and_then(|v| serde_json::from_value(v).ok()))
    }

    async fn delete(&self, k: &str) -> Result<(), SessionError> {
        match &self.backend {
            Backend::Database(store) => store.session_delete(k).await.map_err(err),
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                conn.del::<_, ()>(k).await.map_err(err)
            }
        }
    }
}

fn err(e: impl std::fmt::Display) -> SessionError {
    SessionError(e.to_string())
}
