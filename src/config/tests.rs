//! Unit tests of the configuration, one or more per rule of `Raw::build`; long by design.

use std::collections::HashMap;

use secrecy::ExposeSecret;

use super::*;

fn env(pairs: &[(&str, &str)]) -> Sources {
    Sources {
        file: None,
        env: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        flags: Vec::new(),
    }
}

fn load_err(sources: &Sources) -> String {
    match Config::load(sources) {
        Ok(_) => panic!("expected a configuration error"),
        Err(e) => e.to_string(),
    }
}

const PROD: &[(&str, &str)] = &[
    (
        "GATEHOUSE_OIDC_ISSUER",
        "https://example.okta.com/oauth2/default",
    ),
    ("GATEHOUSE_OIDC_CLIENT_ID", "client"),
    ("GATEHOUSE_OIDC_CLIENT_SECRET", "secret"),
    ("GATEHOUSE_SESSION_KEY", "0123456789abcdef0123456789abcdef"),
];

fn prod_with(extra: &[(&str, &str)]) -> Sources {
    let mut pairs = PROD.to_vec();
    pairs.extend_from_slice(extra);
    env(&pairs)
}

#[test]
fn zero_config_is_dev_mode_on_loopback_with_sqlite() {
    let config = Config::load(&Sources::default()).expect("defaults load");
    assert!(config.is_dev_mode());
    assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(config.database.backend(), Backend::Sqlite);
    assert_eq!(config.database.redacted(), "sqlite://gatehouse.db");
    assert_eq!(config.identity.issuer(), "http://localhost:8080/dev-idp");
    assert_eq!(config.api.issuers, vec!["http://localhost:8080/dev-idp"]);
    assert_eq!(config.api.audience, "api://default");
    assert_eq!(config.admin_groups, vec!["gatehouse-admins"]);
    assert_eq!(
        config.oidc_scopes,
        vec!["openid", "email", "profile", "groups"]
    );
    assert_eq!(config.session.ttl.as_secs(), 3600);
    assert_eq!(config.session.idle.as_secs(), 1800);
    assert!(!config.session.cookie_secure);
    assert_eq!(config.rate_limits["auth.login"].to_string(), "20/minute");
    assert_eq!(config.rate_limits["gh.search"].to_string(), "120/minute");
    assert_eq!(config.audit_retention.as_secs(), 365 * 86_400);
    assert!(config.github.is_none());
    assert!((config.sync_max_departed - 0.2).abs() < f64::EPSILON);
    assert!(config.redis.is_none());
    assert_eq!(config.header_timeout.as_secs(), 10);
    assert_eq!(config.max_connections, 10_000);
    // Ctrl-C on a workstation stops at once; a production instance drains (below).
    assert!(config.shutdown_drain.is_zero());
}

#[test]
fn production_drains_before_stopping_within_30_seconds() {
    let config = Config::load(&prod_with(&[])).expect("loads");
    assert_eq!(config.shutdown_drain.as_secs(), 5);
    let config = Config::load(&prod_with(&[("GATEHOUSE_SHUTDOWN_DRAIN", "0s")])).expect("loads");
    assert!(config.shutdown_drain.is_zero());
    let config = Config::load(&prod_with(&[("GATEHOUSE_SHUTDOWN_DRAIN", "25s")])).expect("loads");
    assert_eq!(config.shutdown_drain.as_secs(), 25);
    for bad in ["26s", "1m", "soon"] {
        let err = load_err(&prod_with(&[("GATEHOUSE_SHUTDOWN_DRAIN", bad)]));
        assert!(err.starts_with("GATEHOUSE_SHUTDOWN_DRAIN"), "{bad}: {err}");
    }
}

