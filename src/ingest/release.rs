//! Releasing an account: everything lanbox holds for it goes, and its data key is destroyed.
//!
//! What goes: the chats only it has (private chats and basic groups, whose message IDs are per
//! account) with all their messages; in chats it shares with other accounts (supergroups and
//! channels), the messages only it received. What stays is what other accounts received too,
//! now without the released account in `seen_by`; a message or chat that was sealed under the
//! released account's key is re-sealed under the key of an account that keeps it, before that
//! key is destroyed. Search entries follow the messages through the [`IndexHook`]. Last, the
//! account record (with its wrapped data key), counters and position are deleted: anything
//! still sealed under the key, anywhere, is unreadable from then on.
//!
//! A release can be large (a million messages), so it runs as many small write jobs of at most
//! [`CHUNK`] messages each instead of one huge transaction, which would hold every dirty page
//! in memory. A meta flag marks a release in progress; every step is idempotent, so after a
//! crash [`release`] simply runs again from the start ([`pending`] lists what to resume).
//!
//! No per-message events are written: the account's viewers lose access to all of it at once,
//! and a million `message.deleted` events would only bloat the log. One `chat.read` style
//! refresh is not needed either: chats that disappear are simply absent from the next listing.

use std::sync::Arc;

use super::apply::{self, IndexHook};
use crate::model::MessageContent;
use crate::store::records::StoredMessage;
use crate::store::{ChatKey, MsgKey, Store, StoreError, WriteCtx};

/// Messages handled per write job.
pub const CHUNK: usize = 1_000;

const FLAG_PREFIX: &str = "release_pending/";

/// What a release did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Released {
    pub messages_deleted: u64,
    /// Messages kept because other accounts received them too.
    pub messages_kept: u64,
    /// Of those, how many were re-sealed under another account's key.
    pub messages_resealed: u64,
    pub chats_deleted: u64,
}

