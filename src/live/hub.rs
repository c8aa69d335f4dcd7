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
//!
//! Work per event grows with the distinct views, not with the clients: clients with equal
//! views (grants and subscription) share one interned [`View`], an event is filtered once per
//! view, and every client of a view receives the same [`Shared`] event, whose frame the first
//! of them to send it renders and the others send as it is (one buffer, counted references).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{OnceCell, broadcast, mpsc, watch};

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
    /// An update's install moved (`state`: `installing`, `installed`, `failed`). Admins only
    /// (the sessions filter on role).
    UpdateProgress {
        state: &'static str,
        percent: u8,
        message: String,
        error: Option<String>,
    },
}

/// A logged event as the clients of one view receive it: filtered once for all of them, and
/// rendered once, by whichever of them sends it first (`frame`, the encoded text of the
/// event as `view` sees it; its rendering may read the store, hence a tokio `OnceCell`, which
/// the others wait on instead of rendering again).
#[derive(Debug)]
pub struct Shared {
    pub event: Arc<Published>,
    pub view: Arc<View>,
    pub frame: OnceCell<Bytes>,
}

/// What a client's queue carries.
#[derive(Debug, Clone)]
pub enum Item {
    Event(Arc<Shared>),
    Ephemeral(Arc<Ephemeral>),
}

/// Something to deliver, before it is tailored to a view.
enum Outgoing {
    Event(Arc<Published>),
    Ephemeral(Arc<Ephemeral>),
}

impl Outgoing {
    /// What a client of `view` receives, if anything.
    fn for_view(&self, view: &Arc<View>) -> Option<Item> {
        let v = &**view;
        match self {
            Outgoing::Event(p) => v.sees_event(&p.event).then(|| {
                Item::Event(Arc::new(Shared {
                    event: p.clone(),
                    view: view.clone(),
                    frame: OnceCell::new(),
                }))
            }),
            Outgoing::Ephemeral(e) => {
                let seen = match &**e {
                    Ephemeral::Typing { chat, accounts, .. } => v.sees(accounts, Some(*chat)),
                    Ephemeral::AccountStatus { account, .. } => v.sees(&[*account], None),
                    Ephemeral::ChatRead { chat, accounts, .. } => v.sees(accounts, Some(*chat)),
                    Ephemeral::StoreStatus { .. } | Ephemeral::UpdateProgress { .. } => true,
                };
                seen.then(|| Item::Ephemeral(e.clone()))
            }
        }
    }
}

struct Slot {
    tx: mpsc::Sender<Item>,
    view: Arc<View>,
}

/// Views in use, interned: clients with equal views hold the same `Arc`, so delivery can tell
/// them apart by address. Each with the number of slots holding it.
#[derive(Default)]
struct Views(HashMap<View, (Arc<View>, usize)>);

impl Views {
    fn intern(&mut self, view: View) -> Arc<View> {
        let e = self
            .0
            .entry(view)
            .or_insert_with_key(|v| (Arc::new(v.clone()), 0));
        e.1 += 1;
        e.0.clone()
    }

    fn release(&mut self, view: &Arc<View>) {
        if let Some(e) = self.0.get_mut(&**view) {
            e.1 -= 1;
            if e.1 == 0 {
                self.0.remove(&**view);
            }
        }
    }
}

/// The clients: slots by registration id, the next id, and the views they hold.
#[derive(Default)]
struct Slots {
    next: u64,
    map: HashMap<u64, Slot>,
    views: Views,
}

impl Slots {
    fn remove(&mut self, id: u64) {
        if let Some(s) = self.map.remove(&id) {
            self.views.release(&s.view);
        }
    }
}

/// The registry. A std `Mutex`, not a tokio one: nothing awaits while it is held (delivery is
/// `try_send`).
struct Registry {
    slots: Mutex<Slots>,
    /// Becomes true when the hub shuts down; sessions watch it.
    closing: watch::Sender<bool>,
    /// Times the hub fell behind the broadcast and caught up from the log (a u32: 32-bit ARM
    /// is a target).
    catch_ups: AtomicU32,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&self, out: &Outgoing) {
        let mut guard = self.lock();
        let slots = &mut *guard;
        // What each distinct view receives, by the interned view's address (views stay
        // interned, so alive, while the lock is held).
        let mut per_view: HashMap<*const View, Option<Item>> = HashMap::new();
        let mut gone = Vec::new();
        for (id, s) in &slots.map {
            let item = per_view
                .entry(Arc::as_ptr(&s.view))
                .or_insert_with(|| out.for_view(&s.view));
            let Some(item) = item else { continue };
            // Full: too slow, dropped (its queue closes once drained). Closed: gone.
            if s.tx.try_send(item.clone()).is_err() {
                gone.push(*id);
            }
        }
        for id in gone {
            slots.remove(id);
        }
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
    /// What this client sees: the view its events are filtered and rendered for.
    view: Arc<View>,
    /// Ends (`None`) when the hub dropped this client for not keeping up, or shuts down.
    pub rx: mpsc::Receiver<Item>,
}

