//! The outbox's stored values: one [`OutboxRecord`] per send, and the [`StatusSnapshot`] each
//! `message.status` event points to. What a message says is only ever inside
//! [`OutboxRecord::text`], sealed with the account's data key; reasons name errors and limits,
//! never the text.

use serde::{Deserialize, Serialize};

use crate::model::ChatKind;
use crate::store::codec::Record;
use crate::store::seal::Sealed;
use crate::store::{ChatKey, MsgKey};

/// Where an item is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemState {
    /// Waiting for its turn (or for a retry).
    Queued,
    /// Handed to Telegram and not yet answered. Found at start-up, it means lanbox stopped
    /// while Telegram had the request: whether it was delivered is unknown (see
    /// [`super::Outbox`] for what happens then).
    Sending,
    /// Accepted by Telegram; `key` is the message's store key in its chat.
    Sent { telegram_id: i64, key: i64 },
    /// Given up on. The reason never contains the text.
    Failed { reason: String },
}

impl ItemState {
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemState::Queued => "queued",
            ItemState::Sending => "sending",
            ItemState::Sent { .. } => "sent",
            ItemState::Failed { .. } => "failed",
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, ItemState::Queued | ItemState::Sending)
    }
}

/// A file to send with an item, as the attachment store names it (see
/// [`super::attach::AttachmentSource`]). The name and type are metadata the store keeps in the
/// clear already; the bytes never pass through the outbox's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The attachment store's opaque id.
    pub id: String,
    pub file_name: String,
    pub mime_type: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub id: u64,
    pub account: u64,
    /// The chat as the store keys it (scope and Telegram chat ID).
    pub scope: u64,
    pub chat_id: i64,
    pub chat_kind: ChatKind,
    /// The user who queued it.
    pub user: u64,
    /// Telegram message ID answered, if any.
    pub reply_to: Option<i64>,
    pub attachment: Option<AttachmentRef>,
    /// The text, sealed under the account's key (associated data: [`text_aad`]). Dropped once
    /// the item is sent: the message in the chat holds it from then on.
    pub text: Option<Sealed>,
    pub state: ItemState,
    /// Requests made (a 429 answer does not count: see [`super::Limits`]).
    pub attempts: u32,
    /// 429 answers met.
    pub rate_limited: u32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Sequence number of the newest `message.status` event about this item.
    pub seq: u64,
}

impl OutboxRecord {
    pub fn chat(&self) -> ChatKey {
        ChatKey {
            scope: self.scope,
            chat: self.chat_id,
        }
    }

    /// The sent message's store key, once sent.
    pub fn message_key(&self) -> Option<MsgKey> {
        match self.state {
            ItemState::Sent { key, .. } => Some(self.chat().msg(key)),
            _ => None,
        }
    }
}

/// Associated data of an item's sealed text.
pub fn text_aad(item: u64) -> [u8; 14] {
    let mut out = [0u8; 14];
    out[..6].copy_from_slice(b"outbox");
    out[6..].copy_from_slice(&item.to_be_bytes());
    out
}

impl Record for OutboxRecord {
    const NAME: &'static str = "outbox item";
    const VERSION: u8 = 1;
}

/// What one `message.status` event said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusSnapshot {
    pub item: u64,
    pub state: ItemState,
}

impl Record for StatusSnapshot {
    const NAME: &'static str = "outbox status";
    const VERSION: u8 = 1;
}
