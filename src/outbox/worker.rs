//! One sender task per account: it drains the account's pending items, oldest first per chat,
//! within the [`Limits`], with retries, and records every outcome through the writer jobs of
//! [`super::jobs`].
//!
//! Order: items of one chat go in the order they were queued (a chat whose head item waits,
//! for its bucket or a retry, holds the items behind it); different chats do not wait for each
//! other, so a private chat at one message a second does not slow the rest of the bot.
//!
//! Up to `concurrency` requests are in flight at once (never two for one chat), so the
//! writer can commit several items' "sending" and "sent" records together instead of one
//! fsync after another.
//!
//! The worker keeps at most [`WINDOW`] pending items in memory and reads more from the store as
//! it drains them; the store, not the memory, is the queue.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::attach::AttachmentSource;
use super::jobs;
use super::limits::{Limits, OutboxOptions};
use super::record::OutboxRecord;
use super::sender::{Sender, bot_entities, bounded, tl_entities, user_message};
use crate::channels::telegram::client::{ApiError, FileSend, ReplyParameters, SendMessage};
use crate::channels::telegram::map;
use crate::ingest::{Change, IndexHook};
use crate::model::{ChatKind, Direction, Message, Status};
use crate::store::Store;

/// Pending items held in memory per account.
pub const WINDOW: usize = 512;
/// Items finished between two trims of the status snapshots.
const TRIM_EVERY: u64 = 256;

#[derive(Debug, Clone)]
struct Pending {
    id: u64,
    chat: i64,
    kind: ChatKind,
    not_before: Option<Instant>,
}

pub(super) struct Worker {
    pub account: u64,
    pub store: Store,
    pub index: Arc<dyn IndexHook>,
    pub sender: Sender,
    pub opts: OutboxOptions,
    pub limits: Arc<Mutex<Limits>>,
    pub wake: Arc<Notify>,
    /// The attachment store, once connected (file sends).
    pub attachments: Arc<Mutex<Option<Arc<dyn AttachmentSource>>>>,
}

/// How one attempt ended, for the item.
enum Next {
    /// Done with (sent, failed, or gone).
    Done,
    /// Try again, not before this.
    Retry(Instant),
}

