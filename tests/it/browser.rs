//! End to end in real headless Chromium (Debian's package, driven through chromedriver):
//! what a person sees on the landing page.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{TestApp, TestDb, free_port, repo_root};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, killed with this value.
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    pub fn start() -> Driver {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: scripts/test installs Debian's chromium and chromium-driver"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen within 20s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// A fresh headless browser with its own empty profile.
    pub async fn browser(&self, profile: &std::path::Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--window-size=1280,900",
                    // Chromium still reaches out on its own (autofill, updates); resolve
                    // nothing but the loopback names the tests use.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

/// alice signs in through the dev provider's pick-a-user page, landing on `next`, which
/// shows `landmark` once loaded.
async fn alice_signs_in(browser: &Client, app: &TestApp, next: &str, landmark: &str, what: &str) {
    browser
        .goto(&app.url(&format!("/auth/login?next={next}")))
        .await
        .expect("login");
    click(
        browser,
        "[data-testid=pick-alice]",
        "the pick-a-demo-user page",
    )
    .await;
    browser
        .wait()
        .for_element(Locator::Css(landmark))
        .await
        .expect(what);
}

/// Waits for the element (pages load after clicks) and clicks it.
async fn click(browser: &Client, css: &str, what: &str) {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {what}: {e}"));
}

/// Waits for the element and returns its text.
async fn text_of(browser: &Client, css: &str, what: &str) -> String {
    browser
        .wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .text()
        .await
        .unwrap_or_else(|e| panic!("text of {what}: {e}"))
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn landing_page_in_chromium() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(profile.path()).await;

    browser
        .goto(&app.url("/"))
        .await
        .expect("opens the landing page");
    assert_eq!(browser.title().await.expect("title"), "Gatehouse");
    let heading = browser
        .find(Locator::Css("h1"))
        .await
        .expect("a heading")
        .text()
        .await
        .expect("text");
    assert_eq!(heading, "Everything you would otherwise ask IT in chat");
    let notice = browser
        .find(Locator::Css(".notice"))
        .await
        .expect("dev notice");
    assert!(
        notice
            .text()
            .await
            .expect("text")
            .contains("made-up sample data")
    );
    // Signed out, the cards say what is here without counting anything internal.
    let figures = browser
        .find_all(Locator::Css(".figure"))
        .await
        .expect("figures");
    assert!(figures.is_empty(), "no figures before sign-in");
    let cards = browser
        .find_all(Locator::Css(".card"))
        .await
        .expect("cards");
    assert_eq!(cards.len(), 4);

    // The stylesheet loaded under the CSP (a blocked sheet leaves the cards unstyled).
    let styled = browser
        .execute(
            "const c = document.querySelector('.card'); const s = getComputedStyle(c); \
             return [s.borderRadius, getComputedStyle(document.querySelector('.cards')).display];",
            vec![],
        )
        .await
        .expect("computed style");
    assert_eq!(styled, json!(["10px", "grid"]));

    // Keep a picture of what a person sees, for humans reviewing the run.
    let shot = browser.screenshot().await.expect("screenshot");
    let dir = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join("landing.png"), shot).expect("write screenshot");

    browser.close().await.expect("closes");
    app.stop().await;
}

/// The whole sign-in in a real browser, with the provider on another site (`localhost`) than
/// Gatehouse (`127.0.0.1`): the provider's real login form, its cross-site redirect back, the
/// same-origin hop, and the profile shown signed in without a reload. Then sign-out through
/// the provider's logout page and back.
#[tokio::test]
async fn sign_in_and_out_across_sites_in_chromium() {
    let rig = crate::signin::rig(TestDb::sqlite(), &[]).await;
    assert!(rig.idp.issuer.starts_with("http://localhost:"));
    assert!(rig.app.base.starts_with("http://127.0.0.1:"));
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(profile.path()).await;

    // A guarded page sends the person to sign in and back to it.
    browser
        .goto(&rig.app.url("/profile"))
        .await
        .expect("open profile");
    let login = browser
        .wait()
        .for_element(Locator::Css("input[name=login]"))
        .await
        .expect("the provider's login form");
    assert!(
        browser
            .current_url()
            .await
            .expect("url")
            .as_str()
            .starts_with(&rig.idp.issuer)
    );
    login.send_keys("alice").await.expect("type login");
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password field")
        .send_keys("any password")
        .await
        .expect("type password");
    click(&browser, "button[type=submit]", "submit").await;

    assert_eq!(
        text_of(&browser, "[data-testid=email]", "the profile, signed in").await,
        "alice@example.com"
    );
    assert_eq!(
        browser.current_url().await.expect("url").as_str(),
        rig.app.url("/profile")
    );
    let who = browser
        .find(Locator::Css("[data-testid=signed-in-as]"))
        .await
        .expect("signed-in marker");
    assert_eq!(who.text().await.expect("text"), "alice@example.com");
    let shot = browser.screenshot().await.expect("screenshot");
    let dir = repo_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join("profile.png"), shot).expect("write screenshot");

    // A link from another site to a page must not look signed out (the Strict cookie is not
    // sent on it; the same-origin hop brings it back).
    let chat = format!(
        "data:text/html,<a id=deep href='{}'>the profile</a>",
        rig.app.url("/profile")
    );
    let authorizations = || async {
        let stats: serde_json::Value = reqwest::get(format!("{}/__test/stats", rig.idp.issuer))
            .await
            .expect("stats")
            .json()
            .await
            .expect("json");
        stats["authorization_requests"].as_u64().expect("counter")
    };
    let before = authorizations().await;
    browser.goto(&chat).await.expect("a page on another site");
    browser
        .find(Locator::Id("deep"))
        .await
        .expect("link")
        .click()
        .await
        .expect("follow the deep link");
    assert_eq!(
        text_of(
            &browser,
            "[data-testid=email]",
            "the deep link lands signed in"
        )
        .await,
        "alice@example.com"
    );
    assert_eq!(
        authorizations().await,
        before,
        "still the same session: no new trip to the provider"
    );

    // Sign out: the form posts, Gatehouse ends the session and moves on to the provider.
    click(&browser, "button.link", "sign-out button").await;
    let confirm = browser
        .wait()
        .for_element(Locator::Css("button[name=logout]"))
        .await
        .expect("the provider's logout confirmation");
    confirm.click().await.expect("confirm logout");
    // The confirmation page has an `h1` too: wait for the address, not for an element.
    let home = url::Url::parse(&rig.app.url("/")).expect("url");
    let _ = browser
        .wait()
        .at_most(Duration::from_secs(15))
        .for_url(&home)
        .await;
    let back = browser.current_url().await.expect("url");
    assert_eq!(
        back.as_str(),
        rig.app.url("/"),
        "the provider sends the browser home"
    );
    browser
        .goto(&rig.app.url("/profile"))
        .await
        .expect("profile again");
    browser
        .wait()
        .for_element(Locator::Css("input[name=login]"))
        .await
        .expect("signed out: the provider asks again");

    browser.close().await.expect("closes");
    rig.app.stop().await;
}

