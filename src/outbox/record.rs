//! The outbox's stored values: one [`OutboxRecord`] per send, and the [`StatusSnapshot`] each
//! `message.status` event points to. What a message says is only ever inside
//! [`OutboxRecord::text`], sealed with the account's data key, and what names its file (name,
//! type) inside [`StoredFile::Sealed`], sealed the same way; reasons name errors and limits,
//! never the text.
//!
//! Format versions of [`OutboxRecord`]: 1 kept the file's name and type in the clear; 2 seals
//! them; 3 adds the API token's hash; 4 adds the text's entities (sealed like the text). A version 1 record still decodes ([`from_v1`]), its file as [`StoredFile::Clear`],
//! and the outbox seals those at start-up ([`super::jobs::seal_old_files`]) and whenever it
//! writes the record again.

use serde::{Deserialize, Serialize};

use crate::model::ChatKind;
use crate::store::codec::Record;
use crate::store::seal::{Sealed, Sealer};
use crate::store::{ChatKey, MsgKey, StoreError};

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
/// [`super::attach::AttachmentSource`]): what the API hands over and the sender uploads. It is
/// stored as a [`StoredFile`], its name and type sealed; the bytes never pass through the
/// outbox's tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    /// The attachment store's opaque id.
    pub id: String,
    pub file_name: String,
    pub mime_type: String,
    pub size: u64,
}

/// What names a file (the sealed part of a [`StoredFile`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub file_name: String,
    pub mime_type: String,
}

impl Record for FileMeta {
    const NAME: &'static str = "outbox file";
    const VERSION: u8 = 1;
}

/// What an item keeps of its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoredFile {
    /// The attachment store's id and the size (an identifier and a count) in the clear; the
    /// [`FileMeta`] sealed under the account's key (associated data: [`file_aad`]).
    Sealed { id: String, size: u64, meta: Sealed },
    /// Read from a version 1 record: name and type in the clear. Never written: the next write
    /// of the record seals it (see the module docs).
    Clear(AttachmentRef),
}

impl StoredFile {
    /// Seals `file`'s name and type for item `item`.
    pub fn seal(sealer: &Sealer, item: u64, file: &AttachmentRef) -> Result<StoredFile, StoreError> {
        let meta = FileMeta {
            file_name: file.file_name.clone(),
            mime_type: file.mime_type.clone(),
        };
        Ok(StoredFile::Sealed {
            id: file.id.clone(),
            size: file.size,
            meta: sealer.seal_record(&meta, &file_aad(item))?,
        })
    }

    /// The file as the sender needs it, name and type opened.
    pub fn open(&self, sealer: &Sealer, item: u64) -> Result<AttachmentRef, StoreError> {
        match self {
            StoredFile::Sealed { id, size, meta } => {
                let meta: FileMeta = sealer.open_record(meta, &file_aad(item))?;
                Ok(AttachmentRef {
                    id: id.clone(),
                    file_name: meta.file_name,
                    mime_type: meta.mime_type,
                    size: *size,
                })
            }
            StoredFile::Clear(file) => Ok(file.clone()),
        }
    }

    pub fn is_clear(&self) -> bool {
        matches!(self, StoredFile::Clear(_))
    }
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
    pub attachment: Option<StoredFile>,
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
    /// SHA-256 of the API token it was sent with; `None` from a browser session (or queued
    /// before version 3 of this record).
    pub token: Option<[u8; 32]>,
    /// The text's formatting ([`OutEntities`]), sealed under the account's key (associated
    /// data: [`entities_aad`]); `None` for plain text. Dropped with the text once sent.
    pub entities: Option<Sealed>,
}

/// One formatting entity of a text to send, as the API takes it (the shape it shows received
/// entities in): Telegram's type name and a range in UTF-16 code units, as both Telegram APIs
/// count them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutEntity {
    pub kind: String,
    pub offset: u32,
    pub length: u32,
    pub url: Option<String>,
    pub user_id: Option<i64>,
    pub language: Option<String>,
    pub custom_emoji_id: Option<String>,
}

/// What an item's sealed entities hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutEntities(pub Vec<OutEntity>);

impl Record for OutEntities {
    const NAME: &'static str = "outbox entities";
    const VERSION: u8 = 1;
}

