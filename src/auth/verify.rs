//! JWT verification against the JWKS cache: ID tokens at sign-in now, access tokens later.
//! Every refusal has a short reason code for the log and the audit trail.

use jsonwebtoken::Validation;
use jsonwebtoken::errors::ErrorKind;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use std::sync::Arc;

use super::jwks::{ALLOWED_ALGORITHMS, JwksCache, JwksError, VerifyingKey};

/// Clock skew tolerated between Gatehouse and the provider.
pub const LEEWAY_SECS: u64 = 60;
/// An ID token is used right after it is minted; an older one is a replay.
const MAX_ID_TOKEN_AGE_SECS: i64 = 3600;
/// Longer tokens are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's algorithm {0} is not allowed")]
    DisallowedAlgorithm(String),
    #[error(transparent)]
    Key(#[from] JwksError),
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else")]
    WrongIssuer,
    #[error("the token is meant for someone else")]
    WrongAudience,
    #[error("the token lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("the token names another authorized party")]
    WrongAuthorizedParty,
    #[error("the token's issue time is in the future or too long ago")]
    BadIssueTime,
    #[error("the token's nonce does not match this sign-in")]
    NonceMismatch,
}

impl TokenError {
    /// A stable short code for logs and audit events.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Malformed(_) => "malformed",
            TokenError::DisallowedAlgorithm(_) => "disallowed_algorithm",
            TokenError::Key(JwksError::UnknownKey(_)) => "unknown_key",
            TokenError::Key(JwksError::AlgorithmMismatch(..)) => "algorithm_mismatch",
            TokenError::Key(JwksError::Unavailable(_)) => "jwks_unavailable",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::MissingClaim(_) => "missing_claim",
            TokenError::WrongAuthorizedParty => "wrong_azp",
            TokenError::BadIssueTime => "bad_iat",
            TokenError::NonceMismatch => "nonce_mismatch",
        }
    }
}

/// `aud` is a string or an array of strings.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn as_slice(&self) -> &[String] {
        match self {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v,
        }
    }
}

/// The claims Gatehouse reads from an ID token.
#[derive(Debug, Clone, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    /// Defaulted so a missing `sub` is reported as such, not as a parse error.
    #[serde(default)]
    pub sub: String,
    pub aud: OneOrMany,
    pub azp: Option<String>,
    pub iat: Option<i64>,
    /// When the provider last authenticated the user (not when it issued this token).
    pub auth_time: Option<i64>,
    /// The provider's session, which a back-channel logout token may name alone.
    pub sid: Option<String>,
    pub nonce: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub preferred_username: Option<String>,
    pub groups: Option<OneOrMany>,
    /// Entra ID's "distributed claims": names `groups` when the token left them out (the
    /// overage marker).
    #[serde(rename = "_claim_names")]
    pub claim_names: Option<serde_json::Value>,
}

/// Checks signature (allow-listed algorithm, key by `kid`), `iss`, `aud`, `exp` and `nbf`;
/// returns the claims for the caller's own checks.
pub async fn verify_signed<T: DeserializeOwned>(
    token: &str,
    jwks: &JwksCache,
    issuer: &str,
    audience: &str,
) -> Result<T, TokenError> {
    verify_with(token, jwks, issuer, audience, &["exp", "iss", "aud", "sub"]).await
}

/// As `verify_signed`, with the claims that must be present named by the caller: an access
/// token from a client-credentials grant need not carry `sub`.
pub async fn verify_with<T: DeserializeOwned>(
    token: &str,
    jwks: &JwksCache,
    issuer: &str,
    audience: &str,
    required: &[&str],
) -> Result<T, TokenError> {
    verify_keyed(token, jwks, issuer, audience, required)
        .await
        .map(|(claims, _)| claims)
}

/// As `verify_with`, also returning the key that verified the token (for a cache of verified
/// tokens to check that it is still trusted).
pub async fn verify_keyed<T: DeserializeOwned>(
    token: &str,
    jwks: &JwksCache,
    issuer: &str,
    audience: &str,
    required: &[&str],
) -> Result<(T, Arc<VerifyingKey>), TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("longer than 16 KiB".into()));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|e| classify(&e))?;
    if !ALLOWED_ALGORITHMS.contains(&header.alg) {
        return Err(TokenError::DisallowedAlgorithm(format!("{:?}", header.alg)));
    }
    let key = jwks.key_for(header.kid.as_deref(), header.alg).await?;
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![key.algorithm];
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(required);
    let claims = jsonwebtoken::decode::<T>(token, &key.key, &validation)
        .map(|data| data.claims)
        .map_err(|e| classify(&e))?;
    Ok((claims, key))
}

fn classify(e: &jsonwebtoken::errors::Error) -> TokenError {
    match e.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::WrongIssuer,
        ErrorKind::InvalidAudience => TokenError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => TokenError::MissingClaim(match c.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            "sub" => "sub",
            _ => "required",
        }),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::DisallowedAlgorithm("mismatch".into())
        }
        other => TokenError::Malformed(format!("{other:?}")),
    }
}

/// What a sign-in expects of its ID token.
pub struct IdTokenCheck<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
}

/// Full ID token verification (OpenID Connect Core 3.1.3.7).
pub async fn verify_id_token(
    token: &str,
    jwks: &JwksCache,
    check: &IdTokenCheck<'_>,
) -> Result<IdClaims, TokenError> {
    let claims: IdClaims = verify_signed(token, jwks, check.issuer, check.client_id).await?;
    let audiences = claims.aud.as_slice();
    // With several audiences the authorized party must be us; when present it must be us.
    if audiences.len() > 1 && claims.azp.is_none() {
        return Err(TokenError::WrongAuthorizedParty);
    }
    if claims
        .azp
        .as_deref()
        .is_some_and(|azp| azp != check.client_id)
    {
        return Err(TokenError::WrongAuthorizedParty);
    }
    let iat = claims.iat.ok_or(TokenError::MissingClaim("iat"))?;
    let now = chrono::Utc::now().timestamp();
    let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(60);
    if iat > now + leeway || iat < now - MAX_ID_TOKEN_AGE_SECS {
        return Err(TokenError::BadIssueTime);
    }
    if claims.sub.is_empty() {
        return Err(TokenError::MissingClaim("sub"));
    }
    match claims.nonce.as_deref() {
        Some(n) if constant_time_eq(n.as_bytes(), check.nonce.as_bytes()) => Ok(claims),
        Some(_) => Err(TokenError::NonceMismatch),
        None => Err(TokenError::MissingClaim("nonce")),
    }
}

/// Comparison whose time does not depend on where the inputs first differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use aws_lc_rs::constant_time::verify_slices_are_equal;
    verify_slices_are_equal(a, b).is_ok()
}
