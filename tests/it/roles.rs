//! Roles as code through the real binary: each `gatehouse roles` subcommand, `apply` of a
//! roles file (idempotent, exactly the difference, dry run, prune), refusals that change
//! nothing, the audit trail, and an assignment by email that applies at sign-in only when the
//! provider vouches for the address. Each on PostgreSQL and SQLite.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::admin::sign_in_as;
use crate::cli::run;
use crate::signin::{Jar, get_with};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::server::config;
use crate::support::{TestApp, TestDb};
use gatehouse::store;

/// `gatehouse roles …` on `db`, as operator `ops`: (exit code, stdout, stderr).
fn roles(db: &TestDb, args: &[&str]) -> (Option<i32>, String, String) {
    let env = [("GATEHOUSE_DATABASE_URL", db.url()), ("USER", "ops")];
    let mut all = vec!["roles"];
    all.extend_from_slice(args);
    let (out, stdout, stderr) = run(&env, &all);
    (out.status.code(), stdout, stderr)
}

/// Runs and expects success; stdout.
fn ok(db: &TestDb, args: &[&str]) -> String {
    let (code, stdout, stderr) = roles(db, args);
    assert_eq!(code, Some(0), "{args:?}: {stdout}{stderr}");
    stdout
}

/// Runs and expects exit 1; stderr.
fn refused(db: &TestDb, args: &[&str]) -> String {
    let (code, stdout, stderr) = roles(db, args);
    assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
    stderr
}

/// The change lines `apply` printed (without the summary line).
fn changes(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| {
            ["role ", "user ", "group "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect()
}

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().expect("tempdir"))
    }

    fn write(&self, name: &str, text: &str) -> String {
        let path: PathBuf = self.0.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    }
}

/// Everything roles are made of, and the audit rows, as one comparable value.
async fn snapshot(db: &TestDb) -> Value {
    let store = store::connect(&config(&[("GATEHOUSE_DATABASE_URL", db.url())]))
        .await
        .expect("connects");
    store.migrate().await.expect("migrates");
    let pool = store.db();
    let roles: Vec<(String, String)> = gatehouse::on_db!(&pool, |p| sqlx::query_as(
        "SELECT name, CAST(data_sets AS TEXT) FROM roles ORDER BY name"
    )
    .fetch_all(p)
    .await)
    .expect("roles");
    let emails: Vec<(String, String, String)> = gatehouse::on_db!(&pool, |p| sqlx::query_as(
        "SELECT r.name, a.email, a.granted_by FROM role_email_assignments a \
         JOIN roles r ON r.id = a.role_id ORDER BY r.name, a.email"
    )
    .fetch_all(p)
    .await)
    .expect("emails");
    let groups: Vec<(String, String)> = gatehouse::on_db!(&pool, |p| sqlx::query_as(
        "SELECT r.name, g.group_name FROM group_role_mappings g \
         JOIN roles r ON r.id = g.role_id ORDER BY r.name, g.group_name"
    )
    .fetch_all(p)
    .await)
    .expect("groups");
    let audit: Vec<(String, Option<String>, String)> = gatehouse::on_db!(&pool, |p| {
        sqlx::query_as("SELECT kind, actor, CAST(details AS TEXT) FROM audit_events ORDER BY id")
            .fetch_all(p)
            .await
    })
    .expect("audit");
    store.close().await;
    let audit: Vec<Value> = audit
        .into_iter()
        .map(|(kind, actor, details)| {
            let details: Value = serde_json::from_str(&details).expect("json");
            json!({ "kind": kind, "actor": actor, "details": details })
        })
        .collect();
    json!({ "roles": roles, "emails": emails, "groups": groups, "audit": audit })
}

fn audit_rows(snap: &Value) -> Vec<Value> {
    snap["audit"].as_array().cloned().unwrap_or_default()
}

