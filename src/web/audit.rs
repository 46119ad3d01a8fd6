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
    let api = ext
        .get::<RouteMeta>()
        .is_some_and(|m| matches!(m.access, Access::Bearer | Access::BearerPublic));
    // What the log line needs is taken only for someone's request (and only when the line
    // is logged at all).
    let line = ext
        .get::<Principal>()
        .filter(|_| tracing::enabled!(target: "gatehouse::audit", tracing::Level::INFO))
        .map(|p| {
            let ip = ext.get::<ClientIp>().map_or("unknown", |c| c.0.as_str());
            (
                p.label.clone(),
                ip.to_string(),
                request.uri().path().to_string(),
            )
        });
    let personal = api || ext.get::<Principal>().is_some();
    let mut response = next.run(request).await;
    if personal {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some((user, client_ip, route)) = line {
        tracing::info!(
            target: "gatehouse::audit",
            user = %user,
            client_ip = %client_ip,
            route = %route,
            status = response.status().as_u16(),
            "authenticated request"
        );
    }
    response
}
