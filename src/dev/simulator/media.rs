//! `sendPhoto`, `sendDocument`, `sendVideo`, `sendVoice` and `sendAudio`: the file comes as a
//! multipart part (directly or through `attach://<name>`), as the `file_id` of a stored file, or
//! as an HTTP URL the simulator fetches, as Telegram does. Telegram's limits hold: 10 MB for an
//! uploaded photo, 50 MB for any other upload (the whole request), 5 MB for a photo and 20 MB for
//! anything else by URL. Uploaded bytes are stored (within the simulator's file cap) and become
//! downloadable through `getFile`, like any file.

use bytes::Bytes;
use serde_json::{Value, json};

use super::multipart::Upload;
use super::params::{Params, int, string};
use super::reply::Reply;
use super::state::{Inner, State};

pub(super) const MB: usize = 1 << 20;
/// Telegram: "Maximum file size is 50 MB" for multipart uploads by bots.
pub(super) const UPLOAD_LIMIT: usize = 50 * MB;
const PHOTO_UPLOAD_LIMIT: usize = 10 * MB;
const PHOTO_URL_LIMIT: usize = 5 * MB;
const URL_LIMIT: usize = 20 * MB;
const CAPTION_LIMIT: usize = 1024;

/// The media methods and the parameter that carries their file.
pub(super) const MEDIA: &[(&str, &str)] = &[
    ("sendPhoto", "photo"),
    ("sendDocument", "document"),
    ("sendVideo", "video"),
    ("sendVoice", "voice"),
    ("sendAudio", "audio"),
];

/// Where a send's file comes from.
pub(super) enum Input {
    New {
        bytes: Bytes,
        file_name: Option<String>,
        content_type: Option<String>,
    },
    FileId(String),
}

/// Finds the file of a media send. Fetches a URL (outside any lock).
pub(super) async fn input(
    state: &State,
    field: &str,
    p: &Params,
    uploads: &[Upload],
) -> Result<Input, Reply> {
    let photo = field == "photo";
    let upload = |u: &Upload| {
        if u.bytes.len() > if photo { PHOTO_UPLOAD_LIMIT } else { UPLOAD_LIMIT } {
            return Err(Reply::err(413, "Request Entity Too Large"));
        }
        if u.bytes.is_empty() {
            return Err(Reply::bad_request("file must be non-empty"));
        }
        Ok(Input::New {
            bytes: u.bytes.clone(),
            file_name: Some(u.file_name.clone()),
            content_type: u.content_type.clone(),
        })
    };
    if let Some(u) = uploads.iter().find(|u| u.name == field) {
        return upload(u);
    }
    let Some(value) = string(p, field).filter(|s| !s.is_empty()) else {
        return Err(Reply::bad_request(&format!("there is no {field} in the request")));
    };
    if let Some(name) = value.strip_prefix("attach://") {
        return match uploads.iter().find(|u| u.name == name) {
            Some(u) => upload(u),
            None => Err(Reply::bad_request(&format!("there is no {field} in the request"))),
        };
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        let limit = if photo { PHOTO_URL_LIMIT } else { URL_LIMIT };
        let bytes = fetch(state, &value, limit)
            .await
            .ok_or_else(|| Reply::bad_request("failed to get HTTP URL content"))?;
        let file_name = value
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        return Ok(Input::New {
            bytes,
            file_name,
            content_type: None,
        });
    }
    Ok(Input::FileId(value))
}

