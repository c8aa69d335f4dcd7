//! The browser inbox: hand-written HTML, CSS and ES modules from `web/`, embedded in the binary
//! (no Node toolchain to build lanbox, nothing fetched from the internet at run time) and served
//! at `/` and `/assets/{version}/...`.
//!
//! Caching: `version` is a hash of every asset, computed once when the router is built, so the
//! asset URLs change whenever any asset does. Assets under the current version are answered
//! `immutable`; the page itself is `no-cache` with an `ETag`, so a browser revalidates it (a
//! `304` costs one round trip) and picks up a new version right after an update. A request for
//! another version (a page loaded before an update) gets today's bytes, uncached.
//!
//! Every page and asset carries a strict Content-Security-Policy: scripts, styles, fonts and
//! images only from the box itself, no inline script, connections only to the box (HTTPS and
//! its WebSocket).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! assets {
    ($($path:literal => $ctype:expr),* $(,)?) => {
        const ASSETS: &[Asset] = &[$(Asset {
            path: $path,
            content_type: $ctype,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }),*];
    };
}

const JS: &str = "text/javascript; charset=utf-8";

assets! {
    "app.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "js/api.js" => JS,
    "js/app.js" => JS,
    "js/canned.js" => JS,
    "js/compose.js" => JS,
    "js/contact.js" => JS,
    "js/convo.js" => JS,
    "js/dom.js" => JS,
    "js/inbox.js" => JS,
    "js/live.js" => JS,
    "js/render.js" => JS,
    "js/reports.js" => JS,
    "js/search.js" => JS,
    "js/settings.js" => JS,
    "js/setup.js" => JS,
    "js/team.js" => JS,
    "js/unlock.js" => JS,
    "js/userlogin.js" => JS,
}

/// The page, with `{{V}}` where the asset version goes.
const INDEX: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html"));

/// The embedded files, ready to serve.
pub struct Web {
    version: String,
    index: String,
    index_etag: String,
}

impl Web {
    pub fn new() -> Web {
        let mut h = blake3::Hasher::new();
        for a in ASSETS {
            h.update(a.path.as_bytes());
            h.update(&(a.body.len() as u64).to_le_bytes());
            h.update(a.body);
        }
        let version = h.finalize().to_hex()[..16].to_string();
        let index = INDEX.replace("{{V}}", &version);
        let index_etag = format!("\"{}\"", &blake3::hash(index.as_bytes()).to_hex()[..16]);
        Web {
            version,
            index,
            index_etag,
        }
    }

    /// The current asset version (the `{version}` of asset URLs).
    pub fn version(&self) -> &str {
        &self.version
    }
}

impl Default for Web {
    fn default() -> Self {
        Web::new()
    }
}

/// The Content-Security-Policy of the pages: the box and nothing else. `connect-src` names the
/// WebSocket origin explicitly (`wss://` + the host the browser used) for browsers whose
/// `'self'` does not cover it; a `Host` that is not a plain host name is left out.
fn csp(headers: &HeaderMap) -> HeaderValue {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        });
    let ws = host.map(|h| format!(" wss://{h}")).unwrap_or_default();
    let v = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
         media-src 'self' blob:; font-src 'self'; connect-src 'self'{ws}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

fn page_headers(res: &mut Response, req: &HeaderMap) {
    let h = res.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, csp(req));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

async fn index(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == web.index_etag));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            web.index.clone(),
        )
            .into_response()
    };
    page_headers(&mut res, &headers);
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&web.index_etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

async fn asset(
    State(web): State<Arc<Web>>,
    Path((version, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "no such asset",
        )
            .into_response();
    };
    let cache = if version == web.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut res = (
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        a.body,
    )
        .into_response();
    page_headers(&mut res, &headers);
    res
}

/// `/` and `/assets/{version}/{path}`, for merging into the API's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let web = Arc::new(Web::new());
    Router::new()
        .route("/", get(index))
        .route("/assets/{version}/{*path}", get(asset))
        .with_state(web)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let web = Web::new();
        let prefix = format!("/assets/{}/", web.version());
        let mut named = 0;
        for part in web.index.split(&prefix).skip(1) {
            let path = &part[..part.find('"').unwrap()];
            assert!(ASSETS.iter().any(|a| a.path == path), "{path} is not embedded");
            named += 1;
        }
        assert!(named >= 2, "the page links its stylesheet and script");
        assert!(!web.index.contains("{{V}}"));
    }

    #[test]
    fn module_imports_resolve_to_embedded_assets() {
        for a in ASSETS.iter().filter(|a| a.content_type == JS) {
            let text = std::str::from_utf8(a.body).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let Some(start) = line.find("'./") else { continue };
                let rest = &line[start + 3..];
                let name = &rest[..rest.find('\'').unwrap()];
                let path = format!("js/{name}");
                assert!(
                    ASSETS.iter().any(|x| x.path == path),
                    "{} imports missing {path}",
                    a.path
                );
            }
        }
    }

    #[test]
    fn csp_names_the_websocket_host_and_refuses_odd_hosts() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("lanbox.local:8443"));
        let v = csp(&h);
        let v = v.to_str().unwrap();
        assert!(v.contains("connect-src 'self' wss://lanbox.local:8443;"));
        assert!(v.contains("script-src 'self';"));
        h.insert(header::HOST, HeaderValue::from_static("evil; script-src *"));
        assert!(!csp(&h).to_str().unwrap().contains("evil"));
    }
}
