//! Roles as code: the roles file (TOML), the checks on what an operator types, and the plan
//! that turns a wish (a file, or one `gatehouse roles …` command) into the changes it takes
//! from what is stored. Everything here is pure; `roles_apply` reads the stored state and
//! writes the plan in one transaction.
//!
//! Assignments by email always go to `role_email_assignments`, whether or not that person has
//! signed in yet: one rule, so a file means the same thing the day before and the day after
//! someone's first sign-in. A user holds the union of their account's assignments (admin
//! pages), their verified address's assignments and their groups' mappings.
//!
//! Over 400 lines: about 185 of them are its unit tests; the rest is one pure path (parse, check,
//! plan) kept together so every plan is tested without a database.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::repos::RepoPattern;

/// A role as the file (or a command) wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    /// Normalized by `RepoPattern`, in the file's order, without repeats.
    pub repos: Vec<String>,
    /// ASCII lower case, sorted, without repeats.
    pub users: Vec<String>,
    /// Sorted, without repeats.
    pub groups: Vec<String>,
}

/// One problem in a roles file, where TOML can say where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub reason: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.reason),
            (Some(l), None) => write!(f, "line {l}: {}", self.reason),
            _ => f.write_str(&self.reason),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    roles: BTreeMap<Spanned<String>, RoleDoc>,
}

// Missing lists are empty lists: a role ends up exactly as written, so leaving `users` out
// means nobody is assigned by email.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleDoc {
    #[serde(default)]
    repos: Vec<Spanned<String>>,
    #[serde(default)]
    users: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

/// Every role of the file, by name; or every problem found (nothing is applied then).
pub fn parse(text: &str) -> Result<Vec<RoleSpec>, Vec<FileError>> {
    let doc: FileDoc = toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| position(text, s.start));
        vec![FileError {
            line: at.map(|a| a.0),
            column: at.map(|a| a.1),
            reason: e.message().trim().to_string(),
        }]
    })?;
    let mut errors = Vec::new();
    let mut specs = Vec::new();
    let mut check = |item: &Spanned<String>, f: fn(&str) -> Result<String, String>| {
        f(item.get_ref()).map_err(|reason| {
            let (line, column) = position(text, item.span().start);
            errors.push(FileError {
                line: Some(line),
                column: Some(column),
                reason,
            });
        })
    };
    for (name, doc) in &doc.roles {
        let Ok(role) = check(name, role_name) else {
            continue;
        };
        let mut spec = RoleSpec {
            name: role,
            repos: Vec::new(),
            users: Vec::new(),
            groups: Vec::new(),
        };
        for item in &doc.repos {
            if let Ok(p) = check(item, repo_pattern) {
                spec.repos.push(p);
            }
        }
        for item in &doc.users {
            if let Ok(e) = check(item, email) {
                spec.users.push(e);
            }
        }
        for item in &doc.groups {
            if let Ok(g) = check(item, group) {
                spec.groups.push(g);
            }
        }
        specs.push(spec);
    }
    if !errors.is_empty() {
        // Roles come in name order; the operator reads the file top to bottom.
        errors.sort_by_key(|e| (e.line, e.column));
        return Err(errors);
    }
    for spec in &mut specs {
        dedup_keep_order(&mut spec.repos);
        spec.users.sort();
        spec.users.dedup();
        spec.groups.sort();
        spec.groups.dedup();
    }
    Ok(specs)
}

