//! A user's own sessions: listed with the current one marked, revocable by handle, on both
//! session stores; a revocation on one instance ends the session on another sharing Redis.

use reqwest::StatusCode;

use crate::signin::{csrf_from, get_with};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::FakeIdp;
use crate::support::{TestDb, http, redis_url};

fn handles(html: &str) -> Vec<String> {
    html.match_indices("data-testid=\"revoke-")
        .map(|(i, m)| {
            let rest = &html[i + m.len()..];
            rest[..rest.find('"').expect("end")].to_string()
        })
        .collect()
}

async fn list_and_revoke(extra: &[(&str, &str)]) {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, extra).await;
    let (laptop, _) = signed_in(&app, &idp).await;
    let (phone, _) = signed_in(&app, &idp).await;

    let page = get_with(&laptop, &app.url("/account/sessions")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    let found = handles(&html);
    assert_eq!(found.len(), 2, "{html}");
    assert_eq!(html.matches("this browser").count(), 1);
    let laptop_cookie = laptop.header();
    let laptop_id = laptop_cookie.split('=').nth(1).unwrap_or_default();
    assert!(
        !html.contains(laptop_id),
        "the page never shows a session id"
    );
    assert!(html.contains("127.0.0.1"));

    // The phone's handle: the one not marked as this browser.
    let phone_html = get_with(&phone, &app.url("/account/sessions"))
        .await
        .text()
        .await
        .expect("html");
    let current_row = phone_html.find("this browser").expect("marked");
    let phone_handle = handles(&phone_html[current_row..])
        .into_iter()
        .next()
        .expect("handle");

    // Without the CSRF token nothing happens.
    let refused = http()
        .post(app.url(&format!("/account/sessions/{phone_handle}/revoke")))
        .header("cookie", laptop.header())
        .form(&[("csrf_token", "nope")])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        get_with(&phone, &app.url("/profile")).await.status(),
        StatusCode::OK
    );

    let revoked = http()
        .post(app.url(&format!("/account/sessions/{phone_handle}/revoke")))
        .header("cookie", laptop.header())
        .form(&[("csrf_token", csrf_from(&html))])
        .send()
        .await
        .expect("post");
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_with(&phone, &app.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(&laptop, &app.url("/profile")).await.status(),
        StatusCode::OK
    );

    // An unknown handle (or someone else's) is not found.
    let r = http()
        .post(app.url("/account/sessions/0000/revoke"))
        .header("cookie", laptop.header())
        .form(&[("csrf_token", csrf_from(&html))])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn sign_out_others(extra: &[(&str, &str)]) {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, extra).await;
    let (here, _) = signed_in(&app, &idp).await;
    let (phone, _) = signed_in(&app, &idp).await;
    let (tablet, _) = signed_in(&app, &idp).await;
    let html = get_with(&here, &app.url("/account/sessions"))
        .await
        .text()
        .await
        .expect("html");
    // This browser's row comes first; the browser is named in words.
    let first_row = html.find("<tbody>").expect("rows");
    assert!(
        html[first_row..].find("this browser") < html[first_row..].find("</tr>"),
        "{html}"
    );
    assert!(
        html.contains("Unknown browser"),
        "no User-Agent sent: {html}"
    );
    assert!(html.contains("data-testid=\"sign-out-others\""), "{html}");

    let post = |token: String| {
        let (url, cookie) = (app.url("/account/sessions/revoke-others"), here.header());
        async move {
            http()
                .post(url)
                .header("cookie", cookie)
                .form(&[("csrf_token", token)])
                .send()
                .await
                .expect("post")
        }
    };
    assert_eq!(post("nope".into()).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        get_with(&phone, &app.url("/profile")).await.status(),
        StatusCode::OK,
        "nothing ends without the CSRF token"
    );
    assert_eq!(post(csrf_from(&html)).await.status(), StatusCode::SEE_OTHER);
    for other in [&phone, &tablet] {
        assert_eq!(
            get_with(other, &app.url("/profile")).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let after = get_with(&here, &app.url("/account/sessions"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        after.contains("Signed out of 2 other sessions. This one stays signed in."),
        "{after}"
    );
    assert_eq!(handles(&after).len(), 1, "{after}");
    assert!(
        !after.contains("data-testid=\"sign-out-others\""),
        "no one else to sign out"
    );
    // Again: nothing left to end, and said so.
    assert_eq!(post(csrf_from(&html)).await.status(), StatusCode::SEE_OTHER);
    let again = get_with(&here, &app.url("/account/sessions"))
        .await
        .text()
        .await
        .expect("html");
    assert!(again.contains("nothing to end"), "{again}");
    app.stop().await;
}

#[tokio::test]
async fn signing_out_every_other_session_keeps_this_one_with_database_sessions() {
    sign_out_others(&[]).await;
}

#[tokio::test]
async fn signing_out_every_other_session_keeps_this_one_with_redis_sessions() {
    let redis = redis_url();
    sign_out_others(&[("GATEHOUSE_REDIS_URL", &redis)]).await;
}

#[tokio::test]
async fn own_sessions_listed_and_revoked_with_database_sessions() {
    list_and_revoke(&[]).await;
}

#[tokio::test]
async fn own_sessions_listed_and_revoked_with_redis_sessions() {
    let redis = redis_url();
    list_and_revoke(&[("GATEHOUSE_REDIS_URL", &redis)]).await;
}

#[tokio::test]
async fn revoking_on_one_instance_ends_the_session_on_another() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::postgres().await;
    let redis = redis_url();
    let key = "shared-key-".repeat(4);
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let shared = [
        ("GATEHOUSE_REDIS_URL", redis.as_str()),
        ("GATEHOUSE_SESSION_KEY", key.as_str()),
        ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
    ];
    let one = app_with(&idp, &db, &shared).await;
    let two = app_with(&idp, &db, &shared).await;
    let (jar, _) = signed_in(&one, &idp).await;
    // The same cookie works on both instances (no instance-local state).
    assert_eq!(
        get_with(&jar, &two.url("/profile")).await.status(),
        StatusCode::OK
    );
    let html = get_with(&jar, &one.url("/account/sessions"))
        .await
        .text()
        .await
        .expect("html");
    let handle = handles(&html).into_iter().next().expect("one session");
    let r = http()
        .post(one.url(&format!("/account/sessions/{handle}/revoke")))
        .header("cookie", jar.header())
        .form(&[("csrf_token", csrf_from(&html))])
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_with(&jar, &two.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    one.stop().await;
    two.stop().await;
}
