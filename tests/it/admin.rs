//! Administration through the real router: who may enter, roles and group mappings, revoking
//! anyone's sessions, and break-glass admins from the command line.

use reqwest::StatusCode;
use serde_json::json;

use crate::signin::{Jar, csrf_from, get_with};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::{TestApp, TestDb, http};

pub async fn sign_in_as(app: &TestApp, idp: &FakeIdp, sub: &str, groups: &[&str]) -> (Jar, String) {
    idp.tamper(Tamper::Claims(json!({
        "sub": sub, "email": format!("{sub}@example.com"), "name": sub, "groups": groups,
    })));
    let (jar, _) = signed_in(app, idp).await;
    idp.tamper(Tamper::None);
    let page = get_with(&jar, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    (jar, csrf_from(&page))
}

async fn post(app: &TestApp, jar: &Jar, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http()
        .post(app.url(path))
        .header("cookie", jar.header())
        .form(form)
        .send()
        .await
        .expect("post")
}

const ADMIN_GETS: &[&str] = &[
    "/admin/users",
    "/admin/users/1",
    "/admin/users/1/sessions/revoke",
    "/admin/groups",
    "/admin/audit",
    "/admin/sync",
];

#[tokio::test]
async fn non_admins_are_refused_on_every_admin_route() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    let app = app_with(&idp, &db, &[]).await;
    let (jar, csrf) = sign_in_as(&app, &idp, "bob", &["engineering"]).await;
    for path in ADMIN_GETS {
        let r = get_with(&jar, &app.url(path)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(
            r.text().await.expect("page").contains("for administrators"),
            "{path}"
        );
        // Signed out: sign in first.
        let r = http().get(app.url(path)).send().await.expect("anon");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
    }
    let posts: &[(&str, &[(&str, &str)])] = &[
        (
            "/admin/users/1/roles",
            &[("action", "add"), ("role_id", "1")],
        ),
        ("/admin/users/1/sessions/revoke", &[]),
        (
            "/admin/groups",
            &[("action", "create_role"), ("name", "sneaky")],
        ),
    ];
    for (path, fields) in posts {
        let mut form = fields.to_vec();
        form.push(("csrf_token", &csrf));
        assert_eq!(
            post(&app, &jar, path, &form).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    app.stop().await;
}

async fn roles_groups_and_revocation(db: TestDb, extra: &[(&str, &str)]) {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let app = app_with(&idp, &db, extra).await;
    let (ann, csrf) = sign_in_as(&app, &idp, "ann", &["gatehouse-admins"]).await;
    let (carl, _) = sign_in_as(&app, &idp, "carl", &["staff"]).await;

    let users = get_with(&ann, &app.url("/admin/users?q=CARL"))
        .await
        .text()
        .await
        .expect("users");
    assert!(users.contains("<td>carl@example.com</td>"), "{users}");
    assert!(
        !users.contains("<td>ann@example.com</td>"),
        "the search filters: {users}"
    );
    let marker = "<a href=\"/admin/users/";
    let at = users.find(marker).expect("a user link") + marker.len();
    let carl_id: String = users[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();

    // Roles are created, mapped from a group, and assigned; forms need the CSRF token.
    let no_token = post(
        &app,
        &ann,
        "/admin/groups",
        &[("action", "create_role"), ("name", "x")],
    )
    .await;
    assert_eq!(no_token.status(), StatusCode::BAD_REQUEST);
    for (name, repos) in [("platform", "platform-*"), ("web", "website")] {
        let r = post(
            &app,
            &ann,
            "/admin/groups",
            &[
                ("csrf_token", &csrf),
                ("action", "create_role"),
                ("name", name),
                ("repos", repos),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    let dup = post(
        &app,
        &ann,
        "/admin/groups",
        &[
            ("csrf_token", &csrf),
            ("action", "create_role"),
            ("name", "web"),
        ],
    )
    .await;
    assert_eq!(dup.status(), StatusCode::BAD_REQUEST);
    let groups = get_with(&ann, &app.url("/admin/groups"))
        .await
        .text()
        .await
        .expect("groups");
    let role_id = |name: &str| -> String {
        let needle = format!(">{name}</option>");
        let end = groups.find(&needle).expect("role option");
        let start = groups[..end].rfind("value=\"").expect("value") + 7;
        groups[start..end - 1].to_string()
    };
    let (platform, web) = (role_id("platform"), role_id("web"));
    let r = post(
        &app,
        &ann,
        "/admin/groups",
        &[
            ("csrf_token", &csrf),
            ("action", "map"),
            ("group", "staff"),
            ("role_id", &platform),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = post(
        &app,
        &ann,
        &format!("/admin/users/{carl_id}/roles"),
        &[("csrf_token", &csrf), ("action", "add"), ("role_id", &web)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let detail = get_with(&ann, &app.url(&format!("/admin/users/{carl_id}")))
        .await
        .text()
        .await
        .expect("detail");
    assert!(
        detail.contains("group staff"),
        "the mapped role says where it comes from"
    );
    assert!(detail.contains("assigned"));
    assert!(
        detail.contains("no: in none of the admin groups"),
        "{detail}"
    );
    assert!(
        detail.contains("data-testid=\"session-count\">1<"),
        "{detail}"
    );
    let own = get_with(&ann, &app.url("/admin/users?q=ann"))
        .await
        .text()
        .await
        .expect("users");
    let at = own.find(marker).expect("ann") + marker.len();
    let ann_id: String = own[at..].chars().take_while(char::is_ascii_digit).collect();
    let mine = get_with(&ann, &app.url(&format!("/admin/users/{ann_id}")))
        .await
        .text()
        .await
        .expect("me");
    assert!(
        mine.contains("yes, through the group(s) gatehouse-admins"),
        "{mine}"
    );

    // Removing the assignment applies at once; the group's role stays.
    let r = post(
        &app,
        &ann,
        &format!("/admin/users/{carl_id}/roles"),
        &[
            ("csrf_token", &csrf),
            ("action", "remove"),
            ("role_id", &web),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let detail = get_with(&ann, &app.url(&format!("/admin/users/{carl_id}")))
        .await
        .text()
        .await
        .expect("detail");
    assert!(
        !detail.contains("<span class=\"tag\">assigned</span>"),
        "{detail}"
    );
    assert!(detail.contains("group staff"));

    // Signing carl out everywhere ends his session at once.
    assert_eq!(
        get_with(&carl, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    let r = post(
        &app,
        &ann,
        &format!("/admin/users/{carl_id}/sessions/revoke"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get_with(&carl, &app.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get_with(&ann, &app.url("/profile")).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[tokio::test]
async fn roles_groups_and_revocation_on_postgres_with_redis() {
    let redis = crate::support::redis_url();
    roles_groups_and_revocation(TestDb::postgres().await, &[("GATEHOUSE_REDIS_URL", &redis)]).await;
}

#[tokio::test]
async fn roles_groups_and_revocation_on_sqlite() {
    roles_groups_and_revocation(TestDb::sqlite(), &[]).await;
}

#[tokio::test]
async fn break_glass_grant_from_the_command_line() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::postgres().await;
    let app = app_with(&idp, &db, &[]).await;
    let (dana, _) = sign_in_as(&app, &idp, "dana", &[]).await;
    assert_eq!(
        get_with(&dana, &app.url("/admin/users")).await.status(),
        StatusCode::FORBIDDEN
    );

    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .env_clear()
            .env("GATEHOUSE_DATABASE_URL", db.url())
            .args(args)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = cli(&["admin", "grant", "Dana@Example.com"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("dana@example.com is now an administrator"),
        "{stdout}"
    );
    let (_, again, _) = cli(&["admin", "grant", "dana@example.com"]);
    assert!(again.contains("already"), "{again}");
    let (code, _, stderr) = cli(&["admin", "grant", "not-an-email"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("not an email address"), "{stderr}");

    // No new sign-in needed: the next request sees the grant (the command line is another
    // process: the app learns of its change from PostgreSQL's announcement; `settle` reads
    // the versions rather than wait for it).
    app.settle().await;
    let r = get_with(&dana, &app.url("/admin/users")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let groups = get_with(&dana, &app.url("/admin/groups"))
        .await
        .text()
        .await
        .expect("page");
    assert!(
        groups.contains("dana@example.com") && groups.contains("command line"),
        "{groups}"
    );
    let (_, listed, _) = cli(&["admin", "list"]);
    assert!(listed.starts_with("dana@example.com\t"), "{listed}");

    let (code, stdout, _) = cli(&["admin", "revoke", "dana@example.com"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("no longer"), "{stdout}");
    app.settle().await;
    assert_eq!(
        get_with(&dana, &app.url("/admin/users")).await.status(),
        StatusCode::FORBIDDEN
    );
    app.stop().await;
}

#[tokio::test]
async fn an_admin_change_is_audited_with_the_address_it_came_from() {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::sqlite();
    // One proxy in front: the last X-Forwarded-For entry is the client.
    let app = app_with(&idp, &db, &[("GATEHOUSE_TRUSTED_PROXIES", "1")]).await;
    // Signed in from the loopback peer (no X-Forwarded-For), acting from elsewhere.
    let (ann, csrf) = sign_in_as(&app, &idp, "ann", &["gatehouse-admins"]).await;
    let (_carl, _) = sign_in_as(&app, &idp, "carl", &[]).await;
    let r = http()
        .post(app.url("/admin/users/2/sessions/revoke"))
        .header("cookie", ann.header())
        .header("x-forwarded-for", "203.0.113.9")
        .form(&[("csrf_token", &csrf)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("sqlite");
    let (kind, ip, details): (String, Option<String>, String) = sqlx::query_as(
        "SELECT kind, client_ip, details FROM audit_events \
         WHERE kind = 'session_revoked' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("an audit row");
    assert_eq!(kind, "session_revoked");
    assert_eq!(ip.as_deref(), Some("203.0.113.9"), "{details}");
    let details: serde_json::Value = serde_json::from_str(&details).expect("json");
    assert_eq!(details["session_client_ip"], "127.0.0.1", "{details}");
    app.stop().await;
}

/// The page's text between the marker `data-testid="ID"` and the end of its element's line.
fn testid<'a>(page: &'a str, id: &str) -> Option<&'a str> {
    let at = page.find(&format!("data-testid=\"{id}\""))?;
    let end = page[at..].find('\n').map_or(page.len(), |e| at + e);
    Some(&page[at..end])
}

async fn page_of(jar: &Jar, app: &TestApp, path: &str) -> String {
    let r = get_with(jar, &app.url(path)).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.expect("page")
}

async fn admin_feedback(db: TestDb, extra: &[(&str, &str)]) {
    let idp = FakeIdp::start(vec!["openid"]).await;
    let app = app_with(&idp, &db, extra).await;
    let (ann, csrf) = sign_in_as(&app, &idp, "ann", &["gatehouse-admins"]).await;

    // Empty lists say what is empty and what to do; the mapping form waits for a role and
    // says so.
    let groups = page_of(&ann, &app, "/admin/groups").await;
    for id in [
        "mappings-empty",
        "roles-empty",
        "grants-empty",
        "map-needs-role",
    ] {
        assert!(testid(&groups, id).is_some(), "{id}: {groups}");
    }
    assert!(testid(&groups, "map-form").is_none(), "{groups}");
    assert!(testid(&groups, "flash").is_none(), "no notice yet");
    let nobody = page_of(&ann, &app, "/admin/users?q=nobody-at-all").await;
    assert!(
        testid(&nobody, "users-empty").is_some_and(|t| t.contains("No user matches")),
        "{nobody}"
    );

    // A refused form: the page again, the reason beside that form, what was typed kept.
    let create = |name: &'static str, repos: &'static str| {
        let (app, ann, csrf) = (&app, &ann, csrf.clone());
        async move {
            post(
                app,
                ann,
                "/admin/groups",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("action", "create_role"),
                    ("name", name),
                    ("description", "Web people"),
                    ("repos", repos),
                ],
            )
            .await
        }
    };
    for (name, repos, why) in [
        ("   ", "web-*", "A role name is required"),
        ("web", "web-%", "Repository pattern"),
    ] {
        let r = create(name, repos).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{why}");
        let page = r.text().await.expect("page");
        let error = testid(&page, "role-error").expect("an error beside the form");
        assert!(error.contains(why), "{error}");
        // Said at the top too, where the answer opens, with a link to the form.
        assert!(
            testid(&page, "refused").is_some_and(|t| t.contains("href=\"#role-error\"")),
            "{page}"
        );
        assert!(page.contains("aria-describedby=\"role-error\""), "{page}");
        assert!(
            page.contains("value=\"Web people\""),
            "typed text kept: {page}"
        );
        assert!(testid(&page, "map-error").is_none());
        assert!(!page.contains("class=\"error-page\""), "not an error page");
    }

    // Done: back to the page with a notice, shown once.
    let r = create("web", "web-*").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let groups = page_of(&ann, &app, "/admin/groups").await;
    let flash = testid(&groups, "flash").expect("a notice");
    assert!(flash.contains("Role “web” created"), "{flash}");
    let again = page_of(&ann, &app, "/admin/groups").await;
    assert!(testid(&again, "flash").is_none(), "shown once: {again}");
    assert!(testid(&again, "map-form").is_some(), "a role exists now");

    let dup = create("web", "web-*").await;
    assert_eq!(dup.status(), StatusCode::BAD_REQUEST);
    let page = dup.text().await.expect("page");
    assert!(
        testid(&page, "role-error").is_some_and(|e| e.contains("exists already")),
        "{page}"
    );

    // The mapping form's refusals stay beside it.
    let value = "value=\"";
    let at = again.find(">web</option>").expect("the role offered");
    let start = again[..at].rfind(value).expect("its id") + value.len();
    let web = again[start..at - 1].to_string();
    let map = |group: &'static str, role_id: String| {
        let (app, ann, csrf) = (&app, &ann, csrf.clone());
        async move {
            post(
                app,
                ann,
                "/admin/groups",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("action", "map"),
                    ("group", group),
                    ("role_id", role_id.as_str()),
                ],
            )
            .await
        }
    };
    let r = map("", web.clone()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("page");
    assert!(
        testid(&page, "map-error").is_some_and(|e| e.contains("A group name is required")),
        "{page}"
    );
    let r = map("staff", "999999".into()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.expect("page");
    assert!(testid(&page, "map-error").is_some_and(|e| e.contains("no longer exists")));
    assert!(page.contains("value=\"staff\""), "typed group kept: {page}");
    assert_eq!(
        map("staff", web.clone()).await.status(),
        StatusCode::SEE_OTHER
    );
    let groups = page_of(&ann, &app, "/admin/groups").await;
    assert!(
        testid(&groups, "flash")
            .is_some_and(|f| f.contains("Members of “staff” hold the role “web”")),
        "{groups}"
    );
    assert_eq!(map("staff", web).await.status(), StatusCode::SEE_OTHER);
    let groups = page_of(&ann, &app, "/admin/groups").await;
    assert!(
        testid(&groups, "flash").is_some_and(|f| f.contains("nothing changed")),
        "{groups}"
    );

    // Signing someone out everywhere: a danger link to a second step, which says what will
    // happen; nothing ends until its button is pressed.
    let (carl, _) = sign_in_as(&app, &idp, "carl", &["staff"]).await;
    let users = page_of(&ann, &app, "/admin/users?q=carl").await;
    let marker = "<a href=\"/admin/users/";
    let at = users.find(marker).expect("carl's link") + marker.len();
    let carl_id: String = users[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let detail = page_of(&ann, &app, &format!("/admin/users/{carl_id}")).await;
    let button = testid(&detail, "revoke-all").expect("the way to the second step");
    assert!(
        detail.contains(&format!(
            "<a class=\"button danger\" href=\"/admin/users/{carl_id}/sessions/revoke\""
        )),
        "{button}"
    );
    let confirm = page_of(
        &ann,
        &app,
        &format!("/admin/users/{carl_id}/sessions/revoke"),
    )
    .await;
    assert!(
        testid(&confirm, "revoke-summary").is_some_and(|s| s.contains("the 1 active session")),
        "{confirm}"
    );
    assert!(
        confirm.contains("class=\"button danger\" data-testid=\"revoke-confirm\""),
        "{confirm}"
    );
    assert_eq!(
        get_with(&carl, &app.url("/profile")).await.status(),
        StatusCode::OK,
        "showing the second step ends nothing"
    );
    let r = post(
        &app,
        &ann,
        &format!("/admin/users/{carl_id}/sessions/revoke"),
        &[("csrf_token", &csrf)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let detail = page_of(&ann, &app, &format!("/admin/users/{carl_id}")).await;
    assert!(
        testid(&detail, "flash").is_some_and(|f| f.contains("carl is signed out of 1 session")),
        "{detail}"
    );
    assert!(testid(&detail, "no-sessions").is_some(), "{detail}");
    let confirm = page_of(
        &ann,
        &app,
        &format!("/admin/users/{carl_id}/sessions/revoke"),
    )
    .await;
    assert!(
        testid(&confirm, "revoke-summary").is_some_and(|s| s.contains("nothing to end")),
        "{confirm}"
    );
    assert!(testid(&confirm, "revoke-confirm").is_none());
    assert_eq!(
        get_with(&carl, &app.url("/profile")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.stop().await;
}

#[tokio::test]
async fn admin_forms_answer_beside_the_form_and_with_a_notice_once_on_sqlite() {
    admin_feedback(TestDb::sqlite(), &[]).await;
}

#[tokio::test]
async fn admin_forms_answer_beside_the_form_and_with_a_notice_once_on_postgres_with_redis() {
    let redis = crate::support::redis_url();
    admin_feedback(TestDb::postgres().await, &[("GATEHOUSE_REDIS_URL", &redis)]).await;
}
