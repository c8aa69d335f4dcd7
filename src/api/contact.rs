//! The contact panel of a conversation: `GET /api/v1/chats/{chat}/contact` (the shape and the
//! rules are in [`crate::view::contact`]).

use axum::extract::State;

use super::ApiError;
use super::extract::{Json, Path};
use super::inbox::chat_key;
use crate::auth::Caller;
use crate::service::Service;
use crate::view::contact::{self, ContactDto};

pub async fn contact(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ContactDto>, ApiError> {
    let key = chat_key(&id)?;
    let out = s
        .store
        .read(move |r| contact::contact(r, &caller.grants, key))
        .await?;
    out.map(Json).ok_or(ApiError::NotFound)
}
