//! The HTTP shell: routes of the shell itself, the error type, assets and the middleware
//! stack. Business logic lives in the feature folders.

pub mod assets;
pub mod client_ip;
pub mod error;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod ratelimit;

use axum::Router;
use axum::routing::get;

use crate::auth;
use crate::state::AppState;
use error::AppError;

pub fn router(state: AppState) -> Router {
    let metrics_on = state.config.metrics_bind.is_some();
    let dev_idp = state.dev_idp.clone();
    let limiter_state = state.clone();
    let mut routes = Router::new()
        .route("/", get(pages::show_home))
        .route("/auth/login", get(auth::routes::start_login))
        .route("/auth/callback", get(auth::routes::finish_login))
        .route("/auth/logout", axum::routing::post(auth::routes::logout))
        .route("/profile", get(auth::routes::show_profile))
        .merge(crate::account::router())
        .merge(crate::admin::router())
        .route("/health", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/static/{name}", get(assets::serve_asset))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    if let Some(idp) = dev_idp {
        routes = routes.merge(crate::devidp::router(idp));
    }
    routes = routes.layer(axum::middleware::from_fn_with_state(
        limiter_state,
        ratelimit::enforce,
    ));
    if metrics_on {
        routes = routes.layer(axum::middleware::from_fn(metrics::record));
    }
    middleware::apply(routes)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}
