//! Settings from an optional TOML file, overridden by `GATEHOUSE_*` environment variables,
//! overridden by flags. Every value is validated here, once, and a failure names the variable
//! and where its value came from.
//!
//! Over 400 lines: `Raw` turns every variable into the typed `Config`; `build` reads top to
//! bottom in the order the checks depend on each other (public URL, dev mode, cookies), with
//! one method per area (database, Redis, API, sessions, GitHub).

mod database;
pub mod gcp;
mod oidc;
pub mod secret;
pub mod values;
pub mod vars;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

pub use database::{Backend, DatabaseTls, DatabaseUrl, RedisUrl};
pub use oidc::{IdentityProvider, OidcSettings, callback_url};
pub use values::{RateLimit, TrustedProxies};

/// The largest `GATEHOUSE_MAX_CONNECTIONS`: far past what one process's file descriptors allow.
const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

/// Where a raw value came from; shown in error messages, never the value of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env,
    Flag,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p) => write!(f, "from {}", p.display()),
            Origin::Env => write!(f, "from the environment"),
            Origin::Flag => write!(f, "from the command line"),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} ({origin}): {message}")]
    Invalid {
        var: &'static str,
        origin: Origin,
        message: String,
    },
    #[error("configuration file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Other(String),
}

/// The inputs of one load, separated from the process so tests can build them freely.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub file: Option<PathBuf>,
    pub env: HashMap<String, String>,
    /// Flag overrides as (variable name, value).
    pub flags: Vec<(String, String)>,
}

