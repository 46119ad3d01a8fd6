//! Benchmarks, not tests: `#[ignore]`d, run by `scripts/bench` (release build) and printed.
//! Nothing here asserts a time: these machines are shared and noisy.

use std::time::{Duration, Instant};

use gatehouse::directory::index::DirectoryIndex;
use gatehouse::directory::search::{Page, SearchQuery};

use crate::directory::{run_sql, seed};
use crate::support::TestDb;

const PEOPLE: usize = 100_000;

fn median_and_p95(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (
        ms(v[v.len() / 2]),
        ms(v[(v.len() * 95 / 100).min(v.len() - 1)]),
    )
}

fn time(index: &DirectoryIndex, label: &str, query: &SearchQuery) {
    let mut runs = Vec::new();
    let mut rows = 0;
    for _ in 0..200 {
        let started = Instant::now();
        rows = index.search(query).len();
        runs.push(started.elapsed());
    }
    let (median, p95) = median_and_p95(runs);
    println!("  {label:<44} {rows:>4} rows  median {median:>7.2} ms  p95 {p95:>7.2} ms");
}

async fn search_at_scale(db: TestDb, backend: &str) {
    let started = Instant::now();
    let store = seed(&db, &[]).await;
    // Generated in SQL: 100,000 rows through one statement per backend.
    let sql = if backend == "PostgreSQL" {
        format!(
            "INSERT INTO github_identities (name, email, github_username, last_pull_date) \
             SELECT 'Person ' || lpad(((i * 7919) % {PEOPLE})::text, 6, '0') || ' ' || \
                    (ARRAY['Ng','Ortiz','Xu','Okafor','Lindqvist'])[1 + i % 5], \
                    'p' || i || '@example.com', 'gh-' || ((i * 104729) % {PEOPLE}), \
                    now() - (i % 28) * interval '1 day' \
             FROM generate_series(1::bigint, {PEOPLE}) AS s(i); ANALYZE github_identities;"
        )
    } else {
        format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {PEOPLE}) \
             INSERT INTO github_identities (name, email, github_username, last_pull_date) \
             SELECT 'Person ' || substr('00000' || ((i * 7919) % {PEOPLE}), -6) || ' ' || \
                    CASE i % 5 WHEN 0 THEN 'Ng' WHEN 1 THEN 'Ortiz' WHEN 2 THEN 'Xu' \
                      WHEN 3 THEN 'Okafor' ELSE 'Lindqvist' END, \
                    'p' || i || '@example.com', 'gh-' || ((i * 104729) % {PEOPLE}), \
                    strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now', '-' || (i % 28) || ' days') \
             FROM s; ANALYZE;"
        )
    };
    run_sql(&db, &sql).await;
    println!(
        "{backend}: {PEOPLE} identities seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let index = DirectoryIndex::load(&store.db(), 0).await.expect("index");
    println!(
        "  index read and built in {:.0} ms, {:.1} MB on the heap",
        started.elapsed().as_secs_f64() * 1000.0,
        index.heap_bytes() as f64 / 1e6
    );
    let q = |pairs: &[(&str, &str)]| {
        gatehouse::directory::search::SearchParams::from_pairs(pairs)
            .parse()
            .expect("query")
    };
    time(&index, "first page, by name", &q(&[]));
    time(
        &index,
        "first page, by last pull, descending",
        &q(&[("sort", "-last_pull_date")]),
    );
    // Page 1,000 (row 50,000): a cursor from the row there.
    let mut deep = q(&[("sort", "email")]);
    deep.limit = 50_000;
    let rows = index.search(&deep);
    deep.limit = 50;
    deep.after = Page::from_rows(
        &SearchQuery {
            limit: 49_999,
            ..deep.clone()
        },
        rows,
    )
    .next;
    assert!(deep.after.is_some());
    time(&index, "page 1,000 by email (keyset cursor)", &deep);
    time(&index, "q=xu (a fifth match), by name", &q(&[("q", "xu")]));
    time(
        &index,
        "q=person 001 (one in a hundred)",
        &q(&[("q", "person 001")]),
    );
    time(&index, "q=p99999@ (one match)", &q(&[("q", "p99999@")]));
    time(&index, "q=zzz (no match)", &q(&[("q", "zzz")]));
    time(
        &index,
        "q=gh-1234 (prefix of 11 logins)",
        &q(&[("q", "gh-1234"), ("sort", "github_username")]),
    );
    time(
        &index,
        "q=0421, limit 200",
        &q(&[("q", "0421"), ("limit", "200")]),
    );
    store.close().await;
}

#[tokio::test]
#[ignore = "benchmark: scripts/bench runs it"]
async fn bench_directory_search_postgres() {
    search_at_scale(TestDb::postgres().await, "PostgreSQL").await;
}

#[tokio::test]
#[ignore = "benchmark: scripts/bench runs it"]
async fn bench_directory_search_sqlite() {
    search_at_scale(TestDb::sqlite(), "SQLite").await;
}

