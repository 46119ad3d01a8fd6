//! The sync's source in production: the GitHub client's fetches, turned into one snapshot.

use std::sync::Arc;

use super::runner::Source;
use super::service::SyncService;
use super::{Fetched, GithubSnapshot, RepoSnapshot, TrafficDay};
use crate::config::Config;
use crate::github::{GitHubClient, GitHubError, RetryPolicy};

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

fn clamp(n: i64) -> i32 {
    i32::try_from(n.max(0)).unwrap_or(i32::MAX)
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
        let mut repos = Vec::new();
        for repo in self
            .client
            .repos()
            .await
            .map_err(|e| format!("repositories: {e}"))?
        {
            // Traffic needs push access per repository; one the token cannot read keeps its
            // history and gets none new, rather than failing the whole run.
            let traffic = match self.client.traffic(&repo.name).await {
                Ok(days) => days,
                Err(GitHubError::Forbidden { .. }) => {
                    tracing::info!(repo = %repo.name, "no traffic access for this repository");
                    Vec::new()
                }
                Err(e) => return Err(format!("traffic of {}: {e}", repo.name)),
            };
            repos.push(RepoSnapshot {
                name: repo.name,
                description: repo.description,
                visibility: repo.visibility,
                archived: repo.archived,
                html_url: repo.html_url,
                traffic: traffic
                    .into_iter()
                    .map(|d| TrafficDay {
                        day: d.day,
                        views: clamp(d.views),
                        unique_views: clamp(d.unique_views),
                        clones: clamp(d.clones),
                        unique_clones: clamp(d.unique_clones),
                    })
                    .collect(),
            });
        }
        Ok(GithubSnapshot { identities, repos })
    }
}
