//! A local Okta org speaking the Users API's shapes: `GET /api/v1/users/{id}` (a user with its
//! `status`, or Okta's 404 error), `GET /api/v1/users/{id}/groups` in pages with `Link`
//! headers (`rel="self"`, `rel="next"`), `GET /api/v1/users/me` for the token's own user,
//! `SSWS` token authentication (401 with Okta's error body otherwise), `X-Rate-Limit-*` on
//! every answer, and scripted failures: a status for every user request, or 429s with a reset.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub const TOKEN: &str = "00fake-okta-api-token";
/// The rate limit every answer reports.
const LIMIT: u64 = 600;

#[derive(Default)]
struct Script {
    /// Okta user id → status.
    users: HashMap<String, String>,
    /// Okta user id → group names.
    groups: HashMap<String, Vec<String>>,
    /// Largest page of groups served, whatever `limit` asks.
    page_size: Option<usize>,
    /// Where the `Link` headers point instead of this org (a hostile or broken answer).
    link_base: Option<String>,
    /// Every user request answers this status.
    failing: Option<u16>,
    /// The next user requests answer 429 until this moment (Unix seconds), which is also the
    /// `X-Rate-Limit-Reset` they carry.
    limited_until: Option<u64>,
    /// When each user request arrived, with its path.
    requests: Vec<(Instant, String)>,
}

#[derive(Clone)]
pub struct FakeOkta {
    pub url: String,
    script: Arc<Mutex<Script>>,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

impl FakeOkta {
    pub async fn start() -> FakeOkta {
        let script = Arc::new(Mutex::new(Script::default()));
        let app = Router::new()
            .route("/api/v1/users/{id}", get(user))
            .route("/api/v1/users/{id}/groups", get(groups))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOkta {
            url,
            script,
            _server: Arc::new(server),
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("fake Okta state")
    }

    pub fn set_status(&self, id: &str, status: &str) {
        self.script().users.insert(id.into(), status.into());
    }

    pub fn remove_user(&self, id: &str) {
        self.script().users.remove(id);
    }

    pub fn set_groups(&self, id: &str, groups: Vec<String>, page_size: usize) {
        let mut script = self.script();
        script.groups.insert(id.into(), groups);
        script.page_size = Some(page_size);
    }

    /// Makes the groups' `Link` headers point at `base` (`http://host:port`) instead.
    pub fn link_elsewhere(&self, base: &str) {
        self.script().link_base = Some(base.to_string());
    }

    pub fn fail_with(&self, status: Option<u16>) {
        self.script().failing = status;
    }

    /// Answers 429 for `secs` seconds, saying so in `X-Rate-Limit-Reset`.
    pub fn rate_limit_for(&self, secs: u64) {
        self.script().limited_until = Some(unix_now() + secs);
    }

    /// When each user request arrived, with its path.
    pub fn requests(&self) -> Vec<(Instant, String)> {
        self.script().requests.clone()
    }

    /// Settings that point Gatehouse at this org.
    pub fn env(&self) -> [(&'static str, &str); 2] {
        [
            ("GATEHOUSE_OKTA_ORG_URL", self.url.as_str()),
            ("GATEHOUSE_OKTA_API_TOKEN", TOKEN),
        ]
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

fn okta_error(status: StatusCode, code: &str, summary: String) -> Response {
    (
        status,
        Json(json!({
            "errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae-fake", "errorCauses": [],
        })),
    )
        .into_response()
}

/// The checks every request goes through: the token, the scripted failures, the limits; the
/// refusal, if any.
fn refuse(script: &mut Script, headers: &HeaderMap, path: String) -> Option<Response> {
    let authorised = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("SSWS {TOKEN}"));
    if !authorised {
        return Some(okta_error(
            StatusCode::UNAUTHORIZED,
            "E0000011",
            "Invalid token provided".into(),
        ));
    }
    script.requests.push((Instant::now(), path));
    if let Some(until) = script.limited_until.filter(|u| *u > unix_now()) {
        let mut r = okta_error(
            StatusCode::TOO_MANY_REQUESTS,
            "E0000047",
            "API call exceeded rate limit due to too many requests.".into(),
        );
        limits(r.headers_mut(), 0, until);
        return Some(r);
    }
    if let Some(status) = script.failing {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some(okta_error(
            status,
            "E0000009",
            "Internal Server Error".into(),
        ));
    }
    None
}

fn limits(headers: &mut HeaderMap, remaining: u64, reset: u64) {
    for (name, value) in [
        ("x-rate-limit-limit", LIMIT),
        ("x-rate-limit-remaining", remaining),
        ("x-rate-limit-reset", reset),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}

fn with_limits(mut r: Response) -> Response {
    limits(r.headers_mut(), LIMIT - 1, unix_now() + 60);
    r
}

async fn user(
    State(script): State<Arc<Mutex<Script>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut script = script.lock().expect("fake Okta state");
    if let Some(r) = refuse(&mut script, &headers, format!("/api/v1/users/{id}")) {
        return r;
    }
    if id == "me" {
        return with_limits(
            Json(json!({
                "id": "00u-api", "status": "ACTIVE",
                "profile": {"login": "gatehouse-api@example.com", "email": "gatehouse-api@example.com"},
            }))
            .into_response(),
        );
    }
    match script.users.get(&id) {
        Some(status) => with_limits(
            Json(json!({
                "id": id, "status": status, "created": "2024-01-01T00:00:00.000Z",
                "profile": {"login": format!("{id}@example.com"), "email": format!("{id}@example.com")},
                "_links": {"self": {"href": format!("/api/v1/users/{id}")}},
            }))
            .into_response(),
        ),
        None => with_limits(okta_error(
            StatusCode::NOT_FOUND,
            "E0000007",
            format!("Not found: Resource not found: {id} (User)"),
        )),
    }
}

async fn groups(
    State(state): State<Arc<Mutex<Script>>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut script = state.lock().expect("fake Okta state");
    if let Some(r) = refuse(&mut script, &headers, format!("/api/v1/users/{id}/groups")) {
        return r;
    }
    let Some(all) = script.groups.get(&id).cloned() else {
        return with_limits(okta_error(
            StatusCode::NOT_FOUND,
            "E0000007",
            format!("Not found: Resource not found: {id} (User)"),
        ));
    };
    let asked = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(200);
    let size = script.page_size.map_or(asked, |p| p.min(asked)).max(1);
    // `after` is the index of the last group of the previous page, as an opaque cursor.
    let start = q
        .get("after")
        .and_then(|a| a.strip_prefix("00g"))
        .and_then(|a| a.parse::<usize>().ok())
        .map_or(0, |i| i + 1);
    let page: Vec<serde_json::Value> = all
        .iter()
        .enumerate()
        .skip(start)
        .take(size)
        .map(|(i, name)| {
            json!({"id": format!("00g{i}"), "type": "OKTA_GROUP", "profile": {"name": name, "description": null}})
        })
        .collect();
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let origin = script
        .link_base
        .clone()
        .unwrap_or_else(|| format!("http://{host}"));
    let base = format!("{origin}/api/v1/users/{id}/groups");
    let mut response = with_limits(Json(page).into_response());
    let links = response.headers_mut();
    links.append(
        "link",
        HeaderValue::from_str(&format!("<{base}?limit={asked}>; rel=\"self\"")).expect("link"),
    );
    let last = start + size;
    if last < all.len() {
        links.append(
            "link",
            HeaderValue::from_str(&format!(
                "<{base}?after=00g{}&limit={asked}>; rel=\"next\"",
                last - 1
            ))
            .expect("link"),
        );
    }
    response
}
