//! Database and Redis URLs: kept secret (they may carry passwords), shown redacted.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A URL that may carry a password: the plain text only through `expose`, everything else
/// (`Debug`, `Display`, logs) sees it with the password replaced by `***`.
#[derive(Clone)]
struct RedactedUrl {
    url: SecretString,
    redacted: String,
}

impl RedactedUrl {
    fn new(url: SecretString, parsed: Option<&Url>) -> Self {
        let redacted = parsed.map_or_else(|| url.expose_secret().to_string(), redact);
        RedactedUrl { url, redacted }
    }
}

macro_rules! redacted_display {
    ($ty:ty) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.url.redacted)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.url.redacted)
            }
        }

        impl $ty {
            pub fn expose(&self) -> &str {
                self.url.url.expose_secret()
            }

            pub fn redacted(&self) -> &str {
                &self.url.redacted
            }
        }
    };
}

#[derive(Clone)]
pub struct DatabaseUrl {
    url: RedactedUrl,
    backend: Backend,
}

redacted_display!(DatabaseUrl);

impl DatabaseUrl {
    pub fn parse(url: SecretString) -> Result<Self, String> {
        let raw = url.expose_secret();
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://gatehouse.db".into());
            }
            return Ok(DatabaseUrl {
                url: RedactedUrl::new(url, None),
                backend: Backend::Sqlite,
            });
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let parsed = Url::parse(raw).map_err(|e| {
                format!(
                    "not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"
                )
            })?;
            return Ok(DatabaseUrl {
                url: RedactedUrl::new(url, Some(&parsed)),
                backend: Backend::Postgres,
            });
        }
        Err("expected postgres://… or sqlite://PATH".into())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

#[derive(Clone)]
pub struct RedisUrl {
    url: RedactedUrl,
}

redacted_display!(RedisUrl);

impl RedisUrl {
    pub fn parse(url: SecretString) -> Result<Self, String> {
        let parsed = Url::parse(url.expose_secret())
            .map_err(|e| format!("not a valid URL ({e}); expected redis://host:6379"))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") || parsed.host_str().is_none() {
            return Err("expected redis://host:port or rediss://host:port".into());
        }
        Ok(RedisUrl {
            url: RedactedUrl::new(url, Some(&parsed)),
        })
    }
}

/// PostgreSQL TLS material (PEM text), each a resolved secret.
#[derive(Debug, Clone, Default)]
pub struct DatabaseTls {
    pub ca: Option<SecretString>,
    pub cert: Option<SecretString>,
    pub key: Option<SecretString>,
}

impl DatabaseTls {
    pub fn is_configured(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // set_password only fails for URLs that cannot carry credentials, which these can.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_password_is_redacted_everywhere() {
        let url = DatabaseUrl::parse(SecretString::from(
            "postgres://app:hunter2@db.internal:5432/gatehouse".to_string(),
        ))
        .expect("valid");
        assert_eq!(url.backend(), Backend::Postgres);
        assert_eq!(
            url.redacted(),
            "postgres://app:***@db.internal:5432/gatehouse"
        );
        assert!(!format!("{url:?} {url}").contains("hunter2"));
        assert!(url.expose().contains("hunter2"));
    }

    #[test]
    fn sqlite_forms_and_rejections() {
        for ok in [
            "sqlite://gatehouse.db",
            "sqlite:///tmp/x.db",
            "sqlite::memory:",
        ] {
            let url = DatabaseUrl::parse(SecretString::from(ok.to_string())).expect(ok);
            assert_eq!(url.backend(), Backend::Sqlite);
        }
        for bad in ["sqlite://", "mysql://x", "gatehouse.db", "postgres://[::1"] {
            assert!(
                DatabaseUrl::parse(SecretString::from(bad.to_string())).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn redis_urls() {
        let url = RedisUrl::parse(SecretString::from(
            "redis://:pw@127.0.0.1:6379/0".to_string(),
        ))
        .expect("valid");
        assert!(!url.redacted().contains("pw@"));
        assert!(RedisUrl::parse(SecretString::from("http://x".to_string())).is_err());
        assert!(RedisUrl::parse(SecretString::from("127.0.0.1:6379".to_string())).is_err());
    }
}
