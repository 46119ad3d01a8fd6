//! The one route table. It builds the router, decides what each route goes through (who may
//! reach it, its rate-limit rule, whether it answers HTML or JSON), and tests walk it (axum
//! cannot list its own routes): signed out, as a non-admin, without a CSRF token, with
//! methods it does not declare.

use std::collections::HashMap;

use axum::routing::{MethodRouter, get, post};

use super::{assets, health, pages};
use crate::auth;
use crate::state::AppState;

/// Who may reach a route. Anything not marked otherwise needs a signed-in user: a page that
/// forgets to ask for the user is still protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Probes and static files: no session, no limit, no CSRF, nothing but the shared layers.
    Probe,
    /// Anyone, signed in or not (the start page, sign-in itself).
    Public,
    /// A signed-in user (the default).
    SignedIn,
    /// A signed-in administrator.
    Admin,
    /// The JSON API: a valid Bearer access token, never a cookie.
    Bearer,
    /// The API's own description: anyone, no token.
    BearerPublic,
}

/// What a route answers in, and so how its errors are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
}

/// What the pipeline needs to know of a route; a request extension from the group's first
/// layer on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMeta {
    pub access: Access,
    pub format: Format,
    /// The rate-limit rule (a key of `GATEHOUSE_RATE_LIMITS`); `None` = never limited.
    pub rule: Option<&'static str>,
}

pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
    pub handler: MethodRouter<AppState>,
    pub meta: RouteMeta,
}

impl Route {
    /// A page for signed-in users, limited by rule `default`.
    pub fn page(
        path: &'static str,
        methods: &'static [&'static str],
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            path,
            methods,
            handler,
            meta: RouteMeta {
                access: Access::SignedIn,
                format: Format::Html,
                rule: Some("default"),
            },
        }
    }

    /// An API route: Bearer token with rule `api`, JSON.
    pub fn api(
        path: &'static str,
        methods: &'static [&'static str],
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            meta: RouteMeta {
                access: Access::Bearer,
                format: Format::Json,
                rule: Some("api"),
            },
            ..Route::page(path, methods, handler)
        }
    }

    /// A probe or static file: nothing but the shared layers.
    pub fn probe(
        path: &'static str,
        methods: &'static [&'static str],
        handler: MethodRouter<AppState>,
    ) -> Self {
        Route {
            meta: RouteMeta {
                access: Access::Probe,
                format: Format::Json,
                rule: None,
            },
            ..Route::page(path, methods, handler)
        }
    }

    pub fn public(mut self) -> Self {
        self.meta.access = match self.meta.access {
            Access::Bearer => Access::BearerPublic,
            _ => Access::Public,
        };
        self
    }

    pub fn admin(mut self) -> Self {
        self.meta.access = Access::Admin;
        self
    }

    pub fn json(mut self) -> Self {
        self.meta.format = Format::Json;
        self
    }

    pub fn rule(mut self, rule: &'static str) -> Self {
        self.meta.rule = Some(rule);
        self
    }
}

/// Every route of the application (the dev provider's, mounted only in dev mode, aside).
pub fn table() -> Vec<Route> {
    let mut routes = vec![
        Route::page("/", &["GET"], get(pages::show_home)).public(),
        Route::page("/auth/login", &["GET"], get(auth::routes::start_login))
            .public()
            .rule("auth.login"),
        Route::page("/auth/callback", &["GET"], get(auth::routes::finish_login))
            .public()
            .rule("auth.callback"),
        Route::page("/auth/logout", &["POST"], post(auth::routes::logout)).public(),
        Route::probe("/health", &["GET"], get(health::live)),
        Route::probe("/health/ready", &["GET"], get(health::ready)),
        Route::probe("/static/{name}", &["GET"], get(assets::serve_asset)),
    ];
    routes.extend(crate::directory::routes::routes());
    routes.extend(crate::api::routes::routes());
    routes.extend(crate::account::routes());
    routes.extend(crate::admin::routes());
    routes
}

/// The routes' metadata by path, for the pipeline's layers to find by `MatchedPath`.
pub type MetaByPath = HashMap<&'static str, RouteMeta>;

/// What a request no route claims goes through: public (so it gets its 404, not a sign-in
/// prompt), limited by rule `default`, and JSON under the API's prefix.
pub fn unrouted(path: &str) -> RouteMeta {
    RouteMeta {
        access: Access::Public,
        format: if path.starts_with(crate::api::PREFIX) {
            Format::Json
        } else {
            Format::Html
        },
        rule: Some("default"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                "/auth/callback",
                "/auth/login",
                "/auth/logout"
            ]
        );
    }
}
