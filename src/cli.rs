//! Command line: subcommands and the flags that override configuration.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Sources, vars};
use crate::{app, check, logging};

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Gatehouse: the secure internal portal an IT team puts in front of its company.",
    long_about = "Gatehouse: the secure internal portal an IT team puts in front of its company.\n\n\
        Configuration comes from an optional TOML file (--config or GATEHOUSE_CONFIG), then \
        GATEHOUSE_* environment variables, then flags. With no configuration at all it runs in \
        dev mode on 127.0.0.1:8080 with SQLite (gatehouse.db) and sample data."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (keys are the variable names without GATEHOUSE_, lower-case).
    #[arg(long, global = true, env = vars::CONFIG_FILE_VAR, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Listen address (GATEHOUSE_BIND).
    #[arg(long, global = true, value_name = "ADDR")]
    pub bind: Option<String>,
    /// External base URL (GATEHOUSE_PUBLIC_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub public_url: Option<String>,
    /// postgres://… or sqlite://PATH (GATEHOUSE_DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis URL (GATEHOUSE_REDIS_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub redis_url: Option<String>,
    /// json or pretty (GATEHOUSE_LOG_FORMAT).
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Any setting, by variable name or TOML key: --set SESSION_TTL=2h.
    #[arg(long = "set", global = true, value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the portal (the default).
    Serve,
    /// Apply database migrations, then exit.
    Migrate,
    /// Validate the configuration and reach every configured dependency; exit 1 on a problem.
    Check,
    /// Break-glass administrators, for when the identity provider sends no groups.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Roles as code: create roles, assign them by email, map IdP groups to them, or make
    /// them what a roles file says.
    #[command(subcommand)]
    Roles(RolesCommand),
    /// Replace a data feed with a full snapshot from a CSV file: every row is
    /// validated first, then applied all or nothing.
    Import(ImportArgs),
    /// Run a sync now; exit 0 when it applied, 1 when it failed or was refused, 75 when
    /// another process or instance was already running one (so nothing ran).
    #[command(subcommand)]
    Sync(SyncCommand),
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Read the organization's SAML identities and repository traffic from GitHub.
    Github,
}

/// `sync` found another run holding the lease (EX_TEMPFAIL: try again later).
const EXIT_SKIPPED: u8 = 75;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Which feed: `assets` (serial,model,owner_email[,assigned_at]) or `distribution-lists`
    /// (list_email,name,member_email,role[,hidden]).
    #[arg(value_parser = ["assets", "distribution-lists"])]
    pub feed: String,
    /// The CSV file, with a header row; `-` reads standard input.
    pub file: std::path::PathBuf,
    /// Show what would change, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply even when it removes more than GATEHOUSE_SYNC_MAX_DEPARTED of the rows.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Make the user with this (verified) email an administrator.
    Grant { email: String },
    /// Take a break-glass grant away again.
    Revoke { email: String },
    /// List the break-glass grants.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RolesCommand {
    /// Create a role that grants the repositories these patterns match.
    Create {
        name: String,
        /// Patterns on the repository name or owner/name, `*` as the wildcard: web-*,acme/api.
        #[arg(long, value_delimiter = ',', required = true, value_name = "PATTERN")]
        repos: Vec<String>,
    },
    /// Delete a role, with its assignments and group mappings.
    Delete { name: String },
    /// Give a role to whoever signs in with this (verified) email, now or later.
    Assign { email: String, role: String },
    /// Take a role away from an email (and from the account that signs in with it).
    Unassign { email: String, role: String },
    /// Give a role to everyone in an IdP group.
    MapGroup { group: String, role: String },
    /// Stop giving a role to an IdP group.
    UnmapGroup { group: String, role: String },
    /// List the roles with their patterns, users (pending: not signed in yet) and groups.
    List,
    /// Make every role the file names exactly what it says, in one transaction.
    Apply {
        /// The roles file (TOML: [roles.NAME] with repos, users, groups).
        file: PathBuf,
        /// Print the changes, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Also delete the roles the file does not name.
        #[arg(long)]
        prune: bool,
    },
}

impl GlobalArgs {
    fn flag_overrides(&self) -> Result<Vec<(String, String)>, String> {
        let mut flags = Vec::new();
        let named = [
            ("GATEHOUSE_BIND", &self.bind),
            ("GATEHOUSE_PUBLIC_URL", &self.public_url),
            ("GATEHOUSE_DATABASE_URL", &self.database_url),
            ("GATEHOUSE_REDIS_URL", &self.redis_url),
            ("GATEHOUSE_LOG_FORMAT", &self.log_format),
        ];
        for (var, value) in named {
            if let Some(v) = value {
                flags.push((var.to_string(), v.clone()));
            }
        }
        for item in &self.set {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("--set {item}: expected NAME=VALUE"))?;
            let name = name.trim();
            let var = if name.starts_with("GATEHOUSE_") {
                name.to_string()
            } else {
                format!("GATEHOUSE_{}", name.to_ascii_uppercase())
            };
            flags.push((var, value.to_string()));
        }
        Ok(flags)
    }
}

