//! OpenID Connect Back-Channel Logout 1.0: the provider posts a signed logout token when a
//! user's session there ends, and every Gatehouse session made from it ends too, on every
//! instance (sessions live in the shared store). The token is checked like an ID token
//! (signature by the issuer's keys through the one JWKS cache, `iss`, `aud`, `iat`, `exp`
//! when present) and by the logout spec's own rules: the back-channel logout event, no
//! `nonce`, a `sub`, a `jti` never seen before.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::json;

use super::session::SessionData;
use super::verify::{LEEWAY_SECS, OneOrMany, TokenError, verify_with};
use crate::state::AppState;
use crate::store::AuditEvent;
use crate::web::client_ip::ClientIp;

/// The `events` member that makes a JWT a logout token.
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// Oldest `iat` accepted, as for an ID token; also how long a `jti` is remembered when the
/// token has no `exp`.
const MAX_AGE_SECS: i64 = 3600;

/// The rate-limit rule counting verified logout tokens per issuer.
pub const ISSUER_RULE: &str = "auth.backchannel.issuer";

#[derive(Debug, Deserialize)]
pub struct LogoutClaims {
    pub iss: String,
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub aud: OneOrMany,
    pub iat: Option<i64>,
    pub exp: Option<i64>,
    pub jti: Option<String>,
    pub events: Option<serde_json::Map<String, serde_json::Value>>,
    pub nonce: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("no logout_token in the form")]
    Missing,
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("the token's typ {0} is not that of a logout token")]
    WrongType(String),
    #[error("the token has no back-channel logout event")]
    NotALogoutEvent,
    #[error("a logout token must not carry a nonce")]
    Nonce,
    #[error("the token names neither a sid nor a sub")]
    NoSubject,
    #[error("the token has no jti")]
    NoId,
    #[error("this token was used before")]
    Replayed,
    #[error("the token's issue time is in the future or too long ago")]
    BadIssueTime,
    #[error("sessions cannot be reached just now: {0}")]
    Unavailable(String),
    #[error("too many logout tokens from this issuer; try again in {0} s")]
    RateLimited(u64),
}

/// Checks a logout token against the provider's keys and the logout rules.
pub async fn verify(state: &AppState, token: &str) -> Result<LogoutClaims, LogoutError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    // `logout+jwt` is the type the spec recommends; plain `JWT` (or none) is what most send.
    if let Some(typ) = &header.typ
        && !typ.eq_ignore_ascii_case("logout+jwt")
        && !typ.eq_ignore_ascii_case("jwt")
    {
        return Err(LogoutError::WrongType(typ.clone()));
    }
    let oidc = &state.auth.oidc;
    let meta = oidc
        .metadata()
        .await
        .map_err(|e| LogoutError::Unavailable(e.to_string()))?;
    let rp = oidc.relying_party();
    let claims: LogoutClaims = verify_with(
        token,
        &meta.jwks,
        &rp.issuer,
        &rp.client_id,
        &["iss", "aud"],
    )
    .await?;
    let iat = claims.iat.ok_or(TokenError::MissingClaim("iat"))?;
    let now = chrono::Utc::now().timestamp();
    let leeway = i64::try_from(LEEWAY_SECS).unwrap_or(60);
    if iat > now + leeway || iat < now - MAX_AGE_SECS {
        return Err(LogoutError::BadIssueTime);
    }
    if !claims
        .events
        .as_ref()
        .is_some_and(|e| e.get(LOGOUT_EVENT).is_some_and(|v| v.is_object()))
    {
        return Err(LogoutError::NotALogoutEvent);
    }
    if claims.nonce.is_some() {
        return Err(LogoutError::Nonce);
    }
    if claims.sub.as_deref().is_none_or(str::is_empty)
        && claims.sid.as_deref().is_none_or(str::is_empty)
    {
        return Err(LogoutError::NoSubject);
    }
    let jti = claims.jti.as_deref().filter(|j| !j.is_empty());
    let jti = jti.ok_or(LogoutError::NoId)?;
    // Counted per issuer only now that the token is the issuer's own: junk posted by anyone
    // is braked per client address by the route's rule and cannot spend the issuer's budget.
    // Before the `jti` is kept, so a refused token is still taken when the provider retries.
    if let Some(decision) = state.limiter.hit(ISSUER_RULE, &claims.iss).await
        && !decision.allowed
    {
        let wait = u64::try_from(decision.reset - now).unwrap_or(1).max(1);
        metrics::counter!("gatehouse_rate_limit_refusals_total", "rule" => ISSUER_RULE)
            .increment(1);
        return Err(LogoutError::RateLimited(wait));
    }
    // Remembered as long as the token could be presented again.
    let until = claims.exp.unwrap_or(iat + MAX_AGE_SECS).max(iat) + leeway;
    let ttl = Duration::from_secs(u64::try_from(until - now).unwrap_or(1).max(1));
    let first = state
        .auth
        .sessions
        .first_sighting("logout-jti", &format!("{}\0{jti}", claims.iss), ttl)
        .await
        .map_err(|e| LogoutError::Unavailable(e.to_string()))?;
    if !first {
        return Err(LogoutError::Replayed);
    }
    Ok(claims)
}

