//! The sync's types: what a fetch returned, what applying it did, and the runs' log.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::plan::{Fetched, IdentityCounts};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSnapshot {
    pub name: String,
    pub description: String,
    pub visibility: String,
    pub archived: bool,
    pub html_url: Option<String>,
    pub traffic: Vec<TrafficDay>,
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
    pub identities: Vec<Fetched>,
    pub repos: Vec<RepoSnapshot>,
}

/// What applying a snapshot did; `refused` set means nothing was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    pub identities: IdentityCounts,
    pub repos: usize,
    pub traffic_days: usize,
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
