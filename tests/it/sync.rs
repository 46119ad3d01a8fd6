//! The GitHub sync against a local fake GitHub: correctness, idempotence, failures that change
//! nothing, the departure guard, one run at a time across processes, "run now", and the
//! repositories' history (moving windows, renames, removals, stars, referrers and paths).

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;

use gatehouse::directory::search::SearchParams;
use gatehouse::store::{self, Store};
use gatehouse::sync::github::GithubSource;
use gatehouse::sync::github::{GitHubClient, GitHubError, RetryPolicy};
use gatehouse::sync::runner::{Outcome, run_once};

use crate::support::TestDb;
use crate::support::fake_github::{FakeGitHub, FakeRepo, id_of, people, window_day};
use crate::support::server::config;

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_rate_limit_wait: Duration::from_secs(5),
        low_remaining: 5,
    }
}

fn client(gh: &FakeGitHub, policy: RetryPolicy) -> GitHubClient {
    let mut pairs: Vec<(&str, String)> = gh.settings();
    pairs.push(("GATEHOUSE_DATABASE_URL", "sqlite::memory:".into()));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cfg = config(&pairs);
    GitHubClient::new(cfg.github.as_ref().expect("github settings"), policy).expect("client")
}

pub async fn open(db: &TestDb) -> Arc<dyn Store> {
    let store = store::connect(&config(&[("GATEHOUSE_DATABASE_URL", db.url())]))
        .await
        .expect("connects");
    store.migrate().await.expect("migrates");
    store
}

fn day(n: u32) -> String {
    format!("2026-11-{n:02}")
}

fn repos() -> Vec<FakeRepo> {
    let traffic = |from: u32| (from..from + 14).map(|d| (day(d), 10, 5, 2, 1)).collect();
    vec![
        FakeRepo {
            name: "api".into(),
            private: true,
            traffic: traffic(1),
            ..FakeRepo::default()
        },
        FakeRepo {
            name: "web".into(),
            private: false,
            traffic: traffic(1),
            ..FakeRepo::default()
        },
        FakeRepo {
            name: "infra".into(),
            private: true,
            traffic_forbidden: true,
            ..FakeRepo::default()
        },
    ]
}

/// Active (or all) emails in the directory, sorted.
async fn directory(store: &dyn Store, include_departed: bool) -> Vec<(String, String)> {
    let mut query = SearchParams {
        limit: Some("200".into()),
        include_departed: include_departed.then(|| "1".into()),
        ..SearchParams::default()
    }
    .parse()
    .expect("query");
    let mut out = Vec::new();
    loop {
        let index = gatehouse::directory::index::DirectoryIndex::load(&store.db(), 0)
            .await
            .expect("index");
        let page = gatehouse::directory::search::Page::from_rows(&query, index.search(&query));
        out.extend(
            page.rows
                .iter()
                .map(|r| (r.email.clone(), r.github_username.clone())),
        );
        match page.next {
            Some(c) => query.after = Some(c),
            None => break,
        }
    }
    out.sort();
    out
}

async fn run(store: &Arc<dyn Store>, gh: &FakeGitHub, max: f64) -> Outcome {
    let source = GithubSource::new(client(gh, fast()));
    run_once(Arc::clone(store), &source, max, "test", "tester")
        .await
        .expect("database")
}

fn failure(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed(reason) => reason,
        other => panic!("expected a failed run, got {other:?}"),
    }
}

fn applied(outcome: &Outcome) -> &gatehouse::sync::Applied {
    match outcome {
        Outcome::Succeeded(a) | Outcome::Refused(a) => a,
        other => panic!("expected an applied or refused run, got {other:?}"),
    }
}

async fn full_sync_and_rerun(db: TestDb) {
    let gh = FakeGitHub::start("acme").await;
    let mut ids = people(250);
    ids.push(("ghost@example.com".into(), String::new(), String::new()));
    gh.set_identities(ids);
    gh.set_repos(repos());
    gh.set_page_size_cap(100);
    let store = open(&db).await;

    let first = run(&store, &gh, 0.2).await;
    assert!(matches!(first, Outcome::Succeeded(_)), "{first:?}");
    let a = applied(&first);
    assert_eq!((a.identities.fetched, a.identities.added), (250, 250));
    assert_eq!((a.repos, a.traffic_days), (3, 28));
    let graphql_pages = gh
        .requests()
        .iter()
        .filter(|r| r.starts_with("POST /graphql"))
        .count();
    assert_eq!(graphql_pages, 3, "100 per page, cursor pagination");
    let rows = directory(store.as_ref(), false).await;
    assert_eq!(rows.len(), 250);
    assert!(
        rows.contains(&("user7@example.com".into(), "user-7".into())),
        "emails lower-cased"
    );
    assert!(
        !rows.iter().any(|r| r.0 == "ghost@example.com"),
        "unlinked identities skipped"
    );

    // Again: nothing changes, nothing is added twice.
    let second = run(&store, &gh, 0.2).await;
    let b = applied(&second);
    assert_eq!(
        (
            b.identities.added,
            b.identities.changed,
            b.identities.departed,
            b.identities.returned
        ),
        (0, 0, 0, 0)
    );
    assert_eq!(directory(store.as_ref(), false).await, rows);

    // Traffic accumulates: GitHub's window moves on, older days stay.
    let mut moved = repos();
    moved[0].traffic = (8..22).map(|d| (day(d), 20, 9, 4, 2)).collect();
    gh.set_repos(moved);
    let third = run(&store, &gh, 0.2).await;
    assert!(matches!(third, Outcome::Succeeded(_)), "{third:?}");
    let runs = gatehouse::sync::store::sync_runs(&store.db(), 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r.outcome == "success" && r.finished_at.is_some())
    );
    assert_eq!(runs[2].counts.0["identities"]["added"], 250);
    let (events, _) = gatehouse::store::audit::list(&store.db(), Some("sync_run"), None, 10, 0)
        .await
        .expect("audit");
    assert_eq!(events.len(), 3);
    store.close().await;
    drop(gh);
}

