//! The sending routes, over the outbox: send (queued, answered `202` with the outbox item),
//! the status of one item, edit and delete of a message the team sent, and typing. The
//! WebSocket's `send_message` and `typing` use the same functions.
//!
//! Idempotency: the body's `idempotency_key` (1 to 200 characters, per account). A retried
//! request with the same key gets the item the first one queued, whatever its status now, and
//! nothing is sent again.
//!
//! Grants: a caller sends only through accounts granted to them, into chats those accounts have;
//! anything else is `404`, as if it did not exist.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::ApiError;
use super::extract::{Json, Path};
use super::inbox::chat_key;
use crate::auth::Caller;
use crate::model::Direction;
use crate::outbox::{self, ItemState, NewItem, OutboxRecord};
use crate::service::Service;
use crate::store::ChatKey;
use crate::store::read::ChatView;
use crate::view::dto::{MessageDto, chat_id};
use crate::view::visible;

/// Longest text Telegram takes in one message, in characters.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Longest idempotency key.
pub const MAX_KEY_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    pub text: String,
    /// `id` of the message answered.
    #[serde(default)]
    pub reply_to: Option<i64>,
    /// Which of the chat's accounts sends (default: the chat's first granted account).
    #[serde(default)]
    pub account: Option<u64>,
    /// Repeating a send with the same key sends once.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// A file uploaded with `POST /api/v1/attachments` (for the sending account) to send, with
    /// `text` as its caption (which may then be empty).
    #[serde(default)]
    pub attachment: Option<u64>,
    /// The text's formatting, as received messages show it (`kind`, `offset` and `length` in
    /// UTF-16 code units, `url` of a `text_link`, `language` of a `pre`).
    #[serde(default)]
    pub entities: Vec<outbox::record::OutEntity>,
}

/// Most entities in one message (Telegram's own limit).
pub const MAX_ENTITIES: usize = 100;

fn check_entities(text: &str, entities: &[outbox::record::OutEntity]) -> Result<(), ApiError> {
    if entities.len() > MAX_ENTITIES {
        return Err(ApiError::BadRequest("at most 100 entities".into()));
    }
    let units = text.encode_utf16().count() as u64;
    for e in entities {
        if !outbox::sender::SENDABLE_ENTITIES.contains(&e.kind.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "entity kind {:?} cannot be sent; one of: {}",
                e.kind.chars().take(32).collect::<String>(),
                outbox::sender::SENDABLE_ENTITIES.join(", ")
            )));
        }
        if e.length == 0 || u64::from(e.offset) + u64::from(e.length) > units {
            return Err(ApiError::BadRequest(
                "an entity's range (offset, length in UTF-16 code units) is outside the text".into(),
            ));
        }
        let url_ok = e.url.as_deref().is_some_and(|u| {
            u.len() <= 2048
                && ["https://", "http://", "tg://", "mailto:"]
                    .iter()
                    .any(|p| u.starts_with(p))
        });
        match (e.kind.as_str(), e.url.is_some()) {
            ("text_link", _) if !url_ok => {
                return Err(ApiError::BadRequest(
                    "a text_link needs a url (http, https, tg or mailto; at most 2048 bytes)".into(),
                ));
            }
            ("text_link", _) => {}
            (_, true) => return Err(ApiError::BadRequest("only a text_link has a url".into())),
            _ => {}
        }
        if e.language
            .as_ref()
            .is_some_and(|l| e.kind != "pre" || l.len() > 64)
        {
            return Err(ApiError::BadRequest(
                "only a pre entity has a language (at most 64 bytes)".into(),
            ));
        }
        if e.user_id.is_some() || e.custom_emoji_id.is_some() {
            return Err(ApiError::BadRequest(
                "user_id and custom_emoji_id cannot be sent".into(),
            ));
        }
    }
    Ok(())
}

/// Longest caption Telegram takes, in characters.
pub const MAX_CAPTION_CHARS: usize = 1024;

fn check_text(text: &str) -> Result<(), ApiError> {
    if text.trim().is_empty() || text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::BadRequest("text must have 1 to 4096 characters".into()));
    }
    Ok(())
}

/// The chat as the caller sees it, or `404`.
async fn visible_chat(s: &Service, caller: &Caller, key: ChatKey) -> Result<ChatView, ApiError> {
    let g = caller.grants.clone();
    s.store
        .read(move |r| visible::chat(r, &g, key))
        .await?
        .ok_or(ApiError::NotFound)
}