fn dedup_keep_order(items: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

fn plain_text(raw: &str, what: &str) -> Result<String, String> {
    if raw.is_empty() || raw.trim() != raw {
        return Err(format!(
            "{what} '{raw}' is empty or starts or ends with blanks"
        ));
    }
    if raw.len() > 200 || raw.chars().any(char::is_control) {
        return Err(format!(
            "{what} '{}' is longer than 200 characters or holds control characters",
            raw.escape_debug()
        ));
    }
    Ok(raw.to_string())
}

pub fn role_name(raw: &str) -> Result<String, String> {
    plain_text(raw, "the role name")
}

pub fn group(raw: &str) -> Result<String, String> {
    plain_text(raw, "the group name")
}

/// Stored normalized (lower case), so the same pattern typed twice is one change, not two.
pub fn repo_pattern(raw: &str) -> Result<String, String> {
    RepoPattern::parse(raw)
        .map(|p| p.to_string())
        .map_err(|e| format!("bad repository pattern: {e}"))
}

/// An address as assignments store it: exact ASCII lower case.
pub fn email(raw: &str) -> Result<String, String> {
    // Matched against the provider's address exactly; a look-alike character (the Kelvin
    // sign, a Cyrillic а) would never match, or match someone else.
    if !raw.is_ascii() {
        return Err(format!(
            "'{raw}' has characters outside ASCII: assignments are matched against the \
             provider's address exactly, so type the address in plain ASCII"
        ));
    }
    let email = raw.trim().to_ascii_lowercase();
    let well_formed = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && email.len() <= 254
                && !email
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        }
        None => false,
    };
    if !well_formed {
        return Err(format!("'{raw}' is not an email address"));
    }
    Ok(email)
}

/// An account that holds a role through the admin pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user_id: i64,
    pub email: Option<String>,
    /// The verified address, as assignments match it.
    pub trusted_email: Option<String>,
}

impl Account {
    fn label(&self) -> String {
        self.email
            .clone()
            .unwrap_or_else(|| format!("user #{}", self.user_id))
    }
}

/// A role as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRole {
    pub name: String,
    pub repos: Vec<String>,
    /// Sorted.
    pub users: Vec<String>,
    /// Sorted.
    pub groups: Vec<String>,
    pub accounts: Vec<Account>,
}

/// One change, as printed and audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Create {
        role: String,
        repos: Vec<String>,
    },
    Update {
        role: String,
        from: Vec<String>,
        to: Vec<String>,
    },
    Delete {
        role: String,
    },
    Assign {
        role: String,
        email: String,
    },
    Unassign {
        role: String,
        email: String,
    },
    UnassignAccount {
        role: String,
        account: Account,
    },
    Map {
        role: String,
        group: String,
    },
    Unmap {
        role: String,
        group: String,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Create { role, repos } => {
                write!(f, "role created: {role} (repos: {})", repos.join(", "))
            }
            Change::Update { role, from, to } => write!(
                f,
                "role updated: {role} (repos: {} -> {})",
                from.join(", "),
                to.join(", ")
            ),
            Change::Delete { role } => write!(f, "role deleted: {role}"),
            Change::Assign { role, email } => write!(f, "user assigned: {email} -> {role}"),
            Change::Unassign { role, email } => write!(f, "user unassigned: {email} -> {role}"),
            Change::UnassignAccount { role, account } => write!(
                f,
                "user unassigned: {} -> {role} (assigned to the account on the admin pages)",
                account.label()
            ),
            Change::Map { role, group } => write!(f, "group mapped: {group} -> {role}"),
            Change::Unmap { role, group } => write!(f, "group unmapped: {group} -> {role}"),
        }
    }
}

/// What an operator asked for.
#[derive(Debug, Clone)]
pub enum Request {
    Apply { roles: Vec<RoleSpec>, prune: bool },
    Create { role: String, repos: Vec<String> },
    Delete { role: String },
    Assign { email: String, role: String },
    Unassign { email: String, role: String },
    Map { group: String, role: String },
    Unmap { group: String, role: String },
}

