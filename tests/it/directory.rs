//! The directory: search (both backends, every sort, cursors), `/gh/search(.json)`,
//! `/profile` facts and `/lookup`.

use std::sync::Arc;

use gatehouse::directory::index::DirectoryIndex;
use gatehouse::directory::search::{SearchParams, SearchQuery, SortKey};
use gatehouse::store::{self, Store};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::Connection;

use crate::devidp::dev_sign_in;
use crate::signin::get_with;
use crate::support::server::config;
use crate::support::{TestApp, TestDb, http};

/// A person for seeding: (name, email, login, departed).
type Person = (String, String, String, bool);

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Runs SQL on the test database directly: seeding is not a feature of the app.
pub async fn run_sql(db: &TestDb, sql: &str) {
    if db.url().starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(db.url()).await.expect("pg");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("seed sql");
    } else {
        let mut c = sqlx::SqliteConnection::connect(db.url())
            .await
            .expect("sqlite");
        sqlx::raw_sql(sql).execute(&mut c).await.expect("seed sql");
    }
}

/// Migrates and inserts the people (timestamps as sqlx writes them, so both backends sort
/// them the same way).
pub async fn seed(db: &TestDb, people: &[Person]) -> Arc<dyn Store> {
    let store = store::connect(&config(&[("GATEHOUSE_DATABASE_URL", db.url())]))
        .await
        .expect("connects");
    store.migrate().await.expect("migrates");
    for chunk in people.chunks(400) {
        let values: Vec<String> = chunk
            .iter()
            .enumerate()
            .map(|(i, (name, email, login, departed))| {
                let day = format!("2026-10-{:02}T08:00:00+00:00", (i % 28) + 1);
                format!(
                    "({}, {}, {}, {}, {})",
                    quote(name),
                    quote(email),
                    quote(login),
                    quote(&day),
                    if *departed {
                        quote(&day)
                    } else {
                        "NULL".into()
                    }
                )
            })
            .collect();
        run_sql(
            db,
            &format!(
                "INSERT INTO github_identities (name, email, github_username, last_pull_date, \
                 departed_at) VALUES {}",
                values.join(",")
            ),
        )
        .await;
    }
    store
}

fn people(n: usize) -> Vec<Person> {
    let mut v: Vec<Person> = (0..n)
        .map(|i| {
            (
                format!(
                    "Person {:05} {}",
                    (i * 7919) % n,
                    ["Ng", "Ortiz", "Xu"][i % 3]
                ),
                format!("p{i:05}@example.com"),
                format!("gh-{:05}", (i * 104_729) % n),
                i % 10 == 9,
            )
        })
        .collect();
    v.extend([
        (
            "Siobhán O'Brien".into(),
            "sob@example.com".into(),
            "SOB-dev".into(),
            false,
        ),
        (
            "Percent Person".into(),
            "pp@example.com".into(),
            "100%done".into(),
            false,
        ),
        (
            "Under Score".into(),
            "under_score@example.com".into(),
            "u_s".into(),
            false,
        ),
    ]);
    v
}

fn query(pairs: &[(&str, &str)]) -> SearchQuery {
    SearchParams::from_pairs(pairs)
        .parse()
        .expect("valid query")
}

/// Every page, following cursors, for one query.
async fn all_pages(store: &dyn Store, first: SearchQuery) -> Vec<String> {
    let mut out = Vec::new();
    let mut q = first;
    loop {
        let index = DirectoryIndex::load(&store.db(), 0).await.expect("index");
        let page = gatehouse::directory::search::Page::from_rows(&q, index.search(&q));
        assert!(page.rows.len() <= q.limit as usize);
        out.extend(page.rows.iter().map(|r| r.email.clone()));
        match page.next {
            Some(c) => q.after = Some(c),
            None => return out,
        }
    }
}

