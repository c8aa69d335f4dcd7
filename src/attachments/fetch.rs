//! The fetcher: works through the `attachment_fetch` queue that [`super::follow`] fills from
//! the event log, downloading with bounded concurrency (`getFile`, then the file URL). A message appears in the inbox at once; its file
//! becomes available later, announced by an `attachment.ready` event written in the same
//! transaction that marks the attachment stored.
//!
//! Low priority by design: at most `workers` downloads at once, a pause after each attempt,
//! a bounded scan of the queue per round; a failed attempt is rescheduled durably (its
//! not-before time in the queue, doubling up to `retry_max`) and given up after
//! `max_attempts`, never retried hot.
//!
//! A download streams: chunks from Telegram go through a bounded channel to a blocking thread
//! that encrypts and writes them, so memory stays at a few chunks whatever the file size.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::ReadableTable;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::follow::FOLLOW_STEP;
pub use super::follow::{follow_once, sweep_once};
use super::sink::{PIPE_CHUNKS, spawn_writer};
use super::tables::{self, ATTACHMENT_FETCH, AttachmentRecord, Role, State, Tables};
use super::{AttachmentError, Attachments, now};
use crate::channels::telegram::bots::load_bot;
use crate::channels::telegram::client::ApiError;
use crate::model::{Body, EventKind, EventRecord};
use crate::store::seal::Sealer;

/// What a fetch attempt came to.
#[derive(Debug)]
enum Outcome {
    /// `synced`: the fetch's tee already put the object in the bucket.
    Stored {
        size: u64,
        synced: bool,
    },
    TooBig,
    /// The message or record is gone; nothing to do.
    Gone,
    /// Retry later (or give up after too many attempts).
    Retry(String),
    /// Give up now.
    Fail(String),
}

/// The follower plus the fetch workers, until `stop`.
pub async fn run(a: Attachments, mut stop: watch::Receiver<bool>) {
    let mut published = a.store().subscribe();
    let in_flight: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let mut workers: JoinSet<()> = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        // Catch up with the log first, pausing between full steps so that a backlog is
        // worked through at low priority (the fetch queue's cap bounds what it queues).
        loop {
            match follow_once(&a).await {
                Ok(n) if n >= FOLLOW_STEP => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "attachment follower");
                    break;
                }
            }
            if pause(&mut stop, BACKLOG_PAUSE).await {
                break;
            }
        }
        // A step of the orphan sweep, when one is due (after the follower skipped a
        // trimmed part of the log).
        let mut sweeping = false;
        match sweep_once(&a).await {
            Ok(more) => sweeping = more,
            Err(e) => tracing::warn!(error = %e, "attachment orphan sweep"),
        }
        // Start due fetches up to the concurrency bound.
        let free = a.options().workers.max(1).saturating_sub(workers.len());
        let mut next_due = None;
        if free > 0 {
            let busy = in_flight.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let now_s = now();
            let due = a
                .store()
                .read(move |r| {
                    let t = r.txn().open_table(ATTACHMENT_FETCH)?;
                    let mut due = Vec::new();
                    let mut next: Option<u64> = None;
                    // The queue is capped by the follower; the scan is bounded anyway
                    // (entries beyond it are reached as the ones before finish).
                    for row in t.iter()?.take(SCAN_ROWS) {
                        let (k, v) = row?;
                        let (id, at) = (k.value(), v.value());
                        if busy.contains(&id) {
                            continue;
                        }
                        if at <= now_s {
                            if due.len() < free {
                                due.push(id);
                            }
                        } else {
                            next = Some(next.map_or(at, |n: u64| n.min(at)));
                        }
                    }
                    Ok((due, next))
                })
                .await;
            match due {
                Ok((due, next)) => {
                    next_due = next;
                    for id in due {
                        in_flight.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
                        let (a2, fl) = (a.clone(), in_flight.clone());
                        workers.spawn(async move {
                            fetch_and_record(&a2, id).await;
                            // Low priority: a gap after each attempt, so a queue of quick
                            // failures cannot keep a core busy.
                            tokio::time::sleep(JOB_GAP).await;
                            fl.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                            a2.inner.wake_fetch.notify_one();
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "reading the fetch queue"),
            }
        }
        let wait = if sweeping {
            BACKLOG_PAUSE
        } else {
            next_due
                .map(|at| Duration::from_secs(at.saturating_sub(now()).max(1)))
                .unwrap_or(Duration::from_secs(30))
        };
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            _ = a.inner.wake_fetch.notified() => {}
            r = published.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                    break;
                }
            }
            Some(_) = workers.join_next(), if !workers.is_empty() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    workers.abort_all();
    while workers.join_next().await.is_some() {}
}

