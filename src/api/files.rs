//! The attachment routes:
//! - `GET /api/v1/chats/{chat}/messages/{message}/attachments`: a visible message's files with
//!   signed URLs (valid for [`crate::attachments::AttachmentOptions::url_ttl`]).
//! - `GET /api/v1/files/{id}?exp&u&sig`: the download a browser follows. The signature and
//!   expiry are checked (403 otherwise), then the signing user as it is now: a disabled or
//!   deleted user's URLs are refused (user IDs are never reused), and its grants apply;
//!   `Range` is honoured (206, one range; 416 when unsatisfiable), the type comes from the
//!   message, and anything a browser could execute is sent as a download in a sandbox.
//! - `POST /api/v1/attachments?account=ID`: a streaming upload for sending, refused with 413
//!   from its `Content-Length` alone when over the limit, before the body is read.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::extract::{Path, Query};
use super::{ApiError, inbox};
use crate::attachments::read::FileInfo;
use crate::attachments::signing::Refused;
use crate::attachments::tables::{self, AttachmentRecord, Role, State as AttState};
use crate::attachments::upload::UploadError;
use crate::attachments::{AttachmentError, Attachments, now};
use crate::auth::Caller;
use crate::model::MediaKind;
use crate::service::Service;
use crate::view::visible;

#[derive(Serialize)]
pub struct AttachmentDto {
    pub id: u64,
    pub role: &'static str,
    pub state: &'static str,
    pub size: Option<u64>,
    /// Signed download URL (path and query), when the file is stored.
    pub url: Option<String>,
    pub expires_at: Option<u64>,
}

#[derive(Serialize)]
pub struct AttachmentList {
    pub attachments: Vec<AttachmentDto>,
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Main => "file",
        Role::Thumbnail => "thumbnail",
        Role::Upload => "upload",
    }
}

fn state_str(s: &AttState) -> &'static str {
    match s {
        AttState::Pending => "pending",
        AttState::Ready => "ready",
        AttState::TooBig => "too_big",
        AttState::Failed(_) => "failed",
    }
}

impl Attachments {
    /// The JSON shape of one attachment for `user`, with a fresh signed URL when stored.
    pub fn dto(&self, rec: &AttachmentRecord, user: u64) -> AttachmentDto {
        let ready = rec.state == AttState::Ready;
        let exp = now() + self.options().url_ttl.as_secs();
        AttachmentDto {
            id: rec.id,
            role: role_str(rec.role),
            state: state_str(&rec.state),
            size: rec.size.or(rec.announced),
            url: ready.then(|| {
                format!(
                    "/api/v1/files/{}?{}",
                    rec.id,
                    self.signer().query(rec.id, exp, user)
                )
            }),
            expires_at: ready.then_some(exp),
        }
    }
}

pub async fn list(
    State(s): State<Service>,
    caller: Caller,
    Path((chat, msg)): Path<(String, i64)>,
) -> Result<Json<AttachmentList>, ApiError> {
    let key = inbox::chat_key(&chat)?.msg(msg);
    let (recs, media) = list_records(&s, &caller, key).await?.ok_or(ApiError::NotFound)?;
    // Media older than the event-log follower (an upgraded box) are recorded and queued the
    // first time a client asks for them.
    let recs = if recs.is_empty()
        && media
        && s.attachments
            .ensure_recorded(key)
            .await
            .map_err(AttachmentError::into_store)?
    {
        list_records(&s, &caller, key).await?.ok_or(ApiError::NotFound)?.0
    } else {
        recs
    };
    Ok(Json(AttachmentList {
        attachments: recs.iter().map(|r| s.attachments.dto(r, caller.user)).collect(),
    }))
}

/// The records of a message's attachments and whether it is a media message, `None` when
/// the caller may not see it.
async fn list_records(
    s: &Service,
    caller: &Caller,
    key: crate::store::MsgKey,
) -> Result<Option<(Vec<AttachmentRecord>, bool)>, ApiError> {
    let g = caller.grants.clone();
    Ok(s.store
        .read(move |r| {
            let Some(m) = r.stored_message(key)? else {
                return Ok(None);
            };
            if visible::chat(r, &g, key.chat_key())?.is_none() || !visible::stored(&g, &m) {
                return Ok(None);
            }
            let media = crate::attachments::follow::is_media(m.body_kind);
            let mut out = Vec::new();
            for (_, id) in tables::read_of_message(r.txn(), key)? {
                if let Some(rec) = tables::read_record(r.txn(), id)? {
                    out.push(rec);
                }
            }
            Ok(Some((out, media)))
        })
        .await?)
}

