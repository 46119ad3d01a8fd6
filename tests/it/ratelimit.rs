//! Rate limits through the real router: headers, the 429 answer, per-client keys, counters
//! shared by two instances on one Redis, and the fallback while Redis is down. Limits here
//! are per hour so a test never straddles a window boundary.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, TestDb, free_port, http, redis_url};

async fn hit(app: &TestApp, path: &str, xff: Option<&str>) -> reqwest::Response {
    let mut req = http().get(app.url(path));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.expect("request")
}

fn header(r: &reqwest::Response, name: &str) -> i64 {
    r.headers()[name]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number")
}

#[tokio::test]
async fn the_limit_answers_429_with_headers_and_health_is_exempt() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_RATE_LIMITS", "default=3/hour"),
    ])
    .await;
    for left in [2, 1, 0] {
        let r = hit(&app, "/", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-ratelimit-limit"), 3);
        assert_eq!(header(&r, "x-ratelimit-remaining"), left);
        assert!(header(&r, "x-ratelimit-reset") > chrono::Utc::now().timestamp());
    }
    let r = hit(&app, "/", None).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = header(&r, "retry-after");
    assert!((1..=3600).contains(&retry), "{retry}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "ratelimit exceeded");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .contains("3/hour")
    );
    // Health and static assets are never limited.
    for path in ["/health", "/health/ready", "/static/gatehouse.css"] {
        let r = hit(&app, path, None).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers().get("x-ratelimit-limit").is_none(), "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_buy_a_new_budget() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_RATE_LIMITS", "auth.login=2/hour"),
    ])
    .await;
    for i in 0..2 {
        let r = hit(&app, "/auth/login", Some(&format!("10.9.9.{i}"))).await;
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let r = hit(&app, "/auth/login", Some("10.9.9.99")).await;
    assert_eq!(
        r.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the untrusted header changes nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&crate::support::with_provider(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_RATE_LIMITS", "auth.login=1/hour"),
        ("GATEHOUSE_TRUSTED_PROXIES", "1"),
    ]))
    .await;
    assert_ne!(
        hit(&app, "/auth/login", Some("203.0.113.1")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_ne!(
        hit(&app, "/auth/login", Some("203.0.113.2")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        hit(&app, "/auth/login", Some("203.0.113.1")).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    app.stop().await;
}

/// Two instances on one database and one Redis (their own key prefix) with these limits; the
/// prefix. The database is kept alive by the caller.
async fn two_instances(db: &TestDb, limits: &str) -> (TestApp, TestApp, String) {
    let redis = redis_url();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let shared = [
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_REDIS_URL", redis.as_str()),
        ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
        ("GATEHOUSE_RATE_LIMITS", limits),
    ];
    let shared = crate::support::with_provider(&shared);
    let one = TestApp::start(&shared).await;
    let two = TestApp::start(&shared).await;
    (one, two, prefix)
}

#[tokio::test]
async fn two_instances_on_one_redis_share_their_counters() {
    let db = TestDb::postgres().await;
    let (one, two, _) = two_instances(&db, "default=4/hour").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &one } else { &two };
        statuses.push(hit(app, "/", None).await.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429]);
    one.stop().await;
    two.stop().await;
}

/// A budget of 100 or more is counted in batches (most requests make no round trip to Redis), and
/// stays shared: across two instances, no fewer than the limit and at most each instance's
/// slack (1% of it) more get through, and once over, every request is refused.
#[tokio::test]
async fn a_large_budget_counted_in_batches_stays_shared_and_bounded() {
    let db = TestDb::postgres().await;
    let (one, two, prefix) = two_instances(&db, "default=1000/hour").await;
    // Five quick requests: the first asks Redis, the rest are let through here (a report
    // at most once a second, so the shared count lags by at most a few).
    for _ in 0..5 {
        assert_eq!(hit(&one, "/", None).await.status(), StatusCode::OK);
    }
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:rl:default:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    let mut reported = 0;
    for key in keys {
        let n: u64 = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .expect("get");
        reported += n;
    }
    assert!((1..5).contains(&reported), "{reported} of 5 reported");
    let mut allowed = 5;
    let mut last = Vec::new();
    for i in 0..1100 {
        let app = if i % 3 == 0 { &one } else { &two };
        let status = hit(app, "/", None).await.status();
        if status == StatusCode::OK {
            allowed += 1;
        }
        if i >= 1060 {
            last.push(status.as_u16());
        }
    }
    assert!(
        (1000..=1020).contains(&allowed),
        "{allowed} let through of a limit of 1,000 (slack 10 per instance)"
    );
    assert!(last.iter().all(|s| *s == 429), "{last:?}");
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn with_redis_down_sign_in_refuses_and_other_limits_count_here() {
    let db = TestDb::sqlite();
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_REDIS_URL", &dead),
        ("GATEHOUSE_RATE_LIMITS", "default=2/hour"),
    ])
    .await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(hit(&app, "/", None).await.status().as_u16());
        }
        v
    };
    assert_eq!(statuses, vec![200, 200, 429], "still limited, never a 500");
    // Sign-in fails closed: a clear 503 with Retry-After, before any trip to the provider.
    let login = hit(&app, "/auth/login", None).await;
    assert_eq!(login.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&login, "retry-after"), 30);
    let body: serde_json::Value = login.json().await.expect("json");
    assert_eq!(body["error"], "unavailable");
    app.stop().await;
}