impl Sources {
    pub fn from_process(file: Option<PathBuf>, flags: Vec<(String, String)>) -> Self {
        Sources {
            file,
            env: std::env::vars().collect(),
            flags,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// `GATEHOUSE_OIDC_EMAIL_VERIFIED`: how to read a missing `email_verified` claim. An explicit
/// `false` always means unverified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailVerified {
    /// Only `email_verified: true` counts (some providers, Entra ID among them, omit the claim
    /// and let guests bring any address).
    Required,
    /// A missing claim counts as verified: for a provider that never sends it and whose every
    /// address is managed.
    Assume,
}

impl EmailVerified {
    /// Whether an email with this claim (from the same source as the email) is trusted.
    pub fn trusts(self, claim: Option<bool>) -> bool {
        match claim {
            Some(verified) => verified,
            None => self == EmailVerified::Assume,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GithubConfig {
    pub org: String,
    pub token: SecretString,
    pub api_url: Url,
    pub graphql_url: Url,
}

/// The Okta Users API: lifecycle checks of signed-in users, and groups beyond the claim cap.
#[derive(Debug, Clone)]
pub struct OktaConfig {
    /// The org's base URL (`https://acme.okta.com`).
    pub org_url: Url,
    /// An API token (`SSWS`), read-only admin is enough.
    pub api_token: SecretString,
    /// How often users with live sessions are re-checked; zero = never (groups are still
    /// completed at sign-in).
    pub interval: Duration,
}

#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Empty in dev mode without a configured key: a random key is made at start.
    pub keys: Vec<SecretString>,
    pub ttl: Duration,
    pub idle: Duration,
    pub cookie_secure: bool,
}

#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub audience: String,
    pub issuers: Vec<String>,
    pub client_ids: Option<Vec<String>>,
    pub cors_origins: Vec<String>,
}

/// Longest `GATEHOUSE_SHUTDOWN_DRAIN`.
pub const SHUTDOWN_DRAIN_MAX: Duration = Duration::from_secs(25);

/// The longest a stop takes, drain included: then whatever is still running is cut off.
pub const SHUTDOWN_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub public_url: Url,
    pub database: DatabaseUrl,
    pub database_tls: DatabaseTls,
    pub redis: Option<RedisUrl>,
    pub redis_prefix: String,
    pub identity: IdentityProvider,
    /// Set when dev mode would serve somewhere other than a workstation: serving refuses to
    /// start (commands like `migrate` or `admin` still run, they sign no one in).
    pub dev_mode_refusal: Option<ConfigError>,
    /// Whether an email without an `email_verified` claim counts as verified.
    pub email_verified: EmailVerified,
    pub oidc_scopes: Vec<String>,
    pub admin_groups: Vec<String>,
    pub jwks_cooldown: Duration,
    /// Step-up: the oldest sign-in (`auth_time`) an admin change is accepted from; zero = off.
    pub admin_max_age: Duration,
    pub api: ApiConfig,
    pub session: SessionConfig,
    pub trusted_proxies: TrustedProxies,
    pub rate_limits: BTreeMap<String, RateLimit>,
    pub audit_retention: Duration,
    pub github: Option<GithubConfig>,
    pub okta: Option<OktaConfig>,
    /// Where people's GitHub profiles are (`{github_web}/{login}`), from the API's address:
    /// `https://github.com` for `api.github.com`, the server for GitHub Enterprise's `/api/v3`.
    pub github_web: String,
    pub sync_interval: Duration,
    pub sync_max_departed: f64,
    pub metrics_bind: Option<SocketAddr>,
    /// How long a client may take to send a request's head; then it is disconnected.
    pub header_timeout: Duration,
    /// Most open connections per listener.
    pub max_connections: usize,
    /// After SIGTERM, how long readiness fails while requests are still served.
    pub shutdown_drain: Duration,
    pub log_format: Option<LogFormat>,
    /// The Secret Manager versions fetched at start, as (variable, version resource name).
    pub fetched_secrets: Vec<(&'static str, String)>,
    /// Problems that do not stop start-up; logged once the logger is up.
    pub warnings: Vec<String>,
}

impl Config {
    pub fn is_dev_mode(&self) -> bool {
        matches!(self.identity, IdentityProvider::Dev { .. })
    }

    /// Loads and validates without touching the network: a `gcp:` reference is an error.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let raw = Raw::gather(sources)?;
        raw.build()
    }

    /// Loads and validates, first fetching every `gcp:` reference from Secret Manager (all
    /// at once, under one deadline): what commands do at start.
    pub async fn load_fetching(sources: &Sources) -> Result<Config, ConfigError> {
        let mut raw = Raw::gather(sources)?;
        raw.fetch_gcp().await?;
        raw.build()
    }
}

const DEV_MODE_WHY: &str = "no identity provider is configured, so this would serve in dev mode, \
     which signs anyone in as a demo user and only runs on a workstation. Set \
     GATEHOUSE_OIDC_ISSUER (or GATEHOUSE_OIDC_CONFIG) for a real deployment";

/// Raw string values by variable name, each with its origin.
struct Raw {
    values: HashMap<&'static str, (String, Origin)>,
    env: HashMap<String, String>,
    warnings: Vec<String>,
    /// `GATEHOUSE_OIDC_*` names that were set but empty, or that are no setting at all (a
    /// typo): the signs of identity settings that went missing, which must not mean dev mode.
    oidc_missing: Vec<String>,
    /// Secrets fetched from Secret Manager, by variable.
    fetched: HashMap<&'static str, gcp::Fetched>,
}

impl Raw {
    fn gather(sources: &Sources) -> Result<Raw, ConfigError> {
        let mut values = HashMap::new();
        let mut warnings = Vec::new();
        let mut oidc_missing = Vec::new();
        if let Some(path) = &sources.file {
            for (var, value) in read_toml(path)? {
                values.insert(var, (value, Origin::File(path.clone())));
            }
        }
        let mut env_names: Vec<&String> = sources.env.keys().collect();
        env_names.sort();
        for name in env_names {
            let value = &sources.env[name];
            if name.starts_with("GATEHOUSE_OIDC_")
                && (value.is_empty() || vars::find(name).is_none())
            {
                oidc_missing.push(name.clone());
            }
            match vars::find(name) {
                // An empty variable is how shells and orchestrators say "unset".
                Some(var) if !value.is_empty() => {
                    values.insert(var.name, (value.clone(), Origin::Env));
                }
                Some(_) => {}
                None if name.starts_with("GATEHOUSE_")
                    && name != vars::CONFIG_FILE_VAR
                    && !name.starts_with("GATEHOUSE_TEST_") =>
                {
                    warnings.push(format!(
                        "environment variable {name} is not a Gatehouse setting and is ignored"
                    ));
                }
                None => {}
            }
        }
        for (name, value) in &sources.flags {
            let var = vars::find(name).ok_or_else(|| {
                ConfigError::Other(format!("--set {name}: no such setting (see --help)"))
            })?;
            values.insert(var.name, (value.clone(), Origin::Flag));
        }
        Ok(Raw {
            values,
            env: sources.env.clone(),
            warnings,
            oidc_missing,
            fetched: HashMap::new(),
        })
    }

    /// Fetches the secret variables that hold `gcp:` references. Every failure is reported
    /// (one line each, naming the variable and the reference), so one restart fixes them all.
    async fn fetch_gcp(&mut self) -> Result<(), ConfigError> {
        let mut wanted: Vec<(&'static str, String)> = Vec::new();
        for &var in secret::SECRET_VARS {
            if let Some(reference) = self.get(var).0.and_then(|v| v.strip_prefix(gcp::PREFIX)) {
                gcp::parse(reference).map_err(|m| self.invalid(var, m))?;
                wanted.push((var, reference.to_string()));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let endpoint = self.parse("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT", |v| {
            Url::parse(v)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|_| v.trim_end_matches('/').to_string())
                .ok_or_else(|| format!("'{v}' is not an http(s) URL"))
        })?;
        let references: Vec<String> = wanted.iter().map(|(_, r)| r.clone()).collect();
        let target = gcp::Target {
            endpoint: endpoint.as_deref(),
            metadata_host: self.env.get("GCE_METADATA_HOST").map(String::as_str),
            credentials_file: self.env.contains_key("GOOGLE_APPLICATION_CREDENTIALS"),
        };
        let results = gcp::fetch_all(&references, &target).await;
        let mut errors = Vec::new();
        for ((var, reference), result) in wanted.into_iter().zip(results) {
            match result {
                Ok(fetched) => {
                    self.fetched.insert(var, fetched);
                }
                Err(e) => {
                    errors.push(self.invalid(var, format!("{}{reference}: {e}", gcp::PREFIX)))
                }
            }
        }
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Other(
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            )),
        }
    }

    /// The value and its origin, or the table's default.
    fn get(&self, var: &'static str) -> (Option<&str>, Origin) {
        match self.values.get(var) {
            Some((v, o)) => (Some(v.as_str()), o.clone()),
            None => {
                let default = vars::find(var).map(|v| v.default).unwrap_or_default();
                ((!default.is_empty()).then_some(default), Origin::Default)
            }
        }
    }

    fn invalid(&self, var: &'static str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            var,
            origin: self.get(var).1,
            message: message.into(),
        }
    }

    /// Parses a value (or its default) with `parse`, naming the variable on failure.
    fn parse<T>(
        &self,
        var: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(var).0 {
            Some(v) => parse(v).map(Some).map_err(|m| self.invalid(var, m)),
            None => Ok(None),
        }
    }

    fn secret(&self, var: &'static str) -> Result<Option<SecretString>, ConfigError> {
        debug_assert!(
            secret::SECRET_VARS.contains(&var),
            "{var} is not in SECRET_VARS"
        );
        if let Some(fetched) = self.fetched.get(var) {
            return Ok(Some(fetched.value.clone()));
        }
        let env = |name: &str| self.env.get(name).cloned();
        self.parse(var, |raw| {
            secret::resolve(raw, &env)
                .map(|(s, _)| s)
                .map_err(|e| e.to_string())
        })
    }

    fn build(mut self) -> Result<Config, ConfigError> {
        let mut fetched_secrets: Vec<(&'static str, String)> = self
            .fetched
            .iter()
            .map(|(var, f)| (*var, f.version.clone()))
            .collect();
        fetched_secrets.sort();
        let bind = self
            .parse("GATEHOUSE_BIND", |v| {
                v.parse::<SocketAddr>()
                    .map_err(|_| format!("'{v}' is not an address like 127.0.0.1:8080"))
            })?
            .ok_or_else(|| self.invalid("GATEHOUSE_BIND", "required"))?;
        let public_url = self
            .parse("GATEHOUSE_PUBLIC_URL", parse_public_url)?
            .ok_or_else(|| self.invalid("GATEHOUSE_PUBLIC_URL", "required"))?;
        let https = public_url.scheme() == "https";

        let (database, database_tls) = self.database()?;
        let (redis, redis_prefix) = self.redis()?;
        let identity = oidc::identity_provider(&self, &public_url)?;
        let dev_mode = matches!(identity, IdentityProvider::Dev { .. });
        let trusted_proxies = self
            .parse("GATEHOUSE_TRUSTED_PROXIES", values::trusted_proxies)?
            .unwrap_or(TrustedProxies::Hops(0));
        if dev_mode && !bind.ip().is_loopback() {
            return Err(self.invalid(
                "GATEHOUSE_BIND",
                format!("{bind} is not a loopback address (127.0.0.1 or ::1), and {DEV_MODE_WHY}"),
            ));
        }
        let dev_mode_refusal = dev_mode
            .then(|| self.dev_mode_refusal(&public_url, &database, &trusted_proxies))
            .flatten();
        let email_verified = self
            .parse("GATEHOUSE_OIDC_EMAIL_VERIFIED", |v| match v {
                "required" => Ok(EmailVerified::Required),
                "assume" => Ok(EmailVerified::Assume),
                other => Err(format!("'{other}' is neither required nor assume")),
            })?
            .unwrap_or(EmailVerified::Required);
        if email_verified == EmailVerified::Assume {
            self.warnings.push(
                "GATEHOUSE_OIDC_EMAIL_VERIFIED=assume: an email without an email_verified claim \
                 counts as verified (break-glass grants and the profile's laptops match on it); \
                 use it only with a provider whose every email is managed by the company"
                    .into(),
            );
        }

        let oidc_scopes = self
            .parse("GATEHOUSE_OIDC_SCOPES", |v| {
                let scopes: Vec<String> = v
                    .split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if scopes.iter().any(|s| s == "openid") {
                    Ok(scopes)
                } else {
                    Err(format!("'{v}' must include the openid scope"))
                }
            })?
            .unwrap_or_default();
        let admin_groups = self
            .parse("GATEHOUSE_ADMIN_GROUPS", |v| Ok(values::list(v)))?
            .unwrap_or_default();

        let admin_max_age = self
            .parse("GATEHOUSE_ADMIN_MAX_AGE", values::duration)?
            .unwrap_or_default();
        let jwks_cooldown = self
            .parse("GATEHOUSE_JWKS_COOLDOWN", values::duration)?
            .unwrap_or_default();
        let api = self.api(&identity)?;

        let session = self.session(dev_mode, https)?;

        let rate_limits = values::rate_limits(self.get("GATEHOUSE_RATE_LIMITS").0)
            .map_err(|m| self.invalid("GATEHOUSE_RATE_LIMITS", m))?;
        let audit_retention = self
            .parse("GATEHOUSE_AUDIT_RETENTION", values::duration)?
            .unwrap_or_default();

        let github = self.github()?;
        let okta = self.okta()?;
        let github_web = self
            .parse("GATEHOUSE_GITHUB_API_URL", parse_http_url)?
            .map_or_else(
                || "https://github.com".to_string(),
                |api| github_web_of(&api),
            );
        let sync_interval = self
            .parse("GATEHOUSE_SYNC_INTERVAL", values::duration)?
            .unwrap_or_default();
        let sync_max_departed = self
            .parse("GATEHOUSE_SYNC_MAX_DEPARTED", values::fraction)?
            .unwrap_or(0.2);
        let metrics_bind = self.parse("GATEHOUSE_METRICS_BIND", |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("'{v}' is not an address like 127.0.0.1:9090"))
        })?;
        if metrics_bind == Some(bind) {
            return Err(self.invalid(
                "GATEHOUSE_METRICS_BIND",
                "must differ from GATEHOUSE_BIND: metrics are never served on the public port",
            ));
        }
        let header_timeout = self
            .parse("GATEHOUSE_HEADER_TIMEOUT", |v| {
                let d = values::duration(v)?;
                if d.is_zero() {
                    // Off would let a client hold a connection forever by never finishing
                    // its request head.
                    return Err(format!("'{v}' must be longer than 0, e.g. 10s"));
                }
                Ok(d)
            })?
            .unwrap_or(Duration::from_secs(10));
        let max_connections = self
            .parse("GATEHOUSE_MAX_CONNECTIONS", |v| {
                match v.trim().parse::<usize>() {
                    Ok(n) if (1..=MAX_CONNECTIONS_LIMIT).contains(&n) => Ok(n),
                    _ => Err(format!(
                        "'{v}' is not a whole number from 1 to {MAX_CONNECTIONS_LIMIT}"
                    )),
                }
            })?
            .unwrap_or(10_000);
        let shutdown_drain = self
            .parse("GATEHOUSE_SHUTDOWN_DRAIN", |v| {
                let d = values::duration(v)?;
                // The whole stop, drain and in-flight requests, fits in 30 s (what
                // orchestrators wait before SIGKILL); at least 5 s is left for requests.
                if d > SHUTDOWN_DRAIN_MAX {
                    return Err(format!(
                        "'{v}' is longer than {}s",
                        SHUTDOWN_DRAIN_MAX.as_secs()
                    ));
                }
                Ok(d)
            })?
            .unwrap_or(if matches!(identity, IdentityProvider::Dev { .. }) {
                Duration::ZERO
            } else {
                Duration::from_secs(5)
            });
        let log_format = self.parse("GATEHOUSE_LOG_FORMAT", |v| match v {
            "json" => Ok(LogFormat::Json),
            "pretty" => Ok(LogFormat::Pretty),
            other => Err(format!("'{other}' is neither json nor pretty")),
        })?;

        let warnings = std::mem::take(&mut self.warnings);
        let mut config = Config {
            bind,
            public_url,
            database,
            database_tls,
            redis,
            redis_prefix,
            identity,
            dev_mode_refusal,
            email_verified,
            oidc_scopes,
            admin_groups,
            jwks_cooldown,
            admin_max_age,
            api,
            session,
            trusted_proxies,
            rate_limits,
            audit_retention,
            okta,
            github,
            github_web,
            sync_interval,
            sync_max_departed,
            metrics_bind,
            header_timeout,
            max_connections,
            shutdown_drain,
            log_format,
            fetched_secrets,
            warnings,
        };
        config.warnings.extend(oidc::warnings(&config));
        Ok(config)
    }

