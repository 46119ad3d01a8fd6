//! The identity lifecycle through the Okta Users API: people who have left or been suspended
//! lose their sessions within one interval, without a call to Okta on every request.
//!
//! Every `GATEHOUSE_LIFECYCLE_INTERVAL`, one instance (the holder of a lease, like the sync's)
//! looks up each user who has a live session, by Okta user id (the `sub` of Okta's ID tokens).
//! `SUSPENDED`, `DEPROVISIONED` and 404 end every session of the user, audited with the status;
//! other statuses (`LOCKED_OUT`, `PASSWORD_EXPIRED`, `RECOVERY`, …) are about credentials and
//! change nothing. An error changes nothing either: a rate limit, an outage or a refused token
//! ends the round, and the next one comes an interval later (a rate limit's reset is obeyed
//! by the client in any case).

pub mod groups;
pub mod okta;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use self::okta::{OktaClient, OktaError, UserState};
use crate::state::AppState;
use crate::store::AuditEvent;

/// The lease every instance competes for, one round at a time.
pub const LEASE: &str = "okta_lifecycle";
/// Users looked up at once: a few, to stay well inside Okta's per-minute limits.
const BATCH: usize = 4;

/// What a round did, for its log line.
#[derive(Debug, Default)]
struct Round {
    checked: usize,
    signed_out: usize,
    errors: usize,
    /// Why the round ended early (a rate limit, an outage, a refused token).
    stopped: Option<String>,
}

/// Whether the Users API of the org at `org_url` knows the accounts of `issuer` (an Okta
/// issuer is the org itself or one of its authorization servers, on the org's host): the
/// accounts of any other provider are never looked up there, where every one would be a 404.
pub fn serves(org_url: &url::Url, issuer: &str) -> bool {
    url::Url::parse(issuer).is_ok_and(|i| i.host_str() == org_url.host_str())
}

/// Whether Okta's answer ends the user's sessions.
pub fn ends_sessions(state: &UserState) -> bool {
    match state {
        UserState::Gone => true,
        UserState::Status(s) => matches!(s.as_str(), "SUSPENDED" | "DEPROVISIONED"),
    }
}

pub struct LifecycleService {
    pub okta: Arc<OktaClient>,
    pub interval: Duration,
    holder: String,
}

impl LifecycleService {
    pub fn new(okta: Arc<OktaClient>, interval: Duration) -> LifecycleService {
        LifecycleService {
            okta,
            interval,
            holder: crate::sync::runner::holder_name(),
        }
    }

    /// One round over the users with live sessions, if this instance gets the lease.
    pub async fn run_once(&self, state: &AppState) -> anyhow::Result<()> {
        let db = state.store.db();
        // Held for the round, and kept for a little less than an interval after it: another
        // instance that wakes up just after this round starts none of its own.
        let ttl = self.interval.max(Duration::from_secs(2)) - Duration::from_secs(1);
        if !crate::sync::store::lease_acquire(&db, LEASE, &self.holder, ttl).await? {
            return Ok(());
        }
        let users = state.auth.sessions.users_with_sessions().await?;
        let mut round = Round::default();
        let issuer = state.auth.oidc.relying_party().issuer.clone();
        for batch in users.chunks(BATCH) {
            let checks = batch.iter().map(|&id| self.check_user(state, &issuer, id));
            for result in futures::future::join_all(checks).await {
                match result? {
                    Checked::Kept => round.checked += 1,
                    Checked::SignedOut => {
                        round.checked += 1;
                        round.signed_out += 1;
                    }
                    Checked::Skipped => {}
                    Checked::Failed(e) => {
                        round.errors += 1;
                        if e.stops_the_round() && round.stopped.is_none() {
                            round.stopped = Some(e.to_string());
                        }
                    }
                }
            }
            if round.stopped.is_some() {
                break;
            }
        }
        if round.checked > 0 || round.errors > 0 {
            tracing::info!(
                checked = round.checked,
                signed_out = round.signed_out,
                errors = round.errors,
                stopped = ?round.stopped,
                "Okta lifecycle round"
            );
        }
        Ok(())
    }

    async fn check_user(
        &self,
        state: &AppState,
        issuer: &str,
        user_id: i64,
    ) -> anyhow::Result<Checked> {
        let db = state.store.db();
        let Some(user) = state.user(user_id).await? else {
            return Ok(Checked::Skipped);
        };
        // Only accounts of the provider the Users API belongs to have an Okta user id.
        if !crate::auth::discovery::same_issuer(issuer, &user.issuer)
            || !serves(self.okta.org_url(), &user.issuer)
        {
            return Ok(Checked::Skipped);
        }
        let answer = match self.okta.user(&user.subject).await {
            Ok(answer) => answer,
            Err(e) => {
                store::record_check(&db, user_id, "—", &format!("not checked: {e}")).await?;
                tracing::warn!(user = ?user.email, error = %e, "Okta lifecycle check failed; nothing changed");
                return Ok(Checked::Failed(e));
            }
        };
        let status = match &answer {
            UserState::Status(s) => s.clone(),
            UserState::Gone => "GONE".to_string(),
        };
        if !ends_sessions(&answer) {
            store::record_check(&db, user_id, &status, "sessions kept").await?;
            return Ok(Checked::Kept);
        }
        let ended = state.auth.sessions.revoke_all(user_id).await?;
        if ended == 0 {
            // Signed out in the meantime (by themselves, an admin, or another instance).
            store::record_check(&db, user_id, &status, "no session left to end").await?;
            return Ok(Checked::Kept);
        }
        store::record_check(&db, user_id, &status, &format!("{ended} session(s) ended")).await?;
        tracing::warn!(user = ?user.email, status, ended, "Okta says the user is no longer active: sessions ended");
        crate::store::audit::record(
            &db,
            &AuditEvent {
                kind: "lifecycle_signout",
                outcome: "success",
                actor: Some("okta lifecycle".into()),
                details: json!({
                    "user_id": user_id,
                    "user": user.email,
                    "status": status,
                    "sessions_ended": ended,
                }),
                ..AuditEvent::default()
            },
        )
        .await?;
        Ok(Checked::SignedOut)
    }

    /// Runs a round every `interval` until `stop` turns true. Every instance runs this; the
    /// lease makes it one round per interval across them.
    pub async fn schedule(
        self: Arc<Self>,
        state: AppState,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.interval.is_zero() {
            return;
        }
        loop {
            if let Err(e) = self.run_once(&state).await {
                tracing::warn!(error = %e, "Okta lifecycle round could not reach its stores");
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }
}

enum Checked {
    Kept,
    SignedOut,
    /// Not an account of this provider, or gone from the database.
    Skipped,
    Failed(OktaError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_suspension_deprovisioning_and_deletion_end_sessions() {
        for status in ["SUSPENDED", "DEPROVISIONED"] {
            assert!(ends_sessions(&UserState::Status(status.into())), "{status}");
        }
        assert!(ends_sessions(&UserState::Gone));
        for status in [
            "ACTIVE",
            "LOCKED_OUT",
            "PASSWORD_EXPIRED",
            "RECOVERY",
            "PROVISIONED",
            "STAGED",
        ] {
            assert!(
                !ends_sessions(&UserState::Status(status.into())),
                "{status}"
            );
        }
    }
}
