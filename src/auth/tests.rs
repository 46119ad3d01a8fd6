//! Token verification against a real JWKS served over HTTP: every way it must refuse.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::jwks::{JwksCache, JwksError};
use super::signing::SigningKey;
use super::verify::{IdTokenCheck, TokenError, verify_id_token};

const ISSUER: &str = "https://idp.example.com";
const CLIENT: &str = "gatehouse-web";
const NONCE: &str = "n-0S6_WzA2Mj";

struct Jwks {
    uri: String,
    body: Arc<std::sync::Mutex<Value>>,
    hits: Arc<AtomicUsize>,
}

async fn serve_jwks(keys: &[&SigningKey]) -> Jwks {
    let body = Arc::new(std::sync::Mutex::new(
        json!({ "keys": keys.iter().map(|k| k.public_jwk.clone()).collect::<Vec<_>>() }),
    ));
    let hits = Arc::new(AtomicUsize::new(0));
    let (b, h) = (body.clone(), hits.clone());
    let app = Router::new().route(
        "/jwks",
        get(move || {
            let (b, h) = (b.clone(), h.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let doc = b.lock().map(|v| v.clone()).unwrap_or_default();
                axum::Json(doc)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Jwks {
        uri: format!("http://{addr}/jwks"),
        body,
        hits,
    }
}

fn cache(jwks: &Jwks, cooldown: Duration) -> JwksCache {
    JwksCache::new(jwks.uri.clone(), reqwest::Client::new(), cooldown)
}

fn claims() -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": ISSUER, "sub": "alice", "aud": CLIENT, "iat": now, "exp": now + 300,
        "nonce": NONCE, "email": "alice@example.com", "email_verified": true,
        "groups": ["gatehouse-admins"],
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().expect("object").remove(key);
    base
}

const CHECK: IdTokenCheck<'static> = IdTokenCheck {
    issuer: ISSUER,
    client_id: CLIENT,
    nonce: NONCE,
};

async fn verify(cache: &JwksCache, token: &str) -> Result<super::verify::IdClaims, TokenError> {
    verify_id_token(token, cache, &CHECK).await
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

#[tokio::test]
async fn a_good_id_token_passes_and_keys_are_cached() {
    let key = SigningKey::generate().expect("key");
    let jwks = serve_jwks(&[&key]).await;
    let cache = cache(&jwks, Duration::from_secs(30));
    let token = key.sign("JWT", &claims()).expect("sign");
    let id = verify(&cache, &token).await.expect("valid token");
    assert_eq!(id.sub, "alice");
    assert_eq!(id.email.as_deref(), Some("alice@example.com"));
    assert_eq!(id.groups.expect("groups").as_slice(), ["gatehouse-admins"]);
    for _ in 0..5 {
        verify(&cache, &token).await.expect("still valid");
    }
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        1,
        "one fetch, then no I/O"
    );
}

#[tokio::test]
async fn every_bad_id_token_is_refused_with_its_reason() {
    let key = SigningKey::generate().expect("key");
    let other = SigningKey::generate().expect("other key");
    let jwks = serve_jwks(&[&key]).await;
    let cache = cache(&jwks, Duration::from_secs(30));
    let now = chrono::Utc::now().timestamp();
    let sign = |c: &Value| key.sign("JWT", c).expect("sign");

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong issuer",
            sign(&with(claims(), "iss", json!("https://evil.example"))),
            "wrong_issuer",
        ),
        (
            "wrong audience",
            sign(&with(claims(), "aud", json!("someone-else"))),
            "wrong_audience",
        ),
        (
            "expired",
            sign(&with(claims(), "exp", json!(now - 600))),
            "expired",
        ),
        (
            "not yet valid",
            sign(&with(claims(), "nbf", json!(now + 600))),
            "not_yet_valid",
        ),
        ("no exp", sign(&without(claims(), "exp")), "missing_claim"),
        ("no iat", sign(&without(claims(), "iat")), "missing_claim"),
        (
            "iat in the future",
            sign(&with(claims(), "iat", json!(now + 900))),
            "bad_iat",
        ),
        (
            "iat long ago",
            sign(&with(claims(), "iat", json!(now - 7200))),
            "bad_iat",
        ),
        ("no sub", sign(&without(claims(), "sub")), "missing_claim"),
        (
            "wrong nonce",
            sign(&with(claims(), "nonce", json!("other"))),
            "nonce_mismatch",
        ),
        (
            "no nonce",
            sign(&without(claims(), "nonce")),
            "missing_claim",
        ),
        (
            "several audiences without azp",
            sign(&with(claims(), "aud", json!([CLIENT, "other"]))),
            "wrong_azp",
        ),
        (
            "foreign azp",
            sign(&with(claims(), "azp", json!("other"))),
            "wrong_azp",
        ),
        (
            "signed by another key with our kid",
            {
                // Same kid as the published key, different private key.
                let mut forged = other.sign("JWT", &claims()).expect("sign");
                let header = b64(&json!({"alg": "RS256", "typ": "JWT", "kid": key.kid}));
                let rest: Vec<&str> = forged.splitn(2, '.').collect();
                forged = format!("{header}.{}", rest[1]);
                forged
            },
            "bad_signature",
        ),
        (
            "unknown kid",
            other.sign("JWT", &claims()).expect("sign"),
            "unknown_key",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": key.kid})),
                b64(&claims())
            ),
            "disallowed_algorithm",
        ),
        ("garbage", "not.a.jwt".to_string(), "malformed"),
        ("empty", String::new(), "malformed"),
        ("oversized", "a".repeat(20_000), "malformed"),
    ];
    for (name, token, code) in cases {
        let err = verify(&cache, &token).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
    }
}