    /// Dev mode signs anyone in as a demo user (an admin among them) and gives a fixed machine
    /// secret write access, so it only serves where nothing but this workstation can reach it.
    /// Each refusal here is a sign of a production deployment whose identity settings went
    /// missing (an empty variable from a failed template, a misspelt name), which must stop
    /// the start rather than open the door.
    fn dev_mode_refusal(
        &self,
        public_url: &Url,
        database: &DatabaseUrl,
        trusted_proxies: &TrustedProxies,
    ) -> Option<ConfigError> {
        if let Some(name) = self.oidc_missing.first() {
            let what = if vars::find(name).is_some() {
                "is set but empty"
            } else {
                "is not a Gatehouse setting (a misspelling?)"
            };
            return Some(ConfigError::Other(format!(
                "{name} {what}, and {DEV_MODE_WHY}, or unset {name} to use dev mode"
            )));
        }
        if !values::is_loopback_host(public_url) {
            return Some(self.invalid(
                "GATEHOUSE_PUBLIC_URL",
                format!(
                    "{public_url} is not on a loopback host (localhost, 127.0.0.1, ::1), and \
                     {DEV_MODE_WHY}"
                ),
            ));
        }
        if *trusted_proxies != TrustedProxies::Hops(0) {
            return Some(self.invalid(
                "GATEHOUSE_TRUSTED_PROXIES",
                format!("a proxy in front means others reach this server, and {DEV_MODE_WHY}"),
            ));
        }
        if database.backend() == Backend::Postgres {
            return Some(self.invalid(
                "GATEHOUSE_DATABASE_URL",
                format!("PostgreSQL is a production database, and {DEV_MODE_WHY}"),
            ));
        }
        None
    }

