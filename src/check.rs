//! `gatehouse check`: validate the configuration, then try every configured dependency.
//! One line per check, `NAME: ok (…)`, `NAME: WARN: …` or `NAME: FAIL: …`; exit 1 on any FAIL.
//! Nothing is changed: no migration, no file created.

use std::process::ExitCode;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::{Backend, Config, IdentityProvider, Sources};
use crate::redis_client::RedisHandle;
use crate::store;

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Warn(String),
    Fail(String),
}

#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub outcome: Outcome,
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.outcome {
            Outcome::Ok(detail) if detail.is_empty() => write!(f, "{}: ok", self.name),
            Outcome::Ok(detail) => write!(f, "{}: ok ({detail})", self.name),
            Outcome::Warn(m) => write!(f, "{}: WARN: {m}", self.name),
            Outcome::Fail(m) => write!(f, "{}: FAIL: {m}", self.name),
        }
    }
}

fn line(name: &str, outcome: Outcome) -> Line {
    Line {
        name: name.to_string(),
        outcome,
    }
}

pub async fn run(sources: &Sources) -> ExitCode {
    let lines = run_checks(sources).await;
    for l in &lines {
        println!("{l}");
    }
    if lines.iter().any(|l| matches!(l.outcome, Outcome::Fail(_))) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub async fn run_checks(sources: &Sources) -> Vec<Line> {
    let config = match Config::load_fetching(sources).await {
        Ok(c) => c,
        Err(e) => return vec![line("config", Outcome::Fail(e.to_string()))],
    };
    let mut lines = vec![line(
        "config",
        Outcome::Ok(match &config.identity {
            IdentityProvider::Dev { .. } => "dev mode: built-in identity provider".into(),
            IdentityProvider::External(s) => format!("identity provider {}", s.issuer),
        }),
    )];
    if let Some(refusal) = &config.dev_mode_refusal {
        lines.push(line(
            "config",
            Outcome::Fail(format!("would not serve: {refusal}")),
        ));
    }
    lines.extend(
        config
            .warnings
            .iter()
            .map(|w| line("config", Outcome::Warn(w.clone()))),
    );
    lines.extend(config.fetched_secrets.iter().map(|(var, version)| {
        line(
            "secret",
            Outcome::Ok(format!("{var} from Secret Manager, {version}")),
        )
    }));

    lines.push(line("database", check_database(&config).await));
    match &config.redis {
        Some(url) => {
            let outcome = match RedisHandle::new(url) {
                Ok(handle) => match handle.ping().await {
                    Ok(()) => Outcome::Ok(url.redacted().to_string()),
                    Err(e) => Outcome::Fail(e.to_string()),
                },
                Err(e) => Outcome::Fail(e.to_string()),
            };
            lines.push(line("redis", outcome));
        }
        None if config.database.backend() == Backend::Postgres => lines.push(line(
            "redis",
            Outcome::Warn(
                "not configured while the database is PostgreSQL: sessions live in the database \
                 and rate limits are counted per instance, so several instances each allow the \
                 full limit. Set GATEHOUSE_REDIS_URL."
                    .into(),
            ),
        )),
        None => lines.push(line(
            "redis",
            Outcome::Ok("not configured: sessions in the database, limits in-process".into()),
        )),
    }

    let client = match reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            lines.push(line(
                "http",
                Outcome::Fail(format!("cannot build an HTTP client: {e}")),
            ));
            return lines;
        }
    };
    match &config.identity {
        IdentityProvider::Dev { issuer } => lines.push(line(
            "oidc",
            Outcome::Ok(format!("dev mode: built-in provider at {issuer}")),
        )),
        IdentityProvider::External(s) => {
            let explicit = s.authorization_endpoint.is_some()
                && s.token_endpoint.is_some()
                && s.jwks_uri.is_some();
            let outcome = match (&s.jwks_uri, explicit) {
                (Some(jwks), true) => check_jwks(&client, jwks.as_str()).await,
                _ => check_discovery(&client, &s.issuer).await,
            };
            lines.push(line("oidc", outcome));
        }
    }
    for issuer in &config.api.issuers {
        if issuer != config.identity.issuer() {
            lines.push(line(
                &format!("api issuer {issuer}"),
                check_discovery(&client, issuer).await,
            ));
        }
    }
    lines.push(line("api", check_api(&config)));
    if let Some(gh) = &config.github {
        lines.push(line("github", check_github(&client, gh).await));
    }
    if let Some(okta) = &config.okta {
        lines.push(line(
            "okta",
            check_okta(okta, config.identity.issuer()).await,
        ));
    }
    lines
}

