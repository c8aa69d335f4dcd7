//! The live connection of one user account: its sealed session opened, a grammers client on
//! it, and the update stream fed into the ingest pipeline.
//!
//! The stream starts from the update state committed in the store ([`super::state`]) with
//! `catch_up` on, so grammers' message box asks `updates.getDifference` (and
//! `getChannelDifference`) before it hands out anything pushed live: after a restart the missed
//! messages come first, in order. The updates waiting (up to 500) are committed as one batch
//! with the state they bring the account to, in one transaction ([`Pipeline::submit_with`]); a crash re-fetches at most the
//! updates that were not committed, and dedup in the pipeline absorbs a repeat. Every update of
//! a difference carries the state after the whole difference, so a batch that holds only part
//! of one commits the state before it ([`Held`]): a crash then fetches that part again rather
//! than skipping the rest (`tests/user_kill.rs` lost messages this way). grammers also
//! fills a gap seen while live (a push whose pts skips ahead) the same way.
//!
//! Alongside go the rows of [`super::message_chat`] (the chat of each per-account message ID,
//! for deletes that name none) and the access hashes of channels and people first seen
//! ([`super::channel_access`], given back to grammers at the next start so it can catch those
//! channels up and the outbox can name those people).
//!
//! While connected, the client is published in a [`LiveSlot`] ([`UserConnector::run_sharing`]):
//! the outbox sends through it ([`super::send`]), so an account has one session, not two.
//!
//! A failure (network, Telegram, store) ends the client; [`UserConnector::run`] then waits with
//! a capped, doubling delay and starts again from the committed state. Logs name the account
//! and counts, never message text.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use grammers_client::client::UpdateStream;
use grammers_client::peer::PeerMap;
use grammers_client::sender::{SenderPool, UpdatesConfiguration};
use grammers_client::{Client, InvocationError};
use grammers_session::Session;
use grammers_session::types::{PeerAuth, PeerInfo};
use grammers_session::updates::State;
use grammers_tl_types as tl;
use tokio::sync::{broadcast, mpsc, watch};

use super::channel_access;
use super::events::{self, CustomerTyping};
use super::login::UserOptions;
use super::message_chat::{self, Row};
use super::send::{LiveClient, LiveSlot};
use super::session::StoredSession;
use super::state::{self, MtState};
use super::{CHANNEL, map};
use crate::ingest::{Batch, Change, Pipeline};
use crate::model::{AccountId, Chat, ChatKind};
use crate::store::new_account::secret_aad;
use crate::store::{Store, StoreError};

