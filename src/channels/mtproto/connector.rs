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
//! A failure (network, Telegram, store) ends the client; [`UserConnector::run`] then waits with
//! a capped, doubling delay and starts again from the committed state. Logs name the account
//! and counts, never message text.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use grammers_client::client::UpdateStream;
use grammers_client::peer::PeerMap;
use grammers_client::sender::{SenderPool, UpdatesConfiguration};
use grammers_client::{Client, InvocationError};
use grammers_session::updates::State;
use grammers_tl_types as tl;
use tokio::sync::{mpsc, watch};

use super::login::UserOptions;
use super::session::StoredSession;
use super::state::{self, MtState};
use super::{CHANNEL, map};
use crate::ingest::{Batch, Pipeline};
use crate::model::AccountId;
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
            let mut changes = Vec::new();
            for (update, at, peers) in &items {
                changes.extend(map::map_update(account, update, peers, me));
                next.advance(at);
            }
            if !(changes.is_empty() && next == committed) {
                let write = next.clone();
                let batch = Batch {
                    account,
                    changes,
                    position: None,
                };
                if let Err(e) = self
                    .pipeline
                    .submit_with(batch, move |ctx| state::put(ctx, account, &write))
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
