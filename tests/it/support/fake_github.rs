//! A local GitHub that speaks the real API's shapes for the sync: GraphQL SAML identities
//! with cursor pagination, REST repositories (ids, stars, forks) with `Link` pages, traffic
//! views and clones in 14-day windows that move with a settable "today", top referrers and
//! popular paths, renames, `Date` and `X-RateLimit-*` headers on every answer, and scriptable
//! failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{Datelike, NaiveDate, Utc};
use serde_json::{Value, json};

pub const TOKEN: &str = "test-token";

#[derive(Clone, Debug, Default)]
pub struct FakeRepo {
    /// GitHub's repository id; 0 takes one made from the name (`id_of`), which
    /// `FakeGitHub::rename_repo` pins before it changes the name.
    pub id: i64,
    pub name: String,
    pub private: bool,
    /// (day "2026-11-10", views, unique views, clones, unique clones); a day listed here wins
    /// over the same day of `window`.
    pub traffic: Vec<(String, i64, i64, i64, i64)>,
    /// Serve the 14 days up to "today", their figures from `window_day(base, day)`.
    pub window: Option<i64>,
    /// Traffic (views, clones, referrers, paths) answers 403, as for a token without push
    /// access.
    pub traffic_forbidden: bool,
    pub stars: i64,
    pub forks: i64,
    /// (referrer, count, uniques)
    pub referrers: Vec<(String, i64, i64)>,
    /// (path, title, count, uniques)
    pub paths: Vec<(String, String, i64, i64)>,
}

impl FakeRepo {
    pub fn github_id(&self) -> i64 {
        if self.id == 0 {
            id_of(&self.name)
        } else {
            self.id
        }
    }
}

/// A stable id from a name (FNV-1a), so that repositories keep theirs when others come and go.
pub fn id_of(name: &str) -> i64 {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    i64::try_from(hash % 1_000_000_000).unwrap_or(0) + 1
}

/// The figures a `window` repository reports for a day: (views, unique views, clones,
/// unique clones), different from one day to the next.
pub fn window_day(base: i64, day: NaiveDate) -> (i64, i64, i64, i64) {
    let k = i64::from(day.ordinal() % 7);
    (base + k, base / 2 + k, base / 5 + k % 3, 1 + k % 2)
}

/// (email, login, name); an empty login is an identity not linked to a GitHub account.
pub type Ident = (String, String, String);

#[derive(Default)]
struct Script {
    org: String,
    identities: Vec<Ident>,
    enterprise_saml: bool,
    repos: Vec<FakeRepo>,
    page_cap: usize,
    /// GraphQL page (1-based) → (status, times left; usize::MAX = always).
    fail_page: Option<(usize, u16, usize)>,
    secondary_limit: Option<u64>,
    rate: Option<(u32, u64)>,
    delay: Duration,
    requests: Vec<String>,
    /// GitHub's "today"; the real one when unset.
    today: Option<NaiveDate>,
}

impl Script {
    fn today(&self) -> NaiveDate {
        self.today.unwrap_or_else(|| Utc::now().date_naive())
    }
}

#[derive(Clone)]
pub struct FakeGitHub {
    script: Arc<Mutex<Script>>,
    pub base: String,
    pub graphql: String,
    task: Arc<tokio::task::JoinHandle<()>>,
}

type Shared = Arc<Mutex<Script>>;

fn cursor(i: usize) -> String {
    STANDARD.encode(format!("cursor:v2:{i}"))
}

fn uncursor(c: &str) -> Option<usize> {
    let raw = String::from_utf8(STANDARD.decode(c).ok()?).ok()?;
    raw.strip_prefix("cursor:v2:")?.parse().ok()
}

