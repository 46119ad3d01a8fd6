//! Building and running the service: what `serve` does, in functions tests can call.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

use crate::auth::service::Auth;
use crate::config::Config;
use crate::devidp::DevIdp;
use crate::redis_client::RedisHandle;
use crate::sample;
use crate::state::AppState;
use crate::store::{self, Store};
use crate::web;
use crate::web::serve::{ConnectionLimits, serve};

/// The whole HTTP application for a state: what the server runs and what tests call.
pub fn build_app(state: AppState) -> Router {
    crate::pipeline::router(state)
}

/// Connects to the database and migrates it, loads demo data in dev mode, and builds the
/// state. Failures are returned with their cause (and never a password) for `main` to print.
pub async fn prepare(config: Arc<Config>) -> anyhow::Result<AppState> {
    if let Some(refusal) = &config.dev_mode_refusal {
        anyhow::bail!("configuration error: {refusal}");
    }
    let store = store::connect(&config).await?;
    let status = store.migrate().await?;
    tracing::info!(
        database = %config.database,
        schema_version = status.applied.last().copied().unwrap_or_default(),
        "database ready"
    );
    if config.is_dev_mode() {
        tracing::warn!(
            "DEV MODE: no identity provider is configured (GATEHOUSE_OIDC_ISSUER / \
             GATEHOUSE_OIDC_CONFIG). Gatehouse serves made-up sample data on a loopback \
             address only. Never run it like this for real users."
        );
        // Made-up people must not mix with a real organization's: with a GitHub sync
        // configured, the directory is the sync's alone.
        if config.github.is_none() {
            load_sample_data(store.as_ref()).await?;
        }
    }
    let redis = match &config.redis {
        Some(url) => Some(Arc::new(RedisHandle::new(url)?)),
        None => None,
    };
    // The dev provider and the relying party share this secret in-process only.
    let dev_client_secret = secrecy::SecretString::from(crate::auth::oidc::random_token());
    let auth = Arc::new(Auth::new(
        &config,
        Arc::clone(&store),
        redis.clone(),
        &dev_client_secret,
    )?);
    let dev_idp = match &config.identity {
        crate::config::IdentityProvider::Dev { issuer } => {
            let idp = Arc::new(DevIdp::new(
                issuer.clone(),
                crate::auth::service::DEV_CLIENT_ID.to_string(),
                dev_client_secret,
                crate::config::callback_url(&config.public_url),
                config.public_url.to_string(),
                config.api.audience.clone(),
            ));
            idp.warm_up();
            Some(idp)
        }
        crate::config::IdentityProvider::External(_) => None,
    };
    let limiter = Arc::new(crate::web::ratelimit::RateLimiter::new(
        config.rate_limits.clone(),
        redis.clone(),
        &config.redis_prefix,
    ));
    let sync = crate::sync::github::service(&config)?;
    let api = Arc::new(crate::auth::bearer::ApiVerifier::new(
        &config,
        Arc::clone(&auth.oidc),
    )?);
    Ok(AppState::new(
        config, store, redis, auth, dev_idp, limiter, sync, api,
    ))
}

async fn load_sample_data(store: &dyn Store) -> anyhow::Result<()> {
    let data = sample::generate(chrono::Utc::now().date_naive());
    if crate::store::load_sample_data(&store.db(), &data).await? {
        tracing::info!(
            people = data.people.len(),
            laptops = data.laptops.len(),
            lists = data.lists.len(),
            repos = data.repos.len(),
            "loaded made-up sample data (dev mode, empty directory)"
        );
    }
    Ok(())
}

/// Housekeeping: audit events past `GATEHOUSE_AUDIT_RETENTION` and expired database
/// sessions are deleted. A plain function so tests can call it; `Server::run` repeats it hourly.
pub async fn maintain(state: &AppState) -> anyhow::Result<(u64, u64)> {
    let retention = chrono::Duration::from_std(state.config.audit_retention)
        .context("GATEHOUSE_AUDIT_RETENTION is out of range")?;
    let pruned =
        crate::store::audit::prune(&state.store.db(), chrono::Utc::now() - retention).await?;
    let purged = crate::auth::session_db::purge_expired(&state.store.db()).await?;
    if pruned + purged > 0 {
        tracing::info!(
            audit_events = pruned,
            sessions = purged,
            "pruned old records"
        );
    }
    Ok((pruned, purged))
}

