//! The `gatehouse` binary as operators run it: exit codes and what it prints.

use crate::support::fake_idp::FakeIdp;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::signin::get_with;
use crate::support::{TestDb, free_port, http, redis_url};

pub fn gatehouse(cwd: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    // Only what the test gives: a developer's own GATEHOUSE_* must not leak in.
    cmd.env_clear()
        .current_dir(cwd)
        .args(args)
        .envs(env.iter().copied());
    cmd
}

pub fn run(env: &[(&str, &str)], args: &[&str]) -> (Output, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gatehouse(dir.path(), env, args).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

#[test]
fn check_names_redis_when_nothing_listens_there() {
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let (out, stdout, _) = run(&[("GATEHOUSE_REDIS_URL", &dead)], &["check"]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("redis: "))
        .unwrap_or_else(|| panic!("no redis line in {stdout}"));
    assert!(line.starts_with("redis: FAIL: "), "{line}");
    assert!(line.to_lowercase().contains("refused"), "{line}");
    assert!(
        stdout.lines().any(|l| l.starts_with("config: ok")),
        "{stdout}"
    );
}

// Multi-threaded: the fake provider answers `check` while the test blocks on the process.
#[tokio::test(flavor = "multi_thread")]
async fn check_passes_against_real_postgres_and_redis_and_sees_pending_migrations() {
    let db = TestDb::postgres().await;
    let redis = redis_url();
    let idp = FakeIdp::start(vec!["openid"]).await;
    let env = provider(
        &idp,
        &[
            ("GATEHOUSE_DATABASE_URL", db.url()),
            ("GATEHOUSE_REDIS_URL", redis.as_str()),
        ],
    );
    let (out, stdout, _) = run(&env, &["check"]);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("database: WARN: ") && stdout.contains("pending"),
        "{stdout}"
    );
    assert!(stdout.contains("redis: ok"), "{stdout}");

    let files: Vec<String> =
        std::fs::read_dir(crate::support::repo_root().join("migrations/postgres"))
            .expect("migrations")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
    let migrations = files.len();
    // Versions may leave gaps (branches number theirs apart), so the newest is the schema's.
    let version = files
        .iter()
        .filter_map(|f| f.split('_').next()?.parse::<u64>().ok())
        .max()
        .expect("a version");
    let (out, stdout, stderr) = run(&env, &["migrate"]);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("migrations: {migrations} applied now")),
        "{stdout}"
    );
    let (out, stdout, _) = run(&env, &["migrate"]);
    assert!(out.status.success());
    assert!(stdout.contains("migrations: 0 applied now"), "{stdout}");

    let (out, stdout, _) = run(&env, &["check"]);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("database: ok (") && stdout.contains(&format!("schema version {version}")),
        "{stdout}"
    );
    // Every line is one check with a verdict.
    for line in stdout.lines() {
        assert!(
            line.contains(": ok") || line.contains(": WARN: ") || line.contains(": FAIL: "),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_warns_about_postgres_without_redis() {
    let db = TestDb::postgres().await;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let env = provider(&idp, &[("GATEHOUSE_DATABASE_URL", db.url())]);
    let (out, stdout, _) = run(&env, &["check"]);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("redis: WARN: not configured"), "{stdout}");
}

#[test]
fn check_and_serve_refuse_dev_mode_on_postgres() {
    let url = "postgres://gatehouse@127.0.0.1:5432/gatehouse";
    let (out, stdout, _) = run(&[("GATEHOUSE_DATABASE_URL", url)], &["check"]);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("config: FAIL: would not serve: GATEHOUSE_DATABASE_URL"),
        "{stdout}"
    );
    let (out, _, stderr) = run(&[("GATEHOUSE_DATABASE_URL", url)], &["serve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("GATEHOUSE_DATABASE_URL") && stderr.contains("dev mode"),
        "{stderr}"
    );
    // An empty identity variable is a broken deployment, not a wish for dev mode.
    let (out, _, stderr) = run(&[("GATEHOUSE_OIDC_ISSUER", "")], &["serve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("GATEHOUSE_OIDC_ISSUER is set but empty"),
        "{stderr}"
    );
}

/// These settings with a configured provider: the fake one, so `check` can reach it.
pub fn provider<'a>(idp: &'a FakeIdp, pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = pairs.to_vec();
    all.extend_from_slice(&[
        ("GATEHOUSE_OIDC_ISSUER", idp.issuer.as_str()),
        ("GATEHOUSE_OIDC_CLIENT_ID", "fake-client"),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "fake-secret"),
        (
            "GATEHOUSE_SESSION_KEY",
            "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk",
        ),
    ]);
    all
}