impl Registration {
    /// Changes what this client sees (new grants or subscription).
    pub fn set_view(&mut self, view: View) {
        let mut slots = self.registry.lock();
        let slots = &mut *slots;
        let view = slots.views.intern(view);
        if let Some(s) = slots.map.get_mut(&self.id) {
            slots.views.release(&s.view);
            s.view = view.clone();
        } else {
            // Dropped by the hub already: nothing holds the view.
            slots.views.release(&view);
        }
        self.view = view;
    }

    /// What this client sees, as the hub filters for it: an event in its queue was filtered
    /// and is rendered for this view when [`Shared::view`] is the same.
    pub fn view(&self) -> &Arc<View> {
        &self.view
    }

    /// True when the hub is shutting down.
    pub fn stopping(&self) -> bool {
        *self.registry.closing.borrow()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(self.id);
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
        let mut slots = self.registry.lock();
        slots.next += 1;
        let id = slots.next;
        let view = if *self.registry.closing.borrow() {
            Arc::new(view)
        } else {
            let view = slots.views.intern(view);
            slots.map.insert(
                id,
                Slot {
                    tx,
                    view: view.clone(),
                },
            );
            view
        };
        Registration {
            id,
            registry: self.registry.clone(),
            view,
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
        self.registry.lock().map.len()
    }

    /// Sends an ephemeral event to every client that may see it.
    pub fn publish(&self, e: Ephemeral) {
        self.registry.deliver(&Outgoing::Ephemeral(Arc::new(e)));
    }

    /// Disconnects every client (they close with "going away") and refuses new ones.
    pub fn shutdown(&self) {
        self.registry.closing.send_replace(true);
        let mut slots = self.registry.lock();
        slots.map.clear();
        slots.views = Views::default();
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
                    registry.deliver(&Outgoing::Event(p));
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
            registry.deliver(&Outgoing::Event(Arc::new(Published { event, message: None })));
        }
        if n < CATCH_UP_PAGE {
            return last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::protocol::Subscription;
    use super::*;
    use crate::auth::Grants;
    use crate::model::{EventKind, EventRecord};

    fn hub() -> Hub {
        Hub {
            registry: Arc::new(Registry {
                slots: Mutex::default(),
                closing: watch::channel(false).0,
                catch_ups: AtomicU32::new(0),
            }),
            queue: 4,
            _stop: Arc::new(watch::channel(()).0),
        }
    }

    fn view(grants: Grants) -> View {
        View {
            grants,
            sub: Subscription::default(),
        }
    }

    fn created(seq: u64, account: u64) -> Outgoing {
        Outgoing::Event(Arc::new(Published {
            event: EventRecord {
                seq,
                kind: EventKind::MessageCreated,
                accounts: vec![account],
                scope: account,
                chat_id: 42,
                message_key: Some(1),
                from_chat: None,
                unread: None,
                at: 0,
            },
            message: None,
        }))
    }

    fn next(r: &mut Registration) -> Option<Arc<Shared>> {
        match r.rx.try_recv().ok()? {
            Item::Event(s) => Some(s),
            Item::Ephemeral(_) => None,
        }
    }

    /// Clients with equal views get one shared event (rendered once for them all); a client
    /// with other grants gets its own; a client that may not see the event gets nothing.
    #[test]
    fn an_event_is_filtered_and_shared_once_per_distinct_view() {
        let hub = hub();
        let mut admins: Vec<_> = (0..3).map(|_| hub.register(view(Grants::All))).collect();
        let mut agent = hub.register(view(Grants::Only(vec![7])));
        let mut other = hub.register(view(Grants::Only(vec![8])));
        assert!(
            Arc::ptr_eq(admins[0].view(), admins[2].view()),
            "equal views are interned"
        );
        hub.registry.deliver(&created(1, 7));
        let got: Vec<_> = admins.iter_mut().map(|r| next(r).expect("delivered")).collect();
        assert!(
            got.iter().all(|s| Arc::ptr_eq(s, &got[0])),
            "one shared event per view"
        );
        assert!(Arc::ptr_eq(&got[0].view, admins[0].view()));
        let mine = next(&mut agent).expect("granted");
        assert!(!Arc::ptr_eq(&mine, &got[0]));
        assert_eq!(mine.view.grants, Grants::Only(vec![7]));
        assert!(next(&mut other).is_none(), "not granted: not delivered");
    }

    /// Views are counted: changing or dropping a client's view lets an unused one go.
    #[test]
    fn views_nobody_holds_are_forgotten() {
        let hub = hub();
        let a = hub.register(view(Grants::All));
        let mut b = hub.register(view(Grants::All));
        assert_eq!(hub.registry.lock().views.0.len(), 1);
        b.set_view(view(Grants::Only(vec![1])));
        assert_eq!(hub.registry.lock().views.0.len(), 2);
        drop(a);
        assert_eq!(hub.registry.lock().views.0.len(), 1);
        drop(b);
        assert!(hub.registry.lock().views.0.is_empty());
    }
}
