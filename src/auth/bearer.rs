//! Bearer access tokens: where they come from (the `Authorization` header only), which
//! issuers and keys are trusted, what a valid one carries, and how a refusal is answered.
//!
//! Over 400 lines with its unit tests (about 90 lines at the end).

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

use super::discovery;
use super::jwks::JwksCache;
use super::jwks::VerifyingKey;
use super::oidc::OidcClient;
use super::verify::{OneOrManyRef, TokenError, verify_keyed};
use crate::web::error::AppError;

/// Longest `Authorization` header read; anything longer is refused unparsed.
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// A verified access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub issuer: String,
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// Every claim, as the token carries them (one JSON object).
    pub claims: Box<RawValue>,
}

impl AccessToken {
    /// Who the token acts for, for rate limits and audit: the user, else the client.
    pub fn principal(&self) -> String {
        self.sub
            .clone()
            .or_else(|| self.client_id.clone())
            .unwrap_or_default()
    }

    pub fn require(&self, scope: &'static str) -> Result<(), BearerError> {
        if self.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(scope))
        }
    }
}

#[derive(Debug, Deserialize)]
struct AccessClaims<'a> {
    #[serde(borrow)]
    sub: Option<Cow<'a, str>>,
    #[serde(borrow)]
    cid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    azp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    scp: Option<OneOrManyRef<'a>>,
    #[serde(borrow)]
    scope: Option<Cow<'a, str>>,
}

/// Scopes from `scp` (array, or space-separated string as Okta and others send) or `scope`.
fn scopes_of(claims: &AccessClaims) -> Vec<String> {
    let mut out: Vec<String> = match &claims.scp {
        Some(OneOrManyRef::Many(v)) => v.iter().map(|s| s.to_string()).collect(),
        Some(OneOrManyRef::One(s)) => s.split_whitespace().map(str::to_string).collect(),
        None => Vec::new(),
    };
    if let Some(scope) = &claims.scope {
        out.extend(scope.split_whitespace().map(str::to_string));
    }
    out.sort();
    out.dedup();
    out
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    #[error("no Bearer token in the Authorization header")]
    Missing,
    #[error("{0}")]
    Invalid(String),
    #[error("the token lacks the scope {0}")]
    InsufficientScope(&'static str),
    #[error("the token issuer's keys cannot be fetched right now")]
    KeysUnavailable,
}

fn quoted(s: &str) -> String {
    // RFC 6750 attribute values are quoted-strings: no quotes or backslashes inside.
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

impl BearerError {
    /// The answer's status, its `error` code and its `WWW-Authenticate` challenge.
    pub fn challenge(&self) -> (StatusCode, &'static str, String) {
        let message = self.to_string();
        match self {
            BearerError::Missing => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Bearer realm=\"gatehouse\"".to_string(),
            ),
            BearerError::Invalid(_) => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                format!(
                    "Bearer realm=\"gatehouse\", error=\"invalid_token\", error_description=\"{}\"",
                    quoted(&message)
                ),
            ),
            BearerError::InsufficientScope(scope) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!(
                    "Bearer realm=\"gatehouse\", error=\"insufficient_scope\", scope=\"{scope}\", \
                     error_description=\"{}\"",
                    quoted(&message)
                ),
            ),
            BearerError::KeysUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "Bearer realm=\"gatehouse\"".to_string(),
            ),
        }
    }
}

impl From<BearerError> for AppError {
    fn from(e: BearerError) -> Self {
        let (status, code, challenge) = e.challenge();
        AppError::Challenge {
            status,
            code,
            challenge,
            message: e.to_string(),
        }
    }
}

/// One trusted issuer and, once known, its keys.
struct Issuer {
    issuer: String,
    jwks: OnceCell<Arc<JwksCache>>,
    /// When its discovery last failed: tried again only after the back-off.
    failed: discovery::FailureMemo,
}

/// The clients whose tokens may write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writers {
    /// No allowlist: no client may write.
    Nobody,
    Clients(Vec<String>),
}

impl Writers {
    /// A scope proves little on its own: Okta's default authorization server (audience
    /// `api://default`) is shared by every app of the organization, and its default policy
    /// grants any client any scope, so any employee can get a `directory.write` token from
    /// some single-page app. Writes therefore need the allowlist. Dev mode's built-in
    /// provider issues write scope to its machine client only, on loopback, so that client
    /// may write there without one.
    pub fn of(config: &crate::config::Config) -> Writers {
        match &config.api.client_ids {
            Some(clients) => Writers::Clients(clients.clone()),
            None if config.is_dev_mode() => {
                Writers::Clients(vec![crate::devidp::DEV_MACHINE_CLIENT_ID.to_string()])
            }
            None => Writers::Nobody,
        }
    }