async fn every_subcommand(db: TestDb) {
    let out = ok(&db, &["create", "web", "--repos", "web-*,Acme/API"]);
    assert_eq!(
        changes(&out),
        ["role created: web (repos: web-*, acme/api)"],
        "{out}"
    );
    assert!(out.contains("1 change(s) applied"), "{out}");
    let before = snapshot(&db).await;

    // Refusals name what is wrong and change nothing.
    let err = refused(&db, &["create", "web", "--repos", "x"]);
    assert!(err.contains("'web' exists already"), "{err}");
    let err = refused(&db, &["create", "bad", "--repos", "ok,bad pattern"]);
    assert!(
        err.contains("bad repository pattern") && err.contains("'bad pattern'"),
        "{err}"
    );
    let err = refused(&db, &["assign", "bob@example.com", "nope"]);
    assert!(err.contains("no role named 'nope'"), "{err}");
    let err = refused(&db, &["map-group", "web-team", "nope"]);
    assert!(err.contains("no role named 'nope'"), "{err}");
    let err = refused(&db, &["delete", "nope"]);
    assert!(err.contains("no role named 'nope'"), "{err}");
    let err = refused(&db, &["assign", "not-an-email", "web"]);
    assert!(
        err.contains("'not-an-email' is not an email address"),
        "{err}"
    );
    let err = refused(&db, &["assign", "bo\u{212a}@example.com", "web"]);
    assert!(err.contains("outside ASCII"), "{err}");
    assert_eq!(snapshot(&db).await, before);

    let out = ok(&db, &["assign", "Bob@Example.com", "web"]);
    assert_eq!(changes(&out), ["user assigned: bob@example.com -> web"]);
    let out = ok(&db, &["assign", "bob@example.com", "web"]);
    assert_eq!(out.trim(), "nothing changed");
    let out = ok(&db, &["map-group", "web-team", "web"]);
    assert_eq!(changes(&out), ["group mapped: web-team -> web"]);
    ok(&db, &["create", "ops", "--repos", "*"]);
    ok(&db, &["assign", "ann@example.com", "web"]);

    let listed = ok(&db, &["list"]);
    assert_eq!(
        listed,
        "ops\n  repos:  *\n  users:  -\n  groups: -\n\
         web\n  repos:  web-*, acme/api\n  \
         users:  ann@example.com (pending), bob@example.com (pending)\n  groups: web-team\n"
    );

    let out = ok(&db, &["unmap-group", "web-team", "web"]);
    assert_eq!(changes(&out), ["group unmapped: web-team -> web"]);
    assert_eq!(
        ok(&db, &["unmap-group", "web-team", "web"]).trim(),
        "nothing changed"
    );
    let out = ok(&db, &["unassign", "BOB@example.com", "web"]);
    assert_eq!(changes(&out), ["user unassigned: bob@example.com -> web"]);
    let out = ok(&db, &["delete", "ops"]);
    assert_eq!(changes(&out), ["role deleted: ops"]);
    let listed = ok(&db, &["list"]);
    assert_eq!(
        listed,
        "web\n  repos:  web-*, acme/api\n  users:  ann@example.com (pending)\n  groups: -\n"
    );

    // One audit row per change, by the operator, with the admin pages' kinds.
    let rows = audit_rows(&snapshot(&db).await);
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or_default(),
                r["details"]["action"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("role_created", ""),
            ("role_change", "add"),
            ("group_mapping", "map"),
            ("role_created", ""),
            ("role_change", "add"),
            ("group_mapping", "unmap"),
            ("role_change", "remove"),
            ("role_deleted", ""),
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r["actor"] == "command line (ops)" && r["details"]["via"] == "cli"),
        "{rows:#?}"
    );
    assert_eq!(rows[1]["details"]["email"], "bob@example.com");
    assert_eq!(rows[1]["details"]["role"], "web");
    assert_eq!(rows[2]["details"]["group"], "web-team");
}

#[tokio::test]
async fn every_subcommand_on_postgres() {
    every_subcommand(TestDb::postgres().await).await;
}

#[tokio::test]
async fn every_subcommand_on_sqlite() {
    every_subcommand(TestDb::sqlite()).await;
}

const FIRST: &str = r#"
[roles.web]
repos  = ["web-*", "acme/api"]   # on the name or owner/name
users  = ["bob@example.com", "Ann@Example.com"]
groups = ["web-team"]

[roles.data]
repos = ["warehouse"]
"#;

const EDITED: &str = r#"
[roles.web]
repos  = ["web-*"]
users  = ["ann@example.com", "carl@example.com"]
groups = ["web-team", "frontend"]

