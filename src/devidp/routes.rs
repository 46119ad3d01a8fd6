//! The dev provider's endpoints: discovery, JWKS, authorize (pick a demo user), token
//! (authorization code with PKCE, client credentials), userinfo and end-session.
//!
//! About 400 lines: the endpoints of a whole, if small, OpenID provider.

use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{
    DEMO_USERS, DEV_MACHINE_CLIENT_ID, DEV_MACHINE_CLIENT_SECRET, DEV_SCOPES, DemoUser, DevIdp,
    Grant, find_user,
};
use crate::auth::oidc::random_token;
use crate::auth::verify::constant_time_eq;
use crate::web::pages::Layout;

const CODE_TTL: Duration = Duration::from_secs(120);
const TOKEN_TTL_SECS: i64 = 3600;

pub fn router(idp: Arc<DevIdp>) -> Router {
    Router::new()
        .route("/dev-idp/.well-known/openid-configuration", get(discovery))
        .route("/dev-idp/jwks", get(jwks))
        .route("/dev-idp/authorize", get(show_authorize).post(authorize))
        .route("/dev-idp/token", axum::routing::post(token))
        .route("/dev-idp/userinfo", get(userinfo))
        .route("/dev-idp/end-session", get(end_session))
        .with_state(idp)
}

async fn discovery(State(idp): State<Arc<DevIdp>>) -> Json<Value> {
    let i = &idp.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "userinfo_endpoint": format!("{i}/userinfo"),
        "jwks_uri": format!("{i}/jwks"),
        "end_session_endpoint": format!("{i}/end-session"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile", "groups", "directory.read", "directory.write", "repos.read"],
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "name", "email", "email_verified", "groups"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn jwks(State(idp): State<Arc<DevIdp>>) -> Response {
    match idp.keys().await {
        Ok(keys) => Json(json!({ "keys": [keys.key.public_jwk] })).into_response(),
        Err(e) => no_key(&e),
    }
}

fn no_key(e: &anyhow::Error) -> Response {
    tracing::error!(error = %e, "dev identity provider has no signing key");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "no signing key",
    )
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    /// Only on the form post: which demo user was picked.
    user: Option<String>,
}

/// A request that cannot be sent back to the client is answered here, never redirected.
fn refuse(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("dev identity provider: {message}"),
    )
        .into_response()
}

