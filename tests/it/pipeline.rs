//! The pipeline's default deny, walked over the whole route table: every route the table does
//! not make public refuses a signed-out request (pages send the browser to sign in and back,
//! JSON routes answer 401, API routes want a token), every admin route refuses a signed-in
//! non-admin, and the framework's own rejections come out in the route's format.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use gatehouse::pipeline::table;
use gatehouse::web::routes::{Access, Format};

use crate::admin::sign_in_as;
use crate::csrf::concrete;
use crate::signin_refusals::app_with;
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::{TestDb, http};

fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn every_route_not_marked_public_refuses_a_signed_out_request() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let mut walked = (0, 0, 0);
    for route in table() {
        let path = concrete(route.path);
        for method in route.methods {
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            let r = http()
                .request(m, app.url(&path))
                .header("accept", "text/html")
                .form(&[("x", "1")])
                .send()
                .await
                .expect("request");
            let what = format!("{method} {}", route.path);
            match (route.meta.access, route.meta.format) {
                (Access::SignedIn | Access::Admin, Format::Html) => {
                    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{what}");
                    let expected = format!(
                        "/auth/login?{}",
                        url::form_urlencoded::Serializer::new(String::new())
                            .append_pair("next", &path)
                            .finish()
                    );
                    assert_eq!(r.headers()["location"], expected.as_str(), "{what}");
                    walked.0 += 1;
                }
                (Access::SignedIn | Access::Admin, Format::Json) => {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
                    assert!(content_type(&r).starts_with("application/json"), "{what}");
                    let body: Value = r.json().await.expect("json");
                    assert_eq!(body["error"], "unauthorized", "{what}");
                    walked.1 += 1;
                }
                (Access::Bearer, _) => {
                    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
                    assert_eq!(
                        r.headers()["www-authenticate"],
                        "Bearer realm=\"gatehouse\""
                    );
                    let body: Value = r.json().await.expect("json");
                    assert_eq!(body["error"], "invalid_token", "{what}");
                    walked.2 += 1;
                }
                // Public routes answer for themselves; none of them asks to sign in first.
                (Access::Public | Access::BearerPublic | Access::Probe, _) => {
                    assert_ne!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
                    let location = r
                        .headers()
                        .get("location")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    assert!(!location.starts_with("/auth/login?next="), "{what}");
                }
            }
        }
    }
    // Pages, cookie JSON routes and API routes were all walked.
    assert!(
        walked.0 >= 10 && walked.1 >= 1 && walked.2 >= 5,
        "{walked:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_admin_route_refuses_a_signed_in_non_admin() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let (jar, csrf) = sign_in_as(&app, &idp, "bob", &["engineering"]).await;
    let mut walked = 0;
    for route in table().iter().filter(|r| r.meta.access == Access::Admin) {
        // Every admin route lives under /admin, and everything under /admin is admin-only.
        assert!(route.path.starts_with("/admin/"), "{}", route.path);
        for method in route.methods {
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            // With a valid CSRF token: the refusal is about who asks, not about the form.
            let r = http()
                .request(m, app.url(&concrete(route.path)))
                .header("cookie", jar.header())
                .header("accept", "text/html")
                .form(&[("csrf_token", csrf.as_str())])
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{method} {}", route.path);
            let page = r.text().await.expect("page");
            assert!(
                page.contains("for administrators"),
                "{method} {}",
                route.path
            );
            // The error page keeps the signed-in header.
            assert!(page.contains("bob@example.com"), "{method} {}", route.path);
            walked += 1;
        }
    }
    assert!(walked >= 9, "{walked}");
    for route in table() {
        if route.path.starts_with("/admin") {
            assert_eq!(route.meta.access, Access::Admin, "{}", route.path);
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn framework_rejections_are_rendered_like_every_other_error() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;

    // The API: a duplicated query parameter, with a good token.
    let token = idp.access_token(&crate::api::good_claims(&idp.issuer), &Tamper::None);
    let r = http()
        .get(app.url("/api/v1/github-users?limit=null&limit=null"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(content_type(&r).starts_with("application/json"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("limit"),
        "{body}"
    );

    // A PUT without a body type the API reads, and one too large.
    let r = http()
        .put(app.url("/api/v1/assets"))
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .expect("request");
    assert!(r.status().is_client_error());
    assert!(content_type(&r).starts_with("application/json"));

    // A cookie JSON route and a page, signed in as an admin.
    let (jar, _) = sign_in_as(&app, &idp, "ann", &["gatehouse-admins"]).await;
    let r = http()
        .get(app.url("/gh/search.json?limit=1&limit=2"))
        .header("cookie", jar.header())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(content_type(&r).starts_with("application/json"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "bad_request");

    let r = http()
        .get(app.url("/admin/users/not-a-number"))
        .header("cookie", jar.header())
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(content_type(&r).starts_with("text/html"));
    let page = r.text().await.expect("page");
    assert!(page.contains("Bad Request") && page.contains("ann@example.com"));
    app.stop().await;
}

/// A rate-limit refusal on a page is a page for a browser, JSON for a script.
#[tokio::test]
async fn a_brake_on_a_page_is_html_for_browsers_and_json_for_scripts() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[("GATEHOUSE_RATE_LIMITS", "default=1/hour")]).await;
    let first = http().get(app.url("/")).send().await.expect("request");
    assert_eq!(first.status(), StatusCode::OK);
    let browser = http()
        .get(app.url("/"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .expect("request");
    assert_eq!(browser.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(browser.headers().contains_key("retry-after"));
    assert!(content_type(&browser).starts_with("text/html"));
    assert!(
        browser
            .text()
            .await
            .expect("page")
            .contains("Too Many Requests")
    );
    let script = http().get(app.url("/")).send().await.expect("request");
    assert_eq!(script.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(content_type(&script).starts_with("application/json"));
    app.stop().await;
}

/// The built-in provider's forms are the provider's: a browser that already holds a Gatehouse
/// session (signing in again as someone else) posts them with its cookie and no CSRF token.
#[tokio::test]
async fn the_dev_provider_is_not_behind_the_session_or_csrf_layers() {
    let db = TestDb::sqlite();
    let app = crate::support::TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let base = app.url("");
    let base = base.trim_end_matches('/');
    let alice = crate::devidp::dev_sign_in(base, "alice").await;
    let start = http()
        .get(app.url("/auth/login?next=/profile"))
        .header("cookie", alice.header())
        .send()
        .await
        .expect("login");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let html = http()
        .get(crate::signin::location(&start, base))
        .header("cookie", alice.header())
        .send()
        .await
        .expect("pick page")
        .text()
        .await
        .expect("html");
    let picked = http()
        .post(app.url("/dev-idp/authorize"))
        .header("cookie", alice.header())
        .header("origin", base)
        .header("sec-fetch-site", "same-origin")
        .form(&crate::devidp::hidden_fields(&html, "bob"))
        .send()
        .await
        .expect("pick");
    assert_eq!(picked.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}