#[tokio::test]
async fn hmac_keyed_with_the_public_key_is_refused() {
    let key = SigningKey::generate().expect("key");
    let jwks = serve_jwks(&[&key]).await;
    let cache = cache(&jwks, Duration::from_secs(30));
    // The classic confusion attack: HS256 with the RSA public key's bytes as the secret.
    let secret = URL_SAFE_NO_PAD
        .decode(key.public_jwk["n"].as_str().expect("n"))
        .expect("modulus");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    let token = jsonwebtoken::encode(
        &header,
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .expect("sign");
    let err = verify(&cache, &token)
        .await
        .expect_err("HS256 must be refused");
    assert_eq!(err.code(), "disallowed_algorithm", "{err}");
    assert_eq!(
        jwks.hits.load(Ordering::SeqCst),
        0,
        "refused before any key lookup"
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_cooldown() {
    let key = SigningKey::generate().expect("key");
    let stranger = SigningKey::generate().expect("stranger");
    let jwks = serve_jwks(&[&key]).await;
    let cache = Arc::new(cache(&jwks, Duration::from_secs(30)));
    verify(&cache, &key.sign("JWT", &claims()).expect("sign"))
        .await
        .expect("warm");
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 1);
    // A flood of tokens with random kids, concurrently.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let cache = cache.clone();
        let token = {
            let header = b64(&json!({"alg": "RS256", "kid": format!("random-{i}")}));
            let real = stranger.sign("JWT", &claims()).expect("sign");
            let parts: Vec<&str> = real.splitn(2, '.').collect();
            format!("{header}.{}", parts[1])
        };
        tasks.push(tokio::spawn(async move { verify(&cache, &token).await }));
    }
    for t in tasks {
        let err = t.await.expect("task").expect_err("unknown kid");
        assert!(
            matches!(err, TokenError::Key(JwksError::UnknownKey(_))),
            "{err}"
        );
    }
    assert!(jwks.hits.load(Ordering::SeqCst) <= 2, "at most one refetch");
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_after_the_cooldown() {
    let old = SigningKey::generate().expect("old");
    let new = SigningKey::generate().expect("new");
    let jwks = serve_jwks(&[&old]).await;
    let cache = cache(&jwks, Duration::from_millis(200));
    verify(&cache, &old.sign("JWT", &claims()).expect("sign"))
        .await
        .expect("old key");
    *jwks.body.lock().expect("lock") =
        json!({ "keys": [new.public_jwk.clone(), old.public_jwk.clone()] });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let id = verify(&cache, &new.sign("JWT", &claims()).expect("sign"))
        .await
        .expect("the new key is fetched on its first use");
    assert_eq!(id.sub, "alice");
    assert_eq!(jwks.hits.load(Ordering::SeqCst), 2);
    // The old key still verifies during the overlap.
    verify(&cache, &old.sign("JWT", &claims()).expect("sign"))
        .await
        .expect("old key still published");
}

#[tokio::test]
async fn an_unreachable_jwks_is_an_error_not_a_panic() {
    let key = SigningKey::generate().expect("key");
    let cache = JwksCache::new(
        "http://127.0.0.1:9/jwks",
        reqwest::Client::new(),
        Duration::from_secs(30),
    );
    let err = verify(&cache, &key.sign("JWT", &claims()).expect("sign"))
        .await
        .expect_err("no JWKS");
    assert_eq!(err.code(), "jwks_unavailable", "{err}");
}

/// A P-256 key as a JWK, and a signer of compact tokens under the header given.
fn ec_key(kid: &str) -> (Value, impl Fn(&Value, &Value) -> String) {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("EC key");
    let point = pair.public_key().as_ref().to_vec();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    let sign = move |header: &Value, claims: &Value| {
        let message = format!("{}.{}", b64(header), b64(claims));
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let signature = pair.sign(&rng, message.as_bytes()).expect("sign");
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    };
    (jwk, sign)
}

#[tokio::test]
async fn es256_tokens_verify_with_their_key_and_only_with_it() {
    let rsa = SigningKey::generate().expect("key");
    let (ec_jwk, ec_sign) = ec_key("ec-1");
    let jwks = serve_jwks(&[&rsa]).await;
    *jwks.body.lock().expect("lock") = json!({ "keys": [rsa.public_jwk.clone(), ec_jwk] });
    let cache = cache(&jwks, Duration::from_secs(30));
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "ec-1"});
    let id = verify(&cache, &ec_sign(&header, &claims()))
        .await
        .expect("a good ES256 token");
    assert_eq!(id.sub, "alice");

    let good = ec_sign(&header, &claims());
    let (message, _) = good.rsplit_once('.').expect("jwt");
    let other_payload = format!(
        "{}.{}",
        b64(&header),
        b64(&with(claims(), "sub", json!("eve")))
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "signature of other claims",
            format!("{other_payload}.{}", good.rsplit_once('.').expect("jwt").1),
            "bad_signature",
        ),
        (
            "a signature of the wrong length",
            format!("{message}.{}", URL_SAFE_NO_PAD.encode([7u8; 32])),
            "bad_signature",
        ),
        (
            "RS256 named on the EC key",
            ec_sign(&json!({"alg": "RS256", "kid": "ec-1"}), &claims()),
            "algorithm_mismatch",
        ),
        (
            "ES256 named on the RSA key",
            ec_sign(&json!({"alg": "ES256", "kid": rsa.kid}), &claims()),
            "algorithm_mismatch",
        ),
    ];
    for (name, token, code) in cases {
        let err = verify(&cache, &token).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
    }
}

