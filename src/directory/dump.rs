//! The whole directory as one JSON array (`/gh/search.json` without parameters), as the Flask
//! service's scripts read it. The directory changes only with a sync or a feed, while scripts
//! fetch it over and over: the array is built once per directory version (`store::versions`)
//! and then served as prepared bytes, with a strong `ETag` (a `304` for `If-None-Match`) and
//! gzip for clients that accept it. The first request of a version streams the rows as they
//! are read (memory and time to first byte stay small however large the directory), keeping
//! what it sent; that becomes the prepared answer if the directory did not change meanwhile.

use std::io::Write;
use std::sync::{Arc, PoisonError, RwLock};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::IdentityJson;
use super::search::{Page, SearchQuery};
use crate::state::AppState;
use crate::web::error::AppError;

/// Rows per query while streaming: memory stays flat at 100,000 rows, and each page is one
/// keyset index walk.
const STREAM_PAGE: u32 = 1000;

/// The prepared answer for one directory version.
pub struct Dump {
    version: i64,
    json: Bytes,
    gzip: Bytes,
    /// Strong: a hash of the JSON, so equal bytes have equal tags on every instance.
    etag: HeaderValue,
}

impl Dump {
    fn build(version: i64, json: Vec<u8>) -> std::io::Result<Dump> {
        use sha2::Digest;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json)?;
        let gzip = gz.finish()?;
        let hash = sha2::Sha256::digest(&json);
        let etag = HeaderValue::from_str(&format!("\"{}\"", hex::encode(&hash[..16])))
            .map_err(std::io::Error::other)?;
        Ok(Dump {
            version,
            json: Bytes::from(json),
            gzip: Bytes::from(gzip),
            etag,
        })
    }
}

/// The prepared answer of the newest version built so far.
#[derive(Default)]
pub struct DumpCache {
    current: RwLock<Option<Arc<Dump>>>,
}

impl DumpCache {
    fn get(&self, version: i64) -> Option<Arc<Dump>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|d| d.version == version)
            .cloned()
    }

    fn keep(&self, dump: Dump) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_none_or(|d| d.version < dump.version) {
            *current = Some(Arc::new(dump));
        }
    }
}

/// Every active row as one JSON array.
pub async fn serve(state: &AppState, headers: &HeaderMap) -> Result<Response, AppError> {
    let version = state.versions().await?.directory;
    Ok(match state.caches.dump.get(version) {
        Some(dump) => prepared(&dump, headers),
        None => stream_and_keep(state.clone(), version),
    })
}

fn prepared(dump: &Dump, headers: &HeaderMap) -> Response {
    let mut response = if matches_etag(headers, &dump.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        let mut r = Response::new(Body::from(dump.gzip.clone()));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Body::from(dump.json.clone()))
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, dump.etag.clone());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if response.status() == StatusCode::OK {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// Whether `If-None-Match` names this tag (or any, `*`). Tags compare weakly here, as RFC 9110
/// asks of `If-None-Match`: `W/"x"` matches `"x"`.
fn matches_etag(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
}

/// Whether `Accept-Encoding` accepts gzip: named (or `*`) with a quality above zero.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut any = None;
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default().to_ascii_lowercase();
        let quality = parts
            .find_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
            .unwrap_or(0.0);
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(quality > 0.0),
            "*" => any = Some(quality > 0.0),
            _ => {}
        }
    }
    gzip.or(any).unwrap_or(false)
}