    /// Whether this token's client may write (its scope is checked apart).
    pub fn allow(&self, token: &AccessToken) -> Result<(), AppError> {
        match self {
            Writers::Nobody => Err(AppError::Forbidden(
                "writes through the API are off: set GATEHOUSE_API_CLIENT_IDS to the clients \
                 allowed to make them"
                    .into(),
            )),
            Writers::Clients(clients)
                if token
                    .client_id
                    .as_ref()
                    .is_some_and(|c| clients.contains(c)) =>
            {
                Ok(())
            }
            Writers::Clients(_) => Err(AppError::Forbidden(
                "the token's client may not write: it is not in GATEHOUSE_API_CLIENT_IDS".into(),
            )),
        }
    }
}

/// The longest a verified token is reused without verifying it again.
const VERIFIED_MAX_AGE_SECS: i64 = 60;
/// Verified tokens kept: the machine clients and users of the API within a minute.
const VERIFIED_KEPT: usize = 10_000;

/// A token verified earlier, and what that rested on.
struct Verified {
    token: Arc<AccessToken>,
    key: Arc<VerifyingKey>,
    jwks: Arc<JwksCache>,
    /// Unix time until which it is reused: its `exp` or the maximum age, whichever is first.
    until: i64,
}

impl Verified {
    /// Reused only while its key is still trusted (the same key in a set not past its age:
    /// a withdrawn or rotated-out key ends it at the set's next fetch) and before `until`.
    fn still_good(&self, now: i64) -> bool {
        now < self.until && self.jwks.holds(&self.key)
    }
}

/// Until when a token verified at `now` may be reused.
fn reuse_until(now: i64, exp: Option<i64>) -> i64 {
    let max = now + VERIFIED_MAX_AGE_SECS;
    exp.map_or(max, |exp| exp.min(max))
}

pub struct ApiVerifier {
    issuers: Vec<Issuer>,
    audience: String,
    client_ids: Option<Vec<String>>,
    pub writers: Writers,
    http: reqwest::Client,
    cooldown: std::time::Duration,
    /// The sign-in's client: its issuer's keys are shared with the API, one cache for both.
    sign_in: Arc<OidcClient>,
    /// Tokens verified earlier, by the SHA-256 of the token: a client that reuses its token
    /// (they all do, until it expires) costs one RSA verification, not one per request.
    verified: quick_cache::sync::Cache<[u8; 32], Arc<Verified>>,
}

#[derive(Deserialize)]
struct Unverified {
    iss: Option<String>,
}

impl ApiVerifier {
    pub fn new(config: &crate::config::Config, sign_in: Arc<OidcClient>) -> anyhow::Result<Self> {
        Ok(ApiVerifier {
            issuers: config
                .api
                .issuers
                .iter()
                .map(|i| Issuer {
                    issuer: i.clone(),
                    jwks: OnceCell::new(),
                    failed: discovery::FailureMemo::default(),
                })
                .collect(),
            audience: config.api.audience.clone(),
            client_ids: config.api.client_ids.clone(),
            writers: Writers::of(config),
            http: reqwest::Client::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                .timeout(std::time::Duration::from_secs(10))
                .build()?,
            cooldown: config.jwks_cooldown,
            sign_in,
            verified: quick_cache::sync::Cache::new(VERIFIED_KEPT),
        })
    }

    /// The issuer's key cache: the sign-in's own when it is the sign-in issuer (one cache
    /// for both), else found through that issuer's discovery document, once.
    async fn keys(&self, issuer: &Issuer) -> Result<Arc<JwksCache>, BearerError> {
        issuer
            .jwks
            .get_or_try_init(|| async {
                // The sign-in issuer's metadata has its own retries and back-off.
                if self.sign_in.relying_party().issuer == issuer.issuer {
                    return match self.sign_in.metadata().await {
                        Ok(meta) => Ok(Arc::clone(&meta.jwks)),
                        Err(_) => Err(BearerError::KeysUnavailable),
                    };
                }
                if issuer.failed.recent().is_some() {
                    return Err(BearerError::KeysUnavailable);
                }
                let doc = discovery::fetch(&self.http, &issuer.issuer)
                    .await
                    .map_err(|error| {
                        tracing::warn!(%error, "API issuer discovery failed");
                        issuer.failed.record(error.to_string());
                        BearerError::KeysUnavailable
                    })?;
                let uri = doc.endpoints.jwks_uri.ok_or(BearerError::KeysUnavailable)?;
                Ok(Arc::new(JwksCache::new(
                    uri,
                    self.http.clone(),
                    self.cooldown,
                )))
            })
            .await
            .cloned()
    }

