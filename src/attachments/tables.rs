//! The attachment subsystem's own redb tables and records, declared once, with value types that
//! own their encoding (like `search::tables`). Records hold identifiers, sizes and states only: file names, MIME types
//! and Telegram file IDs stay in the sealed message content and are read from there.

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use crate::model::MediaKind;
use crate::store::StoreError;
use crate::store::codec::{Bare, Rec, Record, Stored};
use crate::store::seal::Sealed;
use crate::store::tables::MsgKey;

/// `attachment id -> AttachmentRecord`.
pub const ATTACHMENT_RECORD: TableDefinition<u64, Rec<AttachmentRecord>> =
    TableDefinition::new("attachment_record");
/// `(message, role) -> attachment id`: a message's attachments.
pub const MSG_ATTACHMENT: TableDefinition<(MsgKey, u8), u64> = TableDefinition::new("msg_attachment");
/// `attachment id -> not before (unix seconds)`: the durable fetch queue.
pub const ATTACHMENT_FETCH: TableDefinition<u64, u64> = TableDefinition::new("attachment_fetch");
/// `attachment id -> not before (unix seconds)`: the durable S3 upload queue.
pub const ATTACHMENT_SYNC: TableDefinition<u64, u64> = TableDefinition::new("attachment_sync");
/// `attachment id -> not before (unix seconds)`: S3 objects still to delete.
pub const ATTACHMENT_UNSYNC: TableDefinition<u64, u64> = TableDefinition::new("attachment_unsync");
/// `name -> u64`: the fetcher's event-log cursor, the next attachment ID.
pub const ATTACHMENT_META: TableDefinition<&str, u64> = TableDefinition::new("attachment_meta");
/// `name -> sealed key material` (the URL signing key, wrapped by the master key; stored as
/// bare postcard, see [`Bare`]).
pub const ATTACHMENT_KEY: TableDefinition<&str, Rec<Sealed, Bare>> = TableDefinition::new("attachment_key");
/// `attachment id -> fingerprint of Telegram's file_unique_id` (see [`fingerprint`]): tells an
/// edit that only changed the caption from one that brought a different file.
pub const ATTACHMENT_FILE: TableDefinition<u64, u64> = TableDefinition::new("attachment_file");

pub const META_CURSOR: &str = "cursor";
pub const META_NEXT_ID: &str = "next_id";
/// The next attachment ID the orphan sweep looks at; absent when no sweep is due.
pub const META_SWEEP: &str = "sweep";