#[tokio::test]
async fn a_full_sync_is_correct_and_a_rerun_changes_nothing_on_postgres() {
    full_sync_and_rerun(TestDb::postgres().await).await;
}

#[tokio::test]
async fn a_full_sync_is_correct_and_a_rerun_changes_nothing_on_sqlite() {
    full_sync_and_rerun(TestDb::sqlite()).await;
}

#[tokio::test]
async fn traffic_history_accumulates_per_day() {
    let db = TestDb::sqlite();
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(3));
    gh.set_repos(repos());
    let store = open(&db).await;
    run(&store, &gh, 0.2).await;
    let mut moved = repos();
    moved[0].traffic = (8..22).map(|d| (day(d), 20, 9, 4, 2)).collect();
    gh.set_repos(moved);
    run(&store, &gh, 0.2).await;
    let url = db.url().to_string();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .expect("db");
    let days: Vec<(String, i64)> = sqlx::query_as(
        "SELECT t.day, t.views FROM repo_traffic t JOIN repos r ON r.id = t.repo_id \
         WHERE r.name = 'api' ORDER BY t.day",
    )
    .fetch_all(&mut conn)
    .await
    .expect("traffic");
    assert_eq!(
        days.len(),
        21,
        "days 1..21: the first window and the new days"
    );
    assert_eq!(days[0], (day(1), 10), "an old day keeps its figures");
    assert_eq!(
        days[7],
        (day(8), 20),
        "an overlapping day takes the newest figures"
    );
    // The list's sums were redone by the sync itself, for today, for every repository.
    let today = chrono::Utc::now().date_naive().to_string();
    let (summed, repos): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM repo_summaries WHERE as_of = $1), \
                (SELECT COUNT(*) FROM repos)",
    )
    .bind(&today)
    .fetch_one(&mut conn)
    .await
    .expect("summaries");
    assert_eq!((summed, repos), (repos, 3), "{today}");
    store.close().await;
}

#[tokio::test]
async fn failures_change_nothing_and_say_why() {
    let db = TestDb::postgres().await;
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(250));
    gh.set_repos(repos());
    let store = open(&db).await;
    assert!(matches!(run(&store, &gh, 0.2).await, Outcome::Succeeded(_)));
    let before = directory(store.as_ref(), true).await;

    // A renamed person and a 502 on page 2 of every try: the run fails, nothing changes.
    let mut renamed = people(250);
    renamed[0].0 = "someone.else@example.com".into();
    gh.set_identities(renamed);
    gh.fail_graphql_page_always(2, 502);
    gh.clear_requests();
    let failed = run(&store, &gh, 0.2).await;
    let reason = failure(&failed);
    assert!(
        reason.contains("502") && reason.contains("3 attempt"),
        "{reason}"
    );
    assert_eq!(
        gh.requests()
            .iter()
            .filter(|r| r.as_str() == "POST /graphql page=2")
            .count(),
        3,
        "retried up to max_attempts"
    );
    assert_eq!(directory(store.as_ref(), true).await, before);

    // Once only: retried, and the run completes.
    gh.fail_graphql_page_once(2, 502);
    let ok = run(&store, &gh, 0.2).await;
    assert_eq!(applied(&ok).identities.changed, 1, "{ok:?}");
    gh.set_identities(people(250));
    run(&store, &gh, 0.2).await;

    // Enterprise-level SAML: a loud failure, not an empty directory.
    gh.set_enterprise_saml(true);
    let failed = run(&store, &gh, 0.2).await;
    let reason = failure(&failed);
    assert!(
        reason.contains("enterprise level") && reason.contains("nothing was changed"),
        "{reason}"
    );
    assert_eq!(directory(store.as_ref(), true).await, before);
    gh.set_enterprise_saml(false);

    // A secondary rate limit: waits Retry-After, then goes on.
    gh.secondary_rate_limit_once(1);
    let started = std::time::Instant::now();
    let ok = run(&store, &gh, 0.2).await;
    assert!(matches!(ok, Outcome::Succeeded(_)), "{ok:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );

    // A nearly spent budget: waits for the reset; a reset too far away fails instead.
    gh.set_rate_limit(2, 1);
    let ok = run(&store, &gh, 0.2).await;
    assert!(matches!(ok, Outcome::Succeeded(_)), "{ok:?}");
    gh.set_rate_limit(0, 3600);
    let failed = run(&store, &gh, 0.2).await;
    let reason = failure(&failed);
    assert!(reason.contains("rate limit"), "{reason}");
    gh.set_rate_limit(4000, 3600);

    let runs = gatehouse::sync::store::sync_runs(&store.db(), 20)
        .await
        .expect("runs");
    let failed_rows = runs.iter().filter(|r| r.outcome == "failed").count();
    assert_eq!(failed_rows, 3);
    assert!(
        runs.iter()
            .filter(|r| r.outcome == "failed")
            .all(|r| r.error.is_some())
    );
    store.close().await;
}

