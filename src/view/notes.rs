//! Private notes as callers read them: a conversation's notes, the `note.*` events, and
//! finding notes by their words. Notes are few next to messages (people write them, not
//! Telegram), so a search opens the notes of the chats the caller may see and matches folded
//! words, newest first, up to a limit; messages have the index.

use redb::ReadableTable;
use serde::Serialize;
use serde_json::{Value, json};

use super::conversation::user_ref;
use super::dto::{SentByDto, chat_id};
use super::visible;
use crate::auth::Grants;
use crate::model::{EventKind, EventRecord};
use crate::search::tokenize::fold;
use crate::store::records::{NoteBody, NoteRecord};
use crate::store::tables::CHAT_NOTE;
use crate::store::{ChatKey, Reader, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct NoteDto {
    pub id: u64,
    pub chat: String,
    pub by: SentByDto,
    pub at: i64,
    pub text: String,
    /// The users it mentions (`@name`), told by a notification.
    pub mentions: Vec<SentByDto>,
}

fn open(r: &Reader, chat: ChatKey, id: u64, rec: &NoteRecord) -> Result<NoteBody, StoreError> {
    r.sealer(rec.owner)?.open_record(&rec.body, &chat.note_aad(id))
}

fn dto(r: &Reader, chat: ChatKey, id: u64, rec: &NoteRecord) -> Result<NoteDto, StoreError> {
    let body = open(r, chat, id, rec)?;
    Ok(NoteDto {
        id,
        chat: chat_id(chat),
        by: user_ref(r, rec.by)?,
        at: rec.at,
        text: body.text,
        mentions: body
            .mentions
            .iter()
            .map(|&u| user_ref(r, u))
            .collect::<Result<_, _>>()?,
    })
}

/// One note of a chat (the caller checked the chat is visible).
pub fn note(r: &Reader, chat: ChatKey, id: u64) -> Result<Option<NoteDto>, StoreError> {
    let t = r.txn().open_table(CHAT_NOTE)?;
    let Some(v) = t.get((chat.scope, chat.chat, id))? else {
        return Ok(None);
    };
    Ok(Some(dto(r, chat, id, &v.value().get()?)?))
}

/// A chat's notes with IDs below `before`, newest first.
pub fn list(r: &Reader, chat: ChatKey, before: u64, limit: usize) -> Result<Vec<NoteDto>, StoreError> {
    let t = r.txn().open_table(CHAT_NOTE)?;
    let mut out = Vec::new();
    for row in t
        .range((chat.scope, chat.chat, 0)..(chat.scope, chat.chat, before))?
        .rev()
    {
        if out.len() == limit {
            break;
        }
        let (k, v) = row?;
        let Some(rec) = r.skip_damaged(v.value().get())? else {
            continue;
        };
        out.push(dto(r, chat, k.value().2, &rec)?);
    }
    Ok(out)
}

/// Notes whose text holds every word of `q` (folded: case and accents do not matter), in the
/// chats `g` may see, newest first.
pub fn search(r: &Reader, g: &Grants, q: &str, limit: usize) -> Result<Vec<NoteDto>, StoreError> {
    let words: Vec<String> = q.split_whitespace().map(fold).collect();
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let t = r.txn().open_table(CHAT_NOTE)?;
    let mut hits = Vec::new();
    let mut chat_ok: std::collections::HashMap<ChatKey, bool> = std::collections::HashMap::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let (scope, c, id) = k.value();
        let chat = ChatKey { scope, chat: c };
        let visible = match chat_ok.get(&chat) {
            Some(&ok) => ok,
            None => {
                let ok = visible::chat(r, g, chat)?.is_some();
                chat_ok.insert(chat, ok);
                ok
            }
        };
        if !visible {
            continue;
        }
        let Some(rec) = r.skip_damaged(v.value().get())? else {
            continue;
        };
        let text = fold(&open(r, chat, id, &rec)?.text);
        if words.iter().all(|w| text.contains(w.as_str())) {
            hits.push((rec.at, chat, id, rec));
        }
    }
    hits.sort_by(|a, b| b.0.cmp(&a.0).then(b.2.cmp(&a.2)));
    hits.into_iter()
        .take(limit)
        .map(|(_, chat, id, rec)| dto(r, chat, id, &rec))
        .collect()
}

pub fn is_note_event(kind: EventKind) -> bool {
    matches!(kind, EventKind::NoteCreated | EventKind::NoteDeleted)
}

/// Adds the note to a `note.created` event's JSON (`note_id` to both kinds).
pub fn complete_event(r: &Reader, e: &EventRecord, v: &mut Value) -> Result<(), StoreError> {
    if !is_note_event(e.kind) {
        return Ok(());
    }
    let Some(id) = e.message_key.map(|k| k as u64) else {
        return Ok(());
    };
    let chat = ChatKey {
        scope: e.scope,
        chat: e.chat_id,
    };
    let Some(o) = v.as_object_mut() else {
        return Ok(());
    };
    o.remove("message_id");
    o.insert("note_id".into(), json!(id));
    if e.kind == EventKind::NoteCreated {
        o.insert("note".into(), json!(note(r, chat, id)?));
    }
    Ok(())
}
