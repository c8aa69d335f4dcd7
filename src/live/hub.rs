//! The fan-out: one task reads the store's broadcast and hands each event to every client that
//! may see it, through a bounded queue per client filled with `try_send`. It never waits for a
//! client: a client whose queue is full is dropped from the hub (its session then closes the
//! socket with `too_slow`, and the client resumes from its last `seq` through the log).
//!
//! When the hub itself falls behind the broadcast (`RecvError::Lagged`), that is nobody's
//! fault and nobody is dropped: it reads what it missed from the event log and carries on.
//!
//! Ephemeral events (`typing`, `account.status`, `store.status`) are not logged; they go to the queues
//! directly from the caller, with the same `try_send` rule.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};

use super::protocol::View;
use crate::store::{ChatKey, Published, Store, StoreError};

/// Events read from the log per step when the hub catches up after lagging.
const CATCH_UP_PAGE: usize = 512;

/// Something not in the event log.
#[derive(Debug, Clone, PartialEq)]
pub enum Ephemeral {
    /// An agent is typing in a chat (`accounts`: the chat's accounts, for grants).
    Typing {
        chat: ChatKey,
        accounts: Vec<u64>,
        user: String,
    },
    /// A channel account's connection changed (`status`: `online`, `offline`, `error`, ...).
    AccountStatus {
        account: u64,
        status: String,
        detail: Option<String>,
    },
    /// A user moved their own read position in a chat: only their own sessions hear of it
    /// (read state is per user; sessions filter on `user`).
    ChatRead {
        chat: ChatKey,
        accounts: Vec<u64>,
        user: u64,
        read_up_to: i64,
        unread: u32,
    },
    /// The store's health changed (`reasons`: the storage codes of `/api/v1/health`, such as
    /// `disk_full`; empty once it is healthy again). Everyone sees it.
    StoreStatus { reasons: Vec<&'static str> },
}

/// What a client's queue carries.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Published>),
    Ephemeral(Arc<Ephemeral>),
}

impl Item {
    fn visible_to(&self, v: &View) -> bool {
        match self {
            Item::Event(p) => v.sees_event(&p.event),
            Item::Ephemeral(e) => match &**e {
                Ephemeral::Typing { chat, accounts, .. } => v.sees(accounts, Some(*chat)),
                Ephemeral::AccountStatus { account, .. } => v.sees(&[*account], None),
                Ephemeral::ChatRead { chat, accounts, .. } => v.sees(accounts, Some(*chat)),
                Ephemeral::StoreStatus { .. } => true,
            },
        }
    }
}

struct Slot {
    tx: mpsc::Sender<Item>,
    view: Arc<View>,
}

/// The registry. A std `Mutex`, not a tokio one: nothing awaits while it is held (delivery is
/// `try_send`).
struct Registry {
    slots: Mutex<(u64, HashMap<u64, Slot>)>,
    /// Becomes true when the hub shuts down; sessions watch it.
    closing: watch::Sender<bool>,
    /// Times the hub fell behind the broadcast and caught up from the log (a u32: 32-bit ARM
    /// is a target).
    catch_ups: AtomicU32,
}

impl Registry {
    fn deliver(&self, item: &Item) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.1.retain(|_, s| {
            if !item.visible_to(&s.view) {
                return true;
            }
            match s.tx.try_send(item.clone()) {
                Ok(()) => true,
                // Full: too slow, dropped (its queue closes once drained). Closed: gone.
                Err(_) => false,
            }
        });
    }
}

/// A cheap-to-clone handle to the hub. The fan-out task stops when the last handle is dropped
/// (or the store closes).
#[derive(Clone)]
pub struct Hub {
    registry: Arc<Registry>,
    queue: usize,
    _stop: Arc<watch::Sender<()>>,
}

/// A client's place in the hub; dropping it leaves the hub.
pub struct Registration {
    id: u64,
    registry: Arc<Registry>,
    /// Ends (`None`) when the hub dropped this client for not keeping up, or shuts down.
    pub rx: mpsc::Receiver<Item>,
}