async fn search_semantics(db: TestDb) {
    let everyone = people(250);
    let store = seed(&db, &everyone).await;
    let active: Vec<&Person> = everyone.iter().filter(|p| !p.3).collect();

    for key in SortKey::ALL {
        for desc in [false, true] {
            let sort = format!("{}{}", if desc { "-" } else { "" }, key.as_str());
            let got = all_pages(store.as_ref(), query(&[("sort", &sort), ("limit", "37")])).await;
            let mut expected: Vec<&Person> = active.clone();
            // The order pages must follow: the key (case-insensitive for names and logins),
            // then insertion order (id) to break ties.
            let index = |p: &Person| everyone.iter().position(|e| e.1 == p.1).unwrap_or(0);
            let day = |p: &Person| (index(p) % 400) % 28;
            expected.sort_by(|a, b| {
                let ka = match key {
                    SortKey::Name => a.0.to_lowercase(),
                    SortKey::Email => a.1.clone(),
                    SortKey::GithubUsername => a.2.to_lowercase(),
                    SortKey::LastPullDate => format!("{:02}", day(a)),
                };
                let kb = match key {
                    SortKey::Name => b.0.to_lowercase(),
                    SortKey::Email => b.1.clone(),
                    SortKey::GithubUsername => b.2.to_lowercase(),
                    SortKey::LastPullDate => format!("{:02}", day(b)),
                };
                let ord = ka.cmp(&kb).then(index(a).cmp(&index(b)));
                if desc { ord.reverse() } else { ord }
            });
            let expected: Vec<String> = expected.iter().map(|p| p.1.clone()).collect();
            assert_eq!(got, expected, "sort {sort}");
        }
    }

    // Case-insensitive substring over name, email and login; wildcards are literal.
    let emails = |q: &str| {
        let store = store.clone();
        let q = q.to_string();
        async move {
            let mut v = all_pages(store.as_ref(), query(&[("q", &q), ("limit", "200")])).await;
            v.sort();
            v
        }
    };
    assert_eq!(emails("o'BRIEN").await, vec!["sob@example.com"]);
    assert_eq!(emails("sob-DEV").await, vec!["sob@example.com"]);
    assert_eq!(emails("100%").await, vec!["pp@example.com"]);
    assert_eq!(emails("u_s").await, vec!["under_score@example.com"]);
    assert_eq!(emails("siob").await, vec!["sob@example.com"], "prefix");
    assert_eq!(emails("no such person").await, Vec::<String>::new());
    let xu = emails("xu").await;
    assert_eq!(
        xu.len(),
        active.iter().filter(|p| p.0.ends_with("Xu")).count(),
        "substring of the name"
    );
    // Departed people only when asked for.
    let departed = everyone.iter().find(|p| p.3).expect("a departed person");
    assert!(emails(&departed.1).await.is_empty());
    let with = all_pages(
        store.as_ref(),
        query(&[("q", &departed.1), ("include_departed", "1")]),
    )
    .await;
    assert_eq!(with, vec![departed.1.clone()]);
    // The index read afresh follows updates and deletes.
    run_sql(
        &db,
        "UPDATE github_identities SET name = 'Renamed Zebra' WHERE email = 'sob@example.com'; \
         DELETE FROM github_identities WHERE email = 'pp@example.com';",
    )
    .await;
    assert_eq!(emails("zebra").await, vec!["sob@example.com"]);
    assert!(emails("o'brien").await.is_empty());
    assert!(emails("100%").await.is_empty());
    store.close().await;
}

#[tokio::test]
async fn search_sorts_pages_and_matches_on_postgres() {
    search_semantics(TestDb::postgres().await).await;
}

#[tokio::test]
async fn search_sorts_pages_and_matches_on_sqlite() {
    search_semantics(TestDb::sqlite()).await;
}

