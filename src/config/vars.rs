//! The one table of configuration variables. The loader, `--help`, the README test and the
//! TOML key check all read it, so a variable cannot exist in one place and not the others.

pub struct Var {
    /// Environment variable name; the TOML key is this without the prefix, lower-cased.
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

impl Var {
    pub fn toml_key(&self) -> String {
        self.name
            .trim_start_matches("GATEHOUSE_")
            .to_ascii_lowercase()
    }
}

macro_rules! vars {
    ($($name:literal, $default:literal, $help:literal;)*) => {
        pub const VARS: &[Var] = &[$(Var { name: $name, default: $default, help: $help }),*];
    };
}

vars! {
    "GATEHOUSE_BIND", "127.0.0.1:8080", "listen address";
    "GATEHOUSE_PUBLIC_URL", "http://localhost:8080", "external base URL; redirect URIs are built from it; its scheme decides https";
    "GATEHOUSE_DATABASE_URL", "sqlite://gatehouse.db", "postgres://… or sqlite://PATH (created and migrated at start); may be a secret reference";
    "GATEHOUSE_DATABASE_CA", "", "PostgreSQL TLS: root CA (PEM; secret reference)";
    "GATEHOUSE_DATABASE_CERT", "", "PostgreSQL TLS: client certificate (PEM; secret reference)";
    "GATEHOUSE_DATABASE_KEY", "", "PostgreSQL TLS: client key (PEM; secret reference)";
    "GATEHOUSE_REDIS_URL", "", "Redis for sessions and rate-limit counters; unset = database sessions, in-process limits";
    "GATEHOUSE_REDIS_PREFIX", "gatehouse", "namespace of every Redis key, so several deployments can share one Redis";
    "GATEHOUSE_OIDC_ISSUER", "", "OpenID issuer URL (discovery at /.well-known/openid-configuration); unset with OIDC_CONFIG unset = dev mode";
    "GATEHOUSE_OIDC_CLIENT_ID", "", "confidential client id";
    "GATEHOUSE_OIDC_CLIENT_SECRET", "", "confidential client secret (secret reference)";
    "GATEHOUSE_OIDC_CONFIG", "", "one JSON payload ({\"web\":{…}} or flat keys) with issuer, client id/secret, optional explicit endpoints and jwks_uri (secret reference)";
    "GATEHOUSE_OIDC_EMAIL_VERIFIED", "required", "required (an email counts as verified only with email_verified: true from the same source) or assume (a missing claim counts as verified; for a provider whose every email is managed)";
    "GATEHOUSE_OIDC_SCOPES", "openid email profile groups", "requested scopes (space or comma separated)";
    "GATEHOUSE_ADMIN_GROUPS", "gatehouse-admins", "comma list of IdP groups whose members are admins";
    "GATEHOUSE_ADMIN_MAX_AGE", "15m", "step-up: an admin change needs a sign-in at the provider (auth_time) at most this old, else the admin signs in again first (0 = off)";
    "GATEHOUSE_JWKS_COOLDOWN", "30s", "least time between two JWKS fetches caused by tokens with an unknown kid (a key rotation is picked up after at most this long)";
    "GATEHOUSE_API_AUDIENCE", "api://default", "required aud of Bearer tokens";
    "GATEHOUSE_API_ISSUERS", "", "accepted Bearer token issuers (comma); default: the OIDC issuer";
    "GATEHOUSE_API_CLIENT_IDS", "", "allowlist of cid/azp/client_id values; only these may call the API, and only these may write; unset = any client may read, none may write (in dev mode the dev machine client may)";
    "GATEHOUSE_CORS_ORIGINS", "", "origins allowed to call /api/v1 from a browser; unset = none";
    "GATEHOUSE_SESSION_KEY", "", "secret of at least 32 characters (comma list rotates: first signs, all verify); required outside dev mode";
    "GATEHOUSE_SESSION_TTL", "1h", "absolute session lifetime";
    "GATEHOUSE_SESSION_IDLE", "30m", "idle session lifetime";
    "GATEHOUSE_COOKIE_SECURE", "", "Secure cookie flag; default true when PUBLIC_URL is https; false is refused with https";
    "GATEHOUSE_TRUSTED_PROXIES", "0", "proxy hops counted from the right of X-Forwarded-For, or a comma list of CIDRs whose X-Forwarded-For is believed";
    "GATEHOUSE_RATE_LIMITS", "", "rate-limit overrides by rule, e.g. auth.login=5/minute,api=600/minute";
    "GATEHOUSE_AUDIT_RETENTION", "365d", "age after which audit rows are pruned";
    "GATEHOUSE_GITHUB_ORG", "", "GitHub organization to sync; unset = no sync";
    "GATEHOUSE_GITHUB_TOKEN", "", "GitHub token for the sync (secret reference)";
    "GATEHOUSE_GITHUB_API_URL", "https://api.github.com", "GitHub REST base URL";
    "GATEHOUSE_GITHUB_GRAPHQL_URL", "", "GitHub GraphQL endpoint; default derived from the REST base";
    "GATEHOUSE_SYNC_INTERVAL", "1h", "in-process sync schedule (0 = off)";
    "GATEHOUSE_SYNC_MAX_DEPARTED", "20%", "largest share of rows one sync or feed may remove or mark departed";
    "GATEHOUSE_OKTA_ORG_URL", "", "Okta org URL (https://acme.okta.com) for the Users API: lifecycle checks of signed-in users and groups beyond the claim cap; unset = off";
    "GATEHOUSE_OKTA_API_TOKEN", "", "Okta API token (SSWS) for the Users API (secret reference)";
    "GATEHOUSE_LIFECYCLE_INTERVAL", "5m", "how often users with live sessions are re-checked at the Okta Users API (0 = never)";
    "GATEHOUSE_METRICS_BIND", "", "separate listener for /metrics; unset = off";
    "GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT", "", "Secret Manager base URL for gcp: references (private endpoints, tests); credentials are Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, or the metadata server, GCE_METADATA_HOST honoured); default: Google's public endpoint";
    "GATEHOUSE_HEADER_TIMEOUT", "10s", "longest a client may take to send a request's head (request line and headers) before it is disconnected; also how long an idle keep-alive connection stays open";
    "GATEHOUSE_SHUTDOWN_DRAIN", "", "on SIGTERM, how long /health/ready answers 503 while requests are still served, so the load balancer stops sending new ones before the listener closes (default 5s, 0s in dev mode; at most 25s); in-flight requests then finish within the rest of 30 s";
    "GATEHOUSE_MAX_CONNECTIONS", "10000", "most open client connections per listener; more wait to be accepted";
    "GATEHOUSE_LOG_FORMAT", "", "json or pretty; default pretty on a terminal, else json";
}

/// Read by the launcher, not by the loader: the path of the optional TOML file.
pub const CONFIG_FILE_VAR: &str = "GATEHOUSE_CONFIG";

pub fn find(name: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.name == name)
}

pub fn find_by_toml_key(key: &str) -> Option<&'static Var> {
    VARS.iter().find(|v| v.toml_key() == key)
}
