//! The team's changes to a conversation (assign, status, labels) and the reopening an incoming
//! message causes.
//!
//! Each change rewrites the chat's [`ConversationRecord`], appends a `conversation.*` event
//! and keeps an [`ActivityRecord`] under that event's sequence number, in one transaction: the
//! live feed, a resume and the activity trail all tell the same story. A change that changes
//! nothing writes nothing. Who may do what (grants, roles, an assignee who can see the chat)
//! is checked by the caller; this module only keeps the records consistent.

use crate::model::{Activity, ConversationStatus, EventKind, EventRecord};
use crate::store::records::{ActivityRecord, ConversationRecord, LabelRecord};
use crate::store::tables::{CHAT_CONVERSATION, LABEL_RECORD, META_NEXT_LABEL};
use crate::store::{ChatKey, StoreError, WriteCtx};
use redb::{ReadableTable, ReadableTableMetadata};

/// A change the team makes to a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamChange {
    /// Assign to a user, or unassign (`None`).
    Assign(Option<u64>),
    /// Set the status; `until` is required for `Snoozed` and ignored otherwise.
    Status {
        status: ConversationStatus,
        until: Option<i64>,
    },
    /// Replace the labels (unknown label IDs are dropped).
    Labels(Vec<u64>),
}

/// What a change left behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Changed {
    pub conversation: ConversationRecord,
    /// Sequence number of the event (and activity entry); `None` when nothing changed.
    pub seq: Option<u64>,
}

/// Applies a team change to an existing chat; `None` when the chat does not exist.
pub fn change(
    ctx: &mut WriteCtx<'_>,
    chat: ChatKey,
    by: u64,
    change: TeamChange,
) -> Result<Option<Changed>, StoreError> {
    let Some(accounts) = ctx
        .chat(chat)?
        .filter(|s| s.record.migrated_to.is_none())
        .map(|s| s.record.accounts.clone())
    else {
        return Ok(None);
    };
    let old = ctx.conversation(chat)?.unwrap_or_default();
    let mut new = old.clone();
    let (kind, what) = match change {
        TeamChange::Assign(to) => {
            new.assignee = to;
            (EventKind::ConversationAssigned, Activity::Assigned { to })
        }
        TeamChange::Status { status, until } => {
            new.status = status;
            new.snoozed_until = (status == ConversationStatus::Snoozed).then_some(until).flatten();
            let until = new.snoozed_until;
            (EventKind::ConversationStatus, Activity::Status { status, until })
        }
        TeamChange::Labels(mut labels) => {
            labels.sort_unstable();
            labels.dedup();
            let known = ctx.txn().open_table(LABEL_RECORD)?;
            let mut kept = Vec::with_capacity(labels.len());
            for l in labels {
                if known.get(l)?.is_some() {
                    kept.push(l);
                }
            }
            new.labels = kept.clone();
            (EventKind::ConversationLabels, Activity::Labels { labels: kept })
        }
    };
    if new == old {
        return Ok(Some(Changed {
            conversation: old,
            seq: None,
        }));
    }
    if kind != EventKind::ConversationLabels {
        new.updated_at = ctx.now;
    }
    let seq = record(ctx, chat, accounts, kind, by, what, &new)?;
    Ok(Some(Changed {
        conversation: new,
        seq: Some(seq),
    }))
}

/// An incoming message arrived in `chat`: a resolved or snoozed conversation opens again.
pub fn on_incoming(ctx: &mut WriteCtx<'_>, chat: ChatKey, accounts: &[u64]) -> Result<(), StoreError> {
    let Some(mut rec) = ctx.conversation(chat)? else {
        return Ok(());
    };
    if !matches!(
        rec.status,
        ConversationStatus::Resolved | ConversationStatus::Snoozed
    ) {
        return Ok(());
    }
    rec.status = ConversationStatus::Open;
    rec.snoozed_until = None;
    rec.updated_at = ctx.now;
    record(
        ctx,
        chat,
        accounts.to_vec(),
        EventKind::ConversationStatus,
        0,
        Activity::Reopened,
        &rec,
    )?;
    Ok(())
}

