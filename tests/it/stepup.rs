//! Step-up for admin changes: a change needs a sign-in at the provider no older than
//! `GATEHOUSE_ADMIN_MAX_AGE`; otherwise nothing changes, and the admin goes through a fresh
//! sign-in (`max_age=0`, `prompt=login`) that lands on the form's page, where they submit it
//! again. The callback refuses a "fresh" sign-in the provider answered from an older one.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::signin::{Jar, csrf_from, get_with, location};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::{TestApp, TestDb, http};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn admin_claims(auth_time: serde_json::Value) -> Tamper {
    Tamper::Claims(json!({
        "sub": "ann", "email": "ann@example.com", "name": "Ann",
        "groups": ["gatehouse-admins"], "auth_time": auth_time,
    }))
}

async fn post_from(
    app: &TestApp,
    jar: &Jar,
    path: &str,
    form: &[(&str, &str)],
    referer: &str,
) -> reqwest::Response {
    http()
        .post(app.url(path))
        .header("cookie", jar.header())
        .header("referer", referer)
        .form(form)
        .send()
        .await
        .expect("post")
}

/// The provider's side of a step-up: the authorization URL the app sent the browser to.
fn authorize_query(app: &TestApp, idp: &FakeIdp, r: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "303, never 307/308");
    let url = location(r, &app.base);
    assert!(
        url.starts_with(&format!("{}/authorize?", idp.issuer)),
        "{url}"
    );
    url::Url::parse(&url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

/// Completes the sign-in a step-up started, the provider answering with `auth_time`.
async fn finish_fresh_sign_in(
    app: &TestApp,
    idp: &FakeIdp,
    jar: &Jar,
    step_up: &reqwest::Response,
    auth_time: serde_json::Value,
) -> (reqwest::Response, Jar) {
    let q = authorize_query(app, idp, step_up);
    let mut jar = jar.clone();
    jar.take(step_up);
    idp.set_nonce(&q["nonce"]);
    idp.tamper(admin_claims(auth_time));
    let r = get_with(
        &jar,
        &app.url(&format!("/auth/callback?code=c&state={}", q["state"])),
    )
    .await;
    idp.tamper(Tamper::None);
    jar.take(&r);
    (r, jar)
}

/// Ann signs in (the provider saying she authenticated at `auth_time`); her cookies and the
/// CSRF token of the groups page.
async fn admin_signed_in(
    app: &TestApp,
    idp: &FakeIdp,
    auth_time: serde_json::Value,
) -> (Jar, String) {
    idp.tamper(admin_claims(auth_time));
    let (jar, _) = signed_in(app, idp).await;
    idp.tamper(Tamper::None);
    let csrf = csrf_from(&groups_page(app, &jar).await);
    (jar, csrf)
}

/// The "create a role" form of the groups page, filled in.
fn new_role(csrf: &str) -> [(&'static str, &str); 3] {
    [
        ("action", "create_role"),
        ("name", "auditors"),
        ("csrf_token", csrf),
    ]
}

async fn groups_page(app: &TestApp, jar: &Jar) -> String {
    let r = get_with(jar, &app.url("/admin/groups")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.expect("page")
}

#[tokio::test]
async fn an_admin_change_from_an_old_sign_in_goes_through_a_fresh_one_and_is_not_replayed() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[("GATEHOUSE_ADMIN_MAX_AGE", "15m")]).await;
    // Signed in at the provider an hour ago (its session was reused for this sign-in).
    idp.tamper(admin_claims(json!(now() - 3600)));
    let (jar, _) = signed_in(&app, &idp).await;
    idp.tamper(Tamper::None);

    // Reading admin pages needs no step-up.
    let page = groups_page(&app, &jar).await;
    let csrf = csrf_from(&page);
    let form = new_role(&csrf);
    let from = app.url("/admin/groups");

    // A forged form (no CSRF token) is refused as such, not sent to sign in.
    let forged = post_from(&app, &jar, "/admin/groups", &form[..2], &from).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert!(
        forged
            .text()
            .await
            .expect("page")
            .contains("CSRF validation failed")
    );

    // The change: sent to a fresh sign-in, nothing changed.
    let r = post_from(&app, &jar, "/admin/groups", &form, &from).await;
    let q = authorize_query(&app, &idp, &r);
    assert_eq!(q["max_age"], "0");
    assert_eq!(q["prompt"], "login");
    assert!(!groups_page(&app, &jar).await.contains("auditors"));

    // A provider that ignores prompt=login and answers from its hour-old session: refused.
    let (refused, _) = finish_fresh_sign_in(&app, &idp, &jar, &r, json!(now() - 3600)).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let text = refused.text().await.expect("page");
    assert!(text.contains("reused one from"), "{text}");
    // One that does not say when it authenticated: refused too.
    let r = post_from(&app, &jar, "/admin/groups", &form, &from).await;
    let (refused, _) = finish_fresh_sign_in(&app, &idp, &jar, &r, json!(null)).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let text = refused.text().await.expect("page");
    assert!(text.contains("no auth_time"), "{text}");

    // A real fresh sign-in: back on the form's page with a notice; the form was not replayed.
    let r = post_from(&app, &jar, "/admin/groups", &form, &from).await;
    let (hop, fresh) = finish_fresh_sign_in(&app, &idp, &jar, &r, json!(now())).await;
    assert_eq!(hop.status(), StatusCode::OK);
    let hop = hop.text().await.expect("hop");
    assert!(hop.contains("url=/admin/groups\""), "{hop}");
    let page = groups_page(&app, &fresh).await;
    assert!(page.contains("You signed in again"), "{page}");
    assert!(!page.contains("auditors"), "the POST was not replayed");
    // Submitted again, it is made.
    let csrf = csrf_from(&page);
    let form = new_role(&csrf);
    let made = post_from(&app, &fresh, "/admin/groups", &form, &from).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert!(location(&made, &app.base).contains("/admin/groups"));
    assert!(groups_page(&app, &fresh).await.contains("auditors"));
    // The notice showed once.
    assert!(
        !groups_page(&app, &fresh)
            .await
            .contains("You signed in again")
    );
    app.stop().await;
}

/// The landing page is the form's own only when the `Referer` is one of ours; a sign-in
/// without `auth_time` steps up at the first change; `0` turns step-up off.
#[tokio::test]
async fn the_landing_page_is_ours_and_a_zero_max_age_turns_step_up_off() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    for (referer, landing) in [
        ("http://evil.example/admin/groups", "/admin/users"),
        (&*app.url("/profile"), "/admin/users"),
        (&*app.url("/admin/sync?x=1"), "/admin/sync?x=1"),
    ] {
        // A provider that sends no auth_time by default (a fresh sign-in each time: the
        // callback ends the session it replaces).
        let (jar, csrf) = admin_signed_in(&app, &idp, json!(null)).await;
        let r = post_from(&app, &jar, "/admin/groups", &new_role(&csrf), referer).await;
        let (hop, _) = finish_fresh_sign_in(&app, &idp, &jar, &r, json!(now())).await;
        let hop = hop.text().await.expect("hop");
        assert!(
            hop.contains(&format!("url={landing}\"")),
            "{referer}: {hop}"
        );
    }
    app.stop().await;

    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[("GATEHOUSE_ADMIN_MAX_AGE", "0")]).await;
    let (jar, csrf) = admin_signed_in(&app, &idp, json!(now() - 86_400)).await;
    let form = new_role(&csrf);
    let r = post_from(
        &app,
        &jar,
        "/admin/groups",
        &form,
        &app.url("/admin/groups"),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r, &app.base).contains("/admin/groups"));
    assert!(groups_page(&app, &jar).await.contains("auditors"));
    app.stop().await;
}