    /// `GATEHOUSE_DATABASE_URL` and its TLS settings.
    fn database(&self) -> Result<(DatabaseUrl, DatabaseTls), ConfigError> {
        let database = self
            .secret("GATEHOUSE_DATABASE_URL")?
            .ok_or_else(|| self.invalid("GATEHOUSE_DATABASE_URL", "required"))?;
        let database =
            DatabaseUrl::parse(database).map_err(|m| self.invalid("GATEHOUSE_DATABASE_URL", m))?;
        let database_tls = DatabaseTls {
            ca: self.secret("GATEHOUSE_DATABASE_CA")?,
            cert: self.secret("GATEHOUSE_DATABASE_CERT")?,
            key: self.secret("GATEHOUSE_DATABASE_KEY")?,
        };
        if database_tls.cert.is_some() != database_tls.key.is_some() {
            return Err(self.invalid(
                "GATEHOUSE_DATABASE_CERT",
                "a client certificate and GATEHOUSE_DATABASE_KEY must be given together",
            ));
        }
        if database_tls.is_configured() && database.backend() != Backend::Postgres {
            return Err(self.invalid(
                "GATEHOUSE_DATABASE_CA",
                "TLS settings apply to PostgreSQL only, but the database is SQLite",
            ));
        }
        Ok((database, database_tls))
    }

