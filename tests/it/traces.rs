//! Traces by OpenTelemetry, received by an OTLP/HTTP collector in the test that decodes the
//! protobuf the binary sends: the span tree of a signed-in request, W3C `traceparent` in and
//! out, names by route template, no email anywhere, and the trace id on the log lines.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use reqwest::StatusCode;

use crate::cli::gatehouse;
use crate::devidp::dev_sign_in;
use crate::signin::Jar;
use crate::signin_refusals::signed_in_at;
use crate::support::fake_gcp::FakeGcp;
use crate::support::fake_idp::FakeIdp;
use crate::support::{TestDb, free_port, redis_url};

/// Spans received, each with its resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// An OTLP/HTTP collector: `POST /v1/traces` with `application/x-protobuf`.
async fn collector() -> (String, Received) {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(export))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), received)
}

async fn export(State(received): State<Received>, body: Bytes) -> Vec<u8> {
    let request = ExportTraceServiceRequest::decode(&body[..]).expect("OTLP protobuf");
    keep(&received, request);
    ExportTraceServiceResponse::default().encode_to_vec()
}

/// An OTLP/gRPC collector: the `TraceService/Export` call, over HTTP/2 without TLS.
async fn grpc_collector() -> (String, Received) {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
    let received: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let service = TraceServiceServer::new(GrpcCollector(received.clone()));
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream_of(listener))
            .await;
    });
    (format!("http://{addr}"), received)
}

/// The listener's connections as the stream tonic's server takes.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

struct GrpcCollector(Received);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for GrpcCollector
{
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        keep(&self.0, request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn keep(received: &Received, request: ExportTraceServiceRequest) {
    let mut received = received.lock().expect("received");
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .and_then(|r| text(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push((service.clone(), span));
            }
        }
    }
}

/// The HTTP status a span recorded.
fn status_of(span: &Span) -> Option<i64> {
    match value(&span.attributes, "http.response.status_code") {
        Some(Value::IntValue(code)) => Some(code),
        _ => None,
    }
}

fn value(attributes: &[KeyValue], key: &str) -> Option<Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.clone())
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    match value(attributes, key) {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

/// Every string in a span, for "this never appears" checks.
fn all_text(span: &Span) -> String {
    let mut out = span.name.clone();
    for kv in &span.attributes {
        out.push_str(&format!(" {}={:?}", kv.key, kv.value));
    }
    out
}

/// `gatehouse serve` on Redis with these settings (dev mode unless they name a provider),
/// exporting traces quickly; its stdout lines.
struct Served {
    child: Child,
    base: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Served {
    fn start(extra: &[(&str, &str)]) -> Served {
        let dir = tempfile::tempdir().expect("tempdir");
        let bind = format!("127.0.0.1:{}", free_port());
        let public = format!("http://{bind}");
        let redis = redis_url();
        let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
        let mut env = vec![
            ("GATEHOUSE_BIND", bind.as_str()),
            ("GATEHOUSE_PUBLIC_URL", public.as_str()),
            ("GATEHOUSE_LOG_FORMAT", "json"),
            ("GATEHOUSE_REDIS_URL", redis.as_str()),
            ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
            // Export quickly rather than every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ];
        env.extend_from_slice(extra);
        let mut child = gatehouse(dir.path(), &env, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _dir = dir;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(remaining) {
                Ok(line) if line.contains("\"listening\"") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("never listened");
                }
            }
        }
        Served {
            child,
            base: public,
            lines,
        }
    }

    /// The log lines written so far.
    fn log(&self) -> Vec<serde_json::Value> {
        self.lines
            .try_iter()
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the spans of `trace` (hex) include one named `name`.
async fn trace_with(received: &Received, trace: &[u8], name: &str) -> Vec<Span> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let spans: Vec<Span> = received
            .lock()
            .expect("received")
            .iter()
            .filter(|(_, s)| s.trace_id == trace)
            .map(|(_, s)| s.clone())
            .collect();
        if spans.iter().any(|s| s.name == name) {
            return spans;
        }
        assert!(
            Instant::now() < deadline,
            "no span {name} in trace {}; got {:#?}",
            hex::encode(trace),
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The database statements among `spans`.
fn statements<'a>(spans: &[&'a Span]) -> Vec<&'a Span> {
    spans
        .iter()
        .copied()
        .filter(|s| text(&s.attributes, "db.query.summary").is_some())
        .collect()
}

fn children<'a>(spans: &'a [Span], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.parent_span_id == parent.span_id)
        .collect()
}

