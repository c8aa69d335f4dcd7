//! The outbox's writer jobs: each runs inside the store's write transaction, so an item's
//! state, its `message.status` event (with the [`StatusSnapshot`] the event points to), the
//! daily counter and, once sent, the message in its chat all commit together or not at all.
//!
//! Jobs may run more than once (see `Store::write`): they only touch the transaction.

use std::sync::Arc;

use redb::ReadableTable;
use zeroize::Zeroizing;

use super::record::{
    AttachmentRef, ItemState, OutEntities, OutEntity, OutboxRecord, StatusSnapshot, StoredFile, entities_aad,
    text_aad,
};
use super::tables::*;
use crate::ingest::{Batch, Change, IndexHook, apply};
use crate::model::{ChatKind, EventKind, EventRecord, Message};
use crate::store::codec::Stored;
use crate::store::{ChatKey, MsgKey, StoreError, WriteCtx};

/// A send as the API hands it over (already checked: chat visible, account granted).
#[derive(Clone)]
pub struct NewItem {
    pub account: u64,
    pub chat: ChatKey,
    pub chat_kind: ChatKind,
    pub user: u64,
    /// SHA-256 of the API token the send came with (`None` from a browser session).
    pub token: Option<[u8; 32]>,
    pub reply_to: Option<i64>,
    pub text: Zeroizing<String>,
    pub idempotency_key: Option<String>,
    pub attachment: Option<AttachmentRef>,
    /// The text's formatting (empty: plain text).
    pub entities: Vec<OutEntity>,
}

impl std::fmt::Debug for NewItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewItem")
            .field("account", &self.account)
            .field("chat", &self.chat)
            .finish_non_exhaustive()
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone)]
pub enum Enqueued {
    New(OutboxRecord),
    /// The idempotency key was seen before: this is the item it queued, unchanged.
    Existing(OutboxRecord),
    /// The account's daily limit is reached; nothing was queued.
    DailyLimit {
        limit: u32,
    },
}

pub fn get(ctx: &WriteCtx<'_>, id: u64) -> Result<Option<OutboxRecord>, StoreError> {
    let t = ctx.txn().open_table(ITEM_RECORD)?;
    t.get(id)?.map(|v| v.value().get()).transpose()
}

/// Writes an item; a file read in the clear from an older record is sealed on the way.
fn put(ctx: &mut WriteCtx<'_>, rec: &mut OutboxRecord) -> Result<(), StoreError> {
    if let Some(StoredFile::Clear(file)) = &rec.attachment {
        let sealer = ctx.sealer(rec.account)?;
        let sealed = StoredFile::seal(&sealer, rec.id, file)?;
        rec.attachment = Some(sealed);
    }
    let mut t = ctx.txn().open_table(ITEM_RECORD)?;
    t.insert(rec.id, Stored::new(&*rec)?)?;
    Ok(())
}

/// Appends the item's `message.status` event and its snapshot; updates `rec.seq`.
fn publish_status(
    ctx: &mut WriteCtx<'_>,
    rec: &mut OutboxRecord,
    message: Option<Arc<Message>>,
) -> Result<(), StoreError> {
    let event = EventRecord {
        seq: 0,
        kind: EventKind::MessageStatus,
        accounts: vec![rec.account],
        scope: rec.scope,
        chat_id: rec.chat_id,
        message_key: rec.message_key().map(|k| k.msg),
        from_chat: None,
        unread: None,
        at: 0,
    };
    let seq = ctx.append_event(event, message)?;
    let snap = StatusSnapshot {
        item: rec.id,
        state: rec.state.clone(),
    };
    ctx.txn()
        .open_table(SEQ_STATUS)?
        .insert(seq, Stored::new(&snap)?)?;
    rec.seq = seq;
    rec.updated_at = ctx.now;
    Ok(())
}

