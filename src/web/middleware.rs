//! The shell's part of the request pipeline (`crate::pipeline::router` assembles the whole):
//! the shared outer layers every request goes through, the tag layer that opens each route
//! group, the fallbacks, and the security headers with their per-request CSP nonce.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tracing::Instrument;

use super::client_ip;
use super::error::{AppError, ErrorReport, accepts_html, render_errors};
use super::routes::{MetaByPath, RouteMeta, unrouted};
use crate::config::TrustedProxies;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest a request may take before it is answered with 503 and dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared outer layer, around the route groups `crate::pipeline::router` assembles.
pub fn shared(app: Router) -> Router {
    app.layer(ShellLayer {
        timeout: REQUEST_TIMEOUT,
    })
}

#[derive(Clone, Copy)]
pub struct ShellLayer {
    timeout: Duration,
}

impl<S> tower::Layer<S> for ShellLayer {
    type Service = Shell<S>;

    fn layer(&self, inner: S) -> Shell<S> {
        Shell {
            inner,
            timeout: self.timeout,
        }
    }
}

/// What every request passes through first, in one layer rather than a stack of six (each
/// layer is a boxed future and a poll per request, and together they were half the cost of a
/// health probe), in this order:
///
/// 1. the request gets an id (or keeps a plain one from the proxy), echoed on the answer;
/// 2. one span per request carries the id, so every log line names its request, and the
///    answer is logged once in it (probes at DEBUG);
/// 3. this request's CSP nonce and path are set for the page to read;
/// 4. a panic below becomes a rendered 500, and a request that takes longer than
///    `REQUEST_TIMEOUT` a 503, instead of a dropped connection;
/// 5. errors left by anything below are rendered (HTML or JSON) and logged once;
/// 6. security headers go on every answer, errors included.
#[derive(Clone)]
pub struct Shell<S> {
    inner: S,
    timeout: Duration,
}

impl<S> tower::Service<Request> for Shell<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone is the one not yet polled ready; the ready one serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let timeout = self.timeout;
        Box::pin(async move {
            let started = Instant::now();
            let id = request_id(request.headers_mut());
            let span = tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = %id.to_str().unwrap_or("-"),
                trace_id = tracing::field::Empty,
            );
            let reads_html = accepts_html(request.headers());
            // The nonce is made only when something rendered asks for it: a probe's JSON
            // (many a second) costs none, and its policy allows no inline anything.
            let nonce = Arc::new(OnceLock::new());
            let path: Arc<str> = Arc::from(request.uri().path());
            let guarded = AssertUnwindSafe(inner.call(request)).catch_unwind();
            let answer = async move {
                let response = match tokio::time::timeout(timeout, guarded).await {
                    Ok(Ok(Ok(response))) => response,
                    Ok(Ok(Err(never))) => match never {},
                    Ok(Err(_panic)) => {
                        AppError::Internal(anyhow::anyhow!("handler panicked")).into_response()
                    }
                    Err(_elapsed) => AppError::Unavailable(format!("no answer within {timeout:?}"))
                        .into_response(),
                };
                // Inside the scope: an error page uses this request's nonce and path too.
                render_errors(response, reads_html)
            };
            let mut response = CSP_NONCE
                .scope(Arc::clone(&nonce), REQUEST_PATH.scope(path, answer))
                .instrument(span.clone())
                .await;
            let _entered = span.enter();
            security_headers(response.headers_mut(), nonce.get());
            response.headers_mut().insert(REQUEST_ID, id);
            log_response(&response, started.elapsed());
            Ok(response)
        })
    }
}

/// This request's id: the client's (or proxy's) when it is one short plain value, else a
/// fresh one; set on the request for the layers and handlers below.
fn request_id(headers: &mut HeaderMap) -> HeaderValue {
    let mut values = headers.get_all(REQUEST_ID).iter();
    if let (Some(one), None) = (values.next(), values.next())
        && is_plain_request_id(one.as_bytes())
    {
        return one.clone();
    }
    let fresh = uuid::Uuid::new_v4()
        .hyphenated()
        .encode_lower(&mut uuid::Uuid::encode_buffer())
        .parse::<HeaderValue>();
    // A hyphenated UUID is always a valid header value; the constant is never used.
    let id = fresh.unwrap_or(HeaderValue::from_static("-"));
    headers.insert(REQUEST_ID, id.clone());
    id
}

/// The longest client-supplied request id that is kept.
const REQUEST_ID_MAX: usize = 64;

