//! The organization's repositories and their traffic, by role. So far: who may see which
//! repository (`access`); the pages, CSV and API build on it.

pub mod access;

pub use access::{PatternError, RepoAccess, RepoPattern};

use crate::auth::access::{admin_reason, effective_roles};
use crate::store::{Store, StoreError, User};

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
