//! A Bot API simulator: an HTTP server that speaks Telegram's wire format, for the tests and
//! for `lanbox demo`, where Telegram itself cannot be reached.
//!
//! It serves `/bot<token>/<method>` (GET or POST; parameters in the query string, a JSON body or
//! a form body) for `getMe`, `getUpdates`, `sendMessage`, `sendChatAction`, `editMessageText`,
//! `deleteMessage`, `getFile`, `setWebhook`, `deleteWebhook` and `getWebhookInfo`, and
//! `/file/bot<token>/<path>` for downloads. Answers are `{"ok":true,"result":...}` or
//! `{"ok":false,"error_code":N,"description":"..."}` with HTTP status N, as Telegram sends them;
//! an unknown or revoked token gets 401.
//!
//! `getUpdates` keeps Telegram's offset semantics: updates below the offset are confirmed and
//! dropped, the rest are delivered again until confirmed; a long poll returns as soon as an
//! update is injected or after `timeout` seconds; a second concurrent poll ends the first with
//! 409, and so does a webhook. `allowed_updates` is recorded, not applied.
//!
//! A [`SimBot`] handle injects updates (update IDs are assigned in order), schedules faults for
//! the next calls of a method ([`Fault`]), revokes the token, and shows every call received
//! ([`Call`]) and every message sent ([`SentMessage`]).

mod methods;
mod params;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Something to go wrong with one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests with `parameters.retry_after` set to this many seconds.
    RetryAfter(u32),
    /// This HTTP status. 500 comes as Telegram's JSON; 502, 503 and 504 as the HTML page of
    /// the proxy in front of it, as they do in real life.
    Status(u16),
    /// No answer at all, until the client gives up or the simulator stops.
    Hang,
    /// A normal answer, after this delay.
    Slow(Duration),
}

/// One request the simulator received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Parameters as received (query, JSON or form; form values that are JSON are decoded).
    pub params: Map<String, Value>,
    /// When the request arrived.
    pub at: Instant,
    /// The HTTP status answered; `None` while the call is still open.
    pub status: Option<u16>,
    /// `getUpdates`: the update IDs delivered.
    pub delivered: Vec<i64>,
}

/// A `sendMessage` the simulator accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct SentMessage {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    pub reply_parameters: Option<Value>,
    pub message_thread_id: Option<i64>,
}