#[derive(Deserialize)]
pub struct Signed {
    exp: u64,
    u: u64,
    sig: String,
}

pub async fn download(
    State(s): State<Service>,
    Path(id): Path<u64>,
    Query(q): Query<Signed>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let a = &s.attachments;
    // Expired or altered: 403 either way.
    a.signer()
        .verify(id, q.exp, q.u, &q.sig, now())
        .map_err(|_: Refused| ApiError::Forbidden)?;
    // The user and grants as they are now: a URL outlives neither the user, nor their being
    // enabled, nor their grant.
    let user = q.u;
    let allowed = s
        .store
        .read(move |r| {
            let Some(u) = crate::auth::credentials::active_user(r, user)? else {
                return Ok(false);
            };
            let grants = crate::auth::Grants::of(&u);
            let Some(rec) = tables::read_record(r.txn(), id)? else {
                return Ok(false);
            };
            // A message's file follows the message (accounts that see it now); an upload its
            // account.
            let accounts = match rec.message() {
                Some(key) => match r.stored_message(key)? {
                    Some(m) => m.seen_by,
                    None => return Ok(false),
                },
                None => rec.accounts,
            };
            Ok(grants.allows_any(&accounts))
        })
        .await?;
    if !allowed {
        return Err(ApiError::Forbidden);
    }
    let opened = a.open_plaintext(id).await?;
    let len = opened.len();
    let (mime, inline) = content_type(&opened.info);
    let disposition = content_disposition(&opened.info, id, &mime, inline);
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (status, start, end) = match range {
        None | Some(RangeAsk::Ignore) => (StatusCode::OK, 0, len),
        Some(RangeAsk::Unsatisfiable) => {
            let mut res = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            res.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{len}")).expect("ascii"),
            );
            return Ok(res);
        }
        Some(RangeAsk::Range(a, b)) => (StatusCode::PARTIAL_CONTENT, a, b),
    };
    let rx = opened.range(start, end);
    let body = Body::from_stream(receiver_stream(rx));
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime).expect("validated"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).expect("ascii only"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)).expect("ascii"),
        );
    }
    Ok(res)
}

fn receiver_stream(
    rx: mpsc::Receiver<Result<bytes::Bytes, AttachmentError>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        // An error mid-body can only cut the response short; it is logged, never sent.
        let item = item.map_err(|e| {
            tracing::warn!(error = %e, "attachment download stopped");
            std::io::Error::other("attachment read failed")
        });
        Some((item, rx))
    })
    .boxed()
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeAsk {
    /// Serve the whole file (no usable single range).
    Ignore,
    Unsatisfiable,
    /// `start..end`, end exclusive.
    Range(u64, u64),
}

/// One `bytes=` range; several ranges or a malformed header are ignored (RFC 9110 allows it).
pub fn parse_range(v: &str, len: u64) -> RangeAsk {
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return RangeAsk::Ignore;
    };
    if spec.contains(',') {
        return RangeAsk::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAsk::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| s.parse::<u64>().ok();
    let (start, end) = match (a.is_empty(), b.is_empty()) {
        (true, true) => return RangeAsk::Ignore,
        (true, false) => {
            let Some(n) = parse(b) else {
                return RangeAsk::Ignore;
            };
            if n == 0 || len == 0 {
                return RangeAsk::Unsatisfiable;
            }
            (len.saturating_sub(n), len)
        }
        (false, _) => {
            let Some(s) = parse(a) else {
                return RangeAsk::Ignore;
            };
            let e = if b.is_empty() {
                len
            } else {
                match parse(b) {
                    Some(e) if e >= s => e.saturating_add(1).min(len),
                    _ => return RangeAsk::Ignore,
                }
            };
            if s >= len {
                return RangeAsk::Unsatisfiable;
            }
            (s, e)
        }
    };
    RangeAsk::Range(start, end)
}

fn valid_mime(m: &str) -> bool {
    let mut parts = m.split('/');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&c))
        })
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}

/// The type to send and whether the browser may show it inline: images (not SVG), audio and
/// video only. Everything else is a download.
pub fn content_type(info: &FileInfo) -> (String, bool) {
    let default = match (info.role, info.kind) {
        (Role::Thumbnail, _) => "image/jpeg",
        (_, Some(MediaKind::Image)) => "image/jpeg",
        (_, Some(MediaKind::Video | MediaKind::VideoNote | MediaKind::Animation)) => "video/mp4",
        (_, Some(MediaKind::Voice)) => "audio/ogg",
        (_, Some(MediaKind::Audio)) => "audio/mpeg",
        (_, Some(MediaKind::Sticker)) => "image/webp",
        _ => "application/octet-stream",
    };
    let mime = info
        .mime_type
        .as_deref()
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| valid_mime(m))
        .unwrap_or_else(|| default.to_owned());
    let inline = (mime.starts_with("image/") && !mime.contains("svg"))
        || mime.starts_with("video/")
        || mime.starts_with("audio/");
    (mime, inline)
}

