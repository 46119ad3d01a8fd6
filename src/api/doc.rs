//! The OpenAPI 3.1 document, generated from the handlers' annotations and the response
//! types: `GET /api/v1/openapi.json`. A test checks that every API route of the route table
//! is described with its methods.

use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::directory::IdentityJson;
use crate::directory::feeds::{Counts, Feed, SnapshotOutcome};

/// `GET /api/v1/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeAnswer {
    /// The user, or for a client-credentials token the client (as the provider sets it).
    pub sub: Option<String>,
    /// From `cid`, else `client_id`, else `azp`.
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// Every claim of the verified token.
    #[schema(value_type = Object)]
    pub claims: serde_json::Value,
}

/// A page of the directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct GithubUsersPage {
    pub items: Vec<IdentityJson>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListRef {
    pub list_email: String,
    pub name: String,
}

/// What a coworker may know about someone: no laptops, no hidden lists.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonAnswer {
    pub email: String,
    pub github_usernames: Vec<String>,
    pub member_of: Vec<ListRef>,
    pub owner_of: Vec<ListRef>,
}

/// Every error: `{error, message}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
}

/// One bad row of a snapshot: `line` for CSV (the header is line 1), `index` for JSON.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowProblem {
    pub line: Option<u64>,
    pub index: Option<u64>,
    pub reason: String,
}

/// `422`: nothing was changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvalidRows {
    pub error: String,
    pub message: String,
    pub rows: Vec<RowProblem>,
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "An access token (JWT) from a trusted issuer, audience GATEHOUSE_API_AUDIENCE".into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse API",
        description = "The internal portal's JSON API: the GitHub username directory and the data feeds. \
                       Errors follow RFC 6750 for tokens and are {error, message} everywhere.",
        version = "1"
    ),
    paths(
        super::routes::me,
        super::routes::github_users,
        super::routes::github_user,
        super::routes::person,
        super::routes::put_assets,
        super::routes::put_lists,
        super::routes::openapi_json,
    ),
    components(schemas(
        MeAnswer, GithubUsersPage, ListRef, PersonAnswer, ErrorBody, RowProblem, InvalidRows,
        IdentityJson, SnapshotOutcome, Counts, Feed
    )),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The document as served (OpenAPI 3.1).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
