//! The HTTP shell through the real router on a real socket.

use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;

use crate::support::{TestApp, TestDb, free_port, http, redis_url, with_provider};

/// Dev mode on SQLite; on PostgreSQL (where dev mode refuses to serve) a configured provider.
async fn dev_app(db: &TestDb) -> TestApp {
    let pairs = [("GATEHOUSE_DATABASE_URL", db.url())];
    match db {
        TestDb::Sqlite { .. } => TestApp::start(&pairs).await,
        _ => TestApp::start(&with_provider(&pairs)).await,
    }
}

async fn landing_page_shows_sample_data(db: TestDb) {
    let app = dev_app(&db).await;
    let response = http().get(app.url("/")).send().await.expect("GET /");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let body = response.text().await.expect("body");
    assert!(body.contains("<title>Gatehouse</title>"));
    assert!(body.contains("Dev mode."), "dev mode is announced");
    // Signed out, nothing internal: no figures.
    assert!(!body.contains("data-testid=\"people-count\""), "{body}");
    assert!(body.contains("Sign in with your company account"));
    // Signed in: a greeting, shortcuts, and the figures.
    let alice = crate::devidp::dev_sign_in(&app.base, "alice").await;
    let body = crate::signin::get_with(&alice, &app.url("/"))
        .await
        .text()
        .await
        .expect("body");
    assert!(
        body.contains("data-testid=\"welcome\">Hello, Alice Example<"),
        "{body}"
    );
    assert!(
        !body.contains("Sign in with your company account"),
        "{body}"
    );
    let people = gatehouse::sample::generate(chrono::Utc::now().date_naive())
        .people
        .iter()
        .filter(|p| p.is_active())
        .count();
    assert!(
        body.contains(&format!("data-testid=\"people-count\">{people}<")),
        "the page counts the sample people"
    );
    app.stop().await;
}

#[tokio::test]
async fn landing_page_on_sqlite() {
    landing_page_shows_sample_data(TestDb::sqlite()).await;
}

#[tokio::test]
async fn landing_page_on_postgres_with_a_provider() {
    // Sample data is dev mode's, and dev mode does not serve on PostgreSQL.
    let db = TestDb::postgres().await;
    let app = dev_app(&db).await;
    let body = http()
        .get(app.url("/"))
        .send()
        .await
        .expect("GET /")
        .text()
        .await
        .expect("body");
    assert!(body.contains("<title>Gatehouse</title>"));
    assert!(!body.contains("Dev mode."), "{body}");
    assert!(
        !body.contains("people-count"),
        "no figures signed out: {body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn health_is_cheap_and_ready_checks_postgres_and_redis() {
    let db = TestDb::postgres().await;
    let redis = redis_url();
    let app = TestApp::start(&with_provider(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_REDIS_URL", &redis),
    ]))
    .await;
    let live = http().get(app.url("/health")).send().await.expect("live");
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.json::<Value>().await.expect("json")["status"], "ok");

    let ready = http()
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::OK);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["redis"], "ok");
    app.stop().await;
}

#[tokio::test]
async fn ready_is_503_with_a_reason_when_redis_is_down() {
    let db = TestDb::sqlite();
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_REDIS_URL", &dead),
    ])
    .await;
    // Liveness does not depend on Redis.
    let live = http().get(app.url("/health")).send().await.expect("live");
    assert_eq!(live.status(), StatusCode::OK);
    let ready = http()
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    // Publicly, which dependency only: the error text names internal hosts.
    assert_eq!(body["reason"], "redis");
    assert_eq!(body["checks"]["redis"], "fail");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
    app.stop().await;

    // The details are on the metrics listener.
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_REDIS_URL", &dead),
        ("GATEHOUSE_METRICS_BIND", &metrics_addr),
    ])
    .await;
    let ready = http()
        .get(format!("http://{metrics_addr}/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    let reason = body["reason"].as_str().expect("reason");
    assert!(reason.starts_with("redis:"), "{reason}");
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    app.stop().await;
}

#[tokio::test]
async fn ready_is_503_when_the_database_goes_away() {
    let db = TestDb::postgres().await;
    let app = dev_app(&db).await;
    assert_eq!(
        http()
            .get(app.url("/health/ready"))
            .send()
            .await
            .expect("ready")
            .status(),
        StatusCode::OK
    );
    app.state.store.close().await;
    let ready = http()
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["reason"], "database");
    app.stop().await;
}