#[test]
fn dev_mode_refuses_a_public_bind() {
    let err = load_err(&env(&[("GATEHOUSE_BIND", "0.0.0.0:8080")]));
    assert!(
        err.starts_with("GATEHOUSE_BIND (from the environment)"),
        "{err}"
    );
    assert!(err.contains("loopback"), "{err}");
    // A configured provider lifts the restriction.
    let config = Config::load(&prod_with(&[("GATEHOUSE_BIND", "0.0.0.0:8080")])).expect("prod");
    assert!(!config.is_dev_mode());
}

fn refusal(pairs: &[(&str, &str)]) -> String {
    let config = Config::load(&env(pairs)).expect("loads: commands other than serving still run");
    assert!(config.is_dev_mode());
    config
        .dev_mode_refusal
        .map(|e| e.to_string())
        .unwrap_or_else(|| panic!("dev mode should be refused with {pairs:?}"))
}

#[test]
fn dev_mode_serves_only_on_a_workstation() {
    assert!(
        Config::load(&Sources::default())
            .expect("defaults")
            .dev_mode_refusal
            .is_none(),
        "nothing set: dev mode just works"
    );
    for host in [
        "http://localhost:8080",
        "http://127.0.0.2:9000",
        "http://[::1]:8080",
    ] {
        let config = Config::load(&env(&[("GATEHOUSE_PUBLIC_URL", host)])).expect("loads");
        assert!(config.dev_mode_refusal.is_none(), "{host}");
    }

    let err = refusal(&[("GATEHOUSE_OIDC_ISSUER", "")]);
    assert!(
        err.starts_with("GATEHOUSE_OIDC_ISSUER is set but empty"),
        "{err}"
    );
    assert!(err.contains("dev mode"), "{err}");
    let err = refusal(&[("GATEHOUSE_OIDC_CLIENT_SECRET", "")]);
    assert!(
        err.starts_with("GATEHOUSE_OIDC_CLIENT_SECRET is set but empty"),
        "{err}"
    );
    let err = refusal(&[("GATEHOUSE_OIDC_ISSUR", "https://id.example.com")]);
    assert!(
        err.contains("GATEHOUSE_OIDC_ISSUR is not a Gatehouse setting"),
        "{err}"
    );

    let err = refusal(&[("GATEHOUSE_PUBLIC_URL", "https://portal.example.com")]);
    assert!(
        err.starts_with("GATEHOUSE_PUBLIC_URL (from the environment)"),
        "{err}"
    );
    assert!(err.contains("not on a loopback host"), "{err}");
    let err = refusal(&[("GATEHOUSE_TRUSTED_PROXIES", "1")]);
    assert!(
        err.starts_with("GATEHOUSE_TRUSTED_PROXIES (from the environment)"),
        "{err}"
    );
    let err = refusal(&[("GATEHOUSE_TRUSTED_PROXIES", "10.0.0.0/8")]);
    assert!(err.starts_with("GATEHOUSE_TRUSTED_PROXIES"), "{err}");
    let err = refusal(&[(
        "GATEHOUSE_DATABASE_URL",
        "postgres://gatehouse@127.0.0.1/gatehouse",
    )]);
    assert!(
        err.starts_with("GATEHOUSE_DATABASE_URL (from the environment)"),
        "{err}"
    );
    assert!(err.contains("PostgreSQL"), "{err}");

    // None of it applies once a provider is configured.
    let config = Config::load(&prod_with(&[
        ("GATEHOUSE_PUBLIC_URL", "https://portal.example.com"),
        ("GATEHOUSE_TRUSTED_PROXIES", "1"),
        (
            "GATEHOUSE_DATABASE_URL",
            "postgres://gatehouse@127.0.0.1/gatehouse",
        ),
    ]))
    .expect("prod");
    assert!(config.dev_mode_refusal.is_none());
}

