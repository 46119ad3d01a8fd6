//! The identity lifecycle through a local Okta org: users with live sessions are re-checked
//! every interval (one lease across instances), suspension, deprovisioning and deletion end
//! every session on every instance, other statuses and every error change nothing, rate limits
//! are obeyed; groups at the claim's cap are completed at sign-in; `gatehouse check` tries the
//! token.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::admin::sign_in_as;
use crate::signin::{Jar, get_with};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::fake_okta::FakeOkta;
use crate::support::{TestApp, TestDb, redis_url};

async fn profile_status(app: &TestApp, jar: &Jar) -> StatusCode {
    get_with(jar, &app.url("/profile")).await.status()
}

/// Waits until `jar`'s session is gone (its profile sends to sign-in).
async fn until_signed_out(app: &TestApp, jar: &Jar, who: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while profile_status(app, jar).await == StatusCode::OK {
        assert!(Instant::now() < deadline, "{who} was never signed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn user_page(app: &TestApp, admin: &Jar, email: &str) -> String {
    let list = get_with(admin, &app.url(&format!("/admin/users?q={email}")))
        .await
        .text()
        .await
        .expect("list");
    let marker = "<a href=\"/admin/users/";
    let at = list.find(marker).expect("a user link") + marker.len();
    let id = &list[at..at + list[at..].find('"').expect("end")];
    get_with(admin, &app.url(&format!("/admin/users/{id}")))
        .await
        .text()
        .await
        .expect("page")
}

fn audit_statuses(rows: &[serde_json::Value]) -> Vec<String> {
    let mut statuses: Vec<String> = rows
        .iter()
        .map(|v| format!("{} {}", v["user"].as_str().unwrap_or("?"), v["status"]))
        .collect();
    statuses.sort();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departed_users_lose_every_session_on_every_instance_and_others_keep_theirs() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let okta = FakeOkta::start().await;
    for id in ["00u-ann", "00u-sue", "00u-dee", "00u-lou", "00u-gone"] {
        okta.set_status(id, "ACTIVE");
    }
    let db = TestDb::postgres().await;
    let redis = redis_url();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let mut extra = vec![
        ("GATEHOUSE_REDIS_URL", redis.as_str()),
        ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
        ("GATEHOUSE_LIFECYCLE_INTERVAL", "1s"),
    ];
    extra.extend_from_slice(&okta.env());
    let one = app_with(&idp, &db, &extra).await;
    let two = app_with(&idp, &db, &extra).await;
    // Everyone signs in on the first instance while Okta still has them all.
    let (ann, _) = sign_in_as(&one, &idp, "00u-ann", &["gatehouse-admins"]).await;
    let mut jars = Vec::new();
    for sub in ["00u-sue", "00u-dee", "00u-lou", "00u-gone"] {
        jars.push((sub, sign_in_as(&one, &idp, sub, &["engineering"]).await.0));
    }
    // Then Okta changes its mind about four of them; 00u-gone is deleted.
    okta.set_status("00u-sue", "SUSPENDED");
    okta.set_status("00u-dee", "DEPROVISIONED");
    okta.set_status("00u-lou", "LOCKED_OUT");
    okta.remove_user("00u-gone");
    for (sub, jar) in &jars {
        if *sub != "00u-lou" {
            // Dead on the other instance too: the sessions are shared.
            until_signed_out(&two, jar, sub).await;
            assert_ne!(profile_status(&one, jar).await, StatusCode::OK, "{sub}");
        }
    }
    // LOCKED_OUT is about a password, not a departure; ACTIVE stays of course.
    assert_eq!(profile_status(&one, &jars[2].1).await, StatusCode::OK);
    assert_eq!(profile_status(&two, &ann).await, StatusCode::OK);

    // One audit event per departure, with Okta's word, however many instances ran rounds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (rows, _) = gatehouse::store::audit::list(
        &one.state.store.db(),
        Some("lifecycle_signout"),
        None,
        50,
        0,
    )
    .await
    .expect("audit");
    assert!(
        rows.iter()
            .all(|r| r.actor.as_deref() == Some("okta lifecycle"))
    );
    assert_eq!(
        audit_statuses(&rows.iter().map(|r| r.details.clone()).collect::<Vec<_>>()),
        [
            "00u-dee@example.com \"DEPROVISIONED\"",
            "00u-gone@example.com \"GONE\"",
            "00u-sue@example.com \"SUSPENDED\"",
        ]
    );

    // The admin page says what the last check found.
    let sue = user_page(&two, &ann, "00u-sue").await;
    assert!(
        sue.contains("data-testid=\"okta-check\">SUSPENDED ("),
        "{sue}"
    );
    assert!(sue.contains("1 session(s) ended"), "{sue}");
    let lou = user_page(&two, &ann, "00u-lou").await;
    assert!(lou.contains("LOCKED_OUT ("), "{lou}");
    assert!(lou.contains("sessions kept"), "{lou}");

    // Re-activated, Sue signs in again and stays signed in.
    okta.set_status("00u-sue", "ACTIVE");
    let (sue, _) = sign_in_as(&two, &idp, "00u-sue", &["engineering"]).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(profile_status(&one, &sue).await, StatusCode::OK);
    two.stop().await;
    one.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_okta_outage_or_rate_limit_changes_nothing_and_is_waited_out() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let okta = FakeOkta::start().await;
    okta.set_status("00u-ann", "ACTIVE");
    okta.set_status("00u-sue", "SUSPENDED");
    okta.fail_with(Some(500));
    let db = TestDb::sqlite();
    let mut extra = vec![("GATEHOUSE_LIFECYCLE_INTERVAL", "1s")];
    extra.extend_from_slice(&okta.env());
    let app = app_with(&idp, &db, &extra).await;
    let (ann, _) = sign_in_as(&app, &idp, "00u-ann", &["gatehouse-admins"]).await;
    let (sue, _) = sign_in_as(&app, &idp, "00u-sue", &["engineering"]).await;
    // Rounds come and fail: nothing changes.
    let deadline = Instant::now() + Duration::from_secs(20);
    while okta.requests().len() < 3 {
        assert!(Instant::now() < deadline, "no rounds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(profile_status(&app, &sue).await, StatusCode::OK);
    let page = user_page(&app, &ann, "00u-sue").await;
    assert!(page.contains("not checked: Okta answered 500"), "{page}");
    // A token Okta no longer takes: nothing changes either, and the page says why.
    okta.fail_with(Some(401));
    let seen = okta.requests().len();
    let deadline = Instant::now() + Duration::from_secs(20);
    while okta.requests().len() < seen + 2 {
        assert!(Instant::now() < deadline, "no rounds");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(profile_status(&app, &sue).await, StatusCode::OK);
    let page = user_page(&app, &ann, "00u-sue").await;
    assert!(
        page.contains("not checked: Okta refused the API token"),
        "{page}"
    );

    // A 429 with a reset 3 s away: not one request before it.
    okta.fail_with(None);
    okta.rate_limit_for(3);
    let limited_at = Instant::now();
    until_signed_out(&app, &sue, "00u-sue").await;
    let after: Vec<Instant> = okta
        .requests()
        .into_iter()
        .map(|(at, _)| at)
        .filter(|at| *at >= limited_at)
        .collect();
    // The round that met the 429 (its batch's requests left together), then nothing until
    // the reset (a whole second, so at least two seconds on), then the round that signed
    // Sue out.
    let first = *after.first().expect("a request after the limit");
    let gaps: Vec<Duration> = after.iter().map(|at| at.duration_since(first)).collect();
    assert!(
        gaps.iter()
            .all(|g| *g < Duration::from_millis(500) || *g >= Duration::from_secs(2)),
        "requests {gaps:?} after the first 429"
    );
    assert!(
        gaps.iter().any(|g| *g >= Duration::from_secs(2)),
        "{gaps:?}"
    );
    assert_eq!(profile_status(&app, &ann).await, StatusCode::OK);
    app.stop().await;
}

/// Groups at the token's cap (100) are completed from the Users API (here 150, over three
/// pages); without the API, the user is marked "groups may be incomplete". Entra ID's overage
/// marker is recognised.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_at_the_claim_cap_are_completed_from_the_users_api() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let okta = FakeOkta::start().await;
    let all: Vec<String> = (0..150)
        .map(|i| {
            if i == 120 {
                "gatehouse-admins".to_string()
            } else {
                format!("team-{i:03}")
            }
        })
        .collect();
    okta.set_status("00u-max", "ACTIVE");
    okta.set_groups("00u-max", all.clone(), 50);
    let in_token: Vec<&str> = all[..100].iter().map(String::as_str).collect();

    let db = TestDb::sqlite();
    let mut extra = vec![("GATEHOUSE_LIFECYCLE_INTERVAL", "0")];
    extra.extend_from_slice(&okta.env());
    let app = app_with(&idp, &db, &extra).await;
    let (max, _) = sign_in_as(&app, &idp, "00u-max", &in_token).await;
    // An admin through the 121st group, which the token could not carry.
    let r = get_with(&max, &app.url("/admin/users")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = user_page(&app, &max, "00u-max").await;
    assert!(page.contains("team-149"), "all 150 groups are kept");
    assert!(!page.contains("groups may be incomplete"), "{page}");
    let pages = okta
        .requests()
        .iter()
        .filter(|(_, p)| p == "/api/v1/users/00u-max/groups")
        .count();
    assert_eq!(pages, 3);
    app.stop().await;

    // Without the Users API: the 100 that came, and a note on the admin page.
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let (admin, _) = sign_in_as(&app, &idp, "00u-ann", &["gatehouse-admins"]).await;
    sign_in_as(&app, &idp, "00u-max", &in_token).await;
    let page = user_page(&app, &admin, "00u-max").await;
    assert!(page.contains("data-testid=\"groups-incomplete\""), "{page}");
    assert!(page.contains("the token carried 100 groups"), "{page}");
    assert!(!page.contains("Okta status"), "no Users API, no check line");
    // Entra ID's overage marker: no list, a pointer to where it would be.
    idp.tamper(Tamper::Claims(json!({
        "sub": "00u-eve", "email": "00u-eve@example.com", "name": "Eve", "groups": null,
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}},
    })));
    signed_in(&app, &idp).await;
    idp.tamper(Tamper::None);
    let page = user_page(&app, &admin, "00u-eve").await;
    assert!(page.contains("_claim_names"), "{page}");
    app.stop().await;

    // The Users API failing, or pointing its next page elsewhere (where the token would go
    // with the request): the sign-in goes on with the token's groups, and says why.
    let db = TestDb::sqlite();
    let mut extra = vec![("GATEHOUSE_LIFECYCLE_INTERVAL", "0")];
    extra.extend_from_slice(&okta.env());
    let app = app_with(&idp, &db, &extra).await;
    let (admin, _) = sign_in_as(&app, &idp, "00u-ann", &["gatehouse-admins"]).await;
    okta.fail_with(Some(503));
    let (max, _) = sign_in_as(&app, &idp, "00u-max", &in_token).await;
    assert_eq!(
        get_with(&max, &app.url("/admin/users")).await.status(),
        StatusCode::FORBIDDEN,
        "not an admin through a group the token could not carry"
    );
    let page = user_page(&app, &admin, "00u-max").await;
    assert!(
        page.contains("completing them from the Okta Users API failed: Okta answered 503"),
        "{page}"
    );
    okta.fail_with(None);
    let requests_before = okta.requests().len();
    okta.link_elsewhere("http://localhost:9");
    sign_in_as(&app, &idp, "00u-max", &in_token).await;
    let page = user_page(&app, &admin, "00u-max").await;
    assert!(page.contains("a next page at another address"), "{page}");
    assert_eq!(
        okta.requests().len(),
        requests_before + 1,
        "the first page only: nothing was sent elsewhere"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tries_the_okta_token() {
    let okta = FakeOkta::start().await;
    // Dev mode, its provider on the org's host (127.0.0.1), as Okta's issuers are.
    let env = |token: &str| {
        vec![
            ("GATEHOUSE_PUBLIC_URL", "http://127.0.0.1:8080".to_string()),
            ("GATEHOUSE_OKTA_ORG_URL", okta.url.clone()),
            ("GATEHOUSE_OKTA_API_TOKEN", token.to_string()),
        ]
    };
    let run = |env: Vec<(&'static str, String)>| {
        tokio::task::block_in_place(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (out, stdout, stderr) = crate::cli::run(&env, &["check"]);
            (out.status.code(), format!("{stdout}{stderr}"))
        })
    };
    let (_, out) = run(env(crate::support::fake_okta::TOKEN));
    assert!(
        out.contains(&format!(
            "okta: ok (Users API at {}/ with the token of gatehouse-api@example.com; \
             users with sessions re-checked every 5m)",
            okta.url
        )),
        "{out}"
    );
    let (code, out) = run(env("00wrong"));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!(
            "okta: FAIL: GATEHOUSE_OKTA_API_TOKEN at {}/: Okta refused the API token \
             (401 Unauthorized: Invalid token provided)",
            okta.url
        )),
        "{out}"
    );
    assert!(!out.contains("00wrong"), "{out}");
    // Users signing in at another host: their accounts are never looked up, and check says so.
    let mut elsewhere = env(crate::support::fake_okta::TOKEN);
    elsewhere.retain(|(k, _)| *k != "GATEHOUSE_PUBLIC_URL");
    let (_, out) = run(elsewhere);
    assert!(
        out.contains("okta: WARN: the token of gatehouse-api@example.com works at")
            && out.contains("but users sign in at http://localhost:8080/dev-idp, another host"),
        "{out}"
    );
    // Half a configuration names what is missing.
    let (code, out) = run(vec![("GATEHOUSE_OKTA_ORG_URL", okta.url.clone())]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("GATEHOUSE_OKTA_API_TOKEN")
            && out.contains("required when GATEHOUSE_OKTA_ORG_URL is set"),
        "{out}"
    );
}
