//! The one route table: it builds the router, and tests walk it (axum cannot list its own
//! routes) to prove every state-changing route refuses a request without a CSRF token and
//! that no route answers a method it does not declare.

use axum::routing::{MethodRouter, get, post};

use super::{assets, health, pages};
use crate::auth;
use crate::state::AppState;

pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub handler: MethodRouter<AppState>,
}

impl Route {
    pub fn new(
        path: &'static str,
        methods: &'static [&'static str],
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            path,
            methods,
            handler,
        }
    }
}

/// Every route of the application (the dev provider's, mounted only in dev mode, aside).
pub fn table() -> Vec<Route> {
    let mut routes = vec![
        Route::new("/", &["GET"], get(pages::show_home)),
        Route::new("/auth/login", &["GET"], get(auth::routes::start_login)),
        Route::new("/auth/callback", &["GET"], get(auth::routes::finish_login)),
        Route::new("/auth/logout", &["POST"], post(auth::routes::logout)),
        Route::new("/health", &["GET"], get(health::live)),
        Route::new("/health/ready", &["GET"], get(health::ready)),
        Route::new("/static/{name}", &["GET"], get(assets::serve_asset)),
    ];
    routes.extend(crate::directory::routes::routes());
    routes.extend(crate::api::routes::routes());
    routes.extend(crate::account::routes());
    routes.extend(crate::admin::routes());
    routes
}

/// Paths whose state-changing requests carry no cookie authentication and so no CSRF token:
/// the dev provider's endpoints (called by the browser's form to the provider and by the
/// relying party's server) and the Bearer API.
pub fn csrf_exempt(path: &str) -> bool {
    path.starts_with("/dev-idp/") || path.starts_with("/api/")
}