/// With a real provider (node oidc-provider, which sends `auth_time` only when asked): the
/// first change of a session steps up, the provider asks for the password again although its
/// own session is live, and the admin lands back on the form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_oidc_provider_authenticates_the_admin_again_before_a_change() {
    use crate::signin::{rig, sign_in, through_provider};
    let rig = rig(TestDb::sqlite(), &[]).await;
    let cb = sign_in(&rig, "alice", "/admin/groups").await;
    assert_eq!(cb.response.status(), StatusCode::OK);
    let jar = cb.jar.clone();
    let csrf = csrf_from(&groups_page(&rig.app, &jar).await);
    let form = new_role(&csrf);
    let from = rig.app.url("/admin/groups");
    let r = post_from(&rig.app, &jar, "/admin/groups", &form, &from).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let authorize = location(&r, &rig.app.base);
    assert!(authorize.contains("max_age=0"), "{authorize}");
    assert!(authorize.contains("prompt=login"), "{authorize}");
    let mut fresh = jar.clone();
    fresh.take(&r);
    let (callback, _, asked) =
        through_provider(&rig, &authorize, cb.idp_jar.clone(), "alice").await;
    assert!(asked, "the provider showed its login form again");
    let hop = get_with(&fresh, &callback).await;
    assert_eq!(hop.status(), StatusCode::OK);
    fresh.take(&hop);
    assert!(
        hop.text()
            .await
            .expect("hop")
            .contains("url=/admin/groups\"")
    );
    let page = groups_page(&rig.app, &fresh).await;
    assert!(page.contains("You signed in again"), "{page}");
    assert!(!page.contains("auditors"));
    let csrf = csrf_from(&page);
    let form = new_role(&csrf);
    let made = post_from(&rig.app, &fresh, "/admin/groups", &form, &from).await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert!(groups_page(&rig.app, &fresh).await.contains("auditors"));
    rig.app.stop().await;
}
