//! Per-route rate limits, shared across instances through Redis, in-process without it.
//! The rule of a route is in the route table; the layer only counts (the session, the token
//! and the client address were found by the layers before it).
//!
//! Fixed windows, as Flask-Limiter's default strategy: one atomic `INCRBY` (+ `EXPIRE` on the first hit) per
//! request in a Lua script, which makes `X-RateLimit-Remaining` and `-Reset` exact and costs
//! one round trip. The price is that a client may spend up to twice the limit across a window
//! boundary; for these limits (abuse brakes, not quotas) that is acceptable.
//!
//! Rules with budgets of 100 or more a window (`default`, `api` and the searches by default;
//! not the sign-in rules) are counted in batches instead: an instance lets up to `slack` hits
//! through on its own, knowing the shared count as of its last report, and reports them with
//! one `INCRBY` when the slack is spent, when a second has passed, or when the known count
//! nears the limit (from there on every hit asks Redis, as small rules always do). Most
//! requests then make no round trip. The error is bounded and one-sided: each instance may
//! let through at most its slack (1% of the limit, at most 50) beyond the limit before it
//! learns it was reached, so N instances allow at most N × slack more a window. Counting
//! stays shared.
//!
//! Redis unreachable: the choice is made per rule, in [`when_redis_down`], and logged (at most
//! once a minute). No rule fails open: a brake that vanishes when a cache does is no brake.
//! Sign-in rules fail closed (503), everything else counts on this instance.
//!
//! Over 400 lines with its unit tests (about 115 lines at the end).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_ip::ClientIp;
use super::error::AppError;
use super::principal::Principal;
use super::routes::RouteMeta;
use crate::config::RateLimit;
use crate::redis_client::RedisHandle;
use crate::state::AppState;
use crate::store::AuditEvent;

const SCRIPT: &str = r"
local by = tonumber(ARGV[2])
local n = redis.call('INCRBY', KEYS[1], by)
if n == by then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
";

/// A signed-in request under a rule counted hit by hit: its session read and its hit counted
/// in one round trip. The counter's key depends on the session (the user's id), so the script
/// builds it: a key not declared in `KEYS`, which standalone Redis (what Gatehouse supports)
/// allows. The user id is read from the record's one `"user_id":N` (a quote inside a JSON
/// string is escaped, so no string value can fake it); a record without one counts against
/// the client address instead, and the caller, finding that key is not the one it wants,
/// counts again the usual way.
const SESSION_SCRIPT: &str = r#"
local found, raw = 0, ''
for i, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v then found, raw = i, v break end
end
local who = ARGV[4]
local uid = string.match(raw, '"user_id":(%-?%d+)[,}]')
if uid then who = 'user:' .. uid end
local counter = ARGV[1] .. who .. ARGV[2]
local n = redis.call('INCR', counter)
if n == 1 then redis.call('EXPIRE', counter, ARGV[3]) end
return {found, raw, n, who}
"#;

/// A hit already counted by [`RateLimiter::hit_with_session`], handed to the limiter layer
/// as a request extension: the key it was counted against and the decision.
#[derive(Debug, Clone)]
pub struct Counted {
    pub rule: &'static str,
    pub key: String,
    pub decision: Decision,
}

/// What [`RateLimiter::hit_with_session`] read: the session record (the index of the key it
/// was under, and its text) when there was one, and the hit.
pub struct SessionAndHit {
    pub session: Option<(usize, String)>,
    pub counted: Counted,
}

/// Rules allowing at least this many requests a window are counted in batches.
const BATCH_FROM: u32 = 100;
/// The most hits an instance lets through before reporting them.
const BATCH_MAX: u64 = 50;
/// Batches are reported at least this often, in seconds, so instances see each other's counts.
const BATCH_EVERY: i64 = 1;

/// How many hits an instance may let through on its own under a rule of `limit`.
fn slack(limit: u32) -> u64 {
    if limit < BATCH_FROM {
        0
    } else {
        (u64::from(limit) / 100).clamp(1, BATCH_MAX)
    }
}

/// A rule's window length in seconds, the time now and the current window's number.
fn window_of(limit: RateLimit) -> (i64, i64, i64) {
    let per = i64::try_from(limit.per.as_secs()).unwrap_or(60).max(1);
    let now = chrono::Utc::now().timestamp();
    (per, now, now / per)
}

