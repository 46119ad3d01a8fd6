//! The JSON API: Bearer access tokens from the same identity provider(s) (verified in
//! `auth::bearer`), scopes per endpoint, errors per RFC 6750, an OpenAPI document.

pub mod doc;
pub mod routes;

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
