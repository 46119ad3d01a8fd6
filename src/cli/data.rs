//! `gatehouse import …` (data feeds) and `gatehouse sync github` (one sync run now).

use std::process::ExitCode;
use std::sync::Arc;

use super::{EXIT_SKIPPED, ImportArgs};
use crate::config::Config;

pub(super) async fn import(config: Arc<Config>, args: ImportArgs) -> anyhow::Result<()> {
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

pub(super) async fn sync_github(config: Arc<Config>) -> ExitCode {
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
