//! Every redb table of the box, as a backup copies it, and this module's own table.
//!
//! A backup copies records byte for byte (they are sealed already where they say anything), so
//! it needs no knowledge of what they mean; it only needs each table's key and value types, to
//! open it and to write records back in the table's own key order on restore. [`ALL`] lists
//! them. A table in the database that [`ALL`] does not list fails the backup with its name
//! (rather than leaving it out silently): a new table is added here with its layer's others.

use redb::{ReadTransaction, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::BackupError;
use crate::attachments::tables as att;
use crate::auth::tables as auth;
use crate::canned::tables as canned;
use crate::channels::mtproto::state as mtproto;
use crate::channels::mtproto::{backfill, channel_access, message_chat};
use crate::outbox::tables as outbox;
use crate::search::tables as search;
use crate::store::codec::{Rec, Record};
use crate::store::seal::Sealed;
use crate::store::tables as store;

/// `name -> BackupKeyRecord`: the backup key, wrapped by the master key.
pub const BACKUP_SETTING: TableDefinition<&str, Rec<BackupKeyRecord>> =
    TableDefinition::new("backup_setting");
pub const KEY_NAME: &str = "key";

/// The passphrase-derived backup key, wrapped, with the derivation parameters a restore needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupKeyRecord {
    pub kdf: super::format::Kdf,
    pub wrapped: Sealed,
    pub set_at: i64,
}

impl Record for BackupKeyRecord {
    const NAME: &'static str = "backup key";
    const VERSION: u8 = 1;
}

/// Receives one record's key and value bytes.
pub type EachRecord<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), BackupError> + 'a;
/// Hands out the next record to insert, `None` when there is none (left in this batch).
pub type NextRecord<'a> = dyn FnMut() -> Result<Option<(Vec<u8>, Vec<u8>)>, BackupError> + 'a;

/// One table as the backup sees it: a name, its records as raw bytes out, and back in.
pub trait CopyTable: Sync {
    fn name(&self) -> &str;
    /// Records in the snapshot (redb keeps the count: no scan).
    fn len(&self, txn: &ReadTransaction) -> Result<u64, BackupError>;
    /// Hands every record to `each`, in key order.
    fn dump(&self, txn: &ReadTransaction, each: &mut EachRecord<'_>) -> Result<(), BackupError>;
    /// Inserts records pulled from `next` until it returns `None`.
    fn load(&self, txn: &WriteTransaction, next: &mut NextRecord<'_>) -> Result<(), BackupError>;
}

impl<K: redb::Key + Sync + 'static, V: redb::Value + Sync + 'static> CopyTable
    for TableDefinition<'static, K, V>
{
    fn name(&self) -> &str {
        redb::TableHandle::name(self)
    }

    fn len(&self, txn: &ReadTransaction) -> Result<u64, BackupError> {
        match txn.open_table(*self) {
            Ok(t) => Ok(t.len().map_err(db)?),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(db(e)),
        }
    }

    fn dump(&self, txn: &ReadTransaction, each: &mut EachRecord<'_>) -> Result<(), BackupError> {
        let t = match txn.open_table(*self) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
            Err(e) => return Err(db(e)),
        };
        for row in t.iter().map_err(db)? {
            let (k, v) = row.map_err(db)?;
            let (k, v) = (k.value(), v.value());
            each(K::as_bytes(&k).as_ref(), V::as_bytes(&v).as_ref())?;
        }
        Ok(())
    }

    fn load(&self, txn: &WriteTransaction, next: &mut NextRecord<'_>) -> Result<(), BackupError> {
        let mut t = txn.open_table(*self).map_err(db)?;
        while let Some((k, v)) = next()? {
            check_width::<K>(&k, self.name())?;
            check_width::<V>(&v, self.name())?;
            t.insert(K::from_bytes(&k), V::from_bytes(&v)).map_err(db)?;
        }
        Ok(())
    }
}

/// A fixed-width type handed bytes of another width would panic inside redb: refuse first.
fn check_width<T: redb::Value>(bytes: &[u8], table: &str) -> Result<(), BackupError> {
    match T::fixed_width() {
        Some(w) if w != bytes.len() => Err(BackupError::Damaged(format!(
            "a record of table {table} has the wrong width"
        ))),
        _ => Ok(()),
    }
}

fn db(e: impl Into<redb::Error>) -> BackupError {
    BackupError::Store(crate::store::StoreError::Db(e.into()))
}

/// Every table of the box.
pub static ALL: &[&dyn CopyTable] = &[
    &store::META,
    &store::ACCOUNT_RECORD,
    &store::ACCOUNT_UNREAD,
    &store::ACCOUNT_POSITION,
    &store::ACCOUNT_REJECTED,
    &store::CHAT_RECORD,
    &store::CHAT_MESSAGE,
    &store::MESSAGE_REACTIONS,
    &store::CHAT_USER_READ,
    &store::CHAT_CONVERSATION,
    &store::CHAT_ACTIVITY,
    &store::LABEL_RECORD,
    &store::CHAT_NOTE,
    &store::SENDER_CHAT,
    &store::SEQ_EVENT,
    &auth::USER_RECORD,
    &auth::USERNAME_USER,
    &auth::TOKENHASH_TOKEN,
    &auth::SESSIONHASH_SESSION,
    &canned::CANNED_REPLY,
    &canned::CANNED_KEY,
    &search::TERM_POSTINGS,
    &search::PREFIX_TERM,
    &search::DOCROW_MESSAGES,
    &search::DOCBLOCK_DATES,
    &search::NAME_SENDERS,
    &mtproto::ACCOUNT_MTSTATE,
    &message_chat::ACCOUNT_MESSAGE_CHAT,
    &channel_access::ACCOUNT_CHANNEL_ACCESS,
    &channel_access::ACCOUNT_USER_ACCESS,
    &backfill::ACCOUNT_DIALOG_BACKFILL,
    &backfill::ACCOUNT_BACKFILL,
    &outbox::ITEM_RECORD,
    &outbox::ACCOUNTKEY_ITEM,
    &outbox::ACCOUNT_PENDING,
    &outbox::ACCOUNT_TODAY,
    &outbox::ACCOUNT_FAILED,
    &outbox::SEQ_STATUS,
    &outbox::MSGKEY_ITEM,
    &outbox::META,
    &att::ATTACHMENT_RECORD,
    &att::MSG_ATTACHMENT,
    &att::ATTACHMENT_FETCH,
    &att::ATTACHMENT_SYNC,
    &att::ATTACHMENT_UNSYNC,
    &att::ATTACHMENT_META,
    &att::ATTACHMENT_KEY,
    &att::ATTACHMENT_FILE,
    &BACKUP_SETTING,
];

pub fn by_name(name: &str) -> Option<&'static dyn CopyTable> {
    ALL.iter().copied().find(|t| t.name() == name)
}

/// Tables in the snapshot that [`ALL`] does not know (a backup must not leave them out). The
/// writer's scratch tables hold nothing to keep and are left out.
pub fn unknown(txn: &ReadTransaction) -> Result<Vec<String>, BackupError> {
    let mut out = Vec::new();
    for h in txn.list_tables().map_err(db)? {
        let name = redb::TableHandle::name(&h).to_string();
        if by_name(&name).is_none() && !store::SCRATCH.contains(&name.as_str()) {
            out.push(name);
        }
    }
    if txn.list_multimap_tables().map_err(db)?.next().is_some() {
        out.push("(a multimap table)".into());
    }
    Ok(out)
}
