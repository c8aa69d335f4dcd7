//! The simulated bots' state, shared by the HTTP side and the [`super::SimBot`] handles: update
//! queues, faults, the call and activity logs, stored files and sent messages.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

use super::chats::{Chats, note_update};
use super::limits::Limits;
use super::{Activity, Call, Fault, SentMessage, SimConfig};

/// Calls and activity entries kept per bot; older ones are dropped (a long-running simulator
/// stays bounded).
pub(super) const LOG_CAP: usize = 50_000;

/// The simulated bots. Shared by the server and the handles.
pub(super) struct State {
    /// A std Mutex, not a tokio one: handlers never await while holding it.
    inner: Mutex<Inner>,
    /// Bumped on every change, so long polls, webhook deliveries and
    /// [`super::SimBot::wait_until`] wake up.
    pub changed: watch::Sender<u64>,
    /// Turns true when the server stops: hanging calls end.
    pub stopped: watch::Receiver<bool>,
    pub config: SimConfig,
    /// Answer 429 to sends over Telegram's published limits.
    pub enforce_limits: AtomicBool,
    /// For fetching URLs given to send methods; made on first use.
    http: std::sync::OnceLock<Option<reqwest::Client>>,
}

#[derive(Default)]
pub(super) struct Inner {
    pub bots: HashMap<String, BotState>,
    pub next_bot_id: i64,
    /// Bytes held by stored files, across bots (bounded by `SimConfig::file_bytes_cap`).
    pub file_bytes: u64,
    /// Bytes of queued updates injected over the control API (bounded by
    /// `SimConfig::pending_bytes_cap`).
    pub pending_bytes: u64,
    /// Every chat seen, with its type, members and (supergroups, channels) message IDs.
    pub chats: Chats,
}

/// A file the bot can `getFile` and download.
pub(super) struct StoredFile {
    pub path: String,
    pub unique_id: String,
    pub bytes: Bytes,
    /// The media object it was first sent as (so a `file_id` resend looks the same).
    pub media: Option<Value>,
}

/// A message the bot sent and has not deleted.
pub(super) struct SentRecord {
    /// `Some` for text messages, `None` for media.
    pub text: Option<String>,
    pub message: Value,
}

pub(super) struct Webhook {
    pub url: String,
    pub secret: Option<String>,
    /// DER of the certificate uploaded with setWebhook: the only one a delivery trusts.
    pub certificate: Option<Vec<u8>>,
    pub max_connections: u32,
    /// Which setWebhook this is; a delivery task for an older one stops.
    pub generation: u64,
}

pub(super) struct BotState {
    pub id: i64,
    pub username: String,
    pub revoked: bool,
    /// Unconfirmed updates, as JSON text, by update ID, in ID order.
    pub queue: VecDeque<Queued>,
    pub next_update_id: i64,
    pub webhook: Option<Webhook>,
    pub webhook_generation: u64,
    pub last_error: Option<(i64, String)>,
    pub allowed_updates: Option<Value>,
    pub faults: HashMap<String, VecDeque<Fault>>,
    pub calls: VecDeque<Call>,
    /// Calls dropped from the front of `calls` (so a call's index stays stable).
    pub calls_dropped: usize,
    pub sent: Vec<SentMessage>,
    pub activity: VecDeque<Activity>,
    pub next_activity: u64,
    /// Newest message ID per private chat and basic group, over injected updates and the bot's
    /// own sends: Telegram numbers both directions of a chat in one sequence per account, so a
    /// send takes the next one. Supergroups and channels have one sequence for everybody, in
    /// [`Chats`] (see `chats.rs`).
    pub last_message_id: HashMap<i64, i64>,
    /// (chat_id, message_id) of every message the bot sent and has not deleted.
    pub messages: HashMap<(i64, i64), SentRecord>,
    /// Messages the bot deleted: a second delete is "not found", not "can't be deleted".
    pub deleted: std::collections::HashSet<(i64, i64)>,
    pub files: HashMap<String, StoredFile>,
    /// file_path -> file_id.
    pub paths: HashMap<String, String>,
    pub next_file: u64,
    /// Callback query IDs seen in injected updates and not yet answered.
    pub callbacks: std::collections::HashSet<String>,
    /// Bumped by every getUpdates; an older poll that sees a newer value ends with 409.
    pub poll_generation: u64,
    pub limits: Limits,
}

pub(super) struct Queued {
    pub id: i64,
    pub text: String,
    /// Counted against `Inner::pending_bytes` (injected over the control API).
    pub counted: bool,
}

