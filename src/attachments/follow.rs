//! The event-log follower: reads the log from this subsystem's own durable cursor (in
//! `attachment_meta`, so nothing is missed across crashes), records the files of new media
//! messages and queues them for fetching, and removes the attachments of deleted messages, all
//! in one write transaction per step. When the log was trimmed past the cursor, it rebuilds
//! from the messages themselves. Also: releasing an account's attachments.

use redb::ReadableTable;

use super::tables::{self, AttachmentRecord, Role, State, Tables};
use super::{AttachmentError, Attachments};
use crate::model::{Body, BodyKind, EventKind, MediaKind};
use crate::store::MsgKey;

/// Events read per step of the follower.
pub(crate) const FOLLOW_STEP: usize = 256;

/// A media message found in the log.
#[derive(Debug, Clone)]
struct Planned {
    key: MsgKey,
    owner: u64,
    accounts: Vec<u64>,
    kind: MediaKind,
    main_size: Option<u64>,
    /// `Some(size)` when the message has a thumbnail.
    thumb: Option<Option<u64>>,
}

#[derive(Debug, Clone)]
enum Step {
    Created(Planned),
    Deleted(MsgKey),
}

fn is_media(kind: BodyKind) -> bool {
    matches!(
        kind,
        BodyKind::Image
            | BodyKind::File
            | BodyKind::Video
            | BodyKind::Audio
            | BodyKind::Voice
            | BodyKind::VideoNote
            | BodyKind::Sticker
            | BodyKind::Animation
    )
}

/// Reads the next events after the cursor and records what they mean for attachments.
/// Returns the number of events consumed.
pub async fn follow_once(a: &Attachments) -> Result<usize, AttachmentError> {
    let (last, steps, n) = a
        .store()
        .read(|r| {
            let cursor = {
                let t = r.txn().open_table(tables::ATTACHMENT_META)?;
                t.get(tables::META_CURSOR)?.map(|v| v.value()).unwrap_or(0)
            };
            if r.first_seq()?.is_some_and(|first| first > cursor + 1) {
                // The log was trimmed past events this follower never saw (lanbox was down
                // long, or the cursor is new): rebuild from the messages themselves.
                let (last, steps) = rescan(r)?;
                tracing::warn!(
                    events_missed_from = cursor + 1,
                    "attachment follower rescanned all messages"
                );
                return Ok((Some(last), steps, 0));
            }
            let events = r.events_after(cursor, FOLLOW_STEP)?;
            let mut steps = Vec::new();
            for e in &events {
                let Some(msg) = e.message_key else { continue };
                let key = MsgKey {
                    scope: e.scope,
                    chat: e.chat_id,
                    msg,
                };
                match e.kind {
                    // An update can bring media too (an edit that created the message);
                    // files already recorded are skipped when the steps are applied.
                    EventKind::MessageCreated | EventKind::MessageUpdated => {
                        let Some(stored) = r.stored_message(key)? else {
                            continue;
                        };
                        if !is_media(stored.body_kind) {
                            continue;
                        }
                        if let Body::Media(m) = r.open_content(key, &stored)?.body {
                            steps.push(Step::Created(Planned {
                                key,
                                owner: stored.owner,
                                accounts: stored.seen_by.clone(),
                                kind: m.kind,
                                main_size: m.file.size,
                                thumb: m.thumbnail.as_ref().map(|t| t.size),
                            }));
                        }
                    }
                    EventKind::MessageDeleted => steps.push(Step::Deleted(key)),
                    _ => {}
                }
            }
            Ok((events.last().map(|e| e.seq), steps, events.len()))
        })
        .await?;
    let Some(last) = last else { return Ok(0) };
    let weight = steps.len().max(1);
    let (created, removed) = a
        .store()
        .write(weight, move |ctx| apply_steps(ctx, &steps, last))
        .await?;
    for id in &removed {
        a.local().remove(*id)?;
    }
    if created > 0 {
        a.inner.wake_fetch.notify_one();
    }
    if !removed.is_empty() {
        a.inner.wake_sync.notify_one();
    }
    Ok(n)
}

