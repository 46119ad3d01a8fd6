//! A local GCP Secret Manager and metadata server, speaking the REST shapes Google's client
//! uses: `GET /v1/projects/P/secrets/S/versions/V:access` answering
//! `{name, payload: {data, dataCrc32c}}` (the version resolved, `latest` included), Google's
//! JSON errors (`NOT_FOUND`, `PERMISSION_DENIED`, `FAILED_PRECONDITION` for a disabled version,
//! `UNAUTHENTICATED` without the metadata server's token), and the metadata server's token
//! endpoint, which answers only with `Metadata-Flavor: Google`. A service account's key file
//! works too: Google's client then signs its own RS256 token (`iss` the account's email), which
//! the fake verifies with the account's public key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// The access token the fake metadata server hands out and the fake Secret Manager accepts.
const TOKEN: &str = "ya29.fake-metadata-token";
/// The project number Secret Manager names resolved versions with.
const PROJECT_NUMBER: &str = "123456789012";

#[derive(Clone)]
struct Version {
    data: Vec<u8>,
    enabled: bool,
}

#[derive(Default)]
struct Script {
    /// "P/S" → versions, the first being version 1.
    secrets: HashMap<String, Vec<Version>>,
    /// "P/S" whose access is denied to the service account.
    denied: Vec<String>,
    /// "P/S" whose payloads are sent with a wrong checksum.
    corrupt: Vec<String>,
    /// The metadata server has no service account to give a token for.
    no_service_account: bool,
    /// Access requests served, by "P/S/V".
    accesses: Vec<String>,
    /// The `traceparent` each access request came with.
    traceparents: Vec<Option<String>>,
    /// Service accounts whose self-signed tokens are accepted: email → public key.
    service_accounts: HashMap<String, jsonwebtoken::DecodingKey>,
    /// Access requests are taken and never answered.
    stalled: bool,
    /// Token requests to the metadata server are taken and never answered.
    metadata_stalled: bool,
}

#[derive(Clone)]
pub struct FakeGcp {
    /// `host:port`, for `GCE_METADATA_HOST`.
    pub host: String,
    /// `http://host:port`, for `GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT`.
    pub endpoint: String,
    script: Arc<Mutex<Script>>,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

impl FakeGcp {
    pub async fn start() -> FakeGcp {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route(
                "/v1/projects/{project}/secrets/{secret}/versions/{version}",
                get(access),
            )
            .route(
                "/computeMetadata/v1/instance/service-accounts/default/token",
                get(token),
            )
            .fallback(|| async { StatusCode::NOT_FOUND })
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGcp {
            host: addr.to_string(),
            endpoint: format!("http://{addr}"),
            script,
            _server: Arc::new(server),
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("fake GCP state")
    }

    /// Adds a version to `projects/{project}/secrets/{secret}` and returns its reference.
    pub fn add_version(&self, project: &str, secret: &str, data: &str) -> String {
        let mut script = self.script();
        let versions = script
            .secrets
            .entry(format!("{project}/{secret}"))
            .or_default();
        versions.push(Version {
            data: data.as_bytes().to_vec(),
            enabled: true,
        });
        format!(
            "gcp:projects/{project}/secrets/{secret}/versions/{}",
            versions.len()
        )
    }

    /// `gcp:` reference to the latest version of a secret.
    pub fn latest(&self, project: &str, secret: &str) -> String {
        format!("gcp:projects/{project}/secrets/{secret}/versions/latest")
    }

    /// The text of a secret's newest version.
    pub fn latest_value(&self, project: &str, secret: &str) -> Option<String> {
        self.script()
            .secrets
            .get(&format!("{project}/{secret}"))
            .and_then(|vs| vs.last())
            .map(|v| String::from_utf8_lossy(&v.data).into_owned())
    }

    pub fn disable_version(&self, project: &str, secret: &str, version: usize) {
        if let Some(v) = self
            .script()
            .secrets
            .get_mut(&format!("{project}/{secret}"))
            .and_then(|vs| vs.get_mut(version - 1))
        {
            v.enabled = false;
        }
    }

    pub fn deny(&self, project: &str, secret: &str) {
        self.script().denied.push(format!("{project}/{secret}"));
    }

    pub fn corrupt(&self, project: &str, secret: &str) {
        self.script().corrupt.push(format!("{project}/{secret}"));
    }

    pub fn remove_service_account(&self) {
        self.script().no_service_account = true;
    }

    pub fn accesses(&self) -> Vec<String> {
        self.script().accesses.clone()
    }

    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.script().traceparents.clone()
    }

    /// Takes every access request and never answers it.
    pub fn stall(&self) {
        self.script().stalled = true;
    }

    /// The metadata server takes every token request and never answers it.
    pub fn stall_metadata(&self) {
        self.script().metadata_stalled = true;
    }

