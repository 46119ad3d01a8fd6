//! The HTTP side of the GitHub sync. Written here rather than with an SDK crate: the sync
//! needs a handful of calls, and what matters is how they fail (rate limits, secondary limits,
//! enterprise-level SAML), which is ours to decide.
//!
//! Over 400 lines on purpose: the GraphQL and REST calls share one retry and rate-limit
//! policy (`get_json`, `RetryPolicy`), and splitting the calls from it would scatter the one
//! thing this file exists to get right.

use crate::sync::{Popular, PopularPath, Referrer, TrafficDay};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::config::GithubConfig;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Tries per request, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Longest wait for a rate-limit reset or a `Retry-After`; longer ones fail the run.
    pub max_rate_limit_wait: Duration,
    /// At or below this many requests left, wait for the reset before the next one.
    pub low_remaining: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
            low_remaining: 5,
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: a random wait up to `base * 2^attempt`, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            rand::random_range(0..=nanos)
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error(
        "organization {org} has no SAML identity provider of its own: SAML single sign-on is \
         configured at the enterprise level (or not at all), so the organization API lists no \
         identities. Gatehouse refuses to treat that as an empty directory; nothing was changed"
    )]
    EnterpriseSaml { org: String },
    #[error("organization {org} not found, or the token cannot see it: {message}")]
    NoOrganization { org: String, message: String },
    #[error("GitHub rejected the token (401): {0}")]
    BadToken(String),
    #[error("{url}: forbidden (403): {message}")]
    Forbidden { url: String, message: String },
    #[error(
        "{url}: not found (404): the organization or repository does not exist or the token lacks access"
    )]
    NotFound { url: String },
    #[error("rate limit spent until {reset_at}, later than the longest wait allowed")]
    RateLimitExhausted { reset_at: DateTime<Utc> },
    #[error("{url}: {status} after {attempts} attempt(s): {excerpt}")]
    Http {
        url: String,
        status: u16,
        attempts: u32,
        excerpt: String,
    },
    #[error("{url}: {cause} after {attempts} attempt(s)")]
    Transport {
        url: String,
        cause: String,
        attempts: u32,
    },
    #[error("GraphQL errors: {0}")]
    GraphQl(String),
    #[error("{url}: unexpected answer: {cause}")]
    Decode { url: String, cause: String },
    #[error("GitHub client: {0}")]
    Setup(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlIdentity {
    /// Lower-cased and trimmed: `nameId`, else `username`.
    pub email: String,
    pub login: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub archived: bool,
    pub html_url: Option<String>,
    pub stars: i32,
    pub forks: i32,
}

pub struct GitHubClient {
    http: reqwest::Client,
    api: Url,
    graphql: Url,
    org: String,
    token: SecretString,
    policy: RetryPolicy,
    /// When the last answer said the budget is nearly spent: wait until then.
    reset_at: std::sync::Mutex<Option<DateTime<Utc>>>,
}

const QUERY: &str = "query($login: String!, $first: Int!, $after: String) {
  organization(login: $login) {
    samlIdentityProvider {
      externalIdentities(first: $first, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { samlIdentity { nameId username } user { login name } }
      }
    }
  }
}";

/// The `rel="next"` target of a `Link` header.
pub fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().eq_ignore_ascii_case("rel=\"next\""));
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

