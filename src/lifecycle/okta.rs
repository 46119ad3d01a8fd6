//! The Okta Users API, as much of it as the lifecycle needs: a user's status, their groups
//! (every page), and the token's own user (for `gatehouse check`). Okta's rate limits are
//! obeyed: once a response says none are left (`X-Rate-Limit-Remaining: 0`) or a request is
//! refused with 429, no request is made until `X-Rate-Limit-Reset`.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, LINK};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::config::OktaConfig;

/// How long to wait after a 429 that says nothing of when to come back.
const DEFAULT_BACKOFF: Duration = Duration::from_secs(60);
/// Okta's largest page of groups.
const GROUPS_PAGE: &str = "200";
/// More pages than any user's groups fill: a `Link` loop ends here.
const MAX_PAGES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserState {
    /// Okta's `status`: `ACTIVE`, `SUSPENDED`, `DEPROVISIONED`, `LOCKED_OUT`, …
    Status(String),
    /// 404: deleted, or never there.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OktaError {
    #[error("Okta refused the API token ({0})")]
    Unauthorized(String),
    #[error("Okta's rate limit is used up; no request before {}s from now", .0.as_secs())]
    RateLimited(Duration),
    #[error("Okta answered {0}")]
    Status(u16),
    #[error("Okta is unreachable: {0}")]
    Unreachable(String),
    #[error("Okta's answer was not understood: {0}")]
    Unexpected(String),
}

impl OktaError {
    /// Worth stopping a round for: the next request would fare no better.
    pub fn stops_the_round(&self) -> bool {
        !matches!(self, OktaError::Status(404) | OktaError::Unexpected(_))
    }
}

pub struct OktaClient {
    base: Url,
    token: SecretString,
    http: reqwest::Client,
    /// No request before this moment (a rate limit is used up).
    paused_until: Mutex<Option<SystemTime>>,
}

#[derive(Deserialize)]
struct User {
    status: String,
    #[serde(default)]
    profile: Profile,
}

#[derive(Deserialize, Default)]
struct Profile {
    login: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Group {
    profile: Profile,
}

impl OktaClient {
    pub fn new(config: &OktaConfig) -> anyhow::Result<OktaClient> {
        Ok(OktaClient {
            base: config.org_url.clone(),
            token: config.api_token.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            paused_until: Mutex::new(None),
        })
    }

    pub fn org_url(&self) -> &Url {
        &self.base
    }

    /// A user's status, by Okta user id (the `sub` of Okta's ID tokens).
    pub async fn user(&self, id: &str) -> Result<UserState, OktaError> {
        let url = self.url(&["api", "v1", "users", id])?;
        match self.get_json::<User>(url).await {
            Ok((user, _)) => Ok(UserState::Status(user.status)),
            Err(OktaError::Status(404)) => Ok(UserState::Gone),
            Err(e) => Err(e),
        }
    }

    /// The names of every group a user is in, following `Link: <…>; rel="next"` (only to
    /// this org: a link elsewhere would take the token with it).
    pub async fn groups(&self, id: &str) -> Result<Vec<String>, OktaError> {
        let mut url = self.url(&["api", "v1", "users", id, "groups"])?;
        url.query_pairs_mut().append_pair("limit", GROUPS_PAGE);
        let mut names = Vec::new();
        for _ in 0..MAX_PAGES {
            let (page, headers) = self.get_json::<Vec<Group>>(url).await?;
            names.extend(page.into_iter().filter_map(|g| g.profile.name));
            match next_link(&headers) {
                Some(next) if next.origin() == self.base.origin() => url = next,
                Some(next) => {
                    return Err(OktaError::Unexpected(format!(
                        "a next page at another address ({})",
                        next.origin().ascii_serialization()
                    )));
                }
                None => return Ok(names),
            }
        }
        Err(OktaError::Unexpected(format!(
            "more than {MAX_PAGES} pages of groups"
        )))
    }

