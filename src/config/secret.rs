//! Secret values and secret references (`env:NAME`, `file:/path`, `gcp:…`).
//!
//! A secret never reaches `Debug`, `Display` or a log line: `SecretString` from `secrecy`
//! redacts itself, and every place that needs the plain value has to ask for it by name.

use secrecy::SecretString;

/// The variables whose value is a secret, and so may be a reference.
pub const SECRET_VARS: &[&str] = &[
    "GATEHOUSE_DATABASE_URL",
    "GATEHOUSE_DATABASE_CA",
    "GATEHOUSE_DATABASE_CERT",
    "GATEHOUSE_DATABASE_KEY",
    "GATEHOUSE_REDIS_URL",
    "GATEHOUSE_OIDC_CLIENT_SECRET",
    "GATEHOUSE_OIDC_CONFIG",
    "GATEHOUSE_SESSION_KEY",
    "GATEHOUSE_GITHUB_TOKEN",
    "GATEHOUSE_OKTA_API_TOKEN",
];

/// Where a secret came from, so a failure can name it without showing the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Inline,
    Env(String),
    File(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretRefError {
    #[error("refers to environment variable {0}, which is not set")]
    EnvMissing(String),
    #[error("refers to file {path}, which cannot be read: {reason}")]
    FileUnreadable { path: String, reason: String },
    #[error("refers to file {0}, which is empty")]
    FileEmpty(String),
    #[error(
        "is a GCP Secret Manager reference, which is fetched only when a command starts \
         (this configuration was loaded without network access)"
    )]
    GcpNotFetched,
    #[error("a secret reference needs a name after '{0}:'")]
    EmptyReference(&'static str),
}

/// Resolves one configured value: a reference is followed, anything else is the secret itself.
///
/// `lookup_env` is a parameter so tests need not mutate the process environment.
pub fn resolve(
    raw: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<(SecretString, SecretSource), SecretRefError> {
    if let Some(name) = raw.strip_prefix("env:") {
        if name.is_empty() {
            return Err(SecretRefError::EmptyReference("env"));
        }
        return match lookup_env(name) {
            Some(v) if !v.is_empty() => {
                Ok((SecretString::from(v), SecretSource::Env(name.to_string())))
            }
            _ => Err(SecretRefError::EnvMissing(name.to_string())),
        };
    }
    if let Some(path) = raw.strip_prefix("file:") {
        if path.is_empty() {
            return Err(SecretRefError::EmptyReference("file"));
        }
        let text = std::fs::read_to_string(path).map_err(|e| SecretRefError::FileUnreadable {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        // Files written by `echo` or editors end in a newline that is not part of the secret.
        let trimmed = text.trim_end_matches(['\n', '\r']);
        if trimmed.is_empty() {
            return Err(SecretRefError::FileEmpty(path.to_string()));
        }
        return Ok((
            SecretString::from(trimmed.to_string()),
            SecretSource::File(path.to_string()),
        ));
    }
    if raw.starts_with(super::gcp::PREFIX) {
        return Err(SecretRefError::GcpNotFetched);
    }
    Ok((SecretString::from(raw.to_string()), SecretSource::Inline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn inline_value_is_the_secret() {
        let (s, src) = resolve("hunter2", &no_env).expect("inline");
        assert_eq!(s.expose_secret(), "hunter2");
        assert_eq!(src, SecretSource::Inline);
    }

    #[test]
    fn env_reference_is_followed_and_missing_is_named() {
        let env = |n: &str| (n == "MY_SECRET").then(|| "s3cr3t".to_string());
        let (s, _) = resolve("env:MY_SECRET", &env).expect("env ref");
        assert_eq!(s.expose_secret(), "s3cr3t");
        assert_eq!(
            resolve("env:OTHER", &env).err(),
            Some(SecretRefError::EnvMissing("OTHER".into()))
        );
        assert_eq!(
            resolve("env:", &env).err(),
            Some(SecretRefError::EmptyReference("env"))
        );
    }

    #[test]
    fn file_reference_trims_newline_and_reports_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").expect("write");
        let (s, _) = resolve(&format!("file:{}", path.display()), &no_env).expect("file ref");
        assert_eq!(s.expose_secret(), "from-file");

        let missing = resolve("file:/nonexistent/gatehouse-secret", &no_env)
            .expect_err("missing file must fail");
        assert!(
            missing
                .to_string()
                .contains("/nonexistent/gatehouse-secret")
        );

        std::fs::write(&path, "\n").expect("write");
        assert!(matches!(
            resolve(&format!("file:{}", path.display()), &no_env),
            Err(SecretRefError::FileEmpty(_))
        ));
    }

    #[test]
    fn gcp_reference_is_never_taken_for_the_secret_itself() {
        let err = resolve("gcp:projects/p/secrets/s/versions/latest", &no_env)
            .expect_err("only the start-up fetch resolves it");
        assert_eq!(err, SecretRefError::GcpNotFetched);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let (s, _) = resolve("hunter2", &no_env).expect("inline");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
