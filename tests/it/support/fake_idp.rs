//! A scriptable, misbehaving OpenID provider for negative tests: it answers the token request
//! with whatever ID token the test asks for (tokens are still real RS256 signatures, or the
//! exact forgeries an attacker would send), and userinfo with any `sub`.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::auth::signing::SigningKey;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "fake-client";
pub const CLIENT_SECRET: &str = "fake-secret";

#[derive(Clone, Debug)]
pub enum Tamper {
    None,
    /// Overrides of the ID token's claims; `null` removes a claim.
    Claims(Value),
    AlgNone,
    Hs256WithPublicKey,
    /// Signed by a key the provider never published, under the published key's `kid`.
    ForeignKeySameKid,
    /// Signed by an unpublished key with a `kid` of its own.
    UnknownKid,
    UserinfoSub(String),
    /// Overrides of the ID token's claims and of userinfo's, each on its own.
    Split {
        id_token: Value,
        userinfo: Value,
    },
}

struct Inner {
    issuer: String,
    key: SigningKey,
    rogue: SigningKey,
    tamper: Mutex<Tamper>,
    nonce: Mutex<String>,
    scopes_supported: Vec<&'static str>,
    jwks_requests: std::sync::atomic::AtomicUsize,
    /// Whether discovery promises `iss` in authorization responses (RFC 9207).
    promises_iss: std::sync::atomic::AtomicBool,
    /// The JWKS publishes no key (the provider withdrew it).
    withdrawn: std::sync::atomic::AtomicBool,
    /// Discovery answers 503.
    down: std::sync::atomic::AtomicBool,
    discovery_requests: std::sync::atomic::AtomicUsize,
    /// `Cache-Control` of the JWKS answer.
    jwks_cache_control: Mutex<Option<String>>,
}

pub struct FakeIdp {
    inner: Arc<Inner>,
    pub issuer: String,
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

impl Inner {
    fn claims(&self) -> Value {
        let now = chrono::Utc::now().timestamp();
        let nonce = self.nonce.lock().map(|n| n.clone()).unwrap_or_default();
        json!({
            "iss": self.issuer, "sub": "mallory", "aud": CLIENT_ID, "iat": now, "exp": now + 300,
            "auth_time": now, "nonce": nonce, "email": "mallory@example.com", "email_verified": true,
            "groups": ["staff"],
        })
    }

    /// The claims with the test's overrides applied (ID token and userinfo alike).
    fn effective_claims(&self) -> Value {
        self.claims_for(false)
    }