/// Pause between steps of a backlog (follower, sweep).
const BACKLOG_PAUSE: Duration = Duration::from_millis(50);
/// Pause of a fetch worker after each attempt.
const JOB_GAP: Duration = Duration::from_millis(100);
/// Fetch-queue rows looked at per round.
const SCAN_ROWS: usize = 2048;

/// Sleeps `d`; true when `stop` came first.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = super::stopped(stop) => true,
        _ = tokio::time::sleep(d) => false,
    }
}

/// One attempt at one attachment, recorded whatever its outcome.
pub async fn fetch_and_record(a: &Attachments, id: u64) {
    let outcome = match fetch(a, id).await {
        Ok(o) => o,
        Err(e) => Outcome::Retry(e.to_string()),
    };
    let max_attempts = a.options().max_attempts;
    let s3 = a.s3().is_some();
    let (base, cap) = (a.options().retry_base, a.options().retry_max);
    let backoff = move |n: u32| super::backoff(base, cap, n).as_secs().max(1);
    let result = match outcome {
        Outcome::Gone => Ok(None),
        Outcome::Stored { size, synced } => a
            .store()
            .write(1, move |ctx| {
                let mut t = Tables::open(ctx.txn())?;
                // Gone while downloading: the file has no owner, and a teed object must go.
                let orphan = |t: &mut Tables<'_>| -> Result<Option<u64>, crate::store::StoreError> {
                    if synced {
                        t.unsync.insert(id, 0)?;
                    }
                    Ok(Some(id))
                };
                let Some(mut rec) = t.get(id)? else {
                    return orphan(&mut t);
                };
                let Some(key) = rec.message() else {
                    return orphan(&mut t);
                };
                let Some(stored) = ctx.get_message(key)? else {
                    return orphan(&mut t);
                };
                rec.state = State::Ready;
                rec.size = Some(size);
                rec.local = true;
                rec.synced = synced;
                rec.accounts = stored.seen_by.clone();
                t.put(&rec)?;
                t.fetch.remove(id)?;
                if s3 && !synced {
                    t.sync.insert(id, 0)?;
                }
                drop(t);
                ctx.append_event(
                    EventRecord {
                        seq: 0,
                        kind: EventKind::AttachmentReady,
                        accounts: stored.seen_by,
                        scope: key.scope,
                        chat_id: key.chat,
                        message_key: Some(key.msg),
                        from_chat: None,
                        unread: None,
                        at: 0,
                    },
                    None,
                )?;
                Ok(None)
            })
            .await
            .inspect(|orphan| {
                if s3 && !synced && orphan.is_none() {
                    a.inner.wake_sync.notify_one();
                }
            }),
        other => {
            let (state, retry, reason) = match other {
                Outcome::TooBig => (State::TooBig, false, String::new()),
                Outcome::Fail(r) => (State::Failed(r.clone()), false, r),
                Outcome::Retry(r) => (State::Pending, true, r),
                _ => unreachable!("handled above"),
            };
            if !reason.is_empty() {
                tracing::info!(attachment = id, reason = %reason, "attachment fetch did not complete");
            }
            let next_at = now();
            a.store()
                .write(1, move |ctx| {
                    let mut t = Tables::open(ctx.txn())?;
                    let Some(mut rec) = t.get(id)? else {
                        return Ok(None);
                    };
                    rec.attempts += 1;
                    if retry && rec.attempts < max_attempts {
                        t.fetch.insert(id, next_at + backoff(rec.attempts))?;
                    } else {
                        rec.state = if retry {
                            State::Failed(reason.clone())
                        } else {
                            state.clone()
                        };
                        t.fetch.remove(id)?;
                    }
                    t.put(&rec)?;
                    Ok(None)
                })
                .await
        }
    };
    match result {
        // The record went away while downloading: the file has no owner.
        Ok(Some(orphan)) => {
            let _ = a.local().remove(orphan);
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(attachment = id, error = %e, "recording an attachment fetch"),
    }
}

/// What the fetcher needs to know about one queued attachment.
struct Job {
    rec: AttachmentRecord,
    file_id: String,
    size: Option<u64>,
    sealer: Arc<Sealer>,
}