/// The `sid` of the ID token a session was made with. The token was verified when the
/// session was made and is kept server-side, so its payload is read as it is.
/// The key a provider's session id is remembered under: with its issuer, since two providers
/// may use the same ids.
fn sid_key(issuer: &str, sid: &str) -> String {
    format!("{issuer}\0{sid}")
}

/// At sign-in: remembers whose the provider's session `sid` is, for as long as a session made
/// from it can live, since a logout token may name the `sid` alone.
pub async fn remember_sid(state: &AppState, issuer: &str, sid: &str, user_id: i64) {
    let sessions = &state.auth.sessions;
    if let Err(e) = sessions
        .remember(
            "sid",
            &sid_key(issuer, sid),
            &user_id.to_string(),
            sessions.lifetime(),
        )
        .await
    {
        tracing::warn!(error = %e, "the provider's session id could not be kept; a logout naming it alone will not find this session");
    }
}

fn sid_of(session: &SessionData) -> Option<String> {
    let payload = session.id_token.as_deref()?.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sid")?.as_str().map(str::to_string)
}

/// Ends the sessions a verified logout token names: with `sid`, those made from that
/// provider session; without, every session of the user. Returns the user and how many.
async fn end_sessions(
    state: &AppState,
    claims: &LogoutClaims,
) -> Result<Option<(crate::store::User, usize)>, LogoutError> {
    let unavailable = |e: &dyn std::fmt::Display| LogoutError::Unavailable(e.to_string());
    let user = match (claims.sub.as_deref().filter(|s| !s.is_empty()), &claims.sid) {
        (Some(sub), _) => crate::auth::users::by_subject(&state.store.db(), &claims.iss, sub)
            .await
            .map_err(|e| unavailable(&e))?,
        // `sid` alone: whose it is was remembered at sign-in.
        (None, Some(sid)) => {
            let owner = state
                .auth
                .sessions
                .recall("sid", &sid_key(&claims.iss, sid))
                .await
                .map_err(|e| unavailable(&e))?
                .and_then(|id| id.parse::<i64>().ok());
            match owner {
                Some(id) => state.user(id).await.map_err(|e| unavailable(&e))?,
                None => None,
            }
        }
        (None, None) => None,
    };
    let Some(user) = user else {
        return Ok(None);
    };
    let sessions = &state.auth.sessions;
    let ended = match &claims.sid {
        Some(sid) => {
            sessions
                .revoke_where(user.id, |s| sid_of(s).as_deref() == Some(sid.as_str()))
                .await
        }
        None => sessions.revoke_all(user.id).await,
    }
    .map_err(|e| LogoutError::Unavailable(e.to_string()))?;
    Ok(Some((user, ended)))
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `POST /auth/backchannel-logout`: 200 once the named sessions have ended (also when there
/// were none), 400 `{error, error_description}` for a token that fails a check, 503 when
/// the session store cannot be reached (the provider tries again).
pub async fn backchannel_logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Bytes,
) -> Response {
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    let result = match token {
        None => Err(LogoutError::Missing),
        Some(token) => match verify(&state, &token).await {
            Ok(claims) => end_sessions(&state, &claims)
                .await
                .map(|ended| (claims, ended)),
            Err(e) => Err(e),
        },
    };
    let client_ip = Some(ip);
    match result {
        Ok((claims, ended)) => {
            let (user, count) = ended.map_or((None, 0), |(user, n)| (Some(user), n));
            tracing::info!(sessions_ended = count, "back-channel logout");
            let _ = crate::store::audit::record(
                &state.store.db(),
                &AuditEvent {
                    kind: "backchannel_logout",
                    outcome: "success",
                    actor_id: user.as_ref().map(|u| u.id),
                    actor: user.and_then(|u| u.email),
                    client_ip,
                    details: json!({
                        "sessions_ended": count,
                        "by": if claims.sid.is_some() { "sid" } else { "sub" },
                    }),
                    ..AuditEvent::default()
                },
            )
            .await;
            answer(StatusCode::OK, json!({}))
        }
        Err(LogoutError::RateLimited(wait)) => {
            tracing::warn!(
                wait_s = wait,
                "back-channel logout: the issuer's rate limit is spent"
            );
            let mut response = answer(
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "temporarily_unavailable", "error_description":
                    LogoutError::RateLimited(wait).to_string()}),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        Err(LogoutError::Unavailable(e)) => {
            tracing::warn!(error = %e, "back-channel logout could not reach the session store");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "temporarily_unavailable", "error_description": "try again"}),
            )
        }
        Err(e) => {
            tracing::warn!(reason = %e, "back-channel logout refused");
            let _ = crate::store::audit::record(
                &state.store.db(),
                &AuditEvent {
                    kind: "backchannel_logout",
                    outcome: "refused",
                    client_ip,
                    details: json!({ "reason": e.to_string() }),
                    ..AuditEvent::default()
                },
            )
            .await;
            answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "error_description": e.to_string()}),
            )
        }
    }
}
