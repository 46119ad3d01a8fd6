//! The sync as the running app holds it: its source, its guard, its schedule.

use std::sync::Arc;
use std::time::Duration;

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
        run_once(
            store,
            self.source.as_ref(),
            self.max_departed,
            trigger,
            &self.holder,
        )
        .await
    }

    /// Runs now, then every `interval`, until `stop` turns true. Every instance runs this;
    /// the lease lets one of them sync each time.
    pub async fn schedule(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.interval.is_zero() {
            return;
        }
        loop {
            if let Err(e) = self.run(Arc::clone(&store), "schedule").await {
                tracing::warn!(error = %e, "scheduled GitHub sync could not reach the database");
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }
}
