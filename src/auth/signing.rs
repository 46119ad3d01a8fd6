//! RS256 signing keys: generated at start by the dev identity provider, and by tests that
//! need real signatures on crafted tokens.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    /// The public half as a JWK (`kty`, `n`, `e`, `kid`, `alg`, `use`).
    pub public_jwk: Value,
}

/// A fresh RSA-2048 private key as PKCS#8 PEM, and its public half's `n` and `e` (base64url).
pub fn rsa_key_pem() -> anyhow::Result<(String, String, String)> {
    let pair = KeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
    let pkcs8 = pair
        .as_der()
        .map_err(|_| anyhow::anyhow!("RSA key export failed"))?;
    // jsonwebtoken takes PKCS#8 only as PEM; wrapping DER in PEM is all this does.
    let body = STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let public = aws_lc_rs::signature::KeyPair::public_key(&pair);
    Ok((
        pem,
        URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    ))
}

impl SigningKey {
    /// A fresh RSA-2048 key with a random `kid`.
    pub fn generate() -> anyhow::Result<SigningKey> {
        let (pem, n, e) = rsa_key_pem()?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let kid = uuid::Uuid::new_v4().simple().to_string();
        let public_jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": n,
            "e": e,
        });
        Ok(SigningKey {
            kid,
            encoding,
            public_jwk,
        })
    }

    /// Signs `claims` as an RS256 JWT with this key's `kid` and the given `typ`.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Signs `claims` under a header given whole, RS256 whatever it says: tokens that are
    /// well signed and wrong in some other way.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> anyhow::Result<String> {
        self.sign_text(header, &serde_json::to_string(claims)?)
    }

    /// As `sign_with_header`, with the claims as text (which JSON values cannot always be:
    /// a key twice, say).
    pub fn sign_text(&self, header: &Value, claims: &str) -> anyhow::Result<String> {
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header)?);
        let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.encoding, Algorithm::RS256)?;
        Ok(format!("{message}.{signature}"))
    }
}
