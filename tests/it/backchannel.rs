//! OpenID Connect Back-Channel Logout: a logout token from the provider ends the sessions it
//! names on every instance, and every malformed, forged or replayed token is a 400 that ends
//! nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::signin::{Jar, get_with, rig, sign_in};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::{CLIENT_ID, FakeIdp, Tamper};
use crate::support::{TestApp, TestDb, http, redis_url};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn logout_claims(idp: &FakeIdp, jti: &str, overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": idp.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 120, "jti": jti,
        "sub": "mallory", "events": { EVENT: {} },
    });
    for (k, v) in overrides.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

async fn post_logout(app: &TestApp, token: &str) -> (StatusCode, Option<String>, Value) {
    let r = http()
        .post(app.url("/auth/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .expect("post");
    let status = r.status();
    let cache = r
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, cache, r.json().await.unwrap_or(Value::Null))
}

async fn profile(jar: &Jar, app: &TestApp) -> StatusCode {
    get_with(jar, &app.url("/profile")).await.status()
}

/// Signs mallory in on `app` with an ID token carrying this `sid`.
async fn signed_in_with_sid(app: &TestApp, idp: &FakeIdp, sid: &str) -> Jar {
    idp.tamper(Tamper::Claims(json!({ "sid": sid })));
    let (jar, _) = signed_in(app, idp).await;
    idp.tamper(Tamper::None);
    jar
}

#[tokio::test]
async fn a_logout_token_ends_the_sessions_it_names_on_every_instance() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let redis = redis_url();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let shared = [
        ("GATEHOUSE_REDIS_URL", redis.as_str()),
        ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
    ];
    let a = app_with(&idp, &db, &shared).await;
    let b = app_with(&idp, &db, &shared).await;
    let laptop = signed_in_with_sid(&a, &idp, "sid-laptop").await;
    let phone = signed_in_with_sid(&a, &idp, "sid-phone").await;
    assert_eq!(profile(&laptop, &b).await, StatusCode::OK);

    // The provider ends the laptop's session there and tells instance b.
    let token = idp.access_token(
        &logout_claims(&idp, "jti-1", json!({ "sid": "sid-laptop" })),
        &Tamper::None,
    );
    let (status, cache, body) = post_logout(&b, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(cache.as_deref(), Some("no-store"));
    assert_ne!(profile(&laptop, &a).await, StatusCode::OK, "ended on a too");
    assert_eq!(
        profile(&phone, &a).await,
        StatusCode::OK,
        "another sid stays"
    );

    // The same token again is a replay, on either instance.
    let (status, _, body) = post_logout(&a, &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("used before")),
        "{body}"
    );

    // `sid` alone: the sessions made from it, found by the sid remembered at sign-in.
    let tablet = signed_in_with_sid(&b, &idp, "sid-tablet").await;
    let token = idp.access_token(
        &logout_claims(&idp, "jti-4", json!({ "sub": null, "sid": "sid-tablet" })),
        &Tamper::None,
    );
    let (status, _, body) = post_logout(&a, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(profile(&tablet, &b).await, StatusCode::OK);
    assert_eq!(
        profile(&phone, &b).await,
        StatusCode::OK,
        "another sid stays"
    );
    // A sid no one signed in with: nothing to end, a 200.
    let token = idp.access_token(
        &logout_claims(&idp, "jti-5", json!({ "sub": null, "sid": "sid-unknown" })),
        &Tamper::None,
    );
    assert_eq!(post_logout(&a, &token).await.0, StatusCode::OK);
    assert_eq!(profile(&phone, &b).await, StatusCode::OK);

    // `sub` alone: every session of the user at that provider.
    let token = idp.access_token(&logout_claims(&idp, "jti-2", json!({})), &Tamper::None);
    assert_eq!(post_logout(&a, &token).await.0, StatusCode::OK);
    assert_ne!(profile(&phone, &b).await, StatusCode::OK);

    // A user this instance never saw: nothing to end, still a 200 (the provider must not
    // retry it).
    let token = idp.access_token(
        &logout_claims(&idp, "jti-3", json!({ "sub": "nobody" })),
        &Tamper::None,
    );
    assert_eq!(post_logout(&a, &token).await.0, StatusCode::OK);

    // Signing in again afterwards works as ever.
    let again = signed_in_with_sid(&b, &idp, "sid-new").await;
    assert_eq!(profile(&again, &a).await, StatusCode::OK);
    a.stop_for_restart().await;
    b.stop().await;
}

#[tokio::test]
async fn every_bad_logout_token_is_a_400_and_ends_nothing() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let jar = signed_in_with_sid(&app, &idp, "sid-1").await;
    let old = chrono::Utc::now().timestamp() - 7200;
    let signed = |jti: &str, overrides: Value| {
        idp.access_token(&logout_claims(&idp, jti, overrides), &Tamper::None)
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("nonce", signed("n1", json!({ "nonce": "x" })), "nonce"),
        (
            "no events",
            signed("n2", json!({ "events": null })),
            "back-channel logout event",
        ),
        (
            "another event",
            signed("n3", json!({ "events": { "urn:other": {} } })),
            "back-channel logout event",
        ),
        (
            "wrong aud",
            signed("n4", json!({ "aud": "someone-else" })),
            "meant for someone else",
        ),
        (
            "wrong iss",
            signed("n5", json!({ "iss": "https://evil.example" })),
            "issued by someone else",
        ),
        (
            "neither sid nor sub",
            signed("n6", json!({ "sub": null })),
            "neither a sid nor a sub",
        ),
        (
            "empty sub, no sid",
            signed("n7", json!({ "sub": "" })),
            "neither a sid nor a sub",
        ),
        ("no jti", signed("n8", json!({ "jti": null })), "no jti"),
        (
            "no iat",
            signed("n9", json!({ "iat": null })),
            "lacks the iat claim",
        ),
        (
            "issued two hours ago",
            signed("n10", json!({ "iat": old, "exp": null })),
            "issue time",
        ),
        ("expired", signed("n11", json!({ "exp": old })), "expired"),
        (
            "signed by another key",
            idp.access_token(
                &logout_claims(&idp, "n12", json!({})),
                &Tamper::ForeignKeySameKid,
            ),
            "signature",
        ),
        (
            "alg none",
            idp.access_token(&logout_claims(&idp, "n13", json!({})), &Tamper::AlgNone),
            "",
        ),
        (
            "HS256 keyed with the public key",
            idp.access_token(
                &logout_claims(&idp, "n14", json!({})),
                &Tamper::Hs256WithPublicKey,
            ),
            "",
        ),
        ("not a JWT", "garbage".to_string(), "malformed"),
    ];
    for (what, token, reason) in &cases {
        let (status, cache, body) = post_logout(&app, token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
        assert_eq!(cache.as_deref(), Some("no-store"), "{what}");
        assert_eq!(body["error"], "invalid_request", "{what}");
        let description = body["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(reason), "{what}: {description}");
        assert_eq!(
            profile(&jar, &app).await,
            StatusCode::OK,
            "{what} ended a session"
        );
    }
    // No form field at all.
    let r = http()
        .post(app.url("/auth/backchannel-logout"))
        .form(&[("token", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // A GET is not the endpoint.
    let r = http()
        .get(app.url("/auth/backchannel-logout"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(profile(&jar, &app).await, StatusCode::OK);
    // Sessions in the database: `sid` alone finds the session made from it too.
    let token = signed("n15", json!({ "sub": null, "sid": "sid-1" }));
    assert_eq!(post_logout(&app, &token).await.0, StatusCode::OK);
    assert_ne!(profile(&jar, &app).await, StatusCode::OK);
    app.stop().await;
}

/// Verified logout tokens are counted per issuer (`auth.backchannel.issuer`), after their
/// checks: junk from anyone spends none of the issuer's budget; past it, a 429 with
/// `Retry-After`, and the refused token is not remembered, so the provider's retry is taken.
#[tokio::test]
async fn verified_logout_tokens_are_limited_per_issuer_and_junk_spends_none_of_it() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(
        &idp,
        &db,
        &[(
            "GATEHOUSE_RATE_LIMITS",
            "auth.login=10000/minute,auth.callback=10000/minute,auth.backchannel.issuer=2/minute",
        )],
    )
    .await;
    for i in 0..5 {
        let junk = idp.access_token(
            &logout_claims(&idp, &format!("junk-{i}"), json!({})),
            &Tamper::ForeignKeySameKid,
        );
        assert_eq!(post_logout(&app, &junk).await.0, StatusCode::BAD_REQUEST);
    }
    let genuine = |jti: &str| idp.access_token(&logout_claims(&idp, jti, json!({})), &Tamper::None);
    assert_eq!(post_logout(&app, &genuine("g-1")).await.0, StatusCode::OK);
    assert_eq!(post_logout(&app, &genuine("g-2")).await.0, StatusCode::OK);
    let third = genuine("g-3");
    let r = http()
        .post(app.url("/auth/backchannel-logout"))
        .form(&[("logout_token", third.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"], "temporarily_unavailable");
    // Not remembered: once the window has passed, the provider's retry of the same token
    // is taken, not refused as a replay.
    assert!(
        app.state
            .auth
            .sessions
            .first_sighting(
                "logout-jti",
                &format!("{}\0g-3", idp.issuer),
                std::time::Duration::from_secs(5)
            )
            .await
            .expect("store"),
        "g-3 was not kept as seen"
    );
    app.stop().await;
}

/// node oidc-provider's own back-channel logout: alice signs in, her session at the provider
/// ends (she confirms the provider's sign-out page), the provider posts its logout token to
/// the instance it knows, and her Gatehouse session is dead on the other instance too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_oidc_provider_ends_the_session_on_every_instance() {
    let db = TestDb::sqlite();
    let redis = redis_url();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let shared = [
        ("GATEHOUSE_REDIS_URL", redis.as_str()),
        ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
    ];
    let rig = rig(db, &shared).await;
    let key = "k".repeat(40);
    let mut pairs = vec![
        ("GATEHOUSE_DATABASE_URL", rig._db.url()),
        ("GATEHOUSE_OIDC_ISSUER", rig.idp.issuer.as_str()),
        ("GATEHOUSE_OIDC_CLIENT_ID", "gatehouse-web"),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "gatehouse-web-secret"),
        ("GATEHOUSE_SESSION_KEY", key.as_str()),
    ];
    pairs.extend_from_slice(&shared);
    let other = TestApp::start(&pairs).await;
    let signed = sign_in(&rig, "alice", "/profile").await;
    assert_eq!(profile(&signed.jar, &other).await, StatusCode::OK);

    // Alice signs out at the provider itself (another application's sign-out button, say).
    let client = http();
    let end = format!("{}/session/end", rig.idp.issuer);
    let page = client
        .get(&end)
        .header("cookie", signed.idp_jar.header())
        .send()
        .await
        .expect("end session page")
        .text()
        .await
        .expect("html");
    let xsrf = page
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no xsrf field in {page}"))
        .to_string();
    let confirmed = client
        .post(format!("{end}/confirm"))
        .header("cookie", signed.idp_jar.header())
        .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
        .send()
        .await
        .expect("confirm");
    assert!(
        confirmed.status().is_success() || confirmed.status().is_redirection(),
        "{}",
        confirmed.status()
    );
    // The provider posted its logout token before answering: the session is gone everywhere.
    assert_ne!(profile(&signed.jar, &other).await, StatusCode::OK);
    assert_ne!(profile(&signed.jar, &rig.app).await, StatusCode::OK);
    let (audit, _) = gatehouse::store::audit::list(
        &rig.app.state.store.db(),
        Some("backchannel_logout"),
        None,
        10,
        0,
    )
    .await
    .expect("audit");
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].outcome, "success");
    assert_eq!(audit[0].actor.as_deref(), Some("alice@example.com"));
    assert_eq!(audit[0].details["sessions_ended"], 1);
    assert_eq!(audit[0].details["by"], "sid");
    other.stop_for_restart().await;
}
