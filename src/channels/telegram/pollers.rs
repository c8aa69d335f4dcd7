//! [`Pollers`]: one [`Poller`] task per bot account (a webhook [`Keeper`] for accounts in
//! webhook mode), and the status of each, for `serve` and the API.
//!
//! A cheap-to-clone handle. Each task stops when the shutdown `watch` given to
//! [`Pollers::new`] turns true (or its sender is dropped), or when its own account is stopped or
//! restarted through the handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::bots::{self, AccountError, Bot, Mode};
use super::poller::{AccountStatus, Poller, PollerConfig, StopReason};
use super::webhook::Keeper;
use crate::ingest::Pipeline;

#[derive(Clone)]
pub struct Pollers {
    shared: Arc<Shared>,
}

struct Shared {
    pipeline: Pipeline,
    http: reqwest::Client,
    config: PollerConfig,
    shutdown: watch::Receiver<bool>,
    /// A std Mutex, not a tokio one: nothing awaits while it is held.
    tasks: Mutex<HashMap<u64, Task>>,
}

struct Task {
    status: watch::Receiver<AccountStatus>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<StopReason>,
}

impl Pollers {
    /// No tasks yet: [`Pollers::start_all`] or [`Pollers::start`] add them.
    pub fn new(
        pipeline: Pipeline,
        http: reqwest::Client,
        config: PollerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Pollers {
        Pollers {
            shared: Arc::new(Shared {
                pipeline,
                http,
                config,
                shutdown,
                tasks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Starts a poller for every bot account in the store; returns how many started.
    pub async fn start_all(&self) -> Result<usize, AccountError> {
        let bots = bots::load_bots(self.shared.pipeline.store()).await?;
        let n = bots.len();
        for bot in bots {
            self.spawn(bot);
        }
        Ok(n)
    }

    /// (Re)starts the poller of one account, e.g. after its token changed. Returns false when
    /// the account does not exist, was removed or has no token.
    pub async fn start(&self, account: u64) -> Result<bool, AccountError> {
        self.stop(account);
        match bots::load_bot(self.shared.pipeline.store(), account).await? {
            Some(bot) => {
                self.spawn(bot);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Asks one account's poller to stop; it reports [`StopReason::Shutdown`].
    pub fn stop(&self, account: u64) {
        if let Some(task) = self.tasks().remove(&account) {
            task.stop.send_replace(true);
        }
    }

    fn spawn(&self, bot: Bot) {
        let (status_tx, status) = watch::channel(AccountStatus::Starting);
        let (stop, mut stopped) = watch::channel(false);
        let mut shutdown = self.shared.shutdown.clone();
        let until = async move {
            // A dropped sender counts as "stop" too: wait_for then returns an error.
            tokio::select! {
                _ = shutdown.wait_for(|v| *v) => {}
                _ = stopped.wait_for(|v| *v) => {}
            }
        };
        let client = bot.client(self.shared.http.clone());
        let handle = match (bot.options.mode, &bot.options.webhook) {
            (Mode::Webhook, Some(w)) => tokio::spawn(
                Keeper {
                    account: bot.id,
                    client,
                    url: super::bots::url(&w.base, bot.id),
                    status: status_tx,
                }
                .run(until),
            ),
            _ => tokio::spawn(
                Poller {
                    account: bot.id,
                    client,
                    pipeline: self.shared.pipeline.clone(),
                    config: self.shared.config.clone(),
                    status: status_tx,
                }
                .run(until),
            ),
        };
        let old = self.tasks().insert(bot.id, Task { status, stop, handle });
        if let Some(old) = old {
            old.stop.send_replace(true);
        }
    }

    /// The current status of one account's poller.
    pub fn status(&self, account: u64) -> Option<AccountStatus> {
        self.tasks().get(&account).map(|t| t.status.borrow().clone())
    }

    /// A receiver that sees every status change of one account's poller.
    pub fn watch(&self, account: u64) -> Option<watch::Receiver<AccountStatus>> {
        self.tasks().get(&account).map(|t| t.status.clone())
    }

    /// Every account's status, by account ID.
    pub fn statuses(&self) -> Vec<(u64, AccountStatus)> {
        let mut out: Vec<_> = self
            .tasks()
            .iter()
            .map(|(id, t)| (*id, t.status.borrow().clone()))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }

    /// Waits for every task to end (after shutdown), returning why each stopped.
    pub async fn join(&self) -> Vec<(u64, StopReason)> {
        let tasks: Vec<_> = self.tasks().drain().collect();
        let mut out = Vec::with_capacity(tasks.len());
        for (id, task) in tasks {
            let reason = task
                .handle
                .await
                .unwrap_or_else(|e| StopReason::Setup(format!("poller task failed: {e}")));
            out.push((id, reason));
        }
        out.sort_by_key(|(id, _)| *id);
        out
    }

    fn tasks(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Task>> {
        self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}