/// A running simulator on 127.0.0.1. Dropping it stops the server.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Simulator {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> std::io::Result<Simulator> {
        Simulator::start_on(TcpListener::bind("127.0.0.1:0").await?)
    }

    /// Starts serving on a listener the caller bound (`lanbox demo` brings its own).
    pub fn start_on(listener: TcpListener) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(State::new(stopped.clone()));
        let shutdown = async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|v| *v).await;
        };
        let task = tokio::spawn(serve(listener, state.clone(), shutdown));
        Ok(Simulator {
            addr,
            state,
            stop,
            task: Some(task),
        })
    }

    /// The base URL to give a client as its API base (`http://127.0.0.1:<port>`).
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Registers a bot with a fresh token.
    pub fn add_bot(&self, username: &str) -> SimBot {
        let mut inner = self.state.lock();
        inner.next_bot_id += 1;
        let id = inner.next_bot_id;
        let mut secret = [0u8; 16];
        getrandom::fill(&mut secret).expect("random token");
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let token = format!("{id}:AA{secret}");
        inner.bots.insert(token.clone(), BotState::new(id, username));
        drop(inner);
        self.state.bump();
        SimBot {
            state: self.state.clone(),
            token,
        }
    }

    /// Stops serving and waits for the server to finish.
    pub async fn stop(mut self) -> std::io::Result<()> {
        self.stop.send_replace(true);
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, methods::router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The simulated bots. Shared by the server and the handles.
struct State {
    /// A std Mutex, not a tokio one: handlers never await while holding it.
    inner: Mutex<Inner>,
    /// Bumped on every change, so long polls and [`SimBot::wait_until`] wake up.
    changed: watch::Sender<u64>,
    /// Turns true when the server stops: hanging calls end.
    stopped: watch::Receiver<bool>,
}

#[derive(Default)]
struct Inner {
    bots: HashMap<String, BotState>,
    next_bot_id: i64,
}

struct BotState {
    id: i64,
    username: String,
    revoked: bool,
    /// Unconfirmed updates, as JSON text, by update ID.
    queue: VecDeque<(i64, String)>,
    next_update_id: i64,
    webhook: Option<(String, Option<String>)>,
    allowed_updates: Option<Value>,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: Vec<Call>,
    sent: Vec<SentMessage>,
    next_message_id: i64,
    /// file_id -> (file_path, bytes).
    files: HashMap<String, (String, Vec<u8>)>,
    /// Bumped by every getUpdates; an older poll that sees a newer value ends with 409.
    poll_generation: u64,
}

impl BotState {
    fn new(id: i64, username: &str) -> BotState {
        BotState {
            id,
            username: username.to_owned(),
            revoked: false,
            queue: VecDeque::new(),
            next_update_id: 100_000_001,
            webhook: None,
            allowed_updates: None,
            faults: HashMap::new(),
            calls: Vec::new(),
            sent: Vec::new(),
            next_message_id: 1,
            files: HashMap::new(),
            poll_generation: 0,
        }
    }
}

impl State {
    fn new(stopped: watch::Receiver<bool>) -> State {
        State {
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
            stopped,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Changes one bot's state (which must exist) and wakes the waiters.
    fn with_bot<T>(&self, token: &str, f: impl FnOnce(&mut BotState) -> T) -> T {
        let out = f(self.lock().bots.get_mut(token).expect("bot registered"));
        self.bump();
        out
    }

    /// Reads one bot's state (which must exist). Wakes no one, so a waiter's condition can read.
    fn read_bot<T>(&self, token: &str, f: impl FnOnce(&BotState) -> T) -> T {
        f(self.lock().bots.get(token).expect("bot registered"))
    }
}

/// A handle to one simulated bot. Cheap to clone.
#[derive(Clone)]
pub struct SimBot {
    state: Arc<State>,
    token: String,
}

impl SimBot {
    /// The bot's token (this is a simulator: no secret).
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn id(&self) -> i64 {
        self.state.read_bot(&self.token, |b| b.id)
    }

    /// Queues an update; its `update_id` is replaced by the next one in sequence, which is
    /// returned. `update` must be a JSON object.
    pub fn inject(&self, mut update: Value) -> i64 {
        self.state.with_bot(&self.token, |b| {
            let id = b.next_update_id;
            b.next_update_id += 1;
            if let Some(obj) = update.as_object_mut() {
                obj.insert("update_id".into(), id.into());
            }
            b.queue.push_back((id, update.to_string()));
            id
        })
    }

    /// Queues an update as raw text (which need not be valid JSON), under the next update ID,
    /// which is returned; the text should carry that ID itself if the client is to read it.
    pub fn inject_raw(&self, text: impl FnOnce(i64) -> String) -> i64 {
        self.state.with_bot(&self.token, |b| {
            let id = b.next_update_id;
            b.next_update_id += 1;
            b.queue.push_back((id, text(id)));
            id
        })
    }

    /// The next `times` calls of `method` meet `fault`, after any faults already scheduled.
    pub fn fail(&self, method: &str, fault: Fault, times: usize) {
        self.state.with_bot(&self.token, |b| {
            let q = b.faults.entry(method.to_owned()).or_default();
            q.extend(std::iter::repeat_n(fault, times));
        });
    }

    /// Revokes the token: every call from now on, including open long polls, gets 401.
    pub fn revoke(&self) {
        self.state.with_bot(&self.token, |b| b.revoked = true);
    }

    /// Makes a file downloadable; returns its `file_id`.
    pub fn add_file(&self, bytes: Vec<u8>) -> String {
        self.state.with_bot(&self.token, |b| {
            let n = b.files.len() + 1;
            let file_id = format!("SIMFILE{n:04}");
            b.files
                .insert(file_id.clone(), (format!("documents/file_{n}.bin"), bytes));
            file_id
        })
    }

    /// Every call received so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.state.read_bot(&self.token, |b| b.calls.clone())
    }

    /// Every accepted `sendMessage`, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.state.read_bot(&self.token, |b| b.sent.clone())
    }

    /// Updates injected and not yet confirmed by an offset.
    pub fn pending(&self) -> usize {
        self.state.read_bot(&self.token, |b| b.queue.len())
    }

    /// The webhook URL and secret token, if one is set.
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.state.read_bot(&self.token, |b| b.webhook.clone())
    }

    /// The last `allowed_updates` a `getUpdates` or `setWebhook` gave.
    pub fn allowed_updates(&self) -> Option<Value> {
        self.state.read_bot(&self.token, |b| b.allowed_updates.clone())
    }

    /// Waits until `cond` holds, re-checking after every change; false on timeout.
    pub async fn wait_until(&self, timeout: Duration, mut cond: impl FnMut(&SimBot) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changed = self.state.changed.subscribe();
        loop {
            changed.borrow_and_update();
            if cond(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return cond(self),
            }
        }
    }
}