/// What a person does on a fresh checkout: open Gatehouse, sign in with the built-in dev
/// provider, see the profile, sign out.
#[tokio::test]
async fn dev_mode_sign_in_and_out_in_chromium() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(profile.path()).await;

    browser.goto(&app.url("/")).await.expect("home");
    click(&browser, "[data-testid=sign-in]", "a sign-in button").await;
    click(
        &browser,
        "[data-testid=pick-alice]",
        "the pick-a-demo-user page",
    )
    .await;
    assert_eq!(
        text_of(&browser, "[data-testid=email]", "the profile").await,
        "alice@example.com"
    );
    click(&browser, "button.link", "sign-out button").await;
    browser
        .wait()
        .for_element(Locator::Css("[data-testid=sign-in]"))
        .await
        .expect("home again, signed out");
    assert_eq!(
        browser.current_url().await.expect("url").as_str(),
        app.url("/")
    );
    browser.close().await.expect("closes");
    app.stop().await;
}

/// The directory page's script (self-hosted, under the CSP with no inline script) searches as
/// you type: rows change without a page load, and the address follows the search.
#[tokio::test]
async fn directory_search_as_you_type_in_chromium() {
    let db = TestDb::sqlite();
    let extra: Vec<(String, String, String, bool)> = (0..80)
        .map(|i| {
            (
                format!("Extra {i}"),
                format!("extra{i}@example.com"),
                format!("extra-{i}"),
                i == 79,
            )
        })
        .collect();
    let app = crate::directory::app_with_directory(&db, &extra).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(profile.path()).await;
    alice_signs_in(
        &browser,
        &app,
        "/gh/search",
        "[data-search-input]",
        "the directory page",
    )
    .await;
    let rows = browser
        .find_all(Locator::Css("[data-search-rows] tr"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 50, "the server-rendered first page");
    // A marker that a page load would wipe.
    browser
        .execute("window.__stayed = true; return null;", vec![])
        .await
        .expect("marker");
    let input = browser
        .find(Locator::Css("[data-search-input]"))
        .await
        .expect("search box");
    input.send_keys("BOB-g").await.expect("types");
    wait_for_rows(&browser, 1).await;
    let text = text_of(&browser, "[data-search-rows] tr", "the row").await;
    assert!(
        text.contains("bob@example.com") && text.contains("bob-gh"),
        "{text}"
    );
    // Drawn as the server draws it: the name opens the lookup, the username GitHub.
    let links = browser
        .execute(
            "return [...document.querySelectorAll('[data-search-rows] tr a')].map(a => a.getAttribute('href'));",
            vec![],
        )
        .await
        .expect("links");
    assert_eq!(
        links,
        serde_json::json!([
            "/lookup?email=bob%40example.com",
            "https://github.com/bob-gh"
        ])
    );
    let stayed = browser
        .execute("return window.__stayed === true;", vec![])
        .await
        .expect("marker");
    assert_eq!(stayed, serde_json::json!(true), "no page load happened");
    let url = browser.current_url().await.expect("url");
    assert_eq!(url.path(), "/gh/search");
    assert!(url.query().unwrap_or("").contains("q=BOB-g"), "{url}");
    assert_eq!(
        text_of(&browser, "[data-testid=count]", "the count").await,
        "1 person matches"
    );

    // Typing to no match says so; ticking "include people who left" searches again.
    input.clear().await.expect("clears");
    input.send_keys("extra-79").await.expect("types");
    wait_for_rows(&browser, 0).await;
    let none = browser
        .find(Locator::Css("[data-testid=no-rows]"))
        .await
        .expect("notice");
    assert!(none.is_displayed().await.expect("shown"), "no-match notice");
    click(
        &browser,
        "[data-search-departed]",
        "include people who left",
    )
    .await;
    wait_for_rows(&browser, 1).await;
    assert!(!none.is_displayed().await.expect("hidden"));
    // The row drawn by the script marks the person as gone, as the server's page does.
    assert_eq!(
        text_of(
            &browser,
            "[data-testid=directory] tbody td .tag",
            "the left tag"
        )
        .await,
        "left"
    );
    let url = browser.current_url().await.expect("url");
    assert!(
        url.query().unwrap_or("").contains("include_departed=1"),
        "{url}"
    );

    // A column sorts what is searched now, not the search the page was loaded with.
    click(&browser, "th:nth-child(2) a", "the Email column").await;
    browser
        .wait()
        .for_element(Locator::Css("th:nth-child(2)[aria-sort=ascending]"))
        .await
        .expect("sorted by email");
    let url = browser.current_url().await.expect("url");
    let query = url.query().unwrap_or("");
    assert!(
        query.contains("q=extra-79")
            && query.contains("include_departed=1")
            && query.contains("sort=email"),
        "{url}"
    );
    wait_for_rows(&browser, 1).await;
    browser.close().await.expect("closes");
    app.stop().await;
}

async fn wait_for_rows(browser: &Client, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = browser
            .find_all(Locator::Css("[data-search-rows] tr"))
            .await
            .expect("rows");
        if rows.len() == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} rows, not {n}",
            rows.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A repository's page as a browser draws it: one point per day of the range on each chart,
/// each point's tooltip the value of its row in the table, and at a phone's width the page's
/// content fits without sideways scrolling (the chart scales down, the table scrolls in its box)
/// — as does every other page alice can open.
#[tokio::test]
async fn repository_chart_in_chromium() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(profile.path()).await;
    alice_signs_in(
        &browser,
        &app,
        "/repos",
        "[data-testid=repos]",
        "the repositories list",
    )
    .await;
    browser
        .goto(&app.url("/repos/platform-api?range=14d"))
        .await
        .expect("repository page");
    browser
        .wait()
        .for_element(Locator::Css("svg[data-testid=chart]"))
        .await
        .expect("a chart");
    let drawn = browser
        .execute(
            "const charts = [...document.querySelectorAll('svg[data-testid=chart]')];
             const rows = [...document.querySelectorAll('[data-testid=series] tbody tr')]
               .map(r => [...r.cells].map(c => c.textContent.trim()));
             const views = charts[0].querySelectorAll('circle');
             const box = charts[0].getBoundingClientRect();
             return {
               points: charts.map(c => c.querySelectorAll('circle').length),
               declared: charts.map(c => c.dataset.points),
               width: box.width,
               first: views[0].querySelector('title').textContent,
               last: views[views.length - 1].querySelector('title').textContent,
               rows,
             };",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(drawn["points"], json!([14, 14]), "{drawn}");
    assert_eq!(drawn["declared"], json!(["14", "14"]), "{drawn}");
    assert!(drawn["width"].as_f64().unwrap_or(0.0) > 400.0, "{drawn}");
    let rows = drawn["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 14);
    for (tooltip, row) in [(&drawn["first"], &rows[0]), (&drawn["last"], &rows[13])] {
        let expected = format!(
            "{}: {} views",
            row[0].as_str().unwrap_or(""),
            row[1].as_str().unwrap_or("")
        );
        assert_eq!(tooltip.as_str(), Some(expected.as_str()), "{drawn}");
    }

    browser
        .set_window_size(390, 900)
        .await
        .expect("phone width");
    browser.refresh().await.expect("reload");
    browser
        .wait()
        .for_element(Locator::Css("svg[data-testid=chart]"))
        .await
        .expect("a chart");
    let fit = browser
        .execute(
            "const main = document.querySelector('main');
             const chart = document.querySelector('svg[data-testid=chart]').getBoundingClientRect();
             return { main: main.scrollWidth, room: main.clientWidth, chart: chart.right,
                      page: document.documentElement.scrollWidth,
                      viewport: window.innerWidth };",
            vec![],
        )
        .await
        .expect("script");
    let n = |k: &str| fit[k].as_f64().unwrap_or(f64::MAX);
    assert!(
        n("main") <= n("room"),
        "the content scrolls sideways: {fit}"
    );
    assert!(
        n("chart") <= n("viewport"),
        "the chart is wider than the phone: {fit}"
    );
    assert!(
        n("page") <= n("viewport"),
        "the page (its signed-in header included) scrolls sideways: {fit}"
    );
    // Every other page alice can open fits a phone too: wide tables scroll in their own box,
    // long addresses wrap.
    for path in [
        "/",
        "/profile",
        "/gh/search",
        "/lookup?email=ada.lindqvist@example.com",
        "/account/sessions",
        "/repos",
        "/admin/users",
        "/admin/groups",
        "/admin/sync",
        "/admin/audit",
    ] {
        browser.goto(&app.url(path)).await.expect("page");
        let widths = browser
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .expect("script");
        let page = widths[0].as_f64().unwrap_or(f64::MAX);
        let viewport = widths[1].as_f64().unwrap_or(0.0);
        assert!(
            page <= viewport,
            "{path} scrolls sideways at 390 px: {widths}"
        );
    }
    browser.close().await.expect("closes");
    app.stop().await;
}

async fn header_height(browser: &Client) -> f64 {
    browser
        .execute(
            "return document.querySelector('.site-header').getBoundingClientRect().height;",
            vec![],
        )
        .await
        .expect("script")
        .as_f64()
        .unwrap_or(0.0)
}

/// The accessibility rules that fail a test: axe-core's two highest impacts.
const AXE_FAILS: &str = "serious critical";

/// Runs axe-core (from the test rig's npm packages) on the page the browser shows; the
/// serious and critical violations, one line each (rule, impact, help, elements).
async fn axe_violations(browser: &Client, axe: &str) -> Vec<String> {
    // The script is sent as WebDriver's script body, which the page's CSP does not govern:
    // the site itself allows no inline script and no eval.
    let script = format!(
        "{axe}\n;const done = arguments[arguments.length - 1];\
         window.axe.run(document, {{ resultTypes: ['violations'] }})\
           .then(r => done(r.violations\
             .filter(v => '{AXE_FAILS}'.split(' ').includes(v.impact))\
             .map(v => v.id + ' (' + v.impact + '): ' + v.help + ' at '\
               + v.nodes.map(n => n.target.join(' ')).join(', '))))\
           .catch(e => done(['axe failed: ' + e]));"
    );
    let found = browser
        .execute_async(&script, vec![])
        .await
        .expect("axe runs");
    found
        .as_array()
        .map(|v| {
            v.iter()
                .map(|line| line.as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_else(|| vec![format!("axe answered {found}")])
}

#[tokio::test]
async fn every_page_passes_axe_in_chromium() {
    let axe_path = repo_root().join("tests/idp/node_modules/axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/test installs the test rig's npm packages)",
            axe_path.display()
        )
    });
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let driver = Driver::start();
    let profile = tempfile::tempdir().expect("profile dir");
    let browser = driver.browser(profile.path()).await;
    let mut failures = Vec::new();
    for path in ["/", "/no-such-page", "/auth/login?next=/"] {
        browser.goto(&app.url(path)).await.expect("page");
        for v in axe_violations(&browser, &axe).await {
            failures.push(format!("signed out {path}: {v}"));
        }
    }
    browser.goto(&app.url("/")).await.expect("page");
    let signed_out_header = header_height(&browser).await;
    alice_signs_in(&browser, &app, "/", "main", "the start page").await;
    // Signing in does not shift the page: the header keeps its height (on a wide screen;
    // on a phone the signed-in links wrap onto more lines).
    assert_eq!(
        header_height(&browser).await,
        signed_out_header,
        "the header's height changes on signing in"
    );
    for width in [1280, 390] {
        browser
            .set_window_size(width, 900)
            .await
            .expect("window size");
        for path in [
            "/",
            "/profile",
            "/gh/search",
            "/gh/search?q=zzz",
            "/lookup",
            "/lookup?email=ada.lindqvist@example.com",
            "/lookup?email=Lindqvist",
            "/lookup?email=nobody@example.com",
            "/account/sessions",
            "/repos",
            "/repos/web-storefront",
            "/admin/users",
            "/admin/users/1",
            "/admin/users/1/sessions/revoke",
            "/admin/groups",
            "/admin/sync",
            "/admin/audit",
            "/no-such-page",
        ] {
            browser.goto(&app.url(path)).await.expect("page");
            for v in axe_violations(&browser, &axe).await {
                failures.push(format!("{width} px {path}: {v}"));
            }
            let widths = browser
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth];",
                    vec![],
                )
                .await
                .expect("script");
            if widths[0].as_f64().unwrap_or(f64::MAX) > widths[1].as_f64().unwrap_or(0.0) {
                failures.push(format!("{width} px {path}: scrolls sideways {widths}"));
            }
            // The header (and on admin pages the tabs) mark where the user is, and nothing
            // else; a page outside the header's sections marks nothing.
            let marked = browser
                .execute(
                    "return [...document.querySelectorAll('[aria-current=page]')]\
                       .map(a => a.getAttribute('href'));",
                    vec![],
                )
                .await
                .expect("script");
            let section = |prefix: &str| path.starts_with(prefix);
            let expected: Vec<&str> = match path {
                _ if section("/admin/users") => vec!["/admin/users", "/admin/users"],
                _ if section("/admin/") => vec![
                    "/admin/users",
                    &path[..path.find('?').unwrap_or(path.len())],
                ],
                _ if section("/gh/search") => vec!["/gh/search"],
                _ if section("/lookup") => vec!["/lookup"],
                _ if section("/repos") => vec!["/repos"],
                "/profile" | "/account/sessions" => vec![path],
                _ => vec![],
            };
            if marked != json!(expected) {
                failures.push(format!(
                    "{width} px {path}: aria-current on {marked}, not {expected:?}"
                ));
            }
        }
    }
    browser.close().await.expect("closes");
    app.stop().await;
    assert!(
        failures.is_empty(),
        "axe-core found {AXE_FAILS} violations:\n{}",
        failures.join("\n")
    );
}
