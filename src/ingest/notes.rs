//! Private notes: what agents write to each other inside a conversation. Never sent to
//! Telegram; sealed like the conversation's messages, under the chat owner's data key, with the
//! chat and note ID as associated data. Writing or deleting one appends a `note.*` event.
//! The caller checks grants, mentions and who may delete; this module keeps the records.

use crate::model::{EventKind, EventRecord};
use crate::store::codec::Stored;
use crate::store::records::{NoteBody, NoteRecord};
use crate::store::tables::{CHAT_NOTE, META_NEXT_NOTE};
use crate::store::{ChatKey, StoreError, WriteCtx};
use redb::ReadableTable;

/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 4096;

fn note_event(
    ctx: &mut WriteCtx<'_>,
    kind: EventKind,
    chat: ChatKey,
    note: u64,
    accounts: Vec<u64>,
) -> Result<u64, StoreError> {
    ctx.append_event(
        EventRecord {
            seq: 0,
            kind,
            accounts,
            scope: chat.scope,
            chat_id: chat.chat,
            message_key: Some(note as i64),
            from_chat: None,
            unread: None,
            at: 0,
        },
        None,
    )
}

/// Writes a note by `by`; its ID, or `None` when the chat does not exist.
pub fn create(
    ctx: &mut WriteCtx<'_>,
    chat: ChatKey,
    by: u64,
    body: &NoteBody,
) -> Result<Option<u64>, StoreError> {
    let Some((owner, accounts)) = ctx
        .chat(chat)?
        .filter(|s| s.record.migrated_to.is_none())
        .map(|s| (s.record.owner, s.record.accounts.clone()))
    else {
        return Ok(None);
    };
    let id = ctx.meta_flag(META_NEXT_NOTE)?.unwrap_or(1);
    ctx.set_meta_flag(META_NEXT_NOTE, Some(id + 1))?;
    let sealed = ctx.sealer(owner)?.seal_record(body, &chat.note_aad(id))?;
    let rec = NoteRecord {
        by,
        at: ctx.now,
        owner,
        body: sealed,
    };
    ctx.txn()
        .open_table(CHAT_NOTE)?
        .insert((chat.scope, chat.chat, id), Stored::new(&rec)?)?;
    note_event(ctx, EventKind::NoteCreated, chat, id, accounts)?;
    Ok(Some(id))
}

/// Who wrote a note; `None` when it does not exist.
pub fn author(ctx: &mut WriteCtx<'_>, chat: ChatKey, id: u64) -> Result<Option<u64>, StoreError> {
    let t = ctx.txn().open_table(CHAT_NOTE)?;
    Ok(t.get((chat.scope, chat.chat, id))?
        .map(|v| v.value().get())
        .transpose()?
        .map(|n| n.by))
}

/// Deletes a note; false when it did not exist.
pub fn delete(ctx: &mut WriteCtx<'_>, chat: ChatKey, id: u64) -> Result<bool, StoreError> {
    let gone = ctx
        .txn()
        .open_table(CHAT_NOTE)?
        .remove((chat.scope, chat.chat, id))?
        .is_some();
    if gone {
        let accounts = ctx
            .chat(chat)?
            .map(|s| s.record.accounts.clone())
            .unwrap_or_default();
        note_event(ctx, EventKind::NoteDeleted, chat, id, accounts)?;
    }
    Ok(gone)
}

/// Re-seals a chat's notes for chat `to` under account `owner`'s key (the owner is being
/// released, or the chat moved). Notes the old key cannot open any more are dropped.
pub fn reseal(ctx: &mut WriteCtx<'_>, from: ChatKey, to: ChatKey, owner: u64) -> Result<(), StoreError> {
    let range = (from.scope, from.chat, 0)..=(from.scope, from.chat, u64::MAX);
    let mut notes = Vec::new();
    for row in ctx.txn().open_table(CHAT_NOTE)?.range(range.clone())? {
        let (k, v) = row?;
        notes.push((k.value().2, v.value().get()?));
    }
    ctx.txn().open_table(CHAT_NOTE)?.retain_in(range, |_, _| false)?;
    for (id, mut rec) in notes {
        let body: NoteBody = ctx
            .sealer(rec.owner)?
            .open_record(&rec.body, &from.note_aad(id))?;
        rec.body = ctx.sealer(owner)?.seal_record(&body, &to.note_aad(id))?;
        rec.owner = owner;
        ctx.txn()
            .open_table(CHAT_NOTE)?
            .insert((to.scope, to.chat, id), Stored::new(&rec)?)?;
    }
    Ok(())
}
