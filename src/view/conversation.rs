//! The team's state of a conversation as callers read it: status (a snooze that has run out
//! reads as open), assignee, labels, the activity trail, the box's labels, and who may be
//! assigned. The REST routes, the chat list and the live feed all read it from here.

use redb::ReadableTable;
use serde::Serialize;
use serde_json::{Value, json};

use super::dto::SentByDto;
use crate::auth::{Grants, users};
use crate::model::{Activity, ConversationStatus, EventKind, EventRecord};
use crate::store::records::{ActivityRecord, ChatRecord, ConversationRecord, LabelRecord};
use crate::store::tables::{CHAT_ACTIVITY, CHAT_CONVERSATION, LABEL_RECORD};
use crate::store::{ChatKey, Reader, StoreError};

/// Most labels on one conversation.
pub const MAX_ON_CONVERSATION: usize = 20;

/// A conversation's status, assignee and labels.
#[derive(Debug, Clone, Serialize)]
pub struct ConversationDto {
    pub status: &'static str,
    /// End of the snooze (unix seconds) while snoozed.
    pub snoozed_until: Option<i64>,
    pub assignee: Option<SentByDto>,
    /// Label IDs (see `GET /api/v1/labels`).
    pub labels: Vec<u64>,
}

/// The status a record means at `now`: a snooze that has run out is open again.
pub fn effective(rec: &ConversationRecord, now: i64) -> ConversationStatus {
    match (rec.status, rec.snoozed_until) {
        (ConversationStatus::Snoozed, Some(until)) if until <= now => ConversationStatus::Open,
        (s, _) => s,
    }
}

/// The record of a chat (the default, open and unassigned, when none was written).
pub fn record(r: &Reader, chat: ChatKey) -> Result<ConversationRecord, StoreError> {
    let t = r.txn().open_table(CHAT_CONVERSATION)?;
    Ok(t.get(chat)?
        .map(|v| v.value().get())
        .transpose()?
        .unwrap_or_default())
}

pub fn user_ref(r: &Reader, user: u64) -> Result<SentByDto, StoreError> {
    Ok(SentByDto {
        user,
        name: users::by_id(r, user)?.map(|u| u.name),
        token: None,
    })
}

pub fn dto(r: &Reader, rec: &ConversationRecord, now: i64) -> Result<ConversationDto, StoreError> {
    let status = effective(rec, now);
    Ok(ConversationDto {
        status: status.as_str(),
        snoozed_until: (status == ConversationStatus::Snoozed)
            .then_some(rec.snoozed_until)
            .flatten(),
        assignee: rec.assignee.map(|u| user_ref(r, u)).transpose()?,
        labels: rec.labels.clone(),
    })
}

/// Whether `user` can be given a conversation of `chat`: they exist, are not disabled, and
/// are granted one of the chat's accounts.
pub fn may_handle(r: &Reader, user: u64, chat: &ChatRecord) -> Result<bool, StoreError> {
    Ok(users::by_id(r, user)?.is_some_and(|u| !u.disabled && Grants::of(&u).allows_any(&chat.accounts)))
}

pub fn labels(r: &Reader) -> Result<Vec<LabelRecord>, StoreError> {
    let t = r.txn().open_table(LABEL_RECORD)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        out.push(row?.1.value().get()?);
    }
    Ok(out)
}

/// One entry of the trail as JSON: `seq`, `at`, `by` (`null` for lanbox itself), `type`
/// (`assigned`, `status`, `labels`, `reopened`) and what it set.
pub fn activity_json(r: &Reader, seq: u64, a: &ActivityRecord) -> Result<Value, StoreError> {
    let by = if a.by == 0 { None } else { Some(user_ref(r, a.by)?) };
    let mut v = json!({"seq": seq, "at": a.at, "by": by});
    let o = v.as_object_mut().expect("object");
    match &a.what {
        Activity::Assigned { to } => {
            o.insert("type".into(), json!("assigned"));
            o.insert("assignee".into(), json!(to.map(|u| user_ref(r, u)).transpose()?));
        }
        Activity::Status { status, until } => {
            o.insert("type".into(), json!("status"));
            o.insert("status".into(), json!(status.as_str()));
            o.insert("snoozed_until".into(), json!(until));
        }
        Activity::Labels { labels } => {
            o.insert("type".into(), json!("labels"));
            o.insert("labels".into(), json!(labels));
        }
        Activity::Reopened => {
            o.insert("type".into(), json!("reopened"));
            o.insert("status".into(), json!("open"));
        }
        Activity::Exported { format, from, to } => {
            o.insert("type".into(), json!("exported"));
            o.insert("format".into(), json!(format));
            o.insert("from".into(), json!(from));
            o.insert("to".into(), json!(to));
        }
    }
    Ok(v)
}

/// A chat's activity trail, newest first, entries below `before` (a `seq`).
pub fn activity(r: &Reader, chat: ChatKey, before: u64, limit: usize) -> Result<Vec<Value>, StoreError> {
    let t = r.txn().open_table(CHAT_ACTIVITY)?;
    let mut out = Vec::new();
    let range = (chat.scope, chat.chat, 0)..(chat.scope, chat.chat, before);
    for row in t.range(range)?.rev().take(limit) {
        let (k, v) = row?;
        out.push(activity_json(r, k.value().2, &v.value().get()?)?);
    }
    Ok(out)
}

pub fn is_conversation_event(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::ConversationAssigned
            | EventKind::ConversationStatus
            | EventKind::ConversationLabels
            | EventKind::ConversationExported
    )
}

/// Adds what a `conversation.*` event says (its activity entry: `by` and the new value) to the
/// event's JSON. Other events are left as they are.
pub fn complete_event(r: &Reader, e: &EventRecord, v: &mut Value) -> Result<(), StoreError> {
    if !is_conversation_event(e.kind) {
        return Ok(());
    }
    let t = r.txn().open_table(CHAT_ACTIVITY)?;
    let Some(a) = t.get((e.scope, e.chat_id, e.seq))? else {
        return Ok(());
    };
    let entry = activity_json(r, e.seq, &a.value().get()?)?;
    if let (Some(o), Value::Object(x)) = (v.as_object_mut(), entry) {
        o.remove("message_id");
        for (k, val) in x {
            match k.as_str() {
                "seq" | "at" => {}
                // The event keeps its own `type`; a reopening says so.
                "type" => {
                    o.insert("reopened".into(), json!(val == "reopened"));
                }
                _ => {
                    o.insert(k, val);
                }
            }
        }
    }
    Ok(())
}
