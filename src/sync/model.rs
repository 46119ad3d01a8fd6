//! The sync's types: what a fetch returned, what applying it did, and the runs' log.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::plan::{Fetched, IdentityCounts, RepoCounts};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSnapshot {
    /// GitHub's repository id: stable across renames, so it is what rows are keyed by.
    pub github_id: i64,
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub archived: bool,
    pub html_url: Option<String>,
    pub stars: i32,
    pub forks: i32,
    pub traffic: Vec<TrafficDay>,
    /// `None` when the token may not read this repository's traffic: what is stored for the
    /// day stays as it is, rather than being replaced by nothing.
    pub popular: Option<Popular>,
}

/// GitHub's top referrers and popular paths: one list each over its last 14 days.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Popular {
    pub referrers: Vec<Referrer>,
    pub paths: Vec<PopularPath>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrer {
    pub referrer: String,
    pub count: i32,
    pub uniques: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PopularPath {
    pub path: String,
    pub title: String,
    pub count: i32,
    pub uniques: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafficDay {
    pub day: NaiveDate,
    pub views: i32,
    pub unique_views: i32,
    pub clones: i32,
    pub unique_clones: i32,
}

/// Everything one complete fetch returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GithubSnapshot {
    /// The sync day: stars, referrers and paths are stored under it.
    pub day: NaiveDate,
    pub identities: Vec<Fetched>,
    pub repos: Vec<RepoSnapshot>,
}

/// What applying a snapshot did; `refused` set means nothing was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub identities: IdentityCounts,
    /// Repositories written (every one fetched).
    pub repos: usize,
    pub repo_changes: RepoCounts,
    pub traffic_days: usize,
    pub referrers: usize,
    pub paths: usize,
    pub refused: Option<String>,
}

/// A row of `sync_runs`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SyncRun {
    pub id: i64,
    pub kind: String,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: String,
    pub counts: sqlx::types::Json<serde_json::Value>,
    pub error: Option<String>,
    pub holder: Option<String>,
}
