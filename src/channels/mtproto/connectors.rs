//! [`UserConnectors`]: one [`UserConnector`] task per signed-in user account, and the status
//! of each, for `serve`. A cheap-to-clone handle, shaped like the Bot API's `Pollers`.
//!
//! Each task stops when the shutdown `watch` given to [`UserConnectors::new`] turns true (or
//! its sender is dropped), or when its own account is stopped or restarted through the handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use super::CHANNEL;
use super::connector::{UserConnector, UserStatus};
use super::events::CustomerTyping;
use super::send::{LiveSlot, UserSender};
use crate::ingest::Pipeline;
use crate::store::StoreError;

/// Typing notices held for a slow listener before it skips some.
const TYPING_QUEUE: usize = 64;

#[derive(Clone)]
pub struct UserConnectors {
    shared: Arc<Shared>,
}

struct Shared {
    pipeline: Pipeline,
    shutdown: watch::Receiver<bool>,
    retry: Duration,
    /// A std Mutex, not a tokio one: nothing awaits while it is held.
    tasks: Mutex<HashMap<u64, Task>>,
    /// The other side's typing, from every account (bounded; a slow listener lags and skips).
    typing: broadcast::Sender<CustomerTyping>,
    /// Each account's client while connected, for sending; one slot per account for the
    /// life of the handle, so a sender made before a restart of the connector still works.
    live: Mutex<HashMap<u64, LiveSlot>>,
}

struct Task {
    status: watch::Receiver<UserStatus>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<String>,
}

impl UserConnectors {
    pub fn new(pipeline: Pipeline, shutdown: watch::Receiver<bool>) -> UserConnectors {
        UserConnectors {
            shared: Arc::new(Shared {
                pipeline,
                shutdown,
                retry: Duration::from_secs(1),
                tasks: Mutex::new(HashMap::new()),
                typing: broadcast::channel(TYPING_QUEUE).0,
                live: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Task>> {
        self.shared.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a connector for every user account with a session; returns how many started.
    pub async fn start_all(&self) -> Result<usize, StoreError> {
        let ids: Vec<u64> = self
            .shared
            .pipeline
            .store()
            .read(|r| r.accounts())
            .await?
            .into_iter()
            .filter(|a| a.channel == CHANNEL && a.secret.is_some())
            .map(|a| a.id)
            .collect();
        for &id in &ids {
            self.start(id);
        }
        Ok(ids.len())
    }

    /// (Re)starts one account's connector (after a login, say). An account without a session
    /// stops at once, saying so in its status.
    pub fn start(&self, account: u64) {
        self.stop(account);
        let (status_tx, status) = watch::channel(UserStatus::Starting);
        let (stop, mut stopped) = watch::channel(false);
        let mut shutdown = self.shared.shutdown.clone();
        let connector = UserConnector {
            account,
            pipeline: self.shared.pipeline.clone(),
            status: status_tx,
            retry: self.shared.retry,
            typing: Some(self.shared.typing.clone()),
            watchdog: super::connector::WATCHDOG,
        };
        let handle = tokio::spawn(connector.run_sharing(self.slot(account), async move {
            tokio::select! {
                _ = shutdown.wait_for(|s| *s) => {}
                _ = stopped.wait_for(|s| *s) => {}
            }
        }));
        self.tasks().insert(account, Task { status, stop, handle });
    }

    /// Stops one account's connector (it finishes the batch it is committing).
    pub fn stop(&self, account: u64) {
        if let Some(t) = self.tasks().remove(&account) {
            t.stop.send_replace(true);
        }
    }

    fn slot(&self, account: u64) -> LiveSlot {
        let mut live = self.shared.live.lock().unwrap_or_else(|e| e.into_inner());
        live.entry(account).or_default().clone()
    }

    /// Sending through `account`, over its connector's client (not a second session); `None`
    /// when no connector was started for it.
    pub fn sender(&self, account: u64) -> Option<UserSender> {
        if !self.tasks().contains_key(&account) {
            return None;
        }
        Some(UserSender {
            account,
            store: self.shared.pipeline.store().clone(),
            slot: self.slot(account),
        })
    }

    /// Follows the other side's typing in every account's chats.
    pub fn typing(&self) -> broadcast::Receiver<CustomerTyping> {
        self.shared.typing.subscribe()
    }

    /// Follows one account's status, for as long as its connector runs.
    pub fn watch(&self, account: u64) -> Option<watch::Receiver<UserStatus>> {
        self.tasks().get(&account).map(|t| t.status.clone())
    }

    /// The accounts whose connector was started and not stopped.
    pub fn accounts(&self) -> Vec<u64> {
        self.tasks().keys().copied().collect()
    }

    pub fn status(&self, account: u64) -> Option<UserStatus> {
        self.tasks().get(&account).map(|t| t.status.borrow().clone())
    }

    /// Waits for every task after shutdown; returns why each stopped.
    pub async fn join(&self) -> Vec<(u64, String)> {
        let tasks: Vec<(u64, Task)> = self.tasks().drain().collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (id, t) in tasks {
            t.stop.send_replace(true);
            out.push((id, t.handle.await.unwrap_or_else(|e| format!("task failed: {e}"))));
        }
        out
    }
}
