//! The real OpenID provider for tests: node `oidc-provider` from `tests/idp`, as a child
//! process on a free port. It exits when its stdin closes, so a crashed test leaves nothing.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use super::repo_root;

pub struct TestIdp {
    pub issuer: String,
    child: Child,
    _stdin: Option<ChildStdin>,
}

#[derive(Deserialize)]
struct Ready {
    issuer: String,
}

pub struct IdpOptions<'a> {
    /// The host in the issuer URL: `localhost` makes it another site than the app on 127.0.0.1.
    pub issuer_host: &'a str,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
}

impl Default for IdpOptions<'_> {
    fn default() -> Self {
        IdpOptions {
            issuer_host: "localhost",
            redirect_uris: vec!["http://127.0.0.1:9/auth/callback".into()],
            post_logout_redirect_uris: Vec::new(),
        }
    }
}

impl TestIdp {
    pub fn start(options: IdpOptions<'_>) -> TestIdp {
        let dir = repo_root().join("tests/idp");
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "tests/idp/node_modules is missing: scripts/test installs it (npm ci --prefix tests/idp)"
        );
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("server.js"))
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--issuer-host", options.issuer_host]);
        for uri in &options.redirect_uris {
            cmd.args(["--redirect-uri", uri]);
        }
        for uri in &options.post_logout_redirect_uris {
            cmd.args(["--post-logout-redirect-uri", uri]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts (it is installed on every machine of this project)");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the test provider reports ready within 30s");
        let ready: Ready = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("unexpected ready line {line:?}: {e}"));
        let stdin = child.stdin.take();
        TestIdp {
            issuer: ready.issuer,
            child,
            _stdin: stdin,
        }
    }

    /// Puts a new signing key first (it signs from now on); the old one stays published.
    pub async fn rotate_keys(&self) -> String {
        #[derive(Deserialize)]
        struct Rotated {
            kid: String,
        }
        let rotated: Rotated = reqwest::Client::new()
            .post(format!("{}/__test/rotate-keys", self.issuer))
            .send()
            .await
            .expect("rotate request")
            .error_for_status()
            .expect("rotate succeeds")
            .json()
            .await
            .expect("rotate answer");
        rotated.kid
    }
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