    /// `GATEHOUSE_REDIS_URL` and the namespace of its keys.
    fn redis(&self) -> Result<(Option<RedisUrl>, String), ConfigError> {
        let redis = match self.secret("GATEHOUSE_REDIS_URL")? {
            Some(url) => {
                Some(RedisUrl::parse(url).map_err(|m| self.invalid("GATEHOUSE_REDIS_URL", m))?)
            }
            None => None,
        };

        let redis_prefix = self
            .parse("GATEHOUSE_REDIS_PREFIX", |v| {
                if v.is_empty() || v.contains(char::is_whitespace) {
                    Err(format!("'{v}' must be a non-empty word without spaces"))
                } else {
                    Ok(v.trim_end_matches(':').to_string())
                }
            })?
            .unwrap_or_default();
        Ok((redis, redis_prefix))
    }

    /// Who may call the Bearer API, and from which browser origins.
    fn api(&self, identity: &IdentityProvider) -> Result<ApiConfig, ConfigError> {
        let audience = self
            .get("GATEHOUSE_API_AUDIENCE")
            .0
            .unwrap_or_default()
            .to_string();
        let api_issuers = match self.parse("GATEHOUSE_API_ISSUERS", |v| {
            values::list(v)
                .into_iter()
                .map(|i| {
                    let url = Url::parse(&i).map_err(|e| format!("'{i}' is not a URL ({e})"))?;
                    oidc::require_https(&url).map_err(|m| format!("'{i}' {m}"))?;
                    // Kept as written: issuers compare as exact strings.
                    Ok(i)
                })
                .collect::<Result<Vec<_>, _>>()
        })? {
            Some(list) => list,
            None => vec![identity.issuer().to_string()],
        };
        let client_ids = self.parse("GATEHOUSE_API_CLIENT_IDS", |v| Ok(values::list(v)))?;
        let cors_origins = self
            .parse("GATEHOUSE_CORS_ORIGINS", |v| {
                values::list(v)
                    .into_iter()
                    .map(|o| parse_origin(&o))
                    .collect::<Result<Vec<_>, _>>()
            })?
            .unwrap_or_default();
        Ok(ApiConfig {
            audience,
            issuers: api_issuers,
            client_ids,
            cors_origins,
        })
    }

