//! Test rig: fresh databases, the app on a free port, and child processes that die with the test.

pub mod db;
pub mod fake_github;
pub mod fake_idp;
pub mod idp;
pub mod server;

use std::net::TcpListener;
use std::path::PathBuf;

pub use db::TestDb;
pub use server::TestApp;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A loopback port that was free a moment ago.
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
