//! Sign-in through the real router against node oidc-provider, driven without a browser
//! (the browser test is in `browser.rs`): happy paths, one-time callbacks, sign-out.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};

use crate::support::idp::{IdpOptions, TestIdp};
use crate::support::{TestApp, TestDb, free_port, http, redis_url};

/// Cookies by name for one origin, as a browser keeps them.
#[derive(Default, Clone)]
pub struct Jar(BTreeMap<String, String>);

impl Jar {
    pub fn take(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let text = value.to_str().expect("ascii");
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = text.to_ascii_lowercase().contains("max-age=0") || value.is_empty();
                if expired {
                    self.0.remove(name);
                } else {
                    self.0.insert(name.to_string(), value.to_string());
                }
            }
        }
    }

    /// Adds every cookie of another jar (a browser keeps one jar per site).
    pub fn take_from(&mut self, other: &Jar) {
        for (k, v) in &other.0 {
            self.0.insert(k.clone(), v.clone());
        }
    }

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

pub fn location(response: &reqwest::Response, base: &str) -> String {
    let loc = response.headers()[LOCATION].to_str().expect("ascii");
    url::Url::parse(base)
        .expect("base")
        .join(loc)
        .expect("location")
        .to_string()
}

pub struct Rig {
    pub idp: TestIdp,
    pub app: TestApp,
    pub _db: TestDb,
}

/// The provider on `localhost`, the app on `127.0.0.1` (different sites), wired together.
pub async fn rig(db: TestDb, extra: &[(&str, &str)]) -> Rig {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let idp = TestIdp::start(IdpOptions {
        redirect_uris: vec![format!("{base}/auth/callback")],
        post_logout_redirect_uris: vec![format!("{base}/")],
        backchannel_logout_uri: Some(format!("{base}/auth/backchannel-logout")),
        ..IdpOptions::default()
    });
    let bind = format!("127.0.0.1:{port}");
    let key = "k".repeat(40);
    let mut pairs = vec![
        ("GATEHOUSE_BIND", bind.as_str()),
        ("GATEHOUSE_PUBLIC_URL", base.as_str()),
        ("GATEHOUSE_DATABASE_URL", db.url()),
        ("GATEHOUSE_OIDC_ISSUER", idp.issuer.as_str()),
        ("GATEHOUSE_OIDC_CLIENT_ID", "gatehouse-web"),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "gatehouse-web-secret"),
        ("GATEHOUSE_SESSION_KEY", key.as_str()),
    ];
    pairs.extend_from_slice(extra);
    let app = TestApp::start(&pairs).await;
    Rig { idp, app, _db: db }
}

/// What the callback answered, with the app's cookies after it.
pub struct Callback {
    pub url: String,
    pub response: reqwest::Response,
    pub jar: Jar,
    /// The app's cookies as they were when the callback was made (login cookie included).
    pub before: Jar,
    /// The provider's cookies: its session.
    pub idp_jar: Jar,
}

/// Starts at `/auth/login?next=…` and signs `login` in at the provider's form; returns the
/// app's answer to the callback.
pub async fn sign_in(rig: &Rig, login: &str, next: &str) -> Callback {
    let client = http();
    let mut app_jar = Jar::default();
    let start = client
        .get(
            rig.app
                .url(&format!("/auth/login?next={}", urlencode(next))),
        )
        .send()
        .await
        .expect("login");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    app_jar.take(&start);
    let (next_url, idp_jar, _) =
        through_provider(rig, &location(&start, &rig.app.base), Jar::default(), login).await;
    let response = client
        .get(&next_url)
        .header("cookie", app_jar.header())
        .send()
        .await
        .expect("callback");
    let mut jar = app_jar.clone();
    jar.take(&response);
    Callback {
        url: next_url,
        response,
        jar,
        before: app_jar,
        idp_jar,
    }
}

/// Follows the provider's redirects from `url` (an authorization request), signing `login` in
/// at its form when it shows one; returns the callback URL it sends the browser to, the
/// provider's cookies, and whether the form was shown.
pub async fn through_provider(
    rig: &Rig,
    url: &str,
    mut idp_jar: Jar,
    login: &str,
) -> (String, Jar, bool) {
    let client = http();
    let mut next_url = url.to_string();
    assert!(next_url.starts_with(&rig.idp.issuer), "{next_url}");
    let mut posted = false;
    for _ in 0..8 {
        if next_url.starts_with(&rig.app.base) {
            break;
        }
        let r = if next_url.contains("/interaction/") && !posted {
            let page = client
                .get(&next_url)
                .header("cookie", idp_jar.header())
                .send()
                .await
                .expect("interaction page");
            idp_jar.take(&page);
            posted = true;
            client
                .post(&next_url)
                .header("cookie", idp_jar.header())
                .form(&[("prompt", "login"), ("login", login), ("password", "x")])
                .send()
                .await
                .expect("login form")
        } else {
            client
                .get(&next_url)
                .header("cookie", idp_jar.header())
                .send()
                .await
                .expect("provider hop")
        };
        idp_jar.take(&r);
        next_url = location(&r, &rig.idp.issuer);
    }
    assert!(
        next_url.starts_with(&format!("{}/auth/callback", rig.app.base)),
        "{next_url}"
    );
    (next_url, idp_jar, posted)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn get_with(jar: &Jar, url: &str) -> reqwest::Response {
    http()
        .get(url)
        .header("cookie", jar.header())
        .send()
        .await
        .expect("request")
}

/// The CSRF token of the first form on a page.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    html[start..start + html[start..].find('"').expect("end")].to_string()
}