#[test]
fn issuers_need_https_except_on_loopback_and_keep_their_form() {
    let err = load_err(&prod_with(&[(
        "GATEHOUSE_OIDC_ISSUER",
        "http://id.example.com",
    )]));
    assert!(
        err.starts_with("GATEHOUSE_OIDC_ISSUER (from the environment)"),
        "{err}"
    );
    assert!(err.contains("https"), "{err}");
    for loopback in ["http://127.0.0.1:9000", "http://localhost:9000/realms/x"] {
        let config = Config::load(&prod_with(&[("GATEHOUSE_OIDC_ISSUER", loopback)]))
            .expect("loopback may be plain http");
        assert_eq!(config.identity.issuer(), loopback);
    }
    let config = Config::load(&prod_with(&[(
        "GATEHOUSE_OIDC_ISSUER",
        "https://x.auth0.com/",
    )]))
    .expect("auth0");
    assert_eq!(
        config.identity.issuer(),
        "https://x.auth0.com/",
        "kept as written"
    );
    assert_eq!(config.api.issuers, vec!["https://x.auth0.com/"]);

    let payload = r#"{"issuer":"https://id.example.com","client_id":"a","client_secret":"b",
        "token_endpoint":"http://id.example.com/token"}"#;
    let err = load_err(&env(&[
        ("GATEHOUSE_OIDC_CONFIG", payload),
        ("GATEHOUSE_SESSION_KEY", "0123456789abcdef0123456789abcdef"),
    ]));
    assert!(err.starts_with("GATEHOUSE_OIDC_CONFIG"), "{err}");
    assert!(err.contains("token_endpoint"), "{err}");
    let err = load_err(&prod_with(&[(
        "GATEHOUSE_API_ISSUERS",
        "http://other.example.com",
    )]));
    assert!(err.starts_with("GATEHOUSE_API_ISSUERS"), "{err}");
}

#[test]
fn email_verification_is_required_unless_assumed() {
    let config = Config::load(&prod_with(&[])).expect("prod");
    assert_eq!(config.email_verified, EmailVerified::Required);
    assert!(config.email_verified.trusts(Some(true)));
    assert!(!config.email_verified.trusts(None));
    assert!(!config.email_verified.trusts(Some(false)));
    let config =
        Config::load(&prod_with(&[("GATEHOUSE_OIDC_EMAIL_VERIFIED", "assume")])).expect("assume");
    assert!(config.email_verified.trusts(None));
    assert!(
        !config.email_verified.trusts(Some(false)),
        "an explicit false stays false"
    );
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("GATEHOUSE_OIDC_EMAIL_VERIFIED=assume")),
        "{:?}",
        config.warnings
    );
    let err = load_err(&prod_with(&[("GATEHOUSE_OIDC_EMAIL_VERIFIED", "yes")]));
    assert!(err.starts_with("GATEHOUSE_OIDC_EMAIL_VERIFIED"), "{err}");
}

#[test]
fn bad_values_name_their_variable() {
    let cases: &[(&str, &str)] = &[
        ("GATEHOUSE_BIND", "localhost"),
        ("GATEHOUSE_PUBLIC_URL", "ftp://x"),
        ("GATEHOUSE_PUBLIC_URL", "https://x/portal"),
        ("GATEHOUSE_DATABASE_URL", "mysql://x/y"),
        ("GATEHOUSE_REDIS_URL", "localhost:6379"),
        ("GATEHOUSE_SESSION_TTL", "forever"),
        ("GATEHOUSE_SESSION_IDLE", "0"),
        ("GATEHOUSE_COOKIE_SECURE", "perhaps"),
        ("GATEHOUSE_TRUSTED_PROXIES", "lb.internal"),
        ("GATEHOUSE_RATE_LIMITS", "auth.login=5/fortnight"),
        ("GATEHOUSE_AUDIT_RETENTION", "a year"),
        ("GATEHOUSE_SYNC_INTERVAL", "hourly"),
        ("GATEHOUSE_SYNC_MAX_DEPARTED", "200%"),
        ("GATEHOUSE_METRICS_BIND", "nine thousand"),
        ("GATEHOUSE_HEADER_TIMEOUT", "0"),
        ("GATEHOUSE_HEADER_TIMEOUT", "soon"),
        ("GATEHOUSE_MAX_CONNECTIONS", "0"),
        ("GATEHOUSE_MAX_CONNECTIONS", "many"),
        ("GATEHOUSE_MAX_CONNECTIONS", "2000000"),
        ("GATEHOUSE_LOG_FORMAT", "xml"),
        ("GATEHOUSE_OIDC_SCOPES", "email profile"),
        ("GATEHOUSE_CORS_ORIGINS", "https://x/with/path"),
        ("GATEHOUSE_API_ISSUERS", "not a url"),
        ("GATEHOUSE_GITHUB_API_URL", "github"),
        ("GATEHOUSE_GITHUB_ORG", "acme"),
        ("GATEHOUSE_SESSION_KEY", "short"),
        ("GATEHOUSE_DATABASE_CA", "env:NOPE_NOT_SET"),
    ];
    for (var, value) in cases {
        let err = load_err(&env(&[(var, value)]));
        let named = if *var == "GATEHOUSE_GITHUB_ORG" {
            "GATEHOUSE_GITHUB_TOKEN"
        } else {
            var
        };
        assert!(err.starts_with(named), "{var}={value}: {err}");
    }
}

