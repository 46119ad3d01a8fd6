//! `gatehouse import`: full snapshots, validated first, all or nothing, guarded against mass
//! removal, on both databases, through the real binary.

use std::sync::Arc;

use gatehouse::store::{self, Store};

use crate::cli::run;
use crate::support::TestDb;
use crate::support::server::config;

fn write(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, body).expect("write csv");
    path.display().to_string()
}

fn assets_csv(range: std::ops::Range<usize>, model: &str) -> String {
    let mut s = String::from("serial,model,owner_email,assigned_at\n");
    for i in range {
        s.push_str(&format!(
            "SN{i:04},{model},person{i}@example.com,2025-03-{:02}\n",
            i % 28 + 1
        ));
    }
    s
}

async fn open(db: &TestDb) -> Arc<dyn Store> {
    store::connect(&config(&[("GATEHOUSE_DATABASE_URL", db.url())]))
        .await
        .expect("connects")
}

async fn laptops(store: &dyn Store, i: usize) -> Vec<String> {
    gatehouse::directory::store::person_facts(&store.db(), &format!("person{i}@example.com"))
        .await
        .expect("facts")
        .laptops
        .iter()
        .map(|l| format!("{} {}", l.serial, l.model))
        .collect()
}

async fn asset_snapshots(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("GATEHOUSE_DATABASE_URL", db.url())];
    let import = |file: &str, extra: &[&str]| {
        let mut args = vec!["import", "assets", file];
        args.extend_from_slice(extra);
        run(&env, &args)
    };

    let first = write(&dir, "first.csv", &assets_csv(0..10, "Mac"));
    let (out, stdout, stderr) = import(&first, &[]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("assets: 10 added, 0 changed, 0 removed (of 0 existing): applied"),
        "{stdout}"
    );
    let store = open(&db).await;
    assert_eq!(laptops(store.as_ref(), 3).await, vec!["SN0003 Mac"]);

    // The same snapshot again changes nothing.
    let (out, stdout, _) = import(&first, &[]);
    assert!(out.status.success());
    assert!(
        stdout.contains("0 added, 0 changed, 0 removed (of 10 existing)"),
        "{stdout}"
    );

    // Bad rows: every one reported by line, nothing applied (the good rows neither).
    let bad = write(
        &dir,
        "bad.csv",
        "serial,model,owner_email\nSN0001,Mac Pro,person1@example.com\n,Mac,x@example.com\nSN9,Mac,nobody\n",
    );
    let (out, _, stderr) = import(&bad, &[]);
    assert!(!out.status.success());
    assert!(stderr.contains("line 3: serial is empty"), "{stderr}");
    assert!(
        stderr.contains("line 4: owner_email 'nobody' is not an email address"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 row(s)") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(laptops(store.as_ref(), 1).await, vec!["SN0001 Mac"]);

    // 2 of 10 removed (20%), 1 changed, 1 added: within the limit.
    let mut second = assets_csv(0..8, "Mac");
    second = second.replace("SN0005,Mac", "SN0005,Mac Studio");
    second.push_str("SN0100,Mac,person100@example.com,\n");
    let second = write(&dir, "second.csv", &second);
    let (out, stdout, stderr) = import(&second, &["--dry-run"]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("1 added, 1 changed, 2 removed (of 10 existing): dry run"),
        "{stdout}"
    );
    assert_eq!(
        laptops(store.as_ref(), 9).await.len(),
        1,
        "a dry run changes nothing"
    );
    let (out, stdout, _) = import(&second, &[]);
    assert!(out.status.success());
    assert!(stdout.contains("applied"));
    assert!(laptops(store.as_ref(), 9).await.is_empty());
    assert_eq!(laptops(store.as_ref(), 5).await, vec!["SN0005 Mac Studio"]);
    assert_eq!(laptops(store.as_ref(), 100).await, vec!["SN0100 Mac"]);

    // A truncated export (half the rows) is refused; an empty one too; --force applies.
    let truncated = write(&dir, "truncated.csv", &assets_csv(0..4, "Mac"));
    let (out, _, stderr) = import(&truncated, &[]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("refused") && stderr.contains("--force"),
        "{stderr}"
    );
    let empty = write(&dir, "empty.csv", "serial,model,owner_email\n");
    let (out, _, stderr) = import(&empty, &[]);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(
        laptops(store.as_ref(), 6).await.len(),
        1,
        "refusals change nothing"
    );
    let (out, stdout, _) = import(&truncated, &["--force"]);
    assert!(out.status.success());
    assert!(stdout.contains("5 removed"), "{stdout}");
    assert!(laptops(store.as_ref(), 6).await.is_empty());

    // Applied and refused snapshots are audited; dry runs are not.
    let (events, _) = gatehouse::store::audit::list(&store.db(), Some("feed_import"), None, 50, 0)
        .await
        .expect("audit");
    let outcomes: Vec<&str> = events.iter().rev().map(|e| e.outcome.as_str()).collect();
    assert_eq!(
        outcomes,
        [
            "success", "success", "success", "refused", "refused", "success"
        ]
    );
    assert_eq!(events[0].details["forced"], true);
    assert_eq!(events[0].details["via"], "cli");
    store.close().await;
}

#[tokio::test]
async fn asset_snapshots_on_postgres() {
    asset_snapshots(TestDb::postgres().await).await;
}

#[tokio::test]
async fn asset_snapshots_on_sqlite() {
    asset_snapshots(TestDb::sqlite()).await;
}

async fn list_snapshots(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("GATEHOUSE_DATABASE_URL", db.url())];
    let first = write(
        &dir,
        "lists.csv",
        "list_email,name,member_email,role,hidden\n\
         eng@example.com,Engineering,ada@example.com,member,\n\
         eng@example.com,Engineering,bo@example.com,member,\n\
         eng@example.com,Engineering,cy@example.com,owner,\n\
         eng@example.com,Engineering,cy@example.com,member,\n\
         secret@example.com,Secret,ada@example.com,member,true\n",
    );
    let (out, stdout, stderr) = run(&env, &["import", "distribution-lists", &first]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("5 added"), "{stdout}");
    let store = open(&db).await;
    let ada = gatehouse::directory::store::person_facts(&store.db(), "ada@example.com")
        .await
        .expect("facts");
    assert_eq!(ada.member_of.len(), 2);
    assert!(ada.member_of.iter().any(|l| l.name == "Secret" && l.hidden));
    let cy = gatehouse::directory::store::person_facts(&store.db(), "cy@example.com")
        .await
        .expect("facts");
    assert_eq!((cy.member_of.len(), cy.owner_of.len()), (1, 1));

    // Renamed list, one member gone (1 of 5 = 20%), the secret list now public.
    let second = write(
        &dir,
        "lists2.csv",
        "list_email,name,member_email,role,hidden\n\
         eng@example.com,Engineering (all),ada@example.com,member,false\n\
         eng@example.com,Engineering (all),cy@example.com,owner,false\n\
         eng@example.com,Engineering (all),cy@example.com,member,false\n\
         secret@example.com,Secret,ada@example.com,member,false\n",
    );
    let (out, stdout, stderr) = run(&env, &["import", "distribution-lists", &second]);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("0 added, 2 changed, 1 removed (of 5 existing)"),
        "{stdout}"
    );
    let bo = gatehouse::directory::store::person_facts(&store.db(), "bo@example.com")
        .await
        .expect("facts");
    assert!(bo.member_of.is_empty());
    let ada = gatehouse::directory::store::person_facts(&store.db(), "ada@example.com")
        .await
        .expect("facts");
    assert!(ada.member_of.iter().all(|l| !l.hidden));
    assert!(ada.member_of.iter().any(|l| l.name == "Engineering (all)"));

    // Inconsistent rows for one list: refused with the line, nothing changed.
    let bad = write(
        &dir,
        "bad.csv",
        "list_email,name,member_email,role\n\
         eng@example.com,Engineering (all),ada@example.com,member\n\
         eng@example.com,Eng,cy@example.com,owner\n\
         eng@example.com,Engineering (all),zed@example.com,admin\n",
    );
    let (out, _, stderr) = run(&env, &["import", "distribution-lists", &bad]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("line 3: eng@example.com has name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("line 4: role must be member or owner"),
        "{stderr}"
    );
    let cy = gatehouse::directory::store::person_facts(&store.db(), "cy@example.com")
        .await
        .expect("facts");
    assert_eq!(cy.owner_of.len(), 1);
    store.close().await;
}