/// Peak resident memory of a running process, in MB (Linux `VmHWM`: monotonic, so the last
/// reading before exit is the peak so far).
fn peak_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// `gatehouse sync github` (the real binary) against the fake with 100,000 identities:
/// a first sync (all inserts) and a second (nothing changes), time and peak memory.
async fn sync_at_scale(db: TestDb, backend: &str) {
    use crate::support::fake_github::{FakeGitHub, people};
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(PEOPLE));
    let mut env: Vec<(&str, String)> = gh.settings();
    env.push(("GATEHOUSE_DATABASE_URL", db.url().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    for label in ["first sync (100,000 inserts)", "second sync (no changes)"] {
        let started = Instant::now();
        let mut child = crate::cli::gatehouse(dir.path(), &env, &["sync", "github"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("sync starts");
        let pid = child.id();
        let mut peak = 0.0_f64;
        let status = loop {
            if let Some(mb) = peak_mb(pid) {
                peak = peak.max(mb);
            }
            match child.try_wait().expect("wait") {
                Some(status) => break status,
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        let out = child.wait_with_output().expect("output");
        assert!(status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        println!(
            "{backend}: {label:<30} {:>6.2} s  peak RSS {peak:>6.1} MB  ({} GraphQL pages)",
            started.elapsed().as_secs_f64(),
            PEOPLE / 100
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench runs it"]
async fn bench_sync_100k_postgres() {
    sync_at_scale(TestDb::postgres().await, "PostgreSQL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench runs it"]
async fn bench_sync_100k_sqlite() {
    sync_at_scale(TestDb::sqlite(), "SQLite").await;
}

/// Cached RS256 access-token verifications per second (the whole check: header, issuer,
/// signature, claims, client, scopes), and `/api/v1/me` end to end with 32 concurrent clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: scripts/bench runs it"]
async fn bench_bearer_verification() {
    use crate::support::fake_idp::{FakeIdp, Tamper};
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = crate::signin_refusals::app_with(
        &idp,
        &db,
        &[("GATEHOUSE_RATE_LIMITS", "api=100000000/minute")],
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let token = idp.access_token(
        &serde_json::json!({
            "iss": idp.issuer, "sub": "svc", "aud": "api://default", "iat": now,
            "exp": now + 3600, "cid": "bench", "scp": ["directory.read"],
        }),
        &Tamper::None,
    );
    let mut headers = axum::http::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let state = app.state.clone();
    state
        .api
        .verify(&headers)
        .await
        .expect("warm-up: keys cached");
    let n = 20_000;
    let started = Instant::now();
    for _ in 0..n {
        state.api.verify(&headers).await.expect("valid");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "Bearer verification of a token seen before (cached claims, one core): {:>8.0} /s  ({:.1} µs each)",
        f64::from(n) / secs,
        secs * 1e6 / f64::from(n)
    );

    // Tokens seen for the first time: the whole check, RSA included, no cache to help.
    let fresh: Vec<axum::http::HeaderMap> = (0..5_000)
        .map(|i| {
            let token = idp.access_token(
                &serde_json::json!({
                    "iss": idp.issuer, "sub": format!("svc-{i}"), "aud": "api://default",
                    "iat": now, "exp": now + 3600, "cid": "bench", "scp": ["directory.read"],
                }),
                &Tamper::None,
            );
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
            headers
        })
        .collect();
    let started = Instant::now();
    for headers in &fresh {
        state.api.verify(headers).await.expect("valid");
    }
    let secs = started.elapsed().as_secs_f64();
    let each = secs * 1e6 / fresh.len() as f64;
    println!(
        "Bearer verification of tokens never seen before (RSA each, one core): {:>8.0} /s  ({each:.1} µs each)",
        fresh.len() as f64 / secs,
    );

    // Where that time goes: the token check alone (no cache, no claims mapping), and the RSA
    // verification alone with the same parsed key, over the same tokens.
    let jwks = gatehouse::auth::jwks::JwksCache::new(
        format!("{}/jwks", idp.issuer),
        reqwest::Client::new(),
        Duration::from_secs(30),
    );
    let tokens: Vec<String> = fresh
        .iter()
        .filter_map(|h| {
            h.get("authorization")?
                .to_str()
                .ok()?
                .strip_prefix("Bearer ")
                .map(str::to_string)
        })
        .collect();
    let check = gatehouse::auth::verify::verify_keyed;
    let (iss, aud, required) = (idp.issuer.as_str(), "api://default", &["exp", "iss", "aud"]);
    let key = check(&tokens[0], &jwks, iss, aud, required)
        .await
        .expect("valid")
        .key;
    let started = Instant::now();
    for t in &tokens {
        check(t, &jwks, iss, aud, required).await.expect("valid");
    }
    let check_us = started.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;
    let signed: Vec<(String, Vec<u8>)> = tokens
        .iter()
        .filter_map(|t| {
            use base64::Engine;
            let (message, signature) = t.rsplit_once('.')?;
            let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(signature)
                .ok()?;
            Some((message.to_string(), signature))
        })
        .collect();
    let started = Instant::now();
    for (message, signature) in &signed {
        assert!(key.verifies(message.as_bytes(), signature));
    }
    let rsa_us = started.elapsed().as_secs_f64() * 1e6 / signed.len() as f64;
    println!(
        "  of which the token check (decode, RSA, claims): {check_us:.1} µs; RSA-2048 verification alone (aws-lc-rs, key parsed once): {rsa_us:.1} µs"
    );

    let client = reqwest::Client::new();
    let url = app.url("/api/v1/me");
    let deadline = Instant::now() + Duration::from_secs(5);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            while Instant::now() < deadline {
                let r = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .expect("request");
                assert!(r.status().is_success());
                let _ = r.bytes().await;
                done += 1;
            }
            done
        }));
    }
    let mut total = 0u64;
    for t in tasks {
        total += t.await.expect("task");
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "GET /api/v1/me end to end, 32 concurrent clients in the same process: {rate:>8.0} req/s"
    );
    app.stop().await;
}