/// Alice's and Bob's directory data: Alice has a laptop, is on one public and one hidden list
/// and owns one; Bob has only a GitHub username.
async fn seed_facts(db: &TestDb) {
    run_sql(
        db,
        "INSERT INTO assets (serial, model, owner_email, assigned_at) VALUES \
           ('C02ALICE1', 'MacBook Pro 14', 'alice@example.com', '2025-01-15'), \
           ('C02BOB0001', 'ThinkPad X1', 'bob@example.com', NULL); \
         INSERT INTO distribution_lists (list_email, name, hidden) VALUES \
           ('eng@example.com', 'Engineering', FALSE), \
           ('secret@example.com', 'Secret Project', TRUE), \
           ('climbing@example.com', 'Climbing club', FALSE); \
         INSERT INTO distribution_list_members (list_id, member_email, role) \
           SELECT id, 'alice@example.com', 'member' FROM distribution_lists WHERE list_email = 'eng@example.com'; \
         INSERT INTO distribution_list_members (list_id, member_email, role) \
           SELECT id, 'alice@example.com', 'member' FROM distribution_lists WHERE list_email = 'secret@example.com'; \
         INSERT INTO distribution_list_members (list_id, member_email, role) \
           SELECT id, 'alice@example.com', 'owner' FROM distribution_lists WHERE list_email = 'climbing@example.com'; \
         INSERT INTO distribution_list_members (list_id, member_email, role) \
           SELECT id, 'bob@example.com', 'member' FROM distribution_lists WHERE list_email = 'eng@example.com';",
    )
    .await;
}

/// The directory every test starts from: alice and bob, their facts, and `people`.
pub async fn seed_directory(db: &TestDb, people: &[Person]) {
    let mut all = vec![
        (
            "Alice Admin".into(),
            "alice@example.com".into(),
            "alice-gh".into(),
            false,
        ),
        (
            "Bob Builder".into(),
            "bob@example.com".into(),
            "bob-gh".into(),
            false,
        ),
    ];
    all.extend_from_slice(people);
    seed(db, &all).await.close().await;
    seed_facts(db).await;
}

/// Dev mode (SQLite) over a seeded directory: alice and bob, their facts, and `people`.
pub async fn app_with_directory(db: &TestDb, people: &[Person]) -> TestApp {
    seed_directory(db, people).await;
    TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await
}