#[test]
fn production_needs_a_session_key_and_client() {
    let mut pairs = PROD.to_vec();
    pairs.retain(|(k, _)| *k != "GATEHOUSE_SESSION_KEY");
    assert!(load_err(&env(&pairs)).starts_with("GATEHOUSE_SESSION_KEY"));
    let mut pairs = PROD.to_vec();
    pairs.retain(|(k, _)| *k != "GATEHOUSE_OIDC_CLIENT_SECRET");
    assert!(load_err(&env(&pairs)).starts_with("GATEHOUSE_OIDC_CLIENT_SECRET"));
}

#[test]
fn session_keys_rotate_as_a_list() {
    let config = Config::load(&prod_with(&[(
        "GATEHOUSE_SESSION_KEY",
        "new-key-new-key-new-key-new-key-1,old-key-old-key-old-key-old-key-2",
    )]))
    .expect("two keys");
    assert_eq!(config.session.keys.len(), 2);
    assert!(config.session.keys[0].expose_secret().starts_with("new"));
}

#[test]
fn https_means_secure_cookies_and_refuses_insecure_ones() {
    let config = Config::load(&prod_with(&[(
        "GATEHOUSE_PUBLIC_URL",
        "https://portal.example.com",
    )]))
    .expect("https");
    assert!(config.session.cookie_secure);
    let err = load_err(&prod_with(&[
        ("GATEHOUSE_PUBLIC_URL", "https://portal.example.com"),
        ("GATEHOUSE_COOKIE_SECURE", "false"),
    ]));
    assert!(err.starts_with("GATEHOUSE_COOKIE_SECURE"), "{err}");
}

#[test]
fn secret_references_resolve_and_gcp_is_fetched_only_by_the_fetching_loader() {
    let config = Config::load(&prod_with(&[
        ("GATEHOUSE_OIDC_CLIENT_SECRET", "env:MY_CLIENT_SECRET"),
        ("MY_CLIENT_SECRET", "from-env"),
    ]))
    .expect("env ref");
    let IdentityProvider::External(oidc) = &config.identity else {
        panic!("expected an external provider");
    };
    assert_eq!(oidc.client_secret.expose_secret(), "from-env");
    let err = load_err(&prod_with(&[(
        "GATEHOUSE_OIDC_CLIENT_SECRET",
        "gcp:projects/p/secrets/s/versions/latest",
    )]));
    assert!(err.starts_with("GATEHOUSE_OIDC_CLIENT_SECRET"), "{err}");
    assert!(err.contains("fetched only when a command starts"), "{err}");
}

