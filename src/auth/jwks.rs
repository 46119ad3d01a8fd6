//! The one JWKS cache: sign-in (ID tokens) and the Bearer API (access tokens) both take their
//! verification keys from here.
//!
//! Written here rather than taken from a crate because the refresh rule is ours: keys are
//! found by `kid` with no I/O; an unknown `kid` refetches the set (key rotation) but at most
//! once per cool-down, so a flood of tokens with random `kid`s cannot become a flood against
//! the identity provider. The set also has a maximum age (the JWKS answer's
//! `Cache-Control: max-age`, else an hour, never more than a day): a key the provider
//! withdrew, after a compromise say, stops being trusted then, even while tokens keep
//! naming it. JWK parsing is `jsonwebtoken`'s; each key is parsed into aws-lc-rs's form once,
//! when the set is fetched, so verifying a token does no key parsing (see `verify`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use serde::Deserialize;

/// Signature algorithms Gatehouse accepts. Never `none`, never HMAC (a public key is no secret).
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[Algorithm::RS256, Algorithm::ES256];

/// Least time between two fetches caused by unknown keys.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);
/// Least time between two fetches after a failed one.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);
/// How long a key set is used when its answer says nothing about caching.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// The longest a key set is used, whatever its answer says.
const MAX_MAX_AGE: Duration = Duration::from_secs(86_400);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("no key with kid {0:?} in the provider's JWKS")]
    UnknownKey(Option<String>),
    #[error("the key {0:?} is not usable with {1:?}")]
    AlgorithmMismatch(Option<String>, Algorithm),
    #[error("the provider's JWKS could not be fetched: {0}")]
    Unavailable(String),
}

pub struct VerifyingKey {
    pub kid: Option<String>,
    pub algorithm: Algorithm,
    /// Parsed once; RS256 keys below 2048 bits fail every verification.
    key: ParsedPublicKey,
}

impl VerifyingKey {
    /// Whether `signature` is this key's signature of `message` under its algorithm.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
}

/// The JWK's public key in aws-lc-rs's parsed form, for the algorithm its type is accepted for.
fn parse_public_key(params: &AlgorithmParameters) -> Option<(Algorithm, ParsedPublicKey)> {
    let bytes = |b64: &str| URL_SAFE_NO_PAD.decode(b64).ok();
    match params {
        AlgorithmParameters::RSA(rsa) => {
            let components = RsaPublicKeyComponents {
                n: bytes(&rsa.n)?,
                e: bytes(&rsa.e)?,
            };
            let key = components
                .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
                .ok()?;
            Some((Algorithm::RS256, key))
        }
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            let (x, y) = (bytes(&ec.x)?, bytes(&ec.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            // The uncompressed point encoding aws-lc-rs takes for ECDSA public keys.
            let point = [&[0x04][..], &x, &y].concat();
            let key = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).ok()?;
            Some((Algorithm::ES256, key))
        }
        _ => None,
    }
}

#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    /// Keys published without a `kid`; usable only when the set holds exactly one key.
    without_kid: Vec<Arc<VerifyingKey>>,
    /// When this set is due for a refetch; `None` for the empty set before the first fetch.
    expires: Option<Instant>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<Arc<VerifyingKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.by_kid.len() + self.without_kid.len() == 1 => self
                .without_kid
                .first()
                .or_else(|| self.by_kid.values().next())
                .cloned(),
            None => None,
        }
    }
}

