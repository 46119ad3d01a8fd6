//! CSRF protection for every state-changing request on cookie-authenticated routes (the
//! pages group of the pipeline; the Bearer API and the dev provider are not in it, as no
//! cookie authenticates them): a cross-site `Origin` or `Sec-Fetch-Site` is refused whatever
//! the token, and a signed-in request must carry the session's token (`csrf_token` form
//! field or `X-CSRF-Token` header). Without a session there is nothing to forge (the guard
//! has already sent signed-out requests to protected routes away).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_ip::ClientIp;
use super::error::AppError;
use super::principal::{Principal, SessionStoreDown};
use crate::state::AppState;
use crate::store::AuditEvent;

/// Forms here are small; a larger body is refused rather than buffered.
const MAX_FORM_BYTES: usize = 64 * 1024;

pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if !matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        return next.run(request).await;
    }
    let ip = request
        .extensions()
        .get::<ClientIp>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.clone());
    let refuse = |reason: &'static str, user_id: Option<i64>| {
        let state = state.clone();
        let ip = ip.clone();
        let path = path.clone();
        async move {
            tracing::warn!(client_ip = %ip, path = %path, reason, "CSRF validation failed");
            let _ = crate::store::audit::record(
                &state.store.db(),
                &AuditEvent {
                    kind: "csrf_failure",
                    outcome: "refused",
                    actor_id: user_id,
                    client_ip: Some(ip),
                    details: json!({ "path": path, "reason": reason }),
                    ..AuditEvent::default()
                },
            )
            .await;
            AppError::BadRequest("CSRF validation failed.".into()).into_response()
        }
    };

    let headers = request.headers();
    let ours = state.config.public_url.origin().ascii_serialization();
    let same_origin_fetch = headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"same-origin");
    // Browsers send `Origin: null` on a same-origin POST from a page whose referrer policy
    // is no-referrer; `Sec-Fetch-Site` then still says where the request came from.
    let foreign_origin = headers.get(header::ORIGIN).is_some_and(|origin| {
        let origin = origin.to_str().unwrap_or("?");
        origin != ours && !(origin == "null" && same_origin_fetch)
    });
    if foreign_origin {
        return refuse("cross-origin", None).await;
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return refuse("cross-site", None).await;
    }

    // Failing open here would skip the token for a cookie that may well name a live session.
    if let Some(SessionStoreDown(e)) = request.extensions().get::<SessionStoreDown>() {
        tracing::warn!(client_ip = %ip, path = %path, error = %e, "CSRF check impossible: session store down");
        return AppError::UnavailableFor {
            retry_after: 5,
            message: "Your session could not be checked just now. Please try again in a moment."
                .into(),
        }
        .into_response();
    }
    let signed_in = request
        .extensions()
        .get::<Principal>()
        .and_then(|p| Some((p.user_id?, p.csrf.clone()?)));
    let Some((user_id, expected)) = signed_in else {
        return next.run(request).await;
    };
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse("body too large", Some(user_id)).await;
    };
    let token = header_token.or_else(|| {
        url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf_token")
            .map(|(_, v)| v.into_owned())
    });
    let valid = token.as_deref().is_some_and(|t| {
        aws_lc_rs::constant_time::verify_slices_are_equal(t.as_bytes(), expected.as_bytes()).is_ok()
    });
    if !valid {
        return refuse(
            if token.is_some() {
                "wrong token"
            } else {
                "missing token"
            },
            Some(user_id),
        )
        .await;
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
