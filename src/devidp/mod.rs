//! The built-in identity provider for dev mode: a real, minimal OpenID provider at
//! `/dev-idp` on the same server, so a fresh checkout can sign in with no setup. Sign-in uses
//! exactly the production relying-party code against it. Only ever mounted in dev mode, which
//! only listens on loopback.

mod routes;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use secrecy::SecretString;
use serde_json::{Value, json};

use crate::auth::signing::SigningKey;

pub use routes::router;

/// The machine client for trying the API in dev mode (loopback only, so a fixed secret).
pub const DEV_MACHINE_CLIENT_ID: &str = "gatehouse-dev-machine";
pub const DEV_MACHINE_CLIENT_SECRET: &str = "dev-machine-secret";
pub const DEV_SCOPES: &str = "directory.read directory.write repos.read";

pub struct DemoUser {
    pub sub: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub groups: &'static [&'static str],
}

pub const DEMO_USERS: &[DemoUser] = &[
    DemoUser {
        sub: "alice",
        name: "Alice Example",
        email: "alice@example.com",
        groups: &["gatehouse-admins", "engineering"],
    },
    DemoUser {
        sub: "bob",
        name: "Bob Example",
        email: "bob@example.com",
        groups: &["engineering"],
    },
];

impl DemoUser {
    fn claims(&self) -> Value {
        json!({
            "sub": self.sub,
            "name": self.name,
            "preferred_username": self.sub,
            "email": self.email,
            "email_verified": true,
            "groups": self.groups,
        })
    }
}

fn find_user(sub: &str) -> Option<&'static DemoUser> {
    DEMO_USERS.iter().find(|u| u.sub == sub)
}

/// An authorization code waiting for its token request.
struct Grant {
    sub: &'static str,
    nonce: Option<String>,
    challenge: String,
    redirect_uri: String,
    scope: String,
    issued: Instant,
    /// When the user picked themselves (`auth_time`): every authorization here is a fresh
    /// authentication, since this provider keeps no session of its own.
    auth_time: i64,
}

pub struct DevIdp {
    pub issuer: String,
    pub client_id: String,
    client_secret: SecretString,
    /// Where the relying party's callback is: the only redirect URI this provider accepts.
    redirect_uri: String,
    /// Where sign-out may send the browser back to.
    post_logout_redirect_uri: String,
    api_audience: String,
    keys: tokio::sync::OnceCell<Keys>,
    codes: Mutex<HashMap<String, Grant>>,
}

impl DevIdp {
    pub fn new(
        issuer: String,
        client_id: String,
        client_secret: SecretString,
        redirect_uri: String,
        post_logout_redirect_uri: String,
        api_audience: String,
    ) -> DevIdp {
        DevIdp {
            issuer,
            client_id,
            client_secret,
            redirect_uri,
            post_logout_redirect_uri,
            api_audience,
            keys: tokio::sync::OnceCell::new(),
            codes: Mutex::new(HashMap::new()),
        }
    }

    /// The signing key, made on first use. RSA-2048 generation takes tens of milliseconds,
    /// which dev-mode start-up should not wait for: `serve` warms it in the background
    /// (see `warm_up`), and whichever comes first generates it, once.
    pub async fn keys(&self) -> anyhow::Result<&Keys> {
        self.keys
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(Keys::generate)
                    .await
                    .map_err(|e| anyhow::anyhow!("key generation stopped: {e}"))?
            })
            .await
    }

    /// Generates the key now, off the caller's path.
    pub fn warm_up(self: &std::sync::Arc<Self>) {
        let idp = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = idp.keys().await {
                tracing::error!(error = %e, "dev identity provider: no signing key");
            }
        });
    }
}

pub struct Keys {
    pub key: SigningKey,
    pub verify_key: jsonwebtoken::DecodingKey,
}

impl Keys {
    fn generate() -> anyhow::Result<Keys> {
        let key = SigningKey::generate()?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.public_jwk.clone())?;
        let verify_key = jsonwebtoken::DecodingKey::from_jwk(&jwk)?;
        Ok(Keys { key, verify_key })
    }
}
