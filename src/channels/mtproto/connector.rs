//! The live connection of one user account: its sealed session opened, a grammers client on
//! it, and the update stream fed into the ingest pipeline.
//!
//! The stream starts from the update state committed in the store ([`super::state`]) with
//! `catch_up` on, so grammers' message box asks `updates.getDifference` (and
//! `getChannelDifference`) before it hands out anything pushed live: after a restart the missed
//! messages come first, in order. The updates waiting (up to 500) are committed as one batch
//! with the state they bring the account to, in one transaction ([`Pipeline::submit_with`]); a crash re-fetches at most the
//! updates that were not committed, and dedup in the pipeline absorbs a repeat. grammers also
//! fills a gap seen while live (a push whose pts skips ahead) the same way.
//!
//! Alongside go the rows of [`super::message_chat`] (the chat of each per-account message ID,
//! for deletes that name none) and the access hashes of channels first seen
//! ([`super::channel_access`], given back to grammers at the next start so it can catch those
//! channels up).
//!
//! A failure (network, Telegram, store) ends the client; [`UserConnector::run`] then waits with
//! a capped, doubling delay and starts again from the committed state. Logs name the account
//! and counts, never message text.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
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
}

impl UserConnector {
    /// Runs until `shutdown` completes, reconnecting after failures; returns why it stopped.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> String {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        let reason = loop {
            self.status.send_replace(UserStatus::Starting);
            let err = tokio::select! {
                biased;
                _ = &mut shutdown => break "shut down".to_string(),
                e = self.session() => e,
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
    async fn session(&self) -> ConnectorError {
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
        let infos = channels
            .iter()
            .map(|(&id, &hash)| PeerInfo::Channel {
                id,
                auth: Some(PeerAuth::from_hash(hash)),
                kind: None,
            })
            .collect();
        if memory.cache_peers(infos).await.is_err() {
            return ConnectorError::BadSession;
        }
        let pool = SenderPool::new(memory.clone(), options.api_id);
        let client = Client::new(pool.handle.clone());
        let runner = tokio::spawn(pool.runner.run());
        let _stop = StopClient(&client, &runner);
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
        let mut count = 0u64;
        let mut saved = stored;
        self.status.send_replace(UserStatus::Live { committed: 0 });
        tracing::info!(
            account,
            pts = committed.pts,
            "user account connected; catching up"
        );
        loop {
            let Some(first) = rx.recv().await else {
                return ConnectorError::Telegram("the update stream ended".into());
            };
            let mut failed = None;
            let mut items = Vec::new();
            match first {
                Ok(x) => items.push(x),
                Err(e) => return ConnectorError::Telegram(e.to_string()),
            }
            while items.len() < BATCH {
                match rx.try_recv() {
                    Ok(Ok(x)) => items.push(x),
                    Ok(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                    Err(_) => break,
                }
            }
            let mut next = committed.clone();
            for (_, at, _) in &items {
                next.advance(at);
            }
            let (changes, rows) = match self.changes_of(&items, me).await {
                Ok(x) => x,
                Err(e) => return e.into(),
            };
            let mut fresh = Vec::new();
            for (_, _, peers) in &items {
                for (id, hash) in channel_access::seen(peers) {
                    if channels.insert(id, hash) != Some(hash) {
                        fresh.push((id, hash));
                    }
                }
            }
            if !(changes.is_empty() && next == committed && fresh.is_empty()) {
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
    async fn changes_of(&self, items: &[Item], me: i64) -> Result<(Vec<Change>, Vec<Row>), StoreError> {
        let account = self.account;
        let mut changes = Vec::new();
        let mut rows = Vec::new();
        for (update, _, peers) in items {
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
                if let Change::New(m) | Change::Edit(m) = &c
                    && m.chat.kind.ids_per_account()
                    && let Ok(message_id) = i32::try_from(m.message_id)
                {
                    rows.push(Row::Put {
                        message_id,
                        chat: m.chat.id,
                    });
                }
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

/// Reads the update stream into `tx` until it fails (the error is passed on) or the committer
/// is gone.
async fn read_stream(mut stream: UpdateStream, tx: mpsc::Sender<Result<Item, InvocationError>>) {
    loop {
        let r = stream.next_raw().await;
        let end = r.is_err();
        if tx.send(r).await.is_err() || end {
            break;
        }
    }
}

struct AbortOnDrop<'a>(&'a tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop<'_> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ends a connection's client and its sender task when the session ends, however it ends.
struct StopClient<'a>(&'a Client, &'a tokio::task::JoinHandle<()>);

impl Drop for StopClient<'_> {
    fn drop(&mut self) {
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