async fn full_sign_in_and_out(rig: Rig) {
    let cb = sign_in(&rig, "alice", "/profile").await;
    assert_eq!(
        cb.response.status(),
        StatusCode::OK,
        "a same-origin hop, not a redirect"
    );
    let cookies: Vec<String> = cb
        .response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(
        session_cookie.contains("SameSite=Strict"),
        "{session_cookie}"
    );
    assert!(session_cookie.contains("Path=/"), "{session_cookie}");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("gatehouse_login=") && c.contains("Max-Age=0")),
        "the login cookie is cleared: {cookies:?}"
    );
    assert_eq!(cb.response.headers()["referrer-policy"], "no-referrer");
    let html = cb.response.text().await.expect("hop page");
    assert!(
        html.contains("http-equiv=\"refresh\" content=\"0;url=/profile\""),
        "{html}"
    );

    let profile = get_with(&cb.jar, &rig.app.url("/profile")).await;
    assert_eq!(profile.status(), StatusCode::OK);
    let page = profile.text().await.expect("profile");
    assert!(page.contains("alice@example.com"), "{page}");
    assert!(page.contains("gatehouse-admins, engineering"));
    assert!(page.contains("data-testid=\"admin\">yes<"));

    // The callback works once: replaying it (same code, same cookie) fails cleanly.
    let replay = http()
        .get(&cb.url)
        .header("cookie", cb.before.header())
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(replay.text().await.expect("page").contains("Sign in again"));

    // Sign-out needs the session's CSRF token.
    let no_token = http()
        .post(rig.app.url("/auth/logout"))
        .header("cookie", cb.jar.header())
        .form(&[("csrf_token", "wrong")])
        .send()
        .await
        .expect("logout without token");
    assert_eq!(no_token.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        get_with(&cb.jar, &rig.app.url("/profile")).await.status(),
        StatusCode::OK
    );

    let logout = http()
        .post(rig.app.url("/auth/logout"))
        .header("cookie", cb.jar.header())
        .form(&[("csrf_token", csrf_from(&page))])
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::OK);
    // Back on the start page (after the provider's logout), it says so once.
    let note = logout
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("gatehouse_signed_out=1;"))
        .expect("a signed-out note")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let home = http()
        .get(rig.app.url("/"))
        .header("cookie", &note)
        .send()
        .await
        .expect("home");
    assert!(
        home.headers()[SET_COOKIE]
            .to_str()
            .expect("ascii")
            .starts_with("gatehouse_signed_out=;"),
        "the note is dropped once shown"
    );
    assert!(
        home.text()
            .await
            .expect("home")
            .contains("You are signed out.")
    );
    let plain = http().get(rig.app.url("/")).send().await.expect("home");
    assert!(
        !plain
            .text()
            .await
            .expect("home")
            .contains("You are signed out.")
    );
    let html = logout.text().await.expect("hop");
    let end_session = format!("{}/session/end", rig.idp.issuer);
    assert!(
        html.contains(&end_session),
        "goes on to the provider's logout: {html}"
    );
    assert!(html.contains("id_token_hint="), "{html}");
    // The copied cookie is dead: the record is gone server-side.
    // A browser still holding it is told so, with a way back, and the cookie is cleared.
    let after = get_with(&cb.jar, &rig.app.url("/profile?tab=lists")).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let cleared = after.headers()[SET_COOKIE].to_str().expect("ascii");
    assert!(
        cleared.starts_with("gatehouse_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let page = after.text().await.expect("page");
    assert!(page.contains("<h1>You were signed out</h1>"), "{page}");
    assert!(
        page.contains("href=\"/auth/login?next=%2Fprofile%3Ftab%3Dlists\""),
        "{page}"
    );
    // A script's JSON call or a form post is refused as before, without the page.
    let json = get_with(&cb.jar, &rig.app.url("/gh/search.json?q=a")).await;
    assert_eq!(json.status(), StatusCode::UNAUTHORIZED);
    assert!(
        json.text()
            .await
            .expect("json")
            .contains("\"unauthorized\"")
    );
    // Without a live session, sign-out just goes home.
    let again = http()
        .post(rig.app.url("/auth/logout"))
        .header("cookie", cb.jar.header())
        .form(&[("csrf_token", "x")])
        .send()
        .await
        .expect("second logout");
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()[LOCATION], "/");
    rig.app.stop().await;
}