/// The account to send with: the one asked for (granted, in the chat), else the chat's first
/// granted account with a running sender, else its first granted account.
fn sending_account(
    s: &Service,
    caller: &Caller,
    chat: &ChatView,
    asked: Option<u64>,
) -> Result<u64, ApiError> {
    let granted = caller.grants.visible(&chat.record.accounts);
    match asked {
        Some(a) if granted.contains(&a) => Ok(a),
        Some(_) => Err(ApiError::NotFound),
        None => granted
            .iter()
            .copied()
            .find(|a| s.outbox.is_running(*a))
            .or(granted.first().copied())
            .ok_or(ApiError::NotFound),
    }
}

/// Queues a send for the caller; shared by REST and WebSocket. Returns the outbox item.
pub async fn send_for(
    s: &Service,
    caller: &Caller,
    key: ChatKey,
    body: SendMessage,
) -> Result<Value, ApiError> {
    let text = Zeroizing::new(body.text);
    match body.attachment {
        None => check_text(&text)?,
        Some(_) if text.chars().count() > MAX_CAPTION_CHARS => {
            return Err(ApiError::BadRequest(
                "a caption has at most 1024 characters".into(),
            ));
        }
        Some(_) => {}
    }
    check_entities(&text, &body.entities)?;
    if body.attachment.is_some() && !body.entities.is_empty() {
        return Err(ApiError::BadRequest(
            "entities cannot go with an attachment's caption yet".into(),
        ));
    }
    if let Some(k) = &body.idempotency_key
        && (k.is_empty() || k.chars().count() > MAX_KEY_CHARS)
    {
        return Err(ApiError::BadRequest(
            "idempotency_key must have 1 to 200 characters".into(),
        ));
    }
    let chat = visible_chat(s, caller, key).await?;
    let account = sending_account(s, caller, &chat, body.account)?;
    let reply_to = match body.reply_to {
        None => None,
        Some(id) => Some(reply_target(s, caller, key, id).await?),
    };
    let attachment = match body.attachment {
        None => None,
        Some(id) => Some(attachment_ref(s, account, id).await?),
    };
    let item = NewItem {
        account,
        chat: key,
        chat_kind: chat.record.kind,
        user: caller.user,
        token: match caller.via {
            crate::auth::Via::Token(hash) => Some(hash),
            crate::auth::Via::Session(_) => None,
        },
        reply_to,
        text,
        idempotency_key: body.idempotency_key,
        attachment,
        entities: body.entities,
    };
    let (rec, _new) = s.outbox.enqueue(item).await?;
    Ok(item_json(&rec))
}

/// The Telegram message ID of the message a send answers: one of the chat's messages the
/// caller may see. A message that exists but is not visible gets the very answer of one that
/// does not exist, so a reply cannot probe for messages of accounts the caller is not granted.
async fn reply_target(s: &Service, caller: &Caller, key: ChatKey, id: i64) -> Result<i64, ApiError> {
    let g = caller.grants.clone();
    let found = s
        .store
        .read(move |r| Ok(r.stored_message(key.msg(id))?.filter(|m| visible::stored(&g, m))))
        .await?;
    found
        .map(|m| m.message_id)
        .ok_or_else(|| ApiError::BadRequest("reply_to names no message in this chat".into()))
}

/// The outbox's reference to an uploaded file; `404` unless it was uploaded for `account`.
async fn attachment_ref(
    s: &Service,
    account: u64,
    id: u64,
) -> Result<outbox::record::AttachmentRef, ApiError> {
    let opened = match s.attachments.open_plaintext(id).await {
        Ok(o) if o.record.owner == account && o.record.msg.is_none() => o,
        _ => return Err(ApiError::NotFound),
    };
    Ok(outbox::record::AttachmentRef {
        id: id.to_string(),
        file_name: opened
            .info
            .file_name
            .clone()
            .unwrap_or_else(|| format!("file-{id}")),
        mime_type: opened
            .info
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        size: opened.len(),
    })
}

pub async fn send(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<SendMessage>,
) -> Result<Response, ApiError> {
    let key = chat_key(&id)?;
    let item = send_for(&s, &caller, key, body).await?;
    Ok((StatusCode::ACCEPTED, Json(item)).into_response())
}