/// The changes that make the stored roles what `request` asks; a refusal (an unknown role, a
/// role that exists already) changes nothing.
pub fn plan(request: &Request, stored: &[StoredRole]) -> Result<Vec<Change>, String> {
    let find = |role: &str| {
        stored
            .iter()
            .find(|r| r.name == role)
            .ok_or_else(|| format!("there is no role named '{role}'"))
    };
    let mut changes = Vec::new();
    match request {
        Request::Apply { roles, prune } => {
            for spec in roles {
                plan_role(
                    spec,
                    stored.iter().find(|r| r.name == spec.name),
                    &mut changes,
                );
            }
            if *prune {
                for role in stored {
                    if !roles.iter().any(|s| s.name == role.name) {
                        changes.push(Change::Delete {
                            role: role.name.clone(),
                        });
                    }
                }
            }
        }
        Request::Create { role, repos } => {
            if stored.iter().any(|r| &r.name == role) {
                return Err(format!(
                    "a role named '{role}' exists already (`roles apply` changes one)"
                ));
            }
            changes.push(Change::Create {
                role: role.clone(),
                repos: repos.clone(),
            });
        }
        Request::Delete { role } => {
            find(role)?;
            changes.push(Change::Delete { role: role.clone() });
        }
        Request::Assign { email, role } => {
            if !find(role)?.users.contains(email) {
                changes.push(Change::Assign {
                    role: role.clone(),
                    email: email.clone(),
                });
            }
        }
        Request::Unassign { email, role } => {
            let stored = find(role)?;
            if stored.users.contains(email) {
                changes.push(Change::Unassign {
                    role: role.clone(),
                    email: email.clone(),
                });
            }
            // Unassigning an address takes the role from whoever signs in with it, whichever
            // way it was given to them.
            for account in &stored.accounts {
                if account.trusted_email.as_ref() == Some(email) {
                    changes.push(Change::UnassignAccount {
                        role: role.clone(),
                        account: account.clone(),
                    });
                }
            }
        }
        Request::Map { group, role } => {
            if !find(role)?.groups.contains(group) {
                changes.push(Change::Map {
                    role: role.clone(),
                    group: group.clone(),
                });
            }
        }
        Request::Unmap { group, role } => {
            if find(role)?.groups.contains(group) {
                changes.push(Change::Unmap {
                    role: role.clone(),
                    group: group.clone(),
                });
            }
        }
    }
    Ok(changes)
}

