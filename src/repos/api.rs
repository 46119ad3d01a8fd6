//! The repositories' JSON API (`/api/v1/repos`, `/api/v1/repos/{name}/traffic`): the same
//! access rule, queries and parameters as the pages, answered as JSON.
//!
//! Who a token speaks for decides what it sees. A machine token (client credentials: no
//! `sub`, or a `sub` that is its own client id, as Okta sets it) sees every repository; a
//! user token sees what that user sees when signed in, the user being the account that
//! signed in at the token's issuer with the token's `sub` — or with its `uid`: Okta's access
//! tokens carry the login as `sub` and the user id (the ID token's `sub`) as `uid`. A user
//! token for someone who never signed in is refused with a 403 that says so: their roles
//! (and admin groups) are unknown.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::Deserialize;

use super::model::{ListQuery, SeriesParams};
use super::{RepoAccess, access_with, org, store};
use crate::api::doc::{ErrorBody, RepoItem, ReposPage, TrafficAnswer, TrafficPoint};
use crate::auth::bearer::{AccessToken, Bearer};
use crate::state::AppState;
use crate::web::error::AppError;
use crate::web::extract::{Path, Query};
use crate::web::routes::Route;

pub const READ: &str = "repos.read";

/// Rows per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

pub fn routes() -> Vec<Route> {
    vec![
        Route::api("/api/v1/repos", &["GET"], get(list)),
        Route::api("/api/v1/repos/{name}/traffic", &["GET"], get(traffic)),
    ]
}

/// Whether the token is a client's own (client credentials) rather than a user's.
fn is_machine(token: &AccessToken) -> bool {
    match (&token.sub, &token.client_id) {
        (None, _) => true,
        (Some(sub), Some(client)) => sub == client,
        (Some(_), None) => false,
    }
}

/// Okta's `uid` claim of an access token: the user's id, which is the `sub` of their ID
/// token.
fn okta_uid(token: &AccessToken) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Uid {
        uid: Option<String>,
    }
    serde_json::from_str::<Uid>(token.claims.get()).ok()?.uid
}

/// What the token may see, worked out once per request.
async fn access_of(state: &AppState, token: &AccessToken) -> Result<RepoAccess, AppError> {
    if is_machine(token) {
        return Ok(RepoAccess::All);
    }
    let db = state.store.db();
    let sub = token.sub.as_deref().unwrap_or_default();
    let mut user = crate::auth::users::by_subject(&db, &token.issuer, sub).await?;
    if user.is_none()
        && let Some(uid) = okta_uid(token)
    {
        user = crate::auth::users::by_subject(&db, &token.issuer, &uid).await?;
    }
    let user = user.ok_or_else(|| {
        AppError::Forbidden(
            "the token is a user's whom Gatehouse does not know yet: repository access \
                 comes from that user's roles, known once they have signed in"
                .into(),
        )
    })?;
    Ok(access_with(state, state.versions().await?, &user).await?)
}

/// The list's query string as sent.
#[derive(Debug, Default, Deserialize)]
pub struct ApiListParams {
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// Where the next page starts: the last row's lower-case name and id, opaque to clients.
fn encode_cursor(name: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::json!([name, id]).to_string())
}

fn decode_cursor(raw: &str) -> Option<(String, i64)> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    serde_json::from_slice::<(String, i64)>(&bytes).ok()
}

/// What a list request asks for: the search, the page size, and where the page starts.
#[derive(Debug)]
struct ApiListQuery {
    query: ListQuery,
    limit: i64,
    after: Option<(String, i64)>,
}

impl ApiListParams {
    /// The request, or which parameter is wrong and why.
    fn parse(&self) -> Result<ApiListQuery, String> {
        let query = super::model::ListParams {
            q: self.q.clone(),
            ..Default::default()
        }
        .parse()?;
        let limit = match self.limit.as_deref() {
            None | Some("") => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_LIMIT).contains(n))
                .ok_or_else(|| format!("limit must be a whole number from 1 to {MAX_LIMIT}"))?,
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => Some(
                decode_cursor(raw)
                    .ok_or_else(|| "cursor is not one this server handed out".to_string())?,
            ),
        };
        Ok(ApiListQuery {
            query,
            limit,
            after,
        })
    }
}

