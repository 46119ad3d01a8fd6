//! The whole directory as one JSON array (`/gh/search.json` without parameters), as the Flask
//! service's scripts read it. The directory changes only with a sync or a feed, while scripts
//! fetch it over and over: the array is built once per directory version (`store::versions`)
//! and then served as prepared bytes, with a strong `ETag` (a `304` for `If-None-Match`) and
//! brotli or gzip for clients that accept them. The rows come from the in-memory index (`super::index`),
//! which holds exactly one version, so what is kept is never half of two versions.

use std::io::Write;
use std::sync::{Arc, PoisonError, RwLock};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::IdentityJson;
use crate::state::AppState;
use crate::web::error::AppError;

/// The prepared answer for one directory version.
pub struct Dump {
    version: i64,
    json: Bytes,
    gzip: Bytes,
    br: Bytes,
    /// Strong: a hash of the JSON, so equal bytes have equal tags on every instance.
    etag: HeaderValue,
}

impl Dump {
    fn build(version: i64, json: Bytes, etag: HeaderValue) -> std::io::Result<Dump> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&json)?;
        let gzip = gz.finish()?;
        let mut br = Vec::new();
        // Quality 5: within a few percent of the best for JSON at a fraction of its time
        // (the dump of 100,000 people is 15 MB, compressed once per directory version).
        let params = brotli::enc::BrotliEncoderParams {
            quality: 5,
            lgwin: 22,
            ..Default::default()
        };
        brotli::BrotliCompress(&mut &json[..], &mut br, &params)?;
        Ok(Dump {
            version,
            json,
            gzip: Bytes::from(gzip),
            br: Bytes::from(br),
            etag,
        })
    }
}

/// Strong: a hash of the JSON, so equal bytes have equal tags on every instance.
fn etag_of(json: &[u8]) -> HeaderValue {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(json);
    // Hex digits in quotes: always a valid header value.
    HeaderValue::from_str(&format!("\"{}\"", hex::encode(&hash[..16])))
        .unwrap_or_else(|_| HeaderValue::from_static("\"\""))
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
        None => build_and_keep(state, headers).await?,
    })
}

fn prepared(dump: &Dump, headers: &HeaderMap) -> Response {
    answer(&dump.json, Some(dump), &dump.etag, headers)
}

/// A 304 when the client holds these bytes, else the bytes (compressed when there are
/// compressed copies and the client accepts one).
fn answer(json: &Bytes, dump: Option<&Dump>, etag: &HeaderValue, headers: &HeaderMap) -> Response {
    let compressed = dump.and_then(|d| match coding(headers) {
        Some(Coding::Br) => Some((&d.br, "br")),
        Some(Coding::Gzip) => Some((&d.gzip, "gzip")),
        None => None,
    });
    let mut response = if matches_etag(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some((bytes, name)) = compressed {
        let mut r = Response::new(Body::from(bytes.clone()));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(name));
        r
    } else {
        Response::new(Body::from(json.clone()))
    };
    let ok = response.status() == StatusCode::OK;
    let h = response.headers_mut();
    h.insert(header::ETAG, etag.clone());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if ok {
        h.insert(
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Br,
    Gzip,
}

/// The coding to answer with: brotli or gzip, whichever `Accept-Encoding` gives the higher
/// quality (named, or through `*`; brotli on a tie, being the smaller), none when neither is
/// accepted with a quality above zero.
fn coding(headers: &HeaderMap) -> Option<Coding> {
    let mut br = None;
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
            "br" => br = Some(quality),
            "gzip" | "x-gzip" => gzip = Some(quality),
            "*" => any = Some(quality),
            _ => {}
        }
    }
    let br = br.or(any).unwrap_or(0.0);
    let gzip = gzip.or(any).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Some(Coding::Br)
    } else if gzip > 0.0 {
        Some(Coding::Gzip)
    } else {
        None
    }
}

/// The whole directory from the in-memory index: serialised off the request threads and sent,
/// then compressed and kept for the requests that follow.
async fn build_and_keep(state: &AppState, headers: &HeaderMap) -> Result<Response, AppError> {
    let index = state.directory().await?;
    let version = index.version();
    let (json, etag) = tokio::task::spawn_blocking(move || {
        let rows: Vec<IdentityJson> = index.active_by_name().map(IdentityJson::from).collect();
        serde_json::to_vec(&rows).map(|json| {
            let etag = etag_of(&json);
            (Bytes::from(json), etag)
        })
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("serialising the directory: {e}")))?
    .map_err(|e| AppError::Internal(anyhow::anyhow!("serialising the directory: {e}")))?;
    let (keep, tag) = (json.clone(), etag.clone());
    let cache = state.clone();
    // Compressing a large directory takes a while: the first client need not wait for it.
    tokio::task::spawn_blocking(move || match Dump::build(version, keep, tag) {
        Ok(dump) => cache.caches.dump.keep(dump),
        Err(error) => tracing::warn!(%error, "cannot prepare the directory's answer"),
    });
    Ok(answer(&json, None, &etag, headers))
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
    fn a_coding_only_when_accepted_with_a_quality_above_zero_the_higher_one_first() {
        let pick = |v: &str| coding(&headers(header::ACCEPT_ENCODING, v));
        assert_eq!(pick("gzip"), Some(Coding::Gzip));
        assert_eq!(pick("br"), Some(Coding::Br));
        assert_eq!(pick("gzip, deflate, br"), Some(Coding::Br), "a tie: brotli");
        assert_eq!(pick("br;q=0.4, GZIP;q=0.5"), Some(Coding::Gzip));
        assert_eq!(pick("*"), Some(Coding::Br));
        assert_eq!(pick("identity, *;q=0.1"), Some(Coding::Br));
        assert_eq!(pick("br;q=0, gzip"), Some(Coding::Gzip));
        assert_eq!(pick("gzip;q=0"), None);
        assert_eq!(
            pick("gzip;q=0.0, br;q=0, *"),
            None,
            "both named, refused: * does not bring them back"
        );
        assert_eq!(pick("deflate"), None);
        assert_eq!(pick("gzip;q=nonsense"), None);
        assert_eq!(coding(&HeaderMap::new()), None);
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
        cache.keep(Dump::build(2, Bytes::from_static(b"[2]"), etag_of(b"[2]")).expect("build"));
        cache.keep(Dump::build(1, Bytes::from_static(b"[1]"), etag_of(b"[1]")).expect("build"));
        assert!(cache.get(1).is_none());
        let two = cache.get(2).expect("kept");
        assert_eq!(&two.json[..], b"[2]");
        let mut gunzip = flate2::read::GzDecoder::new(&two.gzip[..]);
        let mut back = String::new();
        std::io::Read::read_to_string(&mut gunzip, &mut back).expect("gunzip");
        assert_eq!(back, "[2]");
        let mut unbrotli = Vec::new();
        brotli::BrotliDecompress(&mut &two.br[..], &mut unbrotli).expect("brotli");
        assert_eq!(unbrotli, b"[2]");
    }
}
