//! The pipeline stages that run inside the writer's transaction: dedup, redact, seal, index
//! hook, and the bookkeeping that must commit with them (chats, unread counters, event log,
//! upstream position).

use std::sync::Arc;

use crate::model::{
    AccountId, Chat, ChatKind, Direction, EventKind, EventRecord, Message, MessageContent, Reactions, Status,
};
use crate::store::records::{ChatMeta, ChatRecord, StoredMessage};
use crate::store::seal::{Cipher, Sealed};
use crate::store::tables::MIGRATED_SHIFT;
use crate::store::{ChatKey, ChatState, MsgKey, StoreError, WriteCtx};

use super::redact;
use super::{Batch, Change};

/// What a batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub created: u32,
    pub updated: u32,
    pub deleted: u32,
    pub duplicates: u32,
    pub redacted: u32,
    pub migrated: u32,
    pub rejected: u32,
    /// Reaction changes applied to stored messages.
    pub reactions: u32,
    /// Outgoing messages whose status changed (read receipts).
    pub statuses: u32,
}

/// Keeps derived data (the search index, later attachments) in step with messages, inside the
/// same transaction. `content` is the plaintext as stored (already redacted); implementations
/// must not log it.
pub trait IndexHook: Send + Sync + 'static {
    fn put(
        &self,
        ctx: &mut WriteCtx<'_>,
        key: MsgKey,
        msg: &StoredMessage,
        content: &MessageContent,
    ) -> Result<(), StoreError>;
    fn remove(
        &self,
        ctx: &mut WriteCtx<'_>,
        key: MsgKey,
        msg: &StoredMessage,
        content: &MessageContent,
    ) -> Result<(), StoreError>;
    /// Drops whatever is left of a released account (after its messages went through
    /// [`IndexHook::remove`]), before its data key is destroyed.
    fn remove_account(&self, _ctx: &mut WriteCtx<'_>, _account: u64) -> Result<(), StoreError> {
        Ok(())
    }
}

/// No derived data (tools and benchmarks that measure the store alone).
pub struct NoIndex;

