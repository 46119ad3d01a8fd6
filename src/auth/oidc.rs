//! The OpenID Connect relying party: discovery (lazy, retried), the authorization request
//! with PKCE, and the callback's checks — code exchange, ID token, userinfo.
//!
//! Written on `reqwest` and our own JWKS cache rather than the `openidconnect` crate: that
//! crate never refreshes keys after discovery, and sign-in must share the one cache the API
//! uses; what remains here (building a URL, posting a form) is small and fully tested.
//!
//! Over 400 lines: the whole relying-party flow in the order it runs (discovery with its back-off,
//! the authorization request, the callback's checks), so the order of the checks reads in one
//! place.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;
use url::Url;

use super::discovery;
use super::jwks::{DEFAULT_COOLDOWN, JwksCache};
use super::verify::{
    IdClaims, IdTokenCheck, OneOrMany, TokenError, constant_time_eq, verify_id_token,
};

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Who the provider is and how Gatehouse is registered there.
#[derive(Clone)]
pub struct RelyingParty {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    /// Explicit endpoints (a provider without discovery); discovery fills the rest.
    pub explicit: Endpoints,
}

pub use super::discovery::Endpoints;

/// Metadata in use: explicit endpoints over discovered ones.
pub struct Metadata {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    pub scopes: Vec<String>,
    pub jwks: Arc<JwksCache>,
    /// The provider promises `iss` in authorization responses (RFC 9207).
    pub iss_parameter_supported: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the identity provider is unreachable: {0}")]
    ProviderUnavailable(String),
    #[error("the sign-in has expired or was already used")]
    UnknownTransaction,
    #[error("{0}")]
    SessionStorage(String),
    #[error("the state parameter does not match this sign-in")]
    StateMismatch,
    #[error("the response names issuer {0}, not ours")]
    IssuerMismatch(String),
    #[error("the response does not name its issuer, which this provider always does")]
    MissingIssuer,
    #[error("the identity provider refused: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    ProviderError {
        error: String,
        description: Option<String>,
    },
    #[error("the callback lacks the code parameter")]
    MissingCode,
    #[error("the code exchange failed: {0}")]
    TokenExchange(String),
    #[error("the ID token was refused: {0}")]
    IdToken(#[from] TokenError),
    #[error("userinfo failed: {0}")]
    Userinfo(String),
    #[error("userinfo is about another user")]
    UserinfoSubjectMismatch,
    #[error(
        "a fresh sign-in was asked for, and the ID token does not say when it happened (no auth_time)"
    )]
    AuthTimeMissing,
    #[error("a fresh sign-in was asked for, and the provider reused one from {0} seconds earlier")]
    AuthTimeStale(i64),
}

impl LoginError {
    /// Short code for logs and audit events.
    pub fn code(&self) -> String {
        match self {
            LoginError::ProviderUnavailable(_) => "provider_unavailable".into(),
            LoginError::UnknownTransaction => "unknown_transaction".into(),
            LoginError::SessionStorage(_) => "session_storage".into(),
            LoginError::StateMismatch => "state_mismatch".into(),
            LoginError::IssuerMismatch(_) => "issuer_mismatch".into(),
            LoginError::MissingIssuer => "missing_issuer".into(),
            LoginError::ProviderError { error, .. } => format!("provider_error:{error}"),
            LoginError::MissingCode => "missing_code".into(),
            LoginError::TokenExchange(_) => "token_exchange".into(),
            LoginError::IdToken(e) => format!("id_token:{}", e.code()),
            LoginError::Userinfo(_) => "userinfo".into(),
            LoginError::UserinfoSubjectMismatch => "userinfo_sub_mismatch".into(),
            LoginError::AuthTimeMissing => "auth_time_missing".into(),
            LoginError::AuthTimeStale(_) => "auth_time_stale".into(),
        }
    }
}

