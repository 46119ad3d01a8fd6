//! Test rig: fresh databases, the app on a free port, and child processes that die with the test.

pub mod db;
pub mod fake_gcp;
pub mod fake_github;
pub mod fake_idp;
pub mod fake_okta;
pub mod idp;
pub mod private;
pub mod server;

use std::net::TcpListener;
use std::path::PathBuf;

pub use db::TestDb;
pub use server::TestApp;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback port that was free a moment ago.
/// A configured identity provider that nothing here contacts: for tests that serve on
/// PostgreSQL or behind a proxy (where dev mode refuses to start) and sign no one in.
pub const UNUSED_PROVIDER: &[(&str, &str)] = &[
    ("GATEHOUSE_OIDC_ISSUER", "http://127.0.0.1:9/unused"),
    ("GATEHOUSE_OIDC_CLIENT_ID", "unused"),
    ("GATEHOUSE_OIDC_CLIENT_SECRET", "unused"),
    (
        "GATEHOUSE_SESSION_KEY",
        "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
    ),
];

/// These settings with `UNUSED_PROVIDER`'s added.
pub fn with_provider<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = pairs.to_vec();
    all.extend_from_slice(UNUSED_PROVIDER);
    all
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the OS hands out a free loopback port")
}

pub fn redis_url() -> String {
    std::env::var("GATEHOUSE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// An HTTP client that, like a browser's first request, follows no redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client")
}
