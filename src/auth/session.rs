//! Server-side sessions and login transactions, in Redis when configured, else the database.
//! The cookie holds only an opaque random id. Stores see only an HMAC of it keyed by
//! `GATEHOUSE_SESSION_KEY`, so a dump of either hands out no live session, and neither can a
//! guess at the storage key without the secret. With several keys the first names new
//! records and all are tried on lookup, so a key can be rotated without signing anyone out.
//!
//! Over 400 lines: each operation handles both stores in one `match`, Redis beside the
//! database (whose queries are in `session_db`), so the two cannot drift apart.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use chrono::Utc;
use redis::AsyncCommands;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::oidc::{LoginTransaction, random_token};
use super::session_db::{self, SessionRow};
use crate::redis_client::RedisHandle;
use crate::store::{Db, Store};

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
    /// The user's email at sign-in, for the per-request audit log line.
    #[serde(default)]
    pub email: Option<String>,
    /// Per-session CSRF token for forms.
    pub csrf: String,
    pub created_at: i64,
    pub last_seen: i64,
    /// For `id_token_hint` at the provider's logout.
    pub id_token: Option<String>,
    /// When the provider last authenticated the user (its `auth_time`), for step-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// A one-time notice for the next page (what the last form did), kept here rather than
    /// in a cookie so no one else can put words on the page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash: Option<String>,
}