#[tokio::test]
async fn the_compact_form_and_every_registered_claim_are_checked_strictly() {
    let key = SigningKey::generate().expect("key");
    let jwks = serve_jwks(&[&key]).await;
    let cache = cache(&jwks, Duration::from_secs(30));
    let now = chrono::Utc::now().timestamp();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": key.kid});
    let signed = |h: &Value, c: &Value| key.sign_with_header(h, c).expect("sign");
    let good = signed(&header, &claims());
    verify(&cache, &good).await.expect("the good token");
    // Fractional times and times within the minute of leeway pass.
    for variant in [
        with(claims(), "exp", json!(now as f64 + 300.5)),
        with(claims(), "exp", json!(now - 30)),
        with(claims(), "nbf", json!(now + 30)),
        with(claims(), "aud", json!([CLIENT])),
    ] {
        verify(&cache, &signed(&header, &variant))
            .await
            .unwrap_or_else(|e| panic!("{variant}: {e}"));
    }

    let (head, rest) = good.split_once('.').expect("jwt");
    let (payload, signature) = rest.split_once('.').expect("jwt");
    let cases: Vec<(&str, String, &str)> = vec![
        ("two parts", format!("{head}.{payload}"), "malformed"),
        ("four parts", format!("{good}.AAAA"), "malformed"),
        (
            "an empty header",
            format!(".{payload}.{signature}"),
            "malformed",
        ),
        ("padding on the signature", format!("{good}="), "malformed"),
        ("a space after it", format!("{good} "), "malformed"),
        (
            "another header under the same signature",
            format!(
                "{}.{payload}.{signature}",
                b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": key.kid}))
            ),
            "bad_signature",
        ),
        (
            "other claims under the same signature",
            format!(
                "{head}.{}.{signature}",
                b64(&with(claims(), "sub", json!("mallory")))
            ),
            "bad_signature",
        ),
        (
            "an empty signature",
            format!("{head}.{payload}."),
            "bad_signature",
        ),
        (
            "a header that is not an object",
            signed(&json!("RS256"), &claims()),
            "malformed",
        ),
        (
            "a numeric kid",
            signed(&json!({"alg": "RS256", "kid": 7}), &claims()),
            "malformed",
        ),
        (
            "a critical extension",
            signed(
                &json!({"alg": "RS256", "kid": key.kid, "crit": ["exp"], "exp": 1}),
                &claims(),
            ),
            "malformed",
        ),
        (
            "alg in lower case",
            signed(&json!({"alg": "rs256", "kid": key.kid}), &claims()),
            "disallowed_algorithm",
        ),
        (
            "RS384",
            signed(&json!({"alg": "RS384", "kid": key.kid}), &claims()),
            "disallowed_algorithm",
        ),
        (
            "PS256",
            signed(&json!({"alg": "PS256", "kid": key.kid}), &claims()),
            "disallowed_algorithm",
        ),
        (
            "claims that are an array",
            signed(&header, &json!([claims()])),
            "malformed",
        ),
        (
            "claims that are null",
            signed(&header, &json!(null)),
            "malformed",
        ),
        (
            "exp as a string",
            signed(
                &header,
                &with(claims(), "exp", json!((now + 300).to_string())),
            ),
            "malformed",
        ),
        (
            "a negative exp",
            signed(&header, &with(claims(), "exp", json!(-1))),
            "malformed",
        ),
        (
            "expired beyond the leeway",
            signed(&header, &with(claims(), "exp", json!(now - 120))),
            "expired",
        ),
        (
            "nbf as a string",
            signed(&header, &with(claims(), "nbf", json!("now"))),
            "malformed",
        ),
        (
            "nbf beyond the leeway",
            signed(&header, &with(claims(), "nbf", json!(now + 120))),
            "not_yet_valid",
        ),
        (
            "iss as an array",
            signed(&header, &with(claims(), "iss", json!([ISSUER]))),
            "malformed",
        ),
        (
            "aud as a number",
            signed(&header, &with(claims(), "aud", json!(5))),
            "malformed",
        ),
        (
            "aud an empty list",
            signed(&header, &with(claims(), "aud", json!([]))),
            "wrong_audience",
        ),
        (
            "aud a list of others",
            signed(&header, &with(claims(), "aud", json!(["a", "b"]))),
            "wrong_audience",
        ),
        (
            "sub as a number",
            signed(&header, &with(claims(), "sub", json!(42))),
            "malformed",
        ),
    ];
    for (name, token, code) in cases {
        let err = verify(&cache, &token).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err}");
    }
}
