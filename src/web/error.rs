//! The one error type of the HTTP boundary. Handlers, extractors and the pipeline's layers
//! return an `AppError`; `render_errors`, an outer layer, turns it into the answer once, by
//! the audience of the route that failed: an HTML page in the site's layout for pages,
//! `{error, message}` JSON for JSON routes and the API (with RFC 6750 challenges for token
//! errors), `Retry-After` on 429 and 503. A 500's cause is logged there, once, never sent.
//!
//! An `AppError` travels to the renderer as a response extension (`ErrorReport`) because the
//! audience is known only after routing, inside the route group's layers, while the renderer
//! sits outside them: the group's tag layer marks the response with its `Format`.

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::{
    BytesRejection, FormRejection, JsonRejection, PathRejection, QueryRejection,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::routes::Format;
use crate::store::{StoreError, User};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Nothing at this address, or no such thing (the message says which).
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    /// A request the framework refused before a handler ran (a malformed query, path or
    /// body); its status (400, 413, 415, 422) is kept.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A page that needs a signed-in user: go sign in, then come back to `next`. A deep link
    /// from another site (`hop`) first hops once same-origin, for the Strict cookie to come.
    /// A browser whose session has `ended` (signed out elsewhere, revoked, expired) is told so
    /// first, with a way to sign in again, rather than sent to the provider without a word.
    #[error("sign in first")]
    SignInRequired {
        next: String,
        hop: bool,
        ended: bool,
    },
    /// A refusal with an RFC 6750 `WWW-Authenticate` challenge (a Bearer token problem).
    #[error("{message}")]
    Challenge {
        status: StatusCode,
        code: &'static str,
        challenge: String,
        message: String,
    },
    /// A sign-in that could not complete; the page offers to try again.
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    /// Past a rate limit.
    #[error("{message}")]
    RateLimited { retry_after: i64, message: String },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Unavailable for a while that is known: answered with `Retry-After`.
    #[error("service unavailable: {message}")]
    UnavailableFor { retry_after: i64, message: String },
    /// A refusal whose JSON answer carries more than `{error, message}` (a snapshot's bad
    /// rows, a removal guard's counts): `details`' fields are added to the body.
    #[error("{message}")]
    Detailed {
        status: StatusCode,
        code: &'static str,
        message: String,
        details: Value,
    },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// The plain 404 of an address that names nothing.
    pub fn not_found() -> Self {
        AppError::NotFound("There is nothing at this address.".into())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.into())
    }
}

/// Every framework rejection becomes an `AppError`, so it is rendered (and shaped) like
/// every other error instead of axum's `text/plain`.
macro_rules! rejections {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for AppError {
            fn from(r: $rejection) -> Self {
                AppError::Rejected { status: r.status(), message: r.body_text() }
            }
        }
    )*};
}
rejections!(
    QueryRejection,
    PathRejection,
    FormRejection,
    JsonRejection,
    BytesRejection
);

/// What `render_errors` needs to render and log an error; travels as a response extension.
#[derive(Clone)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Fields added to the JSON body (the bad rows of a snapshot, a refusal's counts).
    pub extra: Option<Value>,
    /// Headers the answer carries whatever its audience (`Retry-After`, challenges).
    pub headers: HeaderMap,
    /// Where to come back to after signing in, whether to hop first, whether a session ended.
    pub sign_in: Option<(String, bool, bool)>,
    /// A brake (429, or 503 for a while): on a page, HTML only to a client that reads it.
    pub brake: bool,
    /// The cause of a 500, for the log only.
    pub internal: Option<Arc<anyhow::Error>>,
}

fn retry_after(headers: &mut HeaderMap, seconds: i64) {
    if let Ok(v) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        headers.insert(header::RETRY_AFTER, v);
    }
}

impl AppError {
    fn report(self) -> ErrorReport {
        let mut headers = HeaderMap::new();
        let mut extra = None;
        let mut sign_in = None;
        let mut internal = None;
        let brake = matches!(
            self,
            AppError::RateLimited { .. } | AppError::UnavailableFor { .. }
        );
        let (status, code, message) = match self {
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This address does not accept that method.".to_string(),
            ),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            AppError::Rejected { status, message } => {
                let code = match status {
                    StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    _ => "bad_request",
                };
                (status, code, message)
            }
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m),
            AppError::SignInRequired { next, hop, ended } => {
                sign_in = Some((next, hop, ended));
                (
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "Sign in first.".to_string(),
                )
            }
            AppError::Challenge {
                status,
                code,
                challenge,
                message,
            } => {
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, v);
                }
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    retry_after(&mut headers, 5);
                }
                (status, code, message)
            }
            AppError::SignInFailed(m) => (StatusCode::BAD_REQUEST, "sign_in_failed", m),
            AppError::RateLimited {
                retry_after: after,
                message,
            } => {
                retry_after(&mut headers, after);
                (StatusCode::TOO_MANY_REQUESTS, "ratelimit exceeded", message)
            }
            AppError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            AppError::UnavailableFor {
                retry_after: after,
                message,
            } => {
                retry_after(&mut headers, after);
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            AppError::Detailed {
                status,
                code,
                message,
                details,
            } => {
                extra = Some(details);
                (status, code, message)
            }
            AppError::Internal(e) => {
                internal = Some(Arc::new(e));
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on our side. It has been logged; please try again later."
                        .to_string(),
                )
            }
        };
        ErrorReport {
            status,
            code,
            message,
            extra,
            headers,
            sign_in,
            brake,
            internal,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let report = self.report();
        let mut response = report.status.into_response();
        response.extensions_mut().insert(report);
        response
    }
}