#[test]
fn no_secret_in_debug_output() {
    let config = Config::load(&prod_with(&[
        (
            "GATEHOUSE_DATABASE_URL",
            "postgres://app:pg-pass-123@db/gatehouse",
        ),
        ("GATEHOUSE_REDIS_URL", "redis://:redis-pass-456@cache:6379"),
        ("GATEHOUSE_GITHUB_ORG", "acme"),
        ("GATEHOUSE_GITHUB_TOKEN", "ghp_token_789"),
    ]))
    .expect("loads");
    let debug = format!("{config:?}");
    for secret in [
        "pg-pass-123",
        "redis-pass-456",
        "ghp_token_789",
        "0123456789abcdef0123456789abcdef",
        "\"secret\"",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked into Debug");
    }
}

#[test]
fn oidc_config_payload_shapes() {
    let web = r#"{"web":{"client_id":"cid","client_secret":"cs",
        "issuer":"https://x.okta.com/oauth2/default",
        "auth_uri":"https://x.okta.com/oauth2/default/v1/authorize",
        "token_uri":"https://x.okta.com/oauth2/default/v1/token",
        "userinfo_uri":"https://x.okta.com/oauth2/default/v1/userinfo",
        "redirect_uris":["https://elsewhere/oidc/callback"]}}"#;
    let config = Config::load(&env(&[
        ("GATEHOUSE_OIDC_CONFIG", web),
        ("GATEHOUSE_SESSION_KEY", "0123456789abcdef0123456789abcdef"),
        ("GATEHOUSE_OIDC_CLIENT_ID", "override"),
    ]))
    .expect("client_secrets shape");
    let IdentityProvider::External(oidc) = &config.identity else {
        panic!("expected an external provider");
    };
    assert_eq!(oidc.client_id, "override");
    assert_eq!(oidc.issuer, "https://x.okta.com/oauth2/default");
    assert!(oidc.token_endpoint.is_some());
    assert!(
        config.warnings.iter().any(|w| w.contains("redirect_uri")),
        "{:?}",
        config.warnings
    );

    let flat = r#"{"issuer":"https://idp.example.com","client_id":"a","client_secret":"b",
        "jwks_uri":"https://idp.example.com/keys"}"#;
    let config = Config::load(&env(&[
        ("GATEHOUSE_OIDC_CONFIG", flat),
        ("GATEHOUSE_SESSION_KEY", "0123456789abcdef0123456789abcdef"),
    ]))
    .expect("flat shape");
    assert!(!config.is_dev_mode());

    let err = load_err(&env(&[("GATEHOUSE_OIDC_CONFIG", "{not json")]));
    assert!(err.starts_with("GATEHOUSE_OIDC_CONFIG"), "{err}");
}

#[test]
fn github_graphql_url_is_derived() {
    let base = [
        ("GATEHOUSE_GITHUB_ORG", "acme"),
        ("GATEHOUSE_GITHUB_TOKEN", "t"),
    ];
    let config = Config::load(&env(&base)).expect("github.com");
    let gh = config.github.expect("github configured");
    assert_eq!(gh.graphql_url.as_str(), "https://api.github.com/graphql");

    let mut ghes = base.to_vec();
    ghes.push(("GATEHOUSE_GITHUB_API_URL", "https://ghe.corp/api/v3"));
    let gh = Config::load(&env(&ghes))
        .expect("ghes")
        .github
        .expect("github");
    assert_eq!(gh.graphql_url.as_str(), "https://ghe.corp/api/graphql");
}

#[test]
fn github_profiles_are_found_beside_the_api() {
    let web = |api: Option<&str>| {
        let pairs: Vec<(&str, &str)> = api
            .map(|a| vec![("GATEHOUSE_GITHUB_API_URL", a)])
            .unwrap_or_default();
        Config::load(&env(&pairs)).expect("config").github_web
    };
    assert_eq!(web(None), "https://github.com");
    assert_eq!(web(Some("https://api.github.com/")), "https://github.com");
    assert_eq!(web(Some("https://ghe.corp/api/v3")), "https://ghe.corp");
    assert_eq!(
        web(Some("https://ghe.corp:8443/git/api/v3/")),
        "https://ghe.corp:8443/git"
    );
    assert_eq!(web(Some("http://127.0.0.1:9000")), "http://127.0.0.1:9000");
}