#[tokio::test]
async fn stylesheet_is_embedded_with_etag_and_long_cache() {
    let db = TestDb::sqlite();
    let app = dev_app(&db).await;
    let page = http()
        .get(app.url("/"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    let start = page
        .find("/static/gatehouse.css?v=")
        .expect("versioned stylesheet link");
    let end = start + page[start..].find('"').expect("end of href");
    let href = &page[start..end];

    let css = http().get(app.url(href)).send().await.expect("css");
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(
        css.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    let cache = css.headers()[header::CACHE_CONTROL]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        cache.contains("max-age=31536000") && cache.contains("immutable"),
        "{cache}"
    );
    let etag = css.headers()[header::ETAG].clone();
    assert!(href.ends_with(etag.to_str().expect("ascii").trim_matches('"')));
    assert!(css.text().await.expect("css body").contains("--accent"));

    let again = http()
        .get(app.url(href))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .expect("conditional");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.expect("empty").is_empty());

    let stale = http()
        .get(app.url("/static/gatehouse.css"))
        .header(header::IF_NONE_MATCH, "\"not-the-hash\"")
        .send()
        .await
        .expect("stale etag");
    assert_eq!(stale.status(), StatusCode::OK);

    // The site's icon, linked from every page (browsers ask for /favicon.ico otherwise).
    let start = page
        .find("<link rel=\"icon\" href=\"/static/favicon.svg?v=")
        .expect("icon link")
        + "<link rel=\"icon\" href=\"".len();
    let end = start + page[start..].find('"').expect("end of href");
    let icon = http()
        .get(app.url(&page[start..end]))
        .send()
        .await
        .expect("icon");
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(icon.headers()[header::CONTENT_TYPE], "image/svg+xml");

    let missing = http()
        .get(app.url("/static/nope.js"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn errors_are_html_for_pages_and_json_for_the_api() {
    let db = TestDb::sqlite();
    let app = dev_app(&db).await;
    let page = http()
        .get(app.url("/no/such/page"))
        .send()
        .await
        .expect("404 page");
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    let html = page.text().await.expect("html");
    assert!(html.contains("Not Found") && html.contains("<a class=\"button\" href=\"/\">"));

    let api = http()
        .get(app.url("/api/v1/nothing"))
        .send()
        .await
        .expect("404 api");
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    let body: Value = api.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].is_string());

    let wrong_method = http().post(app.url("/")).send().await.expect("405");
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        wrong_method
            .text()
            .await
            .expect("html")
            .contains("Method Not Allowed")
    );
    app.stop().await;
}

#[tokio::test]
async fn every_response_has_a_request_id_and_security_headers() {
    let db = TestDb::sqlite();
    let app = dev_app(&db).await;
    for path in [
        "/",
        "/health",
        "/health/ready",
        "/static/gatehouse.css",
        "/nope",
        "/api/x",
    ] {
        let r = http().get(app.url(path)).send().await.expect("response");
        let h = r.headers();
        let id = h
            .get("x-request-id")
            .unwrap_or_else(|| panic!("{path}: no request id"));
        assert_eq!(id.len(), 36, "{path}: a UUID");
        let csp = h[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY), "{path}");
    }
    // An id from the load balancer is kept, so logs on both sides line up.
    let r = http()
        .get(app.url("/health"))
        .header("x-request-id", "lb-1234")
        .send()
        .await
        .expect("response");
    assert_eq!(r.headers()["x-request-id"], "lb-1234");
    app.stop().await;
}

