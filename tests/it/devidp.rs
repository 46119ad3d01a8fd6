//! Dev mode's built-in identity provider, through the same relying-party code as production.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::Value;

use crate::signin::{Jar, get_with, location};
use crate::support::{TestApp, TestDb, http};

pub fn hidden_fields(html: &str, user: &str) -> Vec<(String, String)> {
    // The form of the picked user: its hidden inputs, in order.
    let start = html
        .find(&format!("name=\"user\" value=\"{user}\""))
        .expect("a form for the user");
    let form_start = html[..start].rfind("<form").expect("form start");
    let mut fields = Vec::new();
    let mut rest = &html[form_start..start + 40];
    while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[i + 27..];
        let name = &rest[..rest.find('"').expect("name end")];
        let v = rest.find("value=\"").expect("value") + 7;
        let value = &rest[v..v + rest[v..].find('"').expect("value end")];
        fields.push((
            name.to_string(),
            value.replace("&#x2f;", "/").replace("&#x3a;", ":"),
        ));
    }
    fields
}

/// Signs `user` in through the built-in provider with plain HTTP requests, as a browser would.
pub async fn dev_sign_in(base: &str, user: &str) -> Jar {
    let start = http()
        .get(format!("{base}/auth/login?next=/profile"))
        .send()
        .await
        .expect("login");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let mut jar = Jar::default();
    jar.take(&start);
    let html = http()
        .get(location(&start, base))
        .send()
        .await
        .expect("pick page")
        .text()
        .await
        .expect("html");
    let picked = http()
        .post(format!("{base}/dev-idp/authorize"))
        .form(&hidden_fields(&html, user))
        .send()
        .await
        .expect("pick");
    assert_eq!(picked.status(), StatusCode::SEE_OTHER);
    let done = get_with(&jar, &location(&picked, base)).await;
    assert_eq!(done.status(), StatusCode::OK);
    jar.take(&done);
    jar
}

#[tokio::test]
async fn dev_mode_signs_in_a_demo_user_and_issues_machine_tokens() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let discovery: Value = http()
        .get(app.url("/dev-idp/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("json");
    assert_eq!(discovery["issuer"], app.url("/dev-idp"));

    let start = http()
        .get(app.url("/auth/login?next=/profile"))
        .send()
        .await
        .expect("login");
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let mut jar = Jar::default();
    jar.take(&start);
    let authorize = location(&start, &app.base);
    assert!(
        authorize.starts_with(&app.url("/dev-idp/authorize?")),
        "{authorize}"
    );
    let page = http().get(&authorize).send().await.expect("pick page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("Sign in as alice") && html.contains("Sign in as bob"));
    let form = hidden_fields(&html, "alice");
    assert!(
        form.contains(&("user".to_string(), "alice".to_string())),
        "{form:?}"
    );
    let picked = http()
        .post(app.url("/dev-idp/authorize"))
        .form(&form)
        .send()
        .await
        .expect("pick alice");
    assert_eq!(
        picked.status(),
        StatusCode::SEE_OTHER,
        "{}",
        picked.text().await.unwrap_or_default()
    );
    let callback = location(&picked, &app.base);
    let params: HashMap<String, String> = url::Url::parse(&callback)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect();
    assert_eq!(params["iss"], app.url("/dev-idp"));
    let done = get_with(&jar, &callback).await;
    assert_eq!(done.status(), StatusCode::OK);
    jar.take(&done);
    let profile = get_with(&jar, &app.url("/profile"))
        .await
        .text()
        .await
        .expect("profile");
    assert!(
        profile.contains("alice@example.com") && profile.contains("data-testid=\"admin\">yes<")
    );
    // The demo users are in the sample directory: their pages are not empty.
    for shown in ["alice-example", "DEMO-", "Engineering", "Platform team"] {
        assert!(profile.contains(shown), "{shown}: {profile}");
    }
    let text = |path: &'static str| {
        let (jar, url) = (jar.clone(), app.url(path));
        async move { get_with(&jar, &url).await.text().await.expect("page") }
    };
    assert!(
        text("/lookup?email=bob%40example.com")
            .await
            .contains("bob-example")
    );
    // Some coworkers left: shown only when asked for.
    assert!(!text("/gh/search?q=former").await.contains("Dana Former"));
    assert!(
        text("/gh/search?q=former&include_departed=1")
            .await
            .contains("Dana Former")
    );

    // The same code cannot be redeemed twice (the callback already used it).
    let token_endpoint = discovery["token_endpoint"]
        .as_str()
        .expect("token endpoint");
    let replay = http()
        .post(token_endpoint)
        .basic_auth("gatehouse-dev", Some("wrong"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", params["code"].as_str()),
        ])
        .send()
        .await
        .expect("replay");
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);

    // Machine tokens for trying the API.
    let token: Value = http()
        .post(token_endpoint)
        .basic_auth("gatehouse-dev-machine", Some("dev-machine-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "directory.read"),
        ])
        .send()
        .await
        .expect("client credentials")
        .json()
        .await
        .expect("json");
    let at = token["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{token}"));
    use base64::Engine;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(at.split('.').nth(1).expect("payload"))
            .expect("b64"),
    )
    .expect("json");
    assert_eq!(claims["aud"], "api://default");
    assert_eq!(claims["scope"], "directory.read");
    let refused = http()
        .post(token_endpoint)
        .basic_auth("gatehouse-dev-machine", Some("dev-machine-secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .expect("bad scope");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    app.stop().await;
}

#[tokio::test]
async fn dev_provider_refuses_foreign_clients_redirects_and_missing_pkce() {
    let db = TestDb::sqlite();
    let app = TestApp::start(&[("GATEHOUSE_DATABASE_URL", db.url())]).await;
    let cb = url::form_urlencoded::byte_serialize(app.url("/auth/callback").as_bytes())
        .collect::<String>();
    let good = format!(
        "/dev-idp/authorize?response_type=code&client_id=gatehouse-dev&redirect_uri={cb}&scope=openid&state=s&nonce=n&code_challenge=abc&code_challenge_method=S256"
    );
    assert_eq!(
        http()
            .get(app.url(&good))
            .send()
            .await
            .expect("ok")
            .status(),
        StatusCode::OK
    );
    for bad in [
        good.replace("client_id=gatehouse-dev", "client_id=other"),
        good.replace(&cb, "https%3A%2F%2Fevil.example%2Fcb"),
        good.replace(
            "&code_challenge_method=S256",
            "&code_challenge_method=plain",
        ),
        good.replace("&code_challenge=abc", ""),
        good.replace("scope=openid", "scope=email"),
    ] {
        let r = http().get(app.url(&bad)).send().await.expect("bad");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    // Userinfo without or with a forged token.
    let r = http()
        .get(app.url("/dev-idp/userinfo"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http()
        .get(app.url("/dev-idp/userinfo"))
        .bearer_auth("e30.e30.sig")
        .send()
        .await
        .expect("userinfo");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test]
async fn no_dev_provider_when_a_real_one_is_configured() {
    let rig = crate::signin::rig(TestDb::sqlite(), &[]).await;
    let r = http()
        .get(rig.app.url("/dev-idp/.well-known/openid-configuration"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    rig.app.stop().await;
}