/// The organization's repositories the caller may see, by name (scope `repos.read`).
#[utoipa::path(get, path = "/api/v1/repos", tag = "repos",
    params(
        ("q" = Option<String>, Query, max_length = 100, pattern = "^[^\\u0000]*$",
            description = "Case-insensitive substring of the name or description; at most 100 characters once trimmed, no NUL"),
        ("limit" = inline(Option<crate::api::doc::PageLimit>), Query, description = "Rows per page, 1 to 200; default 50"),
        ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]*$",
            description = "Opaque: the `next_cursor` of the previous page; any other is a 400"),
    ),
    responses(
        (status = 200, description = "A page, by name", body = ReposPage),
        (status = 400, description = "A bad parameter, named (also a repeated one)", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token lacks repos.read, or is a user's who has never signed in", body = ErrorBody),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Query(params): Query<ApiListParams>,
) -> Result<Json<ReposPage>, AppError> {
    token.require(READ)?;
    let ApiListQuery {
        query,
        limit,
        after,
    } = params.parse().map_err(AppError::BadRequest)?;
    let access = access_of(&state, &token).await?;
    let likes = access.like_patterns(org(&state));
    let paging = store::Paging::After {
        after: after.as_ref().map(|(name, id)| (name.as_str(), *id)),
        limit: limit + 1,
    };
    let today = Utc::now().date_naive();
    let mut rows = store::list(&state.store.db(), likes.as_deref(), &query, paging, today).await?;
    // One row more than asked for says whether a next page exists.
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = rows
        .last()
        .filter(|_| more)
        .map(|last| encode_cursor(&last.name.to_ascii_lowercase(), last.id));
    let full = |name: &str| match org(&state) {
        "" => name.to_string(),
        org => format!("{org}/{name}"),
    };
    let items = rows
        .into_iter()
        .map(|r| RepoItem {
            full_name: full(&r.name),
            private: r.visibility != "public",
            name: r.name,
            description: r.description,
            archived: r.archived,
            removed: r.removed,
            html_url: r.html_url,
            stars: r.stars,
            views_14d: r.views_14d,
            unique_views_14d: r.unique_views_14d,
            clones_14d: r.clones_14d,
            unique_clones_14d: r.unique_clones_14d,
            last_synced_at: r.synced_at,
        })
        .collect();
    Ok(Json(ReposPage { items, next_cursor }))
}

/// One repository's views and clones per day, week (from Monday) or month, dates in UTC
/// (scope `repos.read`). A repository the caller may not see is a 404, like an unknown one.
#[utoipa::path(get, path = "/api/v1/repos/{name}/traffic", tag = "repos",
    params(
        ("name" = String, Path, min_length = 1, example = "web-storefront",
            description = "The repository's name, without the organization (case-insensitive)"),
        ("range" = inline(Option<crate::api::doc::TrafficRange>), Query,
            description = "14d, 90d, 1y or all, ending today (UTC); default 90d. Not with from/to"),
        ("from" = inline(Option<crate::api::doc::DayOrEmpty>), Query,
            description = "First day, YYYY-MM-DD (UTC, inclusive); without it, the first day recorded"),
        ("to" = inline(Option<crate::api::doc::DayOrEmpty>), Query,
            description = "Last day, YYYY-MM-DD (UTC, inclusive); default today"),
        ("granularity" = inline(Option<crate::api::doc::TrafficGranularity>), Query,
            description = "day, week (from Monday) or month; default day"),
    ),
    responses(
        (status = 200, description = "The series; periods without traffic are left out", body = TrafficAnswer),
        (status = 400, description = "A bad parameter, named (also a repeated one)", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "The token lacks repos.read, or is a user's who has never signed in", body = ErrorBody),
        (status = 404, description = "No such repository, or one the caller may not see", body = ErrorBody),
        (status = 429, description = "Past the rate limit (rule api); Retry-After says when to come back", body = ErrorBody),
    ))]
pub async fn traffic(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Path(name): Path<String>,
    Query(params): Query<SeriesParams>,
) -> Result<Json<TrafficAnswer>, AppError> {
    token.require(READ)?;
    let access = access_of(&state, &token).await?;
    let (repo, query, points) =
        super::detail::visible_series(&state, &access, &name, &params).await?;
    Ok(Json(TrafficAnswer {
        repo: repo.name,
        granularity: query.granularity.param().to_string(),
        from: query.from,
        to: query.to,
        points: points
            .into_iter()
            .map(|p| TrafficPoint {
                date: p.period,
                views: p.views,
                unique_views: p.unique_views,
                clones: p.clones,
                unique_clones: p.unique_clones,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token(sub: Option<&str>, client: Option<&str>) -> AccessToken {
        AccessToken {
            issuer: "https://idp.example.com".into(),
            sub: sub.map(str::to_string),
            client_id: client.map(str::to_string),
            scopes: vec![READ.into()],
            claims: serde_json::value::to_raw_value(&json!({})).expect("json"),
        }
    }

    #[test]
    fn a_token_is_a_machine_only_when_it_names_no_one_else() {
        assert!(is_machine(&token(None, Some("svc"))));
        assert!(is_machine(&token(Some("svc"), Some("svc"))), "Okta's form");
        assert!(!is_machine(&token(Some("bob"), Some("svc"))));
        assert!(!is_machine(&token(Some("bob"), None)));
    }

    #[test]
    fn cursors_round_trip_and_others_are_refused() {
        let c = encode_cursor("web-shop", 42);
        assert_eq!(decode_cursor(&c), Some(("web-shop".into(), 42)));
        for bad in ["", "x", "W10", "eyJhIjoxfQ", "!!"] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
        let p = |limit: Option<&str>, cursor: Option<&str>| ApiListParams {
            q: None,
            limit: limit.map(str::to_string),
            cursor: cursor.map(str::to_string),
        };
        assert_eq!(
            p(None, None).parse().expect("defaults").limit,
            DEFAULT_LIMIT
        );
        for (bad, name) in [
            (p(Some("0"), None), "limit"),
            (p(Some("201"), None), "limit"),
            (p(Some("ten"), None), "limit"),
            (p(None, Some("abc")), "cursor"),
        ] {
            let err = bad.parse().expect_err("refused");
            assert!(err.starts_with(name), "{err}");
        }
    }
}
