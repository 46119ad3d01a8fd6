//! The pipeline's identity layers (`web::middleware::apply` puts them in order):
//!
//! - `session`: the cookie's session, looked up once per request and handed on as a
//!   `SessionLookup` extension (or `SessionStoreDown`);
//! - `bearer`: the `Authorization` header's access token, verified once per request and
//!   handed on as `VerifiedBearer`;
//! - `guard`: default deny. The route's `Access` in the table decides; a page reached signed
//!   out is sent to sign in, a JSON route answers 401, an admin route 403 to others, an API
//!   route refuses a missing or invalid token. What it found (`CurrentUser`, `AdminReason`)
//!   goes on to the handler's extractors.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::bearer::VerifiedBearer;
use super::extract::{CurrentUser, SessionEnded, SessionLookup, SessionStoreDown, not_admin};
use super::session::{SessionData, SessionError};
use crate::state::AppState;
use crate::web::error::{AppError, ErrorReport, ErrorViewer};
use crate::web::principal::Principal;
use crate::web::routes::{Access, Format, RouteMeta};

pub async fn session(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let id = jar
        .get(state.auth.session_cookie())
        .map(|c| c.value().to_string());
    let has_cookie = id.is_some();
    let found = match id {
        None => Ok(None),
        Some(id) => load(&state, &mut request, &id)
            .await
            .map(|s| s.map(|s| (id, s))),
    };
    if matches!(found, Ok(None)) && has_cookie {
        request.extensions_mut().insert(SessionEnded);
    }
    // Kept for an error page's header: who, not the whole session.
    let viewer = match found {
        Ok(found) => {
            let viewer = found.as_ref().map(|(_, s)| (s.user_id, s.csrf.clone()));
            if let Some((_, s)) = &found {
                if crate::telemetry::enabled() {
                    let who = state
                        .auth
                        .sessions
                        .pseudonym(&format!("user:{}", s.user_id));
                    tracing::Span::current().record("enduser.id", who);
                }
                request.extensions_mut().insert(Principal {
                    key: format!("user:{}", s.user_id),
                    label: s.email.clone().unwrap_or_default(),
                    user_id: Some(s.user_id),
                    csrf: Some(s.csrf.clone()),
                });
            }
            request.extensions_mut().insert(SessionLookup(found));
            viewer
        }
        Err(e) => {
            request
                .extensions_mut()
                .insert(SessionStoreDown(e.to_string()));
            None
        }
    };
    let mut response = next.run(request).await;
    // An error page keeps the signed-in header: the user is looked up for failures only.
    if let Some((user_id, csrf)) = viewer
        && response.extensions().get::<ErrorReport>().is_some()
        && response.extensions().get::<ErrorViewer>().is_none()
        && let Ok(Some(user)) = state.user(user_id).await
    {
        response.extensions_mut().insert(ErrorViewer { user, csrf });
    }
    response
}

/// The cookie's session. Under a rule the limiter counts hit by hit (in Redis, like the
/// sessions), the read and the hit go in one round trip, and the hit travels on to the limiter
/// layer as `Counted`; otherwise a plain read.
async fn load(
    state: &AppState,
    request: &mut Request,
    id: &str,
) -> Result<Option<SessionData>, SessionError> {
    let rule = request.extensions().get::<RouteMeta>().and_then(|m| m.rule);
    let sessions = &state.auth.sessions;
    if let Some(rule) = rule
        && state.limiter.counts_each_hit(rule)
        && let Some(keys) = sessions.redis_keys(id)
    {
        let fallback = crate::web::ratelimit::address_key(request);
        if let Some(read) = state.limiter.hit_with_session(rule, &keys, &fallback).await {
            request.extensions_mut().insert(read.counted);
            return match read.session {
                Some((index, raw)) => sessions.admit_raw(id, index, &raw).await,
                None => Ok(None),
            };
        }
    }
    sessions.load(id).await
}

pub async fn bearer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let needs_token = request
        .extensions()
        .get::<RouteMeta>()
        .is_some_and(|m| m.access == Access::Bearer);
    if needs_token {
        let result = state.api.verify(request.headers()).await;
        if let Ok(token) = &result {
            let who = token.principal();
            if crate::telemetry::enabled() {
                let pseudonym = state.auth.sessions.pseudonym(&format!("token:{who}"));
                tracing::Span::current().record("enduser.id", pseudonym);
            }
            request.extensions_mut().insert(Principal {
                key: format!("token:{who}"),
                label: who,
                user_id: None,
                csrf: None,
            });
        }
        request.extensions_mut().insert(VerifiedBearer(result));
    }
    next.run(request).await
}

pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // No metadata means the pipeline was assembled without its tag layer: refuse.
    let Some(meta) = request.extensions().get::<RouteMeta>().copied() else {
        return AppError::Internal(anyhow::anyhow!("route without metadata")).into_response();
    };
    match meta.access {
        Access::Probe | Access::Public | Access::BearerPublic => {}
        Access::Bearer => match request.extensions().get::<VerifiedBearer>() {
            Some(VerifiedBearer(Ok(_))) => {}
            Some(VerifiedBearer(Err(e))) => return AppError::from(e.clone()).into_response(),
            None => {
                return AppError::from(super::bearer::BearerError::Missing).into_response();
            }
        },
        Access::SignedIn | Access::Admin => match signed_in(&state, &mut request).await {
            Ok(None) => {
                let mut response = sign_in_first(&request, meta).into_response();
                // The cookie of an ended session is cleared: it will not be found again.
                if request.extensions().get::<SessionEnded>().is_some() {
                    // (A jar's removal is sent only for a cookie the request carried.)
                    let cleared = CookieJar::from_headers(request.headers())
                        .remove(super::routes::session_cookie_removal(&state));
                    response = (cleared, response).into_response();
                }
                return response;
            }
            Ok(Some(current)) => {
                if meta.access == Access::Admin {
                    let reason = match state.admin_reason(&current.user).await {
                        Ok(reason) => reason,
                        Err(e) => return AppError::from(e).into_response(),
                    };
                    if !reason.is_admin() {
                        let path = request.uri().path().to_string();
                        let mut response = not_admin(&current.user, &path).into_response();
                        response.extensions_mut().insert(ErrorViewer {
                            user: current.user.clone(),
                            csrf: current.session.csrf.clone(),
                        });
                        return response;
                    }
                    request.extensions_mut().insert(reason);
                }
                request.extensions_mut().insert(current);
            }
            Err(e) => return e.into_response(),
        },
    }
    next.run(request).await
}

/// The signed-in user of a protected route; `None` when there is none. (A future that
/// borrows the request across an await would not be `Send`: what is needed is taken out
/// first, and the refusal is built by the caller only when it is needed.)
fn signed_in(
    state: &AppState,
    request: &mut Request,
) -> impl Future<Output = Result<Option<CurrentUser>, AppError>> + Send + use<> {
    let store_down = request
        .extensions()
        .get::<SessionStoreDown>()
        .map(|SessionStoreDown(e)| e.clone());
    // Taken, not copied: from here on the session travels inside `CurrentUser`.
    let found = request
        .extensions_mut()
        .remove::<SessionLookup>()
        .and_then(|SessionLookup(s)| s);
    let state = state.clone();
    let client_ip = request
        .extensions()
        .get::<crate::web::client_ip::ClientIp>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.clone());
    async move {
        if let Some(e) = store_down {
            return Err(AppError::Unavailable(e));
        }
        let Some((id, session)) = found else {
            return Ok(None);
        };
        let user = state.user(session.user_id).await?;
        Ok(user.map(|user| CurrentUser {
            user,
            session,
            session_id: id,
            client_ip,
        }))
    }
}

fn sign_in_first(request: &Request, meta: RouteMeta) -> AppError {
    let next = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let h = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    // A deep link from another site arrives without the Strict session cookie; one
    // same-origin hop brings it along before deciding the user is signed out.
    let page_view = meta.format == Format::Html && request.method() == Method::GET;
    let hop = page_view
        && h("sec-fetch-site") == Some("cross-site")
        && h("sec-fetch-mode") == Some("navigate");
    let ended = page_view && request.extensions().get::<SessionEnded>().is_some();
    AppError::SignInRequired { next, hop, ended }
}

/// Step-up: an admin change (any method but GET/HEAD on an admin route) needs a sign-in at
/// the provider no older than `GATEHOUSE_ADMIN_MAX_AGE`. Otherwise nothing is changed and the
/// admin is sent (303, so the browser follows with a GET and never re-sends the form) through
/// a fresh sign-in that lands on the page the form was on, where they submit it again. Runs
/// after CSRF, so a forged form gets the CSRF refusal, not a sign-in prompt.
pub async fn step_up(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let max_age = state.config.admin_max_age;
    let is_change = !matches!(*request.method(), Method::GET | Method::HEAD);
    let admin = request
        .extensions()
        .get::<RouteMeta>()
        .is_some_and(|m| m.access == Access::Admin);
    if max_age.is_zero() || !is_change || !admin {
        return next.run(request).await;
    }
    let Some(current) = request.extensions().get::<CurrentUser>() else {
        return next.run(request).await;
    };
    let age = current
        .session
        .auth_time
        .map(|t| chrono::Utc::now().timestamp().saturating_sub(t));
    let max = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    if age.is_some_and(|a| a <= max) {
        return next.run(request).await;
    }
    tracing::info!(
        user = ?current.user.email,
        path = request.uri().path(),
        sign_in_age_s = ?age,
        "admin change needs a fresh sign-in"
    );
    let landing = form_page(&state, &request);
    super::routes::begin_sign_in(&state, landing, true)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The page a form was posted from: the `Referer`, when it is one of ours (the pages send it
/// within the site), else the admin home.
fn form_page(state: &AppState, request: &Request) -> String {
    let public = &state.config.public_url;
    request
        .headers()
        .get(axum::http::header::REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|r| r.origin() == public.origin())
        .map(|r| {
            let path = match r.query() {
                Some(q) => format!("{}?{q}", r.path()),
                None => r.path().to_string(),
            };
            super::routes::safe_next(Some(&path))
        })
        .filter(|p| p.starts_with("/admin"))
        .unwrap_or_else(|| "/admin/users".to_string())
}
