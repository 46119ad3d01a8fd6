//! The OpenAPI 3.1 document, generated from the handlers' annotations and the response
//! types: `GET /api/v1/openapi.json`. A test checks that every API route of the route table
//! is described with its methods.

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type};
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
    pub claims: Box<serde_json::value::RawValue>,
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

/// One repository of `GET /api/v1/repos`: its traffic summed over the last 14 days GitHub
/// reported, today (UTC) included.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepoItem {
    pub name: String,
    /// `owner/name`; the name alone when no organization is configured.
    pub full_name: String,
    pub description: String,
    pub private: bool,
    pub archived: bool,
    /// Gone from the organization on GitHub; its history is kept.
    pub removed: bool,
    pub html_url: Option<String>,
    pub stars: i32,
    pub views_14d: i64,
    pub unique_views_14d: i64,
    pub clones_14d: i64,
    pub unique_clones_14d: i64,
    /// When the sync last saw the repository.
    pub last_synced_at: chrono::DateTime<chrono::Utc>,
}

/// A page of repositories, by name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReposPage {
    pub items: Vec<RepoItem>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// Traffic of one period: a day, a week from Monday, or a month; `date` is its first day.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficPoint {
    pub date: chrono::NaiveDate,
    pub views: i64,
    pub unique_views: i64,
    pub clones: i64,
    pub unique_clones: i64,
}

/// `GET /api/v1/repos/{name}/traffic`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrafficAnswer {
    /// The repository's name as GitHub spells it now.
    pub repo: String,
    /// day, week or month.
    pub granularity: String,
    /// The first day asked for; `null` from the first day recorded.
    pub from: Option<chrono::NaiveDate>,
    /// The last day asked for.
    pub to: chrono::NaiveDate,
    /// Oldest first; periods without any traffic reported are left out.
    pub points: Vec<TrafficPoint>,
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

// ---- Request schemas: what the handlers accept, as precisely as JSON Schema can say it ----

/// A string parameter that takes one of a few values.
fn one_of(values: &[&str], description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.iter().copied()))
        .description(Some(description))
        .into()
}

/// `sort` of `GET /api/v1/github-users`: a column, ascending, or with a leading `-`
/// descending; empty is the default, `name`.
pub struct DirectorySort;

impl utoipa::PartialSchema for DirectorySort {
    fn schema() -> RefOr<Schema> {
        one_of(
            &[
                "name",
                "-name",
                "email",
                "-email",
                "github_username",
                "-github_username",
                "last_pull_date",
                "-last_pull_date",
                "",
            ],
            "A column, with a leading - for descending; empty for the default (name)",
        )
    }
}

impl ToSchema for DirectorySort {}

/// `limit` of `GET /api/v1/github-users`: rows per page; empty is the default, 50.
pub struct PageLimit;

impl utoipa::PartialSchema for PageLimit {
    fn schema() -> RefOr<Schema> {
        let rows = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(1))
            .maximum(Some(200));
        let default = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([""]));
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(rows)
            .item(default)
            .description(Some("Rows per page, 1 to 200; empty for the default (50)"))
            .into()
    }
}

impl ToSchema for PageLimit {}

/// `range` of `GET /api/v1/repos/{name}/traffic`; empty is the default, 90d.
pub struct TrafficRange;

impl utoipa::PartialSchema for TrafficRange {
    fn schema() -> RefOr<Schema> {
        one_of(
            &["14d", "90d", "1y", "all", ""],
            "14d, 90d, 1y or all, ending today (UTC); empty for the default (90d)",
        )
    }
}

impl ToSchema for TrafficRange {}

/// `granularity` of `GET /api/v1/repos/{name}/traffic`; empty is the default, day.
pub struct TrafficGranularity;

impl utoipa::PartialSchema for TrafficGranularity {
    fn schema() -> RefOr<Schema> {
        one_of(
            &["day", "week", "month", ""],
            "day, week (from Monday) or month; empty for the default (day)",
        )
    }
}

impl ToSchema for TrafficGranularity {}

/// `from` and `to` of `GET /api/v1/repos/{name}/traffic`: a day, or empty for the default.
pub struct DayOrEmpty;

