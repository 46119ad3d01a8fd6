//! One sync run: take the lease, fetch everything, apply it in one transaction, record the
//! run. Shared by the in-process schedule, `gatehouse sync github` and "run now".

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Applied, GithubSnapshot};
use crate::store::{AuditEvent, Store, StoreError};

/// The lease every instance and process competes for.
pub const LEASE: &str = "github_sync";
/// How long a lease lasts without renewal: long enough for a slow fetch between renewals,
/// short enough that a crashed holder blocks the next run only briefly.
pub const LEASE_TTL: Duration = Duration::from_secs(10 * 60);
const RENEW_EVERY: Duration = Duration::from_secs(2 * 60);

/// Where a sync's data comes from: GitHub in production, anything in unit tests.
#[async_trait::async_trait]
pub trait Source: Send + Sync {
    /// A complete fetch, or why there is none (a partial fetch is an error, never applied).
    async fn fetch(&self) -> Result<GithubSnapshot, String>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded(Applied),
    /// The departure guard refused the fetch; nothing changed.
    Refused(Applied),
    Failed(String),
    /// Another process or instance holds the lease.
    Skipped,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Succeeded(_) => "success",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// A name for this process in lease and run rows: host, pid and a random suffix.
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

pub async fn run_once(
    store: Arc<dyn Store>,
    source: &dyn Source,
    max_departed: f64,
    trigger: &str,
    holder: &str,
) -> Result<Outcome, StoreError> {
    if !super::store::lease_acquire(&store.db(), LEASE, holder, LEASE_TTL).await? {
        tracing::info!(trigger, "GitHub sync skipped: another run holds the lease");
        return Ok(Outcome::Skipped);
    }
    // Keeps the lease while the run lasts; re-acquiring is how a holder renews.
    let renewer = {
        let store = Arc::clone(&store);
        let holder = holder.to_string();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                if let Err(e) =
                    super::store::lease_acquire(&store.db(), LEASE, &holder, LEASE_TTL).await
                {
                    tracing::warn!(error = %e, "GitHub sync: could not renew the lease");
                }
            }
        })
    };
    let result = run_holding_lease(store.as_ref(), source, max_departed, trigger, holder).await;
    renewer.abort();
    if let Err(e) = super::store::lease_release(&store.db(), LEASE, holder).await {
        // It expires on its own; the next run waits at most LEASE_TTL.
        tracing::warn!(error = %e, "GitHub sync: could not release the lease");
    }
    result
}

