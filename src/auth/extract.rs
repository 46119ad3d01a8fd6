//! `CurrentUser`: the signed-in user, as an extractor in the handler's signature. A signed-out
//! page request is sent to sign in and back; a JSON request gets 401.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use serde_json::json;

use super::session::SessionData;
use crate::state::AppState;
use crate::store::User;
use crate::web::error::{AppError, wants_json};
use crate::web::pages::hop_page;

/// The session found for a request's cookie, when a middleware (the rate limiter) already
/// looked it up; saves the handler a second round trip to the session store.
#[derive(Clone)]
pub struct SessionLookup(pub Option<(String, SessionData)>);

/// The session of a request's cookie, if any: what `CurrentUser` and the rate limiter share.
pub async fn lookup_session(
    headers: &axum::http::HeaderMap,
    state: &AppState,
) -> Result<Option<(String, SessionData)>, super::session::SessionError> {
    let jar = CookieJar::from_headers(headers);
    let Some(id) = jar
        .get(state.auth.session_cookie())
        .map(|c| c.value().to_string())
    else {
        return Ok(None);
    };
    Ok(state.auth.sessions.load(&id).await?.map(|s| (id, s)))
}

pub struct CurrentUser {
    pub user: User,
    pub session: SessionData,
    pub session_id: String,
}

pub enum SignedOut {
    /// A page: go sign in, then come back here.
    SignIn {
        next: String,
    },
    /// A deep link from another site: the Strict cookie was not sent; hop once same-origin.
    CrossSiteHop {
        target: String,
    },
    Json,
    Failed(AppError),
}

impl IntoResponse for SignedOut {
    fn into_response(self) -> Response {
        match self {
            SignedOut::SignIn { next } => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("next", &next)
                    .finish();
                Redirect::to(&format!("/auth/login?{query}")).into_response()
            }
            SignedOut::CrossSiteHop { target } => hop_page("Opening Gatehouse…", &target),
            SignedOut::Json => (
                StatusCode::UNAUTHORIZED,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(json!({"error": "unauthorized", "message": "Sign in first."})),
            )
                .into_response(),
            SignedOut::Failed(e) => e.into_response(),
        }
    }
}

fn is_cross_site_navigation(parts: &Parts) -> bool {
    let h = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    h("sec-fetch-site") == Some("cross-site") && h("sec-fetch-mode") == Some("navigate")
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = SignedOut;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignedOut> {
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let signed_out = || {
            if wants_json(parts.uri.path()) {
                SignedOut::Json
            } else if parts.method == axum::http::Method::GET && is_cross_site_navigation(parts) {
                SignedOut::CrossSiteHop {
                    target: path_and_query.clone(),
                }
            } else {
                SignedOut::SignIn {
                    next: path_and_query.clone(),
                }
            }
        };
        let found = match parts.extensions.get::<SessionLookup>() {
            Some(SessionLookup(found)) => found.clone(),
            None => lookup_session(&parts.headers, state)
                .await
                .map_err(|e| SignedOut::Failed(AppError::Unavailable(e.to_string())))?,
        };
        let Some((id, session)) = found else {
            return Err(signed_out());
        };
        let user = match state.store.user(session.user_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return Err(signed_out()),
            Err(e) => return Err(SignedOut::Failed(e.into())),
        };
        Ok(CurrentUser {
            user,
            session,
            session_id: id,
        })
    }
}
