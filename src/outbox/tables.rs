//! The outbox's redb tables, declared once, with value types that own their encoding (they live in the store's file and change in the
//! writer's transactions, like every other table).
//!
//! Nothing here holds plaintext: an item's text and its file's name and type are sealed with
//! its account's data key inside [`super::record::OutboxRecord`]; idempotency keys are stored as SHA-256 digests; the rest is
//! identifiers, counters and times.
//!
//! Names follow `key_value`, prefixed `outbox_`.

use redb::TableDefinition;

use super::record::{OutboxRecord, StatusSnapshot};
use crate::store::codec::Rec;

/// `item -> OutboxRecord`.
pub const ITEM_RECORD: TableDefinition<u64, Rec<OutboxRecord>> = TableDefinition::new("outbox_item_record");
/// `account (8 bytes BE) ++ SHA-256(idempotency key) -> item`: a retried send finds its item.
pub const ACCOUNTKEY_ITEM: TableDefinition<&[u8; 40], u64> = TableDefinition::new("outbox_accountkey_item");
/// `account << 64 | item -> ()`: items still to send (queued or sending), in order per account.
pub const ACCOUNT_PENDING: TableDefinition<u128, ()> = TableDefinition::new("outbox_account_pending");
/// `account -> day << 32 | sends accepted that UTC day` (the daily limit's counter).
pub const ACCOUNT_TODAY: TableDefinition<u64, u64> = TableDefinition::new("outbox_account_today");
/// `account -> items that failed` (a counter for the stats).
pub const ACCOUNT_FAILED: TableDefinition<u64, u64> = TableDefinition::new("outbox_account_failed");
/// `seq -> StatusSnapshot`: what a `message.status` event of the log said (the event record
/// itself only names the chat and message).
pub const SEQ_STATUS: TableDefinition<u64, Rec<StatusSnapshot>> = TableDefinition::new("outbox_seq_status");
/// `(scope, chat, message) -> item`: which item put a sent message in its chat, so the inbox
/// can say which user sent it (the item records them).
pub const MSGKEY_ITEM: TableDefinition<(u64, i64, i64), u64> = TableDefinition::new("outbox_msgkey_item");
/// `name -> u64`: the next item number.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("outbox_meta");

pub const META_NEXT_ITEM: &str = "next_item";
/// Set once every item written before file names were sealed has been sealed (see
/// [`super::jobs::seal_old_files`]).
pub const META_FILES_SEALED: &str = "files_sealed";

/// Every table above, by name, for size reports.
pub const TABLE_NAMES: [&str; 8] = [
    "outbox_item_record",
    "outbox_msgkey_item",
    "outbox_accountkey_item",
    "outbox_account_pending",
    "outbox_account_today",
    "outbox_account_failed",
    "outbox_seq_status",
    "outbox_meta",
];

/// Key of [`ACCOUNT_PENDING`].
pub fn pending_key(account: u64, item: u64) -> u128 {
    (u128::from(account) << 64) | u128::from(item)
}

/// Every pending key of one account: `start..end`.
pub fn pending_range(account: u64) -> std::ops::Range<u128> {
    pending_key(account, 0)..pending_key(account, u64::MAX)
}

/// Key of [`ACCOUNTKEY_ITEM`]: the account, then the digest of the client's key.
pub fn account_key(account: u64, idempotency_key: &str) -> [u8; 40] {
    use sha2::Digest;
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&account.to_be_bytes());
    out[8..].copy_from_slice(&sha2::Sha256::digest(idempotency_key.as_bytes()));
    out
}

/// Days since the Unix epoch (UTC), from Unix seconds.
pub fn utc_day(unix: i64) -> u32 {
    unix.div_euclid(86_400).max(0) as u32
}

/// Creates every table, so readers never meet a missing one.
pub fn create_all(txn: &redb::WriteTransaction) -> Result<(), redb::TableError> {
    txn.open_table(ITEM_RECORD)?;
    txn.open_table(ACCOUNTKEY_ITEM)?;
    txn.open_table(ACCOUNT_PENDING)?;
    txn.open_table(ACCOUNT_TODAY)?;
    txn.open_table(ACCOUNT_FAILED)?;
    txn.open_table(SEQ_STATUS)?;
    txn.open_table(MSGKEY_ITEM)?;
    txn.open_table(META)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_group_by_account() {
        assert!(pending_range(1).contains(&pending_key(1, 5)));
        assert!(!pending_range(1).contains(&pending_key(2, 0)));
        assert!(pending_key(1, u64::MAX - 1) < pending_key(2, 0));
        assert_ne!(account_key(1, "k"), account_key(2, "k"));
        assert_eq!(utc_day(86_399), 0);
        assert_eq!(utc_day(86_400), 1);
    }
}