/// A stable 64-bit fingerprint of a file's identity (`file_unique_id`, else `file_id`): not
/// the identifier itself, which stays in the sealed message.
pub fn fingerprint(file: &crate::model::Attachment) -> u64 {
    let id = if file.file_unique_id.is_empty() {
        &file.file_id
    } else {
        &file.file_unique_id
    };
    let h = blake3::hash(id.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Which file of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Main,
    Thumbnail,
    /// Uploaded through the API for sending (not yet attached to a sent message).
    Upload,
}

impl Role {
    pub fn byte(self) -> u8 {
        match self {
            Role::Main => 0,
            Role::Thumbnail => 1,
            Role::Upload => 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Queued for fetching.
    Pending,
    /// Stored locally (and, with S3, queued or synced).
    Ready,
    /// Bigger than the Bot API lets a bot download (20 MB on Telegram's servers).
    TooBig,
    /// Given up on; the reason never holds file content or names.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachmentRecord {
    pub id: u64,
    /// Account whose data key encrypts the file (and whose bot fetches it).
    pub owner: u64,
    /// Accounts that may see it (grants), as the message's `seen_by` when recorded.
    pub accounts: Vec<u64>,
    /// The message it belongs to as (scope, chat, message key); `None` for uploads not yet
    /// sent. See [`AttachmentRecord::message`].
    pub msg: Option<(u64, i64, i64)>,
    pub role: Role,
    pub kind: Option<MediaKind>,
    pub state: State,
    /// Plaintext bytes, once stored.
    pub size: Option<u64>,
    /// Size Telegram announced, if any.
    pub announced: Option<u64>,
    /// The encrypted file is in the bucket.
    pub synced: bool,
    /// The encrypted file is on local disk.
    pub local: bool,
    pub attempts: u32,
    pub created_at: i64,
    /// Uploads only: [`UploadMeta`] (file name, type), sealed with the owner's data key under
    /// [`meta_aad`]. Files of messages take theirs from the sealed message.
    pub meta: Option<Sealed>,
}

/// What the uploader said about a file, kept sealed in [`AttachmentRecord::meta`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadMeta {
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
}

impl Record for UploadMeta {
    const NAME: &'static str = "upload meta";
    const VERSION: u8 = 1;
}

/// Associated data binding an upload's sealed metadata to its attachment.
pub fn meta_aad(id: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(b"att/meta");
    out[8..].copy_from_slice(&id.to_be_bytes());
    out
}

impl AttachmentRecord {
    pub fn message(&self) -> Option<MsgKey> {
        self.msg.map(|(scope, chat, msg)| MsgKey { scope, chat, msg })
    }
}

pub fn msg_ref(k: MsgKey) -> Option<(u64, i64, i64)> {
    Some((k.scope, k.chat, k.msg))
}

impl Record for AttachmentRecord {
    const NAME: &'static str = "attachment";
    const VERSION: u8 = 1;
}

/// The tables of one write transaction.
pub struct Tables<'t> {
    pub records: Table<'t, u64, Rec<AttachmentRecord>>,
    pub by_msg: Table<'t, (MsgKey, u8), u64>,
    pub fetch: Table<'t, u64, u64>,
    pub sync: Table<'t, u64, u64>,
    pub unsync: Table<'t, u64, u64>,
    pub meta: Table<'t, &'static str, u64>,
    pub files: Table<'t, u64, u64>,
}

impl<'t> Tables<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Tables<'t>, StoreError> {
        Ok(Tables {
            records: txn.open_table(ATTACHMENT_RECORD)?,
            by_msg: txn.open_table(MSG_ATTACHMENT)?,
            fetch: txn.open_table(ATTACHMENT_FETCH)?,
            sync: txn.open_table(ATTACHMENT_SYNC)?,
            unsync: txn.open_table(ATTACHMENT_UNSYNC)?,
            meta: txn.open_table(ATTACHMENT_META)?,
            files: txn.open_table(ATTACHMENT_FILE)?,
        })
    }

    pub fn get(&self, id: u64) -> Result<Option<AttachmentRecord>, StoreError> {
        self.records.get(id)?.map(|v| v.value().get()).transpose()
    }

    pub fn put(&mut self, rec: &AttachmentRecord) -> Result<(), StoreError> {
        self.records.insert(rec.id, Stored::new(rec)?)?;
        Ok(())
    }

    pub fn next_id(&mut self) -> Result<u64, StoreError> {
        let id = self.meta.get(META_NEXT_ID)?.map(|v| v.value()).unwrap_or(1);
        self.meta.insert(META_NEXT_ID, id + 1)?;
        Ok(id)
    }

    pub fn cursor(&self) -> Result<u64, StoreError> {
        Ok(self.meta.get(META_CURSOR)?.map(|v| v.value()).unwrap_or(0))
    }

    pub fn set_cursor(&mut self, seq: u64) -> Result<(), StoreError> {
        self.meta.insert(META_CURSOR, seq)?;
        Ok(())
    }

    /// The attachments of a message, by role.
    pub fn of_message(&self, key: MsgKey) -> Result<Vec<(Role, u64)>, StoreError> {
        let mut out = Vec::new();
        for role in [Role::Main, Role::Thumbnail] {
            if let Some(id) = self.by_msg.get((key, role.byte()))? {
                out.push((role, id.value()));
            }
        }
        Ok(out)
    }
}

/// Creates every table, so readers never meet a missing one.
pub fn ensure(txn: &WriteTransaction) -> Result<(), StoreError> {
    Tables::open(txn)?;
    txn.open_table(ATTACHMENT_KEY)?;
    Ok(())
}

/// Read side: one record.
pub fn read_record(txn: &redb::ReadTransaction, id: u64) -> Result<Option<AttachmentRecord>, StoreError> {
    let t = txn.open_table(ATTACHMENT_RECORD)?;
    t.get(id)?.map(|v| v.value().get()).transpose()
}

/// Read side: a message's attachment IDs by role.
pub fn read_of_message(txn: &redb::ReadTransaction, key: MsgKey) -> Result<Vec<(Role, u64)>, StoreError> {
    let t = txn.open_table(MSG_ATTACHMENT)?;
    let mut out = Vec::new();
    for role in [Role::Main, Role::Thumbnail] {
        if let Some(id) = t.get((key, role.byte()))? {
            out.push((role, id.value()));
        }
    }
    Ok(out)
}

/// Read side: up to `limit` queue entries due at `now`, oldest ID first.
pub fn read_due(
    txn: &redb::ReadTransaction,
    queue: TableDefinition<u64, u64>,
    now: u64,
    limit: usize,
) -> Result<Vec<u64>, StoreError> {
    let t = txn.open_table(queue)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        if v.value() <= now {
            out.push(k.value());
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