#[tokio::test]
async fn odd_methods_and_paths_add_no_metric_series() {
    let db = TestDb::sqlite();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_METRICS_BIND", &metrics_addr),
    ])
    .await;
    let series = || async {
        let text = http()
            .get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        text.lines()
            .filter(|l| l.starts_with("gatehouse_http_requests_total{"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let client = http();
    // One of each first, so the series they map to exist before counting.
    for (method, path) in [("X0", "/"), ("X0", "/health"), ("X0", "/no/such/0")] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        client.request(m, app.url(path)).send().await.expect("sent");
    }
    const STANDARD: &[&str] = &[
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    let odd = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| {
                !STANDARD
                    .iter()
                    .any(|m| l.contains(&format!("method=\"{m}\"")))
            })
            .count()
    };
    let before = odd(&series().await);
    for i in 1..=500 {
        let m = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).expect("method");
        let path = ["/", "/health", &format!("/no/such/{i}")][i % 3].to_string();
        client
            .request(m, app.url(&path))
            .send()
            .await
            .expect("sent");
    }
    let after = series().await;
    // Other tests of this binary share the global recorder, but none sends odd methods: the
    // series beyond the standard methods are this test's alone.
    assert_eq!(odd(&after), before, "{after:#?}");
    assert!(
        !after
            .iter()
            .any(|l| l.contains("method=\"X") || l.contains("/no/such/")),
        "{after:#?}"
    );
    assert!(
        after.iter().any(|l| l.contains("method=\"other\"")),
        "{after:#?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let db = TestDb::sqlite();
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_METRICS_BIND", &metrics_addr),
    ])
    .await;
    for _ in 0..3 {
        http().get(app.url("/")).send().await.expect("page");
    }
    http()
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .expect("404");
    // Never on the public port.
    let public = http()
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("public /metrics");
    assert_eq!(public.status(), StatusCode::NOT_FOUND);

    let metrics = http()
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.expect("text");
    let home = text
        .lines()
        .find(|l| {
            l.starts_with("gatehouse_http_requests_total{")
                && l.contains("route=\"/\"")
                && l.contains("status=\"2xx\"")
        })
        .unwrap_or_else(|| panic!("no counter for / in:\n{text}"));
    let count: f64 = home
        .rsplit(' ')
        .next()
        .expect("value")
        .parse()
        .expect("number");
    assert!(count >= 3.0, "{home}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    assert!(
        text.contains("gatehouse_http_request_duration_seconds"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_page_gets_a_fresh_csp_nonce_on_its_tags() {
    let db = TestDb::sqlite();
    let app = dev_app(&db).await;
    let mut nonces = Vec::new();
    for path in ["/", "/", "/no/such/page"] {
        let r = http().get(app.url(path)).send().await.expect("page");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ascii")
            .to_string();
        let start = csp.find("'nonce-").expect("a nonce in the CSP") + 7;
        let nonce = csp[start..start + csp[start..].find('\'').expect("end")].to_string();
        assert!(
            csp.contains(&format!("style-src 'self' 'nonce-{nonce}'")),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"));
        let html = r.text().await.expect("html");
        assert!(
            html.contains(&format!("nonce=\"{nonce}\"")),
            "{path}: the page carries it"
        );
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a new nonce for every request");
    assert!(nonces[0].len() >= 22);
    app.stop().await;
}

/// What the server sends on `stream` until it closes it, or `None` if it is still open after
/// `wait`.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    wait: std::time::Duration,
) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| String::from_utf8_lossy(&seen).into_owned())
}

fn addr_of(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_string()
}

/// Slowloris: a client that sends half a header line, or nothing at all, and waits is cut
/// off after GATEHOUSE_HEADER_TIMEOUT, and is never answered; others are served meanwhile.
#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let db = TestDb::sqlite();
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_HEADER_TIMEOUT", "1s"),
    ])
    .await;
    let started = std::time::Instant::now();
    let mut half = TcpStream::connect(addr_of(&app)).await.expect("connect");
    half.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0")
        .await
        .expect("half a header line");
    let mut silent = TcpStream::connect(addr_of(&app)).await.expect("connect");
    // One that asked once, was answered, and then keeps its connection without asking again.
    let mut idle = TcpStream::connect(addr_of(&app)).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("a whole request");

    let r = http().get(app.url("/health")).send().await.expect("health");
    assert_eq!(r.status(), StatusCode::OK, "served while the others wait");

    for (what, stream) in [("half a line", &mut half), ("nothing", &mut silent)] {
        let seen = read_until_closed(stream, std::time::Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{what}: still open after 5 s"));
        assert!(!seen.contains(" 200 "), "{what}: never answered: {seen:?}");
    }
    let seen = read_until_closed(&mut idle, std::time::Duration::from_secs(5))
        .await
        .unwrap_or_else(|| panic!("idle keep-alive: still open after 5 s"));
    assert!(seen.starts_with("HTTP/1.1 200"), "answered once: {seen:?}");
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(900),
        "closed after the timeout, not at once ({took:?})"
    );
    app.stop().await;
}