/// An IPv6 host owns at least a /64 and can pick any address in it: anonymous clients are
/// counted per /64, while the audit row keeps the address the request came from.
#[tokio::test]
async fn anonymous_ipv6_clients_share_their_64s_budget() {
    use sqlx::Connection;
    let db = TestDb::sqlite();
    let app = TestApp::start(&crate::support::with_provider(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_RATE_LIMITS", "default=2/hour"),
        ("GATEHOUSE_TRUSTED_PROXIES", "1"),
    ]))
    .await;
    for ip in ["2001:db8:1:2::1", "[2001:db8:1:2::2]:4711"] {
        assert_eq!(hit(&app, "/", Some(ip)).await.status(), StatusCode::OK);
    }
    let r = hit(&app, "/", Some("2001:db8:1:2:aaaa:bbbb:cccc:dddd")).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another /64 has its own budget.
    assert_eq!(
        hit(&app, "/", Some("2001:db8:1:3::1")).await.status(),
        StatusCode::OK
    );
    let mut c = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("sqlite");
    let refused: Vec<Option<String>> =
        sqlx::query_scalar("SELECT client_ip FROM audit_events WHERE kind = 'rate_limited'")
            .fetch_all(&mut c)
            .await
            .expect("audit rows");
    assert_eq!(
        refused,
        vec![Some("2001:db8:1:2:aaaa:bbbb:cccc:dddd".to_string())]
    );
    app.stop().await;
}

/// Commands naming `prefix` that clients (not scripts) sent to Redis while `during` ran, as
/// MONITOR shows them (other tests' commands carry other prefixes).
async fn commands_during<F: Future<Output = ()>>(prefix: &str, during: F) -> Vec<String> {
    use futures::StreamExt;
    let client = redis::Client::open(redis_url()).expect("redis url");
    let monitor = client.get_async_monitor().await.expect("MONITOR");
    let mut lines = monitor.into_on_message::<String>();
    during.await;
    let mut seen = Vec::new();
    while let Ok(Some(line)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), lines.next()).await
    {
        if line.contains(prefix) && !line.contains(" lua] ") {
            seen.push(line);
        }
    }
    seen
}

/// Under a rule counted hit by hit, a signed-in page reads its session and counts its hit in
/// one Redis command, against the user (not the shared address), across instances.
#[tokio::test]
async fn a_signed_in_page_reads_its_session_and_counts_in_one_round_trip() {
    use crate::admin::sign_in_as;
    use crate::signin::get_with;
    let idp = crate::support::fake_idp::FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::postgres().await;
    let redis = redis_url();
    let key = "shared-key-".repeat(4);
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let shared = [
        ("GATEHOUSE_REDIS_URL", redis.as_str()),
        ("GATEHOUSE_SESSION_KEY", key.as_str()),
        ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
        ("GATEHOUSE_RATE_LIMITS", "profile=4/hour"),
    ];
    let one = crate::signin_refusals::app_with(&idp, &db, &shared).await;
    let two = crate::signin_refusals::app_with(&idp, &db, &shared).await;
    // Each signs in and sees the profile once.
    let (alice, _) = sign_in_as(&one, &idp, "alice", &[]).await;
    let (bob, _) = sign_in_as(&two, &idp, "bob", &[]).await;

    let commands = commands_during(&prefix, async {
        let r = get_with(&alice, &two.url("/profile")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "x-ratelimit-remaining"), 2);
    })
    .await;
    assert_eq!(commands.len(), 1, "{commands:#?}");
    assert!(commands[0].contains("\"EVALSHA\""), "{commands:#?}");

    let mut statuses = Vec::new();
    for app in [&one, &two, &one] {
        statuses.push(
            get_with(&alice, &app.url("/profile"))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    // Bob, from the same address, has his own budget.
    assert_eq!(
        get_with(&bob, &one.url("/profile")).await.status(),
        StatusCode::OK
    );
    let client = redis::Client::open(redis_url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:rl:profile:*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    keys.sort();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter().all(|k| k.contains(":rl:profile:user:")),
        "{keys:?}"
    );
    one.stop().await;
    two.stop().await;
}
