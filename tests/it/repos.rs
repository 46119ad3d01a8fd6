//! The repositories list through the real router: who sees which repository (admins all,
//! others by the patterns of their assigned and group-mapped roles, nobody else anything),
//! the 14-day sums, search, and the empty states.

use chrono::{Duration, Utc};
use gatehouse::auth::roles;
use gatehouse::store::Db;
use reqwest::StatusCode;

use crate::admin::sign_in_as;
use crate::signin::{Jar, get_with};
use crate::signin_refusals::app_with;
use crate::support::fake_idp::FakeIdp;
use crate::support::{TestApp, TestDb};

/// Repositories with a few days of traffic each; `web-shop` has 10 views a day for 28 days.
pub async fn seed(db: &Db) {
    let today = Utc::now().date_naive();
    for (name, desc) in [
        ("web-shop", "The shop front"),
        ("web-admin", "Back office"),
        ("data-lake", "Analytics"),
        ("api", "Public API"),
        ("my_repo", "Underscore, not a wildcard"),
    ] {
        gatehouse::execute!(
            db,
            "INSERT INTO repos (name, description, visibility) VALUES ($1, $2, 'private')",
            name,
            desc
        )
        .expect("repo");
    }
    for days_ago in 0..28 {
        let day = today - Duration::days(days_ago);
        gatehouse::execute!(
            db,
            "INSERT INTO repo_traffic (repo_id, day, views, unique_views, clones, unique_clones) \
             SELECT id, $1, 10, 2, 1, 1 FROM repos WHERE name = 'web-shop'",
            day
        )
        .expect("traffic");
    }
}

fn names(html: &str) -> Vec<String> {
    let marker = "data-testid=\"repo-name\">";
    html.match_indices(marker)
        .map(|(i, _)| {
            let rest = &html[i + marker.len()..];
            rest[..rest.find('<').unwrap_or(0)].to_string()
        })
        .collect()
}

async fn visible(app: &TestApp, jar: &Jar) -> Vec<String> {
    let r = get_with(jar, &app.url("/repos?sort=name")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut n = names(&r.text().await.expect("page"));
    n.sort();
    n
}

pub async fn user_id(db: &Db, subject: &str) -> i64 {
    gatehouse::on_db!(db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT id FROM users WHERE subject = $1"
    )
    .bind(subject)
    .fetch_one(pool)
    .await)
    .expect("user")
}