/// The signed-in user of a failed page request, so its error page keeps the header.
#[derive(Clone)]
pub struct ErrorViewer {
    pub user: User,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: super::pages::Layout,
    status: u16,
    reason: &'a str,
    message: &'a str,
    /// A "sign in" button to this address instead of the way back to the start page.
    sign_in: Option<String>,
    user: Option<User>,
    csrf: String,
}

/// Whether the client reads HTML: browsers say so in `Accept`.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// Renders the `ErrorReport` a handler, extractor or layer left on `response`, for a client
/// that does (`reads_html`) or does not read HTML; the single place errors are logged. An
/// answer without a report passes unchanged.
pub fn render_errors(response: Response, reads_html: bool) -> Response {
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    if let Some(cause) = &report.internal {
        tracing::error!(error = format!("{cause:#}"), "request failed");
    }
    // An answer that left no mark of its route (a panic, a timeout) is for a person when
    // their browser asks for HTML.
    let format = response
        .extensions()
        .get::<Format>()
        .copied()
        .unwrap_or(if reads_html {
            Format::Html
        } else {
            Format::Json
        });
    // A brake on a page is for a person only when a browser asked; a script that polls a
    // page gets the refusal, and when to come back, in JSON, which it can read.
    let json = match format {
        Format::Json => true,
        Format::Html => report.brake && !reads_html,
    };
    let viewer = response.extensions().get::<ErrorViewer>().cloned();
    let (mut parts, _) = response.into_parts();
    let mut rendered = match (&report.sign_in, json) {
        (Some((next, _, true)), false) => signed_out_page(next),
        (Some((next, hop, false)), false) => sign_in_redirect(next, *hop),
        _ if json => {
            let mut body = json!({ "error": report.code, "message": report.message });
            if let (Some(Value::Object(extra)), Some(obj)) = (&report.extra, body.as_object_mut()) {
                for (k, v) in extra {
                    obj.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            axum::Json(body).into_response()
        }
        _ => error_page(&report, viewer),
    };
    // A sign-in redirect or hop answers with its own status; everything else keeps the error's.
    parts.status = if report.sign_in.is_some() && !json {
        rendered.status()
    } else {
        report.status
    };
    for name in [header::CONTENT_TYPE, header::LOCATION] {
        if let Some(v) = rendered.headers_mut().remove(&name) {
            parts.headers.insert(name, v);
        }
    }
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &report.headers {
        parts.headers.insert(name, value.clone());
    }
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Response::from_parts(parts, rendered.into_body())
}

fn sign_in_href(next: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    format!("/auth/login?{query}")
}

fn sign_in_redirect(next: &str, hop: bool) -> Response {
    if hop {
        return super::pages::hop_page("Opening Gatehouse…", next);
    }
    Redirect::to(&sign_in_href(next)).into_response()
}

/// The answer to a browser whose session ended: what happened, and a way back to `next`.
fn signed_out_page(next: &str) -> Response {
    let page = ErrorPage {
        layout: super::pages::Layout::new("Signed out — Gatehouse"),
        status: StatusCode::UNAUTHORIZED.as_u16(),
        reason: "You were signed out",
        message: "Your session ended: you signed out in another window, an administrator \
                  ended it, or it was idle too long. Sign in again to carry on where you were.",
        sign_in: Some(sign_in_href(next)),
        user: None,
        csrf: String::new(),
    };
    render(&page, StatusCode::UNAUTHORIZED)
}

fn error_page(report: &ErrorReport, viewer: Option<ErrorViewer>) -> Response {
    let reason = report.status.canonical_reason().unwrap_or("Error");
    let (user, csrf) = viewer.map_or((None, String::new()), |v| (Some(v.user), v.csrf));
    let page = ErrorPage {
        layout: super::pages::Layout::new(reason),
        status: report.status.as_u16(),
        reason,
        message: &report.message,
        sign_in: (report.code == "sign_in_failed").then(|| "/auth/login".to_string()),
        user,
        csrf,
    };
    render(&page, report.status)
}

fn render(page: &ErrorPage, status: StatusCode) -> Response {
    let body = match page.render() {
        Ok(html) => Html(html).into_response(),
        // A template that cannot render is a bug; the status still tells the truth.
        Err(e) => {
            tracing::error!(error = %e, "error page failed to render");
            page.message.to_string().into_response()
        }
    };
    (status, body).into_response()
}
