//! One error type for every handler, rendered once by `render_errors`: an HTML page for
//! pages, JSON for `/api/…` and health routes. 500 details are logged, never sent.

use std::sync::Arc;

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    BadRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A sign-in that could not complete; the page offers to try again.
    #[error("sign-in failed: {0}")]
    SignInFailed(String),
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.into())
    }
}

/// What `render_errors` needs to render and log an error; travels as a response extension.
#[derive(Clone)]
pub struct ErrorReport {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The cause of a 500, for the log only.
    pub internal: Option<Arc<anyhow::Error>>,
}

impl AppError {
    fn report(self) -> ErrorReport {
        let (status, code, message, internal) = match self {
            AppError::NotFound => (
                StatusCode::NOT_FOUND,
                "not_found",
                "There is nothing at this address.".to_string(),
                None,
            ),
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "This address does not accept that method.".to_string(),
                None,
            ),
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m, None),
            AppError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m, None),
            AppError::SignInFailed(m) => (StatusCode::BAD_REQUEST, "sign_in_failed", m, None),
            AppError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m, None),
            AppError::Internal(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Something went wrong on our side. It has been logged; please try again later."
                    .to_string(),
                Some(Arc::new(e)),
            ),
        };
        ErrorReport {
            status,
            code,
            message,
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

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: super::pages::Layout,
    status: u16,
    reason: &'a str,
    message: &'a str,
    retry_sign_in: bool,
}

/// Whether a path is answered in JSON rather than HTML.
pub fn wants_json(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || path.starts_with("/health")
        || path.ends_with(".json")
}

/// Renders `ErrorReport`s left by handlers and extractors; the single place errors are logged.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let json = wants_json(request.uri().path());
    let response = next.run(request).await;
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    if let Some(cause) = &report.internal {
        tracing::error!(error = format!("{cause:#}"), "request failed");
    }
    let (mut parts, _) = response.into_parts();
    let mut rendered = if json {
        axum::Json(json!({ "error": report.code, "message": report.message })).into_response()
    } else {
        let page = ErrorPage {
            layout: super::pages::Layout::new(report.status.canonical_reason().unwrap_or("Error")),
            status: report.status.as_u16(),
            reason: report.status.canonical_reason().unwrap_or("Error"),
            message: &report.message,
            retry_sign_in: report.code == "sign_in_failed",
        };
        match page.render() {
            Ok(html) => Html(html).into_response(),
            // A template that cannot render is a bug; the status still tells the truth.
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                report.message.clone().into_response()
            }
        }
    };
    let content_type = rendered.headers_mut().remove(header::CONTENT_TYPE);
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Some(ct) = content_type {
        parts.headers.insert(header::CONTENT_TYPE, ct);
    }
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Response::from_parts(parts, rendered.into_body())
}