/// The answer for the `count`th hit of a window.
fn decision(limit: RateLimit, count: u64, window: i64, per: i64) -> Decision {
    let max = u64::from(limit.count);
    Decision {
        allowed: count <= max,
        limit: limit.count,
        remaining: u32::try_from(max.saturating_sub(count)).unwrap_or(0),
        reset: (window + 1) * per,
        store_down: false,
    }
}

/// One batched counter on this instance.
struct Batch {
    /// Hits let through and not yet reported.
    pending: u64,
    /// The shared count as of the last report; `None` before the first.
    known: Option<u64>,
    reported_at: i64,
    /// Epoch second after which the entry is no longer needed.
    expires: i64,
}

/// The in-process map is swept once it holds more entries than this.
const LOCAL_MAX: usize = 50_000;

/// How long a refused request is told to wait while Redis is down, in seconds.
const REDIS_DOWN_RETRY: i64 = 30;

/// What a rule does while Redis cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenRedisDown {
    /// Count on this instance alone: each instance allows the full limit, so N instances
    /// allow N times it, which is still a brake.
    CountHere,
    /// Refuse with 503 until Redis is back.
    Refuse,
}

/// The per-rule choice. `auth.login`, `auth.callback` and `auth.backchannel` refuse: with
/// Redis configured, login transactions and sessions live in the same Redis, so a sign-in (or
/// a back-channel logout, which the provider retries) could not complete anyway;
/// refusing up front answers clearly instead of sending people through the provider to an
/// error, and the callback (which spends provider round trips) is never run unbraked.
/// Every other rule guards reads whose users are already signed in, or anonymous pages;
/// counting per instance keeps them braked and available. (`auth.backchannel.issuer` is
/// only reached through `auth.backchannel`, which has refused already.)
pub fn when_redis_down(rule: &str) -> WhenRedisDown {
    match rule {
        "auth.login" | "auth.callback" | "auth.backchannel" => WhenRedisDown::Refuse,
        _ => WhenRedisDown::CountHere,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// When the window ends, in epoch seconds.
    pub reset: i64,
    /// Refused because the shared counters cannot be reached and the rule fails closed.
    pub store_down: bool,
}

pub struct RateLimiter {
    rules: BTreeMap<String, RateLimit>,
    redis: Option<Arc<RedisHandle>>,
    prefix: String,
    script: redis::Script,
    session_script: redis::Script,
    local: Mutex<LocalCounters>,
    batches: Mutex<HashMap<String, Batch>>,
    last_warning: AtomicI64,
}

impl RateLimiter {
    pub fn new(
        rules: BTreeMap<String, RateLimit>,
        redis: Option<Arc<RedisHandle>>,
        prefix: &str,
    ) -> Self {
        RateLimiter {
            rules,
            redis,
            prefix: prefix.to_string(),
            script: redis::Script::new(SCRIPT),
            session_script: redis::Script::new(SESSION_SCRIPT),
            local: Mutex::new(LocalCounters::default()),
            batches: Mutex::new(HashMap::new()),
            last_warning: AtomicI64::new(0),
        }
    }

    /// Whether a request under `rule` costs a round trip of its own, so that reading its
    /// session in the same one pays ([`RateLimiter::hit_with_session`]).
    pub fn counts_each_hit(&self, rule: &str) -> bool {
        self.redis.is_some() && self.rules.get(rule).is_some_and(|l| slack(l.count) == 0)
    }

    /// Reads a session (stored under one of `session_keys`, in Redis) and counts the request
    /// under `rule` against its user, or against `fallback` when there is no session, in one
    /// round trip. `None` when the rule is unknown, is counted in batches, or Redis is not
    /// configured or fails: the caller then goes the usual way, which handles each failure.
    pub async fn hit_with_session(
        &self,
        rule: &'static str,
        session_keys: &[String],
        fallback: &str,
    ) -> Option<SessionAndHit> {
        if !self.counts_each_hit(rule) {
            return None;
        }
        let limit = *self.rules.get(rule)?;
        let redis = self.redis.as_ref()?;
        let (per, _, window) = window_of(limit);
        let mut conn = redis.connection().await.ok()?;
        let (found, raw, count, who) = self
            .session_script
            .key(session_keys)
            .arg(format!("{}:rl:{rule}:", self.prefix))
            .arg(format!(":{window}"))
            .arg(per)
            .arg(fallback)
            .invoke_async::<(usize, String, u64, String)>(&mut conn)
            .await
            .ok()?;
        Some(SessionAndHit {
            session: (found > 0).then(|| (found - 1, raw)),
            counted: Counted {
                rule,
                key: who,
                decision: decision(limit, count, window, per),
            },
        })
    }

    /// Counts one request of `key` against `rule`.
    pub async fn hit(&self, rule: &str, key: &str) -> Option<Decision> {
        let limit = *self.rules.get(rule)?;
        let (per, now, window) = window_of(limit);
        let counter = format!("{}:rl:{rule}:{key}:{window}", self.prefix);
        let max = u64::from(limit.count);
        let expires = (window + 1) * per;
        let count = match &self.redis {
            Some(redis) => match self
                .hit_batched(redis, &counter, per, slack(limit.count), max, expires, now)
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    let choice = when_redis_down(rule);
                    if now - self.last_warning.swap(now, Ordering::Relaxed) >= 60 {
                        tracing::warn!(
                            error = %e,
                            rule,
                            "rate limits: Redis unreachable; sign-in rules refuse, others count in-process"
                        );
                    }
                    match choice {
                        WhenRedisDown::CountHere => self.hit_local(&counter, expires, now),
                        WhenRedisDown::Refuse => {
                            return Some(Decision {
                                allowed: false,
                                limit: limit.count,
                                remaining: 0,
                                reset: now + REDIS_DOWN_RETRY,
                                store_down: true,
                            });
                        }
                    }
                }
            },
            None => self.hit_local(&counter, expires, now),
        };
        Some(decision(limit, count, window, per))
    }

    /// One hit on a shared counter: let through here while the slack and the known count
    /// allow, else reported with the hits pending (the count as Redis has it then).
    #[allow(clippy::too_many_arguments)]
    async fn hit_batched(
        &self,
        redis: &RedisHandle,
        counter: &str,
        per: i64,
        slack: u64,
        max: u64,
        expires: i64,
        now: i64,
    ) -> Result<u64, String> {
        if slack == 0 {
            return self.hit_redis(redis, counter, per, 1).await;
        }
        let report = {
            let mut batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
            if batches.len() > LOCAL_MAX {
                batches.retain(|_, b| b.expires > now);
            }
            let batch = batches.entry(counter.to_string()).or_insert(Batch {
                pending: 0,
                known: None,
                reported_at: now,
                expires,
            });
            match batch.known {
                Some(known)
                    if batch.pending < slack
                        && now - batch.reported_at < BATCH_EVERY
                        && known + batch.pending < max =>
                {
                    batch.pending += 1;
                    return Ok(known + batch.pending);
                }
                _ => {
                    let report = batch.pending + 1;
                    batch.pending = 0;
                    batch.reported_at = now;
                    report
                }
            }
        };
        let total = self.hit_redis(redis, counter, per, report).await?;
        let mut batches = self.batches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(batch) = batches.get_mut(counter) {
            batch.known = Some(batch.known.map_or(total, |k| k.max(total)));
        }
        Ok(total)
    }

    async fn hit_redis(
        &self,
        redis: &RedisHandle,
        counter: &str,
        per: i64,
        by: u64,
    ) -> Result<u64, String> {
        let mut conn = redis.connection().await.map_err(|e| e.to_string())?;
        self.script
            .key(counter)
            .arg(per)
            .arg(by)
            .invoke_async::<u64>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    }

    fn hit_local(&self, counter: &str, expires: i64, now: i64) -> u64 {
        let Ok(mut local) = self.local.lock() else {
            return 0;
        };
        local.count(counter, expires, now)
    }
}