    /// The whole check of an `Authorization` header. No I/O once the issuer's keys are cached
    /// (an unknown `kid` refetches at most once per cool-down).
    pub async fn verify(&self, headers: &HeaderMap) -> Result<Arc<AccessToken>, BearerError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(BearerError::Missing);
        };
        if value.len() > MAX_HEADER_LEN {
            return Err(BearerError::Invalid(
                "the Authorization header is too large".into(),
            ));
        }
        let value = value
            .to_str()
            .map_err(|_| BearerError::Invalid("the Authorization header is not text".into()))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => {
                return Err(BearerError::Invalid(
                    "the Authorization scheme is not Bearer".into(),
                ));
            }
        };
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        if let Some(hit) = self.verified.get(&digest) {
            if hit.still_good(now) {
                return Ok(hit.token.clone());
            }
            self.verified.remove(&digest);
        }
        // The issuer picks the keys. With one trusted issuer (the usual case) it is that one,
        // and the token is decoded once, verified; with several, its `iss` is read unverified
        // first, only to choose among them.
        let (issuer, iss) = match self.issuers.as_slice() {
            [only] => (only, only.issuer.clone()),
            several => {
                let payload = token
                    .split('.')
                    .nth(1)
                    .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
                    .and_then(|b| serde_json::from_slice::<Unverified>(&b).ok())
                    .ok_or_else(|| BearerError::Invalid("the token is malformed".into()))?;
                let iss = payload.iss.unwrap_or_default();
                let issuer = several
                    .iter()
                    .find(|i| discovery::same_issuer(&i.issuer, &iss))
                    .ok_or_else(|| {
                        BearerError::Invalid("the token was issued by someone else".into())
                    })?;
                (issuer, iss)
            }
        };
        let jwks = self.keys(issuer).await?;
        let checked = verify_keyed(token, &jwks, &iss, &self.audience, &["exp", "iss", "aud"])
            .await
            .map_err(|e| match e {
                TokenError::Key(crate::auth::jwks::JwksError::Unavailable(_)) => {
                    BearerError::KeysUnavailable
                }
                TokenError::WrongIssuer => {
                    BearerError::Invalid("the token was issued by someone else".into())
                }
                other => BearerError::Invalid(other.to_string()),
            })?;
        let access: AccessClaims = serde_json::from_str(&checked.claims)
            .map_err(|e| BearerError::Invalid(format!("the token's claims are malformed: {e}")))?;
        let scopes = scopes_of(&access);
        let client_id = access.cid.or(access.client_id).or(access.azp);
        if let Some(allowed) = &self.client_ids
            && !client_id
                .as_deref()
                .is_some_and(|c| allowed.iter().any(|a| a == c))
        {
            return Err(BearerError::Invalid(
                "the token's client is not allowed here".into(),
            ));
        }
        let (sub, client_id) = (
            access.sub.map(Cow::into_owned),
            client_id.map(Cow::into_owned),
        );
        let claims = RawValue::from_string(checked.claims)
            .map_err(|e| BearerError::Invalid(format!("the token's claims are malformed: {e}")))?;
        let verified = Arc::new(AccessToken {
            issuer: iss,
            sub,
            client_id,
            scopes,
            claims,
        });
        let (exp, key) = (checked.exp, checked.key);
        let until = reuse_until(now, exp);
        if until > now {
            self.verified.insert(
                digest,
                Arc::new(Verified {
                    token: Arc::clone(&verified),
                    key,
                    jwks,
                    until,
                }),
            );
        }
        Ok(verified)
    }
}

/// A verified Bearer token, as a handler argument. The pipeline verifies a request's token
/// once, in its own layer, and refuses the request before the handler when it is not valid;
/// this reads the result. On a route without that layer it refuses (fails closed).
pub struct Bearer(pub Arc<AccessToken>);

