//! The HTTP shell: the request pipeline (`middleware`), the route table (`routes`), the one
//! error type (`error`), and the layers and routes of the shell itself (client address, CSRF,
//! rate limits, the audit line, probes, assets, metrics). Business logic lives in the
//! feature folders.

pub mod assets;
pub mod audit;
pub mod client_ip;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod pages;
pub mod ratelimit;
pub mod routes;

use axum::Router;

use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    middleware::apply(state)
}