fn rate_headers(s: &Script, headers: &mut HeaderMap) {
    let date = s
        .today()
        .and_time(Utc::now().time())
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(v) = HeaderValue::from_str(&date) {
        headers.insert("date", v);
    }
    let (remaining, reset_in) = s.rate.unwrap_or((4999, 3600));
    let reset = chrono::Utc::now().timestamp() + i64::try_from(reset_in).unwrap_or(3600);
    for (k, v) in [
        ("x-ratelimit-limit", "5000".to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-reset", reset.to_string()),
        ("x-ratelimit-used", (5000 - remaining.min(5000)).to_string()),
        ("x-ratelimit-resource", "core".to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    }
}

/// The checks every request goes through: token, secondary limit; `None` to go on.
fn gate(s: &mut Script, headers: &HeaderMap, label: String) -> Option<Response> {
    s.requests.push(label);
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {TOKEN}") {
        let mut r = (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})),
        )
            .into_response();
        rate_headers(s, r.headers_mut());
        return Some(r);
    }
    if let Some(secs) = s.secondary_limit.take() {
        let mut r = (
            StatusCode::FORBIDDEN,
            [("retry-after", secs.to_string())],
            Json(json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."})),
        )
            .into_response();
        rate_headers(s, r.headers_mut());
        return Some(r);
    }
    None
}

fn finish(s: &Script, mut r: Response) -> Response {
    rate_headers(s, r.headers_mut());
    r
}

async fn graphql(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let vars = &body["variables"];
    let start = vars["after"]
        .as_str()
        .and_then(uncursor)
        .map_or(0, |i| i + 1);
    let delay = shared.lock().map(|s| s.delay).unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Ok(mut s) = shared.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let first = usize::try_from(vars["first"].as_u64().unwrap_or(100))
        .unwrap_or(100)
        .min(s.page_cap.max(1));
    let page = start / first.max(1) + 1;
    if let Some(r) = gate(&mut s, &headers, format!("POST /graphql page={page}")) {
        return r;
    }
    if let Some((fail, status, left)) = s.fail_page
        && fail == page
        && left > 0
    {
        {
            s.fail_page = Some((
                fail,
                status,
                if left == usize::MAX { left } else { left - 1 },
            ));
            let r = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
                "<html><body>Server Error</body></html>",
            )
                .into_response();
            return finish(&s, r);
        }
    }
    if !body["query"]
        .as_str()
        .unwrap_or("")
        .contains("externalIdentities")
        || vars["login"].as_str() != Some(s.org.as_str())
    {
        let r = Json(json!({
            "data": {"organization": null},
            "errors": [{"type": "NOT_FOUND", "path": ["organization"],
                "message": format!("Could not resolve to an Organization with the login of '{}'.", vars["login"].as_str().unwrap_or(""))}]
        }))
        .into_response();
        return finish(&s, r);
    }
    if s.enterprise_saml {
        let r =
            Json(json!({"data": {"organization": {"samlIdentityProvider": null}}})).into_response();
        return finish(&s, r);
    }
    let end = (start + first).min(s.identities.len());
    let nodes: Vec<Value> = s.identities[start.min(end)..end]
        .iter()
        .map(|(email, login, name)| {
            let user = if login.is_empty() {
                Value::Null
            } else {
                json!({"login": login, "name": if name.is_empty() { Value::Null } else { json!(name) }})
            };
            json!({"samlIdentity": {"nameId": email, "username": email}, "user": user})
        })
        .collect();
    let has_next = end < s.identities.len();
    let r = Json(json!({"data": {"organization": {"samlIdentityProvider": {"externalIdentities": {
        "pageInfo": {"hasNextPage": has_next, "endCursor": if end > start { json!(cursor(end - 1)) } else { Value::Null }},
        "nodes": nodes,
    }}}}}))
    .into_response();
    finish(&s, r)
}

#[derive(serde::Deserialize)]
struct PageQuery {
    page: Option<usize>,
    per_page: Option<usize>,
}