/// Downloads `url`, refusing more than `limit` bytes.
async fn fetch(state: &State, url: &str, limit: usize) -> Option<Bytes> {
    let http = state.http()?;
    let mut resp = http
        .get(url)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        if out.len() + chunk.len() > limit {
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    (!out.is_empty()).then(|| out.into())
}

/// The send itself, under the state lock: stores a new file, builds the media object and the
/// message. Returns the message and its caption.
pub(super) fn send(
    inner: &mut Inner,
    token: &str,
    cap: u64,
    field: &str,
    p: &Params,
    input: Input,
) -> Result<(Value, Option<String>), Reply> {
    let caption = string(p, "caption").filter(|c| !c.is_empty());
    if caption
        .as_ref()
        .is_some_and(|c| c.chars().count() > CAPTION_LIMIT)
    {
        return Err(Reply::bad_request("message caption is too long"));
    }
    let (file_id, bytes, stored_media) = match input {
        Input::FileId(id) => {
            let b = inner.bots.get(token).expect("bot registered");
            let f = b
                .files
                .get(&id)
                .ok_or_else(|| Reply::bad_request("wrong file identifier/HTTP URL specified"))?;
            (id, f.bytes.clone(), f.media.clone())
        }
        Input::New {
            bytes,
            file_name,
            content_type,
        } => {
            let dims = (field == "photo")
                .then(|| image_size(&bytes))
                .map(|d| d.ok_or_else(|| Reply::bad_request("IMAGE_PROCESS_FAILED")))
                .transpose()?;
            let ext = file_name
                .as_deref()
                .and_then(|n| n.rsplit_once('.'))
                .map(|(_, e)| e.to_ascii_lowercase())
                .filter(|e| !e.is_empty() && e.len() <= 5 && e.bytes().all(|c| c.is_ascii_alphanumeric()));
            let (dir, default_ext) = match field {
                "photo" => ("photos", "jpg"),
                "video" => ("videos", "mp4"),
                "voice" => ("voice", "oga"),
                "audio" => ("music", "mp3"),
                _ => ("documents", "bin"),
            };
            let ext = ext.unwrap_or_else(|| default_ext.to_owned());
            let (file_id, _) = inner
                .store_file(token, cap, dir, &ext, bytes.clone())
                .map_err(|e| Reply::bad_request(&e))?;
            let mime = content_type
                .filter(|t| !t.is_empty() && t != "application/octet-stream")
                .unwrap_or_else(|| mime_for(&ext).to_owned());
            let media = media_object(field, p, &mime, file_name.as_deref(), dims)?;
            let b = inner.bots.get_mut(token).expect("bot registered");
            if let Some(f) = b.files.get_mut(&file_id) {
                f.media = Some(media.clone());
            }
            (file_id, bytes, Some(media))
        }
    };
    let b = inner.bots.get(token).expect("bot registered");
    let unique = b
        .files
        .get(&file_id)
        .map(|f| f.unique_id.clone())
        .unwrap_or_default();
    let mut media = match stored_media {
        Some(m) => m,
        None => media_object(field, p, mime_for("bin"), None, image_size(&bytes))?,
    };
    if let Some(obj) = media.as_object_mut() {
        obj.insert("file_id".into(), file_id.clone().into());
        obj.insert("file_unique_id".into(), unique.into());
        obj.insert("file_size".into(), bytes.len().into());
    }
    let media = if field == "photo" { json!([media]) } else { media };
    Ok((media, caption))
}

/// The media object Telegram returns for a new file (without its IDs and size).
fn media_object(
    field: &str,
    p: &Params,
    mime: &str,
    file_name: Option<&str>,
    dims: Option<(u32, u32)>,
) -> Result<Value, Reply> {
    let n = |name: &str| int(p, name).map(|v| v.unwrap_or(0).max(0));
    let mut m = match field {
        "photo" => {
            let (w, h) = dims.unwrap_or((0, 0));
            json!({ "width": w, "height": h })
        }
        "video" => json!({
            "width": n("width")?, "height": n("height")?, "duration": n("duration")?, "mime_type": mime,
        }),
        "voice" => json!({ "duration": n("duration")?, "mime_type": "audio/ogg" }),
        "audio" => {
            let mut a = json!({ "duration": n("duration")?, "mime_type": mime });
            for key in ["performer", "title"] {
                if let Some(v) = string(p, key).filter(|v| !v.is_empty()) {
                    a[key] = v.into();
                }
            }
            a
        }
        _ => json!({ "mime_type": mime }),
    };
    if let Some(name) = file_name.filter(|_| field != "photo" && field != "voice") {
        m["file_name"] = name.into();
    }
    Ok(m)
}

fn mime_for(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "zip" => "application/zip",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "oga" | "opus" => "audio/ogg",
        _ => "application/octet-stream",
    }
}

/// Width and height of a PNG, GIF, JPEG or WebP image; `None` if it is not one.
pub(super) fn image_size(b: &[u8]) -> Option<(u32, u32)> {
    let be16 = |i: usize| Some(u32::from(u16::from_be_bytes(b.get(i..i + 2)?.try_into().ok()?)));
    let le16 = |i: usize| Some(u32::from(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?)));
    if b.starts_with(b"\x89PNG\r\n\x1a\n") && b.get(12..16) == Some(b"IHDR") {
        let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
        let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
        return (w > 0 && h > 0).then_some((w, h));
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Some((le16(6)?, le16(8)?));
    }
    if b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return match b.get(12..16)? {
            b"VP8 " => Some((le16(26)? & 0x3fff, le16(28)? & 0x3fff)),
            b"VP8L" => {
                let v = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
                Some(((v & 0x3fff) + 1, ((v >> 14) & 0x3fff) + 1))
            }
            b"VP8X" => {
                let w = u32::from_le_bytes([*b.get(24)?, *b.get(25)?, *b.get(26)?, 0]) + 1;
                let h = u32::from_le_bytes([*b.get(27)?, *b.get(28)?, *b.get(29)?, 0]) + 1;
                Some((w, h))
            }
            _ => None,
        };
    }
    if b.starts_with(&[0xff, 0xd8]) {
        // Walk the JPEG segments to the first start-of-frame.
        let mut i = 2;
        while i + 4 <= b.len() {
            if b[i] != 0xff {
                return None;
            }
            let marker = b[i + 1];
            if marker == 0xff {
                i += 1;
                continue;
            }
            let len = be16(i + 2)? as usize;
            let sof = matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc);
            if sof {
                let (h, w) = (be16(i + 5)?, be16(i + 7)?);
                return (w > 0 && h > 0).then_some((w, h));
            }
            i += 2 + len;
        }
    }
    None
}