/// An item as the API shows it (no text: the client sent it, and the sent message carries it).
pub fn item_json(rec: &OutboxRecord) -> Value {
    let (telegram_id, message_id, reason) = match &rec.state {
        ItemState::Sent { telegram_id, key } => (Some(*telegram_id), Some(*key), None),
        ItemState::Failed { reason } => (None, None, Some(reason.clone())),
        _ => (None, None, None),
    };
    json!({
        "id": rec.id,
        "account": rec.account,
        "chat": chat_id(rec.chat()),
        "status": rec.state.as_str(),
        "status_reason": reason,
        "telegram_id": telegram_id,
        "message_id": message_id,
        "reply_to": rec.reply_to,
        "attempts": rec.attempts,
        "created_at": rec.created_at,
        "updated_at": rec.updated_at,
        "seq": rec.seq,
    })
}

/// `GET /api/v1/outbox/{item}`: one item's status.
pub async fn item(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    let rec = s.outbox.item(id).await?.ok_or(ApiError::NotFound)?;
    if !caller.grants.allows(rec.account) {
        return Err(ApiError::NotFound);
    }
    Ok(Json(item_json(&rec)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditMessage {
    pub text: String,
}

/// A message the caller may change: visible, sent by the team, through a granted account.
async fn own_message(
    s: &Service,
    caller: &Caller,
    chat: &str,
    msg: i64,
) -> Result<(crate::store::MsgKey, crate::store::records::StoredMessage), ApiError> {
    let key = chat_key(chat)?.msg(msg);
    let g = caller.grants.clone();
    let found = s
        .store
        .read(move |r| {
            if visible::message(r, &g, key)?.is_none() {
                return Ok(None);
            }
            r.stored_message(key)
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    if found.direction != Direction::Outgoing {
        return Err(outbox::OutboxError::NotOutgoing.into());
    }
    if !caller.grants.allows(found.owner) {
        return Err(ApiError::NotFound);
    }
    Ok((key, found))
}

/// `PATCH /api/v1/chats/{chat}/messages/{message}`: edits the text of a message the team sent.
pub async fn edit(
    State(s): State<Service>,
    caller: Caller,
    Path((chat, msg)): Path<(String, i64)>,
    Json(body): Json<EditMessage>,
) -> Result<Json<MessageDto>, ApiError> {
    let text = Zeroizing::new(body.text);
    check_text(&text)?;
    let (key, stored) = own_message(&s, &caller, &chat, msg).await?;
    s.outbox
        .edit(key, stored.owner, stored.chat_kind, stored.message_id, text)
        .await?;
    let g = caller.grants.clone();
    let dto = s.store.read(move |r| visible::message(r, &g, key)).await?;
    dto.map(Json).ok_or(ApiError::NotFound)
}

/// `DELETE /api/v1/chats/{chat}/messages/{message}`: deletes a message the team sent.
pub async fn delete(
    State(s): State<Service>,
    caller: Caller,
    Path((chat, msg)): Path<(String, i64)>,
) -> Result<StatusCode, ApiError> {
    let (key, stored) = own_message(&s, &caller, &chat, msg).await?;
    s.outbox
        .delete(key, stored.owner, stored.chat_kind, stored.message_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Typing in a chat: tells the other agents who see it and, within the limits, Telegram.
/// Returns whether Telegram was told. Shared by REST and WebSocket.
pub async fn typing_for(s: &Service, caller: &Caller, key: ChatKey) -> Result<bool, ApiError> {
    let chat = visible_chat(s, caller, key).await?;
    let account = sending_account(s, caller, &chat, None)?;
    live_typing(s, key, &chat, &caller.name);
    Ok(s.outbox.typing(account, key.chat, chat.record.kind))
}

fn live_typing(s: &Service, key: ChatKey, chat: &ChatView, user: &str) {
    s.hub.publish(crate::live::Ephemeral::Typing {
        chat: key,
        accounts: chat.record.accounts.clone(),
        user: user.to_owned(),
    });
}

/// `POST /api/v1/chats/{chat}/typing`.
pub async fn typing(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let key = chat_key(&id)?;
    let told = typing_for(&s, &caller, key).await?;
    Ok(Json(json!({"chat": chat_id(key), "telegram": told})))
}