    /// Session keys, lifetimes and the cookie's Secure flag.
    fn session(&self, dev_mode: bool, https: bool) -> Result<SessionConfig, ConfigError> {
        let keys = match self.secret("GATEHOUSE_SESSION_KEY")? {
            Some(s) => {
                use secrecy::ExposeSecret;
                let keys: Vec<SecretString> = values::list(s.expose_secret())
                    .into_iter()
                    .map(SecretString::from)
                    .collect();
                if keys.is_empty() || keys.iter().any(|k| k.expose_secret().chars().count() < 32) {
                    return Err(self.invalid(
                        "GATEHOUSE_SESSION_KEY",
                        "every key must be at least 32 characters long",
                    ));
                }
                keys
            }
            None if dev_mode => Vec::new(),
            None => {
                return Err(self.invalid(
                    "GATEHOUSE_SESSION_KEY",
                    "required when an identity provider is configured (at least 32 random \
                     characters, e.g. from `openssl rand -base64 48`)",
                ));
            }
        };
        let ttl = self
            .parse("GATEHOUSE_SESSION_TTL", values::duration)?
            .unwrap_or_default();
        let idle = self
            .parse("GATEHOUSE_SESSION_IDLE", values::duration)?
            .unwrap_or_default();
        if ttl.is_zero() || idle.is_zero() {
            return Err(self.invalid(
                if ttl.is_zero() {
                    "GATEHOUSE_SESSION_TTL"
                } else {
                    "GATEHOUSE_SESSION_IDLE"
                },
                "a session lifetime of 0 would sign everyone out at once",
            ));
        }
        let cookie_secure = match self.parse("GATEHOUSE_COOKIE_SECURE", values::boolean)? {
            Some(false) if https => {
                return Err(self.invalid(
                    "GATEHOUSE_COOKIE_SECURE",
                    "false is refused while GATEHOUSE_PUBLIC_URL is https: the session cookie \
                     would leak over plain HTTP",
                ));
            }
            Some(v) => v,
            None => https,
        };
        Ok(SessionConfig {
            keys,
            ttl,
            idle,
            cookie_secure,
        })
    }

