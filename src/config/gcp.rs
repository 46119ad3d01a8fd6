//! `gcp:` secret references, fetched from GCP Secret Manager once, at start.
//!
//! Every reference of one start is fetched concurrently, under one deadline, by Google's own
//! client (`google-cloud-secretmanager-v1`) with Application Default Credentials: a
//! `GOOGLE_APPLICATION_CREDENTIALS` file, or the metadata server of the VM, Cloud Run service
//! or GKE pod (`GCE_METADATA_HOST` honoured). A failure names the reference and says what
//! went wrong in words an operator can act on; the payload never appears in a message.

use std::time::Duration;

use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::{Aip194Strict, RetryPolicyExt};
use google_cloud_secretmanager_v1::client::SecretManagerService;
use secrecy::SecretString;

pub const PREFIX: &str = "gcp:";

/// How long start-up waits for all references together; past it, start-up stops rather than
/// serving half configured.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// Checks the shape of a reference (the part after `gcp:`), before any network call, so a typo
/// is reported as one rather than as a "not found" from the server.
pub fn parse(reference: &str) -> Result<(), String> {
    let parts: Vec<&str> = reference.split('/').collect();
    let shape_ok = match parts.as_slice() {
        ["projects", p, "secrets", s, "versions", v] => ok_id(p) && ok_id(s) && ok_version(v),
        ["projects", p, "locations", l, "secrets", s, "versions", v] => {
            ok_id(p) && ok_id(l) && ok_id(s) && ok_version(v)
        }
        _ => false,
    };
    if shape_ok {
        Ok(())
    } else {
        Err(format!(
            "'{PREFIX}{reference}' is not a Secret Manager version: expected \
             {PREFIX}projects/PROJECT/secrets/SECRET/versions/VERSION (VERSION: latest or a number)"
        ))
    }
}

fn ok_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

fn ok_version(v: &str) -> bool {
    v == "latest" || (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit()))
}

/// One fetched secret: its text and the version it resolved to (`latest` becomes a number).
pub struct Fetched {
    pub value: SecretString,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("not found: no such secret or version in Secret Manager")]
    NotFound,
    #[error(
        "permission denied: the service account needs roles/secretmanager.secretAccessor on \
         this secret ({0})"
    )]
    PermissionDenied(String),
    #[error("the version cannot be read (disabled or destroyed?): {0}")]
    NotReadable(String),
    #[error(
        "no usable Google credentials (Application Default Credentials: \
         GOOGLE_APPLICATION_CREDENTIALS or the metadata server): {0}"
    )]
    NoCredentials(String),
    #[error("the credentials were refused by Secret Manager: {0}")]
    Unauthenticated(String),
    #[error("the payload's CRC32C checksum does not match its data (corrupted on the way)")]
    BadChecksum,
    #[error("the payload came without its CRC32C checksum, so it cannot be verified")]
    NoChecksum,
    #[error("the payload is empty")]
    Empty,
    #[error("the payload is not UTF-8 text")]
    NotText,
    #[error("Secret Manager is unreachable at {endpoint}: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("no answer from Secret Manager or its credentials within {}s", DEADLINE.as_secs())]
    Deadline,
    #[error("Secret Manager at {endpoint} took the request and did not answer in time: {reason}")]
    NoAnswer { endpoint: String, reason: String },
    #[error("Secret Manager answered with an error: {0}")]
    Other(String),
}

/// Where the client finds Secret Manager and its credentials.
#[derive(Debug, Default)]
pub struct Target<'a> {
    /// `GATEHOUSE_GCP_SECRETMANAGER_ENDPOINT`; `None` is Google's public endpoint.
    pub endpoint: Option<&'a str>,
    /// `GCE_METADATA_HOST` as the configuration's environment has it.
    pub metadata_host: Option<&'a str>,
    /// Whether that environment names a `GOOGLE_APPLICATION_CREDENTIALS` file.
    pub credentials_file: bool,
}

/// Fetches every reference (the part after `gcp:`) concurrently; one result per reference,
/// in order.
pub async fn fetch_all(
    references: &[String],
    target: &Target<'_>,
) -> Vec<Result<Fetched, FetchError>> {
    let endpoint = target.endpoint;
    let shown_endpoint = endpoint
        .unwrap_or("the public Secret Manager endpoint")
        .to_string();
    let work = async {
        let client = match client(target).await {
            Ok(c) => c,
            Err(e) => return references.iter().map(|_| Err(e.clone())).collect(),
        };
        let traced = Traced::start();
        let results = futures::future::join_all(
            references
                .iter()
                .map(|r| traced.around(r, fetch_one(&client, r, &shown_endpoint))),
        )
        .await;
        traced.end();
        results
    };
    match tokio::time::timeout(DEADLINE, work).await {
        Ok(results) => results,
        Err(_) => references
            .iter()
            .map(|_| Err(FetchError::Deadline))
            .collect(),
    }
}

async fn client(target: &Target<'_>) -> Result<SecretManagerService, FetchError> {
    // A few quick retries for a blip; a longer outage stops start-up within the deadline.
    let retry = Aip194Strict
        .with_attempt_limit(3)
        .with_time_limit(DEADLINE / 2);
    let mut builder = SecretManagerService::builder().with_retry_policy(retry);
    if let Some(endpoint) = target.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    // Application Default Credentials read the process environment. The configuration's
    // environment is that same environment in a real start; naming the metadata host from it
    // keeps a configuration built in-process (tests, tools) self-contained.
    if let (Some(host), false) = (target.metadata_host, target.credentials_file) {
        let credentials = google_cloud_auth::credentials::mds::Builder::default()
            .with_endpoint(format!("http://{host}"))
            .build()
            .map_err(|e| FetchError::NoCredentials(chain(&e)))?;
        builder = builder.with_credentials(credentials);
    }
    builder
        .build()
        .await
        .map_err(|e| FetchError::NoCredentials(chain(&e)))
}

