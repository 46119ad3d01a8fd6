//! Who may do what: admin (from IdP groups or a break-glass grant) and roles (assigned, or
//! mapped from IdP groups), with the reasons, so pages can explain them. Decided on every
//! request from `AccessRules`, an in-memory copy of the tables behind it that each request
//! checks against the `access` data version (one small read), so a role change made anywhere
//! applies at the next request without reading five tables each time.

use std::collections::HashMap;

use serde::Serialize;

use super::grants::AdminGrant;
use super::roles::Role;
use crate::on_db;
use crate::store::{Db, StoreError, User};

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

/// The roles, their assignments and mappings, and the break-glass grants, as of one
/// `access` version.
#[derive(Debug, Default)]
pub struct AccessRules {
    roles: HashMap<i64, Role>,
    to_user: HashMap<i64, Vec<i64>>,
    /// By exact ASCII lower-case address, as stored.
    to_email: HashMap<String, Vec<i64>>,
    /// (group, role id), by group and then role name.
    mapped: Vec<(String, i64)>,
    grants: Vec<AdminGrant>,
}

impl AccessRules {
    /// Everything that decides access, read in one go: a few small tables that change only
    /// when an admin changes them.
    pub async fn load(db: &Db) -> Result<AccessRules, StoreError> {
        const ASSIGNED: &str = "SELECT user_id, role_id FROM user_roles";
        const BY_EMAIL: &str = "SELECT email, role_id FROM role_email_assignments";
        const MAPPED: &str = "SELECT group_name, role_id FROM group_role_mappings";
        let roles = super::roles::all(db).await?;
        let assigned: Vec<(i64, i64)> =
            on_db!(db, |pool| sqlx::query_as(ASSIGNED).fetch_all(pool).await)?;
        let by_email: Vec<(String, i64)> =
            on_db!(db, |pool| sqlx::query_as(BY_EMAIL).fetch_all(pool).await)?;
        let mut mapped: Vec<(String, i64)> =
            on_db!(db, |pool| sqlx::query_as(MAPPED).fetch_all(pool).await)?;
        let grants = super::grants::list(db).await?;
        let mut to_user: HashMap<i64, Vec<i64>> = HashMap::new();
        for (user, role) in assigned {
            to_user.entry(user).or_default().push(role);
        }
        let mut to_email: HashMap<String, Vec<i64>> = HashMap::new();
        for (email, role) in by_email {
            to_email.entry(email).or_default().push(role);
        }
        let by_id: HashMap<i64, Role> = roles.into_iter().map(|r| (r.id, r)).collect();
        // Each mapping in the order the admin pages list them: by group, then role name.
        mapped.sort_by(|a, b| {
            let name = |id: &i64| by_id.get(id).map(|r| r.name.clone());
            a.0.cmp(&b.0).then_with(|| name(&a.1).cmp(&name(&b.1)))
        });
        Ok(AccessRules {
            roles: by_id,
            to_user,
            to_email,
            mapped,
            grants,
        })
    }

    pub fn admin_reason(&self, admin_groups: &[String], user: &User) -> AdminReason {
        let via: Vec<String> = user
            .groups
            .iter()
            .filter(|g| admin_groups.contains(g))
            .cloned()
            .collect();
        if !via.is_empty() {
            return AdminReason::Groups(via);
        }
        // A break-glass grant is by email, so only an email the provider vouches for counts.
        if let Some(email) = trusted_email(user)
            && let Some(grant) = self.grants.iter().find(|g| g.email == email)
        {
            return AdminReason::BreakGlass {
                granted_by: grant.granted_by.clone(),
            };
        }
        AdminReason::NotAdmin
    }

