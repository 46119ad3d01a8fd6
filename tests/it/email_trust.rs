//! Which emails Gatehouse trusts: only one the provider vouches for (`email_verified: true`,
//! or a missing claim when the operator chose `assume`), compared as exact ASCII lower case.
//! An untrusted email must neither make an admin through a break-glass grant nor show the
//! laptops filed under that address.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::run;
use crate::signin::{Jar, get_with};
use crate::signin_refusals::{app_with, signed_in};
use crate::support::fake_idp::{FakeIdp, Tamper};
use crate::support::{TestApp, TestDb};

/// A break-glass grant and a laptop for `email`, as an operator would file them.
fn grant_and_laptop(db: &TestDb, email: &str) {
    let env = [("GATEHOUSE_DATABASE_URL", db.url())];
    let (out, _, stderr) = run(&env, &["admin", "grant", email]);
    assert!(out.status.success(), "{stderr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("assets.csv");
    std::fs::write(
        &csv,
        format!("serial,model,owner_email\nSN-TRUST-1,MacBook Pro,{email}\n"),
    )
    .expect("write");
    let (out, _, stderr) = run(&env, &["import", "assets", &csv.to_string_lossy()]);
    assert!(out.status.success(), "{stderr}");
}

async fn sign_in_with(app: &TestApp, idp: &FakeIdp, claims: Value) -> Jar {
    idp.tamper(Tamper::Claims(claims));
    let (jar, _) = signed_in(app, idp).await;
    idp.tamper(Tamper::None);
    jar
}

/// (may open the admin pages, profile shows the laptop)
async fn what_they_get(app: &TestApp, jar: &Jar) -> (bool, bool) {
    let admin = get_with(jar, &app.url("/admin/users")).await.status();
    assert!(
        matches!(admin, StatusCode::OK | StatusCode::FORBIDDEN),
        "{admin}"
    );
    let profile = get_with(jar, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    (admin == StatusCode::OK, profile.contains("SN-TRUST-1"))
}

#[tokio::test]
async fn an_email_without_email_verified_is_not_trusted_by_default() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let db = TestDb::sqlite();
    grant_and_laptop(&db, "breakglass@example.com");
    let app = app_with(&idp, &db, &[]).await;

    // A guest whose home directory says their mail is the break-glass address: no claim.
    let guest = sign_in_with(
        &app,
        &idp,
        json!({"sub": "guest", "email": "breakglass@example.com", "email_verified": null}),
    )
    .await;
    assert_eq!(what_they_get(&app, &guest).await, (false, false));

    // An explicit false is no better.
    let unverified = sign_in_with(
        &app,
        &idp,
        json!({"sub": "guest2", "email": "breakglass@example.com", "email_verified": false}),
    )
    .await;
    assert_eq!(what_they_get(&app, &unverified).await, (false, false));

    // The owner of the address, vouched for, gets both.
    let owner = sign_in_with(
        &app,
        &idp,
        json!({"sub": "owner", "email": "breakglass@example.com", "email_verified": true}),
    )
    .await;
    assert_eq!(what_they_get(&app, &owner).await, (true, true));
    app.stop().await;
}

#[tokio::test]
async fn assume_trusts_a_missing_claim_but_not_an_explicit_false() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let db = TestDb::sqlite();
    grant_and_laptop(&db, "breakglass@example.com");
    let app = app_with(&idp, &db, &[("GATEHOUSE_OIDC_EMAIL_VERIFIED", "assume")]).await;
    let silent = sign_in_with(
        &app,
        &idp,
        json!({"sub": "staff", "email": "breakglass@example.com", "email_verified": null}),
    )
    .await;
    assert_eq!(what_they_get(&app, &silent).await, (true, true));
    let refused = sign_in_with(
        &app,
        &idp,
        json!({"sub": "staff2", "email": "breakglass@example.com", "email_verified": false}),
    )
    .await;
    assert_eq!(what_they_get(&app, &refused).await, (false, false));
    app.stop().await;
}

#[tokio::test]
async fn look_alike_characters_match_no_one() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let db = TestDb::sqlite();
    grant_and_laptop(&db, "kelvin@example.com");
    // U+212A KELVIN SIGN: Unicode lower-casing folds it into an ASCII `k`.
    let app = app_with(&idp, &db, &[]).await;
    let lookalike = sign_in_with(
        &app,
        &idp,
        json!({"sub": "mallory", "email": "\u{212A}elvin@example.com", "email_verified": true}),
    )
    .await;
    assert_eq!(what_they_get(&app, &lookalike).await, (false, false));
    // And the real address, in another case, is the same person.
    let real = sign_in_with(
        &app,
        &idp,
        json!({"sub": "kelvin", "email": "Kelvin@Example.com", "email_verified": true}),
    )
    .await;
    assert_eq!(what_they_get(&app, &real).await, (true, true));
    app.stop().await;

    // A grant cannot be written with a look-alike either.
    let (out, _, stderr) = run(
        &[("GATEHOUSE_DATABASE_URL", db.url())],
        &["admin", "grant", "\u{212A}elvin@example.com"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("outside ASCII"), "{stderr}");
}

#[tokio::test]
async fn one_source_s_flag_never_vouches_for_the_other_s_address() {
    let idp = FakeIdp::start(vec!["openid", "email", "profile", "groups"]).await;
    let db = TestDb::sqlite();
    grant_and_laptop(&db, "breakglass@example.com");
    let app = app_with(&idp, &db, &[]).await;
    // The ID token names the address without vouching for it; userinfo vouches, for its own
    // (different) address. The ID token's address wins and stays unverified.
    idp.tamper(Tamper::Split {
        id_token: json!({"sub": "guest", "email": "breakglass@example.com", "email_verified": null}),
        userinfo: json!({"sub": "guest", "email": "guest@example.org", "email_verified": true}),
    });
    let (jar, _) = signed_in(&app, &idp).await;
    idp.tamper(Tamper::None);
    assert_eq!(what_they_get(&app, &jar).await, (false, false));
    // Without an address in the ID token, userinfo's address comes with userinfo's flag.
    idp.tamper(Tamper::Split {
        id_token: json!({"sub": "owner", "email": null, "email_verified": null}),
        userinfo: json!({"sub": "owner", "email": "breakglass@example.com", "email_verified": true}),
    });
    let (jar, _) = signed_in(&app, &idp).await;
    idp.tamper(Tamper::None);
    assert_eq!(what_they_get(&app, &jar).await, (true, true));
    app.stop().await;
}
