//! Walks the route table: every state-changing route refuses a signed-in request without the
//! CSRF token, or from another origin, and no route answers a method it does not declare.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::signin::{csrf_from, get_with};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::TestDb;
use crate::support::fake_idp::{FakeIdp, Tamper};

const STATE_CHANGING: &[&str] = &["POST", "PUT", "PATCH", "DELETE"];

pub fn concrete(path: &str) -> String {
    // `{id}`, `{handle}`, `{name}` → a value no row has (so nothing real is changed);
    // the CSRF check comes before any lookup.
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => in_param = true,
            '}' => {
                in_param = false;
                out.push_str("999");
            }
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

#[tokio::test]
async fn every_state_changing_route_needs_the_token_and_our_origin() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    // An admin, so admin routes reach the check too.
    idp.tamper(Tamper::Claims(
        json!({"sub": "ann", "email": "ann@example.com", "groups": ["gatehouse-admins"]}),
    ));
    let (jar, _) = signed_in(&app, &idp).await;
    let page = get_with(&jar, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    let token = csrf_from(&page);
    let client = crate::support::http();

    let mut checked = 0;
    for route in gatehouse::pipeline::table() {
        let url = app.url(&concrete(route.path));
        for method in STATE_CHANGING {
            let declared = route.methods.contains(method);
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            let without = client
                .request(m.clone(), &url)
                .header("cookie", jar.header())
                .form(&[("x", "1")])
                .send()
                .await
                .expect("request");
            if matches!(
                route.meta.access,
                gatehouse::web::routes::Access::Bearer
                    | gatehouse::web::routes::Access::BearerPublic
            ) {
                // Bearer-only routes: exempt from CSRF because a cookie authenticates
                // nothing there, which this proves.
                if declared {
                    assert_eq!(
                        without.status(),
                        StatusCode::UNAUTHORIZED,
                        "{method} {} with only a session cookie",
                        route.path
                    );
                    checked += 1;
                }
                continue;
            }
            if !declared {
                // Refused either way; with a valid token it is the method that is wrong.
                assert!(
                    [StatusCode::BAD_REQUEST, StatusCode::METHOD_NOT_ALLOWED]
                        .contains(&without.status()),
                    "{method} {}: {}",
                    route.path,
                    without.status()
                );
                let with_token = client
                    .request(m.clone(), &url)
                    .header("cookie", jar.header())
                    .header("x-csrf-token", token.as_str())
                    .send()
                    .await
                    .expect("request");
                assert_eq!(
                    with_token.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {} is not declared",
                    route.path
                );
                continue;
            }
            assert_eq!(
                without.status(),
                StatusCode::BAD_REQUEST,
                "{method} {} without a token",
                route.path
            );
            assert!(
                without
                    .text()
                    .await
                    .expect("page")
                    .contains("CSRF validation failed")
            );
            let wrong = client
                .request(m.clone(), &url)
                .header("cookie", jar.header())
                .form(&[("csrf_token", "wrong")])
                .send()
                .await
                .expect("request");
            assert_eq!(
                wrong.status(),
                StatusCode::BAD_REQUEST,
                "{method} {} wrong token",
                route.path
            );
            let foreign = client
                .request(m.clone(), &url)
                .header("cookie", jar.header())
                .header("origin", "https://evil.example")
                .form(&[("csrf_token", token.as_str())])
                .send()
                .await
                .expect("request");
            assert_eq!(
                foreign.status(),
                StatusCode::BAD_REQUEST,
                "{method} {} foreign origin",
                route.path
            );
            let cross_site = client
                .request(m, &url)
                .header("cookie", jar.header())
                .header("sec-fetch-site", "cross-site")
                .header("x-csrf-token", token.as_str())
                .send()
                .await
                .expect("request");
            assert_eq!(
                cross_site.status(),
                StatusCode::BAD_REQUEST,
                "{method} {} cross-site",
                route.path
            );
            checked += 1;
        }
        for method in route.methods {
            if route.path == "/auth/logout" {
                continue; // would end the session the walk uses; checked last, below
            }
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            let r = client
                .request(m, &url)
                .header("cookie", jar.header())
                .header("x-csrf-token", token.as_str())
                .send()
                .await
                .expect("request");
            assert_ne!(
                r.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {} is declared",
                route.path
            );
        }
    }
    assert!(
        checked >= 5,
        "the table has the state-changing routes ({checked})"
    );

    // The header form of the token works; and failures were audited.
    let ok = client
        .post(app.url("/admin/groups"))
        .header("cookie", jar.header())
        .header("x-csrf-token", token.as_str())
        .header("origin", app.base.as_str())
        .form(&[("action", "create_role"), ("name", "via-header")])
        .send()
        .await
        .expect("request");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let audit = get_with(&jar, &app.url("/admin/audit?kind=csrf_failure"))
        .await
        .text()
        .await
        .expect("audit");
    assert!(
        audit.contains("missing token") && audit.contains("cross-origin"),
        "{audit}"
    );
    app.stop().await;
}

#[tokio::test]
async fn origin_null_passes_only_as_a_same_origin_fetch() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let (jar, _) = signed_in(&app, &idp).await;
    let page = get_with(&jar, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    let token = csrf_from(&page);
    let post = |site: &'static str| {
        crate::support::http()
            .post(app.url("/auth/logout"))
            .header("cookie", jar.header())
            .header("origin", "null")
            .header("sec-fetch-site", site)
            .form(&[("csrf_token", token.as_str())])
            .send()
    };
    assert_eq!(
        post("cross-site").await.expect("post").status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post("same-site").await.expect("post").status(),
        StatusCode::BAD_REQUEST
    );
    // A real same-origin form post (from a no-referrer page) signs out.
    assert_eq!(
        post("same-origin").await.expect("post").status(),
        StatusCode::SEE_OTHER
    );
    app.stop().await;
}

/// Every GET route of the table, signed in: the security headers, and no caching of what a
/// signed-in user sees.
#[tokio::test]
async fn every_route_sends_the_security_headers() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    idp.tamper(Tamper::Claims(
        json!({"sub": "ann", "email": "ann@example.com", "groups": ["gatehouse-admins"]}),
    ));
    let (jar, _) = signed_in(&app, &idp).await;
    let mut checked = 0;
    for route in gatehouse::pipeline::table() {
        if !route.methods.contains(&"GET") {
            continue;
        }
        let path = if route.path == "/static/{name}" {
            "/static/gatehouse.css".to_string()
        } else {
            concrete(route.path)
        };
        let r = get_with(&jar, &app.url(&path)).await;
        let h = r.headers();
        let get = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_string()
        };
        let csp = get("content-security-policy");
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
            "form-action 'self'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing from {csp}"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert!(
            get("strict-transport-security").contains("max-age=31536000; includeSubDomains"),
            "{path}"
        );
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert!(!get("referrer-policy").is_empty(), "{path}");
        assert_eq!(get("cross-origin-opener-policy"), "same-origin", "{path}");
        assert_eq!(get("cross-origin-resource-policy"), "same-origin", "{path}");
        if !path.starts_with("/static/") {
            assert_eq!(get("cache-control"), "no-store", "{path}");
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
    app.stop().await;
}