/// The in-process counters (and the audit markers of [`RateLimiter::already_reported`]),
/// each with the end of its own window.
#[derive(Default)]
struct LocalCounters {
    entries: HashMap<String, LocalEntry>,
    /// When the last sweep ran, in epoch seconds.
    swept_at: i64,
}

struct LocalEntry {
    count: u64,
    /// Epoch second after which the entry is no longer needed.
    expires: i64,
}

impl LocalCounters {
    /// Counts one hit of `key`, whose window ends at `expires`.
    fn count(&mut self, key: &str, expires: i64, now: i64) -> u64 {
        self.sweep(now);
        let entry = self
            .entries
            .entry(key.to_string())
            .or_insert(LocalEntry { count: 0, expires });
        entry.count += 1;
        entry.count
    }

    /// Drops expired entries once the map is large. Each entry is judged by its own expiry:
    /// rules have windows of different lengths, so an hourly counter is still live when the
    /// minute rule that triggered the sweep has moved on. A map that stays large with only
    /// live entries is swept at most once a second, not on every request.
    fn sweep(&mut self, now: i64) {
        if self.entries.len() > LOCAL_MAX && now > self.swept_at {
            self.entries.retain(|_, e| e.expires > now);
            self.swept_at = now;
        }
    }

    /// Records `key` until `expires`; whether it was already there.
    fn mark(&mut self, key: &str, expires: i64, now: i64) -> bool {
        self.sweep(now);
        self.entries
            .insert(key.to_string(), LocalEntry { count: 1, expires })
            .is_some()
    }
}

