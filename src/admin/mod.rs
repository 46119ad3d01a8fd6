//! Administration: users and their roles, group → role mappings, revoking anyone's sessions.
//! Every handler takes an `AdminUser`, so only admins reach it; every change is audited.
//! `users`, `groups`, `audit` and `sync` hold one area each; this file lists their routes
//! and what they share.

mod audit;
mod groups;
mod sync;
mod users;

use axum::routing::{get, post};

use crate::auth::extract::AdminUser;
use crate::state::AppState;
use crate::store::AuditEvent;
use crate::web::pages::Layout;
use crate::web::routes::Route;

pub(crate) const PAGE_SIZE: i64 = 50;

/// How many pages of `PAGE_SIZE` hold `total` rows (at least one, for an empty list).
pub(crate) fn page_count(total: i64) -> i64 {
    ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1)
}

pub fn routes() -> Vec<Route> {
    vec![
        Route::page("/admin/users", &["GET"], get(users::list_users)).admin(),
        Route::page("/admin/users/{id}", &["GET"], get(users::show_user)).admin(),
        Route::page(
            "/admin/users/{id}/roles",
            &["POST"],
            post(users::change_user_roles),
        )
        .admin(),
        Route::page(
            "/admin/users/{id}/sessions/revoke",
            &["GET", "POST"],
            get(users::confirm_revoke).post(users::revoke_user_sessions),
        )
        .admin(),
        Route::page(
            "/admin/groups",
            &["GET", "POST"],
            get(groups::show_groups).post(groups::change_groups),
        )
        .admin(),
        Route::page("/admin/audit", &["GET"], get(audit::show_audit)).admin(),
        Route::page("/admin/sync", &["GET"], get(sync::show_sync)).admin(),
        Route::page("/admin/sync/run", &["POST"], post(sync::run_sync)).admin(),
    ]
}

/// Adds the address the session was signed in from, kept apart from the request's own.
pub(crate) fn with_session_ip(
    mut details: serde_json::Value,
    session_ip: &Option<String>,
) -> serde_json::Value {
    if let (Some(map), Some(ip)) = (details.as_object_mut(), session_ip) {
        map.insert("session_client_ip".into(), ip.clone().into());
    }
    details
}

impl AdminUser {
    async fn audit(&self, state: &AppState, kind: &'static str, details: serde_json::Value) {
        let result = crate::store::audit::record(
            &state.store.db(),
            &AuditEvent {
                kind,
                outcome: "success",
                actor_id: Some(self.current.user.id),
                actor: self.current.user.email.clone(),
                // Where this change came from, which need not be where the admin signed in.
                client_ip: Some(self.current.client_ip.clone()),
                details: with_session_ip(details, &self.current.session.client_ip),
                ..AuditEvent::default()
            },
        )
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, kind, "audit event not stored");
        }
    }

    /// The page layout with the notice the last change left.
    async fn layout(&self, state: &AppState, title: &str) -> Layout {
        let mut layout = Layout::new(title);
        layout.flash = self.current.take_flash(state).await;
        layout
    }

    fn name(&self) -> String {
        self.current
            .user
            .email
            .clone()
            .unwrap_or_else(|| self.current.user.subject.clone())
    }
}