    /// The claims with the test's overrides applied: `Claims` to both answers, `Split` to
    /// each its own.
    fn claims_for(&self, userinfo: bool) -> Value {
        let mut claims = self.claims();
        let overrides = match self.tamper.lock().map(|t| t.clone()) {
            Ok(Tamper::Claims(o)) => Some(o),
            Ok(Tamper::Split { userinfo: o, .. }) if userinfo => Some(o),
            Ok(Tamper::Split { id_token: o, .. }) => Some(o),
            _ => None,
        };
        for (k, v) in overrides
            .iter()
            .flat_map(|o| o.as_object().expect("object"))
        {
            if v.is_null() {
                claims.as_object_mut().expect("object").remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        claims
    }

    fn id_token(&self) -> String {
        let tamper = self
            .tamper
            .lock()
            .map(|t| t.clone())
            .unwrap_or(Tamper::None);
        self.forge(&self.effective_claims(), &tamper)
    }

    /// A token with these claims, signed (or forged) as `tamper` says.
    fn forge(&self, claims: &Value, tamper: &Tamper) -> String {
        let claims = claims.clone();
        match tamper {
            Tamper::None | Tamper::UserinfoSub(_) | Tamper::Claims(_) | Tamper::Split { .. } => {
                self.key.sign("JWT", &claims).expect("sign")
            }
            Tamper::AlgNone => format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": self.key.kid})),
                b64(&claims)
            ),
            Tamper::Hs256WithPublicKey => {
                let secret = URL_SAFE_NO_PAD
                    .decode(self.key.public_jwk["n"].as_str().expect("n"))
                    .expect("modulus");
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                header.kid = Some(self.key.kid.clone());
                jsonwebtoken::encode(
                    &header,
                    &claims,
                    &jsonwebtoken::EncodingKey::from_secret(&secret),
                )
                .expect("sign")
            }
            Tamper::ForeignKeySameKid => {
                let real = self.rogue.sign("JWT", &claims).expect("sign");
                let rest = real.split_once('.').expect("jwt").1;
                format!(
                    "{}.{rest}",
                    b64(&json!({"alg": "RS256", "kid": self.key.kid}))
                )
            }
            Tamper::UnknownKid => self.rogue.sign("JWT", &claims).expect("sign"),
        }
    }
}

async fn discovery(State(i): State<Arc<Inner>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    use std::sync::atomic::Ordering;
    i.discovery_requests.fetch_add(1, Ordering::SeqCst);
    if i.down.load(Ordering::SeqCst) {
        return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let base = i.issuer.trim_end_matches('/');
    Json(json!({
        "issuer": i.issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "scopes_supported": i.scopes_supported,
        "backchannel_logout_supported": true,
        "authorization_response_iss_parameter_supported":
            i.promises_iss.load(Ordering::SeqCst),
    }))
    .into_response()
}

async fn jwks(State(i): State<Arc<Inner>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    i.jwks_requests
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let keys = if i.withdrawn.load(std::sync::atomic::Ordering::SeqCst) {
        json!({ "keys": [] })
    } else {
        json!({ "keys": [i.key.public_jwk] })
    };
    let cache = i.jwks_cache_control.lock().ok().and_then(|c| c.clone());
    match cache {
        Some(c) => ([(axum::http::header::CACHE_CONTROL, c)], Json(keys)).into_response(),
        None => Json(keys).into_response(),
    }
}

async fn token(State(i): State<Arc<Inner>>) -> Json<Value> {
    Json(json!({ "id_token": i.id_token(), "access_token": "opaque-at", "token_type": "Bearer" }))
}

async fn userinfo(State(i): State<Arc<Inner>>) -> Json<Value> {
    let mut info = i.claims_for(true);
    // A userinfo answer carries no token claims.
    for k in ["iss", "aud", "iat", "exp", "auth_time", "nonce"] {
        info.as_object_mut().expect("object").remove(k);
    }
    if info.get("sub").is_none() {
        info["sub"] = json!("mallory");
    }
    if let Ok(Tamper::UserinfoSub(sub)) = i.tamper.lock().map(|t| t.clone()) {
        info["sub"] = json!(sub);
    }
    Json(info)
}

impl FakeIdp {
    pub async fn start(scopes_supported: Vec<&'static str>) -> FakeIdp {
        FakeIdp::start_as(scopes_supported, "").await
    }

    /// A provider whose issuer ends in `suffix` (Auth0's end in `/`).
    pub async fn start_as(scopes_supported: Vec<&'static str>, suffix: &str) -> FakeIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let issuer = format!("http://{}{suffix}", listener.local_addr().expect("addr"));
        let inner = Arc::new(Inner {
            issuer: issuer.clone(),
            key: SigningKey::generate().expect("key"),
            rogue: SigningKey::generate().expect("rogue key"),
            tamper: Mutex::new(Tamper::None),
            nonce: Mutex::new(String::new()),
            scopes_supported,
            jwks_requests: std::sync::atomic::AtomicUsize::new(0),
            promises_iss: std::sync::atomic::AtomicBool::new(false),
            withdrawn: std::sync::atomic::AtomicBool::new(false),
            down: std::sync::atomic::AtomicBool::new(false),
            discovery_requests: std::sync::atomic::AtomicUsize::new(0),
            jwks_cache_control: Mutex::new(None),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(Arc::clone(&inner));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeIdp { inner, issuer }
    }

    pub fn tamper(&self, t: Tamper) {
        if let Ok(mut slot) = self.inner.tamper.lock() {
            *slot = t;
        }
    }

    /// An access token with exactly these claims, signed or forged as `tamper` says.
    pub fn access_token(&self, claims: &Value, tamper: &Tamper) -> String {
        self.inner.forge(claims, tamper)
    }

    /// From now on, discovery promises `iss` in authorization responses.
    pub fn promise_iss(&self) {
        self.inner
            .promises_iss
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// From now on, the JWKS publishes no key: the signing key was withdrawn.
    pub fn withdraw_key(&self) {
        self.inner
            .withdrawn
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The `Cache-Control` the JWKS answers with.
    pub fn set_jwks_cache_control(&self, value: &str) {
        if let Ok(mut slot) = self.inner.jwks_cache_control.lock() {
            *slot = Some(value.to_string());
        }
    }

    /// Whether discovery answers 503.
    pub fn set_down(&self, down: bool) {
        self.inner
            .down
            .store(down, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many times the discovery document was asked for.
    pub fn discovery_requests(&self) -> usize {
        self.inner
            .discovery_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_requests(&self) -> usize {
        self.inner
            .jwks_requests
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The nonce of the sign-in in progress, as the relying party sent it.
    pub fn set_nonce(&self, nonce: &str) {
        if let Ok(mut slot) = self.inner.nonce.lock() {
            *slot = nonce.to_string();
        }
    }
}
