//! Who may do what: admin (from IdP groups or a break-glass grant) and roles (assigned, or
//! mapped from IdP groups), with the reasons, so pages can explain them. Looked up on every
//! request, so a role change applies at the next one.

use serde::Serialize;

use super::roles::Role;
use crate::store::{Store, StoreError, User};

/// Why a user is (or is not) an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AdminReason {
    Groups(Vec<String>),
    BreakGlass { granted_by: String },
    NotAdmin,
}

impl AdminReason {
    pub fn is_admin(&self) -> bool {
        !matches!(self, AdminReason::NotAdmin)
    }
}

pub async fn admin_reason(
    store: &dyn Store,
    admin_groups: &[String],
    user: &User,
) -> Result<AdminReason, StoreError> {
    let via: Vec<String> = user
        .groups
        .iter()
        .filter(|g| admin_groups.contains(g))
        .cloned()
        .collect();
    if !via.is_empty() {
        return Ok(AdminReason::Groups(via));
    }
    // A break-glass grant is by email, so only an email the provider vouches for counts.
    if let Some(email) = trusted_email(user) {
        let grants = super::grants::list(&store.db()).await?;
        if let Some(grant) = grants.into_iter().find(|g| g.email == email) {
            return Ok(AdminReason::BreakGlass {
                granted_by: grant.granted_by,
            });
        }
    }
    Ok(AdminReason::NotAdmin)
}

/// Where a role of a user comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RoleSource {
    /// To the account, on the admin pages.
    Assigned,
    /// To the user's (verified) email address, from the command line or a roles file.
    Email(String),
    Group(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldRole {
    pub role: Role,
    pub sources: Vec<RoleSource>,
}

impl HeldRole {
    pub fn is_assigned(&self) -> bool {
        self.sources.contains(&RoleSource::Assigned)
    }
}

/// The email an assignment by address may match: only one the provider vouches for, as
/// exact ASCII lower case (a look-alike character must not match someone else's address).
pub fn trusted_email(user: &User) -> Option<String> {
    user.email
        .as_deref()
        .filter(|_| user.email_verified)
        .map(str::to_ascii_lowercase)
}

/// The union of the roles assigned to the account, to its verified email and mapped from
/// its groups.
pub async fn effective_roles(store: &dyn Store, user: &User) -> Result<Vec<HeldRole>, StoreError> {
    let mut held: Vec<HeldRole> = Vec::new();
    let mut add =
        |role: Role, source: RoleSource| match held.iter_mut().find(|h| h.role.id == role.id) {
            Some(h) => h.sources.push(source),
            None => held.push(HeldRole {
                role,
                sources: vec![source],
            }),
        };
    for role in super::roles::assigned(&store.db(), user.id).await? {
        add(role, RoleSource::Assigned);
    }
    if let Some(email) = trusted_email(user) {
        for role in super::roles::assigned_to_email(&store.db(), &email).await? {
            add(role, RoleSource::Email(email.clone()));
        }
    }
    for mapping in super::roles::group_mappings(&store.db()).await? {
        if user.groups.contains(&mapping.group_name) {
            add(mapping.role, RoleSource::Group(mapping.group_name));
        }
    }
    held.sort_by(|a, b| a.role.name.cmp(&b.role.name));
    Ok(held)
}

/// `*` matches any run of characters; everything else matches itself, case-insensitively.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The data sets a user's roles grant.
pub struct Access {
    pub roles: Vec<HeldRole>,
}

impl Access {
    pub fn may_see_repo(&self, repo: &str) -> bool {
        self.roles
            .iter()
            .flat_map(|h| h.role.repo_patterns.iter())
            .any(|p| pattern_matches(p, repo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("platform-*", "platform-api"));
        assert!(pattern_matches("PLATFORM-*", "platform-api"));
        assert!(pattern_matches("website", "website"));
        assert!(pattern_matches("*", "anything"));
        assert!(pattern_matches("*-app", "mobile-app"));
        assert!(!pattern_matches("website", "website-old"));
        assert!(!pattern_matches("platform-*", "the-platform-api"));
        assert!(!pattern_matches("", "x"));
    }
}