/// Queues a send: idempotency first (a known key returns its item and queues nothing), then the
/// daily limit, then the item, its pending row and its `queued` event.
pub fn enqueue(ctx: &mut WriteCtx<'_>, item: &NewItem) -> Result<Enqueued, StoreError> {
    let account = item.account;
    let key = item.idempotency_key.as_deref().map(|k| account_key(account, k));
    if let Some(key) = &key {
        let found = ctx
            .txn()
            .open_table(ACCOUNTKEY_ITEM)?
            .get(key)?
            .map(|v| v.value());
        if let Some(id) = found
            && let Some(rec) = get(ctx, id)?
        {
            return Ok(Enqueued::Existing(rec));
        }
    }
    let limit = ctx.account(account)?.daily_limit;
    let day = utc_day(ctx.now);
    let sent_today = {
        let t = ctx.txn().open_table(ACCOUNT_TODAY)?;
        match t.get(account)?.map(|v| v.value()) {
            Some(v) if (v >> 32) as u32 == day => v & 0xffff_ffff,
            _ => 0,
        }
    };
    if let Some(limit) = limit
        && sent_today >= u64::from(limit)
    {
        return Ok(Enqueued::DailyLimit { limit });
    }
    let id = {
        let mut meta = ctx.txn().open_table(META)?;
        let next = meta.get(META_NEXT_ITEM)?.map(|v| v.value()).unwrap_or(1);
        meta.insert(META_NEXT_ITEM, next + 1)?;
        next
    };
    let sealer = ctx.sealer(account)?;
    let sealed = sealer.seal(item.text.as_bytes(), &text_aad(id))?;
    let attachment = item
        .attachment
        .as_ref()
        .map(|a| StoredFile::seal(&sealer, id, a))
        .transpose()?;
    let entities = if item.entities.is_empty() {
        None
    } else {
        Some(sealer.seal_record(&OutEntities(item.entities.clone()), &entities_aad(id))?)
    };
    let mut rec = OutboxRecord {
        id,
        account,
        scope: item.chat.scope,
        chat_id: item.chat.chat,
        chat_kind: item.chat_kind,
        user: item.user,
        reply_to: item.reply_to,
        attachment,
        text: Some(sealed),
        state: ItemState::Queued,
        attempts: 0,
        rate_limited: 0,
        created_at: ctx.now,
        updated_at: ctx.now,
        seq: 0,
        token: item.token,
        entities,
    };
    publish_status(ctx, &mut rec, None)?;
    put(ctx, &mut rec)?;
    ctx.txn()
        .open_table(ACCOUNT_TODAY)?
        .insert(account, (u64::from(day) << 32) | (sent_today + 1))?;
    ctx.txn()
        .open_table(ACCOUNT_PENDING)?
        .insert(pending_key(account, id), ())?;
    if let Some(key) = &key {
        ctx.txn().open_table(ACCOUNTKEY_ITEM)?.insert(key, id)?;
    }
    Ok(Enqueued::New(rec))
}

/// An item marked "sending", with what its request needs opened.
pub struct Begun {
    pub rec: OutboxRecord,
    pub text: Zeroizing<String>,
    /// The text's formatting, opened (empty: plain text).
    pub entities: Vec<OutEntity>,
    /// The file to upload, name and type opened.
    pub file: Option<AttachmentRef>,
}

/// Marks an item "sending" (durably, before the request) and opens its text and file. `None`
/// when the item is no longer pending.
pub fn begin_send(ctx: &mut WriteCtx<'_>, id: u64) -> Result<Option<Begun>, StoreError> {
    let Some(mut rec) = get(ctx, id)? else {
        return Ok(None);
    };
    if !rec.state.is_pending() {
        return Ok(None);
    }
    let sealer = ctx.sealer(rec.account)?;
    let text = match &rec.text {
        Some(sealed) => {
            let plain = Zeroizing::new(sealer.open(sealed, &text_aad(id))?);
            Zeroizing::new(String::from_utf8(plain.to_vec()).map_err(|_| StoreError::Format {
                record: "outbox item",
                detail: "text is not UTF-8".into(),
            })?)
        }
        None => Zeroizing::new(String::new()),
    };
    let file = rec.attachment.as_ref().map(|f| f.open(&sealer, id)).transpose()?;
    let entities = match &rec.entities {
        Some(sealed) => sealer.open_record::<OutEntities>(sealed, &entities_aad(id))?.0,
        None => Vec::new(),
    };
    rec.state = ItemState::Sending;
    rec.attempts += 1;
    rec.updated_at = ctx.now;
    put(ctx, &mut rec)?;
    Ok(Some(Begun {
        rec,
        text,
        entities,
        file,
    }))
}

