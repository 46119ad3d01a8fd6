//! What a route of the route table is: its path, methods and handler, and what the pipeline
//! does with it (who may reach it, its rate-limit rule, whether it answers HTML or JSON).
//! Each feature lists its routes; `crate::pipeline::table` gathers them into the one table
//! that builds the router and that tests walk (axum cannot list its own routes): signed out,
//! as a non-admin, without a CSRF token, with methods a route does not declare.

use std::collections::HashMap;

use axum::routing::{MethodRouter, get};

use super::{assets, health};
use crate::state::AppState;

/// Where the JSON API lives; an address under it that names no route answers in JSON.
pub const API_PREFIX: &str = "/api/";

/// The shell's own routes: probes and static files.
pub fn routes() -> Vec<Route> {
    vec![
        Route::probe("/health", &["GET"], get(health::live)),
        Route::probe("/health/ready", &["GET"], get(health::ready)),
        Route::probe("/static/{name}", &["GET"], get(assets::serve_asset)),
    ]
}

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

/// The routes' metadata by path, for the pipeline's layers to find by `MatchedPath`.
pub type MetaByPath = HashMap<&'static str, RouteMeta>;

/// What a request no route claims goes through: public (so it gets its 404, not a sign-in
/// prompt), limited by rule `default`, and JSON under the API's prefix.
pub fn unrouted(path: &str) -> RouteMeta {
    RouteMeta {
        access: Access::Public,
        format: if path.starts_with(API_PREFIX) {
            Format::Json
        } else {
            Format::Html
        },
        rule: Some("default"),
    }
}