/// What the connector is doing, for the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserStatus {
    Starting,
    /// Connected; `committed` updates stored since the start.
    Live {
        committed: u64,
    },
    /// Waiting before reconnecting; the reason names no message content.
    BackingOff {
        reason: String,
        failures: u32,
    },
    Stopped {
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("the account is not a Telegram user account, was removed, or has no session")]
    NoSession,
    #[error("the stored session or options do not decode")]
    BadSession,
    #[error("Telegram: {0}")]
    Telegram(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// One user account's connector.
pub struct UserConnector {
    pub account: AccountId,
    pub pipeline: Pipeline,
    pub status: watch::Sender<UserStatus>,
    /// First wait after a failure; doubles up to a minute.
    pub retry: Duration,
    /// Where the other side's typing goes (to the live feed, in `serve`); `None`: nowhere.
    pub typing: Option<broadcast::Sender<CustomerTyping>>,
    /// After this long without an update, Telegram's update state is asked for
    /// (`updates.getState`); when it is ahead of what was committed, the stream has stalled
    /// (updates pushed while a connection was being replaced, and nothing since to reveal the
    /// gap) and the connection starts again, catching up from the committed state.
    pub watchdog: Duration,
}

/// The watchdog's period in `serve`.
pub const WATCHDOG: Duration = Duration::from_secs(60);

impl UserConnector {
    /// Runs until `shutdown` completes, reconnecting after failures; returns why it stopped.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> String {
        self.run_sharing(LiveSlot::default(), shutdown).await
    }

    /// [`UserConnector::run`], publishing the client in `live` while it is connected (the
    /// outbox sends through it: [`super::send`]).
    pub async fn run_sharing(self, live: LiveSlot, shutdown: impl Future<Output = ()> + Send) -> String {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        let reason = loop {
            self.status.send_replace(UserStatus::Starting);
            let err = tokio::select! {
                biased;
                _ = &mut shutdown => break "shut down".to_string(),
                e = self.session(&live) => e,
            };
            if matches!(
                err,
                ConnectorError::NoSession
                    | ConnectorError::BadSession
                    | ConnectorError::Store(StoreError::WriterGone)
            ) {
                break err.to_string();
            }
            failures = failures.saturating_add(1);
            let delay = self
                .retry
                .saturating_mul(1 << failures.min(6))
                .min(Duration::from_secs(60));
            tracing::warn!(account = self.account, failures, ?delay, error = %err, "user account connection failed; retrying");
            self.status.send_replace(UserStatus::BackingOff {
                reason: err.to_string(),
                failures,
            });
            tokio::select! {
                biased;
                _ = &mut shutdown => break "shut down".to_string(),
                _ = tokio::time::sleep(delay) => {}
            }
        };
        tracing::info!(account = self.account, %reason, "user account connector stopped");
        self.status.send_replace(UserStatus::Stopped {
            reason: reason.clone(),
        });
        reason
    }

    /// One connection, from the committed state until an error.
    async fn session(&self, live: &LiveSlot) -> ConnectorError {
        let account = self.account;
        let store = self.pipeline.store().clone();
        let (stored, options) = match load(&store, account).await {
            Ok(Some(x)) => x,
            Ok(None) => return ConnectorError::NoSession,
            Err(e) => return e,
        };
        let committed = match store.read(move |r| state::get(r, account)).await {
            Ok(s) => s.unwrap_or_default(),
            Err(e) => return e.into(),
        };
        let me = stored.me.map(|(id, _)| id).unwrap_or(options.user_id);
        let memory = Arc::new(stored.to_memory(committed.to_grammers()));
        // The channels' access hashes, so grammers can catch each channel up.
        let mut channels: HashMap<i64, i64> = match store.read(move |r| channel_access::all(r, account)).await
        {
            Ok(c) => c.into_iter().collect(),
            Err(e) => return e.into(),
        };
        let mut users: HashMap<i64, i64> = match store.read(move |r| channel_access::users(r, account)).await
        {
            Ok(c) => c.into_iter().collect(),
            Err(e) => return e.into(),
        };
        let infos = channels
            .iter()
            .map(|(&id, &hash)| PeerInfo::Channel {
                id,
                auth: Some(PeerAuth::from_hash(hash)),
                kind: None,
            })
            .chain(users.iter().map(|(&id, &hash)| PeerInfo::User {
                id,
                auth: Some(PeerAuth::from_hash(hash)),
                bot: None,
                is_self: None,
            }))
            .collect();
        if memory.cache_peers(infos).await.is_err() {
            return ConnectorError::BadSession;
        }
        let pool = SenderPool::new(memory.clone(), options.api_id);
        let client = Client::new(pool.handle.clone());
        let runner = tokio::spawn(pool.runner.run());
        let mut _stop = StopClient(&client, &runner, live, 0);
        let stream = match client
            .stream_updates(pool.updates, UpdatesConfiguration { catch_up: true })
            .await
        {
            Ok(s) => s,
            Err(e) => return ConnectorError::Telegram(e.to_string()),
        };
        // The stream is read by its own task into a bounded queue, so a batch can take every
        // update already waiting without cancelling a read half-way (grammers' `next_raw` may
        // be inside a getDifference call).
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let reader = tokio::spawn(read_stream(stream, tx));
        let _stop_reader = AbortOnDrop(&reader);
        // History beside the stream, on the same client; it ends with this connection.
        let backfill = tokio::spawn(
            super::backfill::Backfill {
                account,
                pipeline: self.pipeline.clone(),
                client: client.clone(),
                me,
                options: options.backfill,
            }
            .run(),
        );
        let _stop_backfill = AbortOnDrop(&backfill);
        let mut committed = committed;
        let mut held = Held::default();
        let mut count = 0u64;
        let mut saved = stored;
        _stop.3 = live.set(LiveClient {
            client: client.clone(),
            session: memory.clone(),
            me,
        });
        self.status.send_replace(UserStatus::Live { committed: 0 });
        tracing::info!(
            account,
            pts = committed.pts,
            "user account connected; catching up"
        );
        let mut quiet = tokio::time::interval_at(tokio::time::Instant::now() + self.watchdog, self.watchdog);
        loop {
            let first = tokio::select! {
                r = rx.recv() => match r {
                    Some(r) => r,
                    None => return ConnectorError::Telegram("the update stream ended".into()),
                },
                _ = quiet.tick() => match stalled(&client, &committed).await {
                    Ok(false) => continue,
                    Ok(true) => return ConnectorError::Telegram(
                        "the update stream stalled: Telegram's state is ahead of what arrived".into(),
                    ),
                    Err(e) => return e,
                },
            };
            quiet.reset();
            let mut reads = vec![first];
            let mut failed = None;
            loop {
                match reads.last() {
                    Some(Read::Failed(_)) => {
                        if let Some(Read::Failed(e)) = reads.pop() {
                            failed = Some(e);
                        }
                        break;
                    }
                    _ if reads.len() >= BATCH => break,
                    _ => match rx.try_recv() {
                        Ok(r) => reads.push(r),
                        Err(_) => break,
                    },
                }
            }
            let items: Vec<&Item> = reads
                .iter()
                .filter_map(|r| match r {
                    Read::Update(item) => Some(&**item),
                    _ => None,
                })
                .collect();
            if items.is_empty()
                && let Some(e) = failed
            {
                return ConnectorError::Telegram(e.to_string());
            }
            let next = held.advance(&committed, &reads);
            let (changes, rows) = match self.changes_of(&items, me).await {
                Ok(x) => x,
                Err(e) => return e.into(),
            };
            let mut fresh = Vec::new();
            let mut fresh_users = Vec::new();
            for (_, _, peers) in items.iter().copied() {
                for (id, hash) in channel_access::seen(peers) {
                    if channels.insert(id, hash) != Some(hash) {
                        fresh.push((id, hash));
                    }
                }
                for (id, hash) in channel_access::users_seen(peers) {
                    if users.insert(id, hash) != Some(hash) {
                        fresh_users.push((id, hash));
                    }
                }
            }
            if !(changes.is_empty() && next == committed && fresh.is_empty() && fresh_users.is_empty()) {
                let write = next.clone();
                let batch = Batch {
                    account,
                    changes,
                    position: None,
                };
                if let Err(e) = self
                    .pipeline
                    .submit_with(batch, move |ctx| {
                        message_chat::apply(ctx, account, &rows)?;
                        channel_access::put(ctx, account, &fresh)?;
                        channel_access::put_users(ctx, account, &fresh_users)?;
                        state::put(ctx, account, &write)
                    })
                    .await
                {
                    return e.into();
                }
                committed = next;
                count += items.len() as u64;
                self.status.send_replace(UserStatus::Live { committed: count });
            }
            if let Some(e) = failed {
                return ConnectorError::Telegram(e.to_string());
            }
            // Keys made or addresses learnt while connected are kept (rarely changes).
            let now = StoredSession::capture(&memory, saved.me);
            if now != saved {
                if let Err(e) = save(&store, account, &now).await {
                    return e;
                }
                saved = now;
            }
        }
    }
}

