//! The sync's source in production: the GitHub client's fetches (`client`: SAML identities
//! over GraphQL, repositories and traffic over REST, rate limits honoured, transient failures
//! retried), turned into one snapshot.

mod client;

pub use client::{GitHubClient, GitHubError, Repo, RetryPolicy, SamlIdentity, next_link};

use std::sync::Arc;

use super::runner::Source;
use super::service::SyncService;
use super::{Fetched, GithubSnapshot, RepoSnapshot};
use crate::config::Config;

pub struct GithubSource {
    client: GitHubClient,
}

impl GithubSource {
    pub fn new(client: GitHubClient) -> Self {
        GithubSource { client }
    }
}

/// The sync service when an organization and token are configured.
pub fn service(config: &Config) -> anyhow::Result<Option<Arc<SyncService>>> {
    let Some(github) = &config.github else {
        return Ok(None);
    };
    let client = GitHubClient::new(github, RetryPolicy::default())
        .map_err(|e| anyhow::anyhow!("GitHub client: {e}"))?;
    Ok(Some(Arc::new(SyncService::new(
        Arc::new(GithubSource { client }),
        config.sync_max_departed,
        config.sync_interval,
    ))))
}

#[async_trait::async_trait]
impl Source for GithubSource {
    async fn fetch(&self) -> Result<GithubSnapshot, String> {
        let identities = self
            .client
            .saml_identities()
            .await
            .map_err(|e| format!("SAML identities: {e}"))?
            .into_iter()
            .map(|i| Fetched {
                email: i.email,
                login: i.login,
                name: i.name,
            })
            .collect();
        let (github_day, listed) = self
            .client
            .repos_and_day()
            .await
            .map_err(|e| format!("repositories: {e}"))?;
        // Referrers and paths are GitHub's last 14 days as of its own day, so that day is the
        // sync day; our clock only when GitHub sends no `Date`.
        let day = github_day.unwrap_or_else(|| chrono::Utc::now().date_naive());
        let mut repos = Vec::new();
        for repo in listed {
            // Traffic needs push access per repository; one the token cannot read keeps its
            // history and gets none new, rather than failing the whole run.
            let (traffic, popular) = match self.client.traffic(&repo.name).await {
                Ok(days) => match self.client.popular(&repo.name).await {
                    Ok(popular) => (days, Some(popular)),
                    Err(GitHubError::Forbidden { .. }) => (days, None),
                    Err(e) => return Err(format!("popular traffic of {}: {e}", repo.name)),
                },
                Err(GitHubError::Forbidden { .. }) => {
                    tracing::info!(repo = %repo.name, "no traffic access for this repository");
                    (Vec::new(), None)
                }
                Err(e) => return Err(format!("traffic of {}: {e}", repo.name)),
            };
            repos.push(RepoSnapshot {
                github_id: repo.id,
                name: repo.name,
                description: repo.description,
                visibility: repo.visibility,
                archived: repo.archived,
                html_url: repo.html_url,
                stars: repo.stars,
                forks: repo.forks,
                traffic,
                popular,
            });
        }
        Ok(GithubSnapshot {
            day,
            identities,
            repos,
        })
    }
}