/// Telegram accepted the item: the message goes into its chat through the ingest pipeline's
/// own stages (dedup, seal, index, event), the item becomes `sent`, all in one transaction.
pub fn finish_sent(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    id: u64,
    message: &Message,
) -> Result<Option<OutboxRecord>, StoreError> {
    let Some(mut rec) = get(ctx, id)? else {
        return Ok(None);
    };
    apply::apply_batch(
        ctx,
        index,
        &Batch {
            account: rec.account,
            changes: vec![Change::New(message.clone())],
            position: None,
        },
    )?;
    let scope = apply::scope_for(rec.account, message.chat.kind);
    ctx.txn()
        .open_table(MSGKEY_ITEM)?
        .insert((scope, message.chat.id, message.message_id), id)?;
    rec.scope = scope;
    rec.chat_id = message.chat.id;
    rec.state = ItemState::Sent {
        telegram_id: message.message_id,
        key: message.message_id,
    };
    rec.text = None;
    rec.entities = None;
    publish_status(ctx, &mut rec, Some(Arc::new(message.clone())))?;
    put(ctx, &mut rec)?;
    ctx.txn()
        .open_table(ACCOUNT_PENDING)?
        .remove(pending_key(rec.account, id))?;
    Ok(Some(rec))
}

/// The attempt failed and will be retried: back to `queued` (no event: the client's view is
/// unchanged). A 429 does not count as an attempt; `keep_sending` leaves a request whose outcome
/// is unknown (a timeout) marked "sending" until it is retried.
pub fn retry_later(
    ctx: &mut WriteCtx<'_>,
    id: u64,
    rate_limited: bool,
    keep_sending: bool,
) -> Result<Option<OutboxRecord>, StoreError> {
    let Some(mut rec) = get(ctx, id)? else {
        return Ok(None);
    };
    if rate_limited {
        rec.rate_limited += 1;
        rec.attempts = rec.attempts.saturating_sub(1);
    }
    if !keep_sending {
        rec.state = ItemState::Queued;
    }
    rec.updated_at = ctx.now;
    put(ctx, &mut rec)?;
    Ok(Some(rec))
}

/// Gives up on an item; the reason never contains its text.
pub fn fail(ctx: &mut WriteCtx<'_>, id: u64, reason: &str) -> Result<Option<OutboxRecord>, StoreError> {
    let Some(mut rec) = get(ctx, id)? else {
        return Ok(None);
    };
    if !rec.state.is_pending() {
        return Ok(Some(rec));
    }
    rec.state = ItemState::Failed {
        reason: reason.to_owned(),
    };
    publish_status(ctx, &mut rec, None)?;
    put(ctx, &mut rec)?;
    ctx.txn()
        .open_table(ACCOUNT_PENDING)?
        .remove(pending_key(rec.account, id))?;
    let mut failed = ctx.txn().open_table(ACCOUNT_FAILED)?;
    let n = failed.get(rec.account)?.map(|v| v.value()).unwrap_or(0);
    failed.insert(rec.account, n + 1)?;
    Ok(Some(rec))
}

/// Reason given to an item found "sending" at start-up when it is not sent again.
pub const INTERRUPTED: &str = "interrupted: lanbox stopped while Telegram had the request, so whether it was \
     delivered is unknown; check the chat before sending it again";

/// At a sender's start: what to do with items found "sending" (see
/// [`super::OutboxOptions::resend_interrupted`]). Returns how many were failed and re-queued.
pub fn recover(ctx: &mut WriteCtx<'_>, account: u64, resend: bool) -> Result<(u32, u32), StoreError> {
    let ids: Vec<u64> = {
        let t = ctx.txn().open_table(ACCOUNT_PENDING)?;
        let mut ids = Vec::new();
        for row in t.range(pending_range(account))? {
            ids.push(row?.0.value() as u64);
        }
        ids
    };
    let (mut failed, mut requeued) = (0, 0);
    for id in ids {
        let Some(mut rec) = get(ctx, id)? else { continue };
        if rec.state != ItemState::Sending {
            continue;
        }
        if resend {
            rec.state = ItemState::Queued;
            put(ctx, &mut rec)?;
            requeued += 1;
        } else {
            fail(ctx, id, INTERRUPTED)?;
            failed += 1;
        }
    }
    Ok((failed, requeued))
}

