//! Which chat each stored message of a user account's private chats and basic groups is in.
//!
//! MTProto numbers those messages per account, and `updateDeleteMessages` names only the
//! numbers, not the chat, while lanbox keys messages by chat. So the connector records
//! `(account, message ID) -> chat` for every such message it commits, in the same transaction
//! ([`crate::ingest::Pipeline::submit_with`]), drops the row when the message is deleted, and
//! looks the chats of a delete up here. Supergroups and channels need none of this: their
//! deletes name the channel. Only IDs are kept, never content.

use redb::TableDefinition;

use crate::ingest::Change;
use crate::store::{Reader, StoreError, WriteCtx};

/// `(account, Telegram message ID) -> chat ID` (the model's: a user's ID, or `-id` of a basic
/// group).
pub const ACCOUNT_MESSAGE_CHAT: TableDefinition<(u64, i32), i64> =
    TableDefinition::new("mtproto_account_message_chat");

/// One change to the table, made with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Put { message_id: i32, chat: i64 },
    Remove { message_id: i32 },
}

/// The row a stored or edited message needs: messages of chats whose IDs are per account.
pub fn row_for(change: &Change) -> Option<Row> {
    match change {
        Change::New(m) | Change::Edit(m) if m.chat.kind.ids_per_account() => {
            let message_id = i32::try_from(m.message_id).ok()?;
            Some(Row::Put {
                message_id,
                chat: m.chat.id,
            })
        }
        _ => None,
    }
}

/// Inside a write job: applies `rows` for `account`.
pub fn apply(ctx: &mut WriteCtx<'_>, account: u64, rows: &[Row]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut t = ctx.txn().open_table(ACCOUNT_MESSAGE_CHAT)?;
    for row in rows {
        match *row {
            Row::Put { message_id, chat } => {
                t.insert((account, message_id), chat)?;
            }
            Row::Remove { message_id } => {
                t.remove((account, message_id))?;
            }
        }
    }
    Ok(())
}

/// The chats of those of `ids` the account has stored (unknown IDs are left out).
pub fn lookup(r: &Reader, account: u64, ids: &[i32]) -> Result<Vec<(i32, i64)>, StoreError> {
    let t = match r.txn().open_table(ACCOUNT_MESSAGE_CHAT) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for &id in ids {
        if let Some(chat) = t.get((account, id))? {
            out.push((id, chat.value()));
        }
    }
    Ok(out)
}

/// Inside a write job: drops every row of `account`.
pub fn forget(ctx: &mut WriteCtx<'_>, account: u64) -> Result<(), StoreError> {
    let mut t = ctx.txn().open_table(ACCOUNT_MESSAGE_CHAT)?;
    t.retain_in((account, i32::MIN)..=(account, i32::MAX), |_, _| false)?;
    Ok(())
}
