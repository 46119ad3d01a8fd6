//! Command line: subcommands and the flags that override configuration. The administrative
//! subcommands are in `admin` (admins, roles), the data ones in `data` (import, sync).

mod admin;
mod data;

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
    // Before the configuration, so that fetching its secrets is traced too.
    let telemetry = match crate::telemetry::Telemetry::from_env(&sources.env) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gatehouse: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = match Config::load_fetching(&sources).await {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("gatehouse: configuration error: {e}");
            if let Some(telemetry) = telemetry {
                telemetry.shutdown().await;
            }
            return ExitCode::FAILURE;
        }
    };
    logging::init(config.log_format, telemetry.as_ref());
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let code = run_command(command, config).await;
    if let Some(telemetry) = telemetry {
        telemetry.shutdown().await;
    }
    code
}

async fn run_command(command: Command, config: Arc<Config>) -> ExitCode {
    if let Command::Sync(SyncCommand::Github) = command {
        return data::sync_github(config).await;
    }
    let result = match command {
        Command::Serve | Command::Check | Command::Sync(_) => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Admin(action) => admin::admin(config, action).await,
        Command::Roles(action) => admin::roles(config, action).await,
        Command::Import(args) => data::import(config, args).await,
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
