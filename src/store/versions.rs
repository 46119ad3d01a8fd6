//! Data versions (table `data_versions`, bumped by triggers in the transaction that changes
//! the data): what lets an instance keep copies of rarely changing data in memory and still
//! show every committed change at the next request, whoever made it (another instance, the
//! command line, the sync). A request reads the versions once, one small query, instead of
//! everything derived from them.

use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};

use super::{Db, StoreError};
use crate::on_db;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
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
            "access" => versions.access = version,
            "repos" => versions.repos = version,
            _ => {}
        }
    }
    Ok(versions)
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