async fn repos(
    State(shared): State<Shared>,
    Path(org): Path<String>,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let Ok(mut s) = shared.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let page = q.page.unwrap_or(1).max(1);
    if let Some(r) = gate(
        &mut s,
        &headers,
        format!("GET /orgs/{org}/repos page={page}"),
    ) {
        return r;
    }
    if org != s.org {
        let r = (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
        return finish(&s, r);
    }
    let per = q
        .per_page
        .unwrap_or(30)
        .clamp(1, 100)
        .min(s.page_cap.max(1));
    let last = s.repos.len().div_ceil(per).max(1);
    let rows: Vec<Value> = s
        .repos
        .iter()
        .skip((page - 1) * per)
        .take(per)
        .map(|r| {
            json!({"id": r.github_id(), "name": r.name, "full_name": format!("{}/{}", s.org, r.name),
                   "private": r.private, "visibility": if r.private { "private" } else { "public" },
                   "archived": false, "description": format!("{} repository", r.name),
                   "html_url": format!("https://github.example/{}/{}", s.org, r.name),
                   "stargazers_count": r.stars, "watchers_count": r.stars, "forks_count": r.forks})
        })
        .collect();
    let mut r = Json(rows).into_response();
    if page < last {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let link = format!(
            "<http://{host}/orgs/{org}/repos?per_page={per}&type=all&page={}>; rel=\"next\", \
             <http://{host}/orgs/{org}/repos?per_page={per}&type=all&page={last}>; rel=\"last\"",
            page + 1
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            r.headers_mut().insert("link", v);
        }
    }
    finish(&s, r)
}

async fn traffic(
    State(shared): State<Shared>,
    Path((owner, repo, kind)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Ok(mut s) = shared.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(r) = gate(
        &mut s,
        &headers,
        format!("GET /repos/{owner}/{repo}/traffic/{kind}"),
    ) {
        return r;
    }
    let Some(found) = s
        .repos
        .iter()
        .find(|r| r.name == repo && owner == s.org)
        .cloned()
    else {
        let r = (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response();
        return finish(&s, r);
    };
    if found.traffic_forbidden {
        let r = (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "Must have push access to repository"})),
        )
            .into_response();
        return finish(&s, r);
    }
    let mut days: std::collections::BTreeMap<String, (i64, i64, i64, i64)> = Default::default();
    if let Some(base) = found.window {
        let today = s.today();
        for back in (0..14).rev() {
            let day = today - chrono::Days::new(back);
            days.insert(day.to_string(), window_day(base, day));
        }
    }
    for (day, v, uv, c, uc) in &found.traffic {
        days.insert(day.clone(), (*v, *uv, *c, *uc));
    }
    let points: Vec<Value> = days
        .iter()
        .map(|(day, (v, uv, c, uc))| {
            let (count, uniques) = if kind == "views" { (v, uv) } else { (c, uc) };
            json!({"timestamp": format!("{day}T00:00:00Z"), "count": count, "uniques": uniques})
        })
        .collect();
    let total: i64 = points.iter().filter_map(|p| p["count"].as_i64()).sum();
    let r =
        Json(json!({"count": total, "uniques": total / 2, kind.clone(): points})).into_response();
    finish(&s, r)
}