impl utoipa::PartialSchema for DayOrEmpty {
    fn schema() -> RefOr<Schema> {
        let day = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)));
        let empty = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([""]));
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(day)
            .item(empty)
            .description(Some("YYYY-MM-DD (UTC, inclusive); empty for the default"))
            .into()
    }
}

impl ToSchema for DayOrEmpty {}

/// `include_departed` of `GET /api/v1/github-users`.
pub struct IncludeDeparted;

impl utoipa::PartialSchema for IncludeDeparted {
    fn schema() -> RefOr<Schema> {
        one_of(
            &["1", "true", "yes", "0", "false", "no", ""],
            "1, true or yes to include people who left; 0, false, no or empty (the default) not to",
        )
    }
}

impl ToSchema for IncludeDeparted {}

/// A yes/no query parameter of the snapshot endpoints (`dry_run`, `force`).
pub struct YesNo;

impl utoipa::PartialSchema for YesNo {
    fn schema() -> RefOr<Schema> {
        one_of(
            &["1", "true", "yes", "0", "false", "no", ""],
            "1, true or yes; 0, false, no or empty (the default)",
        )
    }
}

impl ToSchema for YesNo {}

// Whitespace in these patterns is `[\s\u0085]`: the server trims (and refuses inside an email)
// what Rust calls whitespace, which is ECMAScript's `\s` and U+0085.

/// An email address as the feeds check it, after trimming: one `@`, something before it, a
/// domain with a dot that neither starts nor ends it, no whitespace. Compared lower-cased.
const EMAIL_PATTERN: &str = r"^[\s\u0085]*[^@\s\u0085\u0000]+@[^@\s\u0085.\u0000][^@\s\u0085\u0000]*\.[^@\s\u0085\u0000]*[^@\s\u0085.\u0000][\s\u0085]*$";
/// A required text value: something other than whitespace (values are trimmed), and no NUL
/// (which PostgreSQL's text type cannot hold).
const TEXT_PATTERN: &str = r"^[^\u0000]*[^\s\u0085\u0000][^\u0000]*$";
/// Longest value, in characters after trimming.
const MAX_VALUE: usize = 320;

fn string_schema(pattern: &str, description: &str) -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(Some(MAX_VALUE))
        .description(Some(description))
        .build()
}

fn email_value() -> utoipa::openapi::schema::Object {
    string_schema(
        EMAIL_PATTERN,
        "An email address (trimmed, compared lower-cased); at most 320 characters",
    )
}

fn text_value() -> utoipa::openapi::schema::Object {
    string_schema(
        TEXT_PATTERN,
        "Not empty once trimmed; at most 320 characters",
    )
}

fn assigned_at_value() -> Schema {
    let date = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)));
    let empty = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([""]));
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(date)
        .item(empty)
        .description(Some("YYYY-MM-DD; empty, null or absent for none"))
        .build()
        .into()
}

fn role_value() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["member", "owner"]))
        .description(Some("member or owner (case-insensitive)"))
        .build()
}

fn hidden_value() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([
            Some("true"),
            Some("false"),
            Some("1"),
            Some("0"),
            Some("yes"),
            Some("no"),
            Some(""),
            None,
        ]))
        .description(Some(
            "A string (case-insensitive): true, 1 or yes hides the list from coworkers; \
             false, 0, no, empty, null or absent does not",
        ))
        .build()
}

/// One laptop of an assets snapshot sent as JSON. Properties other than these are ignored;
/// every value is a string.
#[derive(Debug, ToSchema)]
pub struct AssetRowJson {
    #[schema(schema_with = text_value)]
    pub serial: String,
    #[schema(schema_with = text_value)]
    pub model: String,
    #[schema(schema_with = email_value)]
    pub owner_email: String,
    #[schema(schema_with = assigned_at_value)]
    pub assigned_at: Option<String>,
}

/// One membership row of a distribution-list snapshot sent as JSON. A list's `name` and
/// `hidden` must agree on all its rows. Properties other than these are ignored; every value
/// is a string.
#[derive(Debug, ToSchema)]
pub struct ListRowJson {
    #[schema(schema_with = email_value)]
    pub list_email: String,
    #[schema(schema_with = text_value)]
    pub name: String,
    #[schema(schema_with = email_value)]
    pub member_email: String,
    #[schema(schema_with = role_value)]
    pub role: String,
    #[schema(schema_with = hidden_value)]
    pub hidden: Option<String>,
}