pub struct JwksCache {
    uri: String,
    http: reqwest::Client,
    cooldown: Duration,
    keys: RwLock<Arc<KeySet>>,
    /// When the last fetch was attempted and whether it failed; held across the fetch so
    /// concurrent misses wait for one request instead of each sending their own.
    last_fetch: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl JwksCache {
    pub fn new(uri: impl Into<String>, http: reqwest::Client, cooldown: Duration) -> Self {
        JwksCache {
            uri: uri.into(),
            http,
            cooldown,
            keys: RwLock::new(Arc::new(KeySet::default())),
            last_fetch: tokio::sync::Mutex::new(None),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn set(&self) -> Arc<KeySet> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the value is whole.
        match self.keys.read() {
            Ok(k) => Arc::clone(&k),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// A key of a set that is not past its maximum age.
    fn cached(&self, kid: Option<&str>) -> Option<Arc<VerifyingKey>> {
        let keys = self.set();
        if keys.expires.is_some_and(|at| Instant::now() >= at) {
            return None;
        }
        keys.find(kid)
    }

    /// Whether `key` is still the one the current set holds under its `kid`, and the set is
    /// not past its maximum age: what a token verified with it earlier still rests on. A
    /// refetched set holds new values even for keys it kept, so this answers no after every
    /// fetch: conservative, and fetches are rare.
    pub fn holds(&self, key: &Arc<VerifyingKey>) -> bool {
        self.cached(key.kid.as_deref())
            .is_some_and(|current| Arc::ptr_eq(&current, key))
    }

    /// The key for a token header's `kid` and `alg`; fetches only as the cool-down allows.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Arc<VerifyingKey>, JwksError> {
        let key = match self.cached(kid) {
            Some(key) => key,
            None => self.refresh_for(kid).await?,
        };
        if key.algorithm != algorithm {
            return Err(JwksError::AlgorithmMismatch(key.kid.clone(), algorithm));
        }
        Ok(key)
    }

    async fn refresh_for(&self, kid: Option<&str>) -> Result<Arc<VerifyingKey>, JwksError> {
        let mut last = self.last_fetch.lock().await;
        // Another request may have fetched while this one waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let expired = self.set().expires.is_some_and(|at| Instant::now() >= at);
        if let Some((at, failed)) = *last {
            let wait = if failed {
                RETRY_AFTER_FAILURE
            } else {
                self.cooldown
            };
            // An expired set is refetched at once (unless the last try just failed): its
            // age, not a token, asks for it, so this cannot be driven by an attacker.
            if at.elapsed() < wait && (failed || !expired) {
                if let Some(key) = self.set().find(kid).filter(|_| failed) {
                    return Ok(key);
                }
                return Err(if failed {
                    JwksError::Unavailable("the last fetch failed; retrying shortly".into())
                } else {
                    JwksError::UnknownKey(kid.map(str::to_string))
                });
            }
        }
        let fetched = self.fetch().await;
        *last = Some((Instant::now(), fetched.is_err()));
        let set = match fetched {
            Ok(set) => set,
            // An expired set whose refresh failed is still the best knowledge there is: the
            // provider being down must not lock everyone out; the next try is in a moment.
            Err(e) => {
                let stale = self.set();
                return match stale.find(kid) {
                    Some(key) => {
                        tracing::warn!(jwks = %self.uri, error = %e, "refreshing expired signing keys failed; using the old ones");
                        Ok(key)
                    }
                    None => Err(e),
                };
            }
        };
        tracing::info!(jwks = %self.uri, keys = set.by_kid.len() + set.without_kid.len(), "fetched signing keys");
        let set = Arc::new(set);
        match self.keys.write() {
            Ok(mut k) => *k = Arc::clone(&set),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&set),
        }
        set.find(kid)
            .ok_or_else(|| JwksError::UnknownKey(kid.map(str::to_string)))
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let fetched = self.fetch_once().await;
        let outcome = if fetched.is_ok() { "ok" } else { "error" };
        metrics::counter!("gatehouse_jwks_fetches_total", "outcome" => outcome).increment(1);
        fetched
    }

    async fn fetch_once(&self) -> Result<KeySet, JwksError> {
        #[derive(Deserialize)]
        struct Document {
            keys: Vec<serde_json::Value>,
        }
        let unavailable = |e: String| JwksError::Unavailable(format!("{}: {e}", self.uri));
        let response = crate::telemetry::send(self.http.get(&self.uri))
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("answered {}", response.status())));
        }
        let max_age = max_age(response.headers()).max(self.cooldown.max(Duration::from_secs(1)));
        let doc: Document = response
            .json()
            .await
            .map_err(|e| unavailable(format!("not a JWKS ({e})")))?;
        let mut set = parse_keys(doc.keys);
        set.expires = Some(Instant::now() + max_age);
        Ok(set)
    }
}

/// How long a JWKS answer may be used: its `Cache-Control: max-age`, else an hour, capped
/// at a day (`no-store`/`no-cache` count as zero, and the caller's floor applies).
fn max_age(headers: &reqwest::header::HeaderMap) -> Duration {
    let Some(value) = headers
        .get(reqwest::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
    else {
        return DEFAULT_MAX_AGE;
    };
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Duration::ZERO;
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds.trim_matches('"').parse::<u64>().ok();
        }
    }
    age.map_or(DEFAULT_MAX_AGE, |s| Duration::from_secs(s).min(MAX_MAX_AGE))
}

/// Usable signing keys of a JWKS; encryption keys and unsupported types are skipped, so one
/// odd key does not make the others unusable.
fn parse_keys(keys: Vec<serde_json::Value>) -> KeySet {
    let mut set = KeySet::default();
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw) else {
            continue;
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != jsonwebtoken::jwk::PublicKeyUse::Signature)
        {
            continue;
        }
        let Some((algorithm, key)) = parse_public_key(&jwk.algorithm) else {
            continue;
        };
        // A key that names its algorithm must name the one its type is accepted for.
        if jwk
            .common
            .key_algorithm
            .is_some_and(|declared| format!("{declared:?}") != format!("{algorithm:?}"))
        {
            continue;
        }
        let entry = Arc::new(VerifyingKey {
            kid: jwk.common.key_id.clone(),
            algorithm,
            key,
        });
        match &jwk.common.key_id {
            Some(kid) => {
                set.by_kid.insert(kid.clone(), entry);
            }
            None => set.without_kid.push(entry),
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{CACHE_CONTROL, HeaderMap, HeaderValue};

    fn age(value: Option<&'static str>) -> Duration {
        let mut headers = HeaderMap::new();
        if let Some(v) = value {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(v));
        }
        max_age(&headers)
    }

    #[test]
    fn key_sets_expire_as_their_answer_says_within_a_day() {
        assert_eq!(age(None), DEFAULT_MAX_AGE);
        assert_eq!(age(Some("public, max-age=600")), Duration::from_secs(600));
        assert_eq!(age(Some("max-age=31536000, immutable")), MAX_MAX_AGE);
        assert_eq!(age(Some("no-store")), Duration::ZERO);
        assert_eq!(age(Some("private, No-Cache")), Duration::ZERO);
        assert_eq!(age(Some("max-age=soon")), DEFAULT_MAX_AGE);
    }
}
