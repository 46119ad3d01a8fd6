//! PostgreSQL over TLS with client certificates, against a real server that demands them: a
//! private cluster with a throwaway CA, `hostssl … cert clientcert=verify-full` and nothing
//! else, reached with `GATEHOUSE_DATABASE_CA/_CERT/_KEY` given as `file:` references and as
//! `gcp:` references to a local Secret Manager.

use reqwest::StatusCode;

use crate::cli::{provider, run};
use crate::signin::get_with;
use crate::signin_refusals::{app_with, signed_in};
use crate::support::TestDb;
use crate::support::fake_gcp::FakeGcp;
use crate::support::fake_idp::FakeIdp;
use crate::support::private::{PrivatePostgres, TestCa};

/// `gatehouse check`'s line about the database.
fn database_line(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (out, stdout, stderr) = run(env, &["check"]);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("database: "))
        .unwrap_or_else(|| panic!("no database line in {stdout}{stderr}"))
        .to_string();
    (out.status.code(), line)
}

// Multi-threaded: the fake provider answers `check` while the test waits on the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_client_certificates_works_and_each_mistake_is_explained() {
    let (ca, pg) = tokio::task::block_in_place(|| {
        let ca = TestCa::new();
        let pg = PrivatePostgres::start_tls(&ca);
        (ca, pg)
    });
    let idp = FakeIdp::start(vec!["openid"]).await;
    let (ca_ref, cert_ref, key_ref) = (
        ca.file_ref("ca.crt"),
        ca.file_ref("client.crt"),
        ca.file_ref("client.key"),
    );
    let url = pg.url_at("localhost");
    let tls = [
        ("GATEHOUSE_DATABASE_CA", ca_ref.as_str()),
        ("GATEHOUSE_DATABASE_CERT", cert_ref.as_str()),
        ("GATEHOUSE_DATABASE_KEY", key_ref.as_str()),
    ];

    // Everything right: `check` passes, and Gatehouse serves a signed-in page from it.
    let mut env = provider(&idp, &[("GATEHOUSE_DATABASE_URL", url.as_str())]);
    env.extend_from_slice(&tls);
    let (code, line) = tokio::task::block_in_place(|| database_line(&env));
    // Reached (a fresh database: its migrations are still to run, which is a warning).
    assert!(
        line.starts_with("database: ok") || line.contains("migration(s) pending"),
        "{line}"
    );
    assert_eq!(code, Some(0), "{line}");
    let db = TestDb::At { url: url.clone() };
    let app = app_with(&idp, &db, &tls).await;
    let (jar, _) = signed_in(&app, &idp).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    app.stop().await;

    // The same material from Secret Manager, as a GCP deployment keeps it: `check` fetches
    // it, and reaches the server with it.
    let gcp = FakeGcp::start().await;
    let pem = |name: &str| std::fs::read_to_string(ca.path(name)).expect("pem");
    let from_gcp = [
        gcp.add_version("acme", "db-ca", &pem("ca.crt")),
        gcp.add_version("acme", "db-cert", &pem("client.crt")),
        gcp.add_version("acme", "db-key", &pem("client.key")),
    ];
    let mut env = provider(&idp, &[("GATEHOUSE_DATABASE_URL", url.as_str())]);
    env.extend_from_slice(&[
        ("GATEHOUSE_DATABASE_CA", from_gcp[0].as_str()),
        ("GATEHOUSE_DATABASE_CERT", from_gcp[1].as_str()),
        ("GATEHOUSE_DATABASE_KEY", from_gcp[2].as_str()),
    ]);
    env.extend_from_slice(&gcp.env());
    let (code, line) = tokio::task::block_in_place(|| database_line(&env));
    assert!(
        line.starts_with("database: ok") || line.contains("migration(s) pending"),
        "{line}"
    );
    assert_eq!(code, Some(0), "{line}");
    assert_eq!(gcp.accesses().len(), 3);

    // A CA that did not sign the server's certificate: named.
    let other = tokio::task::block_in_place(TestCa::new);
    let wrong_ca = other.file_ref("ca.crt");
    let mut env = provider(&idp, &[("GATEHOUSE_DATABASE_URL", url.as_str())]);
    env.extend_from_slice(&[
        ("GATEHOUSE_DATABASE_CA", wrong_ca.as_str()),
        ("GATEHOUSE_DATABASE_CERT", cert_ref.as_str()),
        ("GATEHOUSE_DATABASE_KEY", key_ref.as_str()),
    ]);
    let (code, line) = tokio::task::block_in_place(|| database_line(&env));
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains("FAIL") && line.contains("GATEHOUSE_DATABASE_CA"),
        "{line}"
    );

    // No client certificate: the server's refusal, and what to set.
    let mut env = provider(&idp, &[("GATEHOUSE_DATABASE_URL", url.as_str())]);
    env.push(("GATEHOUSE_DATABASE_CA", ca_ref.as_str()));
    let (code, line) = tokio::task::block_in_place(|| database_line(&env));
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains("FAIL") && line.contains("GATEHOUSE_DATABASE_CERT"),
        "{line}"
    );

    // The right certificates, but an address the server's certificate does not name.
    let by_ip = pg.url_at("127.0.0.1");
    let mut env = provider(&idp, &[("GATEHOUSE_DATABASE_URL", by_ip.as_str())]);
    env.extend_from_slice(&tls);
    let (code, line) = tokio::task::block_in_place(|| database_line(&env));
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.contains("FAIL") && line.contains("127.0.0.1"),
        "{line}"
    );
    assert!(line.to_lowercase().contains("name"), "{line}");
}
