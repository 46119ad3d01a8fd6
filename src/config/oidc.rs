//! Which identity provider signs users in: a configured OpenID provider, or (dev mode) the
//! built-in one. `GATEHOUSE_OIDC_CONFIG` carries a whole client in one JSON secret, either the
//! `client_secrets` shape (`{"web":{…}}`) or flat keys; separate variables override its fields.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::{Config, ConfigError, Raw};

#[derive(Debug, Clone)]
pub enum IdentityProvider {
    /// No provider configured: the built-in dev provider at `PUBLIC_URL/dev-idp`.
    Dev {
        issuer: String,
    },
    External(Box<OidcSettings>),
}

impl IdentityProvider {
    pub fn issuer(&self) -> &str {
        match self {
            IdentityProvider::Dev { issuer } => issuer,
            IdentityProvider::External(s) => &s.issuer,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Exactly as configured, which must be how the provider writes it in `iss`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Explicit endpoints for a provider without discovery; discovery fills what is missing.
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub end_session_endpoint: Option<Url>,
    /// Only to warn when it disagrees with the one Gatehouse builds from `PUBLIC_URL`.
    pub redirect_uri: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Payload {
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    #[serde(alias = "auth_uri")]
    authorization_endpoint: Option<String>,
    #[serde(alias = "token_uri")]
    token_endpoint: Option<String>,
    #[serde(alias = "userinfo_uri")]
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
    end_session_endpoint: Option<String>,
    redirect_uri: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PayloadShape {
    ClientSecrets { web: Payload },
    Flat(Payload),
}

const CONFIG_VAR: &str = "GATEHOUSE_OIDC_CONFIG";

pub(super) fn identity_provider(
    raw: &Raw,
    public_url: &Url,
) -> Result<IdentityProvider, ConfigError> {
    let payload = match raw.secret(CONFIG_VAR)? {
        Some(json) => {
            let shape: PayloadShape = serde_json::from_str(json.expose_secret()).map_err(|e| {
                raw.invalid(
                    CONFIG_VAR,
                    format!("not valid JSON of the expected shape ({e})"),
                )
            })?;
            Some(match shape {
                PayloadShape::ClientSecrets { web } => web,
                PayloadShape::Flat(p) => p,
            })
        }
        None => None,
    };
    let issuer_var = raw.get("GATEHOUSE_OIDC_ISSUER").0.map(str::to_string);
    if payload.is_none() && issuer_var.is_none() {
        let base = public_url.as_str().trim_end_matches('/');
        return Ok(IdentityProvider::Dev {
            issuer: format!("{base}/dev-idp"),
        });
    }
    let payload = payload.unwrap_or_default();

    let issuer = issuer_var.or(payload.issuer).ok_or_else(|| {
        raw.invalid(
            "GATEHOUSE_OIDC_ISSUER",
            "required (or an \"issuer\" in GATEHOUSE_OIDC_CONFIG)",
        )
    })?;
    let issuer_url = Url::parse(&issuer).map_err(|e| {
        raw.invalid(
            "GATEHOUSE_OIDC_ISSUER",
            format!("'{issuer}' is not a URL ({e})"),
        )
    })?;
    if let Err(m) = require_https(&issuer_url) {
        return Err(raw.invalid("GATEHOUSE_OIDC_ISSUER", format!("'{issuer}' {m}")));
    }
    let client_id = raw
        .get("GATEHOUSE_OIDC_CLIENT_ID")
        .0
        .map(str::to_string)
        .or(payload.client_id)
        .ok_or_else(|| {
            raw.invalid(
                "GATEHOUSE_OIDC_CLIENT_ID",
                "required when an identity provider is configured",
            )
        })?;
    let client_secret = match raw.secret("GATEHOUSE_OIDC_CLIENT_SECRET")? {
        Some(s) => s,
        None => payload
            .client_secret
            .map(SecretString::from)
            .ok_or_else(|| {
                raw.invalid(
                    "GATEHOUSE_OIDC_CLIENT_SECRET",
                    "required when an identity provider is configured",
                )
            })?,
    };
    let endpoint = |name: &str, value: Option<String>| -> Result<Option<Url>, ConfigError> {
        value
            .map(|v| {
                let url = Url::parse(&v).map_err(|e| {
                    raw.invalid(CONFIG_VAR, format!("{name} '{v}' is not a URL ({e})"))
                })?;
                require_https(&url)
                    .map_err(|m| raw.invalid(CONFIG_VAR, format!("{name} '{v}' {m}")))?;
                Ok(url)
            })
            .transpose()
    };
    Ok(IdentityProvider::External(Box::new(OidcSettings {
        // Kept as written: issuers compare as exact strings (Auth0's end in `/`).
        issuer,
        client_id,
        client_secret,
        authorization_endpoint: endpoint("authorization_endpoint", payload.authorization_endpoint)?,
        token_endpoint: endpoint("token_endpoint", payload.token_endpoint)?,
        userinfo_endpoint: endpoint("userinfo_endpoint", payload.userinfo_endpoint)?,
        jwks_uri: endpoint("jwks_uri", payload.jwks_uri)?,
        end_session_endpoint: endpoint("end_session_endpoint", payload.end_session_endpoint)?,
        redirect_uri: payload
            .redirect_uri
            .or_else(|| payload.redirect_uris.into_iter().next()),
    })))
}

/// Tokens, codes and keys travel to and from the provider: over plain http anyone on the path
/// could read or replace them. Loopback is exempt, for a provider on this machine (tests,
/// a local development provider).
pub(super) fn require_https(url: &Url) -> Result<(), &'static str> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if super::values::is_loopback_host(url) => Ok(()),
        "http" => {
            Err("must be an https:// URL (plain http only for localhost and loopback addresses)")
        }
        _ => Err("must be an https:// URL"),
    }
}

/// The redirect URI Gatehouse registers: always built from `PUBLIC_URL`.
pub fn callback_url(public_url: &Url) -> String {
    format!(
        "{}/auth/callback",
        public_url.as_str().trim_end_matches('/')
    )
}

pub(super) fn warnings(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    if let IdentityProvider::External(s) = &config.identity {
        let expected = callback_url(&config.public_url);
        if let Some(given) = s.redirect_uri.as_ref().filter(|g| **g != expected) {
            out.push(format!(
                "GATEHOUSE_OIDC_CONFIG: redirect_uri {given} differs from {expected}, which \
                 Gatehouse uses (it is built from GATEHOUSE_PUBLIC_URL); register that one at \
                 the provider"
            ));
        }
    }
    out
}