impl SessionData {
    /// The record as either store keeps it.
    pub fn record(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

/// What a sign-in knows of the session it starts.
#[derive(Debug, Default)]
pub struct NewSession {
    pub user_id: i64,
    pub email: Option<String>,
    pub id_token: Option<String>,
    pub auth_time: Option<i64>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// A notice for the first page.
    pub flash: Option<String>,
}

enum Backend {
    Database(Db),
    Redis(Arc<RedisHandle>),
}

pub struct Sessions {
    backend: Backend,
    ttl: Duration,
    idle: Duration,
    /// Newest first; never empty.
    keys: Vec<hmac::Key>,
    /// Namespace of every Redis key (`GATEHOUSE_REDIS_PREFIX`); the database needs none.
    prefix: String,
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
        prefix: &str,
    ) -> Self {
        let backend = match redis {
            Some(r) => Backend::Redis(r),
            None => Backend::Database(store.db()),
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
            prefix: prefix.to_string(),
        }
    }

    /// Storage keys for a cookie value, newest secret first.
    fn storage_keys(&self, kind: &str, id: &str) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| {
                let tag = hmac::sign(k, format!("{kind}\0{id}").as_bytes());
                format!("{kind}:{}", hex::encode(tag.as_ref()))
            })
            .collect()
    }

    fn newest_key(&self, kind: &str, id: &str) -> String {
        self.storage_keys(kind, id)
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// A stable stand-in for a user or token in traces: a keyed hash, so the collector sees
    /// who is who across requests but cannot turn it back into an id (ids are small numbers,
    /// an unkeyed hash of one is a lookup away).
    pub fn pseudonym(&self, who: &str) -> String {
        self.keys.first().map_or_else(String::new, |k| {
            hex::encode(&hmac::sign(k, format!("trace\0{who}").as_bytes()).as_ref()[..8])
        })
    }

    /// A new session for a user who just signed in; the id is new, never reused (rotation).
    /// Where sessions are kept, for the metrics: `redis` or `database`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Database(_) => "database",
            Backend::Redis(_) => "redis",
        }
    }

    pub async fn create(&self, new: NewSession) -> Result<(String, SessionData), SessionError> {
        let id = random_token();
        let now = Utc::now().timestamp();
        let data = SessionData {
            user_id: new.user_id,
            email: new.email,
            csrf: random_token(),
            created_at: now,
            last_seen: now,
            id_token: new.id_token,
            auth_time: new.auth_time,
            client_ip: new.client_ip,
            user_agent: new.user_agent,
            flash: new.flash,
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
        let Some((storage_key, data)) = found else {
            return Ok(None);
        };
        self.admit(&storage_key, data).await
    }

    /// The Redis keys a cookie value's session may be stored under, newest secret first, for
    /// a caller that reads the record in a round trip of its own (the rate limiter's);
    /// `None` when sessions live in the database.
    pub fn redis_keys(&self, id: &str) -> Option<Vec<String>> {
        match &self.backend {
            Backend::Redis(_) => Some(
                self.storage_keys("session", id)
                    .iter()
                    .map(|k| self.redis_key(k))
                    .collect(),
            ),
            Backend::Database(_) => None,
        }
    }

    /// What `load` does with a record read from Redis by someone else: `raw` as stored under
    /// the `index`th key of [`Sessions::redis_keys`].
    pub async fn admit_raw(
        &self,
        id: &str,
        index: usize,
        raw: &str,
    ) -> Result<Option<SessionData>, SessionError> {
        let Some(storage_key) = self.storage_keys("session", id).into_iter().nth(index) else {
            return Ok(None);
        };
        // A record that no longer parses (an older format) is treated as signed out.
        match serde_json::from_str(raw) {
            Ok(data) => self.admit(&storage_key, data).await,
            Err(_) => Ok(None),
        }
    }

    /// A record just read: ended (and deleted) past its idle or absolute lifetime, its
    /// `last_seen` written back when due.
    async fn admit(
        &self,
        storage_key: &str,
        mut data: SessionData,
    ) -> Result<Option<SessionData>, SessionError> {
        let now = Utc::now().timestamp();
        if now - data.created_at >= secs(self.ttl) || now - data.last_seen >= secs(self.idle) {
            self.delete(storage_key).await?;
            return Ok(None);
        }
        if now - data.last_seen >= TOUCH_EVERY_SECS {
            data.last_seen = now;
            // Signed out or revoked since the read above: it stays ended.
            if !self.touch_at(storage_key, &data).await? {
                return Ok(None);
            }
        }
        Ok(Some(data))
    }

    /// Writes back a session read earlier (its `last_seen`), as `load` does at most once a
    /// minute; `false`, and nothing written, when the session has ended since it was read.
    pub async fn touch(&self, id: &str, data: &SessionData) -> Result<bool, SessionError> {
        for k in self.storage_keys("session", id) {
            if self.touch_at(&k, data).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Rewrites the record only if it still exists. A sign-out or a revocation may land
    /// between a request's read and this write; a plain `SET` or upsert would then write the
    /// ended session back, alive for another idle period.
    async fn touch_at(&self, storage_key: &str, data: &SessionData) -> Result<bool, SessionError> {
        let ttl = self.lifetime_left(data);
        let value = data.record().map_err(err)?;
        match &self.backend {
            Backend::Database(db) => {
                let expires_at = Utc::now() + chrono::Duration::from_std(ttl).map_err(err)?;
                session_db::touch(db, storage_key, &value, expires_at)
                    .await
                    .map_err(err)
            }
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                // `XX`: set only an existing key; the answer is nil when there was none.
                let set: Option<String> = redis::cmd("SET")
                    .arg(self.redis_key(storage_key))
                    .arg(value.to_string())
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .arg("XX")
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                Ok(set.is_some())
            }
        }
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
                Backend::Database(db) => session_db::take(db, &k).await.map_err(err)?,
                Backend::Redis(redis) => {
                    let mut conn = redis.connection().await.map_err(err)?;
                    let raw: Option<String> =
                        conn.get_del(self.redis_key(&k)).await.map_err(err)?;
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
        let value = data.record().map_err(err)?;
        self.put(
            &self.newest_key("session", id),
            Some(data.user_id),
            value,
            self.lifetime_left(data),
            data.client_ip.clone(),
            data.user_agent.clone(),
        )
        .await
    }

    /// How long a session may still live: its idle period, within its absolute lifetime.
    fn lifetime_left(&self, data: &SessionData) -> Duration {
        let now = Utc::now().timestamp();
        let left = (data.created_at + secs(self.ttl) - now)
            .min(secs(self.idle))
            .max(1);
        Duration::from_secs(left.unsigned_abs())
    }

    /// Stores a new record (a session or a login transaction), under a fresh random id.
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
            Backend::Database(db) => {
                let expires_at = Utc::now()
                    + chrono::Duration::from_std(ttl).map_err(|e| SessionError(e.to_string()))?;
                session_db::insert(
                    db,
                    &SessionRow {
                        id_hash: k.to_string(),
                        user_id,
                        data: value,
                        client_ip,
                        user_agent,
                        expires_at,
                    },
                )
                .await
                .map_err(err)
            }
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                let ttl_secs = ttl.as_secs().max(1);
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .set_ex(self.redis_key(k), value.to_string(), ttl_secs)
                    .ignore();
                // Each user's sessions are indexed so they can be listed and revoked; the
                // index outlives its members at most by one session lifetime, and listing
                // drops members that have expired.
                if let Some(user) = user_id {
                    let index = self.user_index(user);
                    pipe.sadd(&index, k)
                        .ignore()
                        .expire(&index, secs(self.ttl).max(1))
                        .ignore();
                }
                pipe.query_async::<()>(&mut conn).await.map_err(err)
            }
        }
    }

    /// A user's live sessions as (storage key, data).
    async fn for_user(&self, user_id: i64) -> Result<Vec<(String, SessionData)>, SessionError> {
        let raw: Vec<(String, serde_json::Value)> = match &self.backend {
            Backend::Database(db) => session_db::for_user(db, user_id).await.map_err(err)?,
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                let index = self.user_index(user_id);
                let keys: Vec<String> = conn.smembers(&index).await.map_err(err)?;
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let redis_keys: Vec<String> = keys.iter().map(|k| self.redis_key(k)).collect();
                let values: Vec<Option<String>> = conn.mget(&redis_keys).await.map_err(err)?;
                let mut live = Vec::new();
                for (k, v) in keys.into_iter().zip(values) {
                    match v.and_then(|v| serde_json::from_str(&v).ok()) {
                        Some(v) => live.push((k, v)),
                        None => conn.srem::<_, _, ()>(&index, &k).await.map_err(err)?,
                    }
                }
                live
            }
        };
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| serde_json::from_value(v).ok().map(|d| (k, d)))
            .collect())
    }

    fn redis_key(&self, k: &str) -> String {
        format!("{}:{k}", self.prefix)
    }

    fn user_index(&self, user_id: i64) -> String {
        format!("{}:user-sessions:{user_id}", self.prefix)
    }

    /// The handles of a cookie value: what `/account/sessions` shows for it.
    pub fn handles_of(&self, id: &str) -> Vec<String> {
        self.storage_keys("session", id)
            .iter()
            .map(|k| handle(k))
            .collect()
    }

    /// A user's live sessions with their handles, newest first.
    pub async fn list(&self, user_id: i64) -> Result<Vec<(String, SessionData)>, SessionError> {
        let mut sessions: Vec<(String, SessionData)> = self
            .for_user(user_id)
            .await?
            .into_iter()
            .map(|(k, d)| (handle(&k), d))
            .collect();
        sessions.sort_by_key(|(_, d)| std::cmp::Reverse(d.created_at));
        Ok(sessions)
    }

    /// Ends one of the user's sessions by handle; `false` if the user has no such session.
    pub async fn revoke(&self, user_id: i64, wanted: &str) -> Result<bool, SessionError> {
        for (k, _) in self.for_user(user_id).await? {
            if handle(&k) == wanted {
                self.delete(&k).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Ends those of a user's sessions that `matches` picks; returns how many.
    pub async fn revoke_where(
        &self,
        user_id: i64,
        matches: impl Fn(&SessionData) -> bool,
    ) -> Result<usize, SessionError> {
        let mut ended = 0;
        for (k, data) in self.for_user(user_id).await? {
            if matches(&data) {
                self.delete(&k).await?;
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Records `id` (of kind `kind`) for `ttl`; `true` the first time, `false` while it is
    /// still recorded: a replay store shared by every instance, in Redis or the database
    /// like the sessions. The id is stored as a keyed hash, like a session's.
    pub async fn first_sighting(
        &self,
        kind: &str,
        id: &str,
        ttl: Duration,
    ) -> Result<bool, SessionError> {
        let k = self.newest_key(kind, id);
        match &self.backend {
            Backend::Database(db) => {
                let expires_at = Utc::now() + chrono::Duration::from_std(ttl).map_err(err)?;
                session_db::insert_new(db, &k, expires_at)
                    .await
                    .map_err(err)
            }
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                let set: Option<String> = redis::cmd("SET")
                    .arg(self.redis_key(&k))
                    .arg("1")
                    .arg("NX")
                    .arg("EX")
                    .arg(ttl.as_secs().max(1))
                    .query_async(&mut conn)
                    .await
                    .map_err(err)?;
                Ok(set.is_some())
            }
        }
    }

    /// The users who have a live session, in id order.
    pub async fn users_with_sessions(&self) -> Result<Vec<i64>, SessionError> {
        match &self.backend {
            Backend::Database(db) => session_db::users_with_sessions(db).await.map_err(err),
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                let prefix = format!("{}:user-sessions:", self.prefix);
                let mut ids = Vec::new();
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{prefix}*"))
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn)
                        .await
                        .map_err(err)?;
                    ids.extend(
                        keys.iter()
                            .filter_map(|k| k.strip_prefix(&prefix))
                            .filter_map(|id| id.parse::<i64>().ok()),
                    );
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                ids.sort_unstable();
                ids.dedup();
                // An index outlives its last session by up to a session lifetime: keep only
                // users with a session still there (reading one cleans the index of the rest).
                let mut live = Vec::with_capacity(ids.len());
                for id in ids {
                    if !self.for_user(id).await?.is_empty() {
                        live.push(id);
                    }
                }
                Ok(live)
            }
        }
    }

    /// The absolute lifetime of a session.
    pub fn lifetime(&self) -> Duration {
        self.ttl
    }

    /// Keeps `value` under (`kind`, `id`) for `ttl`, in Redis or the database like the
    /// sessions, keyed by a keyed hash of the id: what a later request must look up by
    /// something other than a session id (a provider's `sid`).
    pub async fn remember(
        &self,
        kind: &str,
        id: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), SessionError> {
        let k = self.newest_key(kind, id);
        match &self.backend {
            Backend::Database(db) => {
                let expires_at = Utc::now() + chrono::Duration::from_std(ttl).map_err(err)?;
                session_db::put(db, &k, &serde_json::json!({ "value": value }), expires_at)
                    .await
                    .map_err(err)
            }
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                conn.set_ex::<_, _, ()>(self.redis_key(&k), value, ttl.as_secs().max(1))
                    .await
                    .map_err(err)
            }
        }
    }

    /// What [`Sessions::remember`] kept under (`kind`, `id`), under any of the session keys.
    pub async fn recall(&self, kind: &str, id: &str) -> Result<Option<String>, SessionError> {
        for k in self.storage_keys(kind, id) {
            let found = match &self.backend {
                Backend::Database(db) => session_db::get(db, &k)
                    .await
                    .map_err(err)?
                    .and_then(|v| v["value"].as_str().map(str::to_string)),
                Backend::Redis(redis) => {
                    let mut conn = redis.connection().await.map_err(err)?;
                    conn.get::<_, Option<String>>(self.redis_key(&k))
                        .await
                        .map_err(err)?
                }
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Ends every session of a user; returns how many there were.
    pub async fn revoke_all(&self, user_id: i64) -> Result<usize, SessionError> {
        self.revoke_where(user_id, |_| true).await
    }

    async fn read(&self, k: &str) -> Result<Option<SessionData>, SessionError> {
        let value = match &self.backend {
            Backend::Database(db) => session_db::get(db, k).await.map_err(err)?,
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                let raw: Option<String> = conn.get(self.redis_key(k)).await.map_err(err)?;
                raw.and_then(|r| serde_json::from_str(&r).ok())
            }
        };
        // A record that no longer parses (an older format) is treated as signed out.
        Ok(value.and_then(|v| serde_json::from_value(v).ok()))
    }

    async fn delete(&self, k: &str) -> Result<(), SessionError> {
        match &self.backend {
            Backend::Database(db) => session_db::delete(db, k).await.map_err(err),
            Backend::Redis(redis) => {
                let mut conn = redis.connection().await.map_err(err)?;
                conn.del::<_, ()>(self.redis_key(k)).await.map_err(err)
            }
        }
    }
}

/// A session's public handle: a hash of its storage key, which is itself keyed; neither the
/// id nor the storage key can be recovered from it.
fn handle(storage_key: &str) -> String {
    hex::encode(&Sha256::digest(storage_key.as_bytes())[..16])
}

fn err(e: impl std::fmt::Display) -> SessionError {
    SessionError(e.to_string())
}
