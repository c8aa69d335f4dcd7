//! First run, the other way: "restore from backup" on a new box.
//!
//! While the box has no user (the same condition and the same one-time setup code from the
//! console as the first admin, [`super::setup`]), an admin can bring back a backup instead:
//!
//! 1. `POST /api/v1/setup/restore/upload` with the backup file as the body (any type, streamed
//!    to `DIR/restore-upload.lbk`, never held in memory) and the code in `X-Setup-Code`;
//! 2. `POST /api/v1/setup/restore` with `{setup_code, passphrase}`: the same checked restore as
//!    `lanbox restore` into `DIR/restore-staged` (nothing is written there unless the whole
//!    backup decrypts and checks; a wrong passphrase or a damaged file is a `400` that changes
//!    nothing and keeps the code usable), then the box restarts on its own data directory,
//!    where `crate::backup::staged::apply` puts the restored files in place before anything is
//!    opened. The page then finds a box with users and shows the sign-in.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use super::extract::{Json, Origin, body_to_file, origin};
use crate::auth::users;
use crate::backup::{snapshot, staged};
use crate::service::Service;

/// The header carrying the setup code with an upload.
pub const SETUP_CODE_HEADER: &str = "x-setup-code";

async fn has_users(s: &Service) -> Result<bool, ApiError> {
    Ok(s.store.read(|r| Ok(!users::list(r)?.is_empty())).await?)
}

/// Checks that a restore may run now and that `code` is the setup code (it is put back: only
/// a successful restore uses it up).
async fn allowed(s: &Service, headers: &HeaderMap, uri: &Uri, code: &str) -> Result<String, ApiError> {
    if origin(headers, uri) == Origin::Foreign {
        return Err(ApiError::Forbidden);
    }
    let done = || ApiError::Conflict("this box is already set up: restore into a new box".into());
    if s.setup.code().is_none() || has_users(s).await? {
        return Err(done());
    }
    match s.setup.take(code) {
        Some(code) => Ok(code),
        None if s.setup.code().is_none() => Err(done()),
        None => {
            tracing::warn!("a first-run restore was tried with a wrong setup code");
            Err(ApiError::Coded {
                status: StatusCode::FORBIDDEN,
                code: "bad_setup_code",
                message: "wrong setup code: use the one printed on the box's console".into(),
            })
        }
    }
}

pub async fn upload(
    State(s): State<Service>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let Some(guess) = headers.get(SETUP_CODE_HEADER).and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::BadRequest(
            "the setup code printed on the box's console goes in the X-Setup-Code header".into(),
        ));
    };
    let guess = guess.to_string();
    let code = allowed(&s, &headers, &uri, &guess).await?;
    s.setup.put_back(code);
    let dir = s.store.dir().to_path_buf();
    let part = dir.join(format!("{}.part", staged::UPLOAD));
    let path = dir.join(staged::UPLOAD);
    let bytes = body_to_file(body, &part, u64::MAX, "backup").await?;
    let io = |e: std::io::Error| ApiError::Internal(format!("writing the uploaded backup: {e}"));
    tokio::fs::rename(&part, &path).await.map_err(io)?;
    tracing::info!(bytes, "a backup was uploaded for a first-run restore");
    Ok((StatusCode::CREATED, axum::Json(json!({"bytes": bytes}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    setup_code: String,
    passphrase: String,
}

pub async fn restore(
    State(s): State<Service>,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<RestoreBody>,
) -> Result<Response, ApiError> {
    let code = allowed(&s, &headers, &uri, &body.setup_code).await?;
    let dir = s.store.dir().to_path_buf();
    let upload = dir.join(staged::UPLOAD);
    let target = staged::staged_dir(&dir);
    let passphrase = zeroize::Zeroizing::new(body.passphrase);
    let result = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&upload).map_err(|_| {
            crate::backup::BackupError::NotFound("no uploaded backup: upload it first".into())
        })?;
        let _ = std::fs::remove_dir_all(&target);
        snapshot::restore(std::io::BufReader::new(file), &passphrase, &target)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("restore task: {e}")))?;
    match result {
        Ok(sum) => {
            let _ = tokio::fs::remove_file(dir.join(staged::UPLOAD)).await;
            tracing::info!(records = sum.records, "first-run restore staged; restarting");
            s.request_restart();
            Ok((
                StatusCode::OK,
                axum::Json(json!({
                    "status": "restored",
                    "records": sum.records,
                    "attachment_files": sum.attachment_files,
                })),
            )
                .into_response())
        }
        Err(crate::backup::BackupError::NotFound(m)) => {
            s.setup.put_back(code);
            Err(ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "no_upload",
                message: m,
            })
        }
        Err(e) => {
            s.setup.put_back(code);
            Err(e.into())
        }
    }
}