#[tokio::test]
async fn client_refusals_are_clear() {
    let gh = FakeGitHub::start("acme").await;
    let mut settings = gh.settings();
    settings[1].1 = "wrong-token".into();
    settings.push(("GATEHOUSE_DATABASE_URL", "sqlite::memory:".into()));
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cfg = config(&pairs);
    let bad = GitHubClient::new(cfg.github.as_ref().expect("github"), fast()).expect("client");
    let err = bad.saml_identities().await.expect_err("bad token");
    assert!(matches!(err, GitHubError::BadToken(_)), "{err}");
    assert!(err.to_string().contains("Bad credentials"));

    gh.set_repos(repos());
    let good = client(&gh, fast());
    let err = good.traffic("infra").await.expect_err("no push access");
    assert!(matches!(err, GitHubError::Forbidden { .. }), "{err}");
    let err = good.traffic("nope").await.expect_err("unknown repo");
    assert!(matches!(err, GitHubError::NotFound { .. }), "{err}");
    // Repositories across Link pages.
    gh.set_page_size_cap(2);
    let names: Vec<String> = good
        .repos()
        .await
        .expect("repos")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["api", "web", "infra"]);
    assert_eq!(
        gh.requests()
            .iter()
            .filter(|r| r.contains("/repos page="))
            .count(),
        2
    );
    // An unknown organization.
    let mut other = gh.settings();
    other[0].1 = "not-acme".into();
    other.push(("GATEHOUSE_DATABASE_URL", "sqlite::memory:".into()));
    let pairs: Vec<(&str, &str)> = other.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cfg = config(&pairs);
    let err = GitHubClient::new(cfg.github.as_ref().expect("github"), fast())
        .expect("client")
        .saml_identities()
        .await
        .expect_err("unknown org");
    assert!(err.to_string().contains("not-acme"), "{err}");
}

#[tokio::test]
async fn empty_answers_wipe_nothing_mass_departures_are_refused_small_ones_marked() {
    let db = TestDb::sqlite();
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(100));
    let store = open(&db).await;
    run(&store, &gh, 0.2).await;
    let before = directory(store.as_ref(), false).await;

    gh.set_identities(Vec::new());
    let refused = run(&store, &gh, 0.2).await;
    assert!(matches!(refused, Outcome::Refused(_)), "{refused:?}");
    assert_eq!(
        directory(store.as_ref(), false).await,
        before,
        "an empty answer wipes nothing"
    );

    gh.set_identities(people(60));
    let refused = run(&store, &gh, 0.2).await;
    let a = applied(&refused);
    assert!(
        a.refused
            .as_deref()
            .is_some_and(|r| r.contains("40 of 100")),
        "{a:?}"
    );
    assert_eq!(directory(store.as_ref(), false).await, before);

    gh.set_identities(people(95));
    let ok = run(&store, &gh, 0.2).await;
    assert_eq!(applied(&ok).identities.departed, 5, "{ok:?}");
    assert_eq!(
        directory(store.as_ref(), false).await.len(),
        95,
        "departed are hidden"
    );
    assert_eq!(directory(store.as_ref(), true).await.len(), 100, "and kept");

    // One comes back.
    gh.set_identities(people(96));
    let ok = run(&store, &gh, 0.2).await;
    assert_eq!(applied(&ok).identities.returned, 1, "{ok:?}");
    let runs = gatehouse::sync::store::sync_runs(&store.db(), 10)
        .await
        .expect("runs");
    assert_eq!(runs.iter().filter(|r| r.outcome == "refused").count(), 2);
    assert!(runs.iter().filter(|r| r.outcome == "refused").all(|r| {
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("GATEHOUSE_SYNC_MAX_DEPARTED"))
    }));
    store.close().await;
}

