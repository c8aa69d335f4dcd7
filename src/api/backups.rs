//! Backups for admins (Settings -> System -> Backup): the state and list, a backup now
//! (written, verified, kept in `DIR/backups/` or the S3 bucket), a download, and the backup
//! passphrase. The work is `crate::backup`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::admin::Admin;
use super::extract::{Json, Path};
use crate::backup::{BackupInfo, Made};
use crate::service::Service;

#[derive(Serialize)]
pub struct BackupState {
    /// A passphrase is set: backups can be made (it is never shown, only its wrapped key kept).
    passphrase_set: bool,
    /// Where new backups go: `local` (the box's backup directory) or `s3`.
    target: &'static str,
    /// Seconds between scheduled backups; absent when none are scheduled.
    every_s: Option<u64>,
    keep: u32,
    /// Newest first.
    backups: Vec<BackupInfo>,
}

pub async fn state(State(s): State<Service>, _: Admin) -> Result<Json<BackupState>, ApiError> {
    let b = &s.backups;
    Ok(Json(BackupState {
        passphrase_set: b.passphrase_set().await?,
        target: if b.options().s3.is_some() { "s3" } else { "local" },
        every_s: b.options().every.map(|d| d.as_secs()),
        keep: b.options().keep,
        backups: b.list().await?,
    }))
}

/// Makes a backup now and answers once it is written and verified (a large store takes a
/// while: the request deadline does not apply to these routes).
pub async fn create(State(s): State<Service>, _: Admin) -> Result<Response, ApiError> {
    let made: Made = s.backups.create().await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

/// A backup's file, streamed (from the bucket when backups go there).
pub async fn download(
    State(s): State<Service>,
    _: Admin,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (body, len) = match s.backups.open_s3(&name).await? {
        Some((resp, len)) => (Body::from_stream(resp.bytes_stream()), len),
        None => {
            let (file, len) = s.backups.open_local(&name).await?;
            (Body::from_stream(tokio_util_stream(file)), len)
        }
    };
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// A file as a stream of 64 KiB pieces (bounded memory whatever its size).
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    use tokio::io::AsyncReadExt;
    futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 64 << 10];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passphrase {
    passphrase: String,
}

/// Sets (or replaces) the backup passphrase. Backups made before stay readable with the
/// passphrase they were made under.
pub async fn set_passphrase(
    State(s): State<Service>,
    _: Admin,
    Json(body): Json<Passphrase>,
) -> Result<StatusCode, ApiError> {
    s.backups.set_passphrase(body.passphrase).await?;
    Ok(StatusCode::NO_CONTENT)
}