fn set_headers(headers: &mut HeaderMap, d: &Decision) {
    for (name, value) in [
        ("x-ratelimit-limit", d.limit.to_string()),
        ("x-ratelimit-remaining", d.remaining.to_string()),
        ("x-ratelimit-reset", d.reset.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
}

/// Who a request counts against: the token's principal on the API, the signed-in user on
/// pages, else the client address.
fn key_of(request: &Request) -> (String, Option<i64>) {
    let ext = request.extensions();
    if let Some(p) = ext.get::<Principal>() {
        return (p.key.clone(), p.user_id);
    }
    (address_key(request), None)
}

/// What a request counts against when no one is signed in: its client address.
pub fn address_key(request: &Request) -> String {
    request
        .extensions()
        .get::<ClientIp>()
        .map_or_else(|| "ip:unknown".to_string(), ClientIp::rate_key)
}

/// The layer: count the request against its route's rule, and answer 429 past the limit.
pub async fn enforce(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(rule) = request.extensions().get::<RouteMeta>().and_then(|m| m.rule) else {
        return next.run(request).await;
    };
    let (key, user_id) = key_of(&request);
    // Counted already with the session's read, if against this rule and this key (a session
    // that turned out ended or expired counts against the address, counted here).
    let counted = request
        .extensions_mut()
        .remove::<Counted>()
        .filter(|c| c.rule == rule && c.key == key);
    let decision = match counted {
        Some(c) => c.decision,
        None => match state.limiter.hit(rule, &key).await {
            Some(d) => d,
            None => return next.run(request).await,
        },
    };
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.clone());
    let path = request.uri().path().to_string();
    if decision.store_down {
        tracing::warn!(client_ip = %ip, path = %path, rule, "refused: rate-limit store unreachable");
        return AppError::UnavailableFor {
            retry_after: REDIS_DOWN_RETRY,
            message: "Sign-in is briefly unavailable: its shared store cannot be reached. \
                      Try again in a minute."
                .into(),
        }
        .into_response();
    }
    if !decision.allowed {
        let limit = state
            .config
            .rate_limits
            .get(rule)
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::warn!(client_ip = %ip, path = %path, rule, limit = %limit, "rate limit exceeded");
        metrics::counter!("gatehouse_rate_limit_refusals_total", "rule" => rule).increment(1);
        // One audit row per key and window: the first refusal, not every one of a flood.
        if decision.remaining == 0 && !state.limiter.already_reported(rule, &key, decision.reset) {
            let _ = crate::store::audit::record(
                &state.store.db(),
                &AuditEvent {
                    kind: "rate_limited",
                    outcome: "refused",
                    actor_id: user_id,
                    client_ip: Some(ip.clone()),
                    details: json!({ "rule": rule, "limit": limit, "path": path }),
                    ..AuditEvent::default()
                },
            )
            .await;
        }
        let retry_after = (decision.reset - chrono::Utc::now().timestamp()).max(1);
        let mut response = AppError::RateLimited {
            retry_after,
            message: format!(
                "Too many requests: the limit here is {limit}. Try again in {retry_after} seconds."
            ),
        }
        .into_response();
        set_headers(response.headers_mut(), &decision);
        return response;
    }
    let mut response = next.run(request).await;
    set_headers(response.headers_mut(), &decision);
    response
}

impl RateLimiter {
    /// Whether this window's first refusal for the key was already audited (in-process memory
    /// suffices: at worst each instance audits one refusal per window).
    fn already_reported(&self, rule: &str, key: &str, reset: i64) -> bool {
        let marker = format!("reported:{rule}:{key}:{reset}");
        let Ok(mut local) = self.local.lock() else {
            return true;
        };
        local.mark(&marker, reset, chrono::Utc::now().timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_from_100_are_counted_in_batches_of_at_most_one_percent() {
        assert_eq!(slack(99), 0, "small rules ask Redis every time");
        assert_eq!(slack(5), 0);
        assert_eq!(slack(100), 1);
        assert_eq!(slack(600), 6);
        assert_eq!(slack(1_999), 19);
        assert_eq!(slack(100_000_000), BATCH_MAX);
    }

    /// Against the machine's Redis (the test command starts it), like the integration tests.
    #[tokio::test]
    async fn one_script_reads_the_session_and_counts_against_its_user_or_the_address() {
        let url = std::env::var("GATEHOUSE_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let url = crate::config::RedisUrl::parse(url.into()).expect("redis url");
        let redis = Arc::new(RedisHandle::new(&url).expect("redis"));
        let prefix = format!("unit-{}", uuid::Uuid::new_v4().simple());
        let rules = crate::config::values::rate_limits(Some("profile=3/hour")).expect("rules");
        let limiter = RateLimiter::new(rules, Some(redis.clone()), &prefix);
        let mut conn = redis.connection().await.expect("connection");
        let key = |k: &str| format!("{prefix}:{k}");
        // Written as the session store writes it.
        let alice = crate::auth::session::SessionData {
            user_id: 42,
            email: Some("a\"user_id\":7@example.com".into()),
            csrf: "x".into(),
            created_at: 0,
            last_seen: 0,
            id_token: None,
            auth_time: None,
            client_ip: None,
            user_agent: None,
            flash: None,
        };
        let alice = alice.record().expect("record").to_string();
        for (k, v) in [("s-alice", alice.as_str()), ("s-odd", r#"{"csrf":"x"}"#)] {
            redis::cmd("SET")
                .arg(key(k))
                .arg(v)
                .arg("EX")
                .arg(60)
                .query_async::<()>(&mut conn)
                .await
                .expect("set");
        }
        let hit = |keys: Vec<String>| {
            let limiter = &limiter;
            async move {
                limiter
                    .hit_with_session("profile", &keys, "ip:192.0.2.1")
                    .await
                    .expect("counted")
            }
        };

        // Found under the second key (an older secret's): counted against the user.
        let read = hit(vec![key("absent"), key("s-alice")]).await;
        assert_eq!(read.session.as_ref().map(|(i, _)| *i), Some(1));
        assert_eq!(read.counted.key, "user:42");
        assert_eq!(read.counted.decision.remaining, 2);
        let read = hit(vec![key("s-alice")]).await;
        assert_eq!(read.counted.decision.remaining, 1);
        // No session: the address pays, on its own counter.
        let read = hit(vec![key("absent")]).await;
        assert!(read.session.is_none());
        assert_eq!(read.counted.key, "ip:192.0.2.1");
        assert_eq!(read.counted.decision.remaining, 2);
        // A record of another shape is still handed back, but its hit went to the address.
        let read = hit(vec![key("s-odd")]).await;
        assert!(read.session.is_some());
        assert_eq!(read.counted.key, "ip:192.0.2.1");
        // Past the budget, refused like any hit.
        let read = hit(vec![key("s-alice")]).await;
        assert_eq!(
            (
                read.counted.decision.allowed,
                read.counted.decision.remaining
            ),
            (true, 0)
        );
        let read = hit(vec![key("s-alice")]).await;
        assert!(!read.counted.decision.allowed);
        // Rules counted in batches, and unknown rules, are not done this way.
        assert!(
            limiter
                .hit_with_session("default", &[key("s-alice")], "ip:192.0.2.1")
                .await
                .is_none()
        );
        assert!(!limiter.counts_each_hit("no.such.rule"));
        let local = RateLimiter::new(
            crate::config::values::rate_limits(None).expect("rules"),
            None,
            &prefix,
        );
        assert!(!local.counts_each_hit("profile"));
    }

    #[tokio::test]
    async fn in_process_windows_count_and_refuse() {
        let rules = crate::config::values::rate_limits(Some("auth.login=3/minute")).expect("rules");
        let limiter = RateLimiter::new(rules, None, "t");
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(limiter.hit("auth.login", "ip:1.2.3.4").await.expect("rule"));
        }
        assert_eq!(
            seen.iter()
                .map(|d| (d.allowed, d.remaining))
                .collect::<Vec<_>>(),
            vec![(true, 2), (true, 1), (true, 0), (false, 0), (false, 0)]
        );
        // Another client has its own budget.
        assert!(
            limiter
                .hit("auth.login", "ip:5.6.7.8")
                .await
                .expect("rule")
                .allowed
        );
        assert!(seen[0].reset > chrono::Utc::now().timestamp());
        assert!(limiter.hit("no.such.rule", "x").await.is_none());
    }

    #[test]
    fn every_rule_has_a_deliberate_redis_down_choice() {
        let rules = crate::config::values::rate_limits(None).expect("defaults");
        let choices: Vec<(&str, WhenRedisDown)> = rules
            .keys()
            .map(|r| (r.as_str(), when_redis_down(r)))
            .collect();
        use WhenRedisDown::{CountHere, Refuse};
        assert_eq!(
            choices,
            vec![
                ("api", CountHere),
                ("auth.backchannel", Refuse),
                ("auth.backchannel.issuer", CountHere),
                ("auth.callback", Refuse),
                ("auth.login", Refuse),
                ("default", CountHere),
                ("gh.search", CountHere),
                ("gh.search_json", CountHere),
                ("lookup", CountHere),
                ("profile", CountHere),
            ]
        );
    }

    #[tokio::test]
    async fn with_redis_down_sign_in_refuses_and_the_rest_counts_here() {
        let rules = crate::config::values::rate_limits(Some("default=2/hour")).expect("rules");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let url = crate::config::RedisUrl::parse(format!("redis://127.0.0.1:{port}").into())
            .expect("url");
        let redis = RedisHandle::new(&url).expect("client");
        let limiter = RateLimiter::new(rules, Some(Arc::new(redis)), "t");
        let login = limiter.hit("auth.login", "ip:1").await.expect("rule");
        assert!(!login.allowed && login.store_down, "{login:?}");
        let seen: Vec<bool> = [
            limiter.hit("default", "ip:1").await,
            limiter.hit("default", "ip:1").await,
            limiter.hit("default", "ip:1").await,
        ]
        .iter()
        .map(|d| d.expect("rule").allowed)
        .collect();
        assert_eq!(seen, vec![true, true, false]);
    }

    #[tokio::test]
    async fn an_hourly_counter_survives_a_sweep_made_by_another_rule() {
        let rules =
            crate::config::values::rate_limits(Some("default=5/hour,lookup=1000000/minute"))
                .expect("rules");
        let limiter = RateLimiter::new(rules, None, "t");
        let first = limiter.hit("default", "ip:1.2.3.4").await.expect("rule");
        assert_eq!(first.remaining, 4);
        // Enough per-minute counters of other clients to make the map sweep itself.
        for i in 0..=LOCAL_MAX {
            limiter
                .hit("lookup", &format!("ip:{i}"))
                .await
                .expect("rule");
        }
        let second = limiter.hit("default", "ip:1.2.3.4").await.expect("rule");
        assert_eq!(second.remaining, 3, "the hourly count was kept");
    }

    #[test]
    fn a_sweep_drops_expired_entries_and_keeps_live_ones() {
        let mut local = LocalCounters::default();
        let now = 1_700_000_000;
        local.count("hourly", now + 3600, now);
        for i in 0..LOCAL_MAX {
            local.count(&format!("minute:{i}"), now + 60, now);
        }
        assert!(!local.mark("reported:minute", now + 60, now));
        // A minute later every per-minute entry has expired; the next hit sweeps them.
        let later = now + 61;
        assert_eq!(local.count("hourly", now + 3600, later), 2);
        assert_eq!(
            local.entries.keys().map(String::as_str).collect::<Vec<_>>(),
            vec!["hourly"]
        );
        // The marker went with its window: the next window's first refusal is audited again.
        assert!(!local.mark("reported:minute", later + 60, later));
    }
}
