//! The organization's repositories and their traffic, by role: who may see which
//! repository (`access`), the list page (`pages`), its types (`model`) and queries
//! (`store`).

pub mod access;
pub mod api;
pub mod detail;
mod model;
pub mod pages;
pub mod store;
mod svg;

pub use access::{PatternError, RepoAccess, RepoPattern};

use axum::routing::get;

use crate::auth::access::{admin_reason, effective_roles};
use crate::store::{Store, StoreError, User};
use crate::web::routes::Route;

pub use model::{ListParams, ListQuery, RepoSummary, SortKey};

pub fn routes() -> Vec<Route> {
    vec![
        Route::page("/repos", &["GET"], get(pages::list_repos)),
        Route::page("/repos/{name}", &["GET"], get(detail::show_repo)),
        Route::page(
            "/repos/{name}/traffic.csv",
            &["GET"],
            get(detail::traffic_csv),
        ),
    ]
}

/// What `user` may see in the configured organization (none configured: names only), worked
/// out once per request, and the organization's name.
pub async fn access_in_org(
    state: &crate::state::AppState,
    user: &User,
) -> Result<(RepoAccess, String), StoreError> {
    let access = access_for(state.store.as_ref(), &state.auth.admin_groups, user).await?;
    Ok((access, org(state).to_string()))
}

/// The configured organization's name; empty without a sync.
pub fn org(state: &crate::state::AppState) -> &str {
    state.config.github.as_ref().map_or("", |g| g.org.as_str())
}

/// What `user` may see, worked out once per request: all for admins, else the patterns of
/// their assigned and group-mapped roles.
pub async fn access_for(
    store: &dyn Store,
    admin_groups: &[String],
    user: &User,
) -> Result<RepoAccess, StoreError> {
    if admin_reason(store, admin_groups, user).await?.is_admin() {
        return Ok(RepoAccess::All);
    }
    let held = effective_roles(store, user).await?;
    Ok(RepoAccess::from_patterns(held.iter().flat_map(|h| {
        h.role.repo_patterns.iter().map(String::as_str)
    })))
}