    /// The union of the roles assigned to the account, to its verified email and mapped
    /// from its groups, by role name.
    pub fn effective_roles(&self, user: &User) -> Vec<HeldRole> {
        let mut held: Vec<HeldRole> = Vec::new();
        let mut add = |role_id: &i64, source: RoleSource| {
            let Some(role) = self.roles.get(role_id) else {
                return;
            };
            match held.iter_mut().find(|h| h.role.id == role.id) {
                Some(h) => h.sources.push(source),
                None => held.push(HeldRole {
                    role: role.clone(),
                    sources: vec![source],
                }),
            }
        };
        let mut assigned: Vec<&i64> = self.to_user.get(&user.id).into_iter().flatten().collect();
        assigned.sort_by_key(|id| self.roles.get(id).map(|r| &r.name));
        for id in assigned {
            add(id, RoleSource::Assigned);
        }
        if let Some(email) = trusted_email(user) {
            let mut by_email: Vec<&i64> = self.to_email.get(&email).into_iter().flatten().collect();
            by_email.sort_by_key(|id| self.roles.get(id).map(|r| &r.name));
            for id in by_email {
                add(id, RoleSource::Email(email.clone()));
            }
        }
        for (group, id) in &self.mapped {
            if user.groups.contains(group) {
                add(id, RoleSource::Group(group.clone()));
            }
        }
        held.sort_by(|a, b| a.role.name.cmp(&b.role.name));
        held
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn role(id: i64, name: &str) -> Role {
        Role {
            id,
            name: name.into(),
            description: String::new(),
            repo_patterns: vec![format!("{name}-*")],
        }
    }

    fn user(id: i64, email: &str, verified: bool, groups: &[&str]) -> User {
        User {
            id,
            issuer: "https://idp.example".into(),
            subject: format!("s{id}"),
            email: Some(email.into()),
            email_verified: verified,
            name: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            is_admin: false,
        }
    }

    fn rules() -> AccessRules {
        AccessRules {
            roles: [role(1, "web"), role(2, "api"), role(3, "data")]
                .into_iter()
                .map(|r| (r.id, r))
                .collect(),
            to_user: HashMap::from([(7, vec![1, 2])]),
            to_email: HashMap::from([("bob@example.com".to_string(), vec![1, 3])]),
            mapped: vec![("eng".into(), 2), ("eng".into(), 3), ("ops".into(), 3)],
            grants: vec![AdminGrant {
                email: "root@example.com".into(),
                granted_by: "cli".into(),
                granted_at: chrono::Utc::now(),
            }],
        }
    }

    #[test]
    fn roles_come_from_the_account_a_verified_email_and_groups_merged_by_role() {
        let bob = user(7, "Bob@Example.com", true, &["eng"]);
        let held = rules().effective_roles(&bob);
        let names: Vec<&str> = held.iter().map(|h| h.role.name.as_str()).collect();
        assert_eq!(names, ["api", "data", "web"], "each role once, by name");
        let email = RoleSource::Email("bob@example.com".into());
        assert_eq!(
            held[0].sources,
            [RoleSource::Assigned, RoleSource::Group("eng".into())]
        );
        assert_eq!(
            held[1].sources,
            [email.clone(), RoleSource::Group("eng".into())]
        );
        assert_eq!(held[2].sources, [RoleSource::Assigned, email]);
    }

    #[test]
    fn an_unverified_email_or_an_unknown_user_holds_nothing_by_address() {
        let unverified = user(8, "bob@example.com", false, &[]);
        assert!(rules().effective_roles(&unverified).is_empty());
        // A look-alike address is another address.
        let lookalike = user(8, "bob@examp\u{217C}e.com", true, &["nobody"]);
        assert!(rules().effective_roles(&lookalike).is_empty());
        // An assignment to a role that is gone is no role.
        let mut gone = rules();
        gone.roles.remove(&2);
        let names: Vec<String> = gone
            .effective_roles(&user(7, "x@example.com", true, &[]))
            .into_iter()
            .map(|h| h.role.name)
            .collect();
        assert_eq!(names, ["web"]);
    }

    #[test]
    fn admin_by_group_or_by_a_grant_to_a_verified_email() {
        let rules = rules();
        let admins = ["it-admins".to_string()];
        let by_group = user(1, "a@example.com", false, &["it-admins", "eng"]);
        assert_eq!(
            rules.admin_reason(&admins, &by_group),
            AdminReason::Groups(vec!["it-admins".into()])
        );
        let granted = user(2, "ROOT@example.com", true, &[]);
        assert_eq!(
            rules.admin_reason(&admins, &granted),
            AdminReason::BreakGlass {
                granted_by: "cli".into()
            }
        );
        let unverified = user(2, "root@example.com", false, &[]);
        assert_eq!(
            rules.admin_reason(&admins, &unverified),
            AdminReason::NotAdmin
        );
        assert_eq!(
            rules.admin_reason(&[], &by_group),
            AdminReason::NotAdmin,
            "no admin groups configured: groups make no one admin"
        );
    }
}