/// Associated data of an item's sealed [`OutEntities`].
pub fn entities_aad(item: u64) -> [u8; 23] {
    let mut out = [0u8; 23];
    out[..15].copy_from_slice(b"outbox-entities");
    out[15..].copy_from_slice(&item.to_be_bytes());
    out
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

/// Associated data of an item's sealed [`FileMeta`].
pub fn file_aad(item: u64) -> [u8; 19] {
    let mut out = [0u8; 19];
    out[..11].copy_from_slice(b"outbox-file");
    out[11..].copy_from_slice(&item.to_be_bytes());
    out
}

impl Record for OutboxRecord {
    const NAME: &'static str = "outbox item";
    const VERSION: u8 = 4;

    fn migrate(version: u8, bytes: &[u8]) -> Result<Self, StoreError> {
        match version {
            1 => from_v1(bytes),
            2 => from_v2(bytes),
            3 => from_v3(bytes),
            v => Err(StoreError::Format {
                record: Self::NAME,
                detail: format!("unknown format version {v}"),
            }),
        }
    }
}

/// Reads a version 1 record: the same fields, the file's name and type in the clear.
pub fn from_v1(bytes: &[u8]) -> Result<OutboxRecord, StoreError> {
    #[derive(Deserialize)]
    struct V1 {
        id: u64,
        account: u64,
        scope: u64,
        chat_id: i64,
        chat_kind: ChatKind,
        user: u64,
        reply_to: Option<i64>,
        attachment: Option<AttachmentRef>,
        text: Option<Sealed>,
        state: ItemState,
        attempts: u32,
        rate_limited: u32,
        created_at: i64,
        updated_at: i64,
        seq: u64,
    }
    let v: V1 = postcard::from_bytes(bytes).map_err(|e| StoreError::Format {
        record: OutboxRecord::NAME,
        detail: format!("version 1: {e}"),
    })?;
    Ok(OutboxRecord {
        id: v.id,
        account: v.account,
        scope: v.scope,
        chat_id: v.chat_id,
        chat_kind: v.chat_kind,
        user: v.user,
        reply_to: v.reply_to,
        attachment: v.attachment.map(StoredFile::Clear),
        text: v.text,
        state: v.state,
        attempts: v.attempts,
        rate_limited: v.rate_limited,
        created_at: v.created_at,
        updated_at: v.updated_at,
        seq: v.seq,
        token: None,
        entities: None,
    })
}

/// Reads a version 2 record: version 3 added `token`, at the end.
pub fn from_v2(bytes: &[u8]) -> Result<OutboxRecord, StoreError> {
    #[derive(Deserialize)]
    struct V2 {
        id: u64,
        account: u64,
        scope: u64,
        chat_id: i64,
        chat_kind: ChatKind,
        user: u64,
        reply_to: Option<i64>,
        attachment: Option<StoredFile>,
        text: Option<Sealed>,
        state: ItemState,
        attempts: u32,
        rate_limited: u32,
        created_at: i64,
        updated_at: i64,
        seq: u64,
    }
    let v: V2 = postcard::from_bytes(bytes).map_err(|e| StoreError::Format {
        record: OutboxRecord::NAME,
        detail: format!("version 2: {e}"),
    })?;
    Ok(OutboxRecord {
        id: v.id,
        account: v.account,
        scope: v.scope,
        chat_id: v.chat_id,
        chat_kind: v.chat_kind,
        user: v.user,
        reply_to: v.reply_to,
        attachment: v.attachment,
        text: v.text,
        state: v.state,
        attempts: v.attempts,
        rate_limited: v.rate_limited,
        created_at: v.created_at,
        updated_at: v.updated_at,
        seq: v.seq,
        token: None,
        entities: None,
    })
}

/// Reads a version 3 record: version 4 added `entities`, at the end.
pub fn from_v3(bytes: &[u8]) -> Result<OutboxRecord, StoreError> {
    #[derive(Deserialize)]
    struct V3 {
        id: u64,
        account: u64,
        scope: u64,
        chat_id: i64,
        chat_kind: ChatKind,
        user: u64,
        reply_to: Option<i64>,
        attachment: Option<StoredFile>,
        text: Option<Sealed>,
        state: ItemState,
        attempts: u32,
        rate_limited: u32,
        created_at: i64,
        updated_at: i64,
        seq: u64,
        token: Option<[u8; 32]>,
    }
    let v: V3 = postcard::from_bytes(bytes).map_err(|e| StoreError::Format {
        record: OutboxRecord::NAME,
        detail: format!("version 3: {e}"),
    })?;
    Ok(OutboxRecord {
        id: v.id,
        account: v.account,
        scope: v.scope,
        chat_id: v.chat_id,
        chat_kind: v.chat_kind,
        user: v.user,
        reply_to: v.reply_to,
        attachment: v.attachment,
        text: v.text,
        state: v.state,
        attempts: v.attempts,
        rate_limited: v.rate_limited,
        created_at: v.created_at,
        updated_at: v.updated_at,
        seq: v.seq,
        token: v.token,
        entities: None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_2_item_reads_as_sent_from_a_session() {
        let rec = OutboxRecord {
            id: 7,
            account: 1,
            scope: 1,
            chat_id: 42,
            chat_kind: ChatKind::Private,
            user: 3,
            reply_to: Some(5),
            attachment: None,
            text: None,
            state: ItemState::Queued,
            attempts: 1,
            rate_limited: 0,
            created_at: 100,
            updated_at: 101,
            seq: 9,
            token: None,
            entities: None,
        };
        // Version 3 is version 4 without the trailing `entities`, version 2 is version 3
        // without the trailing `token` (postcard writes `None` as one 0).
        let v4 = postcard::to_allocvec(&rec).unwrap();
        assert_eq!(&v4[v4.len() - 2..], &[0, 0]);
        let v3 = &v4[..v4.len() - 1];
        assert_eq!(OutboxRecord::migrate(3, v3).unwrap(), rec);
        let v2 = &v4[..v4.len() - 2];
        assert_eq!(OutboxRecord::migrate(2, v2).unwrap(), rec);
        assert!(OutboxRecord::migrate(9, v2).is_err());
    }
}