// The CSV bodies. Their `pattern` describes the documented column order and conservative
// values (each at most 80 characters, so at most 320 characters; plain emails; dates up to the
// 28th); the server also takes the same columns in any order, quoted fields and surrounding
// spaces. Rows are separated by LF or CRLF.
const CSV_TEXT: &str = r#"[^,"\s\u0085\u0000](?:[^,"\r\n\u0000]{0,78}[^,"\s\u0085\u0000])?"#;
const CSV_EMAIL: &str =
    r#"[^,"@\s\u0085\u0000]{1,24}@[^,"@\s\u0085.\u0000]{1,16}\.[^,"@\s\u0085.\u0000]{1,16}"#;
const CSV_DATE: &str = r"(?:[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8]))?";
const CSV_ROLE: &str = r"(?:member|owner)";
const CSV_BOOL: &str = r"(?:true|false|1|0|yes|no)?";

/// `^(?:HEADER(?:\r?\nROW)*|HEADER2(?:\r?\nROW2)*)(?:\r?\n)?$` for the header without and
/// with the optional column.
fn csv_pattern(header: &str, row: &[&str], optional: (&str, &str)) -> String {
    let row_with = [row, &[optional.1]].concat();
    format!(
        r"^(?:{header}(?:\r?\n{row})*|{header},{opt}(?:\r?\n{row_with})*)(?:\r?\n)?$",
        row = row.join(","),
        opt = optional.0,
        row_with = row_with.join(","),
    )
}

fn csv_schema(pattern: String, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(Some(1))
        .description(Some(description))
        .into()
}

/// `text/csv` body of `PUT /api/v1/assets`.
pub struct AssetsCsv;

impl utoipa::PartialSchema for AssetsCsv {
    fn schema() -> RefOr<Schema> {
        csv_schema(
            csv_pattern(
                "serial,model,owner_email",
                &[CSV_TEXT, CSV_TEXT, CSV_EMAIL],
                ("assigned_at", CSV_DATE),
            ),
            "A header row naming the columns serial, model, owner_email and optionally \
             assigned_at (YYYY-MM-DD), then one row per laptop; serials are unique",
        )
    }
}

impl ToSchema for AssetsCsv {}

/// `text/csv` body of `PUT /api/v1/distribution-lists`.
pub struct ListsCsv;

impl utoipa::PartialSchema for ListsCsv {
    fn schema() -> RefOr<Schema> {
        csv_schema(
            csv_pattern(
                "list_email,name,member_email,role",
                &[CSV_EMAIL, CSV_TEXT, CSV_EMAIL, CSV_ROLE],
                ("hidden", CSV_BOOL),
            ),
            "A header row naming the columns list_email, name, member_email, role (member or \
             owner) and optionally hidden (true/false), then one row per membership; a list's \
             name and hidden agree on all its rows, and no membership repeats",
        )
    }
}

impl ToSchema for ListsCsv {}

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
        description = "The internal portal's JSON API: the GitHub username directory, the data feeds and \
                       the repositories' traffic. \
                       Errors follow RFC 6750 for tokens and are {error, message} everywhere.",
        version = "1"
    ),
    paths(
        super::me,
        crate::directory::api::github_users,
        crate::directory::api::github_user,
        crate::directory::api::person,
        crate::directory::api::put_assets,
        crate::directory::api::put_lists,
        crate::repos::api::list,
        crate::repos::api::traffic,
        super::openapi_json,
    ),
    components(schemas(
        MeAnswer, GithubUsersPage, ListRef, PersonAnswer, ErrorBody, RowProblem, InvalidRows,
        IdentityJson, SnapshotOutcome, Counts, Feed, AssetRowJson, ListRowJson, AssetsCsv,
        ListsCsv, RepoItem, ReposPage, TrafficPoint, TrafficAnswer
    )),
    modifiers(&BearerScheme),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The document as served (OpenAPI 3.1).
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
