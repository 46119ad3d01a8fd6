//! OpenID Provider discovery: the one reader of `/.well-known/openid-configuration`, used by
//! sign-in, the Bearer verifier (for API issuers other than the sign-in one) and `check`.
//!
//! Issuers are compared as exact strings, as the discovery and token specifications say:
//! a configured issuer is kept as written (Auth0's end in `/`, Okta's do not), and only the
//! discovery URL is built without the trailing slash.

use serde::Deserialize;

/// Endpoints a provider publishes (or an operator gives explicitly for one without
/// discovery).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Endpoints {
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub end_session_endpoint: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    #[serde(flatten)]
    pub endpoints: Endpoints,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    /// RFC 9207: the provider names itself (`iss`) in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// The provider can post logout tokens to `/auth/backchannel-logout`.
    #[serde(default)]
    pub backchannel_logout_supported: bool,
}

/// Whether an issuer a provider or token names is the configured one: byte for byte, since
/// an issuer is an identifier, and a lenient comparison would let a look-alike through.
pub fn same_issuer(configured: &str, named: &str) -> bool {
    configured == named
}

/// How long a failed discovery is answered from memory before the provider is asked again.
pub const FAILURE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// The last failed discovery of one issuer, answered from memory for `FAILURE_BACKOFF`: every
/// sign-in and every Bearer token may ask for an issuer's keys, and while it is down that must
/// be one request per back-off, not one per token.
#[derive(Default)]
pub struct FailureMemo(std::sync::Mutex<Option<(std::time::Instant, String)>>);

impl FailureMemo {
    /// The remembered failure, while it is recent.
    pub fn recent(&self) -> Option<String> {
        self.0
            .lock()
            .ok()
            .and_then(|f| f.clone())
            .filter(|(at, _)| at.elapsed() < FAILURE_BACKOFF)
            .map(|(_, message)| message)
    }

    pub fn record(&self, message: String) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((std::time::Instant::now(), message));
        }
    }
}

/// Where an issuer's discovery document is: a terminating `/` of the issuer is removed
/// before the well-known path is appended.
pub fn url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// Why discovery failed; the text says which URL and how, for a log line or `check`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    /// Unreachable, an error status, or not a discovery document: worth another try.
    #[error("{0}")]
    Unavailable(String),
    /// The document names another issuer: a configuration error, no retry helps.
    #[error("{0}")]
    WrongIssuer(String),
}

/// Fetches and checks an issuer's discovery document: it must name that issuer.
pub async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<Discovery, DiscoveryError> {
    use DiscoveryError::Unavailable;
    let url = url(issuer);
    let response = crate::telemetry::send(http.get(&url))
        .await
        .map_err(|e| Unavailable(format!("{url}: {}", error_chain(&e))))?;
    if !response.status().is_success() {
        return Err(Unavailable(format!("{url} answered {}", response.status())));
    }
    let doc: Discovery = response
        .json()
        .await
        .map_err(|e| Unavailable(format!("{url}: not a discovery document ({e})")))?;
    if !same_issuer(issuer, &doc.issuer) {
        return Err(DiscoveryError::WrongIssuer(format!(
            "{url} names issuer {}, not {issuer}: the configured issuer is wrong",
            doc.issuer
        )));
    }
    Ok(doc)
}

/// reqwest's top-level message ("error sending request") hides the useful cause.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_compare_as_exact_strings() {
        assert!(!same_issuer("https://id.example", "https://id.example/"));
        assert!(!same_issuer("https://id.example/", "https://id.example"));
        assert!(same_issuer("https://id.example/", "https://id.example/"));
        assert!(same_issuer("https://id.example", "https://id.example"));
        assert!(!same_issuer(
            "https://id.example",
            "https://id.example.evil"
        ));
        assert!(!same_issuer("https://id.example", "https://ID.example"));
    }

    #[test]
    fn the_discovery_url_drops_a_terminating_slash() {
        assert_eq!(
            url("https://x.auth0.com/"),
            "https://x.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(
            url("https://id.example/oauth2/default"),
            "https://id.example/oauth2/default/.well-known/openid-configuration"
        );
    }
}