#[tokio::test]
async fn profile_shows_your_facts_and_lookup_a_coworkers_without_laptops() {
    let db = TestDb::sqlite();
    let app = app_with_directory(&db, &[]).await;
    let alice = dev_sign_in(&app.base, "alice").await;
    let html = get_with(&alice, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("html");
    for expected in [
        "<a class=\"gh\" href=\"https://github.com/alice-gh\" title=\"Profile on GitHub\"><code class=\"copy\">alice-gh</code></a>",
        "C02ALICE1",
        "MacBook Pro 14",
        "Engineering",
        "Secret Project",
        "Climbing club",
    ] {
        assert!(html.contains(expected), "{expected} on the profile");
    }
    let owner_of = &html[html.find("data-testid=\"owner-of\"").expect("owner-of")..];
    assert!(owner_of.contains("Climbing club"));
    assert!(!html.contains("C02BOB0001"), "only your own laptops");

    // Bob looks Alice up: GitHub username and public lists, never laptops or hidden lists.
    let bob = dev_sign_in(&app.base, "bob").await;
    let r = get_with(&bob, &app.url("/lookup?email=%20ALICE@Example.com%20")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["x-ratelimit-limit"],
        "60",
        "rule lookup (60/minute) applies"
    );
    let html = r.text().await.expect("html");
    // A visible label on the field, and a way past the header for keyboards.
    assert!(
        html.contains("<label class=\"field\">Work email or name"),
        "{html}"
    );
    assert!(html.contains("<a class=\"skip\" href=\"#content\">Skip to content</a>"));
    assert!(html.contains("<main id=\"content\">"));
    assert!(html.contains("href=\"https://github.com/alice-gh\" title=\"Profile on GitHub\"><code class=\"copy\">alice-gh</code>"));
    assert!(html.contains("Engineering") && html.contains("Climbing club"));
    assert!(!html.contains("C02ALICE1") && !html.contains("MacBook"));
    assert!(!html.contains("Secret Project"));
    // Unknown: a friendly answer, not an error.
    let r = get_with(&bob, &app.url("/lookup?email=nobody@example.com")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("data-testid=\"no-one\"")
    );
    // An address longer than any can be: said, not looked up.
    let long = format!("/lookup?email={}@example.com", "x".repeat(300));
    let r = get_with(&bob, &app.url(&long)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("data-testid=\"problem\"")
    );
    // Signed out: sent to sign in.
    let r = http()
        .get(app.url("/lookup?email=alice@example.com"))
        .send()
        .await
        .expect("lookup");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn lookup_takes_a_name_and_shows_whom_it_found() {
    let db = TestDb::sqlite();
    let people: Vec<Person> = vec![
        (
            "Ada Lindqvist".into(),
            "ada@example.com".into(),
            "ada-l".into(),
            false,
        ),
        // A second GitHub account of the same person: still one person to pick.
        (
            "Ada Lindqvist".into(),
            "ada@example.com".into(),
            "ada-work".into(),
            false,
        ),
        (
            "Adam Smith".into(),
            "adam@example.com".into(),
            "asmith".into(),
            false,
        ),
        (
            "Zed Gone".into(),
            "zed@example.com".into(),
            "zed-gh".into(),
            true,
        ),
    ];
    let app = app_with_directory(&db, &people).await;
    let bob = dev_sign_in(&app.base, "bob").await;
    let page = |path: String| {
        let (bob, url) = (bob.clone(), app.url(&path));
        async move {
            let r = get_with(&bob, &url).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            r.text().await.expect("html")
        }
    };

    // An email shows the person's name above the facts.
    let html = page("/lookup?email=alice%40example.com".into()).await;
    assert!(
        html.contains("<h2 data-testid=\"coworker-name\">Alice Admin</h2>"),
        "{html}"
    );

    // A name that one person has: that person, by name, with their facts.
    let html = page("/lookup?email=Lindqvist".into()).await;
    assert!(
        html.contains("data-testid=\"coworker-name\">Ada Lindqvist<"),
        "{html}"
    );
    assert!(
        html.contains("ada-l") && html.contains("ada-work"),
        "{html}"
    );
    assert!(
        html.contains("value=\"Lindqvist\""),
        "what was typed stays: {html}"
    );

    // Several people: a list to pick from, each opening that person's lookup.
    let html = page("/lookup?email=ada".into()).await;
    assert!(
        html.contains("data-testid=\"choices-count\">2 people match"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"/lookup?email=ada%40example.com\">Ada Lindqvist</a>")
            && html.contains("<a href=\"/lookup?email=adam%40example.com\">Adam Smith</a>"),
        "{html}"
    );
    assert!(
        !html.contains("data-testid=\"coworker\""),
        "no one chosen yet"
    );

    // No one (people who left are not found by name): the friendly answer.
    for typed in ["Zed", "nobody%20here"] {
        let html = page(format!("/lookup?email={typed}")).await;
        assert!(html.contains("data-testid=\"no-one\""), "{typed}: {html}");
    }
    // Too long to be a name: said, not an error page.
    let html = page(format!("/lookup?email={}", "x".repeat(201))).await;
    assert!(html.contains("data-testid=\"problem\""), "{html}");
    app.stop().await;
}

fn link_next(r: &reqwest::Response) -> Option<String> {
    let link = r.headers().get("link")?.to_str().ok()?;
    let start = link.find('<')? + 1;
    let end = link.find(">; rel=\"next\"")?;
    Some(link[start..end].to_string())
}

#[tokio::test]
async fn search_json_streams_everyone_and_pages_with_link_headers() {
    let db = TestDb::postgres().await;
    // More than one internal stream page (1,000 rows); signed in at node oidc-provider, since
    // dev mode does not serve on PostgreSQL.
    seed_directory(&db, &people(2400)).await;
    let rig = crate::signin::rig(db, &[]).await;
    let alice = crate::signin::sign_in(&rig, "alice", "/").await.jar;
    let app = rig.app;

    let r = get_with(&alice, &app.url("/gh/search.json")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/json");
    let all: Vec<Value> = r.json().await.expect("one JSON array");
    let active = 2 + people(2400).iter().filter(|p| !p.3).count();
    assert_eq!(all.len(), active);
    let mut keys: Vec<&str> = all[0]
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["email", "github_username", "last_pull_date", "name"]);
    assert!(all.iter().all(|r| {
        r["last_pull_date"]
            .as_str()
            .is_some_and(|d| d.ends_with('Z'))
    }));
    let mut emails: Vec<&str> = all.iter().filter_map(|r| r["email"].as_str()).collect();
    emails.sort_unstable();
    emails.dedup();
    assert_eq!(emails.len(), active, "no row twice");

    // Paged: follow Link to the end, by login descending.
    let mut url = Some(app.url("/gh/search.json?limit=200&sort=-github_username"));
    let mut paged = Vec::new();
    let mut pages = 0;
    while let Some(u) = url {
        let r = get_with(&alice, &u).await;
        assert_eq!(r.status(), StatusCode::OK);
        url = link_next(&r);
        let rows: Vec<Value> = r.json().await.expect("page");
        assert!(rows.len() <= 200);
        paged.extend(rows);
        pages += 1;
    }
    assert_eq!(pages, active.div_ceil(200));
    assert_eq!(paged.len(), active);
    let logins: Vec<String> = paged
        .iter()
        .filter_map(|r| r["github_username"].as_str().map(str::to_lowercase))
        .collect();
    assert!(
        logins.windows(2).all(|w| w[0] >= w[1]),
        "descending by login"
    );

    let r = get_with(&alice, &app.url("/gh/search.json?q=ALICE-gh")).await;
    let rows: Vec<Value> = r.json().await.expect("json");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["email"], "alice@example.com");
    assert!(
        rows[0].get("departed_at").is_none(),
        "only on people who left"
    );
    // People who left, when asked for, say when.
    let gone = people(2400)
        .into_iter()
        .find(|p| p.3)
        .expect("someone left");
    let r = get_with(
        &alice,
        &app.url(&format!("/gh/search.json?q={}&include_departed=1", gone.2)),
    )
    .await;
    let rows: Vec<Value> = r.json().await.expect("json");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]["departed_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{rows:?}"
    );

    // Bad parameters: 400 with a JSON body naming the parameter.
    for bad in ["limit=0", "limit=500", "sort=password", "cursor=garbage"] {
        let r = get_with(&alice, &app.url(&format!("/gh/search.json?{bad}"))).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body: Value = r.json().await.expect("json error");
        let name = bad.split('=').next().unwrap_or_default();
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(name)),
            "{body}"
        );
    }
    // Signed out: 401 JSON, not a redirect.
    let r = http()
        .get(app.url("/gh/search.json"))
        .send()
        .await
        .expect("signed out");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.json::<Value>().await.is_ok());
    app.stop().await;
}