/// The Users API token works (its own user is readable), and the Users API is the one of
/// the provider users sign in with.
async fn check_okta(okta: &crate::config::OktaConfig, issuer: &str) -> Outcome {
    let client = match crate::lifecycle::okta::OktaClient::new(okta) {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let interval = if okta.interval.is_zero() {
        "no lifecycle checks (GATEHOUSE_LIFECYCLE_INTERVAL=0)".to_string()
    } else {
        format!(
            "users with sessions re-checked every {}",
            humantime::format_duration(okta.interval)
        )
    };
    match client.token_owner().await {
        Ok(login) if !crate::lifecycle::serves(&okta.org_url, issuer) => Outcome::Warn(format!(
            "the token of {login} works at {}, but users sign in at {issuer}, another host: \
             their accounts are never looked up there (no lifecycle checks, no groups \
             completed)",
            okta.org_url
        )),
        Ok(login) => Outcome::Ok(format!(
            "Users API at {} with the token of {login}; {interval}",
            okta.org_url
        )),
        Err(e) => Outcome::Fail(format!("GATEHOUSE_OKTA_API_TOKEN at {}: {e}", okta.org_url)),
    }
}

/// Okta's default authorization server, shared by every app of an organization.
const SHARED_AUDIENCE: &str = "api://default";

/// Who may call the API. The default audience is a warning outside dev mode: every app of an
/// Okta organization shares it, and its default policy grants any client any scope.
fn check_api(config: &Config) -> Outcome {
    let writers = match &config.api.client_ids {
        Some(clients) => format!("writes by {}", clients.join(", ")),
        None if config.is_dev_mode() => format!(
            "writes by the dev machine client {}",
            crate::devidp::DEV_MACHINE_CLIENT_ID
        ),
        None => "writes refused: GATEHOUSE_API_CLIENT_IDS is not set".to_string(),
    };
    if config.api.audience == SHARED_AUDIENCE && !config.is_dev_mode() {
        return Outcome::Warn(format!(
            "GATEHOUSE_API_AUDIENCE is {SHARED_AUDIENCE}, the audience of Okta's default \
             authorization server: every app of the organization can get tokens for it, with \
             any scope. Give Gatehouse an audience of its own (a custom authorization server) \
             and list its clients in GATEHOUSE_API_CLIENT_IDS ({writers})"
        ));
    }
    Outcome::Ok(format!("audience {}; {writers}", config.api.audience))
}

async fn check_database(config: &Config) -> Outcome {
    let url = &config.database;
    if url.backend() == Backend::Sqlite {
        let path = url
            .expose()
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if path != ":memory:" && !std::path::Path::new(path).exists() {
            return Outcome::Ok(format!(
                "{url}: the file does not exist yet; serve or migrate creates it"
            ));
        }
    }
    let store = match store::connect(config).await {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    let outcome = match store.migration_status().await {
        Ok(status) if status.pending.is_empty() => Outcome::Ok(format!(
            "{url}, schema version {}",
            status.applied.last().copied().unwrap_or_default()
        )),
        Ok(status) => Outcome::Warn(format!(
            "{url}: {} migration(s) pending; serve or migrate applies them",
            status.pending.len()
        )),
        Err(e) => Outcome::Fail(format!("{url}: {e}")),
    };
    store.close().await;
    outcome
}

async fn check_discovery(client: &reqwest::Client, issuer: &str) -> Outcome {
    let url = discovery::url(issuer);
    let (doc, backchannel) = match discovery::fetch(client, issuer).await {
        Ok(d) => (d.endpoints, d.backchannel_logout_supported),
        Err(e) => return Outcome::Fail(e.to_string()),
    };
    // Whether sign-outs at the provider can reach Gatehouse at once (README, Signing in).
    let backchannel = if backchannel {
        "back-channel logout supported"
    } else {
        "no back-channel logout: a sign-out at the provider ends no session here"
    };
    if doc.authorization_endpoint.is_none() || doc.token_endpoint.is_none() {
        return Outcome::Fail(format!(
            "{url} lacks authorization_endpoint or token_endpoint"
        ));
    }
    match doc.jwks_uri {
        Some(jwks) => match check_jwks(client, &jwks).await {
            Outcome::Ok(keys) => Outcome::Ok(format!("{url}; {keys}; {backchannel}")),
            other => other,
        },
        None => Outcome::Fail(format!("{url} has no jwks_uri")),
    }
}

async fn check_jwks(client: &reqwest::Client, url: &str) -> Outcome {
    #[derive(Deserialize)]
    struct Jwks {
        keys: Vec<serde_json::Value>,
    }
    match fetch_json::<Jwks>(client, url).await {
        Ok(jwks) if jwks.keys.is_empty() => Outcome::Fail(format!("{url} publishes no keys")),
        Ok(jwks) => Outcome::Ok(format!("{} signing key(s) at {url}", jwks.keys.len())),
        Err(e) => Outcome::Fail(e),
    }
}

async fn check_github(client: &reqwest::Client, gh: &crate::config::GithubConfig) -> Outcome {
    let url = format!(
        "{}/orgs/{}",
        gh.api_url.as_str().trim_end_matches('/'),
        gh.org
    );
    let response = client
        .get(&url)
        .bearer_auth(gh.token.expose_secret())
        .header("User-Agent", "gatehouse")
        .header("Accept", "application/vnd.github+json")
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => {
            Outcome::Ok(format!("organization {} at {url}", gh.org))
        }
        Ok(r) => Outcome::Fail(format!("{url} answered {}", r.status())),
        Err(e) => Outcome::Fail(format!("{url}: {}", error_chain(&e))),
    }
}

async fn fetch_json<T: for<'de> Deserialize<'de>>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {}", error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url} answered {}", response.status()));
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("{url}: not the expected JSON ({e})"))
}

use crate::auth::discovery::{self, error_chain};

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::load(&Sources {
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .expect("config")
    }

    const PROD: &[(&str, &str)] = &[
        (
            "GATEHOUSE_OIDC_ISSUER",
            "https://example.okta.com/oauth2/default",
        ),
        ("GATEHOUSE_OIDC_CLIENT_ID", "client"),
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "secret"),
        ("GATEHOUSE_SESSION_KEY", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn the_shared_default_audience_is_a_warning_outside_dev_mode() {
        match check_api(&config(PROD)) {
            Outcome::Warn(m) => {
                assert!(m.contains("api://default"), "{m}");
                assert!(m.contains("GATEHOUSE_API_CLIENT_IDS is not set"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        let mut own = PROD.to_vec();
        own.push(("GATEHOUSE_API_AUDIENCE", "api://gatehouse"));
        own.push(("GATEHOUSE_API_CLIENT_IDS", "reports"));
        assert_eq!(
            check_api(&config(&own)),
            Outcome::Ok("audience api://gatehouse; writes by reports".into())
        );
        assert!(matches!(check_api(&config(&[])), Outcome::Ok(m) if m.contains("dev machine")));
    }
}