async fn run_holding_lease(
    store: &dyn Store,
    source: &dyn Source,
    max_departed: f64,
    trigger: &str,
    holder: &str,
) -> Result<Outcome, StoreError> {
    let run = super::store::sync_run_start(&store.db(), "github", trigger, holder).await?;
    let started = std::time::Instant::now();
    let outcome = match source.fetch().await {
        Err(reason) => Outcome::Failed(reason),
        Ok(snapshot) => {
            match super::store::apply_github_snapshot(&store.db(), &snapshot, max_departed).await {
                Ok(applied) if applied.refused.is_some() => Outcome::Refused(applied),
                Ok(applied) => Outcome::Succeeded(applied),
                Err(e) => Outcome::Failed(format!("writing the fetch failed: {e}")),
            }
        }
    };
    let (counts, error) = match &outcome {
        Outcome::Succeeded(a) => (json!(a), None),
        Outcome::Refused(a) => (json!(a), a.refused.clone()),
        Outcome::Failed(e) => (json!({}), Some(e.clone())),
        Outcome::Skipped => (json!({}), None),
    };
    super::store::sync_run_finish(&store.db(), run, outcome.label(), &counts, error.as_deref())
        .await?;
    crate::store::audit::record(
        &store.db(),
        &AuditEvent {
            kind: "sync_run",
            outcome: outcome.label(),
            actor: Some(trigger.to_string()),
            details: json!({ "run": run, "counts": counts, "error": error }),
            ..AuditEvent::default()
        },
    )
    .await?;
    metrics::counter!("gatehouse_sync_runs_total", "kind" => "github", "outcome" => outcome.label())
        .increment(1);
    metrics::histogram!("gatehouse_sync_run_duration_seconds", "kind" => "github")
        .record(started.elapsed().as_secs_f64());
    let ms = started.elapsed().as_millis();
    match &outcome {
        Outcome::Succeeded(a) => tracing::info!(
            run,
            trigger,
            ms,
            added = a.identities.added,
            changed = a.identities.changed,
            departed = a.identities.departed,
            repos = a.repos,
            "GitHub sync succeeded"
        ),
        _ => {
            tracing::warn!(run, trigger, ms, outcome = outcome.label(), error = ?error, "GitHub sync did not apply")
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Fetched;

    struct Fixed(Result<GithubSnapshot, String>);

    #[async_trait::async_trait]
    impl Source for Fixed {
        async fn fetch(&self) -> Result<GithubSnapshot, String> {
            self.0.clone()
        }
    }

    async fn memory_store() -> Arc<dyn Store> {
        let config = crate::config::Config::load(&crate::config::Sources {
            env: [(
                "GATEHOUSE_DATABASE_URL".to_string(),
                "sqlite::memory:".to_string(),
            )]
            .into_iter()
            .collect(),
            ..crate::config::Sources::default()
        })
        .expect("config");
        let store = crate::store::connect(&config).await.expect("store");
        store.migrate().await.expect("migrate");
        store
    }

    fn people(n: usize) -> GithubSnapshot {
        GithubSnapshot {
            identities: (0..n)
                .map(|i| Fetched {
                    email: format!("p{i}@x.io"),
                    login: format!("u{i}"),
                    name: format!("P {i}"),
                })
                .collect(),
            ..GithubSnapshot::default()
        }
    }

    #[tokio::test]
    async fn runs_record_their_outcome_and_hold_a_lease() {
        let store = memory_store().await;
        let ok = run_once(store.clone(), &Fixed(Ok(people(10))), 0.2, "test", "me")
            .await
            .expect("runs");
        assert!(
            matches!(ok, Outcome::Succeeded(ref a) if a.identities.added == 10),
            "{ok:?}"
        );
        let failed = run_once(
            store.clone(),
            &Fixed(Err("GitHub said no".into())),
            0.2,
            "test",
            "me",
        )
        .await
        .expect("runs");
        assert_eq!(failed, Outcome::Failed("GitHub said no".into()));
        let refused = run_once(store.clone(), &Fixed(Ok(people(5))), 0.2, "test", "me")
            .await
            .expect("runs");
        assert!(matches!(refused, Outcome::Refused(_)), "{refused:?}");
        let runs = crate::sync::store::sync_runs(&store.db(), 10)
            .await
            .expect("runs");
        let outcomes: Vec<&str> = runs.iter().map(|r| r.outcome.as_str()).collect();
        assert_eq!(outcomes, ["refused", "failed", "success"]);
        assert_eq!(runs[1].error.as_deref(), Some("GitHub said no"));
        assert!(runs.iter().all(|r| r.finished_at.is_some()));

        // Someone else's live lease: this run skips and records nothing.
        assert!(
            crate::sync::store::lease_acquire(&store.db(), LEASE, "other", LEASE_TTL)
                .await
                .expect("lease")
        );
        let skipped = run_once(store.clone(), &Fixed(Ok(people(10))), 0.2, "test", "me")
            .await
            .expect("runs");
        assert_eq!(skipped, Outcome::Skipped);
        assert_eq!(
            crate::sync::store::sync_runs(&store.db(), 10)
                .await
                .expect("runs")
                .len(),
            3
        );
        // An expired lease is taken over.
        assert!(
            crate::sync::store::lease_acquire(&store.db(), LEASE, "other", Duration::ZERO)
                .await
                .expect("renew")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            crate::sync::store::lease_acquire(&store.db(), LEASE, "me", LEASE_TTL)
                .await
                .expect("take over")
        );
        assert!(
            !crate::sync::store::lease_acquire(&store.db(), LEASE, "other", LEASE_TTL)
                .await
                .expect("held")
        );
    }
}