impl BotState {
    pub fn new(id: i64, username: &str) -> BotState {
        BotState {
            id,
            username: username.to_owned(),
            revoked: false,
            queue: VecDeque::new(),
            next_update_id: 100_000_001,
            webhook: None,
            webhook_generation: 0,
            last_error: None,
            allowed_updates: None,
            faults: HashMap::new(),
            calls: VecDeque::new(),
            calls_dropped: 0,
            sent: Vec::new(),
            activity: VecDeque::new(),
            next_activity: 1,
            last_message_id: HashMap::new(),
            messages: HashMap::new(),
            deleted: Default::default(),
            files: HashMap::new(),
            paths: HashMap::new(),
            next_file: 1,
            callbacks: Default::default(),
            poll_generation: 0,
            limits: Limits::default(),
        }
    }

    /// Queues an update (its chats already noted: see [`Inner::enqueue`]). `id` `None` takes
    /// the next in sequence; a given one moves the sequence past it. The queue stays in ID
    /// order. Returns the update ID.
    fn enqueue(&mut self, update: Value, id: Option<i64>, counted: bool) -> (i64, usize) {
        let mut update = update;
        let id = id.unwrap_or(self.next_update_id);
        self.next_update_id = self.next_update_id.max(id + 1);
        if let Some(cb) = update.pointer("/callback_query/id").and_then(Value::as_str) {
            self.callbacks.insert(cb.to_owned());
        }
        if let Some(obj) = update.as_object_mut() {
            obj.insert("update_id".into(), id.into());
        }
        let text = update.to_string();
        let len = text.len();
        self.push_queued(Queued { id, text, counted });
        (id, len)
    }

    pub fn push_queued(&mut self, q: Queued) {
        let at = self.queue.partition_point(|x| x.id <= q.id);
        self.queue.insert(at, q);
    }

    pub fn push_call(&mut self, call: Call) -> usize {
        if self.calls.len() >= LOG_CAP {
            self.calls.pop_front();
            self.calls_dropped += 1;
        }
        self.calls.push_back(call);
        self.calls_dropped + self.calls.len() - 1
    }

    pub fn call_mut(&mut self, index: usize) -> Option<&mut Call> {
        let i = index.checked_sub(self.calls_dropped)?;
        self.calls.get_mut(i)
    }

    pub fn log(&mut self, mut a: Activity) {
        a.seq = self.next_activity;
        self.next_activity += 1;
        if self.activity.len() >= LOG_CAP {
            self.activity.pop_front();
        }
        self.activity.push_back(a);
    }

    pub fn take_fault(&mut self, method: &str) -> Option<Fault> {
        if let Some(f) = self.faults.get_mut(method).and_then(|q| q.pop_front()) {
            return Some(f);
        }
        self.faults.get_mut("*").and_then(|q| q.pop_front())
    }
}

/// `<digits>:<35 of A-Z a-z 0-9 _ ->`, the shape BotFather issues.
pub(super) fn well_formed(token: &str) -> Option<i64> {
    let (id, secret) = token.split_once(':')?;
    let ok = !id.is_empty()
        && id.len() <= 18
        && id.bytes().all(|b| b.is_ascii_digit())
        && secret.len() == 35
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then(|| id.parse().ok()).flatten()
}

impl State {
    pub fn new(stopped: watch::Receiver<bool>, config: SimConfig) -> State {
        State {
            enforce_limits: AtomicBool::new(config.enforce_limits),
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
            stopped,
            config,
            http: std::sync::OnceLock::new(),
        }
    }

    pub fn http(&self) -> Option<reqwest::Client> {
        self.http
            .get_or_init(|| crate::channels::telegram::client::http_client().ok())
            .clone()
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn enforcing(&self) -> bool {
        self.enforce_limits.load(Ordering::Relaxed)
    }

    /// Whether `token` names a bot, registering a well-formed unknown one unless strict.
    pub fn known(&self, token: &str) -> bool {
        let mut inner = self.lock();
        if inner.bots.contains_key(token) {
            return true;
        }
        match well_formed(token) {
            Some(id) if !self.config.strict => {
                inner
                    .bots
                    .insert(token.to_owned(), BotState::new(id, &format!("sim{id}_bot")));
                true
            }
            _ => false,
        }
    }

    /// Changes one bot's state (which must exist) and wakes the waiters.
    pub fn with_bot<T>(&self, token: &str, f: impl FnOnce(&mut BotState) -> T) -> T {
        let out = f(self.lock().bots.get_mut(token).expect("bot registered"));
        self.bump();
        out
    }

    /// Changes one bot's state with access to the shared counters, and wakes the waiters.
    pub fn with_inner<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = f(&mut self.lock());
        self.bump();
        out
    }

