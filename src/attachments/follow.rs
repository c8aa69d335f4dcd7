//! The event-log follower: reads the log from this subsystem's own durable cursor (in
//! `attachment_meta`, so nothing is missed across crashes), records the files of new media
//! messages and queues them for fetching, replaces the files of messages whose edit brought a
//! different file, and removes the attachments of deleted messages, all in one write
//! transaction per step.
//!
//! Bounded whatever the backlog: a step reads at most [`FOLLOW_STEP`] events, the follower
//! stops taking new files while the fetch queue holds [`FETCH_QUEUE_CAP`] (it resumes as
//! fetches finish), and nothing ever walks all messages at once.
//!
//! **Media older than the follower.** A store that had messages before this subsystem first
//! opened it (an upgraded box) starts the cursor at the log's end; when the log was trimmed
//! past the cursor (the follower fell more than the retention behind), it jumps to the first
//! kept event. Files of the messages skipped that way are recorded and fetched **lazily**,
//! when a client lists the message's attachments ([`Attachments::ensure_recorded`]), never as
//! a background walk over every message; attachments whose message was deleted in the skipped
//! part are removed by a sweep over the records in batches of [`SWEEP_STEP`].

use redb::{ReadableTable, ReadableTableMetadata};

use super::tables::{self, AttachmentRecord, Role, State, Tables};
use super::{AttachmentError, Attachments};
use crate::model::{Body, BodyKind, EventKind, Media, MediaKind};
use crate::store::MsgKey;

/// Events read per step of the follower.
pub const FOLLOW_STEP: usize = 256;
/// The follower takes no new files while the fetch queue holds this many.
pub const FETCH_QUEUE_CAP: u64 = 512;
/// Records looked at per step of the orphan sweep.
pub const SWEEP_STEP: usize = 256;

/// A media message found in the log.
#[derive(Debug, Clone)]
struct Planned {
    key: MsgKey,
    owner: u64,
    accounts: Vec<u64>,
    kind: MediaKind,
    /// (role, announced size, file fingerprint).
    files: Vec<(Role, Option<u64>, u64)>,
    /// From an edit: a recorded file whose fingerprint differs (or is unknown) is replaced.
    edited: bool,
}