fn plan_role(spec: &RoleSpec, stored: Option<&StoredRole>, changes: &mut Vec<Change>) {
    let role = || spec.name.clone();
    let (users, groups): (&[String], &[String]) = match stored {
        None => {
            changes.push(Change::Create {
                role: role(),
                repos: spec.repos.clone(),
            });
            (&[], &[])
        }
        Some(stored) => {
            if stored.repos != spec.repos {
                changes.push(Change::Update {
                    role: role(),
                    from: stored.repos.clone(),
                    to: spec.repos.clone(),
                });
            }
            // An account given this role on the admin pages keeps it only if the file gives
            // it to that account's verified address: otherwise the role would not be "exactly
            // as written".
            for account in &stored.accounts {
                let covered = account
                    .trusted_email
                    .as_ref()
                    .is_some_and(|e| spec.users.contains(e));
                if !covered {
                    changes.push(Change::UnassignAccount {
                        role: role(),
                        account: account.clone(),
                    });
                }
            }
            (&stored.users, &stored.groups)
        }
    };
    for email in users.iter().filter(|u| !spec.users.contains(u)) {
        changes.push(Change::Unassign {
            role: role(),
            email: email.clone(),
        });
    }
    for email in spec.users.iter().filter(|u| !users.contains(u)) {
        changes.push(Change::Assign {
            role: role(),
            email: email.clone(),
        });
    }
    for group in groups.iter().filter(|g| !spec.groups.contains(g)) {
        changes.push(Change::Unmap {
            role: role(),
            group: group.clone(),
        });
    }
    for group in spec.groups.iter().filter(|g| !groups.contains(g)) {
        changes.push(Change::Map {
            role: role(),
            group: group.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[roles.web]
repos  = ["web-*", "Acme/API", "web-*"]
users  = ["Bob@Example.com", "ann@example.com"]
groups = ["web-team"]

[roles.ops]
repos = ["*"]
"#;

    fn stored(specs: &[RoleSpec]) -> Vec<StoredRole> {
        specs
            .iter()
            .map(|s| StoredRole {
                name: s.name.clone(),
                repos: s.repos.clone(),
                users: s.users.clone(),
                groups: s.groups.clone(),
                accounts: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_file_is_normalized() {
        let specs = parse(FILE).expect("parses");
        assert_eq!(specs.len(), 2);
        let web = &specs[1];
        assert_eq!(web.name, "web");
        assert_eq!(web.repos, ["web-*", "acme/api"]);
        assert_eq!(web.users, ["ann@example.com", "bob@example.com"]);
        assert_eq!(specs[0].users, Vec::<String>::new());
    }

    #[test]
    fn problems_name_their_line() {
        let errors = parse("[roles.web]\nrepos = [\"ok\"]\nrepo = [\"x\"]\n").expect_err("key");
        assert_eq!(errors[0].line, Some(3), "{errors:?}");
        assert!(errors[0].reason.contains("unknown field"), "{errors:?}");

        let errors =
            parse("[roles.web]\nrepos = [\"ok\",\n \"bad pattern\"]\nusers = [\"nope\"]\n")
                .expect_err("values");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].line, errors[0].column), (Some(3), Some(2)));
        assert!(errors[0].reason.contains("bad repository pattern"));
        assert_eq!(errors[1].line, Some(4));
        assert!(errors[1].reason.contains("not an email address"));

        // Every problem at once, in the order of the file.
        let errors =
            parse("[roles.b]\nrepos = [\"a b\"]\n[roles.a]\nusers = [\"x\"]\n").expect_err("two");
        let lines: Vec<_> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [Some(2), Some(4)], "{errors:?}");

        let errors = parse("[roles.web\n").expect_err("toml");
        assert_eq!(errors[0].line, Some(1), "{errors:?}");
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(email(" Bob@Example.COM ").as_deref(), Ok("bob@example.com"));
        for bad in [
            "bob",
            "@x",
            "x@",
            "a@b@c",
            "a b@c",
            "bo\u{212a}@example.com",
            "",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn applying_what_is_stored_changes_nothing() {
        let specs = parse(FILE).expect("parses");
        let request = Request::Apply {
            roles: specs.clone(),
            prune: true,
        };
        let first = plan(&request, &[]).expect("plan");
        assert_eq!(first.len(), 5, "{first:?}");
        assert_eq!(plan(&request, &stored(&specs)).expect("plan"), []);
    }

    #[test]
    fn an_edit_is_exactly_the_difference() {
        let specs = parse(FILE).expect("parses");
        let mut now = stored(&specs);
        now[1].users = vec!["ann@example.com".into(), "old@example.com".into()];
        now[1].groups.push("gone".into());
        now[1].accounts.push(Account {
            user_id: 7,
            email: Some("Bob@example.com".into()),
            trusted_email: Some("bob@example.com".into()),
        });
        now[1].accounts.push(Account {
            user_id: 8,
            email: Some("eve@example.com".into()),
            trusted_email: None,
        });
        now.push(StoredRole {
            name: "legacy".into(),
            repos: vec![],
            users: vec![],
            groups: vec![],
            accounts: vec![],
        });
        let changes = plan(
            &Request::Apply {
                roles: specs.clone(),
                prune: false,
            },
            &now,
        )
        .expect("plan");
        let lines: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "user unassigned: eve@example.com -> web (assigned to the account on the admin pages)",
                "user unassigned: old@example.com -> web",
                "user assigned: bob@example.com -> web",
                "group unmapped: gone -> web",
            ]
        );
        let pruned = plan(
            &Request::Apply {
                roles: specs,
                prune: true,
            },
            &now,
        )
        .expect("plan");
        assert_eq!(
            pruned.last(),
            Some(&Change::Delete {
                role: "legacy".into()
            })
        );
    }

    #[test]
    fn unassigning_an_address_reaches_the_account_verified_with_it_only() {
        let account = |user_id, email: &str, verified: bool| Account {
            user_id,
            email: Some(email.into()),
            trusted_email: verified.then(|| email.to_ascii_lowercase()),
        };
        let now = [StoredRole {
            name: "web".into(),
            repos: vec![],
            users: vec!["bob@example.com".into()],
            groups: vec![],
            accounts: vec![
                account(1, "Bob@example.com", true),
                account(2, "bob@example.com", false),
            ],
        }];
        let request = Request::Unassign {
            email: "bob@example.com".into(),
            role: "web".into(),
        };
        let changes = plan(&request, &now).expect("plan");
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert!(
            matches!(&changes[1], Change::UnassignAccount { account, .. } if account.user_id == 1)
        );
    }

    #[test]
    fn commands_refuse_unknown_roles() {
        let assign = Request::Assign {
            email: "a@b.c".into(),
            role: "nope".into(),
        };
        assert!(plan(&assign, &[]).expect_err("unknown").contains("'nope'"));
    }
}
