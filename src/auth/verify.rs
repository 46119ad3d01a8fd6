//! JWT verification against the JWKS cache: ID tokens at sign-in now, access tokens later.
//! Every refusal has a short reason code for the log and the audit trail.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use std::borrow::Cow;

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
    let checked = verify_keyed(token, jwks, issuer, audience, required).await?;
    serde_json::from_str(&checked.claims)
        .map_err(|e| TokenError::Malformed(format!("the claims do not fit: {e}")))
}

/// A token whose signature and registered claims passed.
pub struct CheckedToken {
    /// The claims as the token carries them: the text of one JSON object.
    pub claims: String,
    /// `exp`, when the token has one.
    pub exp: Option<i64>,
    /// The key that verified it.
    pub key: Arc<VerifyingKey>,
}

/// The registered claims a verification checks, read borrowed from the claims' text; any of
/// them present with another JSON type makes the claims malformed.
#[derive(Deserialize)]
struct Registered<'a> {
    #[serde(borrow)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow)]
    sub: Option<Cow<'a, str>>,
    #[serde(borrow)]
    aud: Option<OneOrManyRef<'a>>,
    exp: Option<serde_json::Number>,
    nbf: Option<serde_json::Number>,
}

/// A string or an array of strings, read borrowed from a token's claims (`aud`, `scp`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrManyRef<'a> {
    One(#[serde(borrow)] Cow<'a, str>),
    Many(#[serde(borrow)] Vec<Cow<'a, str>>),
}

/// The JOSE header fields a verification reads.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    /// Extensions the token says must be understood; Gatehouse understands none.
    crit: Option<serde::de::IgnoredAny>,
}

/// As `verify_with`, returning the claims' text, `exp` and the key that verified the token
/// (for a cache of verified tokens to check that it is still trusted).
///
/// The compact serialization and the registered-claim checks are written here, the
/// signature is aws-lc-rs's with the key parsed when the key set was fetched. `jsonwebtoken`
/// (which parses and signs JWKs and tokens elsewhere) re-parses the public key for every
/// token; that is a fifth more work on top of the RSA verification, and the check of an
/// unseen Bearer token is to cost little more than the RSA verification itself. The token
/// is decoded once: header, signature, then claims (read as text, borrowed by each reader).
pub async fn verify_keyed(
    token: &str,
    jwks: &JwksCache,
    issuer: &str,
    audience: &str,
    required: &[&str],
) -> Result<CheckedToken, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("longer than 16 KiB".into()));
    }
    let malformed = |what: &str| TokenError::Malformed(what.to_string());
    let (message, signature) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("not three dot-separated parts"))?;
    let (header, payload) = message
        .split_once('.')
        .filter(|(_, payload)| !payload.contains('.'))
        .ok_or_else(|| malformed("not three dot-separated parts"))?;
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the header is not base64url"))?;
    let header: JoseHeader = serde_json::from_slice(&header)
        .map_err(|e| TokenError::Malformed(format!("the header is not the expected JSON: {e}")))?;
    let algorithm = header
        .alg
        .parse::<Algorithm>()
        .ok()
        .filter(|a| ALLOWED_ALGORITHMS.contains(a))
        .ok_or_else(|| TokenError::DisallowedAlgorithm(header.alg.to_string()))?;
    if header.crit.is_some() {
        return Err(malformed("the header names critical extensions"));
    }
    let key = jwks.key_for(header.kid.as_deref(), algorithm).await?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| malformed("the signature is not base64url"))?;
    if !key.verifies(message.as_bytes(), &signature) {
        return Err(TokenError::BadSignature);
    }
    let claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| malformed("the payload is not base64url text"))?;
    // A struct also reads from a JSON array, by position; claims are an object.
    if !claims.trim_start().starts_with('{') {
        return Err(malformed("the payload is not a JSON object"));
    }
    let registered: Registered = serde_json::from_str(&claims)
        .map_err(|e| TokenError::Malformed(format!("the payload is not the expected JSON: {e}")))?;
    let now = chrono::Utc::now().timestamp();
    let exp = check_registered(&registered, issuer, audience, required, now)?;
    Ok(CheckedToken { claims, exp, key })
}

