//! The one application state every handler reaches through axum's `State`.

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::bearer::ApiVerifier;
use crate::auth::service::Auth;
use crate::config::Config;
use crate::devidp::DevIdp;
use crate::redis_client::RedisHandle;
use crate::store::Store;
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
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
