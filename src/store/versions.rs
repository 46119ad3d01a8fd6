//! Data versions (table `data_versions`, bumped by triggers in the transaction that changes
//! the data): what lets an instance keep copies of rarely changing data in memory and still
//! show every committed change, whoever made it (another instance, the command line, the
//! sync).
//!
//! How an instance learns of a new version: on PostgreSQL, the triggers announce each bump
//! (`NOTIFY`) as its transaction commits and `VersionWatch::watch` listens, so a request asks
//! the database nothing; a change made elsewhere is seen as soon as the announcement arrives
//! (well under a millisecond on one network; the bound the tests allow is a second). While
//! the listener is not connected, and on SQLite (one process, no network), each request
//! reads the versions instead: one small query. A write through this instance re-reads them
//! before its answer leaves (`after_write`), so whoever made a change sees it on their next
//! request, announcement or not.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use super::{Db, StoreError};
use crate::on_db;

/// The channel the triggers announce bumps on.
pub const CHANNEL: &str = "gatehouse_data_versions";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    /// Accounts.
    pub users: i64,
    /// Who is who: the GitHub identities.
    pub directory: i64,
    /// Roles, their assignments and mappings, admin grants.
    pub access: i64,
    /// Repositories, their traffic and the last successful sync.
    pub repos: i64,
}

pub async fn read(db: &Db) -> Result<Versions, StoreError> {
    const SQL: &str = "SELECT kind, version FROM data_versions";
    let rows: Vec<(String, i64)> = on_db!(db, |pool| sqlx::query_as(SQL).fetch_all(pool).await)?;
    let mut versions = Versions::default();
    for (kind, version) in rows {
        match kind.as_str() {
            "users" => versions.users = version,
            "directory" => versions.directory = version,
            "access" => versions.access = version,
            "repos" => versions.repos = version,
            _ => {}
        }
    }
    Ok(versions)
}

/// The versions as this instance knows them.
#[derive(Default)]
pub struct VersionWatch {
    /// Whether announcements are arriving: then what is known is current.
    live: AtomicBool,
    users: AtomicI64,
    directory: AtomicI64,
    access: AtomicI64,
    repos: AtomicI64,
    /// Woken when the directory's version rises, so its index is rebuilt before a search asks.
    directory_moved: tokio::sync::Notify,
}

impl VersionWatch {
    /// The versions as of now: as announced while listening, read otherwise.
    pub async fn current(&self, db: &Db) -> Result<Versions, StoreError> {
        if self.live.load(Ordering::Acquire) {
            return Ok(self.known());
        }
        self.refresh(db).await
    }

    /// Reads the versions, whatever is known.
    pub async fn refresh(&self, db: &Db) -> Result<Versions, StoreError> {
        let read = read(db).await?;
        self.raise(read);
        Ok(self.known())
    }

    /// Whether announcements are arriving.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Acquire)
    }

    fn known(&self) -> Versions {
        Versions {
            users: self.users.load(Ordering::Acquire),
            directory: self.directory.load(Ordering::Acquire),
            access: self.access.load(Ordering::Acquire),
            repos: self.repos.load(Ordering::Acquire),
        }
    }

    /// Versions only grow: an older reading (a slow query, a late announcement) changes
    /// nothing.
    fn raise(&self, v: Versions) {
        self.users.fetch_max(v.users, Ordering::AcqRel);
        self.raise_directory(v.directory);
        self.access.fetch_max(v.access, Ordering::AcqRel);
        self.repos.fetch_max(v.repos, Ordering::AcqRel);
    }

    fn raise_directory(&self, version: i64) {
        if self.directory.fetch_max(version, Ordering::AcqRel) < version {
            self.directory_moved.notify_one();
        }
    }

    /// Returns once the directory's version has risen since the last call returned (a rise
    /// in between is not lost: it is kept as a permit).
    pub async fn directory_moved(&self) {
        self.directory_moved.notified().await;
    }

    /// An announcement's payload, `kind version`; anything else is ignored.
    fn announced(&self, payload: &str) {
        let Some((kind, version)) = payload.split_once(' ') else {
            return;
        };
        let Ok(version) = version.parse::<i64>() else {
            return;
        };
        let slot = match kind {
            "users" => &self.users,
            "directory" => return self.raise_directory(version),
            "access" => &self.access,
            "repos" => &self.repos,
            _ => return,
        };
        slot.fetch_max(version, Ordering::AcqRel);
    }

    /// Listens for announcements on PostgreSQL until `stop`, reconnecting after a second when
    /// the connection is lost; requests read the versions themselves meanwhile.
    pub async fn watch(
        self: Arc<Self>,
        pool: sqlx::PgPool,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let outcome = tokio::select! {
                outcome = self.listen(&pool) => outcome,
                _ = stop.wait_for(|s| *s) => return,
            };
            self.live.store(false, Ordering::Release);
            if pool.is_closed() {
                return;
            }
            if let Err(error) = outcome {
                tracing::warn!(%error, "not listening for data version changes; reading them per request until back");
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One connection's worth of listening: returns when it is lost.
    async fn listen(&self, pool: &sqlx::PgPool) -> Result<(), StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        // Whatever committed before the LISTEN was not announced to us: read it once. From
        // here on every bump is either in this reading or announced.
        self.refresh(&Db::Postgres(pool.clone())).await?;
        self.live.store(true, Ordering::Release);
        while let Some(notification) = listener.try_recv().await? {
            self.announced(notification.payload());
        }
        Ok(())
    }
}

/// One value derived from a versioned data set, kept until a newer version is asked for.
/// One request loads it at a time; the others wait for that result instead of all reading
/// the same tables at once when the version moves.
pub struct Versioned<T> {
    current: RwLock<Option<(i64, Arc<T>)>>,
    loading: tokio::sync::Mutex<()>,
}

impl<T> Default for Versioned<T> {
    fn default() -> Self {
        Versioned {
            current: RwLock::new(None),
            loading: tokio::sync::Mutex::new(()),
        }
    }
}

impl<T> Versioned<T> {
    /// The value as of `version` or later (versions only grow, so a later one is at least as
    /// current), loaded with `load` when what is kept is older.
    pub async fn get<F, Fut>(&self, version: i64, load: F) -> Result<Arc<T>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        if let Some(value) = self.kept(version) {
            return Ok(value);
        }
        let _one = self.loading.lock().await;
        if let Some(value) = self.kept(version) {
            return Ok(value);
        }
        let value = Arc::new(load().await?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Some((version, Arc::clone(&value)));
        Ok(value)
    }

    /// The version of the value kept, if any.
    pub fn kept_version(&self) -> Option<i64> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(v, _)| *v)
    }

    fn kept(&self, version: i64) -> Option<Arc<T>> {
        match &*self.current.read().unwrap_or_else(PoisonError::into_inner) {
            Some((kept, value)) if *kept >= version => Some(Arc::clone(value)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_value_is_loaded_once_per_version_and_a_failed_load_keeps_nothing() {
        let cell: Versioned<i64> = Versioned::default();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = |v: i64| {
            let loads = &loads;
            move || async move {
                loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(v * 10)
            }
        };
        assert_eq!(*cell.get(1, load(1)).await.expect("value"), 10);
        assert_eq!(*cell.get(1, load(1)).await.expect("value"), 10);
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
        // An older version asked for late is served by the newer value kept.
        assert_eq!(*cell.get(0, load(0)).await.expect("value"), 10);
        let failed = cell
            .get(2, || async {
                Err(StoreError::Sqlx(sqlx::Error::PoolTimedOut))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(*cell.get(2, load(2)).await.expect("value"), 20);
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
