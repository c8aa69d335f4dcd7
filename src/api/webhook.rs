//! `POST /telegram/webhook/{account}`: where Telegram delivers updates for accounts in webhook
//! mode (see [`crate::channels::telegram::webhook`]). Not part of `/api/v1`: its caller is
//! Telegram, authenticated by the per-account secret header, not a user.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

use super::error::ApiError;
use crate::channels::telegram::webhook::{self, SECRET_HEADER, WebhookError};
use crate::service::Service;

/// Answers 200 once the update is committed; 401 without the right secret (nothing is parsed);
/// 404 for an account not in webhook mode; 500 when the store failed (Telegram retries).
pub async fn receive(
    State(s): State<Service>,
    Path(account): Path<u64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let secret = headers.get(SECRET_HEADER).map(|v| v.as_bytes());
    match webhook::receive(&s.pipeline, account, secret, &body).await {
        Ok(_) => Ok(StatusCode::OK),
        Err(WebhookError::NotWebhook(_)) => Err(ApiError::NotFound),
        Err(WebhookError::BadSecret) => Err(ApiError::Unauthorized),
        Err(WebhookError::Store(e)) => Err(e.into()),
    }
}
