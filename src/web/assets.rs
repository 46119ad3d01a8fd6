//! Self-hosted static assets, embedded in the binary (no CDN), served with a content hash as
//! ETag and a year-long cache: pages link them as `/static/NAME?v=HASH`, so a new build's
//! asset is a new URL and the long lifetime is safe.

use std::sync::LazyLock;

use super::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::error::AppError;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// Quoted strong ETag, e.g. `"3f2a…"`.
    pub etag: String,
    /// Link target for templates: `/static/NAME?v=HASH`.
    pub url: String,
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "gatehouse.css",
        "text/css; charset=utf-8",
        include_bytes!("../../static/gatehouse.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../static/favicon.svg"),
    ),
    (
        "search.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../static/search.js"),
    ),
];

pub static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, content_type, bytes)| {
            let hash = hex::encode(&Sha256::digest(bytes)[..8]);
            Asset {
                name,
                content_type,
                bytes,
                etag: format!("\"{hash}\""),
                url: format!("/static/{name}?v={hash}"),
            }
        })
        .collect()
});

pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The versioned URL of an embedded asset, for templates.
pub fn url(name: &str) -> &'static str {
    find(name).map_or("/static/missing", |a| a.url.as_str())
}

pub async fn serve_asset(
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let asset = find(&name).ok_or_else(AppError::not_found)?;
    let etag = HeaderValue::from_str(&asset.etag)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("asset etag: {e}")))?;
    let cache = HeaderValue::from_static("public, max-age=31536000, immutable");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag), (header::CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache),
        ],
        asset.bytes,
    )
        .into_response())
}