/// The rows as they are read, in pages; what was sent is kept as the prepared answer when the
/// directory is still at `version` once the last row is out.
fn stream_and_keep(state: AppState, version: i64) -> Response {
    enum Step {
        First,
        After(super::search::Cursor),
        Done,
    }
    // The stream's state carries what was sent so far.
    let pages = futures::stream::unfold((Step::First, Vec::new()), move |(step, mut sent)| {
        let state = state.clone();
        async move {
            let (after, first) = match step {
                Step::Done => return None,
                Step::First => (None, true),
                Step::After(c) => (Some(c), false),
            };
            let query = SearchQuery {
                limit: STREAM_PAGE,
                after,
                ..SearchQuery::default()
            };
            let rows = match super::store::search_identities(&state.store.db(), &query).await {
                Ok(rows) => rows,
                // Headers are already sent: the only honest signal left is to break the
                // body, so the client sees a truncated response rather than a short array.
                Err(e) => {
                    tracing::error!(error = %e, "directory stream failed");
                    let broken = Err(std::io::Error::other(e.to_string()));
                    return Some((broken, (Step::Done, Vec::new())));
                }
            };
            let page = Page::from_rows(&query, rows);
            let mut out = String::with_capacity(page.rows.len() * 120 + 2);
            if first {
                out.push('[');
            } else if !page.rows.is_empty() {
                out.push(',');
            }
            let json: Vec<String> = page
                .rows
                .iter()
                .filter_map(|r| serde_json::to_string(&IdentityJson::from(r)).ok())
                .collect();
            out.push_str(&json.join(","));
            sent.extend_from_slice(out.as_bytes());
            let next = match page.next {
                Some(c) => Step::After(c),
                None => {
                    out.push(']');
                    sent.push(b']');
                    tokio::spawn(keep_if_current(state, version, std::mem::take(&mut sent)));
                    Step::Done
                }
            };
            Some((Ok::<_, std::io::Error>(out), (next, sent)))
        }
    });
    let mut response = Response::new(Body::from_stream(pages.boxed()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Keeps `json` as the answer for `version` if the directory is still at it: the pages were
/// read one query at a time, so a change committed meanwhile may be half in them.
async fn keep_if_current(state: AppState, version: i64, json: Vec<u8>) {
    match state.data_versions.refresh(&state.store.db()).await {
        Ok(now) if now.directory == version => {}
        Ok(_) => return,
        Err(error) => {
            tracing::warn!(%error, "cannot tell whether the directory changed; not keeping it");
            return;
        }
    }
    // Compressing a large directory takes a while: off the request threads.
    match tokio::task::spawn_blocking(move || Dump::build(version, json)).await {
        Ok(Ok(dump)) => state.caches.dump.keep(dump),
        Ok(Err(error)) => tracing::warn!(%error, "cannot prepare the directory's answer"),
        Err(error) => tracing::warn!(%error, "preparing the directory's answer failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn gzip_only_when_accepted_with_a_quality_above_zero() {
        let accepts = |v: &str| accepts_gzip(&headers(header::ACCEPT_ENCODING, v));
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(accepts("identity, *;q=0.1"));
        assert!(!accepts("gzip;q=0"));
        assert!(
            !accepts("gzip;q=0.0, *"),
            "gzip named, refused: * does not bring it back"
        );
        assert!(!accepts("br, deflate"));
        assert!(!accepts("gzip;q=nonsense"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn if_none_match_names_the_tag_any_tag_or_its_weak_form() {
        let etag = HeaderValue::from_static("\"abc\"");
        let matches = |v: &str| matches_etag(&headers(header::IF_NONE_MATCH, v), &etag);
        assert!(matches("\"abc\""));
        assert!(matches("\"x\", \"abc\""));
        assert!(matches("W/\"abc\""));
        assert!(matches("*"));
        assert!(!matches("\"abcd\""));
        assert!(!matches("abc"), "unquoted is another tag");
        assert!(!matches_etag(&HeaderMap::new(), &etag));
    }

    #[test]
    fn a_prepared_dump_keeps_only_newer_versions() {
        let cache = DumpCache::default();
        cache.keep(Dump::build(2, b"[2]".to_vec()).expect("build"));
        cache.keep(Dump::build(1, b"[1]".to_vec()).expect("build"));
        assert!(cache.get(1).is_none());
        let two = cache.get(2).expect("kept");
        assert_eq!(&two.json[..], b"[2]");
        let mut gunzip = flate2::read::GzDecoder::new(&two.gzip[..]);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut gunzip, &mut back).expect("gunzip");
        assert_eq!(back, "[2]");
    }
}
