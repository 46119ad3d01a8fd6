//! `gcp:` secret references against a local Secret Manager and metadata server that speak
//! Google's REST shapes: every secret variable filled from it (the whole OIDC payload
//! included), and each way a fetch fails named with its variable and reference, never the
//! value, before anything serves.

use reqwest::StatusCode;

use crate::cli::{gatehouse, run};
use crate::signin::get_with;
use crate::signin_refusals::signed_in;
use crate::support::fake_gcp::FakeGcp;
use crate::support::fake_idp::{CLIENT_ID, CLIENT_SECRET, FakeIdp};
use crate::support::{TestApp, TestDb, free_port};

const SESSION_KEY: &str = "session-key-from-secret-manager-0123456789";

#[tokio::test]
async fn secret_manager_supplies_the_oidc_payload_and_session_key_and_a_user_signs_in() {
    let gcp = FakeGcp::start().await;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    // The single OIDC payload of a GCP deployment, flat keys.
    let payload = serde_json::json!({
        "issuer": idp.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
    })
    .to_string();
    let oidc_ref = gcp.add_version("acme-prod", "gatehouse-oidc", &payload);
    gcp.add_version(
        "acme-prod",
        "gatehouse-session-key",
        "an-older-key-0123456789abcdef0123",
    );
    gcp.add_version(
        "acme-prod",
        "gatehouse-session-key",
        &format!("{SESSION_KEY}\n"),
    );
    let key_ref = gcp.latest("acme-prod", "gatehouse-session-key");

    let mut pairs = vec![
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_OIDC_CONFIG", oidc_ref.as_str()),
        ("GATEHOUSE_SESSION_KEY", key_ref.as_str()),
        ("GATEHOUSE_JWKS_COOLDOWN", "0s"),
    ];
    pairs.extend_from_slice(&gcp.env());
    let app = TestApp::start(&pairs).await;
    let (jar, _) = signed_in(&app, &idp).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::OK
    );

    // `latest` resolved to the newest version, its newline dropped; both fetched at start.
    let config = &app.state.config;
    assert_eq!(
        config.fetched_secrets,
        vec![
            (
                "GATEHOUSE_OIDC_CONFIG",
                "projects/123456789012/secrets/gatehouse-oidc/versions/1".to_string()
            ),
            (
                "GATEHOUSE_SESSION_KEY",
                "projects/123456789012/secrets/gatehouse-session-key/versions/2".to_string()
            ),
        ]
    );
    use secrecy::ExposeSecret;
    assert_eq!(config.session.keys[0].expose_secret(), SESSION_KEY);
    let mut accesses = gcp.accesses();
    accesses.sort();
    assert_eq!(
        accesses,
        [
            "acme-prod/gatehouse-oidc/1",
            "acme-prod/gatehouse-session-key/latest"
        ]
    );
    app.stop().await;
}

/// `gatehouse check` with these settings: (exit code, stdout + stderr).
async fn check(env: &[(&'static str, String)]) -> (Option<i32>, String) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    tokio::task::block_in_place(|| {
        let (out, stdout, stderr) = run(&env, &["check"]);
        (out.status.code(), format!("{stdout}{stderr}"))
    })
}

