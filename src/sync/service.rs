//! The sync as the running app holds it: its source, its guard, its schedule.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::runner::{Outcome, Source, holder_name, run_once};
use crate::store::{Store, StoreError};

pub struct SyncService {
    pub source: Arc<dyn Source>,
    pub max_departed: f64,
    /// `Duration::ZERO`: no schedule, runs only on demand.
    pub interval: Duration,
    pub holder: String,
}

impl SyncService {
    pub fn new(source: Arc<dyn Source>, max_departed: f64, interval: Duration) -> Self {
        SyncService {
            source,
            max_departed,
            interval,
            holder: holder_name(),
        }
    }

    pub async fn run(&self, store: Arc<dyn Store>, trigger: &str) -> Result<Outcome, StoreError> {
        let run = run_once(
            store,
            self.source.as_ref(),
            self.max_departed,
            trigger,
            &self.holder,
        );
        if !crate::telemetry::enabled() {
            return run.await;
        }
        // One trace per run: its GitHub calls and database statements under it (under the
        // request's span when an admin asked for it, a trace of its own when scheduled).
        let span = tracing::info_span!(
            target: crate::telemetry::TARGET,
            "sync",
            otel.name = "GitHub sync",
            otel.kind = "internal",
            sync.trigger = trigger,
            sync.outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let result = run.instrument(span.clone()).await;
        match &result {
            Ok(outcome) => {
                span.record("sync.outcome", outcome.label());
                if matches!(outcome, Outcome::Failed(_)) {
                    span.record("otel.status_code", "error");
                }
            }
            Err(_) => {
                span.record("otel.status_code", "error");
            }
        }
        result
    }

    /// Runs every `interval`, until `stop` turns true. Every instance runs this: the lease
    /// keeps two runs from overlapping, and each instance waits for `interval` after the
    /// last scheduled run of any of them, so the organization is synced once per interval
    /// however many instances there are (and at once when none ran within it).
    pub async fn schedule(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.interval.is_zero() {
            return;
        }
        loop {
            let wait = match self.until_due(store.as_ref()).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "scheduled GitHub sync could not read past runs");
                    Duration::ZERO
                }
            };
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    _ = stop.wait_for(|s| *s) => break,
                }
            }
            if let Err(e) = self.run(Arc::clone(&store), "schedule").await {
                tracing::warn!(error = %e, "scheduled GitHub sync could not reach the database");
            }
        }
    }

    /// How long until a scheduled run is due: `interval` after the last one any instance
    /// started, nothing when none did within it.
    async fn until_due(&self, store: &dyn Store) -> Result<Duration, StoreError> {
        let runs = super::store::sync_runs(&store.db(), 20).await?;
        let Some(last) = runs.iter().find(|r| r.trigger == "schedule") else {
            return Ok(Duration::ZERO);
        };
        let since = (chrono::Utc::now() - last.started_at)
            .to_std()
            .unwrap_or(Duration::ZERO);
        Ok(self.interval.saturating_sub(since))
    }
}
