//! The directory's JSON API (`/api/v1/github-users`, `/people`, the feed snapshots): thin
//! handlers over the same query model, store and import code as the pages and the CLI.

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use axum::routing::{get, put};
use serde_json::{Value, json};

use crate::api::doc::{ErrorBody, GithubUsersPage, InvalidRows, ListRef, PersonAnswer};
use crate::auth::bearer::{AccessToken, Bearer};
use crate::directory::feeds::SnapshotOutcome;
use crate::directory::search::{Page, SearchParams};
use crate::directory::{IdentityJson, could_be_email, normalize_email};
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::extract::{Body, Path, Query};
use crate::web::routes::Route;

pub const READ: &str = "directory.read";
pub const WRITE: &str = "directory.write";

/// Largest snapshot body: 100,000 rows of a feed fit many times over.
const MAX_SNAPSHOT_BYTES: usize = 64 * 1024 * 1024;

pub fn routes() -> Vec<Route> {
    vec![
        Route::api("/api/v1/github-users", &["GET"], get(github_users)),
        Route::api("/api/v1/github-users/{email}", &["GET"], get(github_user)),
        Route::api("/api/v1/people/{email}", &["GET"], get(person)),
        Route::api(
            "/api/v1/assets",
            &["PUT"],
            put(put_assets).layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES)),
        ),
        Route::api(
            "/api/v1/distribution-lists",
            &["PUT"],
            put(put_lists).layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BYTES)),
        ),
    ]
}

/// A token allowed to write: the `directory.write` scope and a client that may write. An
/// argument before the body, so a token that may not write is refused from the request's
/// head alone; checked after buffering, any valid token could make the server read and hold
/// up to 64 MiB per request before being told no.
pub struct Writer(pub std::sync::Arc<AccessToken>);

impl FromRequestParts<AppState> for Writer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let Bearer(token) = Bearer::from_request_parts(parts, state).await?;
        token.require(WRITE)?;
        state.api.writers.allow(&token)?;
        Ok(Writer(token))
    }
}

/// A snapshot with bad rows: 422, each row with its line (CSV) or index (JSON).
fn invalid_rows(rows: Vec<crate::directory::feeds::RowError>) -> AppError {
    AppError::Detailed {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        code: "invalid_rows",
        message: format!("{} row(s) are invalid; nothing was changed", rows.len()),
        details: json!({ "rows": rows }),
    }
}

/// A snapshot the removal guard refused: 409 with the counts.
fn refused(outcome: SnapshotOutcome) -> AppError {
    AppError::Detailed {
        status: axum::http::StatusCode::CONFLICT,
        code: "refused",
        message: outcome.refused.clone().unwrap_or_default(),
        details: json!(outcome),
    }
}