// Multi-threaded: the fakes answer while the test waits on `gatehouse check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_fetched_secrets_and_names_every_failure_without_its_value() {
    let gcp = FakeGcp::start().await;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let issuer = idp.issuer.clone();
    let good = gcp.add_version("p", "client-secret", "fake-secret");
    let key = gcp.add_version("p", "session-key", SESSION_KEY);
    let base = |extra: &[(&'static str, String)]| {
        let mut env: Vec<(&str, String)> = vec![
            ("GATEHOUSE_OIDC_ISSUER", issuer.clone()),
            ("GATEHOUSE_OIDC_CLIENT_ID", "fake-client".into()),
            ("GATEHOUSE_OIDC_CLIENT_SECRET", good.clone()),
            ("GATEHOUSE_SESSION_KEY", key.clone()),
        ];
        for (k, v) in gcp.env() {
            env.push((k, v.to_string()));
        }
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k, v.clone()));
        }
        env
    };

    // All good: a line per fetched secret, naming the version.
    let env = base(&[]);
    let (code, out) = check(&env).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "secret: ok (GATEHOUSE_OIDC_CLIENT_SECRET from Secret Manager, \
             projects/123456789012/secrets/client-secret/versions/1)"
        ),
        "{out}"
    );
    assert!(
        out.contains("secret: ok (GATEHOUSE_SESSION_KEY from Secret Manager"),
        "{out}"
    );
    assert!(
        !out.contains("fake-secret") && !out.contains(SESSION_KEY),
        "{out}"
    );

    // The provider's discovery is read for back-channel logout too.
    assert!(out.contains("; back-channel logout supported)"), "{out}");

    // Four broken references at once: each is named, with its reason, in one report.
    gcp.add_version("p", "disabled", "disabled-value-1234567890-abcdefghij");
    gcp.disable_version("p", "disabled", 1);
    gcp.add_version("p", "denied", "denied-value");
    gcp.deny("p", "denied");
    gcp.add_version("p", "corrupt", "corrupt-value");
    gcp.corrupt("p", "corrupt");
    let env = base(&[
        (
            "GATEHOUSE_SESSION_KEY",
            "gcp:projects/p/secrets/disabled/versions/1".into(),
        ),
        ("GATEHOUSE_GITHUB_ORG", "acme".into()),
        (
            "GATEHOUSE_GITHUB_TOKEN",
            "gcp:projects/p/secrets/denied/versions/latest".into(),
        ),
        (
            "GATEHOUSE_OIDC_CLIENT_SECRET",
            "gcp:projects/p/secrets/corrupt/versions/latest".into(),
        ),
        (
            "GATEHOUSE_REDIS_URL",
            "gcp:projects/p/secrets/missing/versions/3".into(),
        ),
    ]);
    let (code, out) = check(&env).await;
    assert_eq!(code, Some(1), "{out}");
    for expected in [
        "GATEHOUSE_SESSION_KEY (from the environment): \
         gcp:projects/p/secrets/disabled/versions/1: the version cannot be read (disabled or \
         destroyed?)",
        "DISABLED state",
        "GATEHOUSE_GITHUB_TOKEN (from the environment): \
         gcp:projects/p/secrets/denied/versions/latest: permission denied",
        "roles/secretmanager.secretAccessor",
        "GATEHOUSE_OIDC_CLIENT_SECRET (from the environment): \
         gcp:projects/p/secrets/corrupt/versions/latest: the payload's CRC32C checksum does not \
         match",
        "GATEHOUSE_REDIS_URL (from the environment): \
         gcp:projects/p/secrets/missing/versions/3: not found",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    for value in ["disabled-value", "denied-value", "corrupt-value"] {
        assert!(!out.contains(value), "{value} shown in:\n{out}");
    }

    // A reference of the wrong shape is refused before any request.
    let before = gcp.accesses().len();
    let env = base(&[(
        "GATEHOUSE_SESSION_KEY",
        "gcp:projects/p/secrets/session-key".into(),
    )]);
    let (code, out) = check(&env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("GATEHOUSE_SESSION_KEY (from the environment): 'gcp:projects/p/secrets/session-key' is not a Secret Manager version"),
        "{out}"
    );
    assert_eq!(
        gcp.accesses().len(),
        before,
        "no request for a malformed reference"
    );

    // Secret Manager unreachable: named with its address.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let env = base(&[("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT", closed.clone())]);
    let (code, out) = check(&env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("Secret Manager is unreachable at {closed}")),
        "{out}"
    );

    // A malformed endpoint names its variable.
    let env = base(&[("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT", "ftp://x".into())]);
    let (code, out) = check(&env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT (from the environment): 'ftp://x' is not an http(s) URL"),
        "{out}"
    );

    // No credentials: the metadata server has no service account to give a token for.
    gcp.remove_service_account();
    let env = base(&[]);
    let (code, out) = check(&env).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no usable Google credentials"), "{out}");
    assert!(out.contains("GATEHOUSE_SESSION_KEY"), "{out}");
}