#[test]
fn check_reports_a_bad_configuration_and_exits_1() {
    let (out, stdout, _) = run(&[("GATEHOUSE_RATE_LIMITS", "auth.login=lots")], &["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.starts_with("config: FAIL: GATEHOUSE_RATE_LIMITS"),
        "{stdout}"
    );
}

#[test]
fn serve_with_unreachable_database_exits_1_naming_the_redacted_url_and_cause() {
    let port = free_port();
    let url = format!("postgres://gatehouse:topsecret@127.0.0.1:{port}/gatehouse");
    let env = crate::support::with_provider(&[("GATEHOUSE_DATABASE_URL", &url)]);
    let (out, stdout, stderr) = run(&env, &["serve"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(&format!(
            "postgres://gatehouse:***@127.0.0.1:{port}/gatehouse"
        )),
        "{stderr}"
    );
    // The cause itself, not a pool's "no connection within 5s".
    assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
    assert!(!stderr.contains("no connection within"), "{stderr}");
    assert!(!stderr.contains("topsecret") && !stdout.contains("topsecret"));
}

#[test]
fn bad_configuration_stops_start_up_naming_the_variable() {
    let (out, _, stderr) = run(&[("GATEHOUSE_SESSION_IDLE", "a while")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("GATEHOUSE_SESSION_IDLE (from the environment)"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (out, _, stderr) = run(&[("GATEHOUSE_BIND", "0.0.0.0:8080")], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("GATEHOUSE_BIND") && stderr.contains("loopback"),
        "{stderr}"
    );
}

#[test]
fn malformed_toml_reports_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gatehouse.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:9\"\nsession_ttl = 1h\n").expect("write");
    let path = file.to_string_lossy().into_owned();
    let out = gatehouse(dir.path(), &[], &["--config", &path, "check"])
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains(&path) && stdout.contains("line 2, column"),
        "{stdout}"
    );
    // The same file through GATEHOUSE_CONFIG.
    let out = gatehouse(dir.path(), &[("GATEHOUSE_CONFIG", &path)], &[])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 2, column"));
}

#[test]
fn flags_override_the_environment() {
    let port = free_port();
    let (out, stdout, _) = run(
        &[("GATEHOUSE_REDIS_URL", "redis://127.0.0.1:6379")],
        &["--redis-url", &format!("redis://127.0.0.1:{port}"), "check"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains(&format!("127.0.0.1:{port}")), "{stdout}");
    let (out, stdout, _) = run(&[], &["--set", "session_ttl=never", "check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("GATEHOUSE_SESSION_TTL (from the command line)"),
        "{stdout}"
    );
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["check", "--help"],
    ] {
        let (out, stdout, _) = run(&[], args);
        assert!(out.status.success(), "{args:?}");
        assert!(stdout.contains("Usage: gatehouse"), "{args:?}: {stdout}");
    }
}

/// Zero configuration but the port (and the public URL that names it): SQLite file in the working directory, sample data,
/// `/` and `/health/ready` answer 200, and SIGTERM stops it cleanly.
#[tokio::test]
async fn zero_config_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut child = gatehouse(
        dir.path(),
        &[
            ("GATEHOUSE_BIND", &bind),
            ("GATEHOUSE_PUBLIC_URL", &format!("http://{bind}")),
            ("GATEHOUSE_LOG_FORMAT", "json"),
        ],
        &[],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("\"listening\"")) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(remaining) {
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("never listened; log so far: {log:#?}");
            }
        }
    }
    assert!(log.iter().any(|l| l.contains("DEV MODE")), "{log:#?}");
    assert!(log.iter().any(|l| l.contains("sample data")), "{log:#?}");
    for l in &log {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    assert!(dir.path().join("gatehouse.db").exists());

    for path in ["/", "/health/ready"] {
        let r = http()
            .get(format!("http://{bind}{path}"))
            .send()
            .await
            .expect(path);
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{path}");
    }
    // A signed-in user's requests leave one audit line each; health probes leave none.
    let base = format!("http://{bind}");
    let jar = crate::devidp::dev_sign_in(&base, "alice").await;
    for path in ["/profile", "/health", "/health/ready"] {
        let r = get_with(&jar, &format!("{base}{path}")).await;
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{path}");
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("exits");
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
    // The process has exited: read its output to the end (the reader stops at EOF).
    let rest: Vec<String> = rx.iter().collect();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(
        stderr.contains(&format!(
            "Open http://{bind} and pick alice (an administrator) or bob."
        )),
        "{stderr}"
    );
    assert!(rest.iter().any(|l| l.contains("\"stopped\"")), "{rest:#?}");
    let lines: Vec<serde_json::Value> = rest
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .collect();
    // One JSON line per request with its request id; health probes only at DEBUG.
    let responses: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["message"] == "response")
        .collect();
    assert!(
        responses.iter().all(|v| !v["span"]["path"]
            .as_str()
            .unwrap_or("")
            .starts_with("/health")),
        "{responses:#?}"
    );
    let audit: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["target"] == "gatehouse::audit")
        .collect();
    assert_eq!(
        audit.len(),
        1,
        "only /profile was asked for signed in: {audit:#?}"
    );
    assert_eq!(audit[0]["user"], "alice@example.com");
    assert_eq!(audit[0]["client_ip"], "127.0.0.1");
    assert_eq!(audit[0]["route"], "/profile");
    assert_eq!(audit[0]["status"], 200);
    assert_eq!(audit[0]["level"], "INFO");
    assert_eq!(responses[0]["span"]["path"], "/");
    assert_eq!(responses[0]["status"], 200);
    assert_eq!(
        responses[0]["span"]["request_id"].as_str().map(str::len),
        Some(36)
    );
}