/// The GitHub username directory, one page (scope `directory.read`).
#[utoipa::path(get, path = "/api/v1/github-users", tag = "directory",
    params(
        ("q" = Option<String>, Query, max_length = 200, pattern = "^[^\\u0000]*$",
            description = "Case-insensitive substring of name, email or GitHub username; at most 200 characters once trimmed, no NUL"),
        ("limit" = inline(Option<crate::api::doc::PageLimit>), Query, description = "Rows per page, 1 to 200; default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]*$",
            description = "Opaque: the `next_cursor` of the previous page, valid only with the same `sort`; any other is a 400"),
        ("sort" = inline(Option<crate::api::doc::DirectorySort>), Query,
            description = "name, email, github_username or last_pull_date, with a leading - for descending; default name"),
        ("include_departed" = inline(Option<crate::api::doc::IncludeDeparted>), Query,
            description = "1, true or yes to include people who left; 0, false, no or empty (the default) not to"),
    ),
    responses(
        (status = 200, description = "A page", body = GithubUsersPage),
        (status = 400, description = "A bad parameter, named (also a repeated one)", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token lacks directory.read", body = ErrorBody),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn github_users(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Query(params): Query<SearchParams>,
) -> Result<Json<GithubUsersPage>, AppError> {
    token.require(READ)?;
    let query = params.parse().map_err(AppError::BadRequest)?;
    let page = Page::from_rows(&query, state.directory().await?.search(&query));
    Ok(Json(GithubUsersPage {
        items: page.rows.iter().map(IdentityJson::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// One person's GitHub row, by work email (case-insensitive; scope `directory.read`).
#[utoipa::path(get, path = "/api/v1/github-users/{email}", tag = "directory",
    params(("email" = String, Path, min_length = 1, example = "ada.lindqvist@example.com",
        description = "Work email (any string: one that is no one's is a 404)")),
    responses(
        (status = 400, description = "The address is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 200, description = "The row", body = IdentityJson),
        (status = 404, description = "No GitHub user for that email", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token lacks directory.read", body = ErrorBody),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn github_user(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Path(email): Path<String>,
) -> Result<Json<IdentityJson>, AppError> {
    token.require(READ)?;
    let email = normalize_email(&email);
    if !could_be_email(&email) {
        return Err(AppError::NotFound(format!("no GitHub user for {email:?}")));
    }
    let facts = crate::directory::store::person_facts(&state.store.db(), &email).await?;
    facts
        .github
        .first()
        .map(|i| Json(IdentityJson::from(i)))
        .ok_or_else(|| AppError::NotFound(format!("no GitHub user for {email}")))
}

/// What a coworker may know: GitHub usernames and non-hidden lists (scope `directory.read`).
#[utoipa::path(get, path = "/api/v1/people/{email}", tag = "directory",
    params(("email" = String, Path, min_length = 1, example = "ada.lindqvist@example.com",
        description = "Work email (any string: one that is no one's is a 404)")),
    responses(
        (status = 400, description = "The address is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 200, description = "The person", body = PersonAnswer),
        (status = 404, description = "No one found", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token lacks directory.read", body = ErrorBody),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn person(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Path(email): Path<String>,
) -> Result<Json<PersonAnswer>, AppError> {
    token.require(READ)?;
    let email = normalize_email(&email);
    if !could_be_email(&email) {
        return Err(AppError::NotFound(format!("no one found for {email:?}")));
    }
    let facts = crate::directory::store::person_facts(&state.store.db(), &email)
        .await?
        .for_coworker();
    if facts.is_empty() {
        return Err(AppError::NotFound(format!("no one found for {email}")));
    }
    let lists = |ls: &[crate::directory::ListMembership]| -> Vec<ListRef> {
        ls.iter()
            .map(|l| ListRef {
                list_email: l.list_email.clone(),
                name: l.name.clone(),
            })
            .collect()
    };
    Ok(Json(PersonAnswer {
        github_usernames: facts
            .github
            .iter()
            .map(|g| g.github_username.clone())
            .collect(),
        member_of: lists(&facts.member_of),
        owner_of: lists(&facts.owner_of),
        email,
    }))
}

#[derive(Debug, serde::Deserialize)]
pub struct SnapshotParams {
    dry_run: Option<String>,
    force: Option<String>,
}

/// A yes/no query parameter. Anything else is refused: a misspelt `dry_run=Ture` must not
/// apply a snapshot for real.
fn flag(v: Option<&String>, name: &str) -> Result<bool, AppError> {
    match v.map(String::as_str) {
        None | Some("" | "0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(other) => Err(AppError::BadRequest(format!(
            "{name}: 1, true or yes; 0, false or no (not {other:?})"
        ))),
    }
}

/// The rows of a snapshot body: CSV (`text/csv`, the import's columns) or a JSON array of
/// objects with the same names.
fn snapshot_from(
    feed: crate::directory::feeds::Feed,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<crate::directory::import::Snapshot, AppError> {
    use crate::directory::feeds::{Feed, Position, RawAsset, RawListRow, RowError};
    use crate::directory::import::Snapshot;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("text/csv") {
        return Snapshot::from_csv(feed, body).map_err(invalid_rows);
    }
    if !content_type.starts_with("application/json") {
        return Err(AppError::BadRequest(
            "send text/csv or application/json (an array of row objects)".into(),
        ));
    }
    let malformed = |e: serde_json::Error| {
        invalid_rows(vec![RowError {
            at: Position::Index(0),
            reason: format!("not a JSON array of row objects: {e}"),
        }])
    };
    let indexed = |n: usize| Position::Index(n);
    match feed {
        Feed::Assets => {
            let rows: Vec<RawAsset> = serde_json::from_slice(body).map_err(malformed)?;
            let rows = rows
                .into_iter()
                .enumerate()
                .map(|(i, r)| (indexed(i), r))
                .collect();
            crate::directory::feeds::validate_assets(rows)
                .map(Snapshot::Assets)
                .map_err(invalid_rows)
        }
        Feed::DistributionLists => {
            let rows: Vec<RawListRow> = serde_json::from_slice(body).map_err(malformed)?;
            let rows = rows
                .into_iter()
                .enumerate()
                .map(|(i, r)| (indexed(i), r))
                .collect();
            crate::directory::feeds::validate_lists(rows)
                .map(Snapshot::Lists)
                .map_err(invalid_rows)
        }
    }
}

/// One snapshot request, as the two PUT handlers hand it on.
struct SnapshotRequest {
    token: std::sync::Arc<AccessToken>,
    params: SnapshotParams,
    peer: std::net::SocketAddr,
    headers: HeaderMap,
    body: axum::body::Bytes,
}

async fn put_snapshot(
    state: AppState,
    feed: crate::directory::feeds::Feed,
    req: SnapshotRequest,
) -> Result<Json<Value>, AppError> {
    let SnapshotRequest {
        token,
        params,
        peer,
        headers,
        body,
    } = req;
    use crate::directory::feeds::SnapshotLimits;
    use crate::directory::import::{Source, apply};
    let snapshot = snapshot_from(feed, &headers, &body)?;
    let limits = SnapshotLimits {
        max_removed_share: state.config.sync_max_departed,
        force: flag(params.force.as_ref(), "force")?,
        dry_run: flag(params.dry_run.as_ref(), "dry_run")?,
    };
    let actor = format!("api ({})", token.principal());
    let source = Source {
        via: "api",
        actor: &actor,
        actor_id: None,
        client_ip: crate::web::client_ip::client_ip(
            Some(peer),
            &headers,
            &state.config.trusted_proxies,
        )
        .map(|ip| ip.to_string()),
    };
    let outcome = apply(state.store.as_ref(), &snapshot, &limits, &source).await?;
    if outcome.refused.is_some() {
        return Err(refused(outcome));
    }
    Ok(Json(json!(outcome)))
}

/// Replaces the laptops (serial,model,owner_email[,assigned_at]) with a full snapshot (scope `directory.write`).
#[utoipa::path(put, path = "/api/v1/assets", tag = "feeds",
    params(
        ("dry_run" = inline(Option<crate::api::doc::YesNo>), Query,
            description = "1, true or yes: report what would change, change nothing; 0, false, no, empty or none: apply; anything else is refused (400)"),
        ("force" = inline(Option<crate::api::doc::YesNo>), Query,
            description = "1, true or yes: apply even past the removal guard; 0, false, no, empty or none: do not; anything else is refused (400)"),
    ),
    request_body(description = "The whole feed: CSV with a header row, or a JSON array of row objects with the same names",
        content((crate::api::doc::AssetsCsv = "text/csv"), (Vec<crate::api::doc::AssetRowJson> = "application/json"))),
    responses(
        (status = 200, description = "Applied (or, dry, would apply)", body = SnapshotOutcome),
        (status = 400, description = "Neither CSV nor JSON, or a malformed query string", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token lacks directory.write, or its client may not write: writes need GATEHOUSE_API_CLIENT_IDS to name it", body = ErrorBody),
        (status = 409, description = "Refused: it would remove more than GATEHOUSE_SYNC_MAX_DEPARTED of the rows", body = SnapshotOutcome),
        (status = 413, description = "The body is larger than 64 MiB", body = ErrorBody),
        (status = 422, description = "Bad rows, each named; nothing changed", body = InvalidRows),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn put_assets(
    State(state): State<AppState>,
    Writer(token): Writer,
    Query(params): Query<SnapshotParams>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<Value>, AppError> {
    let feed = crate::directory::feeds::Feed::Assets;
    let req = SnapshotRequest {
        token,
        params,
        peer,
        headers,
        body,
    };
    put_snapshot(state, feed, req).await
}

/// Replaces the distribution lists (list_email,name,member_email,role[,hidden]) with a full snapshot (scope `directory.write`).
#[utoipa::path(put, path = "/api/v1/distribution-lists", tag = "feeds",
    params(
        ("dry_run" = inline(Option<crate::api::doc::YesNo>), Query,
            description = "1, true or yes: report what would change, change nothing; 0, false, no, empty or none: apply; anything else is refused (400)"),
        ("force" = inline(Option<crate::api::doc::YesNo>), Query,
            description = "1, true or yes: apply even past the removal guard; 0, false, no, empty or none: do not; anything else is refused (400)"),
    ),
    request_body(description = "The whole feed: CSV with a header row, or a JSON array of row objects with the same names",
        content((crate::api::doc::ListsCsv = "text/csv"), (Vec<crate::api::doc::ListRowJson> = "application/json"))),
    responses(
        (status = 200, description = "Applied (or, dry, would apply)", body = SnapshotOutcome),
        (status = 400, description = "Neither CSV nor JSON, or a malformed query string", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token lacks directory.write, or its client may not write: writes need GATEHOUSE_API_CLIENT_IDS to name it", body = ErrorBody),
        (status = 409, description = "Refused: it would remove more than GATEHOUSE_SYNC_MAX_DEPARTED of the rows", body = SnapshotOutcome),
        (status = 413, description = "The body is larger than 64 MiB", body = ErrorBody),
        (status = 422, description = "Bad rows, each named; nothing changed", body = InvalidRows),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn put_lists(
    State(state): State<AppState>,
    Writer(token): Writer,
    Query(params): Query<SnapshotParams>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Json<Value>, AppError> {
    let feed = crate::directory::feeds::Feed::DistributionLists;
    let req = SnapshotRequest {
        token,
        params,
        peer,
        headers,
        body,
    };
    put_snapshot(state, feed, req).await
}