/// Everything the callback needs to finish one sign-in; kept server-side.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginTransaction {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub next: String,
    /// A fresh sign-in (step-up): `max_age=0` and `prompt=login` were sent, so the ID token
    /// must show an authentication made for this very transaction.
    #[serde(default)]
    pub fresh: bool,
    /// When the transaction began (Unix seconds).
    #[serde(default)]
    pub started_at: i64,
}

/// How far the provider's clock may be behind ours when `auth_time` is compared with the
/// start of a fresh sign-in.
pub const CLOCK_SKEW: i64 = 60;

/// The callback's query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A verified sign-in: ID token claims, with userinfo filling what the ID token lacks.
#[derive(Debug, Clone)]
pub struct VerifiedLogin {
    pub claims: IdClaims,
    pub id_token: String,
}

pub struct OidcClient {
    rp: RelyingParty,
    http: reqwest::Client,
    metadata: RwLock<Option<Arc<Metadata>>>,
    /// The last failed discovery, answered again until the back-off has passed.
    failed: discovery::FailureMemo,
    jwks_cooldown: Duration,
}

pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl OidcClient {
    pub fn new(rp: RelyingParty, jwks_cooldown: Option<Duration>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            // Token and userinfo responses are never followed elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(OidcClient {
            rp,
            http,
            metadata: RwLock::new(None),
            failed: discovery::FailureMemo::default(),
            jwks_cooldown: jwks_cooldown.unwrap_or(DEFAULT_COOLDOWN),
        })
    }

    pub fn relying_party(&self) -> &RelyingParty {
        &self.rp
    }

    /// Provider metadata, discovered on first use and retried on later calls until it works,
    /// so Gatehouse starts while the provider is briefly unreachable.
    pub async fn metadata(&self) -> Result<Arc<Metadata>, LoginError> {
        if let Some(m) = self.metadata.read().await.as_ref() {
            return Ok(Arc::clone(m));
        }
        let mut slot = self.metadata.write().await;
        if let Some(m) = slot.as_ref() {
            return Ok(Arc::clone(m));
        }
        if let Some(message) = self.failed.recent() {
            return Err(LoginError::ProviderUnavailable(message));
        }
        match self.discover().await {
            Ok(meta) => {
                let meta = Arc::new(meta);
                *slot = Some(Arc::clone(&meta));
                Ok(meta)
            }
            Err(e) => {
                self.failed.record(match &e {
                    LoginError::ProviderUnavailable(m) => m.clone(),
                    other => other.to_string(),
                });
                Err(e)
            }
        }
    }

    async fn discover(&self) -> Result<Metadata, LoginError> {
        let e = &self.rp.explicit;
        let complete = e.authorization_endpoint.is_some()
            && e.token_endpoint.is_some()
            && e.jwks_uri.is_some();
        let discovered = if complete {
            None
        } else {
            let mut last = String::new();
            let mut found = None;
            for attempt in 0..3u32 {
                match discovery::fetch(&self.http, &self.rp.issuer).await {
                    Ok(d) => {
                        found = Some(d);
                        break;
                    }
                    // A provider that names another issuer will not change its mind.
                    Err(err @ discovery::DiscoveryError::WrongIssuer(_)) => {
                        return Err(LoginError::ProviderUnavailable(err.to_string()));
                    }
                    Err(err) => {
                        last = err.to_string();
                        tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                    }
                }
            }
            Some(found.ok_or(LoginError::ProviderUnavailable(last))?)
        };
        let pick = |explicit: &Option<String>, found: Option<&Option<String>>| {
            explicit.clone().or_else(|| found.and_then(|f| f.clone()))
        };
        let d = discovered.as_ref();
        let de = d.map(|d| &d.endpoints);
        let missing = |what: &str| LoginError::ProviderUnavailable(format!("no {what} known"));
        let jwks_uri =
            pick(&e.jwks_uri, de.map(|x| &x.jwks_uri)).ok_or_else(|| missing("jwks_uri"))?;
        // Ask only for scopes the provider offers; say which were dropped.
        let scopes = match d.and_then(|d| d.scopes_supported.as_ref()) {
            Some(supported) => {
                let (kept, dropped): (Vec<String>, Vec<String>) = self
                    .rp
                    .scopes
                    .iter()
                    .cloned()
                    .partition(|s| s == "openid" || supported.contains(s));
                if !dropped.is_empty() {
                    tracing::warn!(dropped = ?dropped, "the provider does not offer these scopes");
                }
                kept
            }
            None => self.rp.scopes.clone(),
        };
        Ok(Metadata {
            authorization_endpoint: pick(
                &e.authorization_endpoint,
                de.map(|x| &x.authorization_endpoint),
            )
            .ok_or_else(|| missing("authorization_endpoint"))?,
            token_endpoint: pick(&e.token_endpoint, de.map(|x| &x.token_endpoint))
                .ok_or_else(|| missing("token_endpoint"))?,
            userinfo_endpoint: pick(&e.userinfo_endpoint, de.map(|x| &x.userinfo_endpoint)),
            end_session_endpoint: pick(
                &e.end_session_endpoint,
                de.map(|x| &x.end_session_endpoint),
            ),
            scopes,
            iss_parameter_supported: d
                .is_some_and(|d| d.authorization_response_iss_parameter_supported),
            jwks: Arc::new(JwksCache::new(
                jwks_uri,
                self.http.clone(),
                self.jwks_cooldown,
            )),
        })
    }

    /// A fresh transaction and the URL that sends the browser to the provider; `fresh` asks
    /// the provider to authenticate the user again even if it has a session (step-up).
    pub async fn begin(
        &self,
        next: String,
        fresh: bool,
    ) -> Result<(String, LoginTransaction), LoginError> {
        let meta = self.metadata().await?;
        let tx = LoginTransaction {
            state: random_token(),
            nonce: random_token(),
            verifier: random_token(),
            next,
            fresh,
            started_at: chrono::Utc::now().timestamp(),
        };
        let mut url = Url::parse(&meta.authorization_endpoint).map_err(|e| {
            LoginError::ProviderUnavailable(format!("bad authorization_endpoint: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.rp.client_id)
            .append_pair("redirect_uri", &self.rp.redirect_uri)
            .append_pair("scope", &meta.scopes.join(" "))
            .append_pair("state", &tx.state)
            .append_pair("nonce", &tx.nonce)
            .append_pair("code_challenge", &pkce_challenge(&tx.verifier))
            .append_pair("code_challenge_method", "S256");
        if fresh {
            // `max_age=0` also obliges the provider to put `auth_time` in the ID token.
            url.query_pairs_mut()
                .append_pair("max_age", "0")
                .append_pair("prompt", "login");
        }
        Ok((url.into(), tx))
    }

    /// Every check of the callback, in order; nothing is trusted before it is verified.
    pub async fn finish(
        &self,
        tx: &LoginTransaction,
        params: &CallbackParams,
    ) -> Result<VerifiedLogin, LoginError> {
        let state = params.state.as_deref().unwrap_or_default();
        if !constant_time_eq(state.as_bytes(), tx.state.as_bytes()) {
            return Err(LoginError::StateMismatch);
        }
        // RFC 9207: when the provider names itself, it must be the one we asked.
        if let Some(iss) = params
            .iss
            .as_ref()
            .filter(|iss| !discovery::same_issuer(&self.rp.issuer, iss))
        {
            return Err(LoginError::IssuerMismatch(iss.clone()));
        }
        // A provider that promises `iss` and a response without it: the response may come from
        // another provider the browser also uses (a mix-up attack).
        if params.iss.is_none() && self.metadata().await?.iss_parameter_supported {
            return Err(LoginError::MissingIssuer);
        }
        if let Some(error) = &params.error {
            return Err(LoginError::ProviderError {
                error: error.chars().take(100).collect(),
                description: params
                    .error_description
                    .as_ref()
                    .map(|d| d.chars().take(300).collect()),
            });
        }
        let code = params.code.as_deref().ok_or(LoginError::MissingCode)?;
        let meta = self.metadata().await?;
        let tokens = self.exchange(&meta, code, &tx.verifier).await?;
        let mut claims = verify_id_token(
            &tokens.id_token,
            &meta.jwks,
            &IdTokenCheck {
                issuer: &self.rp.issuer,
                client_id: &self.rp.client_id,
                nonce: &tx.nonce,
            },
        )
        .await?;
        if tx.fresh {
            check_fresh(claims.auth_time, tx.started_at)?;
        }
        if let Some(endpoint) = &meta.userinfo_endpoint {
            let info = self.userinfo(endpoint, &tokens.access_token).await?;
            if info.sub != claims.sub {
                return Err(LoginError::UserinfoSubjectMismatch);
            }
            // The ID token wins; userinfo fills the gaps (Okta's org server puts groups only there).
            // An email and its `email_verified` travel together: one source's flag never vouches
            // for the other source's address.
            if claims.email.is_none() {
                claims.email = info.email;
                claims.email_verified = info.email_verified;
            }
            claims.name = claims.name.or(info.name);
            claims.preferred_username = claims.preferred_username.or(info.preferred_username);
            claims.groups = claims.groups.or(info.groups);
        }
        Ok(VerifiedLogin {
            claims,
            id_token: tokens.id_token,
        })
    }

    async fn exchange(
        &self,
        meta: &Metadata,
        code: &str,
        verifier: &str,
    ) -> Result<TokenResponse, LoginError> {
        // client_secret_basic: both parts form-encoded before Base64 (RFC 6749 2.3.1).
        let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let request = self
            .http
            .post(&meta.token_endpoint)
            .basic_auth(
                form(&self.rp.client_id),
                Some(form(self.rp.client_secret.expose_secret())),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &self.rp.redirect_uri),
                ("code_verifier", verifier),
            ]);
        let response = crate::telemetry::send(request)
            .await
            .map_err(|e| LoginError::TokenExchange(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            return Err(LoginError::TokenExchange(format!(
                "{status}: {}",
                body["error"].as_str().unwrap_or("no error code")
            )));
        }
        response
            .json::<TokenResponse>()
            .await
            .map_err(|e| LoginError::TokenExchange(format!("unexpected answer ({e})")))
    }

    async fn userinfo(&self, endpoint: &str, access_token: &str) -> Result<UserInfo, LoginError> {
        let response = crate::telemetry::send(self.http.get(endpoint).bearer_auth(access_token))
            .await
            .map_err(|e| LoginError::Userinfo(e.to_string()))?;
        if !response.status().is_success() {
            return Err(LoginError::Userinfo(format!(
                "answered {}",
                response.status()
            )));
        }
        response
            .json::<UserInfo>()
            .await
            .map_err(|e| LoginError::Userinfo(format!("unexpected answer ({e})")))
    }
}

/// A fresh sign-in must have authenticated the user after the transaction began (give or
/// take the providers' clock): a provider that ignored `prompt=login` and answered from its
/// own older session is refused.
pub fn check_fresh(auth_time: Option<i64>, started_at: i64) -> Result<(), LoginError> {
    let auth_time = auth_time.ok_or(LoginError::AuthTimeMissing)?;
    if auth_time + CLOCK_SKEW < started_at {
        return Err(LoginError::AuthTimeStale(started_at - auth_time));
    }
    Ok(())
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
    access_token: String,
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    sub: String,
    email: Option<String>,
    email_verified: Option<bool>,
    name: Option<String>,
    preferred_username: Option<String>,
    groups: Option<OneOrMany>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_sign_in_must_have_authenticated_after_it_began() {
        let started = 1_700_000_000;
        assert!(check_fresh(Some(started + 5), started).is_ok());
        // The provider's clock a little behind ours.
        assert!(check_fresh(Some(started - CLOCK_SKEW), started).is_ok());
        assert!(matches!(
            check_fresh(Some(started - CLOCK_SKEW - 1), started),
            Err(LoginError::AuthTimeStale(61))
        ));
        assert!(matches!(
            check_fresh(None, started),
            Err(LoginError::AuthTimeMissing)
        ));
    }
}