async fn access_matrix(test_db: TestDb) {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let app = app_with(&idp, &test_db, &[]).await;
    let db = app.state.store.db();
    seed(&db).await;
    let web = roles::create(&db, "web", "", &["web-*".into(), "my_repo".into()])
        .await
        .expect("create")
        .expect("new");
    let data = roles::create(&db, "data", "", &["acme/data-*".into()])
        .await
        .expect("create")
        .expect("new");
    roles::map_group(&db, "data-team", data.id, "test")
        .await
        .expect("map");

    let (alice, _) = sign_in_as(&app, &idp, "alice", &["gatehouse-admins"]).await;
    let (bob, _) = sign_in_as(&app, &idp, "bob", &[]).await;
    let (carol, _) = sign_in_as(&app, &idp, "carol", &["data-team"]).await;
    let (dave, _) = sign_in_as(&app, &idp, "dave", &["engineering"]).await;
    let bob_id = user_id(&db, "bob").await;
    roles::assign(&db, bob_id, web.id, "test")
        .await
        .expect("assign");
    app.settle().await;

    assert_eq!(
        visible(&app, &alice).await,
        ["api", "data-lake", "my_repo", "web-admin", "web-shop"]
    );
    assert_eq!(
        visible(&app, &bob).await,
        ["my_repo", "web-admin", "web-shop"]
    );
    // An owner-qualified pattern names one organization: without a configured one (no
    // sync here) it matches nothing.
    assert_eq!(visible(&app, &carol).await, Vec::<String>::new());
    let none = get_with(&dave, &app.url("/repos"))
        .await
        .text()
        .await
        .expect("page");
    assert!(names(&none).is_empty());
    assert!(none.contains("data-testid=\"empty\""), "{none}");
    assert!(none.contains("None of your roles grants access"), "{none}");

    // A group-mapped role with a plain pattern.
    let data2 = roles::create(&db, "data2", "", &["data-*".into()])
        .await
        .expect("create")
        .expect("new");
    roles::map_group(&db, "data-team", data2.id, "test")
        .await
        .expect("map");
    app.settle().await;
    assert_eq!(visible(&app, &carol).await, ["data-lake"]);

    // A role taken away applies at the next request (checked below, after the pages).

    // The 14-day sums and the change against the 14 before, from SQL.
    let page = get_with(&alice, &app.url("/repos?q=shop"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(names(&page), ["web-shop"]);
    assert!(
        page.contains("data-testid=\"views\">140 <span class=\"muted\">(28 unique)"),
        "{page}"
    );
    assert!(
        page.contains("data-testid=\"clones\">14 <span class=\"muted\">(14 unique)"),
        "{page}"
    );
    assert!(page.contains("±0%"), "{page}");
    assert!(page.contains("<polyline points="), "{page}");
    // Search reads descriptions too, and a LIKE wildcard in it is literal.
    let page = get_with(&alice, &app.url("/repos?q=office"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(names(&page), ["web-admin"]);
    let page = get_with(&alice, &app.url("/repos?q=my_"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(names(&page), ["my_repo"]);
    // Sorting by views puts the busy one first.
    let page = get_with(&alice, &app.url("/repos?sort=-views"))
        .await
        .text()
        .await
        .expect("page");
    assert_eq!(names(&page).first().map(String::as_str), Some("web-shop"));
    assert!(page.contains("aria-sort=\"descending\""), "{page}");
    // Pages are kept in memory per data version: a change written by someone else (plain
    // SQL here, as another instance or the command line would write it) shows on the list
    // and on a repository's page as soon as the instance knows the new version (the
    // announcement's delay, which `settle` skips, is the two-instance test's subject).
    gatehouse::execute!(
        &db,
        "UPDATE repos SET description = 'Moved elsewhere' WHERE name = 'web-shop'"
    )
    .expect("update");
    app.settle().await;
    for url in ["/repos?sort=-views", "/repos/web-shop"] {
        let page = get_with(&alice, &app.url(url))
            .await
            .text()
            .await
            .expect("page");
        assert!(page.contains("Moved elsewhere"), "{url}: {page}");
    }
    gatehouse::execute!(
        &db,
        "UPDATE repos SET description = 'The shop front' WHERE name = 'web-shop'"
    )
    .expect("update");
    app.settle().await;
    repository_page(&app, &alice, &bob).await;
    api_tokens_follow_the_same_roles(&app, &idp).await;
    roles::remove(&db, bob_id, web.id).await.expect("remove");
    app.settle().await;
    assert_eq!(visible(&app, &bob).await, Vec::<String>::new());
    assert_eq!(
        get_with(&bob, &app.url("/repos/web-shop")).await.status(),
        StatusCode::NOT_FOUND
    );
    // A bad parameter is a 400 that names it on the page, not a 500.
    let r = get_with(&alice, &app.url("/repos?sort=stars%3B")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("data-testid=\"problem\">sort must be")
    );
    app.stop().await;
}

/// The API's answer to a token for `sub` (and `uid`, as Okta adds it).
async fn api_names(
    app: &TestApp,
    idp: &FakeIdp,
    sub: &str,
    uid: Option<&str>,
) -> Result<Vec<String>, StatusCode> {
    let mut claims = crate::api::good_claims(&idp.issuer);
    claims["sub"] = sub.into();
    claims["scp"] = serde_json::json!(["repos.read"]);
    if let Some(uid) = uid {
        claims["uid"] = uid.into();
    }
    let token = idp.access_token(&claims, &crate::support::fake_idp::Tamper::None);
    let r = crate::support::http()
        .get(app.url("/api/v1/repos"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    if r.status() != StatusCode::OK {
        return Err(r.status());
    }
    let page: serde_json::Value = r.json().await.expect("json");
    Ok(page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().expect("name").to_string())
        .collect())
}

/// The same matrix through the API: a user's token sees what the user sees on the pages.
async fn api_tokens_follow_the_same_roles(app: &TestApp, idp: &FakeIdp) {
    let ok = |names: &[&str]| Ok(names.iter().map(|n| n.to_string()).collect::<Vec<_>>());
    let all = ["api", "data-lake", "my_repo", "web-admin", "web-shop"];
    assert_eq!(api_names(app, idp, "alice", None).await, ok(&all));
    assert_eq!(
        api_names(app, idp, "bob", None).await,
        ok(&["my_repo", "web-admin", "web-shop"])
    );
    assert_eq!(api_names(app, idp, "carol", None).await, ok(&["data-lake"]));
    assert_eq!(api_names(app, idp, "dave", None).await, ok(&[]));
    // Okta's shape: the login as sub, the user id as uid.
    assert_eq!(
        api_names(app, idp, "bob@example.com", Some("bob")).await,
        ok(&["my_repo", "web-admin", "web-shop"])
    );
    // Someone who never signed in, with or without a uid: refused, not shown everything.
    assert_eq!(
        api_names(app, idp, "erin", None).await,
        Err(StatusCode::FORBIDDEN)
    );
    assert_eq!(
        api_names(app, idp, "erin@example.com", Some("erin")).await,
        Err(StatusCode::FORBIDDEN)
    );
    // A client's own token (sub = its client id) sees everything.
    assert_eq!(api_names(app, idp, "reports", None).await, ok(&all));
}

/// The list's 14-day sums are kept per repository: made when missing, redone when they are
/// of another day, and otherwise read as they are (the sync redoes them with its traffic).
async fn kept_sums(test_db: TestDb) {
    use gatehouse::repos::store::{self, Paging};
    let store = crate::sync::open(&test_db).await;
    let db = store.db();
    seed(&db).await;
    let today = Utc::now().date_naive();
    let shop = |rows: Vec<gatehouse::repos::RepoSummary>, name: &str| {
        let r = rows.into_iter().find(|r| r.name == name).expect("listed");
        (r.views_14d, r.views_prev_14d, r.last_day, r.as_of)
    };
    let all = gatehouse::repos::ListQuery::default();
    let list = || store::list(&db, None, &all, Paging::Page(1), today);
    assert_eq!(
        shop(list().await.expect("list"), "web-shop"),
        (140, 140, Some(today), Some(today)),
        "made on the first list"
    );
    // Yesterday's sums (the first request after midnight) are redone.
    gatehouse::execute!(
        &db,
        "UPDATE repo_summaries SET as_of = $1, views_14d = 999",
        today - Duration::days(1)
    )
    .expect("age");
    assert_eq!(
        shop(list().await.expect("list"), "web-shop"),
        (140, 140, Some(today), Some(today))
    );
    // Today's are read as they are: traffic written outside the sync waits for the next
    // refresh, which the sync runs in its own transaction.
    gatehouse::execute!(
        &db,
        "INSERT INTO repo_traffic (repo_id, day, views) SELECT id, $1, 50 FROM repos WHERE name = 'api'",
        today
    )
    .expect("traffic");
    assert_eq!(shop(list().await.expect("list"), "api").0, 0);
    let [a, b, c] = store::summary_window(today);
    gatehouse::execute!(&db, store::REFRESH_SUMMARIES, a, b, c).expect("refresh");
    assert_eq!(
        shop(list().await.expect("list"), "api"),
        (50, 0, Some(today), Some(today))
    );
    // A repository deleted from the table takes its sums with it.
    gatehouse::execute!(&db, "DELETE FROM repos WHERE name = 'api'").expect("delete");
    let left: i64 = gatehouse::on_db!(&db, |pool| sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM repo_summaries"
    )
    .fetch_one(pool)
    .await)
    .expect("count");
    assert_eq!(left, 4);
    store.close().await;
}

#[tokio::test]
async fn the_lists_sums_are_kept_and_redone_each_day_on_sqlite() {
    kept_sums(TestDb::sqlite()).await;
}

#[tokio::test]
async fn the_lists_sums_are_kept_and_redone_each_day_on_postgres() {
    kept_sums(TestDb::postgres().await).await;
}

/// More repositories than a page: 50 a page in the chosen order, the count of pages, links
/// that keep the search and sort; past the last page is simply empty.
#[tokio::test]
async fn the_list_pages_through_many_repositories() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let test_db = TestDb::sqlite();
    let app = app_with(&idp, &test_db, &[]).await;
    let db = app.state.store.db();
    for i in 0..120 {
        gatehouse::execute!(
            &db,
            "INSERT INTO repos (name, description) VALUES ($1, 'numbered')",
            format!("r-{i:03}")
        )
        .expect("repo");
    }
    let (alice, _) = sign_in_as(&app, &idp, "alice", &["gatehouse-admins"]).await;
    let page = |n: u32| {
        let url = app.url(&format!("/repos?q=numbered&sort=-name&page={n}"));
        let jar = alice.clone();
        async move {
            let r = get_with(&jar, &url).await;
            assert_eq!(r.status(), StatusCode::OK);
            r.text().await.expect("page")
        }
    };
    let first = page(1).await;
    assert_eq!(names(&first).len(), 50);
    assert_eq!(names(&first)[0], "r-119", "descending by name");
    assert!(first.contains("page 1 of 3"), "{first}");
    assert!(
        first.contains("q=numbered&#38;sort=-name&#38;page=2"),
        "{first}"
    );
    let last = page(3).await;
    assert_eq!(names(&last).len(), 20);
    assert_eq!(names(&last).last().map(String::as_str), Some("r-000"));
    assert!(last.contains("page 3 of 3"), "{last}");
    assert!(names(&page(4).await).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn who_sees_which_repository_on_sqlite() {
    access_matrix(TestDb::sqlite()).await;
}

#[tokio::test]
async fn who_sees_which_repository_on_postgres() {
    access_matrix(TestDb::postgres().await).await;
}

#[tokio::test]
async fn signed_out_the_list_sends_you_to_sign_in() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let r = crate::support::http()
        .get(app.url("/repos"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html.find(start).map_or(html.len(), |i| i + start.len());
    let rest = &html[i..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// One repository's page and CSV: the same series, the same totals, 404 for the unseen.
async fn repository_page(app: &TestApp, alice: &Jar, bob: &Jar) {
    // Stars per sync day: only the first and each change are shown.
    let db = app.state.store.db();
    let today = Utc::now().date_naive();
    for (days_ago, stars) in [(5, 5), (4, 5), (3, 6), (2, 6), (1, 5)] {
        gatehouse::execute!(
            &db,
            "INSERT INTO repo_stars (repo_id, day, stars, forks) \
             SELECT id, $1, $2, 0 FROM repos WHERE name = 'web-shop'",
            today - Duration::days(days_ago),
            stars
        )
        .expect("stars");
    }
    // As the sync writes history: with the sums refreshed in the same breath, which is what
    // tells every instance that the repositories changed.
    let [a, b, c] = gatehouse::repos::store::summary_window(today);
    gatehouse::execute!(&db, gatehouse::repos::store::REFRESH_SUMMARIES, a, b, c).expect("refresh");
    app.settle().await;
    let r = get_with(alice, &app.url("/repos/web-shop")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("page");
    // 28 days of traffic in the default 90 days, one point per day, on both charts.
    assert_eq!(page.matches("data-points=\"28\"").count(), 2, "{page}");
    assert!(page.contains("<title>"), "each point names its value");
    assert!(
        page.contains("280 views (56 unique), 28 clones (28 unique)"),
        "{page}"
    );
    let stars = between(&page, "data-testid=\"stars\"", "</table>");
    let shown: Vec<(String, i32)> = [(5, 5), (3, 6), (1, 5)]
        .iter()
        .map(|(ago, n)| ((today - Duration::days(*ago)).to_string(), *n))
        .collect();
    for (day, n) in &shown {
        assert!(
            stars.contains(&format!("<td>{day}</td><td class=\"num\">{n}</td>")),
            "{stars}"
        );
    }
    assert_eq!(stars.matches("<tr><td>").count(), 3, "{stars}");
    // Case-insensitive like GitHub's names; the list links here.
    assert_eq!(
        get_with(alice, &app.url("/repos/WEB-SHOP")).await.status(),
        StatusCode::OK
    );
    let list = get_with(alice, &app.url("/repos"))
        .await
        .text()
        .await
        .expect("list");
    assert!(list.contains("href=\"/repos/web-shop\""), "{list}");

    // The CSV of the same range sums to the page's totals.
    let csv_href = between(&page, "data-testid=\"range\">", "</p>");
    let csv_href = between(csv_href, "<a href=\"", "\"").replace("&amp;", "&");
    let r = get_with(alice, &app.url(&csv_href)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/csv")
    );
    let csv = r.text().await.expect("csv");
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("date,views,unique_views,clones,unique_clones")
    );
    let sums = lines.fold([0i64; 4], |mut acc, line| {
        for (slot, v) in acc.iter_mut().zip(line.split(',').skip(1)) {
            *slot += v.parse::<i64>().expect("number");
        }
        acc
    });
    assert_eq!(sums, [280, 56, 28, 28]);

    // Weekly: at most 5 periods for 28 days, each starting on a Monday, same totals.
    let weekly = get_with(
        alice,
        &app.url("/repos/web-shop/traffic.csv?range=90d&granularity=week"),
    )
    .await
    .text()
    .await
    .expect("csv");
    let weeks: Vec<&str> = weekly.lines().skip(1).collect();
    assert!((4..=5).contains(&weeks.len()), "{weekly}");
    for w in &weeks {
        let day = chrono::NaiveDate::parse_from_str(&w[..10], "%Y-%m-%d").expect("date");
        assert_eq!(chrono::Datelike::weekday(&day), chrono::Weekday::Mon, "{w}");
    }
    let total: i64 = weeks
        .iter()
        .map(|w| {
            w.split(',')
                .nth(1)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 280);
    let monthly = get_with(
        alice,
        &app.url("/repos/web-shop/traffic.csv?range=all&granularity=month"),
    )
    .await
    .text()
    .await
    .expect("csv");
    assert!(
        monthly.lines().skip(1).all(|l| &l[8..10] == "01"),
        "{monthly}"
    );

    // Bad parameters name themselves; odd names are simply not found.
    let r = get_with(
        alice,
        &app.url("/repos/web-shop/traffic.csv?granularity=hour"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("granularity must be")
    );
    let r = get_with(alice, &app.url("/repos/web-shop?range=2w")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("range must be 14d, 90d, 1y or all")
    );
    for odd in [
        "/repos/a%00b",
        "/repos/%C3%BC",
        "/repos/..%2f..%2fetc",
        "/repos/no-such-repo",
    ] {
        assert_eq!(
            get_with(alice, &app.url(odd)).await.status(),
            StatusCode::NOT_FOUND,
            "{odd}"
        );
    }

    // What bob may not see is a 404 exactly like what does not exist.
    let hidden = get_with(bob, &app.url("/repos/data-lake")).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    let hidden = hidden.text().await.expect("page");
    let unknown = get_with(bob, &app.url("/repos/no-such-repo"))
        .await
        .text()
        .await
        .expect("page");
    let strip = |s: &str| s.replace(char::is_whitespace, "");
    let body = |s: &str| strip(between(s, "<main", "</main>"));
    assert_eq!(body(&hidden), body(&unknown));
    assert_eq!(
        get_with(bob, &app.url("/repos/data-lake/traffic.csv"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get_with(bob, &app.url("/repos/web-shop")).await.status(),
        StatusCode::OK
    );
}

/// Dev mode's sample: alice (an administrator) sees every sample repository, bob only those
/// of the demo role assigned to his address (`web-*`), archived and removed ones included.
#[tokio::test]
async fn dev_mode_sample_repositories_by_demo_role() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let sample = gatehouse::sample::generate(Utc::now().date_naive());
    let mut all: Vec<String> = sample.repos.iter().map(|r| r.name.clone()).collect();
    all.sort();
    let web: Vec<String> = all
        .iter()
        .filter(|n| n.starts_with("web-"))
        .cloned()
        .collect();
    assert!(!web.is_empty() && web.len() < all.len(), "{all:?}");

    let alice = crate::devidp::dev_sign_in(&app.base, "alice").await;
    assert_eq!(visible(&app, &alice).await, all);
    let bob = crate::devidp::dev_sign_in(&app.base, "bob").await;
    assert_eq!(visible(&app, &bob).await, web);
    // The start page's card counts what each may open.
    for (jar, expected) in [(&alice, all.len()), (&bob, web.len())] {
        let home = get_with(jar, &app.url("/"))
            .await
            .text()
            .await
            .expect("home");
        assert!(
            home.contains(&format!("data-testid=\"repo-count\">{expected}<")),
            "{home}"
        );
    }

    // The page marks the archived and the removed repository, and draws sparklines.
    let page = get_with(&alice, &app.url("/repos"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains(">archived</span>"), "{page}");
    assert!(page.contains(">removed from GitHub</span>"), "{page}");
    assert!(page.contains("<svg class=\"spark\""), "{page}");
    app.stop().await;
}

/// Two instances on one PostgreSQL database, each keeping pages in memory: an admin's change
/// on one (a role taken from bob) and a sync's data written elsewhere reach the other's next
/// pages within the bound (two seconds; announcements take well under one), and the admin's
/// own next page on the first at once.
#[tokio::test]
async fn a_change_on_one_instance_reaches_the_others_pages() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let test_db = TestDb::postgres().await;
    let one = app_with(&idp, &test_db, &[]).await;
    let two = app_with(&idp, &test_db, &[]).await;
    let db = one.state.store.db();
    seed(&db).await;
    let web = roles::create(&db, "web", "", &["web-*".into()])
        .await
        .expect("create")
        .expect("new");
    let (alice, csrf) = sign_in_as(&one, &idp, "alice", &["gatehouse-admins"]).await;
    let (bob, _) = sign_in_as(&one, &idp, "bob", &[]).await;
    let bob_id = user_id(&db, "bob").await;
    roles::assign(&db, bob_id, web.id, "test")
        .await
        .expect("assign");
    one.settle().await;
    two.settle().await;
    // Both instances have bob's list and a repository page in memory.
    for app in [&one, &two] {
        assert_eq!(visible(app, &bob).await, ["web-admin", "web-shop"]);
        assert_eq!(
            get_with(&bob, &app.url("/repos/web-shop")).await.status(),
            StatusCode::OK
        );
    }
    let r = crate::support::http()
        .post(one.url(&format!("/admin/users/{bob_id}/roles")))
        .header("cookie", alice.header())
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("action", "remove"),
            ("role_id", &web.id.to_string()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The instance that made the change: at once.
    assert_eq!(visible(&one, &bob).await, Vec::<String>::new());
    // The other: within the bound.
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = visible(&two, &bob).await;
        if seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        seen.is_empty(),
        "still shown on the other instance: {seen:?}"
    );
    assert_eq!(
        get_with(&bob, &two.url("/repos/web-shop")).await.status(),
        StatusCode::NOT_FOUND
    );
    // Data written elsewhere (as the sync writes it: traffic and the sums, one transaction).
    let today = Utc::now().date_naive();
    gatehouse::execute!(
        &db,
        "UPDATE repo_traffic SET views = 1000 WHERE day = $1 \
           AND repo_id = (SELECT id FROM repos WHERE name = 'web-shop')",
        today
    )
    .expect("traffic");
    let [a, b, c] = gatehouse::repos::store::summary_window(today);
    gatehouse::execute!(&db, gatehouse::repos::store::REFRESH_SUMMARIES, a, b, c).expect("refresh");
    let mut page = String::new();
    for _ in 0..200 {
        page = get_with(&alice, &two.url("/repos?q=shop"))
            .await
            .text()
            .await
            .expect("page");
        if page.contains("data-testid=\"views\">1130 ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(page.contains("data-testid=\"views\">1130 "), "{page}");
    two.stop().await;
    one.stop().await;
}