fn record(
    ctx: &mut WriteCtx<'_>,
    chat: ChatKey,
    accounts: Vec<u64>,
    kind: EventKind,
    by: u64,
    what: Activity,
    rec: &ConversationRecord,
) -> Result<u64, StoreError> {
    ctx.put_conversation(chat, rec)?;
    trail(ctx, chat, accounts, kind, by, what)
}

/// Appends a `kind` event about `chat` and its activity entry under that event's seq.
fn trail(
    ctx: &mut WriteCtx<'_>,
    chat: ChatKey,
    accounts: Vec<u64>,
    kind: EventKind,
    by: u64,
    what: Activity,
) -> Result<u64, StoreError> {
    let seq = ctx.append_event(chat_event(kind, chat, accounts, None), None)?;
    let at = ctx.now;
    ctx.put_activity(chat, seq, &ActivityRecord { at, by, what })?;
    Ok(seq)
}

/// A team event about `chat` (`key`: what it names inside the chat).
fn chat_event(kind: EventKind, chat: ChatKey, accounts: Vec<u64>, key: Option<i64>) -> EventRecord {
    EventRecord {
        seq: 0,
        kind,
        accounts,
        scope: chat.scope,
        chat_id: chat.chat,
        message_key: key,
        from_chat: None,
        unread: None,
        at: 0,
    }
}

/// Records in a chat's activity trail that `by` exported it; false when the chat does not exist.
pub fn exported(
    ctx: &mut WriteCtx<'_>,
    chat: ChatKey,
    by: u64,
    format: &str,
    period: (Option<i64>, Option<i64>),
) -> Result<bool, StoreError> {
    let Some(accounts) = ctx.chat(chat)?.map(|s| s.record.accounts.clone()) else {
        return Ok(false);
    };
    let what = Activity::Exported {
        format: format.to_string(),
        from: period.0,
        to: period.1,
    };
    trail(ctx, chat, accounts, EventKind::ConversationExported, by, what)?;
    Ok(true)
}

/// Moves a migrated basic group's state to its supergroup (unless that has its own).
pub fn migrate(ctx: &mut WriteCtx<'_>, from: ChatKey, to: ChatKey) -> Result<(), StoreError> {
    if let Some(owner) = ctx.chat(to)?.map(|s| s.record.owner) {
        super::notes::reseal(ctx, from, to, owner)?;
    }
    if let Some(rec) = ctx.conversation(from)?
        && ctx.conversation(to)?.is_none()
    {
        ctx.put_conversation(to, &rec)?;
    }
    ctx.drop_conversation(from)
}

/// Most labels a box keeps: a list for people to pick from, not a tag cloud.
pub const MAX_LABELS: u64 = 200;

/// Creates a label; `None` when the box already has [`MAX_LABELS`].
pub fn create_label(
    ctx: &mut WriteCtx<'_>,
    name: String,
    color: String,
) -> Result<Option<LabelRecord>, StoreError> {
    let mut t = ctx.txn().open_table(LABEL_RECORD)?;
    if t.len()? >= MAX_LABELS {
        return Ok(None);
    }
    drop(t);
    let id = ctx.meta_flag(META_NEXT_LABEL)?.unwrap_or(1);
    ctx.set_meta_flag(META_NEXT_LABEL, Some(id + 1))?;
    let rec = LabelRecord {
        id,
        name,
        color,
        created_at: ctx.now,
    };
    t = ctx.txn().open_table(LABEL_RECORD)?;
    t.insert(id, crate::store::codec::Stored::new(&rec)?)?;
    Ok(Some(rec))
}

/// Deletes a label and takes it off every conversation (no activity entries: the label is
/// gone, not removed by someone from one conversation). False when it did not exist.
pub fn delete_label(ctx: &mut WriteCtx<'_>, id: u64) -> Result<bool, StoreError> {
    if ctx.txn().open_table(LABEL_RECORD)?.remove(id)?.is_none() {
        return Ok(false);
    }
    let mut t = ctx.txn().open_table(CHAT_CONVERSATION)?;
    let mut changed = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let rec = v.value().get()?;
        if rec.labels.contains(&id) {
            changed.push((k.value(), rec));
        }
    }
    for (k, mut rec) in changed {
        rec.labels.retain(|&l| l != id);
        t.insert(k, crate::store::codec::Stored::new(&rec)?)?;
    }
    Ok(true)
}