    fn okta(&self) -> Result<Option<OktaConfig>, ConfigError> {
        let org_url = self.parse("GATEHOUSE_OKTA_ORG_URL", |v| {
            let url = parse_http_url(v)?;
            if url.path() != "/" || url.query().is_some() {
                return Err(format!(
                    "'{v}' must be the org's address without a path (https://acme.okta.com)"
                ));
            }
            Ok(url)
        })?;
        let api_token = self.secret("GATEHOUSE_OKTA_API_TOKEN")?;
        let interval = self
            .parse("GATEHOUSE_LIFECYCLE_INTERVAL", values::duration)?
            .unwrap_or_default();
        let pair = self.both_or_neither(
            ("GATEHOUSE_OKTA_ORG_URL", org_url),
            ("GATEHOUSE_OKTA_API_TOKEN", api_token),
        )?;
        Ok(pair.map(|(org_url, api_token)| OktaConfig {
            org_url,
            api_token,
            interval,
        }))
    }

    /// Two settings that only work together: both, or neither; one alone names the other.
    fn both_or_neither<A, B>(
        &self,
        (a_name, a): (&'static str, Option<A>),
        (b_name, b): (&'static str, Option<B>),
    ) -> Result<Option<(A, B)>, ConfigError> {
        match (a, b) {
            (Some(a), Some(b)) => Ok(Some((a, b))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(self.invalid(b_name, format!("required when {a_name} is set"))),
            (None, Some(_)) => Err(self.invalid(a_name, format!("required when {b_name} is set"))),
        }
    }

    fn github(&self) -> Result<Option<GithubConfig>, ConfigError> {
        let org = self.get("GATEHOUSE_GITHUB_ORG").0.map(str::to_string);
        let token = self.secret("GATEHOUSE_GITHUB_TOKEN")?;
        let api_url = self
            .parse("GATEHOUSE_GITHUB_API_URL", parse_http_url)?
            .ok_or_else(|| self.invalid("GATEHOUSE_GITHUB_API_URL", "required"))?;
        let graphql_url = match self.parse("GATEHOUSE_GITHUB_GRAPHQL_URL", parse_http_url)? {
            Some(url) => url,
            None => default_graphql_url(&api_url)
                .map_err(|m| self.invalid("GATEHOUSE_GITHUB_API_URL", m))?,
        };
        let pair = self.both_or_neither(
            ("GATEHOUSE_GITHUB_ORG", org),
            ("GATEHOUSE_GITHUB_TOKEN", token),
        )?;
        Ok(pair.map(|(org, token)| GithubConfig {
            org,
            token,
            api_url,
            graphql_url,
        }))
    }
}

/// GitHub Enterprise Server serves REST at `/api/v3` and GraphQL at `/api/graphql`;
/// github.com serves GraphQL at `/graphql` beside REST.
fn github_web_of(api: &Url) -> String {
    if api.host_str() == Some("api.github.com") {
        return "https://github.com".to_string();
    }
    let path = api.path().trim_end_matches('/');
    let prefix = path.strip_suffix("/api/v3").unwrap_or("");
    format!("{}{prefix}", api.origin().ascii_serialization())
}

fn default_graphql_url(api: &Url) -> Result<Url, String> {
    let path = api.path().trim_end_matches('/');
    let graphql = match path.strip_suffix("/api/v3") {
        Some(prefix) => format!("{prefix}/api/graphql"),
        None => format!("{path}/graphql"),
    };
    let mut url = api.clone();
    url.set_path(&graphql);
    Ok(url)
}

fn parse_http_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v).map_err(|e| format!("'{v}' is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "'{v}' must be an http:// or https:// URL with a host"
        ));
    }
    Ok(url)
}