/// The whole directory is built once per version and served as the same bytes: with a strong
/// ETag from the first answer on (304 when the client has it), gzipped when asked once the
/// kept copy is compressed; a change to the directory, written by anyone, makes a new version
/// at the next request.
async fn the_full_directory_is_prepared_once_per_version(db: TestDb) {
    seed_directory(&db, &people(1500)).await;
    let rig = crate::signin::rig(db, &[]).await;
    let alice = crate::signin::sign_in(&rig, "alice", "/").await.jar;
    let app = rig.app;
    let fetch = |headers: Vec<(&'static str, String)>| {
        let alice = alice.clone();
        let url = app.url("/gh/search.json");
        async move {
            let mut request = http().get(url).header("cookie", alice.header());
            for (k, v) in headers {
                request = request.header(k, v);
            }
            request.send().await.expect("dump")
        }
    };
    let first = fetch(vec![]).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["content-type"], "application/json");
    let etag = first.headers()["etag"].to_str().expect("etag").to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let streamed = first.bytes().await.expect("body");
    let rows: Vec<Value> = serde_json::from_slice(&streamed).expect("json");
    let active = DirectoryIndex::load(&app.state.store.db(), 0)
        .await
        .expect("index")
        .active_count();
    assert!(active > 1000);
    assert_eq!(rows.len(), active, "every active row");
    // Kept, gzipped, once compressed in the background: the next answers are prepared.
    let mut prepared = fetch(vec![("accept-encoding", "gzip".into())]).await;
    for _ in 0..200 {
        if prepared.headers().get("content-encoding").is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        prepared = fetch(vec![("accept-encoding", "gzip".into())]).await;
    }
    assert_eq!(prepared.headers()["content-encoding"], "gzip");
    assert_eq!(prepared.headers()["etag"].to_str().expect("etag"), etag);
    let plain = fetch(vec![]).await;
    assert_eq!(plain.headers()["etag"].to_str().expect("etag"), etag);
    assert_eq!(
        plain.bytes().await.expect("body"),
        streamed,
        "the same bytes"
    );

    let r = fetch(vec![("if-none-match", etag.clone())]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(r.headers()["etag"].to_str().expect("etag"), etag);
    assert!(r.bytes().await.expect("body").is_empty());
    let r = fetch(vec![("if-none-match", "\"other\"".into())]).await;
    assert_eq!(r.status(), StatusCode::OK);

    let r = fetch(vec![("accept-encoding", "gzip".into())]).await;
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["vary"], "accept-encoding");
    let gz = r.bytes().await.expect("body");
    assert!(
        gz.len() < streamed.len() / 3,
        "{} of {}",
        gz.len(),
        streamed.len()
    );
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut json)
        .expect("gunzip");
    assert_eq!(json, streamed);
    // Brotli when the client prefers it, or gives both the same quality (browsers do).
    let r = fetch(vec![("accept-encoding", "gzip, deflate, br".into())]).await;
    assert_eq!(r.headers()["content-encoding"], "br");
    let br = r.bytes().await.expect("body");
    assert!(br.len() < gz.len(), "{} of gzip's {}", br.len(), gz.len());
    let mut json = Vec::new();
    brotli::BrotliDecompress(&mut &br[..], &mut json).expect("brotli");
    assert_eq!(json, streamed);
    let r = fetch(vec![(
        "accept-encoding",
        "gzip;q=0, br;q=0, deflate".into(),
    )])
    .await;
    assert!(r.headers().get("content-encoding").is_none());

    // Someone else renames a person: the next answer has it, under another tag.
    gatehouse::execute!(
        &app.state.store.db(),
        "UPDATE github_identities SET name = 'Renamed Elsewhere' WHERE email = 'alice@example.com'"
    )
    .expect("rename");
    let mut body = String::new();
    for _ in 0..200 {
        let r = fetch(vec![("if-none-match", etag.clone())]).await;
        if r.status() == StatusCode::OK {
            assert_ne!(
                r.headers().get("etag").map(|e| e.to_str().ok()),
                Some(Some(etag.as_str()))
            );
            body = r.text().await.expect("body");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        body.contains("Renamed Elsewhere"),
        "{}",
        &body[..body.len().min(300)]
    );
    app.stop().await;
}

