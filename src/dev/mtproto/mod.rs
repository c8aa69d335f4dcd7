//! An MTProto simulator: a small Telegram for user accounts, on loopback, for the tests (and
//! later `lanbox dev`), where Telegram itself cannot be reached.
//!
//! It speaks the real wire protocol over TCP: the full transport (`frame.rs`), MTProto 2.0
//! encryption under an auth key that the test places in the client's session, so no RSA/DH key
//! exchange is needed (`crypto.rs`: the server's half of the key derivation, AES-IGE from
//! grammers-crypto), service messages (containers, gzip, acks, pings; `conn.rs`), and the API
//! methods a user-account connector calls, decoded with grammers' own TL types (`rpc.rs`).
//!
//! One simulator is one account (its phone number, and the people who write to it). Login
//! takes a code the test reads from [`MtSimulator::login_code`] (Telegram sends it to the app)
//! and can be made to expire; the account's update sequence (`pts`) grows by one per message,
//! and `updates.getDifference` hands out what a client missed, in slices of
//! [`MtSimConfig::difference_page`]. [`MtSimulator::message_from`] pushes a new message to the
//! connected clients as `updateShortMessage`; [`MtSimulator::message_from_unpushed`] only stores
//! it, which opens a gap a client finds with its next push or its next catch-up.
//!
//! An account can have a 2FA password ([`MtSimConfig::password`]): after the right code,
//! `auth.signIn` answers `SESSION_PASSWORD_NEEDED`, and `auth.checkPassword` verifies the
//! client's SRP proof against a verifier (`srp.rs`), never the password itself.
//!
//! [`MtSimulator::fail_next`] answers a method's next call with an RPC error (FLOOD_WAIT, a
//! banned number, ...), and [`MtSimulator::drop_connections`] cuts every connection.
//!
//! [`MtSimulator::edit`] edits a message (`updateEditMessage`, live and in differences).
//!
//! Groups and channels (`chats.rs`): [`MtSimulator::add_chat`] makes a basic group, a
//! supergroup or a broadcast channel; [`MtSimulator::message_in`] and
//! [`MtSimulator::message_out_in`] write in it (a basic group's messages in the account's
//! sequence, a channel's at the channel's own pts, which `updates.getChannelDifference` reads).
//! [`MtSimulator::delete`] and [`MtSimulator::delete_in`] push `updateDeleteMessages` and
//! `updateDeleteChannelMessages`; [`MtSimulator::read_outbox`] and
//! [`MtSimulator::read_outbox_in`] the other side's read receipts (`updateReadHistoryOutbox`,
//! `updateReadChannelOutbox`); [`MtSimulator::typing`] and [`MtSimulator::typing_in`] their
//! typing (`updateUserTyping` in an `updateShort`, `updateChatUserTyping`,
//! `updateChannelUserTyping`). Steps with a pts are logged and come again in differences; a
//! channel with steps since the client's state date is named in `updates.getDifference` by an
//! `updateChannelTooLong` (with the channel in `chats`), as Telegram does, so a channel message
//! pushed before the client's connection was up is not lost.
//!
//! Dialogs and history (`history.rs`): `messages.getDialogs` and `messages.getHistory`, paged,
//! over what the logs hold plus old messages seeded with [`MtSimulator::seed_history`].
//!
//! Media, replies, forwards, albums and service actions (`media.rs`): [`MtSimulator::rich_from`]
//! and [`MtSimulator::rich_in`], with the builders of `media.rs`.
//!
//! Not simulated yet: downloads, forum topics, `new_session_created` and server salts (any salt is accepted).

mod chats;
mod conn;
pub mod crypto;
mod frame;
mod history;
pub mod media;
mod pushes;
mod rich;
mod rpc;
mod sending;
pub mod srp;
mod tl_build;
mod world;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use sending::{Outbound, SimPeer};
pub use world::{HistoryCall, SimUser};
use world::{Logged, Step, World};
pub use world::{SimChat, SimChatKind};