    /// A new service account this Secret Manager trusts, as the JSON key file Google's console
    /// hands out.
    pub fn add_service_account(&self, email: &str) -> serde_json::Value {
        let (pem, key) = rsa_key();
        self.script()
            .service_accounts
            .insert(email.to_string(), key);
        service_account_file(email, &pem)
    }

    /// Settings that point Gatehouse at this fake for both the secrets and the credentials.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            (
                "GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT",
                self.endpoint.as_str(),
            ),
            ("GCE_METADATA_HOST", self.host.as_str()),
        ]
    }
}

fn google_error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "message": message, "status": code}})),
    )
        .into_response()
}

async fn access(
    State(script): State<Arc<Mutex<Script>>>,
    Path((project, secret, version)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(version) = version.strip_suffix(":access") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string();
    let (authorised, stalled) = {
        let script = script.lock().expect("fake GCP state");
        let authorised = bearer == TOKEN || signed_by_a_service_account(&script, &bearer);
        (authorised, script.stalled)
    };
    if stalled {
        std::future::pending::<()>().await;
    }
    if !authorised {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.".into(),
        );
    }
    let mut script = script.lock().expect("fake GCP state");
    let key = format!("{project}/{secret}");
    script.accesses.push(format!("{key}/{version}"));
    script.traceparents.push(
        headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    );
    let resource = format!("projects/{project}/secrets/{secret}/versions/{version}");
    if script.denied.contains(&key) {
        return google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!(
                "Permission 'secretmanager.versions.access' denied for resource '{resource}' \
                 (or it may not exist)."
            ),
        );
    }
    let versions = script.secrets.get(&key).cloned().unwrap_or_default();
    let number = match version {
        "latest" => versions.iter().rposition(|v| v.enabled).map(|i| i + 1),
        n => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1 && *n <= versions.len()),
    };
    let Some(number) = number else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!(
                "Secret [projects/{PROJECT_NUMBER}/secrets/{secret}] not found or has no versions."
            ),
        );
    };
    let found = &versions[number - 1];
    let name = format!("projects/{PROJECT_NUMBER}/secrets/{secret}/versions/{number}");
    if !found.enabled {
        return google_error(
            StatusCode::BAD_REQUEST,
            "FAILED_PRECONDITION",
            format!("Secret Version [{name}] is in DISABLED state."),
        );
    }
    let mut crc = i64::from(crc32c::crc32c(&found.data));
    if script.corrupt.contains(&key) {
        crc ^= 1;
    }
    // Protobuf's JSON mapping writes an int64 as a string.
    Json(json!({
        "name": name,
        "payload": {"data": STANDARD.encode(&found.data), "dataCrc32c": crc.to_string()},
    }))
    .into_response()
}

async fn token(State(script): State<Arc<Mutex<Script>>>, headers: HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing Metadata-Flavor: Google header",
        )
            .into_response();
    }
    let (missing, stalled) = {
        let script = script.lock().expect("fake GCP state");
        (script.no_service_account, script.metadata_stalled)
    };
    if stalled {
        std::future::pending::<()>().await;
    }
    if missing {
        return (StatusCode::NOT_FOUND, "no service account on this instance").into_response();
    }
    Json(json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"})).into_response()
}

/// A token a service account signed for itself: RS256 by the key on record for its `iss`,
/// `sub` the same account, for the cloud-platform scope, not expired.
fn signed_by_a_service_account(script: &Script, token: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Claims {
        iss: String,
        sub: Option<String>,
        scope: Option<String>,
    }
    let Ok(unverified) = jsonwebtoken::dangerous::insecure_decode::<Claims>(token) else {
        return false;
    };
    let Some(key) = script.service_accounts.get(&unverified.claims.iss) else {
        return false;
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    validation.set_issuer(&[&unverified.claims.iss]);
    jsonwebtoken::decode::<Claims>(token, key, &validation).is_ok_and(|t| {
        t.claims.sub.as_deref() == Some(t.claims.iss.as_str())
            && t.claims
                .scope
                .is_some_and(|s| s.contains("https://www.googleapis.com/auth/cloud-platform"))
    })
}

/// A fresh RSA key: its PKCS#8 PEM and the public half for verifying.
pub fn rsa_key() -> (String, jsonwebtoken::DecodingKey) {
    let (pem, n, e) = gatehouse::auth::signing::rsa_key_pem().expect("RSA key");
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&n, &e).expect("public key");
    (pem, key)
}

/// A service account key file as Google's console writes it.
pub fn service_account_file(email: &str, pem: &str) -> serde_json::Value {
    json!({
        "type": "service_account",
        "project_id": "acme",
        "private_key_id": uuid::Uuid::new_v4().simple().to_string(),
        "private_key": pem,
        "client_email": email,
        "client_id": "123456789",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "universe_domain": "googleapis.com",
    })
}