/// Past GATEHOUSE_MAX_CONNECTIONS a connection waits unaccepted, and is served once another
/// closes.
#[tokio::test]
async fn connections_past_the_cap_wait_for_one_to_close() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let db = TestDb::sqlite();
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_MAX_CONNECTIONS", "2"),
    ])
    .await;
    let first = TcpStream::connect(addr_of(&app)).await.expect("connect");
    let _second = TcpStream::connect(addr_of(&app)).await.expect("connect");
    let mut third = TcpStream::connect(addr_of(&app)).await.expect("connect");
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    assert_eq!(
        read_until_closed(&mut third, std::time::Duration::from_millis(700)).await,
        None,
        "not served while two connections are open"
    );
    drop(first);
    let seen = read_until_closed(&mut third, std::time::Duration::from_secs(5))
        .await
        .expect("served once one closed");
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen:?}");
    app.stop().await;
}

/// The header marks the page the user is on (and the admin tabs theirs), and shows the Admin
/// link to administrators only.
#[tokio::test]
async fn the_header_marks_the_current_page_and_links_admin_for_admins() {
    let db = TestDb::sqlite();
    let app = dev_app(&db).await;
    let alice = crate::devidp::dev_sign_in(&app.base, "alice").await;
    let bob = crate::devidp::dev_sign_in(&app.base, "bob").await;
    let page = |jar: &crate::signin::Jar, path: &str| {
        let (jar, url) = (jar.clone(), app.url(path));
        async move {
            crate::signin::get_with(&jar, &url)
                .await
                .text()
                .await
                .expect("page")
        }
    };
    let current = |html: &str| -> Vec<String> {
        html.split("<a href=\"")
            .skip(1)
            .filter(|a| {
                a.split('>')
                    .next()
                    .is_some_and(|t| t.contains("aria-current=\"page\""))
            })
            .filter_map(|a| a.split('"').next().map(str::to_string))
            .collect()
    };
    assert_eq!(current(&page(&alice, "/repos").await), ["/repos"]);
    assert_eq!(current(&page(&alice, "/repos/web-docs").await), ["/repos"]);
    assert_eq!(current(&page(&bob, "/profile").await), ["/profile"]);
    assert_eq!(
        current(&page(&alice, "/admin/groups").await),
        ["/admin/users", "/admin/groups"],
        "the header's Admin link and the tab"
    );
    assert!(current(&page(&alice, "/no-such-page").await).is_empty());
    assert!(
        page(&alice, "/profile")
            .await
            .contains("data-testid=\"admin-link\"")
    );
    assert!(
        !page(&bob, "/profile")
            .await
            .contains("data-testid=\"admin-link\"")
    );
    app.stop().await;
}