/// One push to every connected client, built once.
pub(crate) type Push = Arc<grammers_tl_types::enums::Updates>;

/// Settings of one simulated account.
#[derive(Debug, Clone)]
pub struct MtSimConfig {
    /// The account's phone number (what `auth.sendCode` accepts).
    pub phone: String,
    pub first_name: String,
    /// How long a login code stays valid.
    pub code_ttl: Duration,
    /// Most messages per `updates.getDifference` answer; more makes it a `differenceSlice`.
    pub difference_page: usize,
    /// The account's 2FA password: login then needs it after the code (checked with SRP).
    pub password: Option<String>,
    /// Every login code is this one instead of five random digits (a log canary wants a code
    /// that cannot occur in a log by chance, as digits can in a timestamp).
    pub code: Option<String>,
    /// The account's Telegram user ID (several simulators in one test are several people).
    pub user_id: i64,
}

impl Default for MtSimConfig {
    fn default() -> MtSimConfig {
        MtSimConfig {
            phone: "15550100".into(),
            first_name: "Agent".into(),
            code_ttl: Duration::from_secs(300),
            difference_page: 100,
            password: None,
            code: None,
            user_id: 4_000_000_001,
        }
    }
}

/// What the connections share.
pub(crate) struct Shared {
    world: Mutex<World>,
    auth_key: [u8; 256],
    addr: SocketAddr,
    difference_page: usize,
    /// What the account sent, edited, deleted, typed and read (`sending.rs`); locked after
    /// `world` when both are held.
    outbound: Mutex<std::collections::VecDeque<sending::Outbound>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running simulator; stops when dropped.
pub struct MtSimulator {
    shared: Arc<Shared>,
    pushes: broadcast::Sender<Push>,
    kick: watch::Sender<u64>,
    task: JoinHandle<()>,
}

impl MtSimulator {
    /// Listens on 127.0.0.1, port 0, with a fresh random auth key.
    pub async fn start(config: MtSimConfig) -> std::io::Result<MtSimulator> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let mut auth_key = [0u8; 256];
        getrandom::fill(&mut auth_key).map_err(std::io::Error::other)?;
        MtSimulator::serve(listener, config, auth_key)
    }