/// Accounts whose release was started and not finished (to resume after a crash).
pub fn pending(store: &Store) -> Result<Vec<u64>, StoreError> {
    let r = store.reader()?;
    let t = r.txn().open_table(crate::store::tables::META)?;
    let mut out = Vec::new();
    for row in redb::ReadableTable::iter(&t)? {
        let (k, _) = row?;
        if let Some(id) = k.value().strip_prefix(FLAG_PREFIX).and_then(|s| s.parse().ok()) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Marks `account`'s release as begun, so that [`pending`] lists it until [`release`] ends:
/// a caller with its own steps to take first (files, the outbox) calls this before them, so a
/// crash during any of them is finished at the next start.
pub async fn begin(store: &Store, account: u64) -> Result<(), StoreError> {
    let flag = format!("{FLAG_PREFIX}{account}");
    store
        .write(1, move |ctx| {
            ctx.account(account)?;
            let now = ctx.now as u64;
            ctx.set_meta_flag(&flag, Some(now))
        })
        .await
}

/// Releases `account`; see the module documentation. The caller stops the account's connector
/// first (a poller still running would bring messages back).
pub async fn release(store: &Store, index: Arc<dyn IndexHook>, account: u64) -> Result<Released, StoreError> {
    let flag = format!("{FLAG_PREFIX}{account}");
    begin(store, account).await?;
    let chats: Vec<ChatKey> = store
        .read(move |r| {
            Ok(r.chat_records()?
                .into_iter()
                .filter(|(k, c)| k.scope == account || c.accounts.contains(&account))
                .map(|(k, _)| k)
                .collect())
        })
        .await?;
    let mut done = Released::default();
    for chat in chats {
        let mut after = i64::MIN;
        loop {
            let index = index.clone();
            let (step, last, more) = store
                .write(CHUNK, move |ctx| chunk(ctx, index.as_ref(), account, chat, after))
                .await?;
            add(&mut done, step);
            match last {
                Some(l) if more => after = l,
                _ => break,
            }
        }
        let index = index.clone();
        let removed = store
            .write(1, move |ctx| leave_chat(ctx, index.as_ref(), account, chat))
            .await?;
        done.chats_deleted += u64::from(removed);
    }
    store
        .write(1, move |ctx| {
            index.remove_account(ctx, account)?;
            ctx.drop_sender_chats(account)?;
            ctx.destroy_account(account)?;
            ctx.set_meta_flag(&flag, None)
        })
        .await?;
    tracing::info!(
        account,
        deleted = done.messages_deleted,
        kept = done.messages_kept,
        resealed = done.messages_resealed,
        chats = done.chats_deleted,
        "account released"
    );
    Ok(done)
}

fn add(total: &mut Released, step: Released) {
    total.messages_deleted += step.messages_deleted;
    total.messages_kept += step.messages_kept;
    total.messages_resealed += step.messages_resealed;
}

/// Handles up to [`CHUNK`] messages of one chat with keys above `after`. Returns what it did,
/// the last key it looked at, and whether the chat may have more.
fn chunk(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    account: u64,
    chat: ChatKey,
    after: i64,
) -> Result<(Released, Option<i64>, bool), StoreError> {
    let mut out = Released::default();
    if after == i64::MAX {
        return Ok((out, None, false));
    }
    let mut rows = ctx.chat_messages_limit(chat, after + 1, CHUNK)?;
    let more = rows.len() == CHUNK;
    let last = rows.last().map(|(k, _)| k.msg);
    for (key, msg) in rows.drain(..) {
        let mine = chat.scope == account || msg.seen_by == [account];
        if mine {
            apply::remove_stored(ctx, index, key)?;
            out.messages_deleted += 1;
        } else if msg.seen_by.contains(&account) {
            if keep_without(ctx, index, account, key, msg)? {
                out.messages_resealed += 1;
            }
            out.messages_kept += 1;
        }
    }
    Ok((out, last, more))
}

/// Takes `account` out of a message others received too, re-sealing it (content, reactions,
/// index entry) under another account's key when it was sealed under the released one.
fn keep_without(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    account: u64,
    key: MsgKey,
    mut msg: StoredMessage,
) -> Result<bool, StoreError> {
    msg.seen_by.retain(|a| *a != account);
    if msg.owner != account {
        ctx.put_message(key, &msg)?;
        return Ok(false);
    }
    let old = msg.clone();
    let content: MessageContent = ctx.open_content(key, &old)?;
    let reactions = ctx.take_reactions(key, old.owner)?;
    index.remove(ctx, key, &old, &content)?;
    msg.owner = msg.seen_by[0];
    msg.content = ctx.seal_content(msg.owner, key, &content)?;
    ctx.put_reactions(key, msg.owner, &reactions)?;
    index.put(ctx, key, &msg, &content)?;
    ctx.put_message(key, &msg)?;
    Ok(true)
}

/// Takes `account` out of a chat once its messages are handled: the chat goes when no account
/// is left (or it was the account's own), and its title is re-sealed under the next owner.
fn leave_chat(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    account: u64,
    chat: ChatKey,
) -> Result<bool, StoreError> {
    let Some(state) = ctx.chat(chat)? else {
        return Ok(false);
    };
    let others = state.record.accounts.iter().any(|a| *a != account);
    if chat.scope == account || !others {
        // Messages of other accounts in a chat none of them has are not expected; if there
        // are any, they go with the chat rather than stay unreachable.
        for (k, _) in ctx.chat_messages(chat, i64::MIN, i64::MAX)? {
            apply::remove_stored(ctx, index, k)?;
        }
        ctx.remove_chat(chat)?;
        return Ok(true);
    }
    let new_owner = ctx
        .update_chat(chat, |s| {
            s.record.accounts.retain(|a| *a != account);
            if s.record.owner == account {
                s.record.owner = s.record.accounts[0];
                s.meta_changed = true;
            }
            s.record.owner
        })?
        .unwrap_or(account);
    // Notes sealed under the released key move to the chat's new owner.
    super::notes::reseal(ctx, chat, chat, new_owner)?;
    Ok(false)
}
