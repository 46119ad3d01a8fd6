//! The audit log: admins browse and filter it; old rows are pruned by retention.

use reqwest::StatusCode;
use serde_json::json;

use crate::signin::get_with;
use crate::signin_refusals::{app_with, callback, signed_in, start};
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::{TestApp, TestDb, http};

#[tokio::test]
async fn admins_browse_and_filter_the_audit_log() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    // A failed sign-in, then bob, then ann (an admin).
    let attempt = start(&app, &idp).await;
    assert_eq!(
        callback(&app, &attempt, "code=c&state=forged")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    idp.tamper(Tamper::Claims(
        json!({"sub": "bob", "email": "bob@example.com", "groups": []}),
    ));
    signed_in(&app, &idp).await;
    idp.tamper(Tamper::Claims(json!({
        "sub": "ann", "email": "ann@example.com", "groups": ["gatehouse-admins"],
    })));
    let (ann, _) = signed_in(&app, &idp).await;

    let all = get_with(&ann, &app.url("/admin/audit")).await;
    assert_eq!(all.status(), StatusCode::OK);
    let html = all.text().await.expect("html");
    assert!(
        html.contains("data-testid=\"audit-total\">3 events"),
        "{html}"
    );
    assert!(html.contains("state_mismatch"));
    // Event names read as words, in the table and the filter; details as a list.
    assert!(
        html.contains("<option value=\"login\">Sign-in</option>"),
        "{html}"
    );
    assert!(
        html.contains("<td data-kind=\"login\">Sign-in</td>"),
        "{html}"
    );
    assert!(
        html.contains("<li><span class=\"muted\">reason:</span> state_mismatch</li>"),
        "{html}"
    );

    let mine = get_with(&ann, &app.url("/admin/audit?kind=login&actor=ANN"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        mine.contains("data-testid=\"audit-total\">1 event<"),
        "{mine}"
    );
    assert!(
        mine.contains("<td>ann@example.com</td>") && !mine.contains("<td>bob@example.com</td>")
    );
    let none = get_with(&ann, &app.url("/admin/audit?kind=no_such_kind"))
        .await
        .text()
        .await
        .expect("html");
    assert!(none.contains("data-testid=\"audit-total\">0 events"));
    assert!(none.contains("No event matches this filter."), "{none}");
    app.stop().await;
}

async fn retention_prunes_old_rows(db: TestDb) {
    use sqlx::Connection;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let app = app_with(&idp, &db, &[("GATEHOUSE_AUDIT_RETENTION", "30d")]).await;
    signed_in(&app, &idp).await;
    let old = chrono::Utc::now() - chrono::Duration::days(31);
    let insert = "INSERT INTO audit_events (occurred_at, kind, outcome, details) VALUES ($1, 'login', 'success', '{}')";
    let count = "SELECT COUNT(*) FROM audit_events";
    let counts = if db.url().starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(db.url()).await.expect("pg");
        sqlx::query(&insert.replace("'{}'", "'{}'::jsonb"))
            .bind(old)
            .execute(&mut c)
            .await
            .expect("insert");
        let before: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut c)
            .await
            .expect("count");
        let (pruned, _) = gatehouse::app::maintain(&app.state)
            .await
            .expect("maintain");
        let after: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut c)
            .await
            .expect("count");
        (before, pruned, after)
    } else {
        let mut c = sqlx::SqliteConnection::connect(db.url())
            .await
            .expect("sqlite");
        sqlx::query(insert)
            .bind(old)
            .execute(&mut c)
            .await
            .expect("insert");
        let before: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut c)
            .await
            .expect("count");
        let (pruned, _) = gatehouse::app::maintain(&app.state)
            .await
            .expect("maintain");
        let after: i64 = sqlx::query_scalar(count)
            .fetch_one(&mut c)
            .await
            .expect("count");
        (before, pruned, after)
    };
    // (The server's own hourly housekeeping also runs at start; whichever pruned it, the old
    // row is gone and the fresh sign-in stays.)
    let (before, pruned, after) = counts;
    assert!(before >= after && pruned <= 1, "{counts:?}");
    assert_eq!(after, 1, "the old row goes, the sign-in stays");
    app.stop().await;
}

#[tokio::test]
async fn retention_prunes_old_rows_on_sqlite() {
    retention_prunes_old_rows(TestDb::sqlite()).await;
}

#[tokio::test]
async fn retention_prunes_old_rows_on_postgres() {
    retention_prunes_old_rows(TestDb::postgres().await).await;
}

/// A client's `X-Request-Id` is kept only when it is short and plain; anything else is
/// replaced by a fresh id, in the answer and in the audit row alike.
#[tokio::test]
async fn only_plain_request_ids_reach_the_audit_trail() {
    use sqlx::Connection;
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let long = "x".repeat(65);
    let longest = "y".repeat(64);
    let cases: Vec<(Vec<&str>, bool)> = vec![
        (vec!["req-42.A_b"], true),
        (vec![longest.as_str()], true),
        (vec![long.as_str()], false),
        (vec!["a b"], false),
        (vec!["<script>alert(1)</script>"], false),
        (vec!["id\"; DROP"], false),
        (vec!["one", "two"], false),
        (vec![""], false),
    ];
    let mut echoed = Vec::new();
    for (sent, kept) in &cases {
        let mut request = http().get(app.url("/auth/callback?code=c&state=s"));
        for value in sent {
            request = request.header("x-request-id", *value);
        }
        let r = request.send().await.expect("callback");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let id = r
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("an id is echoed")
            .to_string();
        if *kept {
            assert_eq!(id, sent[0]);
        } else {
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{sent:?} gave {id}");
        }
        echoed.push(id);
    }
    let mut c = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("sqlite");
    let stored: Vec<Option<String>> =
        sqlx::query_scalar("SELECT request_id FROM audit_events WHERE kind = 'login' ORDER BY id")
            .fetch_all(&mut c)
            .await
            .expect("audit rows");
    assert_eq!(stored, echoed.into_iter().map(Some).collect::<Vec<_>>());
    app.stop().await;
}