async fn get(jar: &Jar, url: &str, traceparent: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .header("cookie", jar.header())
        .header("traceparent", traceparent)
        .send()
        .await
        .expect("request")
}

// Multi-threaded: the collector and the provider answer while the test reads the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_request_on_postgres_is_one_trace_with_its_redis_and_database_spans() {
    let (endpoint, received) = collector().await;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::postgres().await;
    // The session key comes from Secret Manager: its fetch at start is traced too.
    let gcp = FakeGcp::start().await;
    let key_ref = gcp.add_version("acme", "session-key", &"k".repeat(40));
    let mut env = crate::cli::provider(
        &idp,
        &[
            ("GATEHOUSE_DATABASE_URL", db.url()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "gatehouse-test"),
        ],
    );
    env.push(("GATEHOUSE_SESSION_KEY", key_ref.as_str()));
    env.extend_from_slice(&gcp.env());
    let served = Served::start(&env);
    let (jar, _) = signed_in_at(&served.base, &idp).await;

    // A caller's trace is continued: same trace id, its span the parent.
    let trace = [0x4b_u8; 16];
    let caller = [0x11_u8; 8];
    let traceparent = format!("00-{}-{}-01", hex::encode(trace), hex::encode(caller));
    let r = get(&jar, &format!("{}/profile", served.base), &traceparent).await;
    assert_eq!(r.status(), StatusCode::OK);
    let spans = trace_with(&received, &trace, "GET /profile").await;
    let names: Vec<&String> = spans.iter().map(|s| &s.name).collect();
    let server = spans
        .iter()
        .find(|s| s.name == "GET /profile")
        .expect("server span");
    assert_eq!(server.kind(), SpanKind::Server);
    assert_eq!(server.parent_span_id, caller);
    assert_eq!(
        text(&server.attributes, "http.route").as_deref(),
        Some("/profile")
    );
    assert_eq!(status_of(server), Some(200), "{:?}", server.attributes);
    // Who: a keyed hash, the same for each of the user's requests, never an email or id.
    let who = text(&server.attributes, "enduser.id").expect("enduser.id");
    assert_eq!(who.len(), 16, "{who}");
    assert!(who.chars().all(|c| c.is_ascii_hexdigit()), "{who}");

    // Its children: Redis (the session and the rate limit, one script) and the database.
    let below = children(&spans, server);
    assert!(
        below
            .iter()
            .any(|s| s.name.starts_with("redis ") && s.kind() == SpanKind::Client),
        "{names:?}"
    );
    let queries = statements(&below);
    assert!(
        queries.iter().any(|s| s.name.starts_with("SELECT")),
        "{names:?}"
    );
    for query in &queries {
        assert_eq!(query.kind(), SpanKind::Client);
        assert!(query.start_time_unix_nano <= query.end_time_unix_nano);
        assert!(query.start_time_unix_nano >= server.start_time_unix_nano);
        assert!(query.end_time_unix_nano <= server.end_time_unix_nano);
    }

    // A path with a person in its query string: named by its route, the email nowhere.
    let trace2 = [0x5c_u8; 16];
    let traceparent = format!("00-{}-{}-01", hex::encode(trace2), hex::encode(caller));
    let r = get(
        &jar,
        &format!("{}/lookup?email=bob%40example.com", served.base),
        &traceparent,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let spans = trace_with(&received, &trace2, "GET /lookup").await;
    let same_who = spans
        .iter()
        .find(|s| s.name == "GET /lookup")
        .and_then(|s| text(&s.attributes, "enduser.id"));
    assert_eq!(same_who.as_deref(), Some(who.as_str()));
    let all: Vec<(String, Span)> = received.lock().expect("received").clone();
    assert!(all.iter().all(|(service, _)| service == "gatehouse-test"));
    for (_, span) in &all {
        let text = all_text(span);
        assert!(!text.contains("@example.com"), "{text}");
    }

    // The start's secret fetch: a client span per reference under one root span.
    let fetch = all
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "Secret Manager AccessSecretVersion")
        .expect("the secret fetch's span");
    assert_eq!(fetch.kind(), SpanKind::Client);
    assert_eq!(
        text(&fetch.attributes, "gcp.secretmanager.reference").as_deref(),
        Some("projects/acme/secrets/session-key/versions/1")
    );
    let root = all
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.span_id == fetch.parent_span_id)
        .expect("its root span");
    assert_eq!(root.name, "fetch secrets from Secret Manager");
    // …and its `traceparent` went to Secret Manager with the request.
    assert_eq!(
        gcp.traceparents(),
        [Some(format!(
            "00-{}-{}-01",
            hex::encode(&fetch.trace_id),
            hex::encode(&fetch.span_id)
        ))]
    );

    // Log lines inside a traced request carry its trace id.
    let log = served.log();
    let profile_line = log
        .iter()
        .find(|l| l["message"] == "response" && l["span"]["path"] == "/profile")
        .unwrap_or_else(|| panic!("no response line for /profile in {log:#?}"));
    assert_eq!(
        profile_line["span"]["trace_id"].as_str(),
        Some(hex::encode(trace).as_str())
    );
}