[roles.data]
repos = ["warehouse"]
"#;

async fn apply_a_file(db: TestDb) {
    let files = Files::new();
    let first = files.write("roles.toml", FIRST);
    let edited = files.write("edited.toml", EDITED);
    // A role made by hand, which the file does not name.
    ok(&db, &["create", "legacy", "--repos", "old-*"]);

    let before = snapshot(&db).await;
    let out = ok(&db, &["apply", &first, "--dry-run"]);
    let planned = [
        "role created: data (repos: warehouse)",
        "role created: web (repos: web-*, acme/api)",
        "user assigned: ann@example.com -> web",
        "user assigned: bob@example.com -> web",
        "group mapped: web-team -> web",
    ];
    assert_eq!(changes(&out), planned, "{out}");
    assert!(
        out.contains("dry run: 5 change(s), nothing written"),
        "{out}"
    );
    assert_eq!(snapshot(&db).await, before, "a dry run writes nothing");

    let out = ok(&db, &["apply", &first]);
    assert_eq!(changes(&out), planned, "{out}");
    assert!(out.contains("5 change(s) applied"), "{out}");
    let applied = snapshot(&db).await;
    assert_eq!(audit_rows(&applied).len(), audit_rows(&before).len() + 5);

    // The same file again: nothing to do, nothing written, not even an audit row.
    let out = ok(&db, &["apply", &first]);
    assert_eq!(out.trim(), "nothing changed");
    assert_eq!(snapshot(&db).await, applied);

    // An edit changes exactly the difference; a dry run of it first writes nothing.
    let diff = [
        "role updated: web (repos: web-*, acme/api -> web-*)",
        "user unassigned: bob@example.com -> web",
        "user assigned: carl@example.com -> web",
        "group mapped: frontend -> web",
    ];
    let out = ok(&db, &["apply", &edited, "--dry-run"]);
    assert_eq!(changes(&out), diff, "{out}");
    assert_eq!(snapshot(&db).await, applied);
    let out = ok(&db, &["apply", &edited]);
    assert_eq!(changes(&out), diff, "{out}");
    let listed = ok(&db, &["list"]);
    assert_eq!(
        listed,
        "data\n  repos:  warehouse\n  users:  -\n  groups: -\n\
         legacy\n  repos:  old-*\n  users:  -\n  groups: -\n\
         web\n  repos:  web-*\n  \
         users:  ann@example.com (pending), carl@example.com (pending)\n  \
         groups: frontend, web-team\n",
        "the role the file does not name is left alone"
    );
    let rows = audit_rows(&snapshot(&db).await);
    let update = rows
        .iter()
        .find(|r| r["kind"] == "role_updated")
        .expect("an update row");
    assert_eq!(update["details"]["from"], json!(["web-*", "acme/api"]));
    assert_eq!(update["details"]["repos"], json!(["web-*"]));
    assert_eq!(update["actor"], "command line (ops)");

    // --prune deletes the roles the file does not name, and only those.
    let out = ok(&db, &["apply", &edited, "--prune", "--dry-run"]);
    assert_eq!(changes(&out), ["role deleted: legacy"]);
    let out = ok(&db, &["apply", &edited, "--prune"]);
    assert_eq!(changes(&out), ["role deleted: legacy"]);
    assert!(!ok(&db, &["list"]).contains("legacy"));
    let out = ok(&db, &["apply", &edited, "--prune"]);
    assert_eq!(out.trim(), "nothing changed");
}

#[tokio::test]
async fn apply_a_file_on_postgres() {
    apply_a_file(TestDb::postgres().await).await;
}

#[tokio::test]
async fn apply_a_file_on_sqlite() {
    apply_a_file(TestDb::sqlite()).await;
}