fn excerpt(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string));
    let text = message.unwrap_or_else(|| body.to_string());
    text.chars().take(200).collect()
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl GitHubClient {
    pub fn new(config: &GithubConfig, policy: RetryPolicy) -> Result<Self, GitHubError> {
        let mut headers = HeaderMap::new();
        headers.insert(USER_AGENT, HeaderValue::from_static("gatehouse"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "x-github-api-version",
            HeaderValue::from_static("2022-11-28"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| GitHubError::Setup(e.to_string()))?;
        Ok(GitHubClient {
            http,
            api: config.api_url.clone(),
            graphql: config.graphql_url.clone(),
            org: config.org.clone(),
            token: config.token.clone(),
            policy,
            reset_at: std::sync::Mutex::new(None),
        })
    }

    fn api_url(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_str().trim_end_matches('/'))
    }

    /// Sleeps until a nearly spent budget resets, or fails when that is too far away.
    async fn respect_budget(&self) -> Result<(), GitHubError> {
        let reset = self.reset_at.lock().ok().and_then(|mut r| r.take());
        if let Some(reset_at) = reset {
            let wait = (reset_at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            if wait > self.policy.max_rate_limit_wait {
                return Err(GitHubError::RateLimitExhausted { reset_at });
            }
            tracing::warn!(
                wait_secs = wait.as_secs(),
                "GitHub rate limit nearly spent: waiting for the reset"
            );
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    fn note_budget(&self, headers: &HeaderMap) {
        let (Some(remaining), Some(reset)) = (
            header_u64(headers, "x-ratelimit-remaining"),
            header_u64(headers, "x-ratelimit-reset"),
        ) else {
            return;
        };
        if remaining <= u64::from(self.policy.low_remaining) {
            let at = DateTime::from_timestamp(i64::try_from(reset).unwrap_or(i64::MAX), 0)
                .map(|t| t + chrono::Duration::seconds(1));
            if let Ok(mut r) = self.reset_at.lock() {
                *r = at;
            }
        }
    }

    /// One request with the retry rules; the answer's status is a success.
    async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(HeaderMap, String), GitHubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.respect_budget().await?;
            let mut request = self.http.request(method.clone(), url).header(
                AUTHORIZATION,
                format!("Bearer {}", self.token.expose_secret()),
            );
            if let Some(b) = body {
                request = request.json(b);
            }
            let last = attempt >= self.policy.max_attempts;
            let response = match crate::telemetry::send(request).await {
                Ok(r) => r,
                Err(e) if !last => {
                    let wait = self.policy.backoff(attempt);
                    tracing::warn!(url, attempt, error = %e, wait_ms = wait.as_millis(), "GitHub request failed; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(e) => {
                    return Err(GitHubError::Transport {
                        url: url.to_string(),
                        cause: e.to_string(),
                        attempts: attempt,
                    });
                }
            };
            let status = response.status();
            let headers = response.headers().clone();
            self.note_budget(&headers);
            let text = response.text().await.unwrap_or_default();
            if status.is_success() {
                return Ok((headers, text));
            }
            // Secondary limits send Retry-After; a spent primary limit says remaining 0.
            let limited = status == StatusCode::TOO_MANY_REQUESTS
                || (status == StatusCode::FORBIDDEN
                    && (headers.contains_key("retry-after")
                        || header_u64(&headers, "x-ratelimit-remaining") == Some(0)));
            if limited && !last {
                let wait = match header_u64(&headers, "retry-after") {
                    Some(secs) => Duration::from_secs(secs),
                    None => header_u64(&headers, "x-ratelimit-reset")
                        .and_then(|r| DateTime::from_timestamp(i64::try_from(r).ok()?, 0))
                        .and_then(|t| (t - Utc::now()).to_std().ok())
                        .unwrap_or(self.policy.base_delay),
                };
                if wait > self.policy.max_rate_limit_wait {
                    return Err(GitHubError::RateLimitExhausted {
                        reset_at: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                    });
                }
                tracing::warn!(
                    url,
                    attempt,
                    wait_secs = wait.as_secs(),
                    "GitHub rate limit hit; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if status.is_server_error() && !last {
                let wait = self.policy.backoff(attempt);
                tracing::warn!(
                    url,
                    attempt,
                    status = status.as_u16(),
                    wait_ms = wait.as_millis(),
                    "GitHub answered a server error; retrying"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            return Err(match status {
                StatusCode::UNAUTHORIZED => GitHubError::BadToken(excerpt(&text)),
                StatusCode::FORBIDDEN => GitHubError::Forbidden {
                    url: url.to_string(),
                    message: excerpt(&text),
                },
                StatusCode::NOT_FOUND => GitHubError::NotFound {
                    url: url.to_string(),
                },
                _ => GitHubError::Http {
                    url: url.to_string(),
                    status: status.as_u16(),
                    attempts: attempt,
                    excerpt: excerpt(&text),
                },
            });
        }
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        url: &str,
    ) -> Result<(HeaderMap, T), GitHubError> {
        let (headers, text) = self.send(Method::GET, url, None).await?;
        let value = serde_json::from_str(&text).map_err(|e| GitHubError::Decode {
            url: url.to_string(),
            cause: e.to_string(),
        })?;
        Ok((headers, value))
    }

    /// Every SAML identity linked to a GitHub account, across all pages. Identities without
    /// a linked account or without an email cannot be directory rows: skipped and counted in
    /// the log.
    pub async fn saml_identities(&self) -> Result<Vec<SamlIdentity>, GitHubError> {
        let url = self.graphql.to_string();
        let mut after: Option<String> = None;
        let mut out = Vec::new();
        let (mut unlinked, mut no_email) = (0usize, 0usize);
        loop {
            let body = json!({
                "query": QUERY,
                "variables": { "login": self.org, "first": 100, "after": after },
            });
            let (_, text) = self.send(Method::POST, &url, Some(&body)).await?;
            let answer: Value = serde_json::from_str(&text).map_err(|e| GitHubError::Decode {
                url: url.clone(),
                cause: e.to_string(),
            })?;
            let org = &answer["data"]["organization"];
            if org.is_null() {
                let message = answer["errors"][0]["message"]
                    .as_str()
                    .unwrap_or("the answer has no organization")
                    .to_string();
                return Err(GitHubError::NoOrganization {
                    org: self.org.clone(),
                    message,
                });
            }
            if let Some(errors) = answer["errors"].as_array().filter(|e| !e.is_empty()) {
                let messages: Vec<&str> = errors
                    .iter()
                    .filter_map(|e| e["message"].as_str())
                    .collect();
                return Err(GitHubError::GraphQl(messages.join("; ")));
            }
            let provider = &org["samlIdentityProvider"];
            if provider.is_null() {
                return Err(GitHubError::EnterpriseSaml {
                    org: self.org.clone(),
                });
            }
            let page = &provider["externalIdentities"];
            let nodes = page["nodes"]
                .as_array()
                .ok_or_else(|| GitHubError::Decode {
                    url: url.clone(),
                    cause: "externalIdentities.nodes is not a list".into(),
                })?;
            for node in nodes {
                let Some(login) = node["user"]["login"].as_str() else {
                    unlinked += 1;
                    continue;
                };
                let saml = &node["samlIdentity"];
                let email = saml["nameId"]
                    .as_str()
                    .filter(|e| e.contains('@'))
                    .or_else(|| saml["username"].as_str().filter(|e| e.contains('@')));
                let Some(email) = email else {
                    no_email += 1;
                    continue;
                };
                out.push(SamlIdentity {
                    email: email.trim().to_ascii_lowercase(),
                    login: login.to_string(),
                    name: node["user"]["name"].as_str().unwrap_or("").to_string(),
                });
            }
            let info = &page["pageInfo"];
            if info["hasNextPage"].as_bool() == Some(true) {
                let cursor = info["endCursor"]
                    .as_str()
                    .ok_or_else(|| GitHubError::Decode {
                        url: url.clone(),
                        cause: "hasNextPage without an endCursor".into(),
                    })?;
                after = Some(cursor.to_string());
            } else {
                break;
            }
        }
        if unlinked + no_email > 0 {
            tracing::info!(
                unlinked,
                no_email,
                "SAML identities skipped: no linked GitHub account, or no email"
            );
        }
        Ok(out)
    }

    /// Every repository of the organization, following `Link` pages.
    pub async fn repos(&self) -> Result<Vec<Repo>, GitHubError> {
        Ok(self.repos_and_day().await?.1)
    }

    /// Every repository of the organization, and GitHub's day (UTC, from its `Date` header)
    /// when it listed them, if it said.
    pub async fn repos_and_day(&self) -> Result<(Option<NaiveDate>, Vec<Repo>), GitHubError> {
        #[derive(Deserialize)]
        struct Raw {
            id: i64,
            name: String,
            description: Option<String>,
            visibility: Option<String>,
            private: Option<bool>,
            #[serde(default)]
            archived: bool,
            html_url: Option<String>,
            #[serde(default)]
            stargazers_count: i64,
            #[serde(default)]
            forks_count: i64,
        }
        let mut url =
            Some(self.api_url(&format!("/orgs/{}/repos?per_page=100&type=all", self.org)));
        let mut out = Vec::new();
        let mut day = None;
        while let Some(u) = url {
            let (headers, page): (_, Vec<Raw>) = self.get_json(&u).await?;
            day = day.or_else(|| header_day(&headers));
            out.extend(page.into_iter().map(|r| Repo {
                id: r.id,
                visibility: r.visibility.unwrap_or_else(|| {
                    if r.private == Some(false) {
                        "public"
                    } else {
                        "private"
                    }
                    .to_string()
                }),
                name: r.name,
                description: r.description.unwrap_or_default(),
                archived: r.archived,
                html_url: r.html_url,
                stars: clamp(r.stargazers_count),
                forks: clamp(r.forks_count),
            }));
            url = headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(next_link);
        }
        Ok((day, out))
    }

    /// The top referrers and popular paths over GitHub's last 14 days.
    pub async fn popular(&self, repo: &str) -> Result<Popular, GitHubError> {
        #[derive(Deserialize)]
        struct RawReferrer {
            referrer: String,
            count: i64,
            uniques: i64,
        }
        #[derive(Deserialize)]
        struct RawPath {
            path: String,
            #[serde(default)]
            title: Option<String>,
            count: i64,
            uniques: i64,
        }
        let base = format!("/repos/{}/{repo}/traffic/popular", self.org);
        let (_, referrers): (_, Vec<RawReferrer>) = self
            .get_json(&self.api_url(&format!("{base}/referrers")))
            .await?;
        let (_, paths): (_, Vec<RawPath>) = self
            .get_json(&self.api_url(&format!("{base}/paths")))
            .await?;
        let referrers = referrers
            .into_iter()
            .map(|r| Referrer {
                referrer: r.referrer,
                count: clamp(r.count),
                uniques: clamp(r.uniques),
            })
            .collect();
        let paths = paths
            .into_iter()
            .map(|p| PopularPath {
                path: p.path,
                title: p.title.unwrap_or_default(),
                count: clamp(p.count),
                uniques: clamp(p.uniques),
            })
            .collect();
        Ok(Popular { referrers, paths })
    }

    /// Views and clones per day (GitHub keeps 14), merged.
    pub async fn traffic(&self, repo: &str) -> Result<Vec<TrafficDay>, GitHubError> {
        #[derive(Deserialize)]
        struct Point {
            timestamp: DateTime<Utc>,
            count: i64,
            uniques: i64,
        }
        #[derive(Deserialize)]
        struct Views {
            #[serde(default)]
            views: Vec<Point>,
        }
        #[derive(Deserialize)]
        struct Clones {
            #[serde(default)]
            clones: Vec<Point>,
        }
        let base = format!("/repos/{}/{repo}/traffic", self.org);
        let (_, views): (_, Views) = self
            .get_json(&self.api_url(&format!("{base}/views?per=day")))
            .await?;
        let (_, clones): (_, Clones) = self
            .get_json(&self.api_url(&format!("{base}/clones?per=day")))
            .await?;
        let mut days: std::collections::BTreeMap<NaiveDate, TrafficDay> = Default::default();
        let blank = |day| TrafficDay {
            day,
            views: 0,
            unique_views: 0,
            clones: 0,
            unique_clones: 0,
        };
        for p in views.views {
            let day = p.timestamp.date_naive();
            let d = days.entry(day).or_insert_with(|| blank(day));
            d.views = clamp(p.count);
            d.unique_views = clamp(p.uniques);
        }
        for p in clones.clones {
            let day = p.timestamp.date_naive();
            let d = days.entry(day).or_insert_with(|| blank(day));
            d.clones = clamp(p.count);
            d.unique_clones = clamp(p.uniques);
        }
        Ok(days.into_values().collect())
    }
}

/// The UTC day of an HTTP `Date` header (`Wed, 02 Dec 2026 01:38:06 GMT`).
fn header_day(headers: &HeaderMap) -> Option<NaiveDate> {
    let value = headers.get("date")?.to_str().ok()?;
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|t| t.with_timezone(&Utc).date_naive())
}

/// GitHub's counts are non-negative and small; a value past `i32` is stored as the largest.
fn clamp(n: i64) -> i32 {
    i32::try_from(n.max(0)).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        let link = "<https://api.github.com/organizations/1/repos?page=2>; rel=\"next\", \
                    <https://api.github.com/organizations/1/repos?page=5>; rel=\"last\"";
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/organizations/1/repos?page=2")
        );
        assert_eq!(next_link("<https://x/?page=1>; rel=\"prev\""), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn date_headers_give_the_utc_day() {
        let mut headers = HeaderMap::new();
        assert_eq!(header_day(&headers), None);
        headers.insert(
            "date",
            HeaderValue::from_static("Wed, 02 Dec 2026 23:59:59 GMT"),
        );
        assert_eq!(header_day(&headers), NaiveDate::from_ymd_opt(2026, 12, 2));
        headers.insert("date", HeaderValue::from_static("yesterday"));
        assert_eq!(header_day(&headers), None);
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(450),
            ..RetryPolicy::default()
        };
        for attempt in 0..40 {
            let wait = policy.backoff(attempt);
            assert!(wait <= Duration::from_millis(450), "{attempt}: {wait:?}");
        }
        assert!(policy.backoff(1) <= Duration::from_millis(200));
    }

    #[test]
    fn excerpts_prefer_the_message() {
        assert_eq!(
            excerpt("{\"message\":\"Bad credentials\"}"),
            "Bad credentials"
        );
        assert_eq!(excerpt(&"x".repeat(500)).len(), 200);
    }
}