    /// Reads one bot's state (which must exist). Wakes no one, so a waiter's condition can read.
    pub fn read_bot<T>(&self, token: &str, f: impl FnOnce(&BotState) -> T) -> T {
        f(self.lock().bots.get(token).expect("bot registered"))
    }
}

impl Inner {
    /// Queues an update for `token`'s bot (which must exist): its chats are recorded (type,
    /// the bot as a member) and the message ID sequences move past the IDs it carries.
    /// `id` `None` takes the next update ID. Returns the update ID and the update's length.
    pub fn enqueue(&mut self, token: &str, update: Value, id: Option<i64>, counted: bool) -> (i64, usize) {
        let b = self.bots.get_mut(token).expect("bot registered");
        note_update(&mut self.chats, &mut b.last_message_id, token, &update);
        b.enqueue(update, id, counted)
    }

    /// The ID of `token`'s bot's next message in `chat` (see `chats.rs`).
    pub fn next_message_id(&mut self, token: &str, chat: i64) -> i64 {
        let b = self.bots.get_mut(token).expect("bot registered");
        self.chats.next_message_id(&mut b.last_message_id, chat)
    }

    /// A message someone (not a bot of the simulator) posts in a recorded chat: `fields` is
    /// the Message without `message_id` and `chat`. Every member bot gets it as an update
    /// (`channel_post` in a channel, `message` elsewhere), as if each could read everything
    /// there (privacy mode off, or an admin); the ID comes from the chat's one sequence in a
    /// supergroup or channel, from each bot's own elsewhere. Returns, per member bot, its ID,
    /// the update ID and the message ID; `None` for a chat that is not recorded.
    pub fn post_to_chat(
        &mut self,
        chat: i64,
        fields: &serde_json::Map<String, Value>,
    ) -> Option<Vec<(i64, i64, i64)>> {
        let known = self.chats.get(chat)?;
        let field = if known.kind == super::chats::Kind::Channel {
            "channel_post"
        } else {
            "message"
        };
        let object = known.object.clone();
        let members: Vec<String> = known
            .members
            .iter()
            .filter(|t| self.bots.contains_key(*t))
            .cloned()
            .collect();
        let mut shared = None;
        let mut out = Vec::with_capacity(members.len());
        for token in members {
            let b = self.bots.get_mut(&token).expect("filtered above");
            let bot_id = b.id;
            let message_id = match shared {
                Some(id) => id,
                None => {
                    let id = self.chats.next_message_id(&mut b.last_message_id, chat);
                    if self.chats.kind(chat).numbers_per_chat() {
                        shared = Some(id);
                    }
                    id
                }
            };
            let mut m = fields.clone();
            m.insert("message_id".into(), message_id.into());
            m.insert("chat".into(), object.clone());
            m.entry("date").or_insert_with(|| super::reply::unix_now().into());
            let (update_id, len) = self.enqueue(&token, serde_json::json!({ field: m }), None, true);
            self.pending_bytes += len as u64;
            out.push((bot_id, update_id, message_id));
        }
        Some(out)
    }

    /// Stores a file for `token`'s bot under the next file ID, within the byte cap. `dir` is
    /// the directory Telegram would use (`photos`, `documents`, ...), `ext` the extension.
    pub fn store_file(
        &mut self,
        token: &str,
        cap: u64,
        dir: &str,
        ext: &str,
        bytes: Bytes,
    ) -> Result<(String, String), String> {
        let len = bytes.len() as u64;
        if self.file_bytes + len > cap {
            return Err(format!(
                "simulator file storage full: {} of {cap} bytes used, this file needs {len} more",
                self.file_bytes
            ));
        }
        let b = self.bots.get_mut(token).expect("bot registered");
        let n = b.next_file;
        b.next_file += 1;
        let file_id = format!(
            "SIM{}F{n:06}{}",
            b.id,
            dir.chars().next().unwrap_or('x').to_ascii_uppercase()
        );
        let path = format!("{dir}/file_{n}.{ext}");
        b.paths.insert(path.clone(), file_id.clone());
        b.files.insert(
            file_id.clone(),
            StoredFile {
                path: path.clone(),
                unique_id: format!("AgAD{}{n:06}", b.id),
                bytes,
                media: None,
            },
        );
        self.file_bytes += len;
        Ok((file_id, path))
    }
}