async fn fetch(a: &Attachments, id: u64) -> Result<Outcome, AttachmentError> {
    let job = a
        .store()
        .read(move |r| {
            let Some(rec) = tables::read_record(r.txn(), id)? else {
                return Ok(None);
            };
            let Some(key) = rec.message() else { return Ok(None) };
            let Some(stored) = r.stored_message(key)? else {
                return Ok(None);
            };
            let Body::Media(m) = r.open_content(key, &stored)?.body else {
                return Ok(None);
            };
            let file = match rec.role {
                Role::Main => m.file,
                Role::Thumbnail => match m.thumbnail {
                    Some(t) => t,
                    None => return Ok(None),
                },
                Role::Upload => return Ok(None),
            };
            let sealer = r.sealer(rec.owner)?;
            Ok(Some(Job {
                rec,
                file_id: file.file_id,
                size: file.size,
                sealer,
            }))
        })
        .await?;
    let Some(job) = job else { return Ok(Outcome::Gone) };
    // A user account's file (its reference starts `mtproto:`) has no Bot API file ID: refused
    // once, rather than retried against the Bot API. Downloading it over MTProto is to come.
    if job.file_id.starts_with("mtproto:") {
        return Ok(Outcome::Fail("a user account's file: not downloaded yet".into()));
    }
    let bot = match load_bot(a.store(), job.rec.owner).await {
        Ok(Some(bot)) => bot,
        Ok(None) => return Ok(Outcome::Fail("the account was removed".into())),
        Err(e) => return Ok(Outcome::Retry(e.to_string())),
    };
    let base = bot.options.api_base.trim_end_matches('/');
    let limited = a
        .options()
        .limited_api_bases
        .iter()
        .any(|b| b.trim_end_matches('/') == base);
    let limit = a.options().bot_download_limit;
    if limited && job.size.is_some_and(|s| s > limit) {
        return Ok(Outcome::TooBig);
    }
    let client = bot.client(a.inner.http.clone());
    let file = match client.get_file(&job.file_id).await {
        Ok(f) => f,
        Err(ApiError::Other(400, d)) if d.to_ascii_lowercase().contains("too big") => {
            return Ok(Outcome::TooBig);
        }
        Err(e) if e.is_transient() => return Ok(Outcome::Retry(e.to_string())),
        Err(e) => return Ok(Outcome::Fail(e.to_string())),
    };
    if limited && file.file_size.is_some_and(|s| s > limit) {
        return Ok(Outcome::TooBig);
    }
    let Some(path) = file.file_path else {
        return Ok(Outcome::Fail("getFile gave no file path".into()));
    };
    let mut dl = match client.download(&path).await {
        Ok(d) => d,
        Err(e) => return Ok(Outcome::Retry(e.to_string())),
    };
    let (tx, rx) = mpsc::channel(PIPE_CHUNKS);
    // With S3 and a known size, the ciphertext is also teed into a streaming upload, so the
    // file is in the bucket when the fetch ends (otherwise the sync queue uploads it after).
    let (tee, upload) = match (a.s3(), file.file_size.or(job.size)) {
        (Some(s3), Some(n)) => {
            let (ttx, trx) = mpsc::channel(PIPE_CHUNKS);
            let s3 = s3.clone();
            let key = super::s3::S3::object_key(id);
            let len = super::crypt::ciphertext_len(n);
            let task = tokio::spawn(async move { s3.upload_stream(&key, len, trx).await });
            (Some(ttx), Some(task))
        }
        _ => (None, None),
    };
    let writer = spawn_writer(a, id, job.sealer.clone(), rx, tee);
    let fed = async {
        loop {
            match dl.chunk().await {
                Ok(Some(c)) => {
                    if tx.send(Some(c)).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => {
                    let _ = tx.send(None).await;
                    return Ok(());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|_| AttachmentError::Stopped)?;
    let synced = match upload {
        Some(task) => match task.await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::info!(attachment = id, error = %e, "streaming S3 upload failed; queued for sync");
                false
            }
            Err(_) => false,
        },
        None => false,
    };
    if let Err(e) = fed {
        return Ok(Outcome::Retry(e));
    }
    let size = written?;
    if let Some(expected) = file.file_size.or(job.size)
        && expected != size
    {
        a.local().remove(id)?;
        return Ok(Outcome::Retry(format!(
            "download ended after {size} of {expected} bytes"
        )));
    }
    Ok(Outcome::Stored { size, synced })
}