#[test]
fn file_then_env_then_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gatehouse.toml");
    std::fs::write(
        &path,
        "bind = \"127.0.0.1:9000\"\nsession_ttl = \"2h\"\nadmin_groups = [\"a\", \"b\"]\nsync_interval = \"0\"\n",
    )
    .expect("write");
    let mut sources = env(&[("GATEHOUSE_SESSION_TTL", "3h")]);
    sources.file = Some(path.clone());
    let config = Config::load(&sources).expect("layers");
    assert_eq!(config.bind.port(), 9000);
    assert_eq!(config.session.ttl.as_secs(), 3 * 3600);
    assert_eq!(config.admin_groups, vec!["a", "b"]);
    assert!(config.sync_interval.is_zero());

    sources.flags = vec![("GATEHOUSE_BIND".into(), "127.0.0.1:9001".into())];
    assert_eq!(Config::load(&sources).expect("flags").bind.port(), 9001);

    // The error names the file as the value's origin.
    std::fs::write(&path, "session_idle = \"later\"\n").expect("write");
    let err = load_err(&Sources {
        file: Some(path.clone()),
        ..Sources::default()
    });
    assert!(err.contains("GATEHOUSE_SESSION_IDLE (from "), "{err}");
}

#[test]
fn malformed_toml_reports_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "bind = \"127.0.0.1:9000\"\npublic_url = \n").expect("write");
    let err = load_err(&Sources {
        file: Some(path.clone()),
        ..Sources::default()
    });
    assert!(err.contains("line 2, column"), "{err}");

    std::fs::write(&path, "databse_url = \"sqlite://x.db\"\n").expect("write");
    let err = load_err(&Sources {
        file: Some(path.clone()),
        ..Sources::default()
    });
    assert!(err.contains("unknown key 'databse_url'"), "{err}");

    let err = load_err(&Sources {
        file: Some(dir.path().join("missing.toml")),
        ..Sources::default()
    });
    assert!(err.contains("cannot read it"), "{err}");
}

#[test]
fn unknown_gatehouse_variables_warn() {
    let config = Config::load(&env(&[("GATEHOUSE_DATABSE_URL", "x")])).expect("loads");
    assert!(
        config
            .warnings
            .iter()
            .any(|w| w.contains("GATEHOUSE_DATABSE_URL"))
    );
}

#[test]
fn unknown_flag_setting_is_an_error() {
    let sources = Sources {
        flags: vec![("GATEHOUSE_NOPE".into(), "1".into())],
        ..Sources::default()
    };
    assert!(load_err(&sources).contains("GATEHOUSE_NOPE"));
}

#[tokio::test]
async fn a_malformed_gcp_reference_or_endpoint_is_named_before_any_request() {
    let err = Config::load_fetching(&prod_with(&[(
        "GATEHOUSE_SESSION_KEY",
        "gcp:projects/p/secrets/session-key",
    )]))
    .await
    .expect_err("not a version")
    .to_string();
    assert!(err.starts_with("GATEHOUSE_SESSION_KEY"), "{err}");
    assert!(err.contains("is not a Secret Manager version"), "{err}");

    let err = Config::load_fetching(&prod_with(&[
        (
            "GATEHOUSE_SESSION_KEY",
            "gcp:projects/p/secrets/session-key/versions/latest",
        ),
        ("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT", "not a url"),
    ]))
    .await
    .expect_err("bad endpoint")
    .to_string();
    assert!(
        err.starts_with("GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT"),
        "{err}"
    );

    // Without a reference nothing is fetched, whatever the endpoint.
    let config = Config::load_fetching(&prod_with(&[(
        "GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT",
        "http://127.0.0.1:9",
    )]))
    .await
    .expect("nothing to fetch");
    assert!(config.fetched_secrets.is_empty());
}
