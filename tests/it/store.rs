//! Both storage backends: migrations, sample data, counts, and the queries features own
//! (written once with `on_db!`), each run on PostgreSQL and SQLite.

use std::sync::Arc;

use gatehouse::auth::session_db::{self, SessionRow};
use gatehouse::config::Backend;
use gatehouse::sample;
use gatehouse::store::{self, Store};

use crate::support::TestDb;
use crate::support::server::config;

async fn open(db: &TestDb) -> Arc<dyn Store> {
    store::connect(&config(&[("GATEHOUSE_DATABASE_URL", db.url())]))
        .await
        .expect("connects")
}

async fn migrations_and_sample_data(db: TestDb, backend: Backend) {
    let store = open(&db).await;
    assert_eq!(store.backend(), backend);
    let before = store.migration_status().await.expect("status before");
    assert!(before.applied.is_empty());
    assert!(!before.pending.is_empty());

    let after = store.migrate().await.expect("migrates");
    assert!(after.pending.is_empty());
    assert_eq!(after.applied, before.pending);
    // Running again is a no-op, as on every restart.
    assert_eq!(store.migrate().await.expect("migrates again"), after);

    assert!(
        store::directory_summary(&store.db())
            .await
            .expect("summary")
            .is_empty()
    );
    let data = sample::generate(chrono::NaiveDate::from_ymd_opt(2026, 11, 24).expect("date"));
    assert!(
        store::load_sample_data(&store.db(), &data)
            .await
            .expect("loads")
    );
    let summary = store::directory_summary(&store.db())
        .await
        .expect("summary");
    let active = data.people.iter().filter(|p| p.is_active()).count();
    assert_eq!(summary.people, active as i64);
    assert_eq!(summary.laptops, data.laptops.len() as i64);
    assert_eq!(summary.lists, data.lists.len() as i64);
    assert_eq!(summary.repos, data.repos.len() as i64);
    // The long histories go in as many rows per statement: every day arrives.
    let days: i64 = gatehouse::on_db!(&store.db(), |pool| sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM repo_traffic) + (SELECT COUNT(*) FROM repo_stars)"
    )
    .fetch_one(pool)
    .await)
    .expect("count days");
    let expected: usize = data
        .repos
        .iter()
        .map(|r| r.traffic.len() + r.star_history.len())
        .sum();
    assert_eq!(days, expected as i64);
    let roles = gatehouse::auth::roles::all(&store.db())
        .await
        .expect("roles");
    assert_eq!(roles.len(), data.roles.len());
    // A second start finds data and leaves it alone.
    assert!(
        !store::load_sample_data(&store.db(), &data)
            .await
            .expect("second load")
    );
    assert_eq!(
        store::directory_summary(&store.db())
            .await
            .expect("summary"),
        summary
    );
    store::ping(&store.db()).await.expect("ping");
    store.close().await;
}

#[tokio::test]
async fn postgres_migrates_and_loads_sample_data_once() {
    migrations_and_sample_data(TestDb::postgres().await, Backend::Postgres).await;
}

#[tokio::test]
async fn sqlite_migrates_and_loads_sample_data_once() {
    migrations_and_sample_data(TestDb::sqlite(), Backend::Sqlite).await;
}

/// Inserts a user row over a connection of the database's own kind.
async fn insert_user(url: &str, issuer: &str, sub: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let insert = "INSERT INTO users (issuer, subject, email) VALUES ($1, $2, 'same@example.com')";
    if url.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query(insert)
            .bind(issuer)
            .bind(sub)
            .execute(&mut conn)
            .await?;
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query(insert)
            .bind(issuer)
            .bind(sub)
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}

