//! The real application, in-process, on a free loopback port.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse::app::{Server, prepare};
use gatehouse::config::{Config, Sources};
use gatehouse::state::AppState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings from these pairs only; the process environment is not read.
fn sources(pairs: &[(&str, &str)]) -> Sources {
    let env: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Sources {
        env,
        ..Sources::default()
    }
}

/// A configuration from `GATEHOUSE_*` pairs only.
pub fn config(pairs: &[(&str, &str)]) -> Config {
    Config::load(&sources(pairs)).expect("test configuration is valid")
}

/// As `config`, with `gcp:` references fetched as a start does.
pub async fn fetched_config(pairs: &[(&str, &str)]) -> Config {
    Config::load_fetching(&sources(pairs))
        .await
        .expect("test configuration is valid")
}

impl TestApp {
    /// Starts the app with these settings; the database URL is required, the bind is free.
    /// Without `GATEHOUSE_BIND`, a free port is chosen and `GATEHOUSE_PUBLIC_URL` points at it.
    pub async fn start(pairs: &[(&str, &str)]) -> TestApp {
        let mut pairs: Vec<(&str, String)> =
            pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if !pairs.iter().any(|(k, _)| *k == "GATEHOUSE_BIND") {
            let port = super::free_port();
            pairs.push(("GATEHOUSE_BIND", format!("127.0.0.1:{port}")));
            if !pairs.iter().any(|(k, _)| *k == "GATEHOUSE_PUBLIC_URL") {
                pairs.push(("GATEHOUSE_PUBLIC_URL", format!("http://127.0.0.1:{port}")));
            }
        }
        // Tests sign in far more often than people do; tests of the limits set their own.
        if !pairs.iter().any(|(k, _)| *k == "GATEHOUSE_RATE_LIMITS") {
            pairs.push((
                "GATEHOUSE_RATE_LIMITS",
                "auth.login=10000/minute,auth.callback=10000/minute,profile=10000/minute,\
                 default=10000/minute"
                    .to_string(),
            ));
        }
        // A test's stop needs no drain (no load balancer to notice it); tests of the drain
        // set their own.
        if !pairs.iter().any(|(k, _)| *k == "GATEHOUSE_SHUTDOWN_DRAIN") {
            pairs.push(("GATEHOUSE_SHUTDOWN_DRAIN", "0s".to_string()));
        }
        // Tests share one Redis: each app gets its own key namespace unless told otherwise.
        if !pairs.iter().any(|(k, _)| *k == "GATEHOUSE_REDIS_PREFIX") {
            pairs.push((
                "GATEHOUSE_REDIS_PREFIX",
                format!("test-{}", uuid::Uuid::new_v4().simple()),
            ));
        }
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = Arc::new(fetched_config(&refs).await);
        let bind = config.bind;
        let state = prepare(config).await.expect("app prepares");
        let server = Server::bind(state.clone(), bind)
            .await
            .expect("bind the chosen port");
        let addr = server.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
        TestApp {
            base: format!("http://{addr}"),
            state,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful stop: in-flight requests finish, the pool closes.
    /// After the test wrote to the database itself, as another instance or the command line
    /// would: the app reads the data versions now instead of waiting for PostgreSQL's
    /// announcement (well under a millisecond, but a test's next request can be quicker). A
    /// write through the app needs none: the app re-reads them itself.
    pub async fn settle(&self) {
        self.state
            .data_versions
            .refresh(&self.state.store.db())
            .await
            .expect("data versions");
    }

    /// Stops the instance as a rolling restart would, leaving what it shares with the others
    /// (sessions and counters in Redis) in place.
    pub async fn stop_for_restart(mut self) {
        self.stop_serving().await;
    }

    async fn stop_serving(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    pub async fn stop(mut self) {
        self.stop_serving().await;
        // Nothing left behind in the shared Redis: every key under this app's namespace.
        // (Tests that point at a dead Redis on purpose have nothing to clean.)
        let conn = match &self.state.redis {
            Some(redis) => redis.connection().await.ok(),
            None => None,
        };
        if let Some(mut conn) = conn {
            let pattern = format!("{}:*", self.state.config.redis_prefix);
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query_async(&mut conn)
                .await
                .expect("keys");
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .expect("del");
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