impl Registration {
    /// Changes what this client sees (new grants or subscription).
    pub fn set_view(&self, view: View) {
        let mut slots = self.registry.slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots.1.get_mut(&self.id) {
            s.view = Arc::new(view);
        }
    }

    /// True when the hub is shutting down.
    pub fn stopping(&self) -> bool {
        *self.registry.closing.borrow()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .remove(&self.id);
    }
}

impl Hub {
    /// Starts the fan-out task. `queue` is each client's queue length.
    pub async fn start(store: Store, queue: usize) -> Result<Hub, StoreError> {
        let registry = Arc::new(Registry {
            slots: Mutex::default(),
            closing: watch::channel(false).0,
            catch_ups: AtomicU32::new(0),
        });
        let (stop, stopped) = watch::channel(());
        // Subscribe before reading the position, so nothing committed after it is missed.
        let rx = store.subscribe();
        let last = store.read(|r| r.last_seq()).await?;
        tokio::spawn(fan_out(store, rx, last, registry.clone(), stopped));
        Ok(Hub {
            registry,
            queue: queue.max(1),
            _stop: Arc::new(stop),
        })
    }

    pub fn register(&self, view: View) -> Registration {
        let (tx, rx) = mpsc::channel(self.queue);
        let mut slots = self.registry.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.0 += 1;
        let id = slots.0;
        if !*self.registry.closing.borrow() {
            slots.1.insert(
                id,
                Slot {
                    tx,
                    view: Arc::new(view),
                },
            );
        }
        Registration {
            id,
            registry: self.registry.clone(),
            rx,
        }
    }

    /// Turns true when the hub shuts down (for sessions not subscribed yet).
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.registry.closing.subscribe()
    }

    /// Times the hub fell behind the store's broadcast and caught up from the event log.
    pub fn catch_ups(&self) -> u32 {
        self.registry.catch_ups.load(Ordering::Relaxed)
    }

    /// Clients currently registered.
    pub fn clients(&self) -> usize {
        self.registry
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .len()
    }

    /// Sends an ephemeral event to every client that may see it.
    pub fn publish(&self, e: Ephemeral) {
        self.registry.deliver(&Item::Ephemeral(Arc::new(e)));
    }

    /// Disconnects every client (they close with "going away") and refuses new ones.
    pub fn shutdown(&self) {
        self.registry.closing.send_replace(true);
        self.registry
            .slots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clear();
    }
}

/// `last`: highest sequence number delivered (or committed before the hub started), to skip
/// what a catch-up already covered.
async fn fan_out(
    store: Store,
    mut rx: broadcast::Receiver<Arc<Published>>,
    mut last: u64,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<()>,
) {
    loop {
        let r = tokio::select! {
            r = rx.recv() => r,
            _ = stop.changed() => break,
        };
        match r {
            Ok(p) => {
                if p.event.seq > last {
                    last = p.event.seq;
                    registry.deliver(&Item::Event(p));
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "live hub fell behind; catching up from the event log");
                registry.catch_ups.fetch_add(1, Ordering::Relaxed);
                last = catch_up(&store, &registry, last).await;
            }
            Err(RecvError::Closed) => break,
        }
    }
}

/// Delivers logged events after `last` (content is loaded by each session). Returns the new
/// position.
async fn catch_up(store: &Store, registry: &Registry, mut last: u64) -> u64 {
    loop {
        let after = last;
        let page = match store.read(move |r| r.events_after(after, CATCH_UP_PAGE)).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "live hub could not read the event log");
                return last;
            }
        };
        let n = page.len();
        for event in page {
            last = event.seq;
            registry.deliver(&Item::Event(Arc::new(Published { event, message: None })));
        }
        if n < CATCH_UP_PAGE {
            return last;
        }
    }
}