/// Every media message, and every attachment whose message is gone, as steps; with the log's
/// last sequence number as the new cursor.
fn rescan(r: &crate::store::Reader) -> Result<(u64, Vec<Step>), crate::store::StoreError> {
    let last = r.last_seq()?;
    let mut steps = Vec::new();
    for key in r.all_message_keys()? {
        let Some(stored) = r.stored_message(key)? else {
            continue;
        };
        if !is_media(stored.body_kind) {
            continue;
        }
        if let Body::Media(m) = r.open_content(key, &stored)?.body {
            steps.push(Step::Created(Planned {
                key,
                owner: stored.owner,
                accounts: stored.seen_by.clone(),
                kind: m.kind,
                main_size: m.file.size,
                thumb: m.thumbnail.as_ref().map(|t| t.size),
            }));
        }
    }
    let t = r.txn().open_table(tables::ATTACHMENT_RECORD)?;
    for row in t.iter()? {
        let rec: AttachmentRecord = crate::store::codec::decode(row?.1.value())?;
        if let Some(key) = rec.message()
            && r.stored_message(key)?.is_none()
        {
            steps.push(Step::Deleted(key));
        }
    }
    Ok((last, steps))
}

/// Inside the write transaction: new records and fetch jobs, removed attachments of deleted
/// messages, the cursor. Returns (attachments created, attachment IDs removed).
fn apply_steps(
    ctx: &mut crate::store::WriteCtx<'_>,
    steps: &[Step],
    last: u64,
) -> Result<(usize, Vec<u64>), crate::store::StoreError> {
    let now_s = ctx.now;
    let mut t = Tables::open(ctx.txn())?;
    if t.cursor()? >= last {
        return Ok((0, Vec::new()));
    }
    let mut created = 0;
    let mut removed = Vec::new();
    for step in steps {
        match step {
            Step::Created(p) => {
                let roles =
                    std::iter::once((Role::Main, p.main_size)).chain(p.thumb.map(|s| (Role::Thumbnail, s)));
                for (role, size) in roles {
                    if t.by_msg.get((p.key, role.byte()))?.is_some() {
                        continue;
                    }
                    let id = t.next_id()?;
                    t.put(&AttachmentRecord {
                        id,
                        owner: p.owner,
                        accounts: p.accounts.clone(),
                        msg: tables::msg_ref(p.key),
                        role,
                        kind: Some(p.kind),
                        state: State::Pending,
                        size: None,
                        announced: size,
                        synced: false,
                        local: false,
                        attempts: 0,
                        created_at: now_s,
                        meta: None,
                    })?;
                    t.by_msg.insert((p.key, role.byte()), id)?;
                    t.fetch.insert(id, 0)?;
                    created += 1;
                }
            }
            Step::Deleted(key) => {
                for (role, id) in t.of_message(*key)? {
                    t.by_msg.remove((*key, role.byte()))?;
                    removed.extend(remove_record(&mut t, id)?);
                }
            }
        }
    }
    t.set_cursor(last)?;
    Ok((created, removed))
}

/// Drops an attachment's record and queue entries, queueing its object for deletion when it
/// reached the bucket. Returns the ID when there was a record (its local file must go).
pub(crate) fn remove_record(t: &mut Tables<'_>, id: u64) -> Result<Option<u64>, crate::store::StoreError> {
    let Some(rec) = t.get(id)? else { return Ok(None) };
    t.records.remove(id)?;
    t.fetch.remove(id)?;
    t.sync.remove(id)?;
    if rec.synced {
        t.unsync.insert(id, 0)?;
    }
    Ok(Some(id))
}

impl Attachments {
    /// Deletes every attachment encrypted under `account`'s key: records and queue entries at
    /// once, local files right after, bucket objects through the durable delete queue. Call it
    /// when an account is released (its key is destroyed, so the files are unreadable anyway).
    /// Returns how many were removed.
    pub async fn release_account(&self, account: u64) -> Result<usize, AttachmentError> {
        let removed = self
            .store()
            .write(1, move |ctx| {
                let mut t = Tables::open(ctx.txn())?;
                let mut owned = Vec::new();
                for row in t.records.iter()? {
                    let rec: AttachmentRecord = crate::store::codec::decode(row?.1.value())?;
                    if rec.owner == account {
                        owned.push(rec);
                    }
                }
                let mut removed = Vec::new();
                for rec in owned {
                    if let Some(key) = rec.message() {
                        t.by_msg.remove((key, rec.role.byte()))?;
                    }
                    removed.extend(remove_record(&mut t, rec.id)?);
                }
                Ok(removed)
            })
            .await?;
        for id in &removed {
            self.local().remove(*id)?;
        }
        self.inner.wake_sync.notify_one();
        Ok(removed.len())
    }
}