/// The registered claims (RFC 7519 section 4.1): the named ones present, times within
/// `LEEWAY_SECS` of `now`, issuer and audience ours. Returns `exp`.
fn check_registered(
    claims: &Registered,
    issuer: &str,
    audience: &str,
    required: &[&str],
    now: i64,
) -> Result<Option<i64>, TokenError> {
    for &name in required {
        let present = match name {
            "exp" => claims.exp.is_some(),
            "nbf" => claims.nbf.is_some(),
            "iss" => claims.iss.is_some(),
            "sub" => claims.sub.is_some(),
            "aud" => claims.aud.is_some(),
            // A claim this check cannot see is never taken as present.
            _ => false,
        };
        if !present {
            return Err(TokenError::MissingClaim(match name {
                "exp" => "exp",
                "nbf" => "nbf",
                "iss" => "iss",
                "aud" => "aud",
                "sub" => "sub",
                _ => "required",
            }));
        }
    }
    let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(60);
    let exp = match &claims.exp {
        Some(exp) => {
            Some(numeric_date(exp).ok_or(TokenError::Malformed("exp is not a date".into()))?)
        }
        None => None,
    };
    if exp.is_some_and(|exp| exp.saturating_add(leeway) < now) {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = &claims.nbf {
        let nbf = numeric_date(nbf).ok_or(TokenError::Malformed("nbf is not a date".into()))?;
        if nbf.saturating_sub(leeway) > now {
            return Err(TokenError::NotYetValid);
        }
    }
    if claims.iss.as_deref().is_some_and(|iss| iss != issuer) {
        return Err(TokenError::WrongIssuer);
    }
    let ours = match &claims.aud {
        None => true,
        Some(OneOrManyRef::One(one)) => one == audience,
        Some(OneOrManyRef::Many(many)) => many.iter().any(|a| a == audience),
    };
    if !ours {
        return Err(TokenError::WrongAudience);
    }
    Ok(exp)
}

/// A JWT NumericDate: seconds since the epoch, possibly fractional; never negative.
fn numeric_date(n: &serde_json::Number) -> Option<i64> {
    if let Some(i) = n.as_i64() {
        return (i >= 0).then_some(i);
    }
    if let Some(u) = n.as_u64() {
        return Some(i64::try_from(u).unwrap_or(i64::MAX));
    }
    let f = n.as_f64()?;
    (f.is_finite() && f >= 0.0).then(|| f.min(9.0e18).round() as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(json: &str) -> Registered<'_> {
        serde_json::from_str(json).expect("registered claims")
    }

    #[test]
    fn a_required_claim_this_check_cannot_see_is_missing() {
        let claims = registered(r#"{"iss": "i", "aud": "a", "jti": "x"}"#);
        let err = check_registered(&claims, "i", "a", &["jti"], 0).expect_err("fails closed");
        assert_eq!(err, TokenError::MissingClaim("required"));
        assert_eq!(
            check_registered(&claims, "i", "a", &["iss", "aud"], 0),
            Ok(None)
        );
    }

    #[test]
    fn numeric_dates_are_whole_seconds_never_negative() {
        let n = |v: serde_json::Value| numeric_date(v.as_number().expect("number"));
        assert_eq!(n(serde_json::json!(1_800_000_000)), Some(1_800_000_000));
        assert_eq!(n(serde_json::json!(1_800_000_000.6)), Some(1_800_000_001));
        assert_eq!(n(serde_json::json!(u64::MAX)), Some(i64::MAX));
        assert_eq!(n(serde_json::json!(-1)), None);
        assert_eq!(n(serde_json::json!(-0.5)), None);
    }
}
