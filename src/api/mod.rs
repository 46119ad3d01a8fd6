//! The JSON API's shell: its OpenAPI document (`doc`), `/api/v1/openapi.json`, `/api/v1/me`
//! (what a token says) and CORS. Bearer tokens are verified in `auth::bearer`; features list
//! their own API routes.

pub mod doc;

use axum::Json;
use axum::routing::get;

use crate::auth::bearer::Bearer;
use crate::web::routes::Route;
use doc::{ErrorBody, MeAnswer};

/// The API's own routes; each feature lists its own API routes (`directory::api`).
pub fn routes() -> Vec<Route> {
    vec![
        Route::api("/api/v1/openapi.json", &["GET"], get(openapi_json)).public(),
        Route::api("/api/v1/me", &["GET"], get(me)),
    ]
}

/// The API's own description; public, like any API reference.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses(
        (status = 200, description = "This document (OpenAPI 3.1)"),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(doc::document())
}

/// What the token says: who it is for, which client, which scopes, and its claims.
#[utoipa::path(get, path = "/api/v1/me", tag = "tokens",
    responses(
        (status = 200, description = "The verified token", body = MeAnswer),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn me(Bearer(token): Bearer) -> Json<MeAnswer> {
    Json(MeAnswer {
        sub: token.sub.clone(),
        client_id: token.client_id.clone(),
        scopes: token.scopes.clone(),
        claims: token.claims.clone(),
    })
}

/// CORS for the API only, and only for `GATEHOUSE_CORS_ORIGINS`: Bearer tokens, never
/// cookies, so no credentials are allowed. `None` when no origin is configured.
pub fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins = origins.to_vec();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, _| {
                origins.iter().any(|o| o.as_bytes() == origin.as_bytes())
            }))
            .allow_methods([Method::GET, Method::PUT])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .expose_headers([
                header::WWW_AUTHENTICATE,
                header::HeaderName::from_static("x-ratelimit-limit"),
                header::HeaderName::from_static("x-ratelimit-remaining"),
                header::HeaderName::from_static("x-ratelimit-reset"),
            ])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
