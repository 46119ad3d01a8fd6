//! The organization's repositories and their traffic, by role: who may see which
//! repository (`access`), the list page (`pages`), its types (`model`) and queries
//! (`store`).

pub mod access;
pub mod api;
pub mod cache;
pub mod detail;
mod model;
pub mod pages;
pub mod store;
mod svg;

pub use access::{PatternError, RepoAccess, RepoPattern};

use axum::routing::get;

use crate::auth::access::AccessRules;
use crate::state::AppState;
use crate::store::versions::Versions;
use crate::store::{StoreError, User};
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
    state: &AppState,
    user: &User,
) -> Result<(RepoAccess, String), StoreError> {
    let access = access_with(state, state.versions().await?, user).await?;
    Ok((access, org(state).to_string()))
}

/// A page asked with a bad parameter is a 400, answered with the page in its default view and
/// the problem named on it, so the user can go on from there.
pub(crate) fn page_status(problem: Option<&String>) -> axum::http::StatusCode {
    match problem {
        Some(_) => axum::http::StatusCode::BAD_REQUEST,
        None => axum::http::StatusCode::OK,
    }
}

/// The configured organization's name; empty without a sync.
pub fn org(state: &AppState) -> &str {
    state.config.github.as_ref().map_or("", |g| g.org.as_str())
}

/// What `user` may see as of `versions`.
pub async fn access_with(
    state: &AppState,
    versions: Versions,
    user: &User,
) -> Result<RepoAccess, StoreError> {
    let rules = state.access_rules(versions).await?;
    Ok(access_from(&rules, &state.auth.admin_groups, user))
}

/// All for admins, else the patterns of the user's assigned and group-mapped roles.
pub fn access_from(rules: &AccessRules, admin_groups: &[String], user: &User) -> RepoAccess {
    if rules.admin_reason(admin_groups, user).is_admin() {
        return RepoAccess::All;
    }
    let held = rules.effective_roles(user);
    RepoAccess::from_patterns(
        held.iter()
            .flat_map(|h| h.role.repo_patterns.iter().map(String::as_str)),
    )
}