/// A client's `X-Request-Id` goes into log lines and audit rows as it is, so only one short
/// value of plain characters is kept; anything else (markup, quotes, spaces, a second
/// header, a flood of bytes) is replaced by a fresh id.
fn is_plain_request_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= REQUEST_ID_MAX
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What the first layer of a group needs.
#[derive(Clone)]
pub struct Tagging {
    pub meta: Arc<MetaByPath>,
    pub trusted: Arc<TrustedProxies>,
    /// For reading the data versions again after a write.
    pub state: crate::state::AppState,
}

/// First layer of a group: the route's metadata from the table (found by the path pattern
/// the router matched) and the client's address, as request extensions for the layers after
/// it; the route's format on an error answer, for the renderer; and, after a write, the
/// data versions read again (`read_own_writes`). One layer for the three: each layer costs a
/// boxed call and a clone of the service below it per request, and these always go together.
pub async fn tag(State(tagging): State<Tagging>, request: Request, next: Next) -> Response {
    if crate::telemetry::enabled() {
        let span = server_span(&request);
        let response = tag_inner(tagging, request, next)
            .instrument(span.clone())
            .await;
        // The answer's status on the server span; a 5xx marks it failed.
        span.record(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        );
        if response.status().is_server_error() {
            span.record("otel.status_code", "error");
        }
        return response;
    }
    tag_inner(tagging, request, next).await
}

/// The request's span for the trace exporter: named by the route template (never the path,
/// which may carry names and ids), continuing the caller's trace; its trace id goes on the
/// request's log span, so log lines and traces meet.
fn server_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unrouted", MatchedPath::as_str);
    let span = tracing::info_span!(
        target: crate::telemetry::TARGET,
        "request",
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        enduser.id = tracing::field::Empty,
    );
    crate::telemetry::continue_trace(&span, request.headers());
    if let Some(trace_id) = crate::telemetry::trace_id(&span) {
        tracing::Span::current().record("trace_id", trace_id);
    }
    span
}

async fn tag_inner(tagging: Tagging, mut request: Request, next: Next) -> Response {
    let found = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| tagging.meta.get(p.as_str()).copied())
        .unwrap_or_else(|| unrouted(request.uri().path()));
    let ip = client_ip::of_request(&request, &tagging.trusted);
    let extensions = request.extensions_mut();
    extensions.insert::<RouteMeta>(found);
    extensions.insert(ip);
    let writes = !request.method().is_safe();
    let mut response = next.run(request).await;
    if response.extensions().get::<ErrorReport>().is_some() {
        response.extensions_mut().insert(found.format);
    }
    if writes {
        read_own_writes(&tagging.state).await;
    }
    response
}

/// After a write through this instance (any method but the safe ones), the data versions are
/// read again before the answer leaves, so the next request of whoever wrote sees the change
/// even if the database's announcement of it has not arrived yet. Writes are rare: one small
/// query each.
async fn read_own_writes(state: &crate::state::AppState) {
    if state.data_versions.is_live()
        && let Err(error) = state.data_versions.refresh(&state.store.db()).await
    {
        tracing::warn!(%error, "cannot read the data versions after a write");
    }
}

pub async fn not_found() -> AppError {
    AppError::not_found()
}

pub async fn method_not_allowed() -> AppError {
    AppError::MethodNotAllowed
}

/// Marks a response whose request is not worth an INFO line (load-balancer health probes,
/// many per second); it is still logged at DEBUG.
#[derive(Clone, Copy)]
pub struct QuietLog;

fn log_response(response: &Response, latency: Duration) {
    let status = response.status().as_u16();
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    if response.extensions().get::<QuietLog>().is_some() {
        tracing::debug!(status, latency_us, "response");
    } else {
        tracing::info!(status, latency_us, "response");
    }
}

tokio::task_local! {
    /// This request's CSP nonce, made on first use (`Layout::new` asks for it).
    static CSP_NONCE: Arc<OnceLock<String>>;
    /// This request's path, for the header to mark the page the user is on.
    static REQUEST_PATH: Arc<str>;
}

/// The current request's path; empty outside a request.
pub fn request_path() -> Arc<str> {
    REQUEST_PATH
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from(""))
}

/// The current request's CSP nonce; empty outside a request.
pub fn csp_nonce() -> String {
    CSP_NONCE
        .try_with(|cell| {
            cell.get_or_init(|| {
                use base64::Engine;
                let bytes: [u8; 16] = rand::random();
                base64::engine::general_purpose::STANDARD.encode(bytes)
            })
            .clone()
        })
        .unwrap_or_default()
}