    /// Serves on `listener` with `auth_key` as the one key it knows.
    pub fn serve(
        listener: TcpListener,
        config: MtSimConfig,
        auth_key: [u8; 256],
    ) -> std::io::Result<MtSimulator> {
        let addr = listener.local_addr()?;
        let me = SimUser {
            id: config.user_id,
            access_hash: world::random_i64(),
            first_name: config.first_name.clone(),
            last_name: None,
            username: None,
            phone: Some(config.phone.clone()),
        };
        let mut world = World::new(me, config.code_ttl);
        world.password = config.password.as_deref().map(srp::Verifier::new);
        world.fixed_code = config.code.clone();
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            auth_key,
            addr,
            difference_page: config.difference_page.max(1),
            outbound: Mutex::default(),
        });
        // Bounded: a connection that falls this far behind is closed (see `conn.rs`).
        let (pushes, _) = broadcast::channel(1024);
        let (kick, _) = watch::channel(0u64);
        let task = tokio::spawn(accept(listener, shared.clone(), pushes.clone(), kick.subscribe()));
        Ok(MtSimulator {
            shared,
            pushes,
            kick,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The auth key a client's session must hold for DC 2.
    pub fn auth_key(&self) -> [u8; 256] {
        self.shared.auth_key
    }

    /// The account itself.
    pub fn me(&self) -> SimUser {
        self.shared.lock().me.clone()
    }

    /// The code of the login in progress (what the Telegram app would show).
    pub fn login_code(&self) -> Option<String> {
        self.shared.lock().code.as_ref().map(|c| c.code.clone())
    }

    /// Makes the login code in progress expire now.
    pub fn expire_code(&self) {
        if let Some(c) = self.shared.lock().code.as_mut() {
            c.expires = std::time::Instant::now();
        }
    }

    /// Whether a client has signed in with the key.
    pub fn authorized(&self) -> bool {
        self.shared.lock().authorized
    }

    /// A new person who can write to the account.
    pub fn add_user(&self, first_name: &str) -> SimUser {
        self.shared.lock().add_user(first_name)
    }

    /// Telegram's own service account (777000), which sends login codes.
    pub fn telegram_service(&self) -> SimUser {
        self.shared.lock().add_user_at(777_000, "Telegram")
    }

    /// The account writes `text` to `to` from another device (its phone): stored and pushed
    /// as an outgoing message. Returns the message ID.
    pub fn message_to(&self, to: &SimUser, text: &str) -> i32 {
        self.step(|w| Some(w.append_private(to.id, true, text)))
            .expect("a private message")
            .message_id
    }

    /// `from` writes `text` to the account: stored at the next pts and pushed to the connected
    /// clients. Returns the message ID.
    pub fn message_from(&self, from: &SimUser, text: &str) -> i32 {
        self.step(|w| Some(w.append_private(from.id, false, text)))
            .expect("a private message")
            .message_id
    }

    /// The message `message_id` is edited to `text` (by whoever wrote it): a new step of the
    /// sequence, pushed as `updateEditMessage`. False when there is no such message.
    pub fn edit(&self, message_id: i32, text: &str) -> bool {
        self.step(|w| w.append_edit(message_id, text)).is_some()
    }

    /// Logs a step made by `make` and pushes it to the connected clients (built while the
    /// world is locked, so the push names the users and chats as they are).
    fn step(&self, make: impl FnOnce(&mut World) -> Option<Logged>) -> Option<Logged> {
        let mut w = self.shared.lock();
        let e = make(&mut w)?;
        let _ = self.pushes.send(Arc::new(tl_build::push(&e, &w)));
        Some(e)
    }

    /// Pushes updates without a pts (typing, a channel's read receipt).
    fn push_plain(
        &self,
        updates: Vec<grammers_tl_types::enums::Update>,
        users: &[i64],
        chat: Option<&SimChat>,
    ) {
        let w = self.shared.lock();
        let _ = self
            .pushes
            .send(Arc::new(tl_build::push_plain(updates, &w, users, chat)));
    }

    /// Like [`MtSimulator::message_from`], but not pushed: the client learns of it only through
    /// `updates.getDifference` (after a restart, or when a later push shows the gap).
    pub fn message_from_unpushed(&self, from: &SimUser, text: &str) -> i32 {
        self.shared.lock().append_private(from.id, false, text).message_id
    }

    /// The account's current pts.
    pub fn pts(&self) -> i32 {
        self.shared.lock().pts
    }

    /// Outgoing messages the account sent (text, to whom), in order.
    pub fn sent(&self) -> Vec<(i64, String)> {
        let w = self.shared.lock();
        w.log
            .iter()
            .filter(|e| e.out && e.chat.is_none() && e.step == Step::Message)
            .map(|e| (e.from, e.text.clone()))
            .collect()
    }

    /// Method names of every call received (wrappers included), in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.lock().calls.iter().cloned().collect()
    }

    /// Answers the next call of `method` (its TL name, e.g. `auth.sendCode`) with RPC error
    /// `code` `name`, as Telegram words them (`420 FLOOD_WAIT_42`, `400 PHONE_NUMBER_BANNED`).
    pub fn fail_next(&self, method: &str, code: i32, name: &str) {
        self.shared
            .lock()
            .faults
            .push((method.to_string(), code, name.to_string()));
    }

    /// Closes every open connection (clients see the network drop).
    pub fn drop_connections(&self) {
        self.kick.send_modify(|g| *g += 1);
    }
}

impl Drop for MtSimulator {
    fn drop(&mut self) {
        self.task.abort();
        self.kick.send_modify(|g| *g += 1);
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    pushes: broadcast::Sender<Push>,
    kick: watch::Receiver<u64>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: wait a moment rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tokio::spawn(conn::serve(
            stream,
            shared.clone(),
            pushes.subscribe(),
            kick.clone(),
        ));
    }
}