/// An outgoing call carries `traceparent`, and a server continues it: the sign-in's token
/// request to the built-in provider (served by this same process) is its client span's child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_goes_out_with_calls_and_is_continued_on_the_way_in() {
    let (endpoint, received) = collector().await;
    let served = Served::start(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    dev_sign_in(&served.base, "alice").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    // The three may come in different batches: the callback's span ends last.
    let (client, token, callback) = loop {
        let all: Vec<Span> = received
            .lock()
            .expect("received")
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        let parent_of = |child: &Span| all.iter().find(|s| s.span_id == child.parent_span_id);
        let token = all.iter().find(|s| s.name == "POST /dev-idp/token");
        let client = token.and_then(parent_of);
        let callback = client.and_then(parent_of);
        if let (Some(c), Some(t), Some(cb)) = (client, token, callback) {
            break (c.clone(), t.clone(), cb.clone());
        }
        assert!(
            Instant::now() < deadline,
            "{:?}",
            all.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(client.kind(), SpanKind::Client);
    assert_eq!(client.name, "POST 127.0.0.1");
    assert_eq!(
        text(&client.attributes, "url.path").as_deref(),
        Some("/dev-idp/token")
    );
    assert_eq!(token.kind(), SpanKind::Server);
    assert_eq!(token.trace_id, client.trace_id);
    // …within the callback's trace: the client span's parent is the callback's server span.
    assert_eq!(callback.name, "GET /auth/callback");
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` sends the same spans over OTLP/gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_over_grpc_when_the_protocol_says_so() {
    let (endpoint, received) = grpc_collector().await;
    let served = Served::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ("OTEL_SERVICE_NAME", "gatehouse-grpc"),
    ]);
    let jar = dev_sign_in(&served.base, "alice").await;
    let trace = [0x7e_u8; 16];
    let traceparent = format!("00-{}-{}-01", hex::encode(trace), "33".repeat(8));
    let r = get(&jar, &format!("{}/profile", served.base), &traceparent).await;
    assert_eq!(r.status(), StatusCode::OK);
    let spans = trace_with(&received, &trace, "GET /profile").await;
    let server = spans
        .iter()
        .find(|s| s.name == "GET /profile")
        .expect("server span");
    assert_eq!(server.kind(), SpanKind::Server);
    // Its Redis commands, and its statements on SQLite (run on SQLite's own thread, under
    // the request's span all the same).
    let below = children(&spans, server);
    let names: Vec<&String> = below.iter().map(|s| &s.name).collect();
    assert!(
        below.iter().any(|s| s.name.starts_with("redis ")),
        "{names:?}"
    );
    assert!(!statements(&below).is_empty(), "{names:?}");
    let services: Vec<String> = received
        .lock()
        .expect("received")
        .iter()
        .map(|(service, _)| service.clone())
        .collect();
    assert!(
        services.iter().all(|s| s == "gatehouse-grpc"),
        "{services:?}"
    );
}

/// `OTEL_TRACES_SAMPLER=always_off` exports nothing, even for a caller that sampled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampler_comes_from_otel_traces_sampler() {
    let (endpoint, received) = collector().await;
    let served = Served::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_SAMPLER", "always_off"),
    ]);
    let jar = dev_sign_in(&served.base, "bob").await;
    let traceparent = format!("00-{}-{}-01", "6d".repeat(16), "22".repeat(8));
    let r = get(&jar, &format!("{}/profile", served.base), &traceparent).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The processor exports every 100 ms; ten times that without a span is none.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(received.lock().expect("received").is_empty());
}

#[test]
fn a_wrong_otel_setting_stops_start_up_naming_it() {
    for (var, value, expected) in [
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/json",
            "'http/json' is not a supported protocol",
        ),
        (
            "OTEL_TRACES_SAMPLER",
            "sometimes",
            "'sometimes' is none of always_on",
        ),
        (
            "OTEL_TRACES_SAMPLER_ARG",
            "1.5",
            "'1.5' is not a ratio between 0 and 1",
        ),
    ] {
        let env = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            (var, value),
        ];
        // `migrate`: were the setting taken, nothing would be left listening.
        let (out, _, stderr) = crate::cli::run(&env, &["migrate"]);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("configuration error: {var}: {expected}")),
            "{stderr}"
        );
    }
}

/// A sync is one trace: a root span for the run, a client span for each GitHub call (path,
/// never the query string or the token) and a span for each database statement, on either
/// database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_one_trace_with_its_github_calls_and_statements_on_both_databases() {
    use crate::support::fake_github::{FakeGitHub, people};
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        let (endpoint, received) = collector().await;
        let gh = FakeGitHub::start("acme").await;
        gh.set_identities(people(5));
        let mut env: Vec<(&str, String)> = gh.settings();
        env.push(("GATEHOUSE_DATABASE_URL", db.url().to_string()));
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (out, stdout, stderr) =
            tokio::task::block_in_place(|| crate::cli::run(&env, &["sync", "github"]));
        assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
        // The process sent what it had before it exited.
        let all: Vec<Span> = received
            .lock()
            .expect("received")
            .iter()
            .map(|(_, s)| s.clone())
            .collect();
        let names: Vec<&String> = all.iter().map(|s| &s.name).collect();
        let run = all
            .iter()
            .find(|s| s.name == "GitHub sync")
            .unwrap_or_else(|| panic!("no sync span in {names:?} ({})", db.url()));
        assert!(run.parent_span_id.is_empty(), "a trace of its own");
        assert_eq!(
            text(&run.attributes, "sync.trigger").as_deref(),
            Some("command line")
        );
        assert_eq!(
            text(&run.attributes, "sync.outcome").as_deref(),
            Some("success")
        );
        let below = children(&all, run);
        let calls: Vec<&&Span> = below
            .iter()
            .filter(|s| text(&s.attributes, "server.address").is_some())
            .collect();
        let paths: Vec<String> = calls
            .iter()
            .filter_map(|s| text(&s.attributes, "url.path"))
            .collect();
        assert!(paths.iter().any(|p| p == "/graphql"), "{paths:?}");
        assert!(paths.iter().any(|p| p == "/orgs/acme/repos"), "{paths:?}");
        for call in &calls {
            assert_eq!(call.kind(), SpanKind::Client);
            assert_eq!(status_of(call), Some(200), "{:?}", call.attributes);
            let text = all_text(call);
            assert!(
                !text.contains("per_page") && !text.contains("token"),
                "{text}"
            );
        }
        assert!(
            statements(&below)
                .iter()
                .any(|s| s.name.starts_with("INSERT")),
            "no INSERT under the sync on {}: {names:?}",
            db.url()
        );
    }
}
