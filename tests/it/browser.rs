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
    let people = browser
        .find(Locator::Css("[data-testid=people-count]"))
        .await
        .expect("people count")
        .text()
        .await
        .expect("text");
    assert!(people.parse::<u32>().expect("a number") >= 24, "{people}");

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
