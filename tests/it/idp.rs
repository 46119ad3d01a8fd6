//! The rig's identity provider is real: Rust code reads its discovery document and JWKS,
//! gets machine tokens from it, and sees its signing key rotate.

use std::process::Command;

use serde_json::Value;

use crate::support::http;
use crate::support::idp::{IdpOptions, TestIdp};

async fn get_json(url: &str) -> Value {
    let r = http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn jwt_part(token: &str, index: usize) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(index).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

async fn machine_token(idp: &TestIdp, discovery: &Value) -> String {
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .expect("token endpoint");
    let response: Value = http()
        .post(token_endpoint)
        .basic_auth("gatehouse-machine", Some("gatehouse-machine-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "directory.read"),
            ("resource", "api://default"),
        ])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token json");
    response["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access token from {}: {response}", idp.issuer))
        .to_string()
}

#[tokio::test]
async fn provider_serves_discovery_jwks_and_rotates_keys() {
    let idp = TestIdp::start(IdpOptions::default());
    assert!(
        idp.issuer.starts_with("http://localhost:"),
        "{}",
        idp.issuer
    );
    let discovery = get_json(&format!("{}/.well-known/openid-configuration", idp.issuer)).await;
    assert_eq!(discovery["issuer"], idp.issuer.as_str());
    assert!(
        discovery["code_challenge_methods_supported"]
            .as_array()
            .expect("pkce methods")
            .contains(&Value::from("S256"))
    );
    assert!(discovery["end_session_endpoint"].is_string());
    let scopes = discovery["scopes_supported"].as_array().expect("scopes");
    assert!(scopes.contains(&Value::from("groups")), "{scopes:?}");

    let jwks_uri = discovery["jwks_uri"].as_str().expect("jwks_uri");
    let jwks = get_json(jwks_uri).await;
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "RSA");
    assert!(
        keys[0].get("d").is_none(),
        "a JWKS never publishes the private part"
    );
    let first_kid = keys[0]["kid"].as_str().expect("kid").to_string();

    // A client-credentials token is a JWT for the API audience, signed with that key.
    let token = machine_token(&idp, &discovery).await;
    let header = jwt_part(&token, 0);
    let claims = jwt_part(&token, 1);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], first_kid.as_str());
    assert_eq!(claims["aud"], "api://default");
    assert_eq!(claims["client_id"], "gatehouse-machine");
    assert_eq!(claims["iss"], idp.issuer.as_str());

    // Rotation: a new key signs, the old one stays published.
    let new_kid = idp.rotate_keys().await;
    assert_ne!(new_kid, first_kid);
    let jwks = get_json(jwks_uri).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, vec![new_kid.as_str(), first_kid.as_str()]);
    let token = machine_token(&idp, &discovery).await;
    assert_eq!(jwt_part(&token, 0)["kid"], new_kid.as_str());
}

#[tokio::test]
async fn check_reaches_the_configured_provider_and_fails_on_a_wrong_issuer() {
    let idp = TestIdp::start(IdpOptions::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |issuer: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .env_clear()
            .current_dir(dir.path())
            .env("GATEHOUSE_OIDC_ISSUER", issuer)
            .env("GATEHOUSE_OIDC_CLIENT_ID", "gatehouse-web")
            .env("GATEHOUSE_OIDC_CLIENT_SECRET", "gatehouse-web-secret")
            .env("GATEHOUSE_SESSION_KEY", "k".repeat(40))
            .arg("check")
            .output()
            .expect("check runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = run(&idp.issuer);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("oidc: ok (") && stdout.contains("signing key"),
        "{stdout}"
    );

    let (code, stdout) = run(&format!("{}/wrong", idp.issuer));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("oidc: FAIL: "), "{stdout}");
}