/// `serve` (whose schedule runs at start) and `gatehouse sync github` started together, on one
/// database: one runs, the other skips, and the fake sees one pass.
async fn one_at_a_time_across_processes(db: TestDb) {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(300));
    gh.set_page_size_cap(100);
    // Three GraphQL pages of 700 ms: the first run holds the lease for two seconds or more.
    gh.set_delay(Duration::from_millis(700));
    let port = crate::support::free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env: Vec<(&str, String)> = gh.settings();
    env.push(("GATEHOUSE_DATABASE_URL", db.url().to_string()));
    env.push(("GATEHOUSE_LOG_FORMAT", "json".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut serve_env = env.clone();
    serve_env.push(("GATEHOUSE_BIND", &bind));
    // No one signs in; a configured provider only because dev mode refuses PostgreSQL.
    if matches!(db, TestDb::Postgres { .. }) {
        serve_env.extend_from_slice(crate::support::UNUSED_PROVIDER);
    }
    let mut serve = crate::cli::gatehouse(dir.path(), &serve_env, &["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let stdout = serve.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Wait until serve's scheduled run has reached GitHub, then start the command.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !gh.requests().iter().any(|r| r.starts_with("POST /graphql")) {
        assert!(
            std::time::Instant::now() < deadline,
            "serve never started its sync"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Blocking is fine: the fake answers from its own tasks on the other worker threads.
    let out = tokio::task::block_in_place(|| {
        crate::cli::gatehouse(dir.path(), &env, &["sync", "github"])
            .output()
            .expect("sync runs")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "the command skips: {stderr}");
    assert!(stderr.contains("skipped"), "{stderr}");

    // serve's run finishes; then the command runs alone and succeeds.
    let store = open(&db).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let runs = gatehouse::sync::store::sync_runs(&store.db(), 10)
            .await
            .expect("runs");
        if runs.len() == 1 && runs[0].finished_at.is_some() {
            assert_eq!(runs[0].outcome, "success");
            assert_eq!(runs[0].trigger, "schedule");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve's run never finished: {runs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        gh.requests()
            .iter()
            .filter(|r| r.starts_with("POST /graphql"))
            .count(),
        3,
        "one pass over the three pages"
    );
    gh.set_delay(Duration::ZERO);
    let again = tokio::task::block_in_place(|| crate::cli::run(&env, &["sync", "github"]));
    assert!(again.0.status.success(), "{}", again.2);
    assert!(
        again.1.contains("300 identities fetched, 0 added"),
        "{}",
        again.1
    );
    let runs = gatehouse::sync::store::sync_runs(&store.db(), 10)
        .await
        .expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].trigger, "command line");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status();
    let _ = serve.wait();
    drop(rx);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_the_command_started_together_one_runs_one_skips_on_postgres() {
    one_at_a_time_across_processes(TestDb::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_the_command_started_together_one_runs_one_skips_on_sqlite() {
    one_at_a_time_across_processes(TestDb::sqlite()).await;
}

async fn run_now(
    app: &crate::support::TestApp,
    jar: &crate::signin::Jar,
    page: &str,
) -> reqwest::Response {
    crate::support::http()
        .post(app.url("/admin/sync/run"))
        .header("cookie", jar.header())
        .form(&[("csrf_token", crate::signin::csrf_from(page).as_str())])
        .send()
        .await
        .expect("run now")
}

#[tokio::test]
async fn admins_run_a_sync_now_from_the_admin_page() {
    use crate::signin::get_with;
    let db = TestDb::sqlite();
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(40));
    let mut pairs: Vec<(&str, String)> = gh.settings();
    pairs.push(("GATEHOUSE_DATABASE_URL", db.url().to_string()));
    // No schedule: only "Run now" runs.
    pairs.push(("GATEHOUSE_SYNC_INTERVAL", "0".into()));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = crate::support::TestApp::start(&pairs).await;
    let alice = crate::devidp::dev_sign_in(&app.base, "alice").await;
    let page = get_with(&alice, &app.url("/admin/sync"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("data-testid=\"org\">acme<"));
    assert!(page.contains("No runs yet"));
    let r = run_now(&app, &alice, &page).await;
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/admin/sync?started=1");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let page = get_with(&alice, &app.url("/admin/sync"))
            .await
            .text()
            .await
            .expect("page");
        if page.contains("data-outcome=\"success\"") {
            assert!(page.contains("manual (alice@example.com)"));
            assert!(page.contains("40 fetched, 40 added"));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no successful run shown: {page}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Not for non-admins.
    let bob = crate::devidp::dev_sign_in(&app.base, "bob").await;
    let r = get_with(&bob, &app.url("/admin/sync")).await;
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    app.stop().await;

    // Without GitHub settings the page says so and "run now" is a clear 400.
    let db = TestDb::sqlite();
    let app = crate::support::TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let alice = crate::devidp::dev_sign_in(&app.base, "alice").await;
    let page = get_with(&alice, &app.url("/admin/sync"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("data-testid=\"not-configured\""));
    let r = run_now(&app, &alice, &page).await;
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    app.stop().await;
}

// Repositories: history across GitHub's moving 14-day windows, renames, removals, daily stars
// and forks, referrers and paths per sync day.

/// Every row a query returns, on whichever backend the store is.
async fn rows<T>(store: &Arc<dyn Store>, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + Send
        + Unpin,
{
    gatehouse::on_db!(&store.db(), |pool| sqlx::query_as::<_, T>(sql)
        .fetch_all(pool)
        .await
        .expect(sql))
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("date")
}

/// (day, views, unique views, clones, unique clones) of one repository, by name.
async fn traffic_of(store: &Arc<dyn Store>, name: &str) -> Vec<(NaiveDate, i32, i32, i32, i32)> {
    rows(
        store,
        &format!(
            "SELECT t.day, t.views, t.unique_views, t.clones, t.unique_clones \
             FROM repo_traffic t JOIN repos r ON r.id = t.repo_id WHERE r.name = '{name}' \
             ORDER BY t.day"
        ),
    )
    .await
}

/// (row id, GitHub id, name, removed) of every repository, by name.
async fn repo_rows(store: &Arc<dyn Store>) -> Vec<(i64, Option<i64>, String, bool)> {
    rows(
        store,
        "SELECT id, github_id, name, removed_at IS NOT NULL FROM repos ORDER BY name",
    )
    .await
}

fn windowed(name: &str, base: i64) -> FakeRepo {
    FakeRepo {
        name: name.into(),
        window: Some(base),
        ..FakeRepo::default()
    }
}

async fn moving_windows_accumulate(db: TestDb) {
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(3));
    let start = ymd(2026, 11, 20);
    gh.set_today(start);
    let mut api = windowed("api", 10);
    api.stars = 5;
    api.forks = 1;
    api.referrers = vec![("google.com".into(), 4, 3), ("github.com".into(), 2, 1)];
    api.paths = vec![("/acme/api".into(), "acme/api".into(), 10, 5)];
    let infra = FakeRepo {
        name: "infra".into(),
        traffic_forbidden: true,
        stars: 2,
        ..windowed("infra", 7)
    };
    gh.set_repos(vec![api, windowed("web", 3), infra]);
    let store = open(&db).await;

    let first = run(&store, &gh, 0.2).await;
    let a = applied(&first);
    assert_eq!(
        (a.repos, a.traffic_days, a.referrers, a.paths),
        (3, 28, 2, 1),
        "{a:?}"
    );
    gh.advance_days(10);
    gh.edit_repo("api", |r| {
        r.stars = 7;
        r.forks = 2;
        r.referrers = vec![("google.com".into(), 9, 5)];
    });
    run(&store, &gh, 0.2).await;
    gh.advance_days(10);
    gh.edit_repo("api", |r| r.stars = 6);
    run(&store, &gh, 0.2).await;

    // Three windows of 14 days, 10 days apart: 34 days, each with its own figures.
    let api_days = traffic_of(&store, "api").await;
    let expected: Vec<_> = (0..34)
        .map(|i| {
            let day = start - chrono::Days::new(13) + chrono::Days::new(i);
            let (v, uv, c, uc) = window_day(10, day);
            let n = |x: i64| i32::try_from(x).expect("small");
            (day, n(v), n(uv), n(c), n(uc))
        })
        .collect();
    assert_eq!(api_days, expected, "history beyond GitHub's 14 days");
    assert_eq!(traffic_of(&store, "web").await.len(), 34);

    // The 403 repository keeps its row (with stars from the listing) and gets no traffic.
    assert!(traffic_of(&store, "infra").await.is_empty());
    let infra: Vec<(i32,)> = rows(
        &store,
        "SELECT stars FROM repos WHERE name = 'infra' AND removed_at IS NULL",
    )
    .await;
    assert_eq!(infra, vec![(2,)]);

    // One stars/forks row per sync day; stars went down as well as up.
    let stars: Vec<(NaiveDate, i32, i32)> = rows(
        &store,
        "SELECT s.day, s.stars, s.forks FROM repo_stars s JOIN repos r ON r.id = s.repo_id \
         WHERE r.name = 'api' ORDER BY s.day",
    )
    .await;
    let d = |n: u64| start + chrono::Days::new(n);
    assert_eq!(gh.today(), d(20));
    assert_eq!(stars, vec![(d(0), 5, 1), (d(10), 7, 2), (d(20), 6, 2)]);
    let current: Vec<(i32, i32)> =
        rows(&store, "SELECT stars, forks FROM repos WHERE name = 'api'").await;
    assert_eq!(current, vec![(6, 2)]);

    // Referrers and paths under each sync day, as GitHub listed them that day.
    let referrers = |store: Arc<dyn Store>| async move {
        rows::<(NaiveDate, String, i32, i32)>(
            &store,
            "SELECT f.day, f.referrer, f.count, f.uniques FROM repo_referrers f \
             JOIN repos r ON r.id = f.repo_id WHERE r.name = 'api' ORDER BY f.day, f.referrer",
        )
        .await
    };
    assert_eq!(
        referrers(store.clone()).await,
        vec![
            (d(0), "github.com".into(), 2, 1),
            (d(0), "google.com".into(), 4, 3),
            (d(10), "google.com".into(), 9, 5),
            (d(20), "google.com".into(), 9, 5),
        ]
    );
    let paths: Vec<(NaiveDate, String, String, i32, i32)> = rows(
        &store,
        "SELECT p.day, p.path, p.title, p.count, p.uniques FROM repo_paths p \
         JOIN repos r ON r.id = p.repo_id WHERE r.name = 'api' ORDER BY p.day",
    )
    .await;
    assert_eq!(paths.len(), 3);
    assert_eq!(
        paths[2],
        (d(20), "/acme/api".into(), "acme/api".into(), 10, 5)
    );

    // A second sync the same day replaces that day's lists and stars, and only that day's.
    gh.edit_repo("api", |r| {
        r.stars = 8;
        r.referrers = vec![("bing.com".into(), 1, 1)];
    });
    run(&store, &gh, 0.2).await;
    let now = referrers(store.clone()).await;
    assert_eq!(now.len(), 4);
    assert_eq!(now[3], (d(20), "bing.com".into(), 1, 1));
    assert_eq!(now[2], (d(10), "google.com".into(), 9, 5));
    let stars: Vec<(NaiveDate, i32)> = rows(
        &store,
        "SELECT s.day, s.stars FROM repo_stars s JOIN repos r ON r.id = s.repo_id \
         WHERE r.name = 'api' ORDER BY s.day",
    )
    .await;
    assert_eq!(stars.last(), Some(&(d(20), 8)));
    assert_eq!(stars.len(), 3);
    store.close().await;
}

#[tokio::test]
async fn repository_history_accumulates_across_moving_windows_on_postgres() {
    moving_windows_accumulate(TestDb::postgres().await).await;
}

#[tokio::test]
async fn repository_history_accumulates_across_moving_windows_on_sqlite() {
    moving_windows_accumulate(TestDb::sqlite()).await;
}

async fn renames_and_removals_keep_history(db: TestDb) {
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(3));
    gh.set_today(ymd(2026, 11, 20));
    let infra = FakeRepo {
        traffic_forbidden: true,
        ..windowed("infra", 1)
    };
    gh.set_repos(vec![
        windowed("api", 10),
        windowed("web", 4),
        windowed("docs", 2),
        windowed("cli", 6),
        infra,
    ]);
    let store = open(&db).await;
    // A row from before repositories had ids, with a day GitHub no longer lists.
    gatehouse::execute!(&store.db(), "INSERT INTO repos (name) VALUES ('web')").expect("web");
    gatehouse::execute!(
        &store.db(),
        "INSERT INTO repo_traffic (repo_id, day, views) \
         SELECT id, $1, 99 FROM repos WHERE name = 'web'",
        ymd(2026, 10, 1)
    )
    .expect("old day");
    let web_row = repo_rows(&store).await[0].0;

    run(&store, &gh, 0.2).await;
    let after_first = repo_rows(&store).await;
    let web = after_first.iter().find(|r| r.2 == "web").expect("web");
    assert_eq!(
        (web.0, web.1),
        (web_row, Some(id_of("web"))),
        "matched by name once, then keeps GitHub's id"
    );
    assert_eq!(
        traffic_of(&store, "web").await.len(),
        15,
        "its old day kept"
    );
    let api_row = after_first.iter().find(|r| r.2 == "api").expect("api").0;

    // A rename: the same row under the new name, with the history of the old one.
    gh.rename_repo("api", "api-v2");
    gh.advance_days(1);
    let renamed = run(&store, &gh, 0.2).await;
    assert_eq!(applied(&renamed).repo_changes.renamed, 1, "{renamed:?}");
    let rows_now = repo_rows(&store).await;
    assert!(!rows_now.iter().any(|r| r.2 == "api"), "{rows_now:?}");
    let v2 = rows_now.iter().find(|r| r.2 == "api-v2").expect("api-v2");
    assert_eq!((v2.0, v2.1), (api_row, Some(id_of("api"))));
    assert_eq!(
        traffic_of(&store, "api-v2").await.len(),
        15,
        "14 days + the new one"
    );

    // Gone from the organization: marked removed, history kept.
    let docs = gh.remove_repo("docs");
    let gone = run(&store, &gh, 0.2).await;
    assert_eq!(applied(&gone).repo_changes.removed, 1, "{gone:?}");
    let docs_row = repo_rows(&store).await;
    assert!(
        docs_row.iter().any(|r| r.2 == "docs" && r.3),
        "{docs_row:?}"
    );
    assert_eq!(traffic_of(&store, "docs").await.len(), 15);

    // Most of the repositories gone at once is refused like a mass departure.
    let web = gh.remove_repo("web");
    let cli = gh.remove_repo("cli");
    let refused = run(&store, &gh, 0.2).await;
    let reason = applied(&refused).refused.clone().unwrap_or_default();
    assert!(
        reason.contains("2 of 4 active repositories removed")
            && reason.contains("GATEHOUSE_SYNC_MAX_DEPARTED"),
        "{refused:?}"
    );
    assert_eq!(repo_rows(&store).await, docs_row, "nothing changed");
    gh.add_repo(web);
    gh.add_repo(cli);

    // Back again: unmarked, with its history and the days it missed.
    gh.add_repo(docs);
    gh.advance_days(2);
    let back = run(&store, &gh, 0.2).await;
    assert_eq!(applied(&back).repo_changes.returned, 1, "{back:?}");
    assert!(
        repo_rows(&store)
            .await
            .iter()
            .any(|r| r.2 == "docs" && !r.3)
    );
    assert_eq!(traffic_of(&store, "docs").await.len(), 17);

    // Deleted and created again under the same name: a new repository (a new id); the old
    // row keeps its history under a name no repository can take.
    let old_docs = repo_rows(&store)
        .await
        .into_iter()
        .find(|r| r.2 == "docs")
        .expect("docs");
    gh.remove_repo("docs");
    gh.add_repo(FakeRepo {
        id: 4242,
        ..windowed("docs", 50)
    });
    run(&store, &gh, 0.3).await;
    let all = repo_rows(&store).await;
    let new_docs = all.iter().find(|r| r.2 == "docs").expect("new docs");
    assert_eq!(new_docs.1, Some(4242));
    assert_ne!(new_docs.0, old_docs.0);
    let kept = all
        .iter()
        .find(|r| r.0 == old_docs.0)
        .expect("old docs kept");
    assert!(kept.3 && kept.2.starts_with("docs "), "{kept:?}");
    let kept_days: Vec<(i64,)> = rows(
        &store,
        &format!(
            "SELECT COUNT(*) FROM repo_traffic WHERE repo_id = {}",
            old_docs.0
        ),
    )
    .await;
    assert_eq!(kept_days, vec![(17,)]);
    assert_eq!(traffic_of(&store, "docs").await.len(), 14);
    // The repository without traffic access was there all along.
    assert!(all.iter().any(|r| r.2 == "infra" && !r.3));
    store.close().await;
}

#[tokio::test]
async fn renames_keep_history_and_gone_repositories_are_marked_on_postgres() {
    renames_and_removals_keep_history(TestDb::postgres().await).await;
}

#[tokio::test]
async fn renames_keep_history_and_gone_repositories_are_marked_on_sqlite() {
    renames_and_removals_keep_history(TestDb::sqlite()).await;
}

async fn days_seen_again_take_the_higher_count(db: TestDb) {
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(3));
    let x = || ymd(2026, 11, 10).to_string();
    gh.set_repos(vec![FakeRepo {
        name: "api".into(),
        traffic: vec![(x(), 10, 5, 8, 4)],
        ..FakeRepo::default()
    }]);
    let store = open(&db).await;
    run(&store, &gh, 0.2).await;
    gh.edit_repo("api", |r| r.traffic = vec![(x(), 30, 12, 3, 1)]);
    run(&store, &gh, 0.2).await;
    assert_eq!(
        traffic_of(&store, "api").await,
        vec![(ymd(2026, 11, 10), 30, 12, 8, 4)],
        "higher figures taken, column by column; lower ones kept"
    );
    gh.edit_repo("api", |r| r.traffic = vec![(x(), 5, 2, 1, 0)]);
    run(&store, &gh, 0.2).await;
    assert_eq!(
        traffic_of(&store, "api").await,
        vec![(ymd(2026, 11, 10), 30, 12, 8, 4)],
        "a lower report never lowers a day"
    );
    store.close().await;
}

#[tokio::test]
async fn a_day_seen_again_takes_the_higher_count_on_postgres() {
    days_seen_again_take_the_higher_count(TestDb::postgres().await).await;
}

#[tokio::test]
async fn a_day_seen_again_takes_the_higher_count_on_sqlite() {
    days_seen_again_take_the_higher_count(TestDb::sqlite()).await;
}

/// Two instances on one PostgreSQL database, each searching the directory in memory: a sync
/// run from the first's admin page reaches the second's search, page and whole-directory answer
/// within the bound (two seconds once the sync has committed; the announcement takes well
/// under one), people who left included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_on_one_instance_reaches_the_others_search() {
    use crate::admin::sign_in_as;
    use crate::signin::get_with;
    use crate::support::fake_idp::FakeIdp;
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let db = TestDb::postgres().await;
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(40));
    let mut pairs: Vec<(&str, String)> = gh.settings();
    pairs.push(("GATEHOUSE_SYNC_INTERVAL", "0".into()));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let one = crate::signin_refusals::app_with(&idp, &db, &pairs).await;
    let two = crate::signin_refusals::app_with(&idp, &db, &pairs).await;
    let (alice, _) = sign_in_as(&one, &idp, "alice", &["gatehouse-admins"]).await;
    let (bob, _) = sign_in_as(&two, &idp, "bob", &[]).await;
    let search = |q: &str| {
        let url = two.url(&format!("/gh/search.json?q={q}&include_departed=0"));
        let bob = &bob;
        async move {
            let rows: Vec<serde_json::Value> =
                get_with(bob, &url).await.json().await.expect("json");
            rows.iter()
                .map(|r| {
                    r["github_username"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                })
                .collect::<Vec<_>>()
        }
    };
    let synced = |app: &crate::support::TestApp, n: usize| {
        let page_url = app.url("/admin/sync");
        let alice = &alice;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let page = get_with(alice, &page_url).await.text().await.expect("page");
                if page.matches("data-outcome=\"success\"").count() == n {
                    return page;
                }
                assert!(std::time::Instant::now() < deadline, "no sync {n}: {page}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    // The first sync; the second instance's search and whole directory are then in memory.
    let page = get_with(&alice, &one.url("/admin/sync"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(
        run_now(&one, &alice, &page).await.status(),
        reqwest::StatusCode::SEE_OTHER
    );
    let page = synced(&one, 1).await;
    let mut found = Vec::new();
    for _ in 0..200 {
        found = search("user-7").await;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(found, ["user-7"]);
    assert!(search("user-40").await.is_empty());
    let dump = get_with(&bob, &two.url("/gh/search.json")).await;
    let etag = dump.headers()["etag"].clone();
    let rows: Vec<serde_json::Value> = dump.json().await.expect("json");
    assert_eq!(rows.len(), 40);

    // user-40 joins, user-7 leaves; the sync runs on the first instance.
    let mut next = people(41);
    next.remove(7);
    gh.set_identities(next);
    assert_eq!(
        run_now(&one, &alice, &page).await.status(),
        reqwest::StatusCode::SEE_OTHER
    );
    let built = two.state.caches.directory.kept_version();
    synced(&one, 2).await;
    // Rebuilt on the announcement, before anyone searches.
    let started = std::time::Instant::now();
    while two.state.caches.directory.kept_version() == built {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other instance waits for a search to rebuild its index"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = std::time::Instant::now();
    while search("user-40").await.is_empty() || !search("user-7").await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the other instance still searches the old directory"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The page and the whole directory moved with it.
    let html = get_with(&bob, &two.url("/gh/search?q=user-40"))
        .await
        .text()
        .await
        .expect("page");
    assert!(html.contains("user-40"), "{html}");
    let r = crate::support::http()
        .get(two.url("/gh/search.json"))
        .header("cookie", bob.header())
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("dump");
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "the old tag no longer matches"
    );
    assert_ne!(r.headers()["etag"], etag);
    let rows: Vec<serde_json::Value> = r.json().await.expect("json");
    let logins: Vec<&str> = rows
        .iter()
        .filter_map(|r| r["github_username"].as_str())
        .collect();
    assert_eq!(rows.len(), 40);
    assert!(logins.contains(&"user-40") && !logins.contains(&"user-7"));
    // Asked for, the person who left is still found.
    let url = two.url("/gh/search.json?q=user-7&include_departed=1");
    let rows: Vec<serde_json::Value> = get_with(&bob, &url).await.json().await.expect("json");
    assert_eq!(rows.len(), 1);
    two.stop().await;
    one.stop().await;
}

/// The sum of the samples of `name` whose labels contain every one of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn scrape(addr: &str) -> String {
    crate::support::http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test]
async fn metrics_count_what_an_operator_watches() {
    use crate::signin::get_with;
    use reqwest::StatusCode;
    let db = TestDb::sqlite();
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(12));
    let metrics_addr = format!("127.0.0.1:{}", crate::support::free_port());
    let mut pairs: Vec<(&str, String)> = gh.settings();
    pairs.extend([
        ("GATEHOUSE_DATABASE_URL", db.url().to_string()),
        ("GATEHOUSE_SYNC_INTERVAL", "0".into()),
        ("GATEHOUSE_METRICS_BIND", metrics_addr.clone()),
        ("GATEHOUSE_RATE_LIMITS", "lookup=1/minute".into()),
    ]);
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = crate::support::TestApp::start(&pairs).await;
    // The recorder is the process's: other tests count too, so each check is a rise of at
    // least what this scenario did.
    let before = scrape(&metrics_addr).await;
    let rise = |after: &str, name: &str, labels: &[&str]| {
        sample(after, name, labels) - sample(&before, name, labels)
    };

    // A sign-in (its provider's keys fetched to check the ID token), and one that fails.
    let alice = crate::devidp::dev_sign_in(&app.base, "alice").await;
    let r = crate::support::http()
        .get(app.url("/auth/callback?state=forged&code=x"))
        .send()
        .await
        .expect("callback");
    assert!(r.status().is_client_error(), "{}", r.status());
    // The lookup rule allows one a minute: the second is refused.
    for expected in [StatusCode::OK, StatusCode::TOO_MANY_REQUESTS] {
        let r = get_with(&alice, &app.url("/lookup?email=bob%40example.com")).await;
        assert_eq!(r.status(), expected);
    }
    // A sync, run now from the admin page, to its end.
    let page = get_with(&alice, &app.url("/admin/sync"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(
        run_now(&app, &alice, &page).await.status(),
        StatusCode::SEE_OTHER
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !get_with(&alice, &app.url("/admin/sync"))
        .await
        .text()
        .await
        .expect("page")
        .contains("data-outcome=\"success\"")
    {
        assert!(std::time::Instant::now() < deadline, "the sync did not end");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let after = scrape(&metrics_addr).await;
    for (name, labels, at_least) in [
        (
            "gatehouse_sign_ins_total",
            &["outcome=\"success\""][..],
            1.0,
        ),
        (
            "gatehouse_sign_ins_total",
            &["outcome=\"failure\"", "reason=\"unknown_transaction\""][..],
            1.0,
        ),
        ("gatehouse_jwks_fetches_total", &["outcome=\"ok\""][..], 1.0),
        (
            "gatehouse_rate_limit_refusals_total",
            &["rule=\"lookup\""][..],
            1.0,
        ),
        (
            "gatehouse_http_requests_total",
            &["route=\"/lookup\"", "status=\"4xx\""][..],
            1.0,
        ),
        (
            "gatehouse_http_requests_total",
            &["route=\"/lookup\"", "status=\"2xx\""][..],
            1.0,
        ),
        (
            "gatehouse_sync_runs_total",
            &["kind=\"github\"", "outcome=\"success\""][..],
            1.0,
        ),
        (
            "gatehouse_sync_run_duration_seconds_count",
            &["kind=\"github\""][..],
            1.0,
        ),
    ] {
        let grew = rise(&after, name, labels);
        assert!(
            grew >= at_least,
            "{name}{labels:?} rose by {grew}:\n{after}"
        );
    }
    // Gauges, read at the scrape.
    assert!(
        sample(&after, "gatehouse_db_pool_max_connections", &[]) >= 1.0,
        "{after}"
    );
    assert!(
        after.contains("gatehouse_db_pool_connections{state=\"idle\"}")
            && after.contains("gatehouse_db_pool_connections{state=\"in_use\"}"),
        "{after}"
    );
    assert_eq!(
        sample(
            &after,
            "gatehouse_session_store_up",
            &["backend=\"database\""]
        ),
        1.0,
        "{after}"
    );
    app.stop().await;
}

/// Two instances with the same schedule: the organization is synced once per interval, not
/// once per instance, even when the second starts after the first's run has finished (the
/// lease alone would let it run again).
#[tokio::test]
async fn two_instances_on_one_schedule_sync_once_per_interval() {
    let db = TestDb::postgres().await;
    let gh = FakeGitHub::start("acme").await;
    gh.set_identities(people(20));
    let mut pairs: Vec<(&str, String)> = gh.settings();
    pairs.push(("GATEHOUSE_DATABASE_URL", db.url().to_string()));
    pairs.push(("GATEHOUSE_SYNC_INTERVAL", "1h".into()));
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let env = crate::support::with_provider(&pairs);
    let first = crate::support::TestApp::start(&env).await;
    let runs = |state: gatehouse::state::AppState| async move {
        gatehouse::sync::store::sync_runs(&state.store.db(), 10)
            .await
            .expect("runs")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !runs(first.state.clone())
        .await
        .iter()
        .any(|r| r.outcome == "success")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first instance never synced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = crate::support::TestApp::start(&env).await;
    // Time for the second instance's schedule to have run, had it been going to.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = runs(second.state.clone()).await;
    assert_eq!(
        all.len(),
        1,
        "one run for both instances: {:?}",
        all.iter()
            .map(|r| (&r.trigger, &r.outcome, &r.holder))
            .collect::<Vec<_>>()
    );
    second.stop().await;
    first.stop().await;
}
