//! One entry point for a data-feed snapshot, whoever sends it (`gatehouse import`, the write
//! API): validate, apply through the store, audit.

use serde_json::json;

use super::feeds::{
    AssetRow, Feed, ListSnapshot, RowError, SnapshotLimits, SnapshotOutcome, parse_assets,
    parse_lists, validate_assets, validate_lists,
};
use crate::store::{AuditEvent, Store, StoreError};

/// A validated snapshot, ready to apply.
#[derive(Debug, Clone)]
pub enum Snapshot {
    Assets(Vec<AssetRow>),
    Lists(ListSnapshot),
}

impl Snapshot {
    pub fn from_csv(feed: Feed, bytes: &[u8]) -> Result<Snapshot, Vec<RowError>> {
        match feed {
            Feed::Assets => Ok(Snapshot::Assets(validate_assets(parse_assets(bytes)?)?)),
            Feed::DistributionLists => Ok(Snapshot::Lists(validate_lists(parse_lists(bytes)?)?)),
        }
    }
}

/// Who sent the snapshot, for the audit row.
pub struct Source<'a> {
    pub via: &'static str,
    pub actor: &'a str,
    pub actor_id: Option<i64>,
    pub client_ip: Option<String>,
}

pub async fn apply(
    store: &dyn Store,
    snapshot: &Snapshot,
    limits: &SnapshotLimits,
    source: &Source<'_>,
) -> Result<SnapshotOutcome, StoreError> {
    let outcome = match snapshot {
        Snapshot::Assets(rows) => {
            crate::directory::store::replace_assets(&store.db(), rows, limits).await?
        }
        Snapshot::Lists(lists) => {
            crate::directory::store::replace_lists(&store.db(), lists, limits).await?
        }
    };
    // A dry run changes nothing and is not a security event; a write or a refusal is.
    if !limits.dry_run || outcome.refused.is_some() {
        crate::store::audit::record(
            &store.db(),
            &AuditEvent {
                kind: "feed_import",
                outcome: if outcome.applied {
                    "success"
                } else {
                    "refused"
                },
                actor_id: source.actor_id,
                actor: Some(source.actor.to_string()),
                client_ip: source.client_ip.clone(),
                details: json!({
                    "feed": outcome.feed.as_str(),
                    "via": source.via,
                    "existing": outcome.counts.existing,
                    "added": outcome.counts.added,
                    "changed": outcome.counts.changed,
                    "removed": outcome.counts.removed,
                    "forced": limits.force,
                    "reason": outcome.refused,
                }),
                ..AuditEvent::default()
            },
        )
        .await?;
    }
    Ok(outcome)
}