/// The upgrade of records written before file names were sealed: items `from..` (at most
/// `limit` of them) whose file is still in the clear are sealed. An item whose account was
/// released (its key is gone) loses the file's reference instead: it can never be sent, and
/// its name must not stay readable. Returns where to go on, `None` once every item was seen
/// (a flag then skips the walk at later starts).
pub fn seal_old_files(ctx: &mut WriteCtx<'_>, from: u64, limit: usize) -> Result<Option<u64>, StoreError> {
    if ctx.txn().open_table(META)?.get(META_FILES_SEALED)?.is_some() {
        return Ok(None);
    }
    let (clear, next) = {
        let t = ctx.txn().open_table(ITEM_RECORD)?;
        let mut clear = Vec::new();
        let mut next = None;
        for (n, row) in t.range(from..)?.enumerate() {
            let (k, v) = row?;
            if n == limit {
                next = Some(k.value());
                break;
            }
            // Only version 1 records can hold a file in the clear.
            let stored = v.value();
            if stored.version() == Some(1) {
                match stored.get() {
                    Ok(rec) if rec.attachment.as_ref().is_some_and(StoredFile::is_clear) => clear.push(rec),
                    Ok(_) => {}
                    // One damaged item must not stop the box from starting (reading it fails
                    // the same way later, where it is used).
                    Err(e) => {
                        tracing::warn!(item = k.value(), error = %e, "outbox: an item could not be read")
                    }
                }
            }
        }
        (clear, next)
    };
    for mut rec in clear {
        match put(ctx, &mut rec) {
            Ok(()) => {}
            Err(StoreError::UnknownAccount(_)) => {
                rec.attachment = None;
                put(ctx, &mut rec)?;
            }
            Err(e) => return Err(e),
        }
    }
    if next.is_none() {
        ctx.txn().open_table(META)?.insert(META_FILES_SEALED, 1)?;
    }
    Ok(next)
}

/// Drops status snapshots of events the log no longer holds (below `first_seq`).
pub fn trim_status(ctx: &mut WriteCtx<'_>, first_seq: u64) -> Result<(), StoreError> {
    let mut t = ctx.txn().open_table(SEQ_STATUS)?;
    t.retain_in(..first_seq, |_, _| false)?;
    Ok(())
}

/// Pending items of an account after `after`, oldest first, at most `limit`.
pub fn pending_after(
    txn: &redb::ReadTransaction,
    account: u64,
    after: u64,
    limit: usize,
) -> Result<Vec<OutboxRecord>, StoreError> {
    let pending = txn.open_table(ACCOUNT_PENDING)?;
    let items = txn.open_table(ITEM_RECORD)?;
    let from = pending_key(account, after.saturating_add(1));
    let mut out = Vec::new();
    for row in pending.range(from..pending_range(account).end)? {
        let id = row?.0.value() as u64;
        if let Some(v) = items.get(id)? {
            out.push(v.value().get()?);
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Who queued a sent message: the user, and the API token's hash when it came with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    pub user: u64,
    pub token: Option<[u8; 32]>,
}

/// Who sent the message at `key` through the outbox; `None` for a message sent some other way
/// (from a Telegram app, or before lanbox recorded it).
pub fn sent_by(txn: &redb::ReadTransaction, key: MsgKey) -> Result<Option<Sender>, StoreError> {
    let t = match txn.open_table(MSGKEY_ITEM) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(item) = t.get((key.scope, key.chat, key.msg))? else {
        return Ok(None);
    };
    Ok(read_item(txn, item.value())?.map(|r| Sender {
        user: r.user,
        token: r.token,
    }))
}

/// One item, read-only.
pub fn read_item(txn: &redb::ReadTransaction, id: u64) -> Result<Option<OutboxRecord>, StoreError> {
    txn.open_table(ITEM_RECORD)?
        .get(id)?
        .map(|v| v.value().get())
        .transpose()
}

/// What the `message.status` event `seq` said; `None` for other events or trimmed rows.
pub fn read_status(txn: &redb::ReadTransaction, seq: u64) -> Result<Option<StatusSnapshot>, StoreError> {
    txn.open_table(SEQ_STATUS)?
        .get(seq)?
        .map(|v| v.value().get())
        .transpose()
}

/// Items waiting (queued or sending) and items failed, over `accounts`.
pub fn read_counts(txn: &redb::ReadTransaction, accounts: &[u64]) -> Result<(u64, u64), StoreError> {
    let pending = txn.open_table(ACCOUNT_PENDING)?;
    let failed = txn.open_table(ACCOUNT_FAILED)?;
    let (mut b, mut f) = (0, 0);
    for &a in accounts {
        b += pending.range(pending_range(a))?.count() as u64;
        f += failed.get(a)?.map(|v| v.value()).unwrap_or(0);
    }
    Ok((b, f))
}
