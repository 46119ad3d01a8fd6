//! axum's extractors with their rejections turned into `AppError`, so a malformed query,
//! path or body is answered like every other error (HTML for pages, `{error, message}` JSON
//! elsewhere) instead of axum's `text/plain`. Handlers take these, never axum's own.

use axum::extract::{FromRequest, FromRequestParts, Request};

use super::error::AppError;

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(AppError))]
pub struct Form<T>(pub T);

/// A request body as bytes (limited by the route's `DefaultBodyLimit`).
pub struct Body(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Self, AppError> {
        Ok(Body(axum::body::Bytes::from_request(request, state).await?))
    }
}