impl UserConnector {
    /// The changes of a batch of updates, and the rows of [`message_chat`] to write with them.
    /// Typing is passed on at once (it is not stored). The chats of an `updateDeleteMessages`
    /// come from the messages earlier in the batch, else from the store: this connector is the
    /// only writer of its account's rows, and its previous batch has committed.
    async fn changes_of(&self, items: &[&Item], me: i64) -> Result<(Vec<Change>, Vec<Row>), StoreError> {
        let account = self.account;
        let mut changes = Vec::new();
        let mut rows = Vec::new();
        for (update, _, peers) in items.iter().copied() {
            if let Some(t) = events::typing(account, update, peers, me) {
                if let Some(tx) = &self.typing {
                    // No one listening is fine: typing is best effort.
                    let _ = tx.send(t);
                }
                continue;
            }
            if let Some(ids) = events::deleted_ids(update) {
                let mut found: Vec<(i32, i64)> = Vec::new();
                let mut unknown = Vec::new();
                for &id in ids {
                    match rows.iter().rev().find_map(|r| match *r {
                        Row::Put { message_id, chat } if message_id == id => Some(Some(chat)),
                        Row::Remove { message_id } if message_id == id => Some(None),
                        _ => None,
                    }) {
                        Some(Some(chat)) => found.push((id, chat)),
                        Some(None) => {}
                        None => unknown.push(id),
                    }
                }
                if !unknown.is_empty() {
                    let store = self.pipeline.store();
                    found.extend(
                        store
                            .read(move |r| message_chat::lookup(r, account, &unknown))
                            .await?,
                    );
                }
                found.sort_by_key(|&(_, chat)| chat);
                for group in found.chunk_by(|a, b| a.1 == b.1) {
                    let chat = group[0].1;
                    rows.extend(group.iter().map(|&(message_id, _)| Row::Remove { message_id }));
                    changes.push(Change::Delete {
                        account,
                        chat: Chat {
                            id: chat,
                            // Per-account IDs: a user's ID is positive, a basic group's negative.
                            kind: if chat > 0 {
                                ChatKind::Private
                            } else {
                                ChatKind::Group
                            },
                            title: None,
                            username: None,
                            is_forum: false,
                        },
                        message_ids: group.iter().map(|&(id, _)| i64::from(id)).collect(),
                    });
                }
                continue;
            }
            let mut mapped = map::map_update(account, update, peers, me);
            mapped.extend(events::map_event(account, update, peers));
            for c in mapped {
                rows.extend(message_chat::row_for(&c));
                changes.push(c);
            }
        }
        Ok((changes, rows))
    }
}

