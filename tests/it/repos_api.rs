//! The repositories' JSON API with real tokens from node oidc-provider: a user's token (code
//! flow with PKCE, asking for the API as the resource) sees what that user sees on the pages;
//! a machine token (client credentials) sees every repository. Paging by cursor, the traffic
//! series and every refusal.

use gatehouse::auth::roles;
use reqwest::StatusCode;
use serde_json::Value;

use crate::signin::{rig, sign_in};
use crate::support::{TestApp, TestDb, http};

async fn get(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    http()
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request")
}

async fn json_of(app: &TestApp, path: &str, token: &str) -> Value {
    let r = get(app, path, token).await;
    let status = r.status();
    let body = r.text().await.expect("body");
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// Every name the token may see, walking the pages `limit` at a time.
async fn all_names(app: &TestApp, token: &str, limit: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/repos?limit={limit}&cursor={c}"),
            None => format!("/api/v1/repos?limit={limit}"),
        };
        let page = json_of(app, &path, token).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= limit, "{page}");
        names.extend(
            items
                .iter()
                .map(|i| i["name"].as_str().expect("name").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return names,
        }
    }
    panic!("more than 20 pages");
}

async fn status_and_error(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let r = get(app, path, token).await;
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn repos_api(db: TestDb) {
    let rig = rig(db, &[]).await;
    let (app, idp) = (&rig.app, &rig.idp);
    let store = app.state.store.db();
    crate::repos::seed(&store).await;
    let web = roles::create(&store, "web", "", &["web-*".into()])
        .await
        .expect("create")
        .expect("new");

    // Bob's token before he ever signed in: his roles are unknown, so it is refused, saying so.
    let bob_token = idp.user_token("bob", "repos.read").await;
    let (status, body) = status_and_error(app, "/api/v1/repos", &bob_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("signed in")),
        "{body}"
    );

    // Signed in once, with no role: nothing. With the role: web-* only.
    let signed = sign_in(&rig, "bob", "/").await;
    assert_eq!(
        signed.response.status(),
        StatusCode::OK,
        "signed in (the hop page)"
    );
    assert!(all_names(app, &bob_token, 50).await.is_empty());
    let bob_id = crate::repos::user_id(&store, "bob").await;
    roles::assign(&store, bob_id, web.id, "test")
        .await
        .expect("assign");
    app.settle().await;
    assert_eq!(
        all_names(app, &bob_token, 1).await,
        ["web-admin", "web-shop"]
    );

    // Alice is an admin by her groups: all, by name, one page at a time.
    sign_in(&rig, "alice", "/").await;
    let alice_token = idp.user_token("alice", "repos.read").await;
    let everything = ["api", "data-lake", "my_repo", "web-admin", "web-shop"];
    assert_eq!(all_names(app, &alice_token, 2).await, everything);
    // A machine token sees every repository, whoever is signed in.
    let machine =
        crate::api::client_credentials(&idp.issuer, "gatehouse-machine", "repos.read").await;
    assert_eq!(all_names(app, &machine, 200).await, everything);

    // One item as SPEC'd: the 14-day sums from SQL.
    let page = json_of(app, "/api/v1/repos?q=shop", &machine).await;
    let item = &page["items"][0];
    assert_eq!(item["name"], "web-shop");
    assert_eq!(item["full_name"], "web-shop", "no organization configured");
    assert_eq!(
        (item["views_14d"].as_i64(), item["clones_14d"].as_i64()),
        (Some(140), Some(14))
    );
    assert_eq!(item["unique_views_14d"], 28);
    assert_eq!(
        (item["private"].as_bool(), item["archived"].as_bool()),
        (Some(true), Some(false))
    );
    assert!(item["last_synced_at"].is_string(), "{item}");
    assert!(page["next_cursor"].is_null());

    // The series: 28 days of 10 views, summed per week and month in SQL.
    let days = json_of(app, "/api/v1/repos/web-shop/traffic?range=90d", &bob_token).await;
    assert_eq!(days["repo"], "web-shop");
    assert_eq!(days["granularity"], "day");
    let points = days["points"].as_array().expect("points");
    assert_eq!(points.len(), 28);
    assert!(
        points
            .iter()
            .all(|p| p["views"] == 10 && p["unique_clones"] == 1)
    );
    let weeks = json_of(
        app,
        "/api/v1/repos/WEB-SHOP/traffic?range=all&granularity=week",
        &bob_token,
    )
    .await;
    let total: i64 = weeks["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["views"].as_i64().expect("views"))
        .sum();
    assert_eq!(total, 280, "{weeks}");
    assert!(weeks["from"].is_null());
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::Duration::days(2);
    let window = json_of(
        app,
        &format!("/api/v1/repos/web-shop/traffic?from={from}&to={today}"),
        &bob_token,
    )
    .await;
    assert_eq!(
        window["points"].as_array().map(Vec::len),
        Some(3),
        "{window}"
    );
    assert_eq!(window["points"][0]["date"], from.to_string());

    // A repository bob may not see is the same 404 as one that does not exist; odd names too.
    let (hidden, hidden_body) =
        status_and_error(app, "/api/v1/repos/data-lake/traffic", &bob_token).await;
    let (unknown, unknown_body) =
        status_and_error(app, "/api/v1/repos/no-such/traffic", &bob_token).await;
    assert_eq!(
        (hidden, unknown),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(hidden_body, unknown_body);
    for odd in ["a%20b", "%00", "..", "%C3%BC", "web-shop%2Fx"] {
        let (status, body) =
            status_and_error(app, &format!("/api/v1/repos/{odd}/traffic"), &machine).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{odd}: {body}");
    }
    // Bad parameters: a 400 naming the parameter.
    for (query, name) in [
        ("granularity=hour", "granularity"),
        ("range=2w", "range"),
        ("from=2026-13-01", "from"),
        ("to=tomorrow", "to"),
        ("from=2026-02-01&to=2026-01-01", "from"),
        ("range=14d&from=2026-01-01", "range"),
    ] {
        let (status, body) = status_and_error(
            app,
            &format!("/api/v1/repos/web-shop/traffic?{query}"),
            &machine,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(name)),
            "{query}: {body}"
        );
    }
    for (query, name) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=nope", "cursor"),
        ("sort=-name&q=", "sort"),
    ] {
        let (status, body) =
            status_and_error(app, &format!("/api/v1/repos?{query}"), &machine).await;
        if name == "sort" {
            // Unknown parameters are ignored, like the directory's.
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            continue;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(name)),
            "{query}: {body}"
        );
    }

    // Scope: repos.read is needed, on the list and the series alike.
    let reader =
        crate::api::client_credentials(&idp.issuer, "gatehouse-reader", "directory.read").await;
    let bob_directory = idp.user_token("bob", "directory.read").await;
    for token in [&reader, &bob_directory] {
        for path in ["/api/v1/repos", "/api/v1/repos/web-shop/traffic"] {
            let r = get(app, path, token).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
            let challenge = r.headers()["www-authenticate"].to_str().expect("ascii");
            assert!(challenge.contains("insufficient_scope"), "{challenge}");
            assert!(challenge.contains("repos.read"), "{challenge}");
        }
    }

    // The role taken away: gone on the next request, on the list and the series.
    roles::remove(&store, bob_id, web.id).await.expect("remove");
    app.settle().await;
    assert!(all_names(app, &bob_token, 50).await.is_empty());
    assert_eq!(
        get(app, "/api/v1/repos/web-shop/traffic", &bob_token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    rig.app.stop().await;
}

#[tokio::test]
async fn repositories_api_with_user_and_machine_tokens_on_sqlite() {
    repos_api(TestDb::sqlite()).await;
}

#[tokio::test]
async fn repositories_api_with_user_and_machine_tokens_on_postgres() {
    repos_api(TestDb::postgres().await).await;
}