async fn schema_enforces_identity_keys(db: TestDb) {
    let store = open(&db).await;
    store.migrate().await.expect("migrates");
    let url = db.url();
    // The users table is keyed by (issuer, subject), never by email.
    insert_user(url, "https://a", "1")
        .await
        .expect("first user");
    insert_user(url, "https://b", "1")
        .await
        .expect("same sub, other issuer");
    insert_user(url, "https://a", "2")
        .await
        .expect("same email, other sub");
    let dup = insert_user(url, "https://a", "1").await;
    assert!(dup.is_err(), "duplicate (issuer, sub) must be refused");
    store.close().await;
}

#[tokio::test]
async fn postgres_users_are_unique_by_issuer_and_subject() {
    schema_enforces_identity_keys(TestDb::postgres().await).await;
}

#[tokio::test]
async fn sqlite_users_are_unique_by_issuer_and_subject() {
    schema_enforces_identity_keys(TestDb::sqlite()).await;
}

#[tokio::test]
async fn unreachable_postgres_names_the_redacted_url_and_cause() {
    let port = crate::support::free_port();
    let url = format!("postgres://app:hunter2@127.0.0.1:{port}/gatehouse");
    let err = match store::connect(&config(&[("GATEHOUSE_DATABASE_URL", &url)])).await {
        Ok(_) => panic!("nothing listens there"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(&format!("postgres://app:***@127.0.0.1:{port}/gatehouse")),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

async fn users_and_sessions(db: TestDb) {
    use chrono::{Duration, Utc};
    use gatehouse::store::UserLogin;
    use serde_json::json;

    let store = open(&db).await;
    store.migrate().await.expect("migrates");
    let mut login = UserLogin {
        issuer: "https://idp.example".into(),
        subject: "00u1".into(),
        email: Some("alice@example.com".into()),
        email_verified: true,
        name: Some("Alice".into()),
        groups: vec!["gatehouse-admins".into()],
        is_admin: true,
    };
    let first = gatehouse::auth::users::upsert(&store.db(), &login)
        .await
        .expect("insert");
    assert!(first.is_admin);
    // The next sign-in refreshes name, email, groups and admin on the same row.
    login.name = Some("Alice Renamed".into());
    login.groups = vec![];
    login.is_admin = false;
    let second = gatehouse::auth::users::upsert(&store.db(), &login)
        .await
        .expect("update");
    assert_eq!(second.id, first.id);
    assert_eq!(second.name.as_deref(), Some("Alice Renamed"));
    assert!(second.groups.is_empty() && !second.is_admin);
    assert_eq!(
        gatehouse::auth::users::get(&store.db(), first.id)
            .await
            .expect("get"),
        Some(second.clone())
    );
    assert_eq!(
        gatehouse::auth::users::get(&store.db(), first.id + 1000)
            .await
            .expect("get"),
        None
    );

    let row = |id: &str, data: serde_json::Value, ttl: Duration| SessionRow {
        id_hash: id.into(),
        user_id: Some(first.id),
        data,
        client_ip: Some("127.0.0.1".into()),
        user_agent: Some("test".into()),
        expires_at: Utc::now() + ttl,
    };
    session_db::insert(
        &store.db(),
        &row("s1", json!({"n": 1}), Duration::minutes(5)),
    )
    .await
    .expect("insert");
    assert_eq!(
        session_db::get(&store.db(), "s1").await.expect("get"),
        Some(json!({"n": 1}))
    );
    let later = Utc::now() + Duration::minutes(10);
    assert!(
        session_db::touch(&store.db(), "s1", &json!({"n": 2}), later)
            .await
            .expect("touch")
    );
    assert_eq!(
        session_db::get(&store.db(), "s1").await.expect("get"),
        Some(json!({"n": 2}))
    );
    // A touch never creates a record: a deleted session stays deleted.
    assert!(
        !session_db::touch(&store.db(), "gone", &json!({"n": 3}), later)
            .await
            .expect("touch")
    );
    assert_eq!(
        session_db::get(&store.db(), "gone").await.expect("get"),
        None
    );
    // Taken once, then gone.
    assert_eq!(
        session_db::take(&store.db(), "s1").await.expect("take"),
        Some(json!({"n": 2}))
    );
    assert_eq!(
        session_db::take(&store.db(), "s1")
            .await
            .expect("take again"),
        None
    );
    // Expired records are invisible and purged.
    session_db::insert(&store.db(), &row("old", json!({}), Duration::seconds(-5)))
        .await
        .expect("insert");
    assert_eq!(
        session_db::get(&store.db(), "old").await.expect("get"),
        None
    );
    assert_eq!(
        session_db::take(&store.db(), "old").await.expect("take"),
        None
    );
    session_db::insert(&store.db(), &row("old2", json!({}), Duration::seconds(-5)))
        .await
        .expect("insert");
    session_db::insert(&store.db(), &row("live", json!({}), Duration::minutes(5)))
        .await
        .expect("insert");
    assert_eq!(
        session_db::purge_expired(&store.db()).await.expect("purge"),
        1
    );
    session_db::delete(&store.db(), "live")
        .await
        .expect("delete");
    assert_eq!(
        session_db::get(&store.db(), "live").await.expect("get"),
        None
    );
    store.close().await;
}

#[tokio::test]
async fn postgres_users_and_sessions() {
    users_and_sessions(TestDb::postgres().await).await;
}

#[tokio::test]
async fn sqlite_users_and_sessions() {
    users_and_sessions(TestDb::sqlite()).await;
}

/// A feature's own queries, written once with `on_db!`, run on both backends.
async fn break_glass_grants(db: TestDb) {
    use gatehouse::auth::grants;
    let store = open(&db).await;
    store.migrate().await.expect("migrates");
    let pool = store.db();
    assert!(grants::list(&pool).await.expect("list").is_empty());
    assert!(
        grants::grant(&pool, "Ops@Example.com", "root")
            .await
            .expect("grant")
    );
    assert!(
        !grants::grant(&pool, "ops@example.com", "root")
            .await
            .expect("again")
    );
    let listed = grants::list(&pool).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .map(|g| (g.email.as_str(), g.granted_by.as_str()))
            .collect::<Vec<_>>(),
        [("ops@example.com", "root")]
    );
    assert!(listed[0].granted_at <= chrono::Utc::now());
    assert!(
        grants::revoke(&pool, "OPS@example.com")
            .await
            .expect("revoke")
    );
    assert!(
        !grants::revoke(&pool, "ops@example.com")
            .await
            .expect("again")
    );
    assert!(grants::list(&pool).await.expect("list").is_empty());
}

#[tokio::test]
async fn postgres_break_glass_grants() {
    break_glass_grants(TestDb::postgres().await).await;
}

#[tokio::test]
async fn sqlite_break_glass_grants() {
    break_glass_grants(TestDb::sqlite()).await;
}

/// Roles, assignments and group mappings: the role feature's own queries on both backends.
async fn roles_and_mappings(db: TestDb) {
    use gatehouse::auth::roles;
    let store = open(&db).await;
    store.migrate().await.expect("migrates");
    let pool = store.db();
    let user = gatehouse::auth::users::upsert(
        &store.db(),
        &gatehouse::store::UserLogin {
            issuer: "https://idp.example".into(),
            subject: "00u9".into(),
            email: Some("ann@example.com".into()),
            email_verified: true,
            name: None,
            groups: vec![],
            is_admin: false,
        },
    )
    .await
    .expect("user");
    let repos = vec!["platform-*".to_string()];
    let role = roles::create(&pool, "platform", "The platform team", &repos)
        .await
        .expect("create")
        .expect("new");
    assert_eq!(role.repo_patterns, repos);
    assert!(
        roles::create(&pool, "platform", "again", &[])
            .await
            .expect("create")
            .is_none(),
        "a name is taken once"
    );
    assert_eq!(roles::all(&pool).await.expect("all"), vec![role.clone()]);
    assert!(
        roles::assign(&pool, user.id, role.id, "root")
            .await
            .expect("assign")
    );
    assert!(
        !roles::assign(&pool, user.id, role.id, "root")
            .await
            .expect("again")
    );
    assert_eq!(
        roles::assigned(&pool, user.id).await.expect("assigned"),
        vec![role.clone()]
    );
    assert!(
        roles::map_group(&pool, "eng", role.id, "root")
            .await
            .expect("map")
    );
    let mappings = roles::group_mappings(&pool).await.expect("mappings");
    assert_eq!(
        mappings
            .iter()
            .map(|m| (m.group_name.as_str(), &m.role))
            .collect::<Vec<_>>(),
        [("eng", &role)]
    );
    assert!(
        roles::unmap_group(&pool, "eng", role.id)
            .await
            .expect("unmap")
    );
    assert!(
        !roles::unmap_group(&pool, "eng", role.id)
            .await
            .expect("again")
    );
    assert!(
        roles::remove(&pool, user.id, role.id)
            .await
            .expect("remove")
    );
    assert!(
        roles::assigned(&pool, user.id)
            .await
            .expect("assigned")
            .is_empty()
    );
}

#[tokio::test]
async fn postgres_roles_and_mappings() {
    roles_and_mappings(TestDb::postgres().await).await;
}

#[tokio::test]
async fn sqlite_roles_and_mappings() {
    roles_and_mappings(TestDb::sqlite()).await;
}

/// Every way the data behind a cached copy changes bumps its version, in the same
/// transaction, whoever writes it: here plain SQL, as another instance or the command line
/// would. Each statement bumps its own kind and leaves the others alone; what does not stand
/// for cached data (a run that has not succeeded) bumps nothing.
async fn data_versions_follow_the_data(db: TestDb) {
    use gatehouse::store::versions::{Versions, read};
    let store = open(&db).await;
    store.migrate().await.expect("migrates");
    let db = store.db();
    let users = |v: &Versions| v.users;
    let access = |v: &Versions| v.access;
    let repos = |v: &Versions| v.repos;
    type Kind = fn(&Versions) -> i64;
    let steps: [(&str, Option<Kind>); 21] = [
        (
            "INSERT INTO users (issuer, subject) VALUES ('https://idp.example', 'bob')",
            Some(users),
        ),
        ("UPDATE users SET groups = '[\"eng\"]'", Some(users)),
        (
            "INSERT INTO roles (name, description, data_sets) VALUES ('web', '', '{\"repos\":[\"web-*\"]}')",
            Some(access),
        ),
        (
            "UPDATE roles SET description = 'Web' WHERE name = 'web'",
            Some(access),
        ),
        (
            "INSERT INTO user_roles (user_id, role_id, granted_by) SELECT u.id, r.id, 't' FROM users u, roles r",
            Some(access),
        ),
        (
            "INSERT INTO role_email_assignments (email, role_id, granted_by) SELECT 'bob@example.com', id, 't' FROM roles",
            Some(access),
        ),
        (
            "INSERT INTO group_role_mappings (group_name, role_id, created_by) SELECT 'eng', id, 't' FROM roles",
            Some(access),
        ),
        (
            "INSERT INTO admin_grants (email, granted_by) VALUES ('root@example.com', 't')",
            Some(access),
        ),
        ("DELETE FROM admin_grants", Some(access)),
        ("DELETE FROM group_role_mappings", Some(access)),
        ("DELETE FROM role_email_assignments", Some(access)),
        ("DELETE FROM user_roles", Some(access)),
        ("DELETE FROM roles", Some(access)),
        (
            "INSERT INTO repos (name, description) VALUES ('web-shop', '')",
            Some(repos),
        ),
        (
            "UPDATE repos SET description = 'The shop' WHERE name = 'web-shop'",
            Some(repos),
        ),
        (
            "INSERT INTO repo_summaries (repo_id, as_of) SELECT id, '2026-12-01' FROM repos",
            Some(repos),
        ),
        ("UPDATE repo_summaries SET views_14d = 5", Some(repos)),
        (
            "INSERT INTO sync_runs (kind, outcome) VALUES ('github', 'running')",
            None,
        ),
        ("UPDATE sync_runs SET outcome = 'success'", Some(repos)),
        ("DELETE FROM repo_summaries", Some(repos)),
        ("DELETE FROM repos", Some(repos)),
    ];
    let kinds: [Kind; 3] = [users, access, repos];
    let mut last = read(&db).await.expect("versions");
    for (sql, bumps) in steps {
        gatehouse::execute!(&db, sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let now = read(&db).await.expect("versions");
        for kind in kinds {
            if bumps.is_some_and(|b| b as usize == kind as usize) {
                assert!(kind(&now) > kind(&last), "{sql}: {last:?} -> {now:?}");
            } else {
                assert_eq!(kind(&now), kind(&last), "{sql}: {last:?} -> {now:?}");
            }
        }
        last = now;
    }
    store.close().await;
}

#[tokio::test]
async fn postgres_data_versions_follow_the_data() {
    data_versions_follow_the_data(TestDb::postgres().await).await;
}

#[tokio::test]
async fn sqlite_data_versions_follow_the_data() {
    data_versions_follow_the_data(TestDb::sqlite()).await;
}

/// Waits up to two seconds (the bound on how late an instance may learn of a change made
/// elsewhere) for `done`.
async fn within_bound(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 2 s");
}

/// On PostgreSQL an instance learns of a bump from the database's announcement, without
/// asking; while the listening connection is gone it reads per request, and it listens again
/// after a second.
#[tokio::test]
async fn postgres_announces_data_versions_and_survives_a_lost_listener() {
    use gatehouse::store::versions::VersionWatch;
    let test_db = TestDb::postgres().await;
    let store = open(&test_db).await;
    store.migrate().await.expect("migrates");
    let db = store.db();
    let gatehouse::store::Db::Postgres(pool) = db.clone() else {
        panic!("a PostgreSQL store");
    };
    let watch = Arc::new(VersionWatch::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(watch.clone().watch(pool.clone(), stop_rx));
    within_bound("listening", || watch.is_live()).await;
    let before = watch.current(&db).await.expect("versions").access;

    // Written by another connection, as another instance would.
    let other = open(&test_db).await;
    gatehouse::execute!(&other.db(), "INSERT INTO roles (name) VALUES ('web')").expect("role");
    // While live, `current` answers from what was announced: given a database that refuses
    // every connection, it still answers.
    let nowhere = gatehouse::store::Db::Postgres(
        sqlx::PgPool::connect_lazy("postgres://postgres@127.0.0.1:1/none").expect("lazy pool"),
    );
    // The access version `watch` answers with, once past `floor` (within the bound).
    let announced_past = |floor: i64| {
        let (watch, nowhere) = (watch.clone(), nowhere.clone());
        async move {
            let mut seen = floor;
            for _ in 0..200 {
                seen = watch.current(&nowhere).await.expect("answers").access;
                if seen > floor {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            seen
        }
    };
    let seen = announced_past(before).await;
    assert!(seen > before, "the announcement arrived");

    // The listening connection is cut: per-request reads until it is back.
    gatehouse::execute!(
        &other.db(),
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE query LIKE 'LISTEN%' AND datname = current_database()"
    )
    .expect("terminate");
    within_bound("not live once the connection is lost", || !watch.is_live()).await;
    gatehouse::execute!(&other.db(), "INSERT INTO roles (name) VALUES ('api')").expect("role");
    let read = watch.current(&db).await.expect("read").access;
    assert!(read > seen, "read per request meanwhile");
    within_bound("listening again", || watch.is_live()).await;
    gatehouse::execute!(&other.db(), "DELETE FROM roles").expect("delete");
    assert!(
        announced_past(read).await > read,
        "announcements arrive again"
    );
    let _ = stop_tx.send(true);
    task.await.expect("stops");
    other.close().await;
    store.close().await;
}
