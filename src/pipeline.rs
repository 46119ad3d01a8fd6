//! The one route table and the whole request pipeline, readable top to bottom in `router`:
//! the shared outer layers (`web::middleware::shared`), then three route groups, each with
//! only the layers it needs. The table says which group a route is in and what the group's
//! layers do with it (who may reach it, its rate-limit rule, HTML or JSON).
//!
//! This is the composition root of the HTTP side: it names the shell's layers (`web`), the
//! identity layers (`auth`) and every feature's routes, so none of them names another's.

use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use tower::ServiceBuilder;

use crate::auth::layers as identity;
use crate::state::AppState;
use crate::web::middleware::{Tagging, method_not_allowed, not_found, shared, tag};
use crate::web::routes::{Access, MetaByPath, Route};
use crate::web::{audit, csrf, metrics, ratelimit};

/// Every route of the application (the dev provider's, mounted only in dev mode, aside).
pub fn table() -> Vec<Route> {
    let mut routes = crate::web::routes::routes();
    routes.extend(crate::home::routes());
    routes.extend(crate::auth::routes::routes());
    routes.extend(crate::directory::pages::routes());
    routes.extend(crate::repos::routes());
    routes.extend(crate::api::routes());
    routes.extend(crate::directory::api::routes());
    routes.extend(crate::repos::api::routes());
    routes.extend(crate::account::routes());
    routes.extend(crate::admin::routes());
    routes
}

/// The application: every route of the table behind its group's layers, behind the shared
/// ones. In axum a later `.layer` wraps the earlier ones, so each stack is written with
/// `ServiceBuilder`, whose first layer is the outermost: read each list top to bottom in the
/// order a request passes through it.
pub fn router(state: AppState) -> Router {
    let routes = table();
    let tagging = Tagging {
        meta: Arc::new(routes.iter().map(|r| (r.path, r.meta)).collect()),
        trusted: Arc::new(state.config.trusted_proxies.clone()),
        state: state.clone(),
    };
    let (mut probes, mut pages, mut api) = (Router::new(), Router::new(), Router::new());
    for route in routes {
        match route.meta.access {
            Access::Probe => probes = probes.route(route.path, route.handler),
            Access::Bearer | Access::BearerPublic => api = api.route(route.path, route.handler),
            Access::Public | Access::SignedIn | Access::Admin => {
                pages = pages.route(route.path, route.handler);
            }
        }
    }

    // Probes and static files (many a second, never a form, never anyone's): nothing else.
    let probes = probes.with_state(state.clone());

    // Pages and the cookie-authenticated JSON routes. Unrouted addresses come here too, so a
    // 404 is counted, and shows the signed-in header.
    let pages = pages
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(tagging.clone(), tag))
                .layer(from_fn_with_state(state.clone(), identity::session))
                .layer(from_fn_with_state(state.clone(), identity::guard))
                .layer(from_fn_with_state(state.clone(), csrf::protect))
                .layer(from_fn_with_state(state.clone(), identity::step_up))
                .layer(from_fn_with_state(state.clone(), ratelimit::enforce))
                .layer(from_fn(audit::record)),
        );

    // The Bearer API: never a cookie, so no session and no CSRF. CORS answers a browser's
    // preflight (which carries no token) before anything else. The limiter counts before
    // the guard refuses, so a flood of bad tokens is braked per client address.
    let cors = crate::api::cors(&state.config.api.cors_origins);
    let api = api
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(
            ServiceBuilder::new()
                .option_layer(cors)
                .layer(from_fn_with_state(tagging.clone(), tag))
                .layer(from_fn_with_state(state.clone(), identity::bearer))
                .layer(from_fn_with_state(state.clone(), ratelimit::enforce))
                .layer(from_fn_with_state(state.clone(), identity::guard))
                .layer(from_fn(audit::record)),
        );

    let mut app = Router::new().merge(probes).merge(pages).merge(api);

    // Dev mode's built-in provider: public, counted by rule `default` (its routes are not in
    // the table: as unrouted addresses they get that metadata). No session and no CSRF: its
    // forms are the provider's, posted by a browser that may hold a Gatehouse session, and
    // its token endpoint is called by the relying party's server.
    if let Some(idp) = state.dev_idp.clone() {
        app = app.merge(
            crate::devidp::router(idp).layer(
                ServiceBuilder::new()
                    .layer(from_fn_with_state(
                        Tagging {
                            meta: Arc::new(MetaByPath::new()),
                            ..tagging
                        },
                        tag,
                    ))
                    .layer(from_fn_with_state(state.clone(), ratelimit::enforce)),
            ),
        );
    }
    if state.config.metrics_bind.is_some() {
        app = app.layer(from_fn(metrics::record));
    }
    shared(app)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::routes::unrouted;

    fn rule_of(path: &str) -> Option<&'static str> {
        table()
            .iter()
            .find(|r| r.path == path)
            .map_or_else(|| unrouted(path).rule, |r| r.meta.rule)
    }

    #[test]
    fn rules_by_path() {
        assert_eq!(rule_of("/auth/login"), Some("auth.login"));
        assert_eq!(rule_of("/gh/search.json"), Some("gh.search_json"));
        assert_eq!(rule_of("/api/v1/me"), Some("api"));
        assert_eq!(rule_of("/admin/users"), Some("default"));
        assert_eq!(rule_of("/health"), None);
        assert_eq!(rule_of("/health/ready"), None);
        assert_eq!(rule_of("/static/{name}"), None);
        assert_eq!(rule_of("/healthz"), Some("default"));
    }

    #[test]
    fn every_rule_named_in_the_table_exists() {
        let rules = crate::config::values::rate_limits(None).expect("defaults");
        for route in table() {
            if let Some(rule) = route.meta.rule {
                assert!(rules.contains_key(rule), "{}: {rule}", route.path);
            }
        }
    }

    #[test]
    fn public_routes_are_few_and_named() {
        let mut public: Vec<&str> = table()
            .iter()
            .filter(|r| matches!(r.meta.access, Access::Public | Access::BearerPublic))
            .map(|r| r.path)
            .collect();
        public.sort_unstable();
        assert_eq!(
            public,
            [
                "/",
                "/api/v1/openapi.json",
                "/auth/backchannel-logout",
                "/auth/callback",
                "/auth/login",
                "/auth/logout"
            ]
        );
    }
}
