//! The sign-in service the handlers use: relying party, sessions and the admin rule.

use std::sync::Arc;

use secrecy::SecretString;

use super::oidc::{Endpoints, OidcClient, RelyingParty};
use super::session::Sessions;
use crate::config::{Config, IdentityProvider, callback_url};
use crate::lifecycle::okta::OktaClient;
use crate::redis_client::RedisHandle;
use crate::store::Store;

pub struct Auth {
    pub oidc: Arc<OidcClient>,
    pub sessions: Sessions,
    pub admin_groups: Vec<String>,
    pub secure_cookies: bool,
    /// The Okta Users API, when configured: lifecycle checks and groups beyond the claim cap.
    pub okta: Option<Arc<OktaClient>>,
}

/// The built-in provider's client, shared in-process between it and the relying party.
pub const DEV_CLIENT_ID: &str = "gatehouse-dev";

impl Auth {
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        redis: Option<Arc<RedisHandle>>,
        dev_client_secret: &SecretString,
    ) -> anyhow::Result<Auth> {
        let redirect_uri = callback_url(&config.public_url);
        let rp = match &config.identity {
            IdentityProvider::External(s) => RelyingParty {
                issuer: s.issuer.clone(),
                client_id: s.client_id.clone(),
                client_secret: s.client_secret.clone(),
                redirect_uri,
                scopes: config.oidc_scopes.clone(),
                explicit: Endpoints {
                    authorization_endpoint: s
                        .authorization_endpoint
                        .as_ref()
                        .map(|u| u.to_string()),
                    token_endpoint: s.token_endpoint.as_ref().map(|u| u.to_string()),
                    userinfo_endpoint: s.userinfo_endpoint.as_ref().map(|u| u.to_string()),
                    jwks_uri: s.jwks_uri.as_ref().map(|u| u.to_string()),
                    end_session_endpoint: s.end_session_endpoint.as_ref().map(|u| u.to_string()),
                },
            },
            IdentityProvider::Dev { issuer } => RelyingParty {
                issuer: issuer.clone(),
                client_id: DEV_CLIENT_ID.into(),
                client_secret: dev_client_secret.clone(),
                redirect_uri,
                scopes: config.oidc_scopes.clone(),
                explicit: Endpoints::default(),
            },
        };
        Ok(Auth {
            oidc: Arc::new(OidcClient::new(rp, Some(config.jwks_cooldown))?),
            sessions: Sessions::new(
                store,
                redis,
                config.session.ttl,
                config.session.idle,
                &config.session.keys,
                &config.redis_prefix,
            ),
            admin_groups: config.admin_groups.clone(),
            secure_cookies: config.session.cookie_secure,
            okta: match &config.okta {
                Some(okta) => Some(Arc::new(OktaClient::new(okta)?)),
                None => None,
            },
        })
    }

    pub fn session_cookie(&self) -> &'static str {
        // The __Host- prefix pins the cookie to this host, path / and Secure.
        if self.secure_cookies {
            "__Host-gatehouse_session"
        } else {
            "gatehouse_session"
        }
    }

    pub fn is_admin(&self, groups: &[String]) -> bool {
        groups.iter().any(|g| self.admin_groups.contains(g))
    }
}
