//! The rig's identity provider is real: Rust code reads its discovery document and JWKS,
//! gets machine tokens from it, and sees its signing key rotate.

use std::process::Command;

use serde_json::Value;

use crate::signin::{Jar, location};
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

/// The sign-in the next feature builds on, driven without a browser: authorization code with
/// PKCE for alice, code exchange with client_secret_basic, userinfo with her groups.
#[tokio::test]
async fn provider_signs_alice_in_with_pkce_and_userinfo_has_groups() {
    use base64::Engine;
    use sha2::Digest;
    let redirect = "http://127.0.0.1:9/auth/callback";
    let idp = TestIdp::start(IdpOptions::default());
    let discovery = get_json(&format!("{}/.well-known/openid-configuration", idp.issuer)).await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let verifier = "a-verifier-of-enough-length-0123456789-abcdefghij";
    let challenge = b64.encode(sha2::Sha256::digest(verifier.as_bytes()));

    let mut authorize =
        url::Url::parse(discovery["authorization_endpoint"].as_str().expect("authz")).expect("url");
    authorize
        .query_pairs_mut()
        .append_pair("client_id", "gatehouse-web")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid email profile groups")
        .append_pair("redirect_uri", redirect)
        .append_pair("state", "state-123")
        .append_pair("nonce", "nonce-456")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let mut jar = Jar::default();
    let client = http();
    let r = client
        .get(authorize.as_str())
        .send()
        .await
        .expect("authorize");
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
    jar.take(&r);
    let interaction = location(&r, &idp.issuer);
    let r = client
        .get(&interaction)
        .header("cookie", jar.header())
        .send()
        .await
        .expect("login page");
    assert!(r.text().await.expect("html").contains("name=\"login\""));
    let r = client
        .post(&interaction)
        .header("cookie", jar.header())
        .form(&[("prompt", "login"), ("login", "alice"), ("password", "any")])
        .send()
        .await
        .expect("login");
    jar.take(&r);
    let mut next = location(&r, &idp.issuer);
    // Follow the provider's own redirects until it sends the browser back to Gatehouse.
    for _ in 0..5 {
        if next.starts_with(redirect) {
            break;
        }
        let r = client
            .get(&next)
            .header("cookie", jar.header())
            .send()
            .await
            .expect("resume");
        jar.take(&r);
        next = location(&r, &idp.issuer);
    }
    let callback = url::Url::parse(&next).expect("callback url");
    assert!(next.starts_with(redirect), "{next}");
    let params: std::collections::HashMap<_, _> = callback.query_pairs().into_owned().collect();
    assert_eq!(params["state"], "state-123");
    assert_eq!(params["iss"], idp.issuer, "RFC 9207 iss in the response");

    let tokens: Value = client
        .post(discovery["token_endpoint"].as_str().expect("token"))
        .basic_auth("gatehouse-web", Some("gatehouse-web-secret"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token json");
    let id_token = tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{tokens}"));
    let claims = jwt_part(id_token, 1);
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["nonce"], "nonce-456");
    assert_eq!(claims["aud"], "gatehouse-web");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["gatehouse-admins", "engineering"])
    );

    let userinfo: Value = client
        .get(discovery["userinfo_endpoint"].as_str().expect("userinfo"))
        .bearer_auth(tokens["access_token"].as_str().expect("access token"))
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("userinfo json");
    assert_eq!(userinfo["sub"], "alice");
    assert_eq!(userinfo["email"], "alice@example.com");
    assert_eq!(
        userinfo["groups"],
        serde_json::json!(["gatehouse-admins", "engineering"])
    );
}

#[tokio::test]
async fn machine_scopes_are_limited_per_client_and_counted() {
    let idp = TestIdp::start(IdpOptions::default());
    let discovery = get_json(&format!("{}/.well-known/openid-configuration", idp.issuer)).await;
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .expect("token endpoint");
    let ask = |client: &'static str, scope: &'static str| {
        http()
            .post(token_endpoint)
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
    };
    // No `resource` parameter: the API audience is the default for machine clients.
    let r: Value = ask("gatehouse-reader", "directory.read")
        .await
        .expect("reader")
        .json()
        .await
        .expect("json");
    let claims = jwt_part(
        r["access_token"].as_str().unwrap_or_else(|| panic!("{r}")),
        1,
    );
    assert_eq!(claims["aud"], "api://default");
    assert_eq!(claims["scope"], "directory.read");
    assert_eq!(claims["cid"], "gatehouse-reader");
    let refused = ask("gatehouse-reader", "directory.write")
        .await
        .expect("reader write");
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    let wrong_secret = http()
        .post(token_endpoint)
        .basic_auth("gatehouse-machine", Some("nope"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "directory.read"),
        ])
        .send()
        .await
        .expect("bad secret");
    assert_eq!(wrong_secret.status(), reqwest::StatusCode::UNAUTHORIZED);

    let stats = get_json(&format!("{}/__test/stats", idp.issuer)).await;
    assert_eq!(stats["token_requests"], 3);
    assert_eq!(stats["discovery_requests"], 1);
}