async fn bad_files_change_nothing(db: TestDb) {
    let files = Files::new();
    let good = files.write("roles.toml", FIRST);
    ok(&db, &["apply", &good]);
    let before = snapshot(&db).await;
    // (file, the line and reason stderr must name). Each also names a new role, or changes
    // one, so a partial apply would show.
    let cases = [
        (
            "[roles.web]\nrepos = [\"web-*\"]\n\n[roles.new]\nrepos = [\"x\"]\nrepo = [\"y\"]\n",
            "line 6",
            "unknown field `repo`",
        ),
        (
            "owner = \"me\"\n[roles.new]\nrepos = [\"x\"]\n",
            "line 1",
            "unknown field `owner`",
        ),
        (
            "[roles.new]\nrepos = [\"x\",\n  \"web pages\"]\n",
            "line 3, column 3",
            "bad repository pattern: 'web pages' may hold only",
        ),
        (
            "[roles.new]\nrepos = [\"x\"]\nusers = [\"ann@example.com\", \"bob\"]\n",
            "line 3",
            "'bob' is not an email address",
        ),
        (
            "[roles.web]\nrepos = [\"web-*\"]\nusers = [\"ann@example.com\"\n",
            "line 3, column 27",
            "unclosed array",
        ),
        ("[roles.new]\nrepos = \"x\"\n", "line 2", "invalid type"),
    ];
    for (text, line, reason) in cases {
        let path = files.write("bad.toml", text);
        let err = refused(&db, &["apply", &path]);
        assert!(
            err.contains(&format!("{path}: {line}")) && err.contains(reason),
            "{text}\n=> {err}"
        );
        assert!(err.contains("nothing was changed"), "{err}");
        let err = refused(&db, &["apply", &path, "--dry-run"]);
        assert!(err.contains(&format!("{path}: {line}")), "{err}");
        assert_eq!(snapshot(&db).await, before, "{text}");
    }
    let missing = format!("{}-missing", good);
    let err = refused(&db, &["apply", &missing]);
    assert!(
        err.contains("cannot read") && err.contains(&missing),
        "{err}"
    );
    assert_eq!(snapshot(&db).await, before);
}

#[tokio::test]
async fn bad_files_change_nothing_on_postgres() {
    bad_files_change_nothing(TestDb::postgres().await).await;
}

#[tokio::test]
async fn bad_files_change_nothing_on_sqlite() {
    bad_files_change_nothing(TestDb::sqlite()).await;
}

async fn sign_in_with(app: &TestApp, idp: &FakeIdp, claims: Value) -> Jar {
    idp.tamper(Tamper::Claims(claims));
    let (jar, _) = signed_in(app, idp).await;
    idp.tamper(Tamper::None);
    jar
}

