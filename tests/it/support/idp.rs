//! The real OpenID provider for tests: node `oidc-provider` from `tests/idp`, as a child
//! process on a free port. It exits when its stdin closes, so a crashed test leaves nothing.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use super::repo_root;

pub struct TestIdp {
    pub issuer: String,
    /// `gatehouse-web`'s first redirect URI (user tokens are fetched through it, never
    /// visiting it).
    redirect_uri: String,
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
    /// Where the provider posts logout tokens when a session there ends.
    pub backchannel_logout_uri: Option<String>,
}

impl Default for IdpOptions<'_> {
    fn default() -> Self {
        IdpOptions {
            issuer_host: "localhost",
            redirect_uris: vec!["http://127.0.0.1:9/auth/callback".into()],
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
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
        if let Some(uri) = &options.backchannel_logout_uri {
            cmd.args(["--backchannel-logout-uri", uri]);
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
            redirect_uri: options
                .redirect_uris
                .first()
                .cloned()
                .unwrap_or_else(|| "http://127.0.0.1:9/auth/callback".into()),
            child,
            _stdin: stdin,
        }
    }

    /// A user's API access token (a JWT for `api://default`, `sub` = `login`) with `scope`,
    /// as a command-line tool would get one: authorization code with PKCE through the
    /// provider's login form, asking for the API as the resource. The redirect URI is never
    /// visited: the code is read from the redirect.
    pub async fn user_token(&self, login: &str, scope: &str) -> String {
        use base64::Engine;
        use sha2::Digest;
        let client = super::http();
        let verifier = "v".repeat(64);
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        let redirect = self.redirect_uri.as_str();
        let mut url = url::Url::parse(&format!("{}/auth", self.issuer)).expect("issuer");
        url.query_pairs_mut()
            .append_pair("client_id", "gatehouse-web")
            .append_pair("response_type", "code")
            .append_pair("scope", &format!("openid {scope}"))
            .append_pair("resource", "api://default")
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "s")
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        let mut next = url.to_string();
        let mut jar = crate::signin::Jar::default();
        let mut posted = false;
        for _ in 0..8 {
            if next.starts_with(redirect) {
                break;
            }
            let r = if next.contains("/interaction/") && !posted {
                posted = true;
                client
                    .post(&next)
                    .header("cookie", jar.header())
                    .form(&[("prompt", "login"), ("login", login), ("password", "x")])
                    .send()
                    .await
            } else {
                client
                    .get(&next)
                    .header("cookie", jar.header())
                    .send()
                    .await
            }
            .expect("provider hop");
            jar.take(&r);
            next = crate::signin::location(&r, &self.issuer);
        }
        let code = url::Url::parse(&next)
            .expect("redirect")
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap_or_else(|| panic!("no code in {next}"))
            .1
            .to_string();
        let answer: serde_json::Value = client
            .post(format!("{}/token", self.issuer))
            .basic_auth("gatehouse-web", Some("gatehouse-web-secret"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
                ("resource", "api://default"),
            ])
            .send()
            .await
            .expect("token request")
            .json()
            .await
            .expect("token answer");
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {answer}"))
            .to_string()
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
