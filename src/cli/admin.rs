//! `gatehouse admin …` (break-glass administrators) and `gatehouse roles …` (roles as code).

use std::sync::Arc;

use super::{AdminCommand, RolesCommand};
use crate::config::Config;

pub(super) async fn admin(config: Arc<Config>, action: AdminCommand) -> anyhow::Result<()> {
    use crate::store::AuditEvent;
    let store = crate::store::connect(&config).await?;
    store.migrate().await?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let by = format!("command line ({operator})");
    let result = match &action {
        AdminCommand::Grant { email } | AdminCommand::Revoke { email } => {
            // Emails match as exact ASCII lower case; a look-alike character (the Kelvin
            // sign, a Cyrillic а) in a grant would never match, or match someone else.
            if !email.is_ascii() {
                anyhow::bail!(
                    "'{email}' has characters outside ASCII: grants are matched against the \
                     provider's address exactly, so type the address in plain ASCII"
                );
            }
            let email = email.trim().to_ascii_lowercase();
            if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
                anyhow::bail!("'{email}' is not an email address");
            }
            let (changed, kind, done, already) = if matches!(action, AdminCommand::Grant { .. }) {
                (
                    crate::auth::grants::grant(&store.db(), &email, &by).await?,
                    "admin_grant",
                    "is now an administrator (break-glass)",
                    "already had a break-glass grant",
                )
            } else {
                (
                    crate::auth::grants::revoke(&store.db(), &email).await?,
                    "admin_revoke",
                    "no longer has a break-glass grant",
                    "had no break-glass grant",
                )
            };
            if changed {
                crate::store::audit::record(
                    &store.db(),
                    &AuditEvent {
                        kind,
                        outcome: "success",
                        actor: Some(by.clone()),
                        details: serde_json::json!({ "email": email }),
                        ..AuditEvent::default()
                    },
                )
                .await?;
            }
            println!("{email} {}", if changed { done } else { already });
            Ok(())
        }
        AdminCommand::List => {
            for g in crate::auth::grants::list(&store.db()).await? {
                println!(
                    "{}\t{}\t{}",
                    g.email,
                    g.granted_by,
                    g.granted_at.to_rfc3339()
                );
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

pub(super) async fn roles(config: Arc<Config>, action: RolesCommand) -> anyhow::Result<()> {
    use crate::auth::roles_apply::{self, Outcome};
    use crate::auth::roles_file::{self as file, Request};
    // Everything the operator typed is checked before the database is touched.
    let checked = |r: Result<String, String>| r.map_err(anyhow::Error::msg);
    let (request, dry_run, source) = match action {
        RolesCommand::List => {
            let store = crate::store::connect(&config).await?;
            store.migrate().await?;
            let listed = roles_apply::list(&store.db()).await;
            store.close().await;
            print_roles(&listed?);
            return Ok(());
        }
        RolesCommand::Create { name, repos } => {
            let repos = repos
                .iter()
                .map(|p| checked(file::repo_pattern(p)))
                .collect::<Result<Vec<_>, _>>()?;
            let role = checked(file::role_name(&name))?;
            (Request::Create { role, repos }, false, None)
        }
        RolesCommand::Delete { name } => (Request::Delete { role: name }, false, None),
        RolesCommand::Assign { email, role } => {
            let email = checked(file::email(&email))?;
            (Request::Assign { email, role }, false, None)
        }
        RolesCommand::Unassign { email, role } => {
            let email = checked(file::email(&email))?;
            (Request::Unassign { email, role }, false, None)
        }
        RolesCommand::MapGroup { group, role } => {
            let group = checked(file::group(&group))?;
            (Request::Map { group, role }, false, None)
        }
        RolesCommand::UnmapGroup { group, role } => {
            let group = checked(file::group(&group))?;
            (Request::Unmap { group, role }, false, None)
        }
        RolesCommand::Apply {
            file: path,
            dry_run,
            prune,
        } => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let roles = match file::parse(&text) {
                Ok(roles) => roles,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{}: {e}", path.display());
                    }
                    anyhow::bail!(
                        "{} problem(s) in {}; nothing was changed",
                        errors.len(),
                        path.display()
                    );
                }
            };
            (Request::Apply { roles, prune }, dry_run, Some(path))
        }
    };
    let store = crate::store::connect(&config).await?;
    store.migrate().await?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let by = format!("command line ({operator})");
    let outcome = roles_apply::run(&store.db(), &request, &by, dry_run).await;
    store.close().await;
    let changes = match outcome? {
        Outcome::Changed(changes) => changes,
        Outcome::Refused(reason) => match source {
            Some(path) => anyhow::bail!("{}: {reason}; nothing was changed", path.display()),
            None => anyhow::bail!("{reason}; nothing was changed"),
        },
    };
    for change in &changes {
        println!("{change}");
    }
    if changes.is_empty() {
        println!("nothing changed");
    } else if dry_run {
        println!("dry run: {} change(s), nothing written", changes.len());
    } else {
        println!("{} change(s) applied", changes.len());
    }
    Ok(())
}

pub(super) fn print_roles(listed: &[crate::auth::roles_apply::Listing]) {
    let or_dash = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    for l in listed {
        let users = l
            .role
            .users
            .iter()
            .map(|u| {
                if l.pending.contains(u) {
                    format!("{u} (pending)")
                } else {
                    u.clone()
                }
            })
            .collect();
        println!("{}", l.role.name);
        println!("  repos:  {}", or_dash(l.role.repos.clone()));
        println!("  users:  {}", or_dash(users));
        if !l.role.accounts.is_empty() {
            let accounts = l
                .role
                .accounts
                .iter()
                .map(|a| {
                    a.email
                        .clone()
                        .unwrap_or_else(|| format!("user #{}", a.user_id))
                })
                .collect();
            println!("  accounts (admin pages): {}", or_dash(accounts));
        }
        println!("  groups: {}", or_dash(l.role.groups.clone()));
    }
}