const MAINTENANCE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// A bound, not yet serving, server; `addr` is known before serving (tests bind port 0).
pub struct Server {
    listener: TcpListener,
    /// The separate `/metrics` listener, when `GATEHOUSE_METRICS_BIND` is set.
    metrics: Option<TcpListener>,
    app: Router,
    state: AppState,
}

impl Server {
    pub async fn bind(state: AppState, addr: SocketAddr) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let metrics =
            match state.config.metrics_bind {
                Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen on {addr} (GATEHOUSE_METRICS_BIND)")
                })?),
                None => None,
            };
        let app = build_app(state.clone());
        Ok(Server {
            listener,
            metrics,
            app,
            state,
        })
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let drain = self.state.config.shutdown_drain;
        let limits = ConnectionLimits {
            header_timeout: self.state.config.header_timeout,
            max_connections: self.state.config.max_connections,
            finish_within: crate::config::SHUTDOWN_WITHIN.saturating_sub(drain),
        };
        // On the signal: readiness fails at once while everything is still served, for the
        // drain period, so the load balancer stops sending requests before the listener
        // closes; then open connections finish what they are doing.
        let draining = Arc::clone(&self.state.draining);
        let shutdown = async move {
            shutdown.await;
            draining.store(true, std::sync::atomic::Ordering::Relaxed);
            if !drain.is_zero() {
                tracing::info!(
                    seconds = drain.as_secs_f64(),
                    "draining: readiness answers 503, requests are still served"
                );
                tokio::time::sleep(drain).await;
            }
        };
        let metrics_task = self.metrics.map(|listener| {
            let mut stop = stop_rx.clone();
            let state = self.state.clone();
            let addr = listener.local_addr().ok();
            tracing::info!(addr = ?addr, "metrics listening");
            tokio::spawn(serve(
                listener,
                web::metrics::router(state),
                limits,
                async move {
                    let _ = stop.wait_for(|s| *s).await;
                },
            ))
        });
        let maintenance = {
            let state = self.state.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = maintain(&state).await {
                        tracing::warn!(
                            error = format!("{e:#}"),
                            "housekeeping failed; retrying later"
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(MAINTENANCE_EVERY) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                }
            })
        };
        let versions_task = match self.state.store.db() {
            crate::store::Db::Postgres(pool) => Some(tokio::spawn(
                self.state
                    .data_versions
                    .clone()
                    .watch(pool, stop_rx.clone()),
            )),
            crate::store::Db::Sqlite(_) => None,
        };
        // Once a search has built the directory's index, a new version (a sync or an import
        // here or on another instance) rebuilds it at once, not on the next search.
        let directory_task = {
            let state = self.state.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = state.data_versions.directory_moved() => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    if state.caches.directory.kept_version().is_some()
                        && let Err(e) = state.directory().await
                    {
                        tracing::warn!(error = %e, "cannot rebuild the directory index; the next search tries again");
                    }
                }
            })
        };
        let sync_task = self
            .state
            .sync
            .clone()
            .map(|sync| tokio::spawn(sync.schedule(self.state.store.clone(), stop_rx.clone())));
        let lifecycle_task = match (&self.state.auth.okta, &self.state.config.okta) {
            (Some(okta), Some(config)) if !config.interval.is_zero() => {
                let service = Arc::new(crate::lifecycle::LifecycleService::new(
                    Arc::clone(okta),
                    config.interval,
                ));
                Some(tokio::spawn(
                    service.schedule(self.state.clone(), stop_rx.clone()),
                ))
            }
            _ => None,
        };
        tracing::info!(%addr, public_url = %self.state.config.public_url, "listening");
        if self.state.config.is_dev_mode() {
            // One line for whoever just started it, on stderr whatever the log format.
            eprintln!(
                "Open {} and pick alice (an administrator) or bob.",
                self.state.config.public_url.as_str().trim_end_matches('/')
            );
        }
        serve(self.listener, self.app, limits, shutdown).await;
        let _ = stop_tx.send(true);
        let _ = maintenance.await;
        let _ = directory_task.await;
        if let Some(task) = versions_task {
            let _ = task.await;
        }
        if let Some(task) = sync_task {
            // A run in flight is abandoned, not awaited: its transaction rolls back and its
            // lease expires, and `sync_runs` keeps it as 'running' until then.
            task.abort();
        }
        if let Some(task) = lifecycle_task {
            // A round in flight changes one user at a time; cutting it short loses nothing.
            task.abort();
        }
        if let Some(task) = metrics_task {
            task.await.context("metrics listener panicked")?;
        }
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