impl IndexHook for NoIndex {
    fn put(
        &self,
        _: &mut WriteCtx<'_>,
        _: MsgKey,
        _: &StoredMessage,
        _: &MessageContent,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    fn remove(
        &self,
        _: &mut WriteCtx<'_>,
        _: MsgKey,
        _: &StoredMessage,
        _: &MessageContent,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Message IDs are global in supergroups and channels, per account in private chats and basic
/// groups (DESIGN.md, "Dedup key").
pub fn scope_for(account: AccountId, kind: ChatKind) -> u64 {
    if kind.ids_per_account() { account } else { 0 }
}

pub fn apply_batch(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    batch: &Batch,
) -> Result<Outcome, StoreError> {
    let account = batch.account;
    let rented = ctx.account(account)?.rented;
    let mut out = Outcome::default();
    for change in &batch.changes {
        match change {
            Change::New(m) | Change::Edit(m) => {
                let is_edit = matches!(change, Change::Edit(_));
                let mut m = m.clone();
                m.account = account;
                if redact::must_redact(&m, rented) {
                    redact::redact(&mut m);
                    out.redacted += 1;
                }
                upsert(ctx, index, m, is_edit, &mut out)?;
            }
            Change::Delete {
                chat, message_ids, ..
            } => {
                let chat_key = resolve(
                    ctx,
                    ChatKey {
                        scope: scope_for(account, chat.kind),
                        chat: chat.id,
                    },
                )?;
                for &id in message_ids {
                    let key = chat_key.0.msg(id - chat_key.1);
                    if delete(ctx, index, key)? {
                        out.deleted += 1;
                    }
                }
            }
            Change::ReadOutbox { chat, up_to, .. } => {
                out.statuses += read_outbox(ctx, account, chat, *up_to)?;
            }
            Change::Migrate {
                from_group,
                to_supergroup,
                ..
            } => {
                if migrate(ctx, index, account, *from_group, to_supergroup)? {
                    out.migrated += 1;
                }
            }
            Change::Reaction {
                chat,
                message_id,
                actor,
                reactions,
                ..
            } => {
                let done = react(ctx, account, chat, *message_id, |r| {
                    r.set_actor(*actor, reactions.clone())
                })?;
                count_reaction(ctx, account, done, &mut out)?;
            }
            Change::ReactionCount {
                chat,
                message_id,
                totals,
                ..
            } => {
                let done = react(ctx, account, chat, *message_id, |r| r.set_totals(totals.clone()))?;
                count_reaction(ctx, account, done, &mut out)?;
            }
            Change::Rejected { .. } => {
                ctx.count_rejected(account)?;
                out.rejected += 1;
            }
        }
    }
    if let Some(p) = batch.position {
        ctx.set_position(account, p)?;
    }
    Ok(out)
}

fn count_reaction(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    done: bool,
    out: &mut Outcome,
) -> Result<(), StoreError> {
    if done {
        out.reactions += 1;
    } else {
        ctx.count_rejected(account)?;
        out.rejected += 1;
    }
    Ok(())
}

/// Changes the reactions of a stored message and appends a `message.reaction` event. Returns
/// false when the message is not in the store (a reaction to something lanbox never received).
fn react(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    chat: &Chat,
    message_id: i64,
    change: impl FnOnce(&mut Reactions),
) -> Result<bool, StoreError> {
    let (chat_key, shift) = resolve(
        ctx,
        ChatKey {
            scope: scope_for(account, chat.kind),
            chat: chat.id,
        },
    )?;
    let key = chat_key.msg(message_id - shift);
    let Some(msg) = ctx.get_message(key)? else {
        return Ok(false);
    };
    let mut reactions = ctx.reactions(key, msg.owner)?;
    let before = reactions.clone();
    change(&mut reactions);
    if reactions != before {
        ctx.put_reactions(key, msg.owner, &reactions)?;
        ctx.append_event(event(EventKind::Reaction, msg.seen_by.clone(), key), None)?;
    }
    Ok(true)
}

/// Follows a basic group's migration to its supergroup. Returns the chat to use and the shift to
/// subtract from message IDs (non-zero for late messages of a migrated group).
fn resolve(ctx: &mut WriteCtx<'_>, key: ChatKey) -> Result<(ChatKey, i64), StoreError> {
    match ctx.chat(key)?.and_then(|c| c.record.migrated_to) {
        Some(to) => Ok((ChatKey { scope: 0, chat: to }, MIGRATED_SHIFT)),
        None => Ok((key, 0)),
    }
}

fn placeholder_sealed() -> Sealed {
    Sealed {
        cipher: Cipher::ChaCha20Poly1305,
        nonce: [0; 12],
        ciphertext: Vec::new(),
    }
}

fn meta_of(chat: &Chat) -> ChatMeta {
    ChatMeta {
        title: chat.title.clone(),
        username: chat.username.clone(),
    }
}

/// Makes sure the chat exists, names `account` among its accounts and carries the latest title.
fn ensure_chat(
    ctx: &mut WriteCtx<'_>,
    key: ChatKey,
    chat: &Chat,
    account: AccountId,
) -> Result<(), StoreError> {
    let meta = meta_of(chat);
    let updated = ctx.update_chat(key, |s| {
        if !s.record.accounts.contains(&account) {
            s.record.accounts.push(account);
        }
        if meta.title.is_some() && s.meta != meta {
            s.meta = meta.clone();
            s.meta_changed = true;
        }
        s.record.is_forum |= chat.is_forum;
    })?;
    if updated.is_none() {
        ctx.insert_chat(
            key,
            ChatState {
                record: ChatRecord {
                    kind: chat.kind,
                    is_forum: chat.is_forum,
                    owner: account,
                    accounts: vec![account],
                    meta: placeholder_sealed(),
                    read_up_to: i64::MIN,
                    unread: 0,
                    messages: 0,
                    last_key: None,
                    last_date: 0,
                    migrated_to: None,
                },
                meta,
                meta_changed: true,
            },
        )?;
    }
    Ok(())
}

fn is_unread(msg: &StoredMessage, key: MsgKey, read_up_to: i64) -> bool {
    msg.direction == Direction::Incoming && key.msg > read_up_to
}

fn upsert(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    m: Message,
    is_edit: bool,
    out: &mut Outcome,
) -> Result<(), StoreError> {
    let account = m.account;
    let (chat_key, shift) = resolve(
        ctx,
        ChatKey {
            scope: scope_for(account, m.chat.kind),
            chat: m.chat.id,
        },
    )?;
    let key = chat_key.msg(m.message_id - shift);
    ensure_chat(ctx, chat_key, &m.chat, account)?;

    if let Some(mut existing) = ctx.get_message(key)? {
        let newer_edit = is_edit && m.edited_at.unwrap_or(0) > existing.edited_at.unwrap_or(0);
        if !newer_edit {
            // Dedup: the same message again (a second account in a supergroup, a replayed batch).
            // For a new account the message is new: callers granted only that account are
            // told (callers of the others already have it).
            if !existing.seen_by.contains(&account) {
                existing.seen_by.push(account);
                ctx.put_message(key, &existing)?;
                note_sender(ctx, account, chat_key, &m)?;
                ctx.append_event(
                    event(EventKind::MessageCreated, vec![account], key),
                    Some(Arc::new(m)),
                )?;
            }
            out.duplicates += 1;
            return Ok(());
        }
        // Edit: the new content replaces the old; nothing of the old text is kept.
        let old_content = ctx.open_content(key, &existing)?;
        index.remove(ctx, key, &existing, &old_content)?;
        existing.edited_at = m.edited_at;
        existing.body_kind = m.content.body.kind();
        existing.sender_id = m.content.sender.id();
        existing.content = ctx.seal_content(existing.owner, key, &m.content)?;
        index.put(ctx, key, &existing, &m.content)?;
        ctx.put_message(key, &existing)?;
        let accounts = existing.seen_by.clone();
        ctx.append_event(event(EventKind::MessageUpdated, accounts, key), Some(Arc::new(m)))?;
        out.updated += 1;
        return Ok(());
    }

    let stored = StoredMessage {
        owner: account,
        seen_by: vec![account],
        chat_kind: m.chat.kind,
        message_id: m.message_id,
        topic: m.topic,
        direction: m.direction,
        date: m.date,
        edited_at: m.edited_at,
        status: m.status.clone(),
        body_kind: m.content.body.kind(),
        sender_id: m.content.sender.id(),
        content: ctx.seal_content(account, key, &m.content)?,
    };
    index.put(ctx, key, &stored, &m.content)?;
    ctx.put_message(key, &stored)?;
    let unread = ctx
        .update_chat(chat_key, |s| {
            s.record.messages += 1;
            if s.record.last_key.is_none_or(|k| key.msg > k) {
                s.record.last_key = Some(key.msg);
                s.record.last_date = stored.date;
            }
            if is_unread(&stored, key, s.record.read_up_to) {
                s.record.unread += 1;
            }
            s.record.unread
        })?
        .unwrap_or(0);
    count_for_readers(ctx, &stored, key, 1)?;
    if stored.direction == Direction::Incoming {
        super::conversation::on_incoming(ctx, chat_key, &[account])?;
    }
    note_sender(ctx, account, chat_key, &m)?;
    // A button press is stored in the conversation but announced as what it is.
    let kind = if matches!(m.content.body, crate::model::Body::Postback { .. }) {
        EventKind::Postback
    } else {
        EventKind::MessageCreated
    };
    let mut ev = event(kind, vec![account], key);
    ev.unread = Some(unread);
    ctx.append_event(ev, Some(Arc::new(m)))?;
    out.created += 1;
    Ok(())
}

/// Remembers that the Telegram user who wrote an incoming message wrote to `account` in this
/// chat (the contact panel lists the chats a contact shares with the team).
fn note_sender(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    chat: ChatKey,
    m: &Message,
) -> Result<(), StoreError> {
    if m.direction == Direction::Incoming
        && let crate::model::Sender::User(u) = &m.content.sender
    {
        ctx.note_sender_chat(account, u.id, chat, m.date)?;
    }
    Ok(())
}

fn event(kind: EventKind, accounts: Vec<u64>, key: MsgKey) -> EventRecord {
    EventRecord {
        seq: 0,
        kind,
        accounts,
        scope: key.scope,
        chat_id: key.chat,
        message_key: Some(key.msg),
        from_chat: None,
        unread: None,
        at: 0,
    }
}

/// Moves the unread count of every user with their own read state in the chat by `delta`
/// for an incoming message above their read position (one row per such user: a team is a
/// handful of people).
fn count_for_readers(
    ctx: &mut WriteCtx<'_>,
    m: &StoredMessage,
    key: MsgKey,
    delta: i32,
) -> Result<(), StoreError> {
    if m.direction != Direction::Incoming {
        return Ok(());
    }
    ctx.count_for_readers(key.chat_key(), key.msg, delta)
}

/// Most messages one read receipt looks at: receipts only move forward, so the walk normally
/// ends at the previous receipt's message long before this; the bound keeps a receipt in a
/// long chat with nothing outgoing read yet from reading the whole chat in the writer.
const READ_OUTBOX_WALK: usize = 1000;

/// Marks the account's outgoing messages in `chat` up to Telegram message `up_to` read,
/// newest first, stopping at the first already read (receipts only move forward) or after
/// [`READ_OUTBOX_WALK`] messages; one `message.status` event each (the event's message is
/// read from the store when sent, as for the outbox's). Returns how many changed.
fn read_outbox(
    ctx: &mut WriteCtx<'_>,
    account: AccountId,
    chat: &Chat,
    up_to: i64,
) -> Result<u32, StoreError> {
    let (chat_key, shift) = resolve(
        ctx,
        ChatKey {
            scope: scope_for(account, chat.kind),
            chat: chat.id,
        },
    )?;
    let mut below = up_to.saturating_sub(shift).saturating_add(1);
    let mut changed = 0;
    for _ in 0..READ_OUTBOX_WALK {
        let Some((key, mut m)) = ctx.last_message_before(chat_key, below)? else {
            break;
        };
        below = key.msg;
        if m.direction != Direction::Outgoing {
            continue;
        }
        match m.status {
            Status::Read => break,
            Status::Sent => {
                m.status = Status::Read;
                ctx.put_message(key, &m)?;
                ctx.append_event(event(EventKind::MessageStatus, m.seen_by.clone(), key), None)?;
                changed += 1;
            }
            // Still queued or failed in the outbox: not on Telegram, so not read there.
            _ => {}
        }
    }
    Ok(changed)
}

/// Removes a message and everything derived from it, with a `message.deleted` event. Returns
/// false when it was not there.
fn delete(ctx: &mut WriteCtx<'_>, index: &dyn IndexHook, key: MsgKey) -> Result<bool, StoreError> {
    let Some(old) = remove_stored(ctx, index, key)? else {
        return Ok(false);
    };
    let mut ev = event(EventKind::MessageDeleted, old.seen_by.clone(), key);
    ev.unread = ctx.chat(key.chat_key())?.map(|s| s.record.unread);
    ctx.append_event(ev, None)?;
    Ok(true)
}

/// Removes a message, its index entries and reactions, and fixes its chat's counters and last
/// message; no event. Returns the removed record.
pub(crate) fn remove_stored(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    key: MsgKey,
) -> Result<Option<StoredMessage>, StoreError> {
    let Some(old) = ctx.remove_message(key)? else {
        return Ok(None);
    };
    let content = ctx.open_content(key, &old)?;
    index.remove(ctx, key, &old, &content)?;
    ctx.take_reactions(key, old.owner)?;
    let chat_key = key.chat_key();
    let needs_last = ctx
        .update_chat(chat_key, |s| {
            s.record.messages = s.record.messages.saturating_sub(1);
            if is_unread(&old, key, s.record.read_up_to) {
                s.record.unread = s.record.unread.saturating_sub(1);
            }
            s.record.last_key == Some(key.msg)
        })?
        .unwrap_or(false);
    count_for_readers(ctx, &old, key, -1)?;
    if needs_last {
        let prev = ctx.last_message_before(chat_key, key.msg)?;
        ctx.update_chat(chat_key, |s| {
            s.record.last_key = prev.as_ref().map(|(k, _)| k.msg);
            s.record.last_date = prev.as_ref().map(|(_, m)| m.date).unwrap_or(0);
        })?;
    }
    Ok(Some(old))
}

/// Counts incoming messages above the read pointer.
fn count_unread(ctx: &WriteCtx<'_>, chat: ChatKey, read_up_to: i64) -> Result<u32, StoreError> {
    if read_up_to == i64::MAX {
        return Ok(0);
    }
    let rows = ctx.chat_messages(chat, read_up_to + 1, i64::MAX)?;
    Ok(rows.iter().filter(|(k, m)| is_unread(m, *k, read_up_to)).count() as u32)
}

/// Sets one user's read position in a chat to `up_to` (lower than before marks messages
/// unread again) and returns their unread count. Only that user's state changes: nothing is
/// logged for the team (the caller tells the user's own sessions).
pub fn mark_read_by(
    ctx: &mut WriteCtx<'_>,
    chat: ChatKey,
    user: u64,
    up_to: i64,
) -> Result<Option<u32>, StoreError> {
    if ctx.chat(chat)?.is_none() {
        return Ok(None);
    }
    let unread = count_unread(ctx, chat, up_to)?;
    ctx.set_user_read(chat, user, up_to, unread)?;
    Ok(Some(unread))
}

/// Moves the chat's own (shared) read position forward; users with their own read state are
/// not affected. Kept for the box's maintenance paths and older clients' tests.
pub fn mark_read(ctx: &mut WriteCtx<'_>, chat: ChatKey, up_to: i64) -> Result<Option<u32>, StoreError> {
    let Some(state) = ctx.chat(chat)? else {
        return Ok(None);
    };
    let rut = state.record.read_up_to.max(up_to);
    let accounts = state.record.accounts.clone();
    if rut == state.record.read_up_to {
        return Ok(Some(state.record.unread));
    }
    let unread = count_unread(ctx, chat, rut)?;
    ctx.update_chat(chat, |s| {
        s.record.read_up_to = rut;
        s.record.unread = unread;
    })?;
    let mut ev = event(EventKind::ChatRead, accounts, chat.msg(rut));
    ev.unread = Some(unread);
    ctx.append_event(ev, None)?;
    Ok(Some(unread))
}

/// Moves a basic group's conversation into its supergroup. Idempotent: Telegram sends both
/// `migrate_to_chat_id` (in the old group) and `migrate_from_chat_id` (in the new supergroup).
fn migrate(
    ctx: &mut WriteCtx<'_>,
    index: &dyn IndexHook,
    account: AccountId,
    from_group: i64,
    to: &Chat,
) -> Result<bool, StoreError> {
    let old_key = ChatKey {
        scope: account,
        chat: from_group,
    };
    let new_key = ChatKey {
        scope: 0,
        chat: to.id,
    };
    let to_chat = Chat {
        kind: ChatKind::Supergroup,
        ..to.clone()
    };
    let Some(old) = ctx.chat(old_key)?.cloned() else {
        ensure_chat(ctx, new_key, &to_chat, account)?;
        return Ok(false);
    };
    if old.record.migrated_to.is_some() {
        return Ok(false);
    }
    let mut new_chat = to_chat;
    if new_chat.title.is_none() {
        new_chat.title = old.meta.title.clone();
    }
    ensure_chat(ctx, new_key, &new_chat, account)?;

    let mut moved = 0u32;
    let mut last: Option<(i64, i64)> = None;
    for (k, mut m) in ctx.chat_messages(old_key, i64::MIN, i64::MAX)? {
        let content = ctx.open_content(k, &m)?;
        index.remove(ctx, k, &m, &content)?;
        ctx.remove_message(k)?;
        let reactions = ctx.take_reactions(k, m.owner)?;
        let nk = new_key.msg(k.msg - MIGRATED_SHIFT);
        ctx.put_reactions(nk, m.owner, &reactions)?;
        m.chat_kind = ChatKind::Supergroup;
        m.content = ctx.seal_content(m.owner, nk, &content)?;
        index.put(ctx, nk, &m, &content)?;
        ctx.put_message(nk, &m)?;
        moved += 1;
        last = Some((nk.msg, m.date));
    }
    let shifted_rut = if old.record.read_up_to == i64::MIN {
        i64::MIN
    } else {
        old.record.read_up_to - MIGRATED_SHIFT
    };
    let rut = ctx
        .chat(new_key)?
        .map(|s| s.record.read_up_to.max(shifted_rut))
        .unwrap_or(shifted_rut);
    let unread = count_unread(ctx, new_key, rut)?;
    let accounts = ctx
        .update_chat(new_key, |s| {
            for a in &old.record.accounts {
                if !s.record.accounts.contains(a) {
                    s.record.accounts.push(*a);
                }
            }
            s.record.messages += moved;
            s.record.read_up_to = rut;
            s.record.unread = unread;
            if let Some((k, d)) = last
                && s.record.last_key.is_none_or(|lk| k > lk)
            {
                s.record.last_key = Some(k);
                s.record.last_date = d;
            }
            s.record.accounts.clone()
        })?
        .unwrap_or_default();
    // The old chat stays as a redirect, so late updates for it land in the supergroup; its
    // readers share the supergroup's counters from now on.
    ctx.drop_user_reads(old_key)?;
    super::conversation::migrate(ctx, old_key, new_key)?;
    ctx.update_chat(old_key, |s| {
        s.record.migrated_to = Some(to.id);
        s.record.accounts.clear();
        s.record.unread = 0;
        s.record.messages = 0;
        s.record.last_key = None;
    })?;
    let mut ev = event(EventKind::ChatMigrated, accounts, new_key.msg(0));
    ev.message_key = None;
    ev.from_chat = Some(from_group);
    ev.unread = Some(unread);
    ctx.append_event(ev, None)?;
    Ok(true)
}