impl DevIdp {
    fn check_authorize(&self, p: &AuthorizeParams) -> Result<(), &'static str> {
        if p.client_id.as_deref() != Some(self.client_id.as_str()) {
            return Err("unknown client_id");
        }
        if p.redirect_uri.as_deref() != Some(self.redirect_uri.as_str()) {
            return Err("redirect_uri is not the registered one");
        }
        if p.response_type.as_deref() != Some("code") {
            return Err("only response_type=code is supported");
        }
        if p.code_challenge_method.as_deref() != Some("S256") || p.code_challenge.is_none() {
            return Err("PKCE with S256 is required");
        }
        if !p
            .scope
            .as_deref()
            .unwrap_or_default()
            .split(' ')
            .any(|s| s == "openid")
        {
            return Err("the openid scope is required");
        }
        Ok(())
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "devidp_authorize.html")]
struct PickUserPage {
    layout: Layout,
    users: &'static [DemoUser],
    hidden: Vec<(&'static str, String)>,
}

async fn show_authorize(
    State(idp): State<Arc<DevIdp>>,
    Query(p): Query<AuthorizeParams>,
) -> Response {
    if let Err(m) = idp.check_authorize(&p) {
        return refuse(m);
    }
    let hidden = [
        ("response_type", &p.response_type),
        ("client_id", &p.client_id),
        ("redirect_uri", &p.redirect_uri),
        ("scope", &p.scope),
        ("state", &p.state),
        ("nonce", &p.nonce),
        ("code_challenge", &p.code_challenge),
        ("code_challenge_method", &p.code_challenge_method),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect();
    PickUserPage {
        layout: Layout::new("Dev sign-in — Gatehouse"),
        users: DEMO_USERS,
        hidden,
    }
    .into_response()
}

async fn authorize(State(idp): State<Arc<DevIdp>>, Form(p): Form<AuthorizeParams>) -> Response {
    if let Err(m) = idp.check_authorize(&p) {
        return refuse(m);
    }
    let Some(user) = p.user.as_deref().and_then(find_user) else {
        return refuse("pick one of the demo users");
    };
    let code = random_token();
    let grant = Grant {
        sub: user.sub,
        nonce: p.nonce.clone(),
        challenge: p.code_challenge.clone().unwrap_or_default(),
        redirect_uri: p.redirect_uri.clone().unwrap_or_default(),
        scope: p.scope.clone().unwrap_or_default(),
        issued: Instant::now(),
        auth_time: chrono::Utc::now().timestamp(),
    };
    if let Ok(mut codes) = idp.codes.lock() {
        codes.retain(|_, g| g.issued.elapsed() < CODE_TTL);
        codes.insert(code.clone(), grant);
    }
    let mut target = match url::Url::parse(&idp.redirect_uri) {
        Ok(u) => u,
        Err(_) => return refuse("bad redirect_uri"),
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", p.state.as_deref().unwrap_or_default())
        .append_pair("iss", &idp.issuer);
    Redirect::to(target.as_str()).into_response()
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    scope: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

/// The client from HTTP Basic (`client_secret_basic`): (id, secret).
fn basic_client(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unform = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unform(id)?, unform(secret)?))
}

async fn token(
    State(idp): State<Arc<DevIdp>>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let Some((client_id, secret)) = basic_client(&headers) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_secret_basic required",
        );
    };
    let now = chrono::Utc::now().timestamp();
    match f.grant_type.as_deref() {
        Some("authorization_code") => {
            if client_id != idp.client_id
                || !constant_time_eq(
                    secret.as_bytes(),
                    idp.client_secret.expose_secret().as_bytes(),
                )
            {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
            }
            let grant = f
                .code
                .as_deref()
                .and_then(|c| idp.codes.lock().ok().and_then(|mut codes| codes.remove(c)));
            let Some(grant) = grant.filter(|g| g.issued.elapsed() < CODE_TTL) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                );
            };
            if f.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri mismatch",
                );
            }
            let verifier = f.code_verifier.unwrap_or_default();
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if !constant_time_eq(challenge.as_bytes(), grant.challenge.as_bytes()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            let Some(user) = find_user(grant.sub) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown user");
            };
            let mut id_claims = user.claims();
            id_claims["iss"] = json!(idp.issuer);
            id_claims["aud"] = json!(idp.client_id);
            id_claims["iat"] = json!(now);
            id_claims["auth_time"] = json!(grant.auth_time);
            id_claims["exp"] = json!(now + TOKEN_TTL_SECS);
            if let Some(nonce) = &grant.nonce {
                id_claims["nonce"] = json!(nonce);
            }
            let access_claims = json!({
                "iss": idp.issuer, "sub": user.sub, "aud": idp.api_audience,
                "client_id": idp.client_id, "scope": grant.scope,
                "iat": now, "exp": now + TOKEN_TTL_SECS, "jti": random_token(),
            });
            sign_and_answer(&idp, &access_claims, Some(&id_claims)).await
        }
        Some("client_credentials") => {
            if client_id != DEV_MACHINE_CLIENT_ID
                || !constant_time_eq(secret.as_bytes(), DEV_MACHINE_CLIENT_SECRET.as_bytes())
            {
                return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
            }
            let requested = f.scope.unwrap_or_else(|| DEV_SCOPES.to_string());
            if let Some(bad) = requested
                .split(' ')
                .find(|s| !DEV_SCOPES.split(' ').any(|d| d == *s))
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("{bad} is not allowed"),
                );
            }
            let access_claims = json!({
                "iss": idp.issuer, "sub": DEV_MACHINE_CLIENT_ID, "aud": idp.api_audience,
                "client_id": DEV_MACHINE_CLIENT_ID, "cid": DEV_MACHINE_CLIENT_ID, "scope": requested,
                "iat": now, "exp": now + TOKEN_TTL_SECS, "jti": random_token(),
            });
            sign_and_answer(&idp, &access_claims, None).await
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "authorization_code or client_credentials",
        ),
    }
}

async fn sign_and_answer(idp: &DevIdp, access: &Value, id: Option<&Value>) -> Response {
    let keys = match idp.keys().await {
        Ok(keys) => keys,
        Err(e) => return no_key(&e),
    };
    let signed = keys.key.sign("at+jwt", access).and_then(|at| {
        let id_token = id.map(|c| keys.key.sign("JWT", c)).transpose()?;
        Ok((at, id_token))
    });
    match signed {
        Ok((access_token, id_token)) => {
            let mut body = json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_TTL_SECS,
                "scope": access["scope"],
            });
            if let Some(id_token) = id_token {
                body["id_token"] = json!(id_token);
            }
            ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "dev identity provider could not sign a token");
            oauth_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "signing failed",
            )
        }
    }
}

async fn userinfo(State(idp): State<Arc<DevIdp>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let unauthorized = || {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response()
    };
    let Some(token) = token else {
        return unauthorized();
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[&idp.issuer]);
    validation.set_audience(&[&idp.api_audience]);
    let Ok(keys) = idp.keys().await else {
        return unauthorized();
    };
    let Ok(data) = jsonwebtoken::decode::<Value>(token, &keys.verify_key, &validation) else {
        return unauthorized();
    };
    match data.claims["sub"].as_str().and_then(find_user) {
        Some(user) => Json(user.claims()).into_response(),
        None => unauthorized(),
    }
}

#[derive(Deserialize)]
struct EndSession {
    post_logout_redirect_uri: Option<String>,
}

async fn end_session(State(idp): State<Arc<DevIdp>>, Query(q): Query<EndSession>) -> Response {
    // The dev provider keeps no session of its own; it only sends the browser back home.
    match q.post_logout_redirect_uri {
        Some(uri) if uri == idp.post_logout_redirect_uri => Redirect::to(&uri).into_response(),
        _ => Redirect::to("/").into_response(),
    }
}
