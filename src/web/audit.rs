//! The last layer before a handler: the audit log line of every authenticated request, and
//! `Cache-Control: no-store` on every answer that is someone's own (a signed-in page, any API
//! answer, refusals included): no shared or browser cache keeps it.

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::client_ip::ClientIp;
use super::principal::Principal;
use super::routes::{Access, RouteMeta};

pub async fn record(request: Request, next: Next) -> Response {
    let ext = request.extensions();
    let principal = ext.get::<Principal>().map(|p| p.label.clone());
    let api = ext
        .get::<RouteMeta>()
        .is_some_and(|m| matches!(m.access, Access::Bearer | Access::BearerPublic));
    let ip = ext.get::<ClientIp>().cloned();
    let path = request.uri().path().to_string();
    let mut response = next.run(request).await;
    if principal.is_some() || api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(user) = principal {
        tracing::info!(
            target: "gatehouse::audit",
            user = %user,
            client_ip = %ip.map_or_else(|| "unknown".to_string(), |c| c.0),
            route = %path,
            status = response.status().as_u16(),
            "authenticated request"
        );
    }
    response
}
