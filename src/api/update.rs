//! The box's update for admins (Settings -> System -> Update): the slots and versions, a
//! bundle uploaded (streamed to the data partition, size-limited, never held in memory) and
//! checked by RAUC, its install with progress over the WebSocket (`update.progress`), and the
//! reboot. The work is `crate::service::updates`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::ApiError;
use super::admin::Admin;
use super::extract::Json;
use crate::service::Service;
use crate::system::update::UpdateError;

pub async fn state(State(s): State<Service>, _: Admin) -> Json<Value> {
    Json(s.updates.status().await)
}

/// Streams the body to a file of its own under `DIR/update/`, then has RAUC check it. A refused
/// bundle is deleted and the answer says why; the running system is never touched.
pub async fn upload(
    State(s): State<Service>,
    _: Admin,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let max = s.updates.options().max_bundle;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max) {
        return Err(UpdateError::TooLarge { max }.into());
    }
    let part = s.updates.prepare_upload().await?;
    let io = |e: std::io::Error| ApiError::Internal(format!("writing the uploaded bundle: {e}"));
    let mut f = tokio::fs::File::create(&part).await.map_err(io)?;
    let mut stream = body.into_data_stream();
    let mut bytes = 0u64;
    let failed = loop {
        let Some(chunk) = stream.next().await else {
            break None;
        };
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => break Some(ApiError::BadRequest(format!("the upload broke off: {e}"))),
        };
        bytes += chunk.len() as u64;
        if bytes > max {
            break Some(UpdateError::TooLarge { max }.into());
        }
        if let Err(e) = f.write_all(&chunk).await {
            break Some(io(e));
        }
    };
    if let Some(e) = failed {
        drop(f);
        let _ = tokio::fs::remove_file(&part).await;
        return Err(e);
    }
    f.sync_all().await.map_err(io)?;
    drop(f);
    let info = s.updates.stage(&part).await?;
    tracing::info!(bytes, version = %info.version, "an update bundle was uploaded and checked");
    Ok((StatusCode::CREATED, Json(json!({"bytes": bytes, "bundle": info}))).into_response())
}

pub async fn discard(State(s): State<Service>, _: Admin) -> Result<StatusCode, ApiError> {
    s.updates.discard().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts the install; `update.progress` events follow, and `GET` shows where it stands.
pub async fn install(State(s): State<Service>, _: Admin) -> Result<Response, ApiError> {
    s.updates.install()?;
    Ok((StatusCode::ACCEPTED, Json(json!({"state": "installing"}))).into_response())
}

/// Reboots into the installed slot (the admin confirmed on the page).
pub async fn reboot(State(s): State<Service>, _: Admin) -> Result<Response, ApiError> {
    s.updates.reboot()?;
    Ok((StatusCode::ACCEPTED, Json(json!({"rebooting": true}))).into_response())
}