#[tokio::test]
async fn sign_in_and_out_with_database_sessions() {
    full_sign_in_and_out(rig(TestDb::sqlite(), &[]).await).await;
}

#[tokio::test]
async fn sign_in_and_out_with_redis_sessions_on_postgres() {
    let redis = redis_url();
    full_sign_in_and_out(rig(TestDb::postgres().await, &[("GATEHOUSE_REDIS_URL", &redis)]).await)
        .await;
}

#[tokio::test]
async fn bob_is_not_an_admin_and_next_is_honoured() {
    let rig = rig(TestDb::sqlite(), &[]).await;
    let cb = sign_in(&rig, "bob", "/profile?tab=lists").await;
    let html = cb.response.text().await.expect("hop");
    assert!(html.contains("url=/profile?tab=lists"), "{html}");
    let page = get_with(&cb.jar, &rig.app.url("/profile"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("bob@example.com") && page.contains("data-testid=\"admin\">no<"));
    rig.app.stop().await;
}

#[tokio::test]
async fn foreign_next_targets_land_on_the_profile() {
    let rig = rig(TestDb::sqlite(), &[]).await;
    for next in ["https://evil.example/", "//evil.example/x"] {
        let cb = sign_in(&rig, "alice", next).await;
        let html = cb.response.text().await.expect("hop");
        assert!(
            html.contains("content=\"0;url=/profile\""),
            "{next}: {html}"
        );
        assert!(!html.contains("evil.example"), "{next}");
    }
    rig.app.stop().await;
}

#[tokio::test]
async fn signed_out_pages_send_you_to_sign_in_and_json_gets_401() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let r = http()
        .get(app.url("/profile?x=1"))
        .send()
        .await
        .expect("profile");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/auth/login?next=%2Fprofile%3Fx%3D1");
    // A deep link from another site arrives without the Strict cookie: one same-origin hop.
    let r = http()
        .get(app.url("/profile"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .send()
        .await
        .expect("deep link");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .await
            .expect("hop")
            .contains("content=\"0;url=/profile\"")
    );
    // A bogus cookie is just signed out.
    let r = http()
        .get(app.url("/profile"))
        .header("cookie", "gatehouse_session=forged")
        .send()
        .await
        .expect("forged");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("You were signed out")
    );
    app.stop().await;
}

#[tokio::test]
async fn login_on_another_host_moves_to_the_public_url_first() {
    let rig = rig(TestDb::sqlite(), &[]).await;
    let port = rig.app.base.rsplit(':').next().expect("port").to_string();
    let r = http()
        .get(format!("http://localhost:{port}/auth/login?next=/profile"))
        .send()
        .await
        .expect("other host");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION].to_str().expect("ascii"),
        format!("{}/auth/login?next=/profile", rig.app.base)
    );
    rig.app.stop().await;
}

#[tokio::test]
async fn callback_without_a_login_cookie_or_with_an_idp_error_is_a_clear_400() {
    let rig = rig(TestDb::sqlite(), &[]).await;
    let r = http()
        .get(rig.app.url("/auth/callback?code=abc&state=xyz"))
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .expect("page")
            .contains("expired or was already used")
    );

    // A real transaction, answered by the provider with an error.
    let start = http()
        .get(rig.app.url("/auth/login"))
        .send()
        .await
        .expect("login");
    let mut jar = Jar::default();
    jar.take(&start);
    let authorize = location(&start, &rig.app.base);
    let state: String = url::Url::parse(&authorize)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let r = get_with(
        &jar,
        &rig.app.url(&format!(
            "/auth/callback?error=access_denied&error_description=nope&state={state}&iss={}",
            urlencode(&rig.idp.issuer)
        )),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.expect("page").contains("did not let you in"));
    rig.app.stop().await;
}

#[tokio::test]
async fn a_signing_key_rotation_at_the_provider_is_picked_up_without_restart() {
    let rig = rig(TestDb::sqlite(), &[("GATEHOUSE_JWKS_COOLDOWN", "1s")]).await;
    let first = sign_in(&rig, "alice", "/profile").await;
    assert_eq!(first.response.status(), StatusCode::OK);
    let new_kid = rig.idp.rotate_keys().await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = sign_in(&rig, "bob", "/profile").await;
    assert_eq!(
        second.response.status(),
        StatusCode::OK,
        "signed with {new_kid}"
    );
    let page = get_with(&second.jar, &rig.app.url("/profile"))
        .await
        .text()
        .await
        .expect("page");
    assert!(page.contains("bob@example.com"));
    let stats: serde_json::Value = http()
        .get(format!("{}/__test/stats", rig.idp.issuer))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(
        stats["jwks_requests"], 2,
        "one fetch at start, one for the new kid"
    );
    assert_eq!(stats["discovery_requests"], 1, "discovery is cached");
    rig.app.stop().await;
}