/// A Secret Manager outage at start stops start-up with a message, before anything listens:
/// no half-configured service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_at_start_when_secret_manager_is_down() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let closed = format!("http://127.0.0.1:{}", free_port());
    let metadata = format!("127.0.0.1:{}", free_port());
    let env = [
        ("GATEHOUSE_BIND", bind.as_str()),
        ("GATEHOUSE_OIDC_ISSUER", idp.issuer.as_str()),
        ("GATEHOUSE_OIDC_CLIENT_ID", "fake-client"),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "fake-secret"),
        (
            "GATEHOUSE_SESSION_KEY",
            "gcp:projects/p/secrets/session-key/versions/latest",
        ),
        ("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT", closed.as_str()),
        ("GCE_METADATA_HOST", metadata.as_str()),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tokio::task::block_in_place(|| {
        gatehouse(dir.path(), &env, &["serve"])
            .output()
            .expect("runs")
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("configuration error: GATEHOUSE_SESSION_KEY (from the environment): gcp:projects/p/secrets/session-key/versions/latest:"),
        "{stderr}"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
    assert!(
        !dir.path().join("gatehouse.db").exists(),
        "no database was created before the secrets were there"
    );
}

/// Credentials from a service account key file (`GOOGLE_APPLICATION_CREDENTIALS`), with no
/// metadata server: Google's client signs its own token with the file's key, which this
/// Secret Manager verifies. A key it does not know is refused; a file that is not there, or
/// not a key, is named as the credentials' fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_key_file_is_used_when_google_application_credentials_names_one() {
    let gcp = FakeGcp::start().await;
    let key = gcp.add_version("p", "session-key", SESSION_KEY);
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path.to_string_lossy().into_owned()
    };
    let trusted = gcp.add_service_account("gatehouse@acme.iam.gserviceaccount.com");
    let trusted = write("trusted.json", &trusted.to_string());
    let (pem, _) = crate::support::fake_gcp::rsa_key();
    let stranger = crate::support::fake_gcp::service_account_file(
        "stranger@elsewhere.iam.gserviceaccount.com",
        &pem,
    );
    let stranger = write("stranger.json", &stranger.to_string());
    let garbled = write("garbled.json", "{\"type\": \"service_account\"}");
    let missing = dir
        .path()
        .join("missing.json")
        .to_string_lossy()
        .into_owned();
    let env = |file: &str| {
        vec![
            ("GATEHOUSE_SESSION_KEY", key.clone()),
            ("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT", gcp.endpoint.clone()),
            ("GOOGLE_APPLICATION_CREDENTIALS", file.to_string()),
        ]
    };

    let (code, out) = check(&env(&trusted)).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("secret: ok (GATEHOUSE_SESSION_KEY from Secret Manager"),
        "{out}"
    );
    assert_eq!(gcp.accesses(), ["p/session-key/1"]);

    let (code, out) = check(&env(&stranger)).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("the credentials were refused by Secret Manager"),
        "{out}"
    );
    for file in [&garbled, &missing] {
        let (code, out) = check(&env(file)).await;
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains("no usable Google credentials"), "{out}");
        assert!(out.contains("GATEHOUSE_SESSION_KEY"), "{out}");
        assert!(!out.contains(SESSION_KEY), "{out}");
    }
    // Only the trusted account's request was served.
    assert_eq!(gcp.accesses(), ["p/session-key/1"]);
}

/// A Secret Manager that takes the request and never answers stops start-up once the
/// request's time is up (half the 20 s start-up deadline, so that a retry fits in a blip),
/// naming the variable and the reference; nothing listens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_manager_that_never_answers_stops_start_up_at_the_deadline() {
    let gcp = FakeGcp::start().await;
    let key = gcp.add_version("p", "session-key", SESSION_KEY);
    gcp.stall();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = vec![
        ("GATEHOUSE_BIND", bind.as_str()),
        ("GATEHOUSE_SESSION_KEY", key.as_str()),
    ];
    env.extend_from_slice(&gcp.env());
    let dir = tempfile::tempdir().expect("tempdir");
    let started = std::time::Instant::now();
    let out = tokio::task::block_in_place(|| {
        gatehouse(dir.path(), &env, &["serve"])
            .output()
            .expect("runs")
    });
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "configuration error: GATEHOUSE_SESSION_KEY (from the environment): {key}: \
             Secret Manager at {} took the request and did not answer in time",
            gcp.endpoint
        )),
        "{stderr}"
    );
    // Bounds wide enough for a loaded machine: it waited, and not forever.
    assert!(took >= std::time::Duration::from_secs(9), "{took:?}");
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    assert_eq!(gcp.accesses(), Vec::<String>::new(), "nothing was answered");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens"
    );
}

/// A metadata server that never hands out a token: the fetch has no time limit of its own
/// there, and the start-up deadline (20 s for all references together) stops it, naming the
/// variable and the reference.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_stops_at_the_deadline_when_the_credentials_never_come() {
    let gcp = FakeGcp::start().await;
    let key = gcp.add_version("p", "session-key", SESSION_KEY);
    gcp.stall_metadata();
    let mut env = vec![("GATEHOUSE_SESSION_KEY", key.clone())];
    for (k, v) in gcp.env() {
        env.push((k, v.to_string()));
    }
    let started = std::time::Instant::now();
    let (code, out) = check(&env).await;
    let took = started.elapsed();
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "GATEHOUSE_SESSION_KEY (from the environment): {key}: no answer from Secret Manager \
             or its credentials within 20s"
        )),
        "{out}"
    );
    assert!(took >= std::time::Duration::from_secs(19), "{took:?}");
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    assert!(
        gcp.accesses().is_empty(),
        "no secret was read without a token"
    );
}