/// The id of the one user whose name or email matches `q`, from the admin list.
async fn user_id(app: &TestApp, admin: &Jar, q: &str) -> String {
    let page = get_with(admin, &app.url(&format!("/admin/users?q={q}")))
        .await
        .text()
        .await
        .expect("users");
    assert!(page.contains(">1 user<"), "{q}: {page}");
    let marker = "<a href=\"/admin/users/";
    let at = page.find(marker).expect("a user link") + marker.len();
    page[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect()
}

async fn roles_on_admin_page(app: &TestApp, admin: &Jar, id: &str) -> String {
    let r = get_with(admin, &app.url(&format!("/admin/users/{id}"))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("page");
    // No roles: the page says so instead of an empty table.
    if let Some(start) = page.find("data-testid=\"no-roles\"") {
        return page[start..start + 200.min(page.len() - start)].to_string();
    }
    let start = page.find("data-testid=\"roles\"").expect("roles table");
    let end = page[start..].find("</table>").expect("table end") + start;
    page[start..end].to_string()
}

async fn pending_email_applies_at_verified_sign_in(db: TestDb, extra: &[(&str, &str)]) {
    let files = Files::new();
    let file = files.write(
        "roles.toml",
        "[roles.web]\nrepos = [\"web-*\"]\nusers = [\"carl@example.com\"]\n",
    );
    ok(&db, &["apply", &file]);
    assert!(
        ok(&db, &["list"]).contains("carl@example.com (pending)"),
        "nobody has signed in yet"
    );

    let idp = FakeIdp::start(vec!["openid"]).await;
    let app = app_with(&idp, &db, extra).await;
    let (ann, _) = sign_in_as(&app, &idp, "ann", &["gatehouse-admins"]).await;

    // Someone whose provider does not vouch for the address gets nothing from it.
    let mallory = sign_in_with(
        &app,
        &idp,
        json!({"sub": "mallory", "name": "Mallory Fake", "email": "carl@example.com",
               "email_verified": false, "groups": []}),
    )
    .await;
    let id = user_id(&app, &ann, "fake").await;
    let held = roles_on_admin_page(&app, &ann, &id).await;
    assert!(!held.contains("web"), "{held}");
    let profile = get_with(&mallory, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    assert!(
        profile.contains("data-testid=\"roles\">—</dd>"),
        "{profile}"
    );
    assert!(
        ok(&db, &["list"]).contains("carl@example.com (pending)"),
        "an unverified sign-in does not claim the assignment"
    );

    // The owner of the address, vouched for (in another case), holds the role at once.
    let carl = sign_in_with(
        &app,
        &idp,
        json!({"sub": "carl", "name": "Carl Real", "email": "Carl@Example.COM",
               "email_verified": true, "groups": []}),
    )
    .await;
    let carl_id = user_id(&app, &ann, "real").await;
    let held = roles_on_admin_page(&app, &ann, &carl_id).await;
    assert!(
        held.contains("<td>web</td>") && held.contains("assigned to carl@example.com"),
        "{held}"
    );
    let listed = get_with(&ann, &app.url("/admin/users?q=real"))
        .await
        .text()
        .await
        .expect("users");
    assert!(
        listed.contains("<td>web</td>"),
        "the users list shows the role: {listed}"
    );
    let profile = get_with(&carl, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    assert!(
        profile.contains("data-testid=\"roles\">web</dd>"),
        "{profile}"
    );
    let listed = ok(&db, &["list"]);
    assert!(
        listed.contains("users:  carl@example.com\n"),
        "signed in now: {listed}"
    );

    // Unassigning applies at the next request, without a new sign-in.
    ok(&db, &["unassign", "carl@example.com", "web"]);
    app.settle().await;
    let held = roles_on_admin_page(&app, &ann, &carl_id).await;
    assert!(!held.contains("<td>web</td>"), "{held}");
    app.stop().await;
}

#[tokio::test]
async fn pending_email_applies_at_verified_sign_in_on_postgres() {
    let redis = crate::support::redis_url();
    pending_email_applies_at_verified_sign_in(
        TestDb::postgres().await,
        &[("GATEHOUSE_REDIS_URL", &redis)],
    )
    .await;
}

#[tokio::test]
async fn pending_email_applies_at_verified_sign_in_on_sqlite() {
    pending_email_applies_at_verified_sign_in(TestDb::sqlite(), &[]).await;
}

/// An account given a role on the admin pages keeps it only while the file gives it to that
/// account's verified address; `apply` says so when it takes it away.
#[tokio::test]
async fn apply_replaces_admin_page_assignments_of_the_roles_it_names() {
    let db = TestDb::sqlite();
    let idp = FakeIdp::start(vec!["openid"]).await;
    let app = app_with(&idp, &db, &[]).await;
    let (ann, csrf) = sign_in_as(&app, &idp, "ann", &["gatehouse-admins"]).await;
    let (_dana, _) = sign_in_as(&app, &idp, "dana", &[]).await;
    ok(&db, &["create", "web", "--repos", "web-*"]);
    let dana = user_id(&app, &ann, "dana").await;
    let groups = get_with(&ann, &app.url("/admin/groups"))
        .await
        .text()
        .await
        .expect("groups");
    let end = groups.find(">web</option>").expect("role option");
    let start = groups[..end].rfind("value=\"").expect("value") + 7;
    let web_id = &groups[start..end - 1];
    let r = crate::support::http()
        .post(app.url(&format!("/admin/users/{dana}/roles")))
        .header("cookie", ann.header())
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("action", "add"),
            ("role_id", web_id),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(ok(&db, &["list"]).contains("accounts (admin pages): dana@example.com"));

    let files = Files::new();
    let file = files.write("roles.toml", "[roles.web]\nrepos = [\"web-*\"]\n");
    let out = ok(&db, &["apply", &file]);
    assert_eq!(
        changes(&out),
        ["user unassigned: dana@example.com -> web (assigned to the account on the admin pages)"]
    );
    let held = roles_on_admin_page(&app, &ann, &dana).await;
    assert!(!held.contains("<td>web</td>"), "{held}");
    app.stop().await;
}
