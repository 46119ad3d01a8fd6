//! Session lifetimes, rotation and cookie attributes, and a provider without discovery.

use reqwest::StatusCode;
use serde_json::json;

use crate::signin::{Jar, get_with};
use crate::signin_refusals::{app_with, callback, signed_in, start};
use crate::support::fake_gcp::FakeGcp;
use crate::support::fake_idp::{CLIENT_ID, CLIENT_SECRET, FakeIdp, Tamper};
use crate::support::{TestApp, TestDb, free_port, http, redis_url};
use gatehouse::auth::users;
use gatehouse::store::UserLogin;

#[tokio::test]
async fn signing_in_again_rotates_the_session_id() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let (first, _) = signed_in(&app, &idp).await;
    assert_eq!(
        get_with(&first, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    // The same browser signs in again: it gets a new id, and the old one is dead.
    let attempt = start(&app, &idp).await;
    let mut jar = Jar::default();
    jar.take_from(&first);
    jar.take_from(&attempt.jar);
    let merged = crate::signin_refusals::Attempt { jar, ..attempt };
    let r = callback(&app, &merged, &format!("code=c&state={}", merged.state)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut second = merged.jar.clone();
    second.take(&r);
    assert_ne!(second.header(), first.header());
    assert_eq!(
        get_with(&second, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_with(&first, &app.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

// Lifetimes are kept in whole seconds: 3s lifetimes and 3.1s waits keep these tests from
// depending on where a second boundary falls.
#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(
        &idp,
        &db,
        &[
            ("GATEHOUSE_SESSION_TTL", "3s"),
            ("GATEHOUSE_SESSION_IDLE", "1h"),
        ],
    )
    .await;
    let (jar, _) = signed_in(&app, &idp).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[("GATEHOUSE_SESSION_IDLE", "3s")]).await;
    let (jar, _) = signed_in(&app, &idp).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn https_public_url_gives_host_prefixed_secure_cookies() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let public = format!("https://127.0.0.1:{port}");
    // TLS is terminated in front; the app itself still speaks plain HTTP on its port.
    let app = app_with(
        &idp,
        &db,
        &[("GATEHOUSE_BIND", &bind), ("GATEHOUSE_PUBLIC_URL", &public)],
    )
    .await;
    let attempt = start(&app, &idp).await;
    let login_cookie = attempt.jar.header();
    assert!(
        login_cookie.starts_with("gatehouse_login="),
        "{login_cookie}"
    );
    let r = callback(&app, &attempt, &format!("code=c&state={}", attempt.state)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .find(|c| c.starts_with("__Host-gatehouse_session="))
        .expect("a __Host- session cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{attr} missing: {session}");
    }
    assert!(!session.contains("Domain="), "{session}");
    // Clearing it, as the answer to an ended session does, needs `Secure` too: a browser
    // ignores a `__Host-` cookie set without it, the removal included.
    let ended = http()
        .get(app.url("/profile"))
        .header("cookie", "__Host-gatehouse_session=ended")
        .send()
        .await
        .expect("profile");
    assert_eq!(ended.status(), StatusCode::UNAUTHORIZED);
    let removal = ended.headers()["set-cookie"].to_str().expect("ascii");
    for attr in [
        "__Host-gatehouse_session=;",
        "Max-Age=0",
        "Secure",
        "Path=/",
    ] {
        assert!(removal.contains(attr), "{attr} missing: {removal}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_provider_without_discovery_works_from_explicit_endpoints() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    // The issuer has no discovery document; everything comes from the JSON payload.
    let issuer = format!("{}/no-discovery", idp.issuer);
    let payload = json!({"web": {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "issuer": issuer,
        "auth_uri": format!("{}/authorize", idp.issuer),
        "token_uri": format!("{}/token", idp.issuer),
        "userinfo_uri": format!("{}/userinfo", idp.issuer),
        "jwks_uri": format!("{}/jwks", idp.issuer),
    }})
    .to_string();
    let app = app_with(
        &idp,
        &db,
        &[
            ("GATEHOUSE_OIDC_ISSUER", ""),
            ("GATEHOUSE_OIDC_CONFIG", &payload),
        ],
    )
    .await;
    idp.tamper(Tamper::Claims(json!({ "iss": issuer })));
    let (jar, _) = signed_in(&app, &idp).await;
    let page = get_with(&jar, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    assert!(page.contains("mallory@example.com"), "{page}");
    app.stop().await;
}

#[tokio::test]
async fn session_keys_rotate_without_signing_anyone_out() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let old = "old-key-".repeat(5);
    let new = "new-key-".repeat(5);
    let app = app_with(&idp, &db, &[("GATEHOUSE_SESSION_KEY", &old)]).await;
    let (jar, _) = signed_in(&app, &idp).await;
    app.stop().await;

    let both = format!("{new},{old}");
    let app = app_with(&idp, &db, &[("GATEHOUSE_SESSION_KEY", &both)]).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    app.stop().await;

    // Once the old key is dropped, sessions made with it are gone.
    let app = app_with(&idp, &db, &[("GATEHOUSE_SESSION_KEY", &new)]).await;
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

/// A request reads a session, the user signs out (or it is revoked) meanwhile, then the
/// request writes its `last_seen` back: the session must stay gone. The race is forced by
/// calling the write-back with the record read before the end.
async fn an_ended_session_stays_ended(db: TestDb, extra: &[(&str, &str)]) {
    let mut pairs = vec![("GATEHOUSE_DATABASE_URL", db.url())];
    pairs.extend_from_slice(extra);
    // No one signs in through a provider here, but dev mode does not serve on PostgreSQL.
    let app = TestApp::start(&crate::support::with_provider(&pairs)).await;
    let user = users::upsert(
        &app.state.store.db(),
        &UserLogin {
            issuer: "https://idp.test".into(),
            subject: "race".into(),
            email: Some("race@example.com".into()),
            email_verified: true,
            name: None,
            groups: Vec::new(),
            is_admin: false,
        },
    )
    .await
    .expect("user");
    let sessions = &app.state.auth.sessions;

    // Signed out between the read and the write-back.
    let (id, _) = sessions
        .create(gatehouse::auth::session::NewSession {
            user_id: user.id,
            ..Default::default()
        })
        .await
        .expect("create");
    let mut read = sessions.load(&id).await.expect("load").expect("live");
    sessions.destroy(&id).await.expect("destroy");
    read.last_seen += 61;
    let touched = sessions.touch(&id, &read).await.expect("touch");
    assert!(
        sessions.load(&id).await.expect("load").is_none(),
        "signed out, then written back alive"
    );
    assert!(!touched, "the write-back reports the session gone");

    // Revoked from another browser between the read and the write-back.
    let (id, _) = sessions
        .create(gatehouse::auth::session::NewSession {
            user_id: user.id,
            ..Default::default()
        })
        .await
        .expect("create");
    let mut read = sessions.load(&id).await.expect("load").expect("live");
    let handle = sessions.handles_of(&id).remove(0);
    assert!(sessions.revoke(user.id, &handle).await.expect("revoke"));
    read.last_seen += 61;
    let touched = sessions.touch(&id, &read).await.expect("touch");
    assert!(
        sessions.load(&id).await.expect("load").is_none(),
        "revoked, then written back alive"
    );
    assert!(sessions.list(user.id).await.expect("list").is_empty());
    assert!(!touched);

    // A live session is still written back.
    let (id, _) = sessions
        .create(gatehouse::auth::session::NewSession {
            user_id: user.id,
            ..Default::default()
        })
        .await
        .expect("create");
    let mut read = sessions.load(&id).await.expect("load").expect("live");
    read.last_seen += 61;
    assert!(sessions.touch(&id, &read).await.expect("touch"));
    let after = sessions.load(&id).await.expect("load").expect("live");
    assert_eq!(after.last_seen, read.last_seen);
    app.stop().await;
}

#[tokio::test]
async fn an_ended_session_stays_ended_in_sqlite() {
    an_ended_session_stays_ended(TestDb::sqlite(), &[]).await;
}

#[tokio::test]
async fn an_ended_session_stays_ended_in_postgres() {
    an_ended_session_stays_ended(TestDb::postgres().await, &[]).await;
}

#[tokio::test]
async fn an_ended_session_stays_ended_in_redis() {
    let redis = redis_url();
    an_ended_session_stays_ended(TestDb::sqlite(), &[("GATEHOUSE_REDIS_URL", &redis)]).await;
}

/// Rotating the session key across two instances sharing Redis, one instance restarted at a
/// time, as README's key-rotation steps say: first `old,new` everywhere (still signing with
/// the old key, accepting both), then `new,old`, then `new` alone. No one is signed out
/// until the last step, which drops only sessions made with the old key. Going straight to
/// `new,old` would sign out whoever signs in on the restarted instance and is then served
/// by one still on `old`: the test shows that too. The key lives in Secret Manager, as in a
/// GCP deployment: each step adds a version and every start reads `latest`.
#[tokio::test]
async fn session_key_rotation_through_secret_manager_across_two_instances_signs_no_one_out() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let gcp = FakeGcp::start().await;
    let key_ref = gcp.latest("acme", "session-key");
    let db = TestDb::postgres().await;
    let redis = redis_url();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let old = "old-key-".repeat(5);
    let new = "new-key-".repeat(5);
    // A new version of the secret when the key changes; then a start, which reads `latest`.
    let with_key = |key: String| {
        let (idp, db, redis, prefix, gcp, key_ref) =
            (&idp, &db, redis.clone(), prefix.clone(), &gcp, &key_ref);
        async move {
            if gcp.latest_value("acme", "session-key").as_deref() != Some(key.as_str()) {
                gcp.add_version("acme", "session-key", &key);
            }
            let mut pairs = vec![
                ("GATEHOUSE_REDIS_URL", redis.as_str()),
                ("GATEHOUSE_REDIS_PREFIX", prefix.as_str()),
                ("GATEHOUSE_SESSION_KEY", key_ref.as_str()),
            ];
            pairs.extend_from_slice(&gcp.env());
            app_with(idp, db, &pairs).await
        }
    };
    let status = |jar: &Jar, app: &TestApp| {
        let (jar, url) = (jar.clone(), app.url("/profile"));
        async move { get_with(&jar, &url).await.status() }
    };
    let ok = StatusCode::OK;

    let a = with_key(old.clone()).await;
    let b = with_key(old.clone()).await;
    let (before, _) = signed_in(&a, &idp).await;

    // The naive way: `new,old` on one instance while the other still has `old` alone.
    let hasty = with_key(format!("{new},{old}")).await;
    let (on_hasty, _) = signed_in(&hasty, &idp).await;
    assert_eq!(
        status(&on_hasty, &b).await,
        StatusCode::UNAUTHORIZED,
        "an instance on the old key alone cannot find a session made with the new one"
    );
    hasty.stop_for_restart().await;
    assert_eq!(status(&before, &a).await, ok, "before, still on a");

    // Step 1, one instance at a time: `old,new`. Sessions are still made with the old key.
    a.stop_for_restart().await;
    let a = with_key(format!("{old},{new}")).await;
    let (step1, _) = signed_in(&a, &idp).await;
    for (jar, who) in [(&before, "before"), (&step1, "step 1")] {
        assert_eq!(status(jar, &a).await, ok, "{who} on a");
        assert_eq!(
            status(jar, &b).await,
            ok,
            "{who} on b (still on the old key)"
        );
    }
    b.stop_for_restart().await;
    let b = with_key(format!("{old},{new}")).await;

    // Step 2, one instance at a time: `new,old`. Sessions are made with the new key, and
    // every instance already accepts it.
    a.stop_for_restart().await;
    let a = with_key(format!("{new},{old}")).await;
    let (step2, _) = signed_in(&a, &idp).await;
    for (jar, who) in [(&before, "before"), (&step1, "step 1"), (&step2, "step 2")] {
        assert_eq!(status(jar, &a).await, ok, "{who} on a");
        assert_eq!(status(jar, &b).await, ok, "{who} on b (old,new)");
    }
    b.stop_for_restart().await;
    let b = with_key(format!("{new},{old}")).await;
    for jar in [&before, &step1, &step2] {
        assert_eq!(status(jar, &b).await, ok);
    }

    // Step 3, once sessions made with the old key have expired: `new` alone. Whatever is
    // still on the old key ends; sessions made with the new one stay.
    a.stop_for_restart().await;
    b.stop_for_restart().await;
    let a = with_key(new.clone()).await;
    // Five versions: old; the hasty new,old; old,new; new,old; new. Each start read `latest`.
    assert_eq!(
        a.state.config.fetched_secrets,
        [(
            "GATEHOUSE_SESSION_KEY",
            "projects/123456789012/secrets/session-key/versions/5".to_string()
        )]
    );
    assert_eq!(status(&step2, &a).await, ok);
    assert_eq!(status(&before, &a).await, StatusCode::UNAUTHORIZED);
    a.stop().await;
}