impl Planned {
    fn new(key: MsgKey, owner: u64, accounts: Vec<u64>, m: &Media, edited: bool) -> Planned {
        let mut files = vec![(Role::Main, m.file.size, tables::fingerprint(&m.file))];
        if let Some(t) = &m.thumbnail {
            files.push((Role::Thumbnail, t.size, tables::fingerprint(t)));
        }
        Planned {
            key,
            owner,
            accounts,
            kind: m.kind,
            files,
            edited,
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    Created(Planned),
    Deleted(MsgKey),
}

pub(crate) fn is_media(kind: BodyKind) -> bool {
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

/// What the follower read after its cursor.
enum Followed {
    /// The last event seen (`None`: nothing to do now), what the events mean, how many.
    Events(Option<u64>, Vec<Step>, usize),
    /// The log was trimmed past events the follower never saw; it resumes after this one.
    Behind(u64),
}

/// Reads the next events after the cursor and records what they mean for attachments.
/// Returns the number of events consumed (0 also while the fetch queue is full).
pub async fn follow_once(a: &Attachments) -> Result<usize, AttachmentError> {
    let read = a
        .store()
        .read(|r| {
            let txn = r.txn();
            let cursor = {
                let t = txn.open_table(tables::ATTACHMENT_META)?;
                t.get(tables::META_CURSOR)?.map(|v| v.value()).unwrap_or(0)
            };
            if let Some(first) = r.first_seq()?
                && first > cursor + 1
            {
                return Ok(Followed::Behind(first - 1));
            }
            if txn.open_table(tables::ATTACHMENT_FETCH)?.len()? >= FETCH_QUEUE_CAP {
                return Ok(Followed::Events(None, Vec::new(), 0));
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
                    // An update can bring media too (an edit that created the message, or
                    // replaced its file); unchanged files are skipped when applied.
                    EventKind::MessageCreated | EventKind::MessageUpdated => {
                        let edited = e.kind == EventKind::MessageUpdated;
                        let Some(stored) = r.stored_message(key)? else {
                            continue;
                        };
                        let media = if is_media(stored.body_kind) {
                            match r.open_content(key, &stored)?.body {
                                Body::Media(m) => Some(m),
                                _ => None,
                            }
                        } else {
                            None
                        };
                        match media {
                            Some(m) => steps.push(Step::Created(Planned::new(
                                key,
                                stored.owner,
                                stored.seen_by.clone(),
                                &m,
                                edited,
                            ))),
                            // An edit that turned media into text drops the files.
                            None if edited => steps.push(Step::Deleted(key)),
                            None => {}
                        }
                    }
                    EventKind::MessageDeleted => steps.push(Step::Deleted(key)),
                    _ => {}
                }
            }
            Ok(Followed::Events(
                events.last().map(|e| e.seq),
                steps,
                events.len(),
            ))
        })
        .await?;
    let (last, steps, n) = match read {
        Followed::Events(last, steps, n) => (last, steps, n),
        Followed::Behind(jump_to) => {
            // The log was trimmed past events this follower never saw: jump to the first
            // kept one; skipped media are recorded lazily, skipped deletions by the sweep.
            tracing::warn!(
                resumed_at = jump_to + 1,
                "attachment follower fell behind the event log; older media are fetched on demand"
            );
            a.store()
                .write(1, move |ctx| {
                    let mut t = Tables::open(ctx.txn())?;
                    if t.cursor()? < jump_to {
                        t.set_cursor(jump_to)?;
                        t.meta.insert(tables::META_SWEEP, 1)?;
                    }
                    Ok(())
                })
                .await?;
            return Ok(FOLLOW_STEP);
        }
    };
    let Some(last) = last else { return Ok(0) };
    let weight = steps.len().max(1);
    let (created, removed) = a
        .store()
        .write(weight, move |ctx| {
            let mut t = Tables::open(ctx.txn())?;
            if t.cursor()? >= last {
                return Ok((0, Vec::new()));
            }
            let now_s = ctx.now;
            let out = apply_steps(&mut t, &steps, now_s)?;
            t.set_cursor(last)?;
            Ok(out)
        })
        .await?;
    after_apply(a, created, &removed)?;
    Ok(n)
}

/// Local files of removed attachments go; the fetcher and syncer are woken as needed.
fn after_apply(a: &Attachments, created: usize, removed: &[u64]) -> Result<(), AttachmentError> {
    for id in removed {
        a.local().remove(*id)?;
    }
    if created > 0 {
        a.inner.wake_fetch.notify_one();
    }
    if !removed.is_empty() {
        a.inner.wake_sync.notify_one();
    }
    Ok(())
}

/// One step of the orphan sweep (due after the follower skipped part of the log): removes the
/// attachments of up to [`SWEEP_STEP`] records whose message is gone. Returns whether more is
/// left to sweep.
pub async fn sweep_once(a: &Attachments) -> Result<bool, AttachmentError> {
    // Almost always nothing is due: find out without a write job.
    let due = a
        .store()
        .read(|r| {
            let t = r.txn().open_table(tables::ATTACHMENT_META)?;
            Ok(t.get(tables::META_SWEEP)?.is_some())
        })
        .await?;
    if !due {
        return Ok(false);
    }
    let (more, removed) = a
        .store()
        .write(SWEEP_STEP, |ctx| {
            let mut t = Tables::open(ctx.txn())?;
            let Some(from) = t.meta.get(tables::META_SWEEP)?.map(|v| v.value()) else {
                return Ok((false, Vec::new()));
            };
            let mut gone = Vec::new();
            let mut next = None;
            for (i, row) in t.records.range(from..)?.enumerate() {
                let (k, v) = row?;
                if i == SWEEP_STEP {
                    next = Some(k.value());
                    break;
                }
                let rec: AttachmentRecord = v.value().get()?;
                if let Some(key) = rec.message() {
                    gone.push((key, rec.role, rec.id));
                }
            }
            let mut removed = Vec::new();
            for (key, role, id) in gone {
                if ctx.get_message(key)?.is_none() {
                    t.by_msg.remove((key, role.byte()))?;
                    removed.extend(remove_record(&mut t, id)?);
                }
            }
            match next {
                Some(n) => t.meta.insert(tables::META_SWEEP, n)?,
                None => t.meta.remove(tables::META_SWEEP)?,
            };
            Ok((next.is_some(), removed))
        })
        .await?;
    after_apply(a, 0, &removed)?;
    Ok(more)
}

impl Attachments {
    /// Records (and queues) the files of a media message that has none yet: media the
    /// follower never saw (older than it, or in a trimmed part of the log) are fetched when a
    /// client first asks for them. Returns whether anything was recorded.
    pub async fn ensure_recorded(&self, key: MsgKey) -> Result<bool, AttachmentError> {
        let created = self
            .store()
            .write(1, move |ctx| {
                let Some(stored) = ctx.get_message(key)? else {
                    return Ok(0);
                };
                if !is_media(stored.body_kind) {
                    return Ok(0);
                }
                if Tables::open(ctx.txn())?
                    .by_msg
                    .get((key, Role::Main.byte()))?
                    .is_some()
                {
                    return Ok(0);
                }
                let Body::Media(m) = ctx.open_content(key, &stored)?.body else {
                    return Ok(0);
                };
                let now_s = ctx.now;
                let p = Planned::new(key, stored.owner, stored.seen_by.clone(), &m, false);
                let mut t = Tables::open(ctx.txn())?;
                Ok(apply_steps(&mut t, &[Step::Created(p)], now_s)?.0)
            })
            .await?;
        after_apply(self, created, &[])?;
        Ok(created > 0)
    }
}

/// Inside the write transaction: new records and fetch jobs, replaced files of edited
/// messages, removed attachments of deleted messages. Returns (attachments created,
/// attachment IDs removed).
fn apply_steps(
    t: &mut Tables<'_>,
    steps: &[Step],
    now_s: i64,
) -> Result<(usize, Vec<u64>), crate::store::StoreError> {
    let mut created = 0;
    let mut removed = Vec::new();
    for step in steps {
        match step {
            Step::Created(p) => {
                for &(role, size, fp) in &p.files {
                    let old = t.by_msg.get((p.key, role.byte()))?.map(|v| v.value());
                    if let Some(old) = old {
                        let same = t.files.get(old)?.map(|v| v.value());
                        // A repeat, or an edit that kept the file: nothing to do. An edit
                        // with a different (or unknown) file replaces it.
                        if !p.edited || same == Some(fp) {
                            continue;
                        }
                        t.by_msg.remove((p.key, role.byte()))?;
                        removed.extend(remove_record(t, old)?);
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
                    t.files.insert(id, fp)?;
                    t.fetch.insert(id, 0)?;
                    created += 1;
                }
                // An edit that dropped the thumbnail drops its file.
                if p.edited && !p.files.iter().any(|f| f.0 == Role::Thumbnail) {
                    let thumb = (p.key, Role::Thumbnail.byte());
                    let old = t.by_msg.remove(thumb)?.map(|v| v.value());
                    if let Some(old) = old {
                        removed.extend(remove_record(t, old)?);
                    }
                }
            }
            Step::Deleted(key) => {
                for (role, id) in t.of_message(*key)? {
                    t.by_msg.remove((*key, role.byte()))?;
                    removed.extend(remove_record(t, id)?);
                }
            }
        }
    }
    Ok((created, removed))
}

/// Drops an attachment's record and queue entries, queueing its object for deletion when it
/// reached the bucket. Returns the ID when there was a record (its local file must go).
pub(crate) fn remove_record(t: &mut Tables<'_>, id: u64) -> Result<Option<u64>, crate::store::StoreError> {
    let Some(rec) = t.get(id)? else { return Ok(None) };
    t.records.remove(id)?;
    t.files.remove(id)?;
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
                    let rec: AttachmentRecord = row?.1.value().get()?;
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
