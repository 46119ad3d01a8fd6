//! The JSON API: Bearer access tokens (dev provider machine tokens, and crafted ones from a
//! scriptable provider for every refusal), RFC 6750 errors, scopes, endpoints.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::signin_refusals::app_with;
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::{TestApp, TestDb, http};

async fn get(app: &TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut r = http().get(app.url(path));
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.send().await.expect("request")
}

fn challenge(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn dev_machine_token(app: &TestApp, scope: &str) -> String {
    token_from(
        &app.url("/dev-idp/token"),
        "gatehouse-dev-machine",
        "dev-machine-secret",
        scope,
    )
    .await
}

/// An access token from a client-credentials grant at `token_url`.
async fn token_from(token_url: &str, client: &str, secret: &str, scope: &str) -> String {
    let token: Value = http()
        .post(token_url)
        .basic_auth(client, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("json");
    token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{token}"))
        .to_string()
}

#[tokio::test]
async fn dev_machine_tokens_read_the_directory() {
    let db = TestDb::sqlite();
    let app = crate::directory::app_with_directory(&db, &[]).await;
    let read = dev_machine_token(&app, "directory.read").await;

    let r = get(&app, "/api/v1/me", Some(&read)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-ratelimit-limit"], "600", "rule api");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["client_id"], "gatehouse-dev-machine");
    assert_eq!(me["scopes"], json!(["directory.read"]));
    assert_eq!(me["claims"]["aud"], "api://default");

    let r = get(&app, "/api/v1/github-users?limit=1&sort=email", Some(&read)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.expect("json");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["email"], "alice@example.com");
    let cursor = page["next_cursor"].as_str().expect("a next cursor");
    let r = get(
        &app,
        &format!("/api/v1/github-users?limit=1&sort=email&cursor={cursor}"),
        Some(&read),
    )
    .await;
    let page: Value = r.json().await.expect("json");
    assert_eq!(page["items"][0]["email"], "bob@example.com");
    assert_eq!(page["next_cursor"], Value::Null);

    let r = get(&app, "/api/v1/github-users/ALICE@example.com", Some(&read)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let row: Value = r.json().await.expect("json");
    assert_eq!(row["github_username"], "alice-gh");
    let r = get(&app, "/api/v1/github-users/nobody@example.com", Some(&read)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("nobody@example.com"))
    );

    let r = get(&app, "/api/v1/people/alice@example.com", Some(&read)).await;
    let person: Value = r.json().await.expect("json");
    assert_eq!(person["github_usernames"], json!(["alice-gh"]));
    let lists = person["member_of"].to_string();
    assert!(
        lists.contains("Engineering") && !lists.contains("Secret"),
        "{lists}"
    );
    assert!(!person.to_string().contains("C02ALICE1"), "never laptops");

    let r = get(&app, "/api/v1/github-users?limit=999", Some(&read)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A token without the scope: 403 insufficient_scope; the scope-free /me still works.
    let write = dev_machine_token(&app, "directory.write").await;
    let r = get(&app, "/api/v1/github-users", Some(&write)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&r).contains("error=\"insufficient_scope\", scope=\"directory.read\""));
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"],
        "insufficient_scope"
    );
    assert_eq!(
        get(&app, "/api/v1/me", Some(&write)).await.status(),
        StatusCode::OK
    );

    // No token: 401 with a bare challenge; a token in the query string is not read.
    let r = get(&app, "/api/v1/me", None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(challenge(&r), "Bearer realm=\"gatehouse\"");
    let r = get(&app, &format!("/api/v1/me?access_token={read}"), None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A session cookie is not an API credential.
    let alice = crate::devidp::dev_sign_in(&app.base, "alice").await;
    let r = crate::signin::get_with(&alice, &app.url("/api/v1/me")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

pub fn good_claims(issuer: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": issuer, "sub": "svc-reports", "aud": "api://default", "iat": now,
        "exp": now + 300, "cid": "reports", "scp": ["directory.read"],
    })
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

#[tokio::test]
async fn every_bad_token_is_a_401_and_unknown_kids_do_not_flood_the_provider() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile"]).await;
    let db = TestDb::sqlite();
    let app = app_with(
        &idp,
        &db,
        &[
            ("GATEHOUSE_API_CLIENT_IDS", "reports,dashboards"),
            ("GATEHOUSE_JWKS_COOLDOWN", "60s"),
            ("GATEHOUSE_RATE_LIMITS", "api=100000/minute"),
        ],
    )
    .await;
    let good = good_claims(&idp.issuer);
    let ok = idp.access_token(&good, &Tamper::None);
    let r = get(&app, "/api/v1/me", Some(&ok)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", challenge(&r));
    let me: Value = r.json().await.expect("json");
    assert_eq!(
        (me["sub"].as_str(), me["client_id"].as_str()),
        (Some("svc-reports"), Some("reports"))
    );
    // scp as a string and `scope` work too; azp and client_id name the client.
    for variant in [
        json!({"scp": "directory.read other"}),
        json!({"scp": null, "scope": "directory.read"}),
        json!({"cid": null, "azp": "dashboards"}),
        json!({"cid": null, "client_id": "dashboards", "sub": null}),
    ] {
        let t = idp.access_token(&with(good.clone(), variant.clone()), &Tamper::None);
        let r = get(&app, "/api/v1/github-users", Some(&t)).await;
        assert_eq!(r.status(), StatusCode::OK, "{variant}: {}", challenge(&r));
    }

    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, String)> = vec![
        ("alg none", idp.access_token(&good, &Tamper::AlgNone)),
        (
            "HS256 keyed with the public key",
            idp.access_token(&good, &Tamper::Hs256WithPublicKey),
        ),
        (
            "a foreign key under the real kid",
            idp.access_token(&good, &Tamper::ForeignKeySameKid),
        ),
        (
            "an unknown kid",
            idp.access_token(&good, &Tamper::UnknownKid),
        ),
        (
            "wrong issuer",
            idp.access_token(
                &with(good.clone(), json!({"iss": "https://evil.example"})),
                &Tamper::None,
            ),
        ),
        (
            "wrong audience",
            idp.access_token(
                &with(good.clone(), json!({"aud": "api://other"})),
                &Tamper::None,
            ),
        ),
        (
            "expired",
            idp.access_token(
                &with(good.clone(), json!({"exp": now - 600})),
                &Tamper::None,
            ),
        ),
        (
            "not valid yet",
            idp.access_token(
                &with(good.clone(), json!({"nbf": now + 600})),
                &Tamper::None,
            ),
        ),
        (
            "disallowed client",
            idp.access_token(
                &with(good.clone(), json!({"cid": "intruder"})),
                &Tamper::None,
            ),
        ),
        (
            "no client at all",
            idp.access_token(&with(good.clone(), json!({"cid": null})), &Tamper::None),
        ),
        (
            "missing exp",
            idp.access_token(&with(good.clone(), json!({"exp": null})), &Tamper::None),
        ),
        ("malformed", "not-a-jwt".into()),
        ("three garbage parts", "abc.def.ghi".into()),
        (
            "a signature swapped in",
            format!("{}.{}", ok.rsplit_once('.').map_or("", |p| p.0), "AAAA"),
        ),
        ("oversized", format!("{}{}", ok, "A".repeat(9000))),
        ("ES256 named on an RSA key", {
            use base64::Engine;
            let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let (head, rest) = ok.split_once('.').expect("jwt");
            let mut header: Value =
                serde_json::from_slice(&engine.decode(head).expect("b64")).expect("json");
            header["alg"] = json!("ES256");
            format!("{}.{rest}", engine.encode(header.to_string()))
        }),
    ];
    for (what, token) in &cases {
        let r = get(&app, "/api/v1/me", Some(token)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(
            challenge(&r).contains("error=\"invalid_token\""),
            "{what}: {}",
            challenge(&r)
        );
        let body: Value = r.json().await.expect("json body");
        assert_eq!(body["error"], "invalid_token", "{what}");
    }
    // Other schemes and shapes of the header.
    for header in ["Basic dXNlcjpwYXNz", "Bearer", "bearer", "Token abc", ""] {
        let r = http()
            .get(app.url("/api/v1/me"))
            .header("authorization", header)
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{header:?}");
    }

    // A flood of random kids: at most one JWKS refetch per cool-down.
    let before = idp.jwks_requests();
    let random_kid = || {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signed = idp.access_token(&good, &Tamper::UnknownKid);
        let rest = signed.split_once('.').expect("jwt").1;
        let kid = format!("kid-{:016x}", rand::random::<u64>());
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
        format!("{}.{rest}", engine.encode(header.to_string()))
    };
    for _ in 0..40 {
        let t = random_kid();
        assert_eq!(
            get(&app, "/api/v1/me", Some(&t)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let during = idp.jwks_requests() - before;
    assert!(during <= 1, "{during} JWKS fetches for 40 unknown kids");
    // And the good token still needs no fetch at all.
    let before = idp.jwks_requests();
    for _ in 0..20 {
        assert_eq!(
            get(&app, "/api/v1/me", Some(&ok)).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        idp.jwks_requests(),
        before,
        "no I/O per request once keys are cached"
    );
    app.stop().await;
}

/// No token input of any shape is a 500: random and mutated tokens, a few hundred of them.
#[tokio::test]
async fn malformed_tokens_never_cause_a_500() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[("GATEHOUSE_RATE_LIMITS", "api=100000/minute")]).await;
    let ok = idp.access_token(&good_claims(&idp.issuer), &Tamper::None);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let mut tokens: Vec<String> = Vec::new();
    for i in 0..200usize {
        let bytes: Vec<u8> = (0..(i % 60 + 1)).map(|_| rand::random::<u8>()).collect();
        tokens.push(URL_SAFE_NO_PAD.encode(&bytes));
        // Flip one character of the good token.
        let mut chars: Vec<char> = ok.chars().collect();
        let at = rand::random_range(0..chars.len());
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        tokens.push(chars.into_iter().collect());
    }
    for header in [
        json!({}),
        json!({"alg": "RS256"}),
        json!({"alg": "RS256", "kid": 7}),
        json!({"alg": "ES256", "kid": "x"}),
        json!({"alg": "HS256"}),
        json!({"alg": "none"}),
        json!({"alg": "PS256"}),
        json!("a string"),
        json!([1, 2]),
    ] {
        for payload in [
            json!({}),
            json!({"iss": 1}),
            json!({"iss": idp.issuer}),
            json!({"iss": idp.issuer, "exp": "soon"}),
            json!(null),
        ] {
            tokens.push(format!("{}.{}.{}", b64(&header), b64(&payload), "c2ln"));
            tokens.push(format!("{}.{}", b64(&header), b64(&payload)));
            tokens.push(format!(
                "{}.{}.{}.{}",
                b64(&header),
                b64(&payload),
                "a",
                "b"
            ));
        }
    }
    tokens.extend([
        "..".into(),
        ".".into(),
        "a..b".into(),
        "\u{7f}".into(),
        " ".repeat(20),
    ]);
    let mut statuses = std::collections::BTreeMap::new();
    for t in &tokens {
        let r = http()
            .get(app.url("/api/v1/github-users"))
            .header("authorization", format!("Bearer {t}"))
            .send()
            .await;
        // A header reqwest itself refuses to send is no request at all.
        let Ok(r) = r else { continue };
        *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
        assert!(r.status().is_client_error(), "{t:?} gave {}", r.status());
    }
    assert!(statuses.values().sum::<i32>() > 400, "{statuses:?}");
    app.stop().await;
}

async fn put(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> reqwest::Response {
    http()
        .put(app.url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .expect("put")
}

/// The write API runs the same validation and snapshot code as `gatehouse import`.
#[tokio::test]
async fn snapshots_through_the_write_api() {
    // Dev mode's machine tokens, so SQLite: dev mode does not serve on PostgreSQL. The feeds'
    // queries run on PostgreSQL in `import.rs`.
    let db = TestDb::sqlite();
    let app = crate::directory::app_with_directory(&db, &[]).await;
    let write = dev_machine_token(&app, "directory.write").await;
    let read = dev_machine_token(&app, "directory.read").await;

    // The seed has two laptops; this CSV keeps both and adds three.
    let csv = "serial,model,owner_email,assigned_at\n\
               C02ALICE1,MacBook Pro 14,alice@example.com,2025-01-15\n\
               C02BOB0001,ThinkPad X1,bob@example.com,\nN1,Mac,new1@example.com,\n\
               N2,Mac,new2@example.com,\nN3,Mac,new3@example.com,\n";
    let r = put(&app, "/api/v1/assets", &write, "text/csv", csv).await;
    assert_eq!(r.status(), StatusCode::OK);
    let outcome: Value = r.json().await.expect("json");
    assert_eq!(
        (
            &outcome["added"],
            &outcome["changed"],
            &outcome["removed"],
            &outcome["applied"]
        ),
        (&json!(3), &json!(0), &json!(0), &json!(true)),
        "{outcome}"
    );

    // JSON rows; bad ones are a 422 listing each by index, and nothing changes.
    let bad = json!([
        {"serial": "N1", "model": "Mac", "owner_email": "new1@example.com"},
        {"serial": "", "model": "Mac", "owner_email": "x@example.com"},
        {"serial": "N9", "model": "Mac", "owner_email": "nope"},
    ]);
    let r = put(
        &app,
        "/api/v1/assets",
        &write,
        "application/json",
        &bad.to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "invalid_rows");
    assert_eq!(body["rows"][0]["index"], 1);
    assert!(
        body["rows"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("serial is empty"))
    );
    assert_eq!(body["rows"][1]["index"], 2);

    // Removing 4 of 5 is refused (409, counts shown); forced, it applies; dry runs change nothing.
    let small = json!([{"serial": "N1", "model": "Mac Pro", "owner_email": "new1@example.com"}]);
    let r = put(
        &app,
        "/api/v1/assets",
        &write,
        "application/json",
        &small.to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (&body["error"], &body["removed"]),
        (&json!("refused"), &json!(4))
    );
    let r = put(
        &app,
        "/api/v1/assets?force=1&dry_run=1",
        &write,
        "application/json",
        &small.to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["applied"], false);
    let r = put(
        &app,
        "/api/v1/assets?force=1",
        &write,
        "application/json",
        &small.to_string(),
    )
    .await;
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (&body["applied"], &body["changed"], &body["removed"]),
        (&json!(true), &json!(1), &json!(4))
    );

    // Lists, as CSV; hidden ones stay out of the read API.
    let lists = "list_email,name,member_email,role,hidden\n\
                 ops@example.com,Ops,bob@example.com,owner,\n\
                 quiet@example.com,Quiet,bob@example.com,member,true\n";
    let r = put(
        &app,
        "/api/v1/distribution-lists?force=1",
        &write,
        "text/csv",
        lists,
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let person: Value = get(&app, "/api/v1/people/bob@example.com", Some(&read))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(person["owner_of"][0]["name"], "Ops");
    assert_eq!(person["member_of"], json!([]), "hidden list not shown");

    // A read-only token cannot write; an unknown body type is a 400.
    let r = put(&app, "/api/v1/assets", &read, "text/csv", csv).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = put(&app, "/api/v1/assets", &write, "application/xml", "<a/>").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Each write and refusal is audited with who and from where.
    let (events, _) =
        gatehouse::store::audit::list(&app.state.store.db(), Some("feed_import"), None, 20, 0)
            .await
            .expect("audit");
    let outcomes: Vec<&str> = events.iter().rev().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["success", "refused", "success", "success"]);
    assert_eq!(events[0].details["via"], "api");
    assert_eq!(
        events[0].actor.as_deref(),
        Some("api (gatehouse-dev-machine)")
    );
    assert_eq!(events[0].client_ip.as_deref(), Some("127.0.0.1"));
    app.stop().await;
}

#[tokio::test]
async fn cors_only_for_the_configured_origins_and_only_on_the_api() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_CORS_ORIGINS", "https://tools.example.com"),
    ])
    .await;
    let preflight = |origin: &'static str, path: &'static str| {
        http()
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let r = preflight("https://tools.example.com", "/api/v1/me")
        .await
        .expect("preflight");
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://tools.example.com"
    );
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(
        r.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let r = preflight("https://evil.example", "/api/v1/me")
        .await
        .expect("preflight");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = preflight("https://tools.example.com", "/profile")
        .await
        .expect("preflight");
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "pages never"
    );
    let token = dev_machine_token(&app, "directory.read").await;
    let r = http()
        .get(app.url("/api/v1/me"))
        .header("origin", "https://tools.example.com")
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://tools.example.com"
    );
    app.stop().await;

    // Not configured: no CORS headers at all.
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let r = http()
        .get(app.url("/api/v1/me"))
        .header("origin", "https://tools.example.com")
        .send()
        .await
        .expect("get");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

/// The OpenAPI document describes every API route of the route table, with its methods,
/// and every described path exists.
#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let r = get(&app, "/api/v1/openapi.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.expect("json");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut api_routes = 0;
    for route in gatehouse::pipeline::table() {
        if !route.path.starts_with("/api/") {
            continue;
        }
        api_routes += 1;
        let described = paths
            .get(route.path)
            .unwrap_or_else(|| panic!("{} is not in the OpenAPI document", route.path));
        for method in route.methods {
            assert!(
                described.get(method.to_lowercase()).is_some(),
                "{method} {} is not described",
                route.path
            );
        }
    }
    assert_eq!(
        api_routes,
        paths.len(),
        "no described path is missing from the table"
    );
    // Token-protected operations say so, with their error answers.
    let users = &paths["/api/v1/github-users"]["get"];
    for status in ["200", "400", "401", "403"] {
        assert!(
            users["responses"].get(status).is_some(),
            "github-users {status}"
        );
    }
    assert_eq!(
        paths["/api/v1/openapi.json"]["get"]["security"],
        json!([{}])
    );
    app.stop().await;
}

pub async fn client_credentials(issuer: &str, client: &str, scope: &str) -> String {
    token_from(
        &format!("{issuer}/token"),
        client,
        &format!("{client}-secret"),
        scope,
    )
    .await
}

/// Real access tokens from node oidc-provider's client-credentials grant (JWT, RS256, `cid`),
/// and a signing-key rotation there picked up without a restart.
#[tokio::test]
async fn node_oidc_provider_machine_tokens_and_a_key_rotation() {
    let db = TestDb::postgres().await;
    // Unknown kids refetch the JWKS at most once a second here (30 s by default).
    // Writes need a listed client; the reader is listed too, so its write is refused by scope.
    let rig = crate::signin::rig(
        db,
        &[
            ("GATEHOUSE_JWKS_COOLDOWN", "1s"),
            (
                "GATEHOUSE_API_CLIENT_IDS",
                "gatehouse-machine,gatehouse-reader",
            ),
        ],
    )
    .await;
    let (app, idp) = (&rig.app, &rig.idp);
    let token = client_credentials(
        &idp.issuer,
        "gatehouse-machine",
        "directory.read directory.write",
    )
    .await;
    let r = get(app, "/api/v1/me", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", challenge(&r));
    let me: Value = r.json().await.expect("json");
    assert_eq!(me["client_id"], "gatehouse-machine");
    assert_eq!(me["scopes"], json!(["directory.read", "directory.write"]));
    assert_eq!(me["claims"]["aud"], "api://default");
    assert_eq!(
        get(app, "/api/v1/github-users", Some(&token))
            .await
            .status(),
        StatusCode::OK
    );

    // The reader may read, not write.
    let reader = client_credentials(&idp.issuer, "gatehouse-reader", "directory.read").await;
    assert_eq!(
        get(app, "/api/v1/github-users", Some(&reader))
            .await
            .status(),
        StatusCode::OK
    );
    let r = put(
        app,
        "/api/v1/assets",
        &reader,
        "text/csv",
        "serial,model,owner_email\n",
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = put(
        app,
        "/api/v1/assets",
        &token,
        "text/csv",
        "serial,model,owner_email\nS1,Mac,a@example.com\n",
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );

    // The provider rotates its signing key: a token under the new kid works once the
    // cool-down since the last JWKS fetch has passed, without a restart.
    let kid = idp.rotate_keys().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = client_credentials(&idp.issuer, "gatehouse-machine", "directory.read").await;
    let header: Value = {
        use base64::Engine;
        let part = fresh.split('.').next().expect("header");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .expect("b64"),
        )
        .expect("json")
    };
    assert_eq!(header["kid"], kid.as_str(), "signed with the new key");
    let r = get(app, "/api/v1/me", Some(&fresh)).await;
    assert_eq!(r.status(), StatusCode::OK, "{}", challenge(&r));
    rig.app.stop().await;
}

/// Rule `api` counts per token principal: one client's flood does not spend another's budget,
/// and requests without a valid token count per client IP.
#[tokio::test]
async fn the_api_rate_limit_counts_per_token() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[("GATEHOUSE_RATE_LIMITS", "api=2/hour")]).await;
    let token = |sub: &str| {
        idp.access_token(
            &with(good_claims(&idp.issuer), json!({"sub": sub})),
            &Tamper::None,
        )
    };
    let (a, b) = (token("svc-a"), token("svc-b"));
    let mut seen = Vec::new();
    for t in [&a, &a, &a, &b, &b, &b] {
        seen.push(get(&app, "/api/v1/me", Some(t)).await.status().as_u16());
    }
    assert_eq!(seen, [200, 200, 429, 200, 200, 429]);
    // Without a token: counted by IP, separately from the tokens above.
    let anon: Vec<u16> = futures::future::join_all((0..3).map(|_| get(&app, "/api/v1/me", None)))
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(anon.iter().filter(|s| **s == 401).count(), 2, "{anon:?}");
    assert_eq!(anon.iter().filter(|s| **s == 429).count(), 1, "{anon:?}");
    app.stop().await;
}

/// What the contract fuzzer found: a NUL in a search term or an email, a misspelt flag, an
/// oversized or control-character value. Each is a clear 4xx, on PostgreSQL (whose text type
/// refuses NUL) as on SQLite, and changes nothing.
#[tokio::test]
async fn malformed_input_is_a_4xx_and_changes_nothing() {
    // PostgreSQL, which refuses NUL in text, so with node oidc-provider's machine tokens (dev
    // mode does not serve on PostgreSQL).
    let db = TestDb::postgres().await;
    crate::directory::seed_directory(&db, &[]).await;
    let rig = crate::signin::rig(db, &[("GATEHOUSE_API_CLIENT_IDS", "gatehouse-machine")]).await;
    let app = rig.app;
    let read = client_credentials(&rig.idp.issuer, "gatehouse-machine", "directory.read").await;
    let write = client_credentials(&rig.idp.issuer, "gatehouse-machine", "directory.write").await;
    for (path, status) in [
        ("/api/v1/github-users?q=ab%00c", StatusCode::BAD_REQUEST),
        ("/api/v1/github-users?q=a%00", StatusCode::BAD_REQUEST),
        ("/api/v1/github-users/a%00b", StatusCode::NOT_FOUND),
        ("/api/v1/people/a%00b", StatusCode::NOT_FOUND),
    ] {
        let r = get(&app, path, Some(&read)).await;
        assert_eq!(r.status(), status, "{path}");
        let body: Value = r.json().await.expect("json");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    // 150 dotted capital Is are 150 characters, though lower-casing makes them 300.
    let wide = "%C4%B0".repeat(150);
    let r = get(&app, &format!("/api/v1/github-users?q={wide}"), Some(&read)).await;
    assert_eq!(r.status(), StatusCode::OK);

    let count = |app: &TestApp| {
        let url = app.url("/api/v1/people/alice@example.com");
        let read = read.clone();
        async move {
            http()
                .get(url)
                .bearer_auth(read)
                .send()
                .await
                .expect("person")
                .status()
        }
    };
    assert_eq!(count(&app).await, StatusCode::OK);
    let one_row = "serial,model,owner_email\nX-1,Laptop,alice@example.com\n";
    let r = put(
        &app,
        "/api/v1/assets?dry_run=Ture&force=1",
        &write,
        "text/csv",
        one_row,
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "a misspelt flag is refused"
    );
    let body: Value = r.json().await.expect("json");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("dry_run")
    );
    let r = put(
        &app,
        "/api/v1/assets?dry_run=1",
        &write,
        "application/json",
        &json!([{"serial": "€".repeat(110), "model": "M", "owner_email": "alice@example.com"},
                {"serial": "X-2", "model": "bad\u{0}model", "owner_email": "alice@example.com"}])
        .to_string(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["rows"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(body.to_string().contains("NUL character"), "{body}");
    // Nothing was replaced: the laptops of the seed are still there.
    let dry = put(
        &app,
        "/api/v1/assets?dry_run=1",
        &write,
        "text/csv",
        one_row,
    )
    .await;
    let dry: Value = dry.json().await.expect("json");
    assert_eq!(dry["removed"], 2, "{dry}");
    app.stop().await;
}

/// An app that lets client `reports` in and refetches keys without a cool-down.
async fn reports_app(idp: &FakeIdp, db: &TestDb) -> TestApp {
    app_with(
        idp,
        db,
        &[
            ("GATEHOUSE_API_CLIENT_IDS", "reports"),
            ("GATEHOUSE_JWKS_COOLDOWN", "0s"),
        ],
    )
    .await
}

#[tokio::test]
async fn a_withdrawn_key_is_refused_once_the_key_set_is_past_its_max_age() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    idp.set_jwks_cache_control("public, max-age=1");
    let db = TestDb::sqlite();
    let app = reports_app(&idp, &db).await;
    let token = idp.access_token(&good_claims(&idp.issuer), &Tamper::None);
    assert_eq!(
        get(&app, "/api/v1/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    idp.withdraw_key();
    // Within the max age the cached key still verifies, with no fetch per request.
    let fetches = idp.jwks_requests();
    assert_eq!(
        get(&app, "/api/v1/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    assert_eq!(idp.jwks_requests(), fetches);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let r = get(&app, "/api/v1/me", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", challenge(&r));
    assert_eq!(idp.jwks_requests(), fetches + 1);
    app.stop().await;
}

/// A token verified once is reused, but never past what it rested on: its key withdrawn and
/// the key set fetched again (here because another token named an unknown key) ends it at
/// once; a copy with another signature is another token, verified on its own. (How long a
/// token is reused, and that an expired one never is: `auth::bearer`'s unit tests.)
#[tokio::test]
async fn a_verified_token_is_reused_only_while_its_key_is_trusted() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = reports_app(&idp, &db).await;
    let token = idp.access_token(&good_claims(&idp.issuer), &Tamper::None);
    for _ in 0..3 {
        let r = get(&app, "/api/v1/me", Some(&token)).await;
        assert_eq!(r.status(), StatusCode::OK, "{}", challenge(&r));
    }
    // The same header and claims with a signature of one changed character: refused, and
    // the reused token is still good.
    let (signed, signature) = token.rsplit_once('.').expect("three parts");
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{signed}.{flipped}{}", &signature[1..]);
    let r = get(&app, "/api/v1/me", Some(&forged)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", challenge(&r));
    assert_eq!(
        get(&app, "/api/v1/me", Some(&token)).await.status(),
        StatusCode::OK
    );
    // The provider withdraws its key; a token naming an unknown key makes Gatehouse fetch the
    // set again, and from then on the reused token is refused.
    idp.withdraw_key();
    let unknown = idp.access_token(&good_claims(&idp.issuer), &Tamper::UnknownKid);
    let fetches = idp.jwks_requests();
    let r = get(&app, "/api/v1/me", Some(&unknown)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", challenge(&r));
    assert!(idp.jwks_requests() > fetches, "the set was fetched again");
    let r = get(&app, "/api/v1/me", Some(&token)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{}", challenge(&r));
    app.stop().await;
}

#[tokio::test]
async fn a_dead_issuer_is_asked_once_per_back_off_under_a_flood_of_tokens() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let other = FakeIdp::start(vec!["openid"]).await;
    idp.set_down(true);
    other.set_down(true);
    let db = TestDb::sqlite();
    let issuers = format!("{},{}", idp.issuer, other.issuer);
    let app = app_with(
        &idp,
        &db,
        &[
            ("GATEHOUSE_API_ISSUERS", issuers.as_str()),
            ("GATEHOUSE_API_CLIENT_IDS", "reports"),
            ("GATEHOUSE_RATE_LIMITS", "api=100000/minute"),
        ],
    )
    .await;
    // The sign-in issuer (its metadata: one discovery of three tries) and a second API issuer.
    for (provider, per_discovery) in [(&idp, 3), (&other, 1)] {
        let token = provider.access_token(&good_claims(&provider.issuer), &Tamper::None);
        let flood = (0..40).map(|_| get(&app, "/api/v1/me", Some(&token)));
        for r in futures::future::join_all(flood).await {
            assert!(
                matches!(
                    r.status(),
                    StatusCode::UNAUTHORIZED | StatusCode::SERVICE_UNAVAILABLE
                ),
                "{}",
                r.status()
            );
        }
        assert_eq!(
            provider.discovery_requests(),
            per_discovery,
            "{}",
            provider.issuer
        );
    }
    app.stop().await;
}

/// The default audience is shared by every app of an Okta org, whose default policy grants
/// every client every scope: a `directory.write` token alone proves nothing. Without
/// `GATEHOUSE_API_CLIENT_IDS` no client may write; with it, only the listed ones. Reads are
/// as before.
#[tokio::test]
async fn writes_need_a_client_named_in_the_allowlist() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let both = json!({"scp": ["directory.read", "directory.write"]});
    let one_row = "serial,model,owner_email\nX-1,Laptop,alice@example.com\n";

    // No allowlist: any client's write is a 403 that names the setting; reads still work.
    let app = app_with(&idp, &db, &[]).await;
    let spa = idp.access_token(
        &with(
            good_claims(&idp.issuer),
            with(both.clone(), json!({"cid": "some-spa"})),
        ),
        &Tamper::None,
    );
    for path in [
        "/api/v1/assets?force=1",
        "/api/v1/distribution-lists?force=1",
    ] {
        let r = put(&app, path, &spa, "text/csv", one_row).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let body: Value = r.json().await.expect("json");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("GATEHOUSE_API_CLIENT_IDS")),
            "{path}: {body}"
        );
    }
    assert_eq!(
        get(&app, "/api/v1/github-users", Some(&spa)).await.status(),
        StatusCode::OK
    );
    app.stop().await;

    // With the allowlist: a listed client writes; an unlisted one is refused as before.
    let app = app_with(
        &idp,
        &db,
        &[("GATEHOUSE_API_CLIENT_IDS", "reports,feeds-loader")],
    )
    .await;
    let loader = idp.access_token(
        &with(
            good_claims(&idp.issuer),
            with(both.clone(), json!({"cid": "feeds-loader"})),
        ),
        &Tamper::None,
    );
    let r = put(
        &app,
        "/api/v1/assets?dry_run=1",
        &loader,
        "text/csv",
        one_row,
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let r = put(&app, "/api/v1/assets?dry_run=1", &spa, "text/csv", one_row).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// Sends a PUT's head announcing a 10 MiB body, then only its first bytes, and returns the
/// status line the server answers with while the rest is still unsent (`None`: no answer in
/// 5 s, as when the server waits for the whole body).
async fn status_before_the_body(app: &TestApp, path: &str, token: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: text/csv\r\nContent-Length: {}\r\n\r\nserial,model,owner_email\n",
        10 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let mut seen = Vec::new();
    let answered = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let mut buf = [0u8; 1024];
        while !seen.windows(2).any(|w| w == b"\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    answered.ok()?;
    let text = String::from_utf8_lossy(&seen).into_owned();
    text.lines().next().map(str::to_string)
}

/// A write the token may not make is refused from the request's head: the server does not
/// read (and buffer, up to 64 MiB) the body first.
#[tokio::test]
async fn writes_are_refused_before_the_body_is_read() {
    let db = TestDb::sqlite();
    let app = crate::directory::app_with_directory(&db, &[]).await;
    let read = dev_machine_token(&app, "directory.read").await;
    for path in ["/api/v1/assets", "/api/v1/distribution-lists"] {
        let status = status_before_the_body(&app, path, &read).await;
        assert_eq!(
            status.as_deref(),
            Some("HTTP/1.1 403 Forbidden"),
            "{path}: a read-only token"
        );
    }
    app.stop().await;

    // A write-scoped token of a client that may not write: the same.
    let idp = FakeIdp::start(vec!["openid"]).await;
    let app = app_with(&idp, &db, &[]).await;
    let spa = idp.access_token(
        &with(
            good_claims(&idp.issuer),
            json!({"cid": "some-spa", "scp": ["directory.read", "directory.write"]}),
        ),
        &Tamper::None,
    );
    let status = status_before_the_body(&app, "/api/v1/assets", &spa).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 403 Forbidden"));
    app.stop().await;
}