/// Updates waiting between the stream's reader and the committer.
const QUEUE: usize = 1024;
/// Most updates committed in one batch.
const BATCH: usize = 500;

type Item = (tl::enums::Update, State, PeerMap);

/// Whether Telegram's update state (`updates.getState`) is ahead of `committed` although the
/// stream has been quiet: a push lost with a replaced connection is only noticed when a later
/// one shows the gap, which may never come. Channels are not covered (each has its own pts,
/// and a channel's next message shows its gap).
async fn stalled(client: &Client, committed: &MtState) -> Result<bool, ConnectorError> {
    let tl::enums::updates::State::State(now) = client
        .invoke(&tl::functions::updates::GetState {})
        .await
        .map_err(|e| ConnectorError::Telegram(e.to_string()))?;
    let behind = now.pts > committed.pts || now.qts > committed.qts;
    if behind {
        tracing::warn!(
            pts = committed.pts,
            telegram_pts = now.pts,
            "user account's update stream is behind Telegram; reconnecting to catch up"
        );
    }
    Ok(behind)
}

/// What the stream's reader passes to the committer.
enum Read {
    Update(Box<Item>),
    /// grammers had nothing more buffered when asked: every update handed out so far ended
    /// the group it came in (see [`Held`]).
    Idle,
    Failed(InvocationError),
}

/// Reads the update stream into `tx` until it fails (the error is passed on) or the committer
/// is gone.
///
/// grammers hands out the updates of one group (a difference, a slice, a channel difference)
/// one by one, each stamped with the state *after the whole group*. Before waiting for more,
/// the reader says so ([`Read::Idle`]): a call that does not complete at once found grammers'
/// buffer empty. The call is then awaited, not dropped, so nothing is lost to cancellation.
async fn read_stream(mut stream: UpdateStream, tx: mpsc::Sender<Read>) {
    loop {
        let r = {
            let mut next = std::pin::pin!(stream.next_raw());
            match std::future::poll_fn(|cx| Poll::Ready(next.as_mut().poll(cx))).await {
                Poll::Ready(r) => r,
                Poll::Pending => {
                    if tx.send(Read::Idle).await.is_err() {
                        break;
                    }
                    next.await
                }
            }
        };
        let (msg, end) = match r {
            Ok(item) => (Read::Update(Box::new(item)), false),
            Err(e) => (Read::Failed(e), true),
        };
        if tx.send(msg).await.is_err() || end {
            break;
        }
    }
}