/// The pipeline's verification result for this request.
#[derive(Clone)]
pub struct VerifiedBearer(pub Result<Arc<AccessToken>, BearerError>);

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        match parts.extensions.get::<VerifiedBearer>() {
            Some(VerifiedBearer(result)) => result.clone().map(Bearer).map_err(AppError::from),
            None => Err(BearerError::Missing.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verified_token_is_reused_until_its_expiry_or_a_minute_whichever_is_first() {
        let now = 1_800_000_000;
        assert_eq!(reuse_until(now, Some(now + 10)), now + 10);
        assert_eq!(
            reuse_until(now, Some(now + 3600)),
            now + VERIFIED_MAX_AGE_SECS
        );
        assert_eq!(reuse_until(now, None), now + VERIFIED_MAX_AGE_SECS);
        // Expired but within the clock-skew leeway: accepted, never reused.
        assert!(reuse_until(now, Some(now - 5)) <= now);
    }
    use serde_json::json;

    #[test]
    fn scopes_from_scp_array_string_and_scope() {
        let parse = |v: serde_json::Value| {
            scopes_of(&serde_json::from_str(&v.to_string()).expect("claims"))
        };
        assert_eq!(parse(json!({"scp": ["b", "a"]})), ["a", "b"]);
        assert_eq!(parse(json!({"scp": "a b"})), ["a", "b"]);
        assert_eq!(
            parse(json!({"scope": "directory.read openid"})),
            ["directory.read", "openid"]
        );
        assert!(parse(json!({})).is_empty());
    }

    fn config(pairs: &[(&str, &str)]) -> crate::config::Config {
        crate::config::Config::load(&crate::config::Sources {
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .expect("config")
    }

    fn token_of(client: Option<&str>) -> AccessToken {
        AccessToken {
            issuer: "https://idp.example".into(),
            sub: None,
            client_id: client.map(str::to_string),
            scopes: vec!["directory.write".into()],
            claims: serde_json::value::to_raw_value(&json!({})).expect("json"),
        }
    }

    #[test]
    fn writers_need_the_allowlist_except_the_dev_machine_client_in_dev_mode() {
        let prod = [
            (
                "GATEHOUSE_OIDC_ISSUER",
                "https://example.okta.com/oauth2/default",
            ),
            ("GATEHOUSE_OIDC_CLIENT_ID", "client"),
            ("GATEHOUSE_OIDC_CLIENT_SECRET", "secret"),
            ("GATEHOUSE_SESSION_KEY", "0123456789abcdef0123456789abcdef"),
        ];
        let nobody = Writers::of(&config(&prod));
        assert_eq!(nobody, Writers::Nobody);
        let refusal = nobody
            .allow(&token_of(Some("reports")))
            .expect_err("no allowlist, no writes")
            .to_string();
        assert!(refusal.contains("GATEHOUSE_API_CLIENT_IDS"), "{refusal}");

        let mut listed = prod.to_vec();
        listed.push(("GATEHOUSE_API_CLIENT_IDS", "reports"));
        let listed = Writers::of(&config(&listed));
        assert!(listed.allow(&token_of(Some("reports"))).is_ok());
        assert!(listed.allow(&token_of(Some("other"))).is_err());
        assert!(listed.allow(&token_of(None)).is_err());

        let dev = Writers::of(&config(&[]));
        let machine = Some(crate::devidp::DEV_MACHINE_CLIENT_ID);
        assert!(dev.allow(&token_of(machine)).is_ok());
        assert!(dev.allow(&token_of(Some("gatehouse-dev"))).is_err());
        // An allowlist set in dev mode is taken as written.
        let dev_listed = Writers::of(&config(&[("GATEHOUSE_API_CLIENT_IDS", "reports")]));
        assert!(dev_listed.allow(&token_of(machine)).is_err());
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let (status, _, challenge) = BearerError::Missing.challenge();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge, "Bearer realm=\"gatehouse\"");
        let (_, _, challenge) = BearerError::Invalid("bad \"sig\"".into()).challenge();
        assert!(
            challenge.contains("error=\"invalid_token\", error_description=\"bad sig\""),
            "{challenge}"
        );
        let (status, _, challenge) = BearerError::InsufficientScope("directory.write").challenge();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(challenge.contains("error=\"insufficient_scope\", scope=\"directory.write\""));
    }
}