/// The content security policy, with `$sources` added to the script and style sources.
macro_rules! csp {
    ($sources:literal) => {
        concat!(
            "default-src 'none'; script-src 'self'",
            $sources,
            "; style-src 'self'",
            $sources,
            "; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
             base-uri 'none'; object-src 'none'"
        )
    };
}

fn security_headers(headers: &mut HeaderMap, nonce: Option<&String>) {
    // No 'unsafe-inline' anywhere: anything inline would need this request's nonce. Without
    // one (JSON, probes, most answers) the policy is a constant, not built per request.
    let csp = match nonce {
        None => Some(HeaderValue::from_static(csp!(""))),
        Some(nonce) => HeaderValue::from_str(&format!(csp!(" 'nonce-{0}'"), nonce)).ok(),
    };
    if let Some(value) = csp {
        headers
            .entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(value);
    }
    let set = |h: &mut HeaderMap, name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // same-origin keeps URLs (and codes in them) from other sites while letting browsers
    // send a real `Origin` on our own forms; the sign-in callback sets no-referrer itself.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(
        headers,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains; preload",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        headers,
        HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn through_shell(route: Router, request: Request) -> Response {
        let app = route.layer(ShellLayer {
            timeout: Duration::from_millis(200),
        });
        match app.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    fn get_json(path: &str) -> Request {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = path.parse().expect("a path");
        request
    }

    async fn json_body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn assert_shell_headers(response: &Response) {
        let headers = response.headers();
        let id = headers.get(REQUEST_ID).expect("a request id");
        assert!(is_plain_request_id(id.as_bytes()), "{id:?}");
        for name in [
            header::CONTENT_SECURITY_POLICY,
            header::X_CONTENT_TYPE_OPTIONS,
            header::X_FRAME_OPTIONS,
            header::STRICT_TRANSPORT_SECURITY,
        ] {
            assert!(headers.contains_key(&name), "{name} missing");
        }
    }

    #[tokio::test]
    async fn a_panic_below_is_a_rendered_500_not_a_dropped_connection() {
        let route = Router::new().route(
            "/boom",
            get(|| async {
                if true {
                    panic!("boom");
                }
                "never"
            }),
        );
        let response = through_shell(route, get_json("/boom")).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_shell_headers(&response);
        let body = json_body(response).await;
        assert_eq!(body["error"], "internal_error", "{body}");
        assert!(
            !body.to_string().contains("boom"),
            "the cause leaked: {body}"
        );
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_a_rendered_503() {
        let route = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
        let response = through_shell(route, get_json("/slow")).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_shell_headers(&response);
        assert_eq!(
            response.headers().get(header::CACHE_CONTROL),
            Some(&HeaderValue::from_static("no-store"))
        );
    }

    #[tokio::test]
    async fn a_plain_request_id_is_kept_and_anything_else_replaced() {
        let echo = Router::new().route(
            "/id",
            get(|headers: HeaderMap| async move {
                headers
                    .get(REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("none")
                    .to_owned()
            }),
        );
        let mut kept = get_json("/id");
        kept.headers_mut()
            .insert(REQUEST_ID, HeaderValue::from_static("lb-42"));
        let response = through_shell(echo.clone(), kept).await;
        assert_eq!(response.headers().get(REQUEST_ID).expect("id"), "lb-42");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("a body");
        assert_eq!(&body[..], b"lb-42", "the handler saw another id");

        let mut doubled = get_json("/id");
        doubled
            .headers_mut()
            .append(REQUEST_ID, HeaderValue::from_static("a"));
        doubled
            .headers_mut()
            .append(REQUEST_ID, HeaderValue::from_static("b"));
        let mut markup = get_json("/id");
        markup
            .headers_mut()
            .insert(REQUEST_ID, HeaderValue::from_static("<b>x</b>"));
        for request in [doubled, markup, get_json("/id")] {
            let response = through_shell(echo.clone(), request).await;
            let id = response.headers().get(REQUEST_ID).expect("id").clone();
            assert_eq!(id.len(), 36, "not a fresh UUID: {id:?}");
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .expect("a body");
            assert_eq!(&body[..], id.as_bytes(), "the handler saw another id");
        }
    }

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        for ok in [
            "a",
            "req-42.A_b",
            &"x".repeat(64),
            "0f8fad5b-d9cb-469f-a165-70867728950e",
        ] {
            assert!(is_plain_request_id(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a/b",
            "<b>",
            "a\tb",
            "id\"x",
            "é",
        ] {
            assert!(!is_plain_request_id(bad.as_bytes()), "{bad}");
        }
    }
}
