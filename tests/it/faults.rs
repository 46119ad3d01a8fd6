//! Dependencies that go away while Gatehouse serves: PostgreSQL and Redis stopped under it
//! and started again. The affected requests get a 503 (never a 500, never a hang), and
//! Gatehouse recovers by itself, without a restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::signin::{Jar, get_with};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::FakeIdp;
use crate::support::private::{PrivatePostgres, PrivateRedis};
use crate::support::{TestApp, TestDb, http};

/// Asks for `path` until it answers `want`, for up to 20 s; the last status otherwise.
async fn until(jar: &Jar, app: &TestApp, path: &str, want: StatusCode) -> StatusCode {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = get_with(jar, &app.url(path)).await.status();
        if status == want || Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ready(app: &TestApp) -> (StatusCode, String) {
    let r = http()
        .get(app.url("/health/ready"))
        .send()
        .await
        .expect("ready");
    (r.status(), r.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_is_a_503_then_gatehouse_recovers_by_itself() {
    let pg = tokio::task::block_in_place(PrivatePostgres::start);
    let db = TestDb::At { url: pg.url() };
    let idp = FakeIdp::start(vec!["openid"]).await;
    // Sessions in the database: every signed-in request needs it.
    let app = app_with(&idp, &db, &[]).await;
    let (jar, _) = signed_in(&app, &idp).await;
    assert_eq!(
        until(&jar, &app, "/profile", StatusCode::OK).await,
        StatusCode::OK
    );

    tokio::task::block_in_place(|| pg.stop());
    let r = get_with(&jar, &app.url("/profile")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("database"), "{body}");
    assert_eq!(
        http()
            .get(app.url("/health"))
            .send()
            .await
            .expect("live")
            .status(),
        StatusCode::OK,
        "alive: an orchestrator must not restart it for a database outage"
    );

    tokio::task::block_in_place(|| pg.start_again());
    assert_eq!(
        until(&jar, &app, "/profile", StatusCode::OK).await,
        StatusCode::OK,
        "the same session works again, Gatehouse untouched"
    );
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

/// Sessions in Redis; Redis killed and started again, keeping its data on disk or not.
async fn redis_restart(persist: bool) {
    let mut redis = tokio::task::block_in_place(|| PrivateRedis::start(persist));
    let db = TestDb::postgres().await;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let url = redis.url();
    let app = app_with(&idp, &db, &[("GATEHOUSE_REDIS_URL", url.as_str())]).await;
    let (jar, _) = signed_in(&app, &idp).await;
    assert_eq!(
        until(&jar, &app, "/profile", StatusCode::OK).await,
        StatusCode::OK
    );

    tokio::task::block_in_place(|| redis.stop());
    assert_eq!(
        get_with(&jar, &app.url("/profile")).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("redis"), "{body}");

    tokio::task::block_in_place(|| redis.start_again());
    if persist {
        assert_eq!(
            until(&jar, &app, "/profile", StatusCode::OK).await,
            StatusCode::OK,
            "a session Redis kept on disk survives its restart"
        );
    } else {
        // Nothing was kept: the session is gone, and the browser is told so.
        assert_eq!(
            until(&jar, &app, "/profile", StatusCode::UNAUTHORIZED).await,
            StatusCode::UNAUTHORIZED
        );
        let (again, _) = signed_in(&app, &idp).await;
        assert_eq!(
            get_with(&again, &app.url("/profile")).await.status(),
            StatusCode::OK,
            "signing in again works at once"
        );
    }
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_that_kept_its_data_signs_no_one_out() {
    redis_restart(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_that_lost_its_data_asks_everyone_to_sign_in_again() {
    redis_restart(false).await;
}