async fn fetch_one(
    client: &SecretManagerService,
    reference: &str,
    endpoint: &str,
) -> Result<Fetched, FetchError> {
    let response = client
        .access_secret_version()
        .set_name(reference)
        .send()
        .await
        .map_err(|e| classify(&e, endpoint))?;
    let payload = response.payload.ok_or(FetchError::Empty)?;
    check_crc32c(&payload.data, payload.data_crc32c)?;
    let text = String::from_utf8(payload.data.to_vec()).map_err(|_| FetchError::NotText)?;
    // Secrets pasted through a console or `echo` end in a newline that is not part of them.
    let text = text.trim_end_matches(['\n', '\r']).to_string();
    if text.is_empty() {
        return Err(FetchError::Empty);
    }
    Ok(Fetched {
        value: SecretString::from(text),
        version: response.name,
    })
}

/// Spans for the fetches, made with OpenTelemetry directly: they happen before the log and
/// its `tracing` layers are set up. One root span for the start's fetch, a client span per
/// reference (its resource name, never the value), failed ones marked with their error.
struct Traced(Option<opentelemetry::Context>);

impl Traced {
    fn start() -> Traced {
        use opentelemetry::trace::{TraceContextExt, Tracer};
        if !crate::telemetry::enabled() {
            return Traced(None);
        }
        let tracer = opentelemetry::global::tracer("gatehouse");
        let root = tracer.start("fetch secrets from Secret Manager");
        Traced(Some(opentelemetry::Context::current_with_span(root)))
    }

    async fn around(
        &self,
        reference: &str,
        fetch: impl Future<Output = Result<Fetched, FetchError>>,
    ) -> Result<Fetched, FetchError> {
        use opentelemetry::context::FutureExt;
        use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
        let Some(parent) = &self.0 else {
            return fetch.await;
        };
        let tracer = opentelemetry::global::tracer("gatehouse");
        let span = tracer
            .span_builder("Secret Manager AccessSecretVersion")
            .with_kind(SpanKind::Client)
            .with_attributes([opentelemetry::KeyValue::new(
                "gcp.secretmanager.reference",
                reference.to_string(),
            )])
            .start_with_context(&tracer, parent);
        // Current while the fetch runs: Google's client sends the current context's
        // `traceparent` with its request, so the span continues on Google's side.
        let context = parent.with_span(span);
        let result = fetch.with_context(context.clone()).await;
        if let Err(e) = &result {
            context.span().set_status(Status::error(e.to_string()));
        }
        context.span().end();
        result
    }

    fn end(&self) {
        use opentelemetry::trace::TraceContextExt;
        if let Some(root) = &self.0 {
            root.span().end();
        }
    }
}

/// Secret Manager stores a checksum with every version (computing one when the writer gave
/// none) and sends it with every payload, so a payload without one is refused too.
fn check_crc32c(data: &[u8], expected: Option<i64>) -> Result<(), FetchError> {
    match expected {
        None => Err(FetchError::NoChecksum),
        Some(expected) if i64::from(crc32c::crc32c(data)) != expected => {
            Err(FetchError::BadChecksum)
        }
        Some(_) => Ok(()),
    }
}

fn classify(e: &google_cloud_gax::error::Error, endpoint: &str) -> FetchError {
    if let Some(status) = e.status() {
        let message = status.message.clone();
        return match status.code {
            Code::NotFound => FetchError::NotFound,
            Code::PermissionDenied => FetchError::PermissionDenied(message),
            Code::FailedPrecondition => FetchError::NotReadable(message),
            Code::Unauthenticated => FetchError::Unauthenticated(message),
            _ => FetchError::Other(format!("{:?}: {message}", status.code)),
        };
    }
    if e.is_authentication() {
        return FetchError::NoCredentials(chain(e));
    }
    if e.is_timeout() {
        return FetchError::NoAnswer {
            endpoint: endpoint.to_string(),
            reason: chain(e),
        };
    }
    if e.is_connect() || e.is_io() || e.is_transport() || e.is_exhausted() {
        return FetchError::Unreachable {
            endpoint: endpoint.to_string(),
            reason: chain(e),
        };
    }
    match e.http_status_code() {
        Some(code) => FetchError::Other(format!("HTTP {code}")),
        None => FetchError::Other(chain(e)),
    }
}

/// An error with its causes, as one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let line = s.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_of_the_documented_shapes_pass_and_others_are_explained() {
        for good in [
            "projects/acme-prod/secrets/session-key/versions/latest",
            "projects/123456/secrets/oidc_config/versions/7",
            "projects/p/locations/europe-west1/secrets/s/versions/latest",
        ] {
            assert_eq!(parse(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "projects/p/secrets/s",
            "projects/p/secrets/s/versions/",
            "projects/p/secrets/s/versions/newest",
            "projects//secrets/s/versions/1",
            "projects/p/secrets/s/versions/1/extra",
            "secrets/s/versions/1",
            "projects/p/secrets/s?x/versions/1",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("VERSION: latest or a number"), "{err}");
        }
    }

    #[test]
    fn a_payload_whose_checksum_differs_is_refused() {
        // The CRC32C (Castagnoli) check value of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(check_crc32c(b"123456789", Some(0xE306_9283)), Ok(()));
        assert_eq!(
            check_crc32c(b"123456780", Some(0xE306_9283)),
            Err(FetchError::BadChecksum)
        );
        assert_eq!(check_crc32c(b"anything", None), Err(FetchError::NoChecksum));
    }
}