/// The update state a batch may commit. Every update of a group carries the state after the
/// whole group, so committing it with only the first part of the group (the rest not yet read
/// when the batch was cut) would, after a crash, skip the rest for good. The state of the
/// batch's last run of equally stamped updates is therefore held back until the group is
/// known to be over: the reader went idle after it, or an update with another state followed.
/// A repeat after a crash (the held-back updates were stored, their state not) is absorbed by
/// the pipeline's dedup.
#[derive(Default)]
struct Held(Option<State>);

impl Held {
    /// Moves `committed` forward over what is complete in `reads` (a batch, in order) and keeps
    /// the rest for later.
    fn advance(&mut self, committed: &MtState, reads: &[Read]) -> MtState {
        let mut next = committed.clone();
        let mut pending: Vec<&State> = self.0.iter().collect();
        for r in reads {
            match r {
                Read::Update(item) => {
                    let at = &item.1;
                    if pending.last().is_some_and(|last| *last != at) {
                        pending.drain(..).for_each(|s| next.advance(s));
                    }
                    pending.push(at);
                }
                Read::Idle => pending.drain(..).for_each(|s| next.advance(s)),
                Read::Failed(_) => {}
            }
        }
        self.0 = pending.last().map(|s| (*s).clone());
        next
    }
}

struct AbortOnDrop<'a>(&'a tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ends a connection's client and its sender task when the session ends, however it ends
/// (and withdraws it from the outbox).
struct StopClient<'a>(&'a Client, &'a tokio::task::JoinHandle<()>, &'a LiveSlot, u64);

impl Drop for StopClient<'_> {
    fn drop(&mut self) {
        self.2.withdraw(self.3);
        self.0.disconnect();
        self.1.abort();
    }
}

/// The account's session (opened) and options; `None` when it is not a live user account.
///
/// A write job that changes nothing: data keys are reachable from a write job's context.
pub async fn load(store: &Store, id: u64) -> Result<Option<(StoredSession, UserOptions)>, ConnectorError> {
    let opened = store
        .write(1, move |ctx| {
            let rec = match ctx.account(id) {
                Ok(rec) => rec.clone(),
                Err(StoreError::UnknownAccount(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            let (true, Some(secret)) = (rec.channel == CHANNEL, rec.secret.as_ref()) else {
                return Ok(None);
            };
            let plain = zeroize::Zeroizing::new(ctx.sealer(id)?.open(secret, &secret_aad(id))?);
            Ok(Some((plain, rec.options.clone())))
        })
        .await?;
    let Some((plain, options)) = opened else {
        return Ok(None);
    };
    let session = postcard::from_bytes(&plain).map_err(|_| ConnectorError::BadSession)?;
    let options = serde_json::from_str(&options).map_err(|_| ConnectorError::BadSession)?;
    Ok(Some((session, options)))
}

/// Re-seals the account's session.
async fn save(store: &Store, id: u64, session: &StoredSession) -> Result<(), ConnectorError> {
    let plain =
        zeroize::Zeroizing::new(postcard::to_allocvec(session).map_err(|_| ConnectorError::BadSession)?);
    store
        .write(1, move |ctx| {
            let mut rec = ctx.account(id)?.clone();
            rec.secret = Some(ctx.sealer(id)?.seal(&plain, &secret_aad(id))?);
            ctx.put_account(rec)
        })
        .await?;
    Ok(())
}

/// The committed update state of `account` (what the next catch-up starts from).
pub async fn committed_state(store: &Store, account: u64) -> Result<Option<MtState>, StoreError> {
    store.read(move |r| state::get(r, account)).await
}