impl Worker {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let resend = self.opts.resend_interrupted;
        let account = self.account;
        match self
            .store
            .write(1, move |ctx| jobs::recover(ctx, account, resend))
            .await
        {
            Ok((0, 0)) => {}
            Ok((failed, requeued)) => {
                tracing::warn!(
                    account,
                    failed,
                    requeued,
                    "outbox: items interrupted while sending"
                )
            }
            Err(e) => {
                tracing::error!(account, error = %e, "outbox: could not recover; sender not started");
                return;
            }
        }
        let mut queue: VecDeque<Pending> = VecDeque::new();
        let mut loaded_upto = 0u64;
        let mut more = true;
        // Requests in flight, at most one per chat (which keeps each chat's order).
        let mut inflight = FuturesUnordered::new();
        let mut busy: HashSet<i64> = HashSet::new();
        let max_inflight = self.opts.concurrency.max(1) as usize;
        let this = &self;
        let mut finished = 0u64;
        let mut trim_due = false;
        self.trim().await;
        loop {
            if *stop.borrow() {
                return;
            }
            if std::mem::take(&mut trim_due) {
                self.trim().await;
            }
            // Registered before reading, so an item queued meanwhile still wakes us.
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if (more || queue.is_empty()) && queue.len() < WINDOW {
                match self.load(loaded_upto, WINDOW - queue.len()).await {
                    Ok(items) => {
                        more = items.len() == WINDOW - queue.len();
                        if let Some(last) = items.last() {
                            loaded_upto = last.id;
                        }
                        queue.extend(items);
                    }
                    Err(e) => {
                        tracing::error!(account, error = %e, "outbox: reading the queue failed");
                        more = true;
                    }
                }
            }
            let mut wait = None;
            while inflight.len() < max_inflight {
                match self.pick(&queue, &busy, Instant::now()) {
                    Pick::Go(i) => {
                        let p = queue[i].clone();
                        busy.insert(p.chat);
                        inflight.push(async move {
                            let next = this.attempt(&p).await;
                            (p, next)
                        });
                    }
                    Pick::Wait(at) => {
                        wait = Some(at);
                        break;
                    }
                    Pick::Idle => break,
                }
            }
            let sleep = async {
                match wait {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                Some((p, next)) = inflight.next(), if !inflight.is_empty() => {
                    busy.remove(&p.chat);
                    match next {
                        Next::Done => {
                            queue.retain(|q| q.id != p.id);
                            finished += 1;
                            trim_due |= finished.is_multiple_of(TRIM_EVERY);
                        }
                        Next::Retry(at) => {
                            if let Some(q) = queue.iter_mut().find(|q| q.id == p.id) {
                                q.not_before = Some(at);
                            }
                        }
                    }
                    if (&mut notified).now_or_never().is_some() {
                        more = true;
                    }
                }
                _ = sleep => {}
                _ = &mut notified => { more = true; }
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Drops the status snapshots of events the log no longer holds (it is trimmed by age and
    /// count elsewhere).
    async fn trim(&self) {
        let first = match self.store.read(|r| r.first_seq()).await {
            Ok(Some(f)) => f,
            _ => return,
        };
        if let Err(e) = self
            .store
            .write(1, move |ctx| jobs::trim_status(ctx, first))
            .await
        {
            tracing::warn!(error = %e, "outbox: could not trim status snapshots");
        }
    }

    async fn load(&self, after: u64, limit: usize) -> Result<Vec<Pending>, crate::store::StoreError> {
        let account = self.account;
        let items = self
            .store
            .read(move |r| jobs::pending_after(r.txn(), account, after, limit))
            .await?;
        Ok(items
            .into_iter()
            .map(|rec| Pending {
                id: rec.id,
                chat: rec.chat_id,
                kind: rec.chat_kind,
                not_before: None,
            })
            .collect())
    }

    /// The first item whose chat is free to send now (no request in flight, its limits allow
    /// it), keeping each chat's order; the limits' slot is taken here.
    fn pick(&self, queue: &VecDeque<Pending>, busy: &HashSet<i64>, now: Instant) -> Pick {
        if queue.len() <= busy.len() {
            return Pick::Idle;
        }
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        let bot = limits.bot_ready_at(now);
        if bot > now {
            return Pick::Wait(bot);
        }
        let mut held: HashSet<i64> = busy.clone();
        let mut earliest: Option<Instant> = None;
        for (i, p) in queue.iter().enumerate() {
            if held.contains(&p.chat) {
                continue;
            }
            let at = limits
                .ready_at(p.chat, p.kind, now)
                .max(p.not_before.unwrap_or(now));
            if at <= now {
                limits.take(p.chat, p.kind, now);
                return Pick::Go(i);
            }
            held.insert(p.chat);
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        earliest.map_or(Pick::Idle, Pick::Wait)
    }

    /// One request for one item, and its outcome recorded.
    async fn attempt(&self, p: &Pending) -> Next {
        let id = p.id;
        let begun = match self.store.write(1, move |ctx| jobs::begin_send(ctx, id)).await {
            Ok(Some(b)) => b,
            Ok(None) => return Next::Done,
            Err(e) => {
                tracing::error!(item = id, error = %e, "outbox: could not mark an item sending");
                return Next::Retry(Instant::now() + Duration::from_secs(1));
            }
        };
        let jobs::Begun {
            rec,
            text,
            entities,
            file,
        } = begun;
        let client = match &self.sender {
            Sender::Bot(client) => client,
            Sender::User { sender, timeout } => {
                if file.is_some() {
                    return self
                        .give_up(id, "file sends through a user account are not available yet")
                        .await;
                }
                let result = bounded(
                    *timeout,
                    sender.send_text(
                        rec.chat_id,
                        rec.chat_kind,
                        &text,
                        tl_entities(&entities),
                        rec.reply_to,
                    ),
                )
                .await
                .map(|sent| {
                    Some(user_message(
                        self.account,
                        rec.chat_id,
                        rec.chat_kind,
                        &text,
                        &entities,
                        rec.reply_to,
                        sent,
                    ))
                });
                return self.answered(&rec, &text, result).await;
            }
        };
        if let Some(file) = &file {
            let source = self.attachments.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let Some(source) = source else {
                return self
                    .give_up(
                        id,
                        "file sends are not available: the attachment store is not connected",
                    )
                    .await;
            };
            let bytes = match source.open(rec.account, file).await {
                Ok(b) => b,
                Err(reason) => return self.give_up(id, &safe_reason(&reason, &text)).await,
            };
            let send = FileSend {
                chat_id: rec.chat_id,
                file_name: file.file_name.clone(),
                mime_type: file.mime_type.clone(),
                size: file.size,
                caption: Some(text.to_string()),
                reply_to: rec.reply_to,
                bytes,
            };
            let result = client.send_file_json(send).await;
            return self.answered(&rec, &text, self.bot_message(result)).await;
        }
        let req = SendMessage {
            chat_id: rec.chat_id,
            text: text.to_string(),
            reply_parameters: rec.reply_to.map(|m| ReplyParameters {
                message_id: m,
                allow_sending_without_reply: Some(true),
                ..Default::default()
            }),
            entities: bot_entities(&entities),
            ..Default::default()
        };
        let result = client.send_message_json(&req).await;
        drop(req);
        self.answered(&rec, &text, self.bot_message(result)).await
    }

    /// The message in a bot's answer, mapped.
    fn bot_message(&self, result: Result<Value, ApiError>) -> Result<Option<Message>, ApiError> {
        result.map(|value| outgoing(self.account, value, false))
    }

    /// Records what Telegram answered to a send: the sent message, or why not.
    async fn answered(
        &self,
        rec: &OutboxRecord,
        text: &str,
        result: Result<Option<Message>, ApiError>,
    ) -> Next {
        let id = rec.id;
        match result {
            Ok(message) => {
                let Some(message) = message else {
                    return self
                        .give_up(id, "Telegram's answer named no message; it may have been sent")
                        .await;
                };
                let index = self.index.clone();
                match self
                    .store
                    .write(1, move |ctx| jobs::finish_sent(ctx, index.as_ref(), id, &message))
                    .await
                {
                    Ok(_) => Next::Done,
                    Err(e) => {
                        // Sent, but not recorded: the item stays "sending", and a restart
                        // reports it as interrupted rather than sending it twice.
                        tracing::error!(item = id, error = %e, "outbox: sent but not recorded");
                        Next::Done
                    }
                }
            }
            Err(e) => self.failed_attempt(rec, text, e).await,
        }
    }

    async fn failed_attempt(&self, rec: &OutboxRecord, text: &str, e: ApiError) -> Next {
        let id = rec.id;
        let now = Instant::now();
        match e {
            ApiError::RetryAfter(secs) => {
                self.limits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pause(secs, now);
                if rec.rate_limited + 1 > self.opts.max_rate_limited {
                    let reason = format!(
                        "rate limited by Telegram {} times in a row; gave up",
                        rec.rate_limited + 1
                    );
                    return self.give_up(id, &reason).await;
                }
                self.retry(id, true, false).await;
                Next::Retry(now + Duration::from_secs(secs.max(1)))
            }
            e if e.is_transient() && rec.attempts <= self.opts.retries => {
                let keep_sending = matches!(e, ApiError::Timeout);
                tracing::info!(item = id, attempt = rec.attempts, error = %e, "outbox: retrying");
                self.retry(id, false, keep_sending).await;
                let backoff = Duration::from_secs(1 << rec.attempts.saturating_sub(1).min(16))
                    .min(self.opts.max_backoff);
                Next::Retry(now + backoff)
            }
            e => {
                let reason = if e.is_transient() {
                    format!("gave up after {} attempts: {}", rec.attempts, e)
                } else {
                    e.to_string()
                };
                self.give_up(id, &safe_reason(&reason, text)).await
            }
        }
    }

    async fn retry(&self, id: u64, rate_limited: bool, keep_sending: bool) {
        if let Err(e) = self
            .store
            .write(1, move |ctx| {
                jobs::retry_later(ctx, id, rate_limited, keep_sending)
            })
            .await
        {
            tracing::error!(item = id, error = %e, "outbox: could not record a retry");
        }
    }

    async fn give_up(&self, id: u64, reason: &str) -> Next {
        let reason = reason.to_owned();
        tracing::warn!(item = id, reason = %reason, "outbox: send failed");
        match self.store.write(1, move |ctx| jobs::fail(ctx, id, &reason)).await {
            Ok(_) => Next::Done,
            Err(e) => {
                tracing::error!(item = id, error = %e, "outbox: could not record a failure");
                Next::Retry(Instant::now() + Duration::from_secs(1))
            }
        }
    }
}

enum Pick {
    Go(usize),
    Wait(Instant),
    Idle,
}

/// A reason that cannot carry the text: Telegram's descriptions name the problem, but one that
/// quoted the message would end up in the item, the event log and the log file.
pub fn safe_reason(reason: &str, text: &str) -> String {
    let t = text.trim();
    if t.chars().count() >= 3 && reason.contains(t) {
        return "Telegram refused the message (its description quoted the text, so it is not shown)".into();
    }
    reason.to_owned()
}

/// Maps a message the bot sent (Telegram's answer to `sendMessage` or `editMessageText`) with
/// the update mapping, as outgoing and sent.
pub fn outgoing(account: u64, value: Value, edited: bool) -> Option<Message> {
    let channel = value
        .get("chat")
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        == Some("channel");
    let field = match (channel, edited) {
        (false, false) => "message",
        (false, true) => "edited_message",
        (true, false) => "channel_post",
        (true, true) => "edited_channel_post",
    };
    let raw = serde_json::to_vec(&json!({ "update_id": 0, field: value })).ok()?;
    map::map_raw(account, &raw)
        .changes
        .into_iter()
        .find_map(|c| match c {
            Change::New(m) | Change::Edit(m) => Some(m),
            _ => None,
        })
        .map(|mut m| {
            m.direction = Direction::Outgoing;
            m.status = Status::Sent;
            m
        })
}
