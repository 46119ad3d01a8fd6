//! The one application state every handler reaches through axum's `State`.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::access::{AccessRules, AdminReason};
use crate::auth::bearer::ApiVerifier;
use crate::auth::service::Auth;
use crate::config::Config;
use crate::devidp::DevIdp;
use crate::directory::index::DirectoryIndex;
use crate::redis_client::RedisHandle;
use crate::store::versions::{VersionWatch, Versioned, Versions};
use crate::store::{Store, StoreError, User};
use crate::sync::service::SyncService;
use crate::web::ratelimit::RateLimiter;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub redis: Option<Arc<RedisHandle>>,
    pub auth: Arc<Auth>,
    /// The built-in provider, in dev mode only.
    pub dev_idp: Option<Arc<DevIdp>>,
    pub limiter: Arc<RateLimiter>,
    /// The GitHub sync, when an organization and token are configured.
    pub sync: Option<Arc<SyncService>>,
    pub api: Arc<ApiVerifier>,
    pub caches: Caches,
    /// The data versions as this instance knows them.
    pub data_versions: Arc<VersionWatch>,
    /// Set on SIGTERM: readiness fails from then on, while requests are still served.
    pub draining: Arc<std::sync::atomic::AtomicBool>,
}

/// What this instance keeps in memory of data that changes rarely, each part checked against
/// the data versions on use (`store::versions`), so it is never older than the database at
/// the start of the request.
pub struct Caches {
    pub access: Versioned<AccessRules>,
    /// Accounts by (users version, id): a signed-in request needs its user every time.
    pub users: quick_cache::sync::Cache<(i64, i64), Option<User>>,
    pub repos: crate::repos::cache::RepoCaches,
    /// Every directory row, indexed for search and paging.
    pub directory: Versioned<crate::directory::index::DirectoryIndex>,
    /// The whole directory as prepared bytes, for its latest version.
    pub dump: crate::directory::dump::DumpCache,
}

/// Accounts kept: the users active within a few minutes, of even a large company.
const USERS_KEPT: usize = 10_000;

impl Default for Caches {
    fn default() -> Self {
        Caches {
            access: Versioned::default(),
            users: quick_cache::sync::Cache::new(USERS_KEPT),
            repos: crate::repos::cache::RepoCaches::default(),
            directory: Versioned::default(),
            dump: crate::directory::dump::DumpCache::default(),
        }
    }
}

impl AppState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        redis: Option<Arc<RedisHandle>>,
        auth: Arc<Auth>,
        dev_idp: Option<Arc<DevIdp>>,
        limiter: Arc<RateLimiter>,
        sync: Option<Arc<SyncService>>,
        api: Arc<ApiVerifier>,
    ) -> Self {
        AppState(Arc::new(Inner {
            config,
            store,
            redis,
            auth,
            dev_idp,
            limiter,
            sync,
            api,
            caches: Caches::default(),
            data_versions: Arc::default(),
            draining: Arc::default(),
        }))
    }

    /// The data versions as of now (`store::versions` says how this instance knows).
    pub async fn versions(&self) -> Result<Versions, StoreError> {
        self.data_versions.current(&self.store.db()).await
    }

    /// The account `id`, as of now.
    pub async fn user(&self, id: i64) -> Result<Option<User>, StoreError> {
        let version = self.versions().await?.users;
        let db = self.store.db();
        self.caches
            .users
            .get_or_insert_async(&(version, id), crate::auth::users::get(&db, id))
            .await
    }

    /// The directory as of now, searched in memory.
    pub async fn directory(&self) -> Result<Arc<DirectoryIndex>, StoreError> {
        let version = self.versions().await?.directory;
        let db = self.store.db();
        self.caches
            .directory
            .get(version, || DirectoryIndex::load(&db, version))
            .await
    }

    /// Roles, assignments, mappings and grants as of `versions`.
    pub async fn access_rules(&self, versions: Versions) -> Result<Arc<AccessRules>, StoreError> {
        let db = self.store.db();
        self.caches
            .access
            .get(versions.access, || AccessRules::load(&db))
            .await
    }

    /// Whether `user` is an admin, and why, as of now.
    pub async fn admin_reason(&self, user: &User) -> Result<AdminReason, StoreError> {
        let rules = self.access_rules(self.versions().await?).await?;
        Ok(rules.admin_reason(&self.auth.admin_groups, user))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