#[tokio::test]
async fn list_snapshots_on_postgres() {
    list_snapshots(TestDb::postgres().await).await;
}

#[tokio::test]
async fn list_snapshots_on_sqlite() {
    list_snapshots(TestDb::sqlite()).await;
}

/// An import made elsewhere (here the command line, as another process or instance would) is
/// on a running instance's next page: the facts a page shows are read per request, not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_elsewhere_is_on_a_running_instances_next_page() {
    use crate::admin::sign_in_as;
    use crate::signin::get_with;
    use crate::support::fake_idp::FakeIdp;
    let idp = FakeIdp::start(vec!["openid"]).await;
    let db = TestDb::postgres().await;
    let app = crate::signin_refusals::app_with(&idp, &db, &[]).await;
    let (person, _) = sign_in_as(&app, &idp, "person3", &[]).await;
    let profile = || async {
        get_with(&person, &app.url("/profile"))
            .await
            .text()
            .await
            .expect("profile")
    };
    assert!(!profile().await.contains("SN0003"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(&dir, "assets.csv", &assets_csv(0..5, "ThinkPad X1"));
    let env = [("GATEHOUSE_DATABASE_URL", db.url())];
    let (out, _, stderr) = tokio::task::block_in_place(|| run(&env, &["import", "assets", &file]));
    assert!(out.status.success(), "{stderr}");
    let page = profile().await;
    assert!(page.contains("SN0003"), "{page}");
    assert!(page.contains("ThinkPad X1"), "{page}");
    app.stop().await;
}
