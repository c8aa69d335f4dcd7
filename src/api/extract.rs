//! Extractors: authentication as [`Caller`] (so a handler cannot forget it), and wrappers of
//! axum's `Json`, `Query` and `Path` whose rejections become [`ApiError`]s in the one error
//! shape.
//!
//! Credentials, in order: `Authorization: Bearer lbx_...` (an API token), then the session
//! cookie. A cookie-authenticated request that changes something must also carry an `Origin`
//! equal to the box's own (`https://` + the request's host): with `SameSite=Strict` this is
//! the second wall against cross-site requests.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::auth::{self, AuthError, Caller, Via};
use crate::service::Service;
use crate::store::{Reader, StoreError};

/// Name of the session cookie. `__Host-` makes browsers insist on `Secure`, `Path=/` and no
/// `Domain`, so no other host (or plain-HTTP page) can set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-lanbox_session";

/// The value of the session cookie, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_string())
}

/// The bearer token of an `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The host the client addressed (HTTP/1.1 `Host`, or the HTTP/2 authority).
fn request_host(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
}

/// What the `Origin` header says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Absent,
    Same,
    Foreign,
}

/// Compares `Origin` with `https://` + the request's host. lanbox serves only HTTPS, so an
/// `http://` origin is foreign too.
pub fn origin(headers: &HeaderMap, uri: &Uri) -> Origin {
    let Some(o) = headers.get(header::ORIGIN) else {
        return Origin::Absent;
    };
    let (Ok(o), Some(host)) = (o.to_str(), request_host(headers, uri)) else {
        return Origin::Foreign;
    };
    if o.eq_ignore_ascii_case(&format!("https://{host}")) {
        Origin::Same
    } else {
        Origin::Foreign
    }
}

fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The credential a request presents, unchecked: the bearer token, else the session cookie
/// (with the `Origin` rule for requests that change something).
fn presented(parts: &Parts) -> Result<Via, ApiError> {
    if let Some(token) = bearer(&parts.headers) {
        Ok(auth::token_credential(token)?)
    } else if let Some(cookie) = session_cookie(&parts.headers) {
        if changes_state(&parts.method) && origin(&parts.headers, &parts.uri) != Origin::Same {
            return Err(ApiError::Forbidden);
        }
        Ok(auth::session_credential(&cookie)?)
    } else {
        Err(ApiError::Unauthorized)
    }
}

impl FromRequestParts<Service> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Service) -> Result<Caller, ApiError> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let via = presented(parts)?;
        let caller = state.auth.recheck_via(via).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A request's credential, to be checked inside the handler's own store read: authentication
/// and the read then take one blocking-pool hop and one read transaction, where [`Caller`]
/// takes a hop of its own first (for the busiest reads, such as a page of a chat's messages).
/// [`Credential::caller`] is the only way from it to a [`Caller`], so a handler cannot skip
/// the check.
pub struct Credential(Known);

enum Known {
    /// Checked already (by an earlier extractor of the same request).
    Caller(Caller),
    Unchecked(Via),
}

impl FromRequestParts<Service> for Credential {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Service) -> Result<Credential, ApiError> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(Credential(Known::Caller(c.clone())));
        }
        Ok(Credential(Known::Unchecked(presented(parts)?)))
    }
}

impl Credential {
    /// The caller, checked in `r` (the outer error is the store's, the inner the answer to the
    /// client: `Unauthenticated` as with [`Caller`]).
    pub fn caller(self, r: &Reader) -> Result<Result<Caller, AuthError>, StoreError> {
        match self.0 {
            Known::Caller(c) => Ok(Ok(c)),
            Known::Unchecked(via) => auth::caller_in(r, via),
        }
    }
}

/// `axum::Json` with rejections in the API's error shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(v))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    /// Serialises into a `Vec` (serde_json's fast path; axum's `Json` writes through a
    /// `BytesMut` adapter, a few per cent of a page of messages: docs/benchmarks.md, "REST").
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => {
                let json = HeaderValue::from_static("application/json");
                ([(header::CONTENT_TYPE, json)], body).into_response()
            }
            // axum's own answer to a value that does not serialise.
            Err(_) => axum::Json(self.0).into_response(),
        }
    }
}

/// `axum::extract::Query` with rejections in the API's error shape.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Query(v) = axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

/// `axum::extract::Path` with rejections in the API's error shape (an unparsable path names
/// nothing: 404).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(v) = axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}

/// Streams a request body into `path` (created, then synced), never holding it in memory; at
/// most `max` bytes (`413 too_large` past that). On any failure the file is removed again.
/// The number of bytes written. `what` names the upload in errors ("backup", "bundle").
pub async fn body_to_file(
    body: axum::body::Body,
    path: &std::path::Path,
    max: u64,
    what: &str,
) -> Result<u64, ApiError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| ApiError::Internal(format!("writing the uploaded {what}: {e}"));
    let mut f = tokio::fs::File::create(path).await.map_err(io)?;
    let mut stream = body.into_data_stream();
    let mut bytes = 0u64;
    let written = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("the upload broke off: {e}")))?;
            bytes += chunk.len() as u64;
            if bytes > max {
                return Err(ApiError::Coded {
                    status: axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    code: "too_large",
                    message: format!("the {what} is larger than this box accepts ({max} bytes)"),
                });
            }
            f.write_all(&chunk).await.map_err(io)?;
        }
        f.sync_all().await.map_err(io)
    }
    .await;
    drop(f);
    match written {
        Ok(()) => Ok(bytes),
        Err(e) => {
            let _ = tokio::fs::remove_file(path).await;
            Err(e)
        }
    }
}

/// For a PATCH body's fields: absent leaves the value as it is, `null` is refused (the schema
/// says each is a string, a number or a boolean; serde alone would take `null` for absent).
/// Use with `#[serde(default, deserialize_with = "not_null")]`.
pub fn not_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}