/// `inline` or `attachment`, with an ASCII `filename` and the UTF-8 `filename*`. Path
/// separators, quotes and control characters never get through.
pub fn content_disposition(info: &FileInfo, id: u64, mime: &str, inline: bool) -> String {
    let fallback = {
        let ext = match mime {
            "image/jpeg" => ".jpg",
            "image/webp" => ".webp",
            "image/png" => ".png",
            "video/mp4" => ".mp4",
            "audio/ogg" => ".ogg",
            "audio/mpeg" => ".mp3",
            _ => "",
        };
        format!("attachment-{id}{ext}")
    };
    let name: String = info
        .file_name
        .as_deref()
        .unwrap_or(&fallback)
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '/' | '\\' | '"' | ';' | '%'))
        .take(200)
        .collect();
    let name = name.trim().trim_start_matches('.');
    let name = if name.is_empty() { fallback.as_str() } else { name };
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[derive(Deserialize)]
pub struct UploadTo {
    account: u64,
    /// The file name to send it under.
    name: Option<String>,
}

#[derive(Serialize)]
pub struct Uploaded {
    pub id: u64,
    pub size: u64,
}

/// Stores an uploaded file encrypted under the account's key, for the outbox to send.
pub async fn upload(
    State(s): State<Service>,
    caller: Caller,
    Query(to): Query<UploadTo>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let a = s.attachments.clone();
    let limit = a.options().upload_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => return Err(ApiError::TooLarge),
        Some(_) => {}
        None => {
            return Err(ApiError::Invalid {
                code: "length_required",
                message: "uploads need a Content-Length".into(),
            });
        }
    }
    let account = to.account;
    let meta = tables::UploadMeta {
        file_name: to.name.filter(|n| !n.is_empty() && n.len() <= 255),
        mime_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .filter(|m| valid_mime(m) && m != "application/octet-stream"),
    };
    if !caller.grants.allows(account) {
        return Err(ApiError::NotFound);
    }
    let (id, size) = a
        .upload(account, meta, body.into_data_stream())
        .await
        .map_err(|e| match e {
            UploadError::TooLarge(_) => ApiError::TooLarge,
            UploadError::Interrupted => ApiError::BadRequest(e.to_string()),
            UploadError::Attachment(a) => a.into(),
        })?;
    Ok((StatusCode::CREATED, Json(Uploaded { id, size })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeAsk::Range(0, 10));
        assert_eq!(parse_range("bytes=90-", 100), RangeAsk::Range(90, 100));
        assert_eq!(parse_range("bytes=-10", 100), RangeAsk::Range(90, 100));
        assert_eq!(parse_range("bytes=-1000", 100), RangeAsk::Range(0, 100));
        assert_eq!(parse_range("bytes=50-1000", 100), RangeAsk::Range(50, 100));
        assert_eq!(parse_range("bytes=100-", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAsk::Ignore);
        assert_eq!(parse_range("bytes=9-3", 100), RangeAsk::Ignore);
        assert_eq!(parse_range("items=0-1", 100), RangeAsk::Ignore);
    }

    #[test]
    fn unsafe_types_and_names_are_defused() {
        let info = |mime: Option<&str>, name: Option<&str>| FileInfo {
            mime_type: mime.map(Into::into),
            file_name: name.map(Into::into),
            kind: Some(MediaKind::File),
            role: Role::Main,
        };
        let (m, inline) = content_type(&info(Some("text/html"), None));
        assert_eq!((m.as_str(), inline), ("text/html", false));
        let (_, inline) = content_type(&info(Some("image/svg+xml"), None));
        assert!(!inline);
        let (m, _) = content_type(&info(Some("text/html\r\nX: y"), None));
        assert_eq!(m, "application/octet-stream");
        let d = content_disposition(
            &info(None, Some("../../etc/\"pass\nwd\".txt")),
            3,
            "text/plain",
            false,
        );
        assert!(d.starts_with("attachment; filename=\""), "{d}");
        assert!(!d.contains('/') || d.contains("UTF-8''"), "{d}");
        assert!(!d.contains('\n'));
        let d = content_disposition(&info(None, Some("отчёт.pdf")), 3, "application/pdf", false);
        assert!(d.contains("filename*=UTF-8''%D0%BE"), "{d}");
        assert!(d.is_ascii());
    }
}