fn parse_public_url(v: &str) -> Result<Url, String> {
    let mut url = parse_http_url(v)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{v}' must not carry a query or fragment"));
    }
    if url.path() != "/" {
        return Err(format!(
            "'{v}' must be an origin without a path (Gatehouse is served at the root)"
        ));
    }
    url.set_path("/");
    Ok(url)
}

/// An origin as browsers send it in `Origin`: scheme, host and port, no path.
fn parse_origin(v: &str) -> Result<String, String> {
    let url = parse_http_url(v)?;
    if url.path() != "/" || url.query().is_some() {
        return Err(format!(
            "'{v}' is not an origin like https://tools.example.com"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// Reads the flat TOML file into (variable, value) pairs. Lists become comma lists.
fn read_toml(path: &Path) -> Result<Vec<(&'static str, String)>, ConfigError> {
    let file_err = |message: String| ConfigError::File {
        path: path.to_path_buf(),
        message,
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| file_err(format!("cannot read it: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let position = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: ")
        });
        file_err(format!("{}{}", position.unwrap_or_default(), e.message()))
    })?;
    let mut out = Vec::new();
    for (key, value) in table {
        let var = vars::find_by_toml_key(&key).ok_or_else(|| {
            file_err(format!(
                "unknown key '{key}' (keys are the variable names without GATEHOUSE_, lower-case, e.g. database_url)"
            ))
        })?;
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .into_iter()
                .map(|i| match i {
                    toml::Value::String(s) => Ok(s),
                    other => Err(file_err(format!(
                        "key '{key}': list items must be strings, found {}",
                        other.type_str()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            other => {
                return Err(file_err(format!(
                    "key '{key}': expected a string, number, boolean or list, found {}",
                    other.type_str()
                )));
            }
        };
        out.push((var.name, text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
