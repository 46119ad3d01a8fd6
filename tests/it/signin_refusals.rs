//! Every way the callback must refuse, end to end through the router, against a provider
//! that misbehaves on purpose. Each refusal is a clear 400 page and a stored audit event.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::signin::{Jar, get_with, location};
use crate::support::fake_idp::{CLIENT_ID, CLIENT_SECRET, FakeIdp, Tamper};
use crate::support::{TestApp, TestDb, http};

pub struct Attempt {
    pub jar: Jar,
    pub state: String,
    pub nonce: String,
    pub scope: String,
}

pub async fn start(app: &TestApp, idp: &FakeIdp) -> Attempt {
    start_at(&app.base, idp).await
}

/// `start` for a Gatehouse at `base` (a process of its own, say).
pub async fn start_at(base: &str, idp: &FakeIdp) -> Attempt {
    let r = http()
        .get(format!("{base}/auth/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut jar = Jar::default();
    jar.take(&r);
    let url = location(&r, base);
    assert!(
        url.starts_with(&format!("{}/authorize?", idp.issuer.trim_end_matches('/'))),
        "{url}"
    );
    let q: HashMap<String, String> = url::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["client_id"], CLIENT_ID);
    // Built from PUBLIC_URL (its scheme may be https in front of this plain-HTTP port).
    let host_and_path = format!("{base}/auth/callback").replace("http://", "://");
    assert!(
        q["redirect_uri"].ends_with(&host_and_path),
        "{}",
        q["redirect_uri"]
    );
    idp.set_nonce(&q["nonce"]);
    Attempt {
        jar,
        state: q["state"].clone(),
        nonce: q["nonce"].clone(),
        scope: q["scope"].clone(),
    }
}

pub async fn callback(app: &TestApp, attempt: &Attempt, query: &str) -> reqwest::Response {
    get_with(&attempt.jar, &app.url(&format!("/auth/callback?{query}"))).await
}

async fn last_login_audit(db: &TestDb) -> Value {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("sqlite");
    let (outcome, details, ip): (String, String, Option<String>) = sqlx::query_as(
        "SELECT outcome, details, client_ip FROM audit_events WHERE kind = 'login' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("an audit event");
    let mut v: Value = serde_json::from_str(&details).expect("json");
    v["outcome"] = json!(outcome);
    v["client_ip"] = json!(ip);
    v
}

pub async fn app_for(idp: &FakeIdp, db: &TestDb) -> TestApp {
    app_with(idp, db, &[]).await
}

pub async fn app_with(idp: &FakeIdp, db: &TestDb, extra: &[(&str, &str)]) -> TestApp {
    let key = "k".repeat(40);
    let mut pairs = vec![
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_OIDC_ISSUER", idp.issuer.as_str()),
        ("GATEHOUSE_OIDC_CLIENT_ID", CLIENT_ID),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("GATEHOUSE_SESSION_KEY", key.as_str()),
        ("GATEHOUSE_JWKS_COOLDOWN", "0s"),
    ];
    pairs.extend_from_slice(extra);
    TestApp::start(&pairs).await
}

/// A complete sign-in at the (behaving) fake provider; the app's cookies afterwards.
pub async fn signed_in(app: &TestApp, idp: &FakeIdp) -> (Jar, reqwest::Response) {
    signed_in_at(&app.base, idp).await
}

/// `signed_in` for a Gatehouse at `base`.
pub async fn signed_in_at(base: &str, idp: &FakeIdp) -> (Jar, reqwest::Response) {
    let attempt = start_at(base, idp).await;
    let query = format!("code=c&state={}", attempt.state);
    let r = get_with(&attempt.jar, &format!("{base}/auth/callback?{query}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut jar = attempt.jar.clone();
    jar.take(&r);
    (jar, r)
}

#[tokio::test]
async fn the_fake_provider_signs_in_when_it_behaves() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile"]).await;
    let db = TestDb::sqlite();
    let app = app_for(&idp, &db).await;
    let attempt = start(&app, &idp).await;
    // Only scopes the provider offers are asked for.
    assert_eq!(attempt.scope, "openid email profile");
    let r = callback(&app, &attempt, &format!("code=c&state={}", attempt.state)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let audit = last_login_audit(&db).await;
    assert_eq!(audit["outcome"], "success");
    assert_eq!(audit["client_ip"], "127.0.0.1");
    app.stop().await;
}

#[tokio::test]
async fn every_bad_callback_is_refused_with_its_reason() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let db = TestDb::sqlite();
    let app = app_for(&idp, &db).await;
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "bad signature",
            Tamper::ForeignKeySameKid,
            "id_token:bad_signature",
        ),
        ("alg none", Tamper::AlgNone, "id_token:disallowed_algorithm"),
        (
            "HS256 keyed with the public key",
            Tamper::Hs256WithPublicKey,
            "id_token:disallowed_algorithm",
        ),
        ("unknown kid", Tamper::UnknownKid, "id_token:unknown_key"),
        (
            "wrong iss",
            Tamper::Claims(json!({"iss": "https://evil.example"})),
            "id_token:wrong_issuer",
        ),
        (
            "wrong aud",
            Tamper::Claims(json!({"aud": "other-client"})),
            "id_token:wrong_audience",
        ),
        (
            "expired",
            Tamper::Claims(json!({"exp": now - 600})),
            "id_token:expired",
        ),
        (
            "missing iat",
            Tamper::Claims(json!({"iat": null})),
            "id_token:missing_claim",
        ),
        (
            "wrong nonce",
            Tamper::Claims(json!({"nonce": "replayed"})),
            "id_token:nonce_mismatch",
        ),
        (
            "missing nonce",
            Tamper::Claims(json!({"nonce": null})),
            "id_token:missing_claim",
        ),
        (
            "missing sub",
            Tamper::Claims(json!({"sub": null})),
            "id_token:missing_claim",
        ),
        (
            "userinfo about someone else",
            Tamper::UserinfoSub("eve".into()),
            "userinfo_sub_mismatch",
        ),
    ];
    for (name, tamper, reason) in cases {
        idp.tamper(tamper);
        let attempt = start(&app, &idp).await;
        let r = callback(&app, &attempt, &format!("code=c&state={}", attempt.state)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(
            r.headers().get_all("set-cookie").iter().all(|c| !c
                .to_str()
                .unwrap_or_default()
                .starts_with("gatehouse_session=")),
            "{name}: no session"
        );
        assert!(
            r.text().await.expect("page").contains("Sign in again"),
            "{name}"
        );
        let audit = last_login_audit(&db).await;
        assert_eq!(audit["outcome"], "failure", "{name}");
        assert_eq!(audit["reason"], reason, "{name}: {audit}");
        assert_eq!(audit["client_ip"], "127.0.0.1", "{name}");
    }
    app.stop().await;
}

#[tokio::test]
async fn state_and_issuer_mismatches_and_replays_are_refused() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_for(&idp, &db).await;

    let attempt = start(&app, &idp).await;
    let r = callback(&app, &attempt, "code=c&state=forged").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(last_login_audit(&db).await["reason"], "state_mismatch");
    // The transaction is used up by the failed attempt: the right state now finds nothing.
    let r = callback(&app, &attempt, &format!("code=c&state={}", attempt.state)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(last_login_audit(&db).await["reason"], "unknown_transaction");

    let attempt = start(&app, &idp).await;
    let r = callback(
        &app,
        &attempt,
        &format!(
            "code=c&state={}&iss=https%3A%2F%2Fevil.example",
            attempt.state
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(last_login_audit(&db).await["reason"], "issuer_mismatch");

    // A good callback, then the same one again.
    let attempt = start(&app, &idp).await;
    let query = format!("code=c&state={}", attempt.state);
    assert_eq!(
        callback(&app, &attempt, &query).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        callback(&app, &attempt, &query).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(last_login_audit(&db).await["reason"], "unknown_transaction");
    let _ = attempt.nonce;

    // The provider's own error response.
    let attempt = start(&app, &idp).await;
    let r = callback(
        &app,
        &attempt,
        &format!(
            "error=access_denied&error_description=no&state={}",
            attempt.state
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        last_login_audit(&db).await["reason"],
        "provider_error:access_denied"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_unreachable_provider_is_a_503_page_not_a_crash() {
    let db = TestDb::sqlite();
    let port = crate::support::free_port();
    let app = TestApp::start(&[
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_OIDC_ISSUER", &format!("http://127.0.0.1:{port}")),
        ("GATEHOUSE_OIDC_CLIENT_ID", CLIENT_ID),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("GATEHOUSE_SESSION_KEY", &"k".repeat(40)),
    ])
    .await;
    // Serving started although the provider is down; sign-in says so clearly.
    let r = http()
        .get(app.url("/auth/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.expect("page").contains("try again"));
    assert_eq!(
        http()
            .get(app.url("/"))
            .send()
            .await
            .expect("home")
            .status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn session_storage_down_is_a_503_page_not_a_crash() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let dead = format!("redis://127.0.0.1:{}", crate::support::free_port());
    let app = app_with(&idp, &db, &[("GATEHOUSE_REDIS_URL", &dead)]).await;
    let r = http()
        .get(app.url("/auth/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = http()
        .get(app.url("/profile"))
        .header("cookie", "gatehouse_session=anything")
        .send()
        .await
        .expect("profile");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = http()
        .get(app.url("/auth/callback?code=c&state=s"))
        .header("cookie", "gatehouse_login=anything")
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // A state change on a public route with a session cookie and no CSRF token: the session
    // cannot be looked up, so neither can its token; refused, never let through.
    let r = http()
        .post(app.url("/auth/logout"))
        .header("cookie", "gatehouse_session=anything")
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Refused by the CSRF layer itself, not only by the handler behind it.
    assert!(r.headers().contains_key("retry-after"));
    let page = r.text().await.expect("page");
    assert!(page.contains("Your session could not be checked"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn a_provider_that_promises_iss_must_send_it() {
    let idp = FakeIdp::start(vec!["openid", "email"]).await;
    idp.promise_iss();
    let db = TestDb::sqlite();
    let app = app_for(&idp, &db).await;
    let attempt = start(&app, &idp).await;
    let r = callback(&app, &attempt, &format!("code=c&state={}", attempt.state)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(last_login_audit(&db).await["reason"], "missing_issuer");

    let attempt = start(&app, &idp).await;
    let iss: String = url::form_urlencoded::byte_serialize(idp.issuer.as_bytes()).collect();
    let r = callback(
        &app,
        &attempt,
        &format!("code=c&state={}&iss={iss}", attempt.state),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_signs_in_as_written() {
    // Auth0 writes its issuer with a `/`; it is kept and compared exactly.
    let idp = FakeIdp::start_as(vec!["openid", "email"], "/").await;
    assert!(idp.issuer.ends_with('/'));
    let db = TestDb::sqlite();
    let app = app_for(&idp, &db).await;
    let (_, r) = signed_in(&app, &idp).await;
    assert_eq!(r.status(), StatusCode::OK);

    // A token that names the issuer without the slash is someone else's.
    let bare = idp.issuer.trim_end_matches('/').to_string();
    idp.tamper(Tamper::Claims(json!({ "iss": bare })));
    let attempt = start(&app, &idp).await;
    let r = callback(&app, &attempt, &format!("code=c&state={}", attempt.state)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}