async fn popular(
    State(shared): State<Shared>,
    Path((owner, repo, kind)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Ok(mut s) = shared.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    if let Some(r) = gate(
        &mut s,
        &headers,
        format!("GET /repos/{owner}/{repo}/traffic/popular/{kind}"),
    ) {
        return r;
    }
    let found = s
        .repos
        .iter()
        .find(|r| r.name == repo && owner == s.org)
        .cloned();
    let r = match found {
        None => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
        Some(found) if found.traffic_forbidden => (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "Must have push access to repository"})),
        )
            .into_response(),
        Some(found) if kind == "referrers" => Json(
            found
                .referrers
                .iter()
                .map(|(referrer, count, uniques)| {
                    json!({"referrer": referrer, "count": count, "uniques": uniques})
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Some(found) if kind == "paths" => Json(
            found
                .paths
                .iter()
                .map(|(path, title, count, uniques)| {
                    json!({"path": path, "title": title, "count": count, "uniques": uniques})
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Some(_) => (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response(),
    };
    finish(&s, r)
}

impl FakeGitHub {
    pub async fn start(org: &str) -> FakeGitHub {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let script: Shared = Arc::new(Mutex::new(Script {
            org: org.to_string(),
            page_cap: 100,
            ..Script::default()
        }));
        let app = Router::new()
            .route("/graphql", post(graphql))
            .route("/orgs/{org}/repos", get(repos))
            .route("/repos/{owner}/{repo}/traffic/{kind}", get(traffic))
            .route("/repos/{owner}/{repo}/traffic/popular/{kind}", get(popular))
            .with_state(Arc::clone(&script));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitHub {
            graphql: format!("{base}/graphql"),
            base,
            script,
            task: Arc::new(task),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Script) -> T) -> T {
        let mut s = self.script.lock().expect("fake GitHub state");
        f(&mut s)
    }

    pub fn set_identities(&self, ids: Vec<Ident>) {
        self.with(|s| s.identities = ids);
    }
    pub fn set_enterprise_saml(&self, on: bool) {
        self.with(|s| s.enterprise_saml = on);
    }
    pub fn set_repos(&self, repos: Vec<FakeRepo>) {
        self.with(|s| s.repos = repos);
    }
    /// Changes one repository in place (its stars, referrers, traffic, …).
    pub fn edit_repo(&self, name: &str, f: impl FnOnce(&mut FakeRepo)) {
        self.with(|s| {
            let repo = s
                .repos
                .iter_mut()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("no fake repository {name}"));
            f(repo);
        });
    }
    /// A rename on GitHub: same id, new name.
    pub fn rename_repo(&self, from: &str, to: &str) {
        self.edit_repo(from, |r| {
            r.id = r.github_id();
            r.name = to.to_string();
        });
    }
    /// Gone from the organization (deleted or transferred); returned to add back later.
    pub fn remove_repo(&self, name: &str) -> FakeRepo {
        self.with(|s| {
            let at = s
                .repos
                .iter()
                .position(|r| r.name == name)
                .unwrap_or_else(|| panic!("no fake repository {name}"));
            s.repos.remove(at)
        })
    }
    pub fn add_repo(&self, repo: FakeRepo) {
        self.with(|s| s.repos.push(repo));
    }
    /// GitHub's "today": the end of every `window` and the day of its `Date` header.
    pub fn set_today(&self, day: NaiveDate) {
        self.with(|s| s.today = Some(day));
    }
    pub fn advance_days(&self, n: u64) {
        self.with(|s| s.today = Some(s.today() + chrono::Days::new(n)));
    }
    pub fn today(&self) -> NaiveDate {
        self.with(|s| s.today())
    }
    pub fn fail_graphql_page_once(&self, page: usize, status: u16) {
        self.with(|s| s.fail_page = Some((page, status, 1)));
    }
    pub fn fail_graphql_page_always(&self, page: usize, status: u16) {
        self.with(|s| s.fail_page = Some((page, status, usize::MAX)));
    }
    pub fn secondary_rate_limit_once(&self, retry_after_secs: u64) {
        self.with(|s| s.secondary_limit = Some(retry_after_secs));
    }
    pub fn set_rate_limit(&self, remaining: u32, reset_in_secs: u64) {
        self.with(|s| s.rate = Some((remaining, reset_in_secs)));
    }
    pub fn set_page_size_cap(&self, n: usize) {
        self.with(|s| s.page_cap = n);
    }
    /// Each GraphQL page waits this long before answering (to overlap two runs).
    pub fn set_delay(&self, d: Duration) {
        self.with(|s| s.delay = d);
    }
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.requests.clone())
    }
    pub fn clear_requests(&self) {
        self.with(|s| s.requests.clear());
    }

    /// The `GATEHOUSE_GITHUB_*` settings that point Gatehouse here.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("GATEHOUSE_GITHUB_ORG", self.with(|s| s.org.clone())),
            ("GATEHOUSE_GITHUB_TOKEN", TOKEN.to_string()),
            ("GATEHOUSE_GITHUB_API_URL", self.base.clone()),
            ("GATEHOUSE_GITHUB_GRAPHQL_URL", self.graphql.clone()),
        ]
    }
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

/// `n` linked identities `user{i}@example.com` → `user-{i}`, named `User {i}`.
pub fn people(n: usize) -> Vec<Ident> {
    (0..n)
        .map(|i| {
            (
                format!("User{i}@Example.com"),
                format!("user-{i}"),
                format!("User {i}"),
            )
        })
        .collect()
}
