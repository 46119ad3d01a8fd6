//! `/api/v1/…` handlers: thin, over the same query model and store as the pages.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::bearer::{Bearer, BearerError};
use crate::directory::search::{Page, SearchParams};
use crate::directory::{IdentityJson, normalize_email};
use crate::state::AppState;
use crate::web::routes::Route;

pub const READ: &str = "directory.read";

pub fn routes() -> Vec<Route> {
    vec![
        Route::new("/api/v1/me", &["GET"], get(me)),
        Route::new("/api/v1/github-users", &["GET"], get(github_users)),
        Route::new("/api/v1/github-users/{email}", &["GET"], get(github_user)),
        Route::new("/api/v1/people/{email}", &["GET"], get(person)),
    ]
}

/// The API's one error shape, `{error, message}`, for what is not a token problem.
pub enum ApiError {
    Bearer(BearerError),
    BadRequest(String),
    NotFound(String),
    Internal(String),
}

impl From<BearerError> for ApiError {
    fn from(e: BearerError) -> Self {
        ApiError::Bearer(e)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error, message) = match self {
            ApiError::Bearer(e) => return e.into_response(),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Something went wrong on our side.".to_string(),
                )
            }
        };
        (status, Json(json!({ "error": error, "message": message }))).into_response()
    }
}

/// Seed 002's `/secure-data`: what the token says.
async fn me(Bearer(token): Bearer) -> Json<Value> {
    Json(json!({
        "sub": token.sub,
        "client_id": token.client_id,
        "scopes": token.scopes,
        "claims": token.claims,
    }))
}

async fn github_users(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Query(params): Query<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    token.require(READ)?;
    let query = params.parse().map_err(ApiError::BadRequest)?;
    let page = Page::from_rows(&query, state.store.search_identities(&query).await?);
    let items: Vec<IdentityJson> = page.rows.iter().map(IdentityJson::from).collect();
    Ok(Json(json!({
        "items": items,
        "next_cursor": page.next.map(|c| c.encode()),
    })))
}

async fn github_user(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Path(email): Path<String>,
) -> Result<Json<IdentityJson>, ApiError> {
    token.require(READ)?;
    let email = normalize_email(&email);
    let facts = state.store.person_facts(&email).await?;
    facts
        .github
        .first()
        .map(|i| Json(IdentityJson::from(i)))
        .ok_or_else(|| ApiError::NotFound(format!("no GitHub user for {email}")))
}

async fn person(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    Path(email): Path<String>,
) -> Result<Json<Value>, ApiError> {
    token.require(READ)?;
    let email = normalize_email(&email);
    let facts = state.store.person_facts(&email).await?.for_coworker();
    if facts.is_empty() {
        return Err(ApiError::NotFound(format!("no one found for {email}")));
    }
    let lists = |ls: &[crate::directory::ListMembership]| -> Vec<Value> {
        ls.iter()
            .map(|l| json!({ "list_email": l.list_email, "name": l.name }))
            .collect()
    };
    Ok(Json(json!({
        "email": email,
        "github_usernames": facts.github.iter().map(|g| g.github_username.clone()).collect::<Vec<_>>(),
        "member_of": lists(&facts.member_of),
        "owner_of": lists(&facts.owner_of),
    })))
}