#[tokio::test]
async fn the_full_directory_is_prepared_once_per_version_on_postgres() {
    the_full_directory_is_prepared_once_per_version(TestDb::postgres().await).await;
}

#[tokio::test]
async fn the_full_directory_is_prepared_once_per_version_on_sqlite() {
    the_full_directory_is_prepared_once_per_version(TestDb::sqlite()).await;
}

#[tokio::test]
async fn the_search_page_renders_searches_sorts_and_pages_without_javascript() {
    let db = TestDb::sqlite();
    let app = app_with_directory(&db, &people(120)).await;
    let alice = dev_sign_in(&app.base, "alice").await;
    let html = get_with(&alice, &app.url("/gh/search"))
        .await
        .text()
        .await
        .expect("html");
    assert_eq!(
        html.matches("<tr>").count() - 1,
        50,
        "a default page of 50 rows (+ header)"
    );
    let everyone = html
        .split("data-search-count aria-live=\"polite\">")
        .nth(1)
        .and_then(|s| s.split(" people</p>").next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("the count of everyone");
    assert!(everyone > 100, "{everyone}");
    assert!(html.contains("data-testid=\"no-rows\" hidden>"));
    assert!(html.contains("aria-sort=\"ascending\"><a href=\"/gh/search?sort=-name\""));
    let next = html
        .split("data-testid=\"next\"")
        .next()
        .and_then(|h| h.rsplit("href=\"").next())
        .map(|h| {
            h.split('"')
                .next()
                .unwrap_or_default()
                .replace("&#38;", "&")
        })
        .expect("a next link");
    assert!(next.starts_with("/gh/search?sort=name&cursor="), "{next}");
    let second = get_with(&alice, &app.url(&next))
        .await
        .text()
        .await
        .expect("html");
    assert!(second.contains("First page"));
    assert_ne!(second, html);

    let html = get_with(&alice, &app.url("/gh/search?q=bob-GH"))
        .await
        .text()
        .await
        .expect("html");
    let table = &html[html.find("<tbody").expect("table")..html.find("</tbody>").expect("end")];
    assert!(table.contains("bob@example.com") && !table.contains("alice@example.com"));
    // The name opens the person's lookup; the username their GitHub profile.
    assert!(
        table.contains("<a href=\"/lookup?email=bob%40example.com\">Bob Builder</a>"),
        "{table}"
    );
    assert!(
        table.contains("href=\"https://github.com/bob-gh\" title=\"Profile on GitHub\"><code class=\"copy\">bob-gh</code></a>"),
        "{table}"
    );
    // When a row was last pulled, in words; the exact time in the markup and on hover.
    assert!(
        table.contains(
            "<time datetime=\"2026-10-02T08:00:00Z\" title=\"2026-10-02 08:00 UTC\">on 2026-10-02</time>"
        ),
        "{table}"
    );
    assert!(html.contains("value=\"bob-gh\""));
    assert!(
        html.contains("data-search-count aria-live=\"polite\">1 person matches</p>"),
        "{html}"
    );
    // Nobody: the table's notice says so, and no count.
    let html = get_with(&alice, &app.url("/gh/search?q=zzzz"))
        .await
        .text()
        .await
        .expect("html");
    assert!(html.contains("data-search-count aria-live=\"polite\"></p>"));
    assert!(html.contains("<p class=\"notice\" data-testid=\"no-rows\">No one matches.</p>"));
    // Search-as-you-type asks for the count over every page; other clients are not charged.
    let counted = |q: &'static str| {
        let url = app.url(&format!("/gh/search.json?{q}"));
        let alice = &alice;
        async move { get_with(alice, &url).await }
    };
    let all = counted("q=person&limit=200").await;
    assert!(all.headers().get("x-total-count").is_none());
    let all: Vec<serde_json::Value> = all.json().await.expect("json");
    let page = counted("q=person&limit=5&count=1").await;
    assert_eq!(
        page.headers()["x-total-count"],
        all.len().to_string().as_str()
    );
    assert!(all.len() > 5);
    assert_eq!(
        page.json::<Vec<serde_json::Value>>()
            .await
            .expect("json")
            .len(),
        5
    );
    assert_eq!(
        counted("q=person&count=yes").await.status(),
        StatusCode::BAD_REQUEST
    );
    // The script is self-hosted and carries the page's nonce.
    let src = html
        .split("<script src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("script tag");
    assert!(src.starts_with("/static/search.js?v="));
    let js = http().get(app.url(src)).send().await.expect("script");
    assert_eq!(js.status(), StatusCode::OK);
    // A bad parameter on the page is explained, not a crash.
    let r = get_with(&alice, &app.url("/gh/search?sort=nope")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("html")
            .contains("data-testid=\"problem\"")
    );
    app.stop().await;
}
