//! The box's update for admins (Settings -> System -> Update): the slots and versions, a
//! bundle uploaded (streamed to the data partition, size-limited, never held in memory) and
//! checked by RAUC, its install with progress over the WebSocket (`update.progress`), and the
//! reboot. The work is `crate::service::updates`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::ApiError;
use super::admin::Admin;
use super::extract::{Json, body_to_file};
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
    let bytes = body_to_file(body, &part, max, "bundle").await?;
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