pub async fn run(cli: Cli) -> ExitCode {
    let flags = match cli.global.flag_overrides() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sources = Sources::from_process(cli.global.config.clone(), flags);
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Check = command {
        return check::run(&sources).await;
    }
    let config = match Config::load(&sources) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("gatehouse: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(config.log_format);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Command::Sync(SyncCommand::Github) = command {
        return sync_github(config).await;
    }
    let result = match command {
        Command::Serve | Command::Check | Command::Sync(_) => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Admin(action) => admin(config, action).await,
        Command::Roles(action) => roles(config, action).await,
        Command::Import(args) => import(config, args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "fatal");
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Arc<Config>) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = app::prepare(config).await?;
    let server = app::Server::bind(state, bind).await?;
    server.run(app::shutdown_signal()).await
}

async fn admin(config: Arc<Config>, action: AdminCommand) -> anyhow::Result<()> {
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

async fn roles(config: Arc<Config>, action: RolesCommand) -> anyhow::Result<()> {
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

fn print_roles(listed: &[crate::auth::roles_apply::Listing]) {
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

async fn import(config: Arc<Config>, args: ImportArgs) -> anyhow::Result<()> {
    use crate::directory::feeds::{Feed, SnapshotLimits};
    use crate::directory::import::{Snapshot, Source, apply};
    let feed = if args.feed == "assets" {
        Feed::Assets
    } else {
        Feed::DistributionLists
    };
    let bytes = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read(&args.file)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?
    };
    let snapshot = match Snapshot::from_csv(feed, &bytes) {
        Ok(s) => s,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", args.file.display());
            }
            anyhow::bail!(
                "{} row(s) of {} are invalid; nothing was changed",
                errors.len(),
                args.file.display()
            );
        }
    };
    let store = crate::store::connect(&config).await?;
    store.migrate().await?;
    let operator = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let limits = SnapshotLimits {
        max_removed_share: config.sync_max_departed,
        force: args.force,
        dry_run: args.dry_run,
    };
    let source = Source {
        via: "cli",
        actor: &format!("command line ({operator})"),
        actor_id: None,
        client_ip: None,
    };
    let outcome = apply(store.as_ref(), &snapshot, &limits, &source).await;
    store.close().await;
    let outcome = outcome?;
    let c = outcome.counts;
    let what = format!(
        "{}: {} added, {} changed, {} removed (of {} existing)",
        feed.as_str(),
        c.added,
        c.changed,
        c.removed,
        c.existing
    );
    if let Some(reason) = outcome.refused {
        anyhow::bail!("{what}: refused: {reason}");
    }
    if outcome.applied {
        println!("{what}: applied");
    } else {
        println!("{what}: dry run, nothing changed");
    }
    Ok(())
}

async fn sync_github(config: Arc<Config>) -> ExitCode {
    use crate::sync::runner::Outcome;
    let run = async {
        let Some(sync) = crate::sync::github::service(&config)? else {
            anyhow::bail!(
                "the GitHub sync is not configured: set GATEHOUSE_GITHUB_ORG and GATEHOUSE_GITHUB_TOKEN"
            );
        };
        let store = crate::store::connect(&config).await?;
        store.migrate().await?;
        let outcome = sync.run(store.clone(), "command line").await;
        store.close().await;
        Ok(outcome?)
    };
    match run.await {
        Ok(Outcome::Succeeded(a)) => {
            let i = a.identities;
            println!(
                "github sync: {} identities fetched, {} added, {} changed, {} returned, {} departed; {} repositories, {} traffic days",
                i.fetched, i.added, i.changed, i.returned, i.departed, a.repos, a.traffic_days
            );
            ExitCode::SUCCESS
        }
        Ok(Outcome::Refused(a)) => {
            eprintln!(
                "gatehouse: github sync refused: {}",
                a.refused.unwrap_or_default()
            );
            ExitCode::FAILURE
        }
        Ok(Outcome::Failed(e)) => {
            eprintln!("gatehouse: github sync failed, nothing changed: {e}");
            ExitCode::FAILURE
        }
        Ok(Outcome::Skipped) => {
            eprintln!("gatehouse: github sync skipped: another process is running one");
            ExitCode::from(EXIT_SKIPPED)
        }
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate(config: Arc<Config>) -> anyhow::Result<()> {
    let store = crate::store::connect(&config).await?;
    let before = store.migration_status().await?;
    let after = store.migrate().await?;
    println!(
        "migrations: {} applied now, {} in total; schema version {}",
        after.applied.len().saturating_sub(before.applied.len()),
        after.applied.len(),
        after.applied.last().copied().unwrap_or_default()
    );
    store.close().await;
    Ok(())
}