/// One request over a fresh connection, `Connection: close`: the whole answer as text.
fn raw_request(addr: &str, head: &str) -> String {
    use std::io::{Read, Write};
    // Nothing listening (not yet, or no more) is an empty answer.
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("sends");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// On SIGTERM: readiness fails at once while pages are still served for the drain period, a
/// request in flight (its body half sent) is answered, and the process exits 0.
#[test]
fn sigterm_drains_then_finishes_requests_in_flight_and_exits_0() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let bind = format!("127.0.0.1:{}", free_port());
    let mut child = gatehouse(
        dir.path(),
        &[
            ("GATEHOUSE_BIND", &bind),
            ("GATEHOUSE_PUBLIC_URL", &format!("http://{bind}")),
            ("GATEHOUSE_SHUTDOWN_DRAIN", "3s"),
        ],
        &[],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("starts");
    let get = |path: &str| {
        raw_request(
            &bind,
            &format!("GET {path} HTTP/1.1\r\nHost: {bind}\r\nConnection: close\r\n\r\n"),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get("/health").starts_with("HTTP/1.1 200") {
        assert!(Instant::now() < deadline, "never answered /health");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(get("/health/ready").starts_with("HTTP/1.1 200"));

    // A form post whose body has not all arrived: the request is in flight. (A route that
    // reads its whole body before it answers: one that could answer from the head alone may
    // close the connection before the rest is sent.)
    let mut in_flight = std::net::TcpStream::connect(&bind).expect("connects");
    in_flight
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let body = "logout_token=abcdefghijklmnopqrstuvwxyz";
    write!(
        in_flight,
        "POST /auth/backchannel-logout HTTP/1.1\r\nHost: {bind}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .expect("sends the head and part of the body");
    std::thread::sleep(Duration::from_millis(200));

    let stopped_at = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));
    let ready = get("/health/ready");
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("\"draining\""), "{ready}");
    assert!(
        get("/health").starts_with("HTTP/1.1 200"),
        "still served while draining"
    );

    in_flight
        .write_all(&body.as_bytes()[10..])
        .expect("sends the rest");
    let mut answer = String::new();
    let _ = in_flight.read_to_string(&mut answer);
    // Answered after its whole body was read and judged (a logout token that is not one).
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "the request in flight was answered: {answer:?}"
    );
    assert!(answer.contains("invalid_request"), "{answer}");

    let status = child.wait().expect("exits");
    assert!(status.success(), "exits 0, got {status:?}");
    let took = stopped_at.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "the listener stayed open for the drain: {took:?}"
    );
    assert!(
        std::net::TcpStream::connect(&bind).is_err(),
        "nothing listens after the stop"
    );
}