    /// The login of the token's own user: proof the token works.
    pub async fn token_owner(&self) -> Result<String, OktaError> {
        let url = self.url(&["api", "v1", "users", "me"])?;
        let (user, _) = self.get_json::<User>(url).await?;
        Ok(user.profile.login.unwrap_or_else(|| "(no login)".into()))
    }

    fn url(&self, segments: &[&str]) -> Result<Url, OktaError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| OktaError::Unexpected("the org URL cannot take a path".into()))?
            .clear()
            .extend(segments);
        Ok(url)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
    ) -> Result<(T, HeaderMap), OktaError> {
        if let Some(wait) = self.pause_left() {
            return Err(OktaError::RateLimited(wait));
        }
        let request = self
            .http
            .get(url)
            .header(
                AUTHORIZATION,
                format!("SSWS {}", self.token.expose_secret()),
            )
            .header(ACCEPT, "application/json");
        let response = crate::telemetry::send(request)
            .await
            .map_err(|e| OktaError::Unreachable(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        self.note_limits(&headers, status.as_u16() == 429);
        match status.as_u16() {
            200 => {}
            401 | 403 => {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                let summary = body["errorSummary"].as_str().unwrap_or("no reason given");
                return Err(OktaError::Unauthorized(format!("{status}: {summary}")));
            }
            429 => {
                return Err(OktaError::RateLimited(
                    self.pause_left().unwrap_or_default(),
                ));
            }
            code => return Err(OktaError::Status(code)),
        }
        let body = response
            .json::<T>()
            .await
            .map_err(|e| OktaError::Unexpected(e.to_string()))?;
        Ok((body, headers))
    }

    /// Pauses requests until the reset when the limit is used up (or was exceeded).
    fn note_limits(&self, headers: &HeaderMap, refused: bool) {
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let used_up = number("x-rate-limit-remaining") == Some(0);
        if !refused && !used_up {
            return;
        }
        let until = number("x-rate-limit-reset")
            .map(|reset| UNIX_EPOCH + Duration::from_secs(reset))
            .filter(|t| *t > SystemTime::now())
            .unwrap_or_else(|| SystemTime::now() + DEFAULT_BACKOFF);
        if let Ok(mut paused) = self.paused_until.lock() {
            *paused = Some(until);
        }
        tracing::warn!(
            refused,
            wait_s = until
                .duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs(),
            "Okta rate limit reached: pausing Users API calls"
        );
    }

    fn pause_left(&self) -> Option<Duration> {
        let until = (*self.paused_until.lock().ok()?)?;
        until.duration_since(SystemTime::now()).ok()
    }
}

/// The `rel="next"` target of a `Link` header (Okta sends `self` and `next` links, in one
/// header or several). Hand-written: it is a few lines, and no maintained crate parses
/// RFC 8288 for reqwest's header type.
fn next_link(headers: &HeaderMap) -> Option<Url> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"");
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            if is_next {
                Url::parse(target).ok()
            } else {
                None
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            LINK,
            "<https://acme.okta.com/api/v1/users/u/groups?limit=200>; rel=\"self\""
                .parse()
                .expect("header"),
        );
        headers.append(
            LINK,
            "<https://acme.okta.com/api/v1/users/u/groups?after=00g2&limit=200>; rel=\"next\""
                .parse()
                .expect("header"),
        );
        assert_eq!(
            next_link(&headers).map(|u| u.to_string()).as_deref(),
            Some("https://acme.okta.com/api/v1/users/u/groups?after=00g2&limit=200")
        );
        let mut one = HeaderMap::new();
        one.insert(
            LINK,
            "<https://a.example/x>; rel=\"self\", <https://a.example/y>; rel=\"next\""
                .parse()
                .expect("header"),
        );
        assert_eq!(
            next_link(&one).map(|u| u.path().to_string()).as_deref(),
            Some("/y")
        );
        let mut last = HeaderMap::new();
        last.insert(
            LINK,
            "<https://a.example/x>; rel=\"self\""
                .parse()
                .expect("header"),
        );
        assert_eq!(next_link(&last), None);
    }
}
