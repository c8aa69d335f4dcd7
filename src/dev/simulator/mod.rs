//! A Bot API simulator: an HTTP server that speaks Telegram's wire format, for the tests, for
//! `lanbox demo` and `lanbox dev telegram-sim`, where Telegram itself cannot be reached.
//!
//! It serves `/bot<token>/<method>` (GET or POST; parameters in the query string, a JSON body, a
//! form or a multipart body) for `getMe`, `getUpdates`, `sendMessage`, `sendPhoto`,
//! `sendDocument`, `sendVideo`, `sendVoice`, `sendAudio`, `sendChatAction`, `editMessageText`,
//! `deleteMessage`, `answerCallbackQuery`, `getFile`, `setWebhook`, `deleteWebhook` and
//! `getWebhookInfo`, and `/file/bot<token>/<path>` for downloads. Answers are
//! `{"ok":true,"result":...}` or `{"ok":false,"error_code":N,"description":"..."}` with HTTP
//! status N, as Telegram sends them; a revoked token, or an unknown token that is not
//! well-formed (or any unknown token in strict mode), gets 401. A well-formed unknown token is
//! registered on first use, so any number of bots can talk to one simulator.
//!
//! `getUpdates` keeps Telegram's offset semantics: updates below the offset are confirmed and
//! dropped, the rest are delivered again until confirmed; a long poll returns as soon as an
//! update is injected or after `timeout` seconds; a second concurrent poll ends the first with
//! 409, and so does a webhook. `allowed_updates` is recorded, not applied. With a webhook set,
//! every update is POSTed to it in order, one at a time, with the secret header, and retried
//! with backoff until the endpoint answers 2xx (`webhook.rs`).
//!
//! Message IDs are numbered as Telegram numbers them: one sequence per supergroup or channel,
//! shared by every bot in it, and one per bot in a private chat or basic group; the chat's type
//! is the one its Chat objects gave (`chats.rs`). A send's answer carries that Chat object.
//!
//! Telegram's size limits hold (50 MB multipart uploads, 10 MB photos, 20 MB through getFile),
//! and so, optionally, do its sending rates (`limits.rs`). Stored files are capped in total
//! ([`SimConfig::file_bytes_cap`]).
//!
//! A [`SimBot`] handle injects updates (update IDs are assigned in order), schedules faults for
//! the next calls of a method ([`Fault`]), revokes the token, and shows every call received
//! ([`Call`]), every message sent ([`SentMessage`]) and everything the bot did ([`Activity`]).
//! The same is available over HTTP under `/_sim/` (`control.rs`, described in the README),
//! for tests in other languages and for people.

mod bot_methods;
mod chats;
mod control;
mod limits;
mod media;
mod methods;
mod multipart;
mod params;
mod reply;
mod serve;
mod state;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use state::{BotState, State};

/// Settings of one simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Only bots added through [`Simulator::add_bot`] or [`Simulator::add_bot_with_token`]
    /// exist; any other token gets 401.
    pub strict: bool,
    /// Most bytes all stored files may take together; an upload past it is refused.
    pub file_bytes_cap: u64,
    /// Most bytes of updates injected over the control API waiting to be confirmed.
    pub pending_bytes_cap: u64,
    /// Answer 429 to sends over Telegram's rate limits (also switchable at run time).
    pub enforce_limits: bool,
    /// Behave like a self-hosted Bot API server (`telegram-bot-api --local`): `getFile` has no
    /// 20 MB limit. (Added for the attachment tests and benchmark.)
    pub local_api: bool,
    /// First and longest wait between webhook delivery attempts.
    pub webhook_retry: (Duration, Duration),
    /// How long a webhook delivery waits for the endpoint's answer.
    pub webhook_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            strict: false,
            file_bytes_cap: 256 << 20,
            pending_bytes_cap: 256 << 20,
            enforce_limits: false,
            local_api: false,
            webhook_retry: (Duration::from_millis(200), Duration::from_secs(10)),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

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
    /// The TCP connection is closed without an answer.
    Drop,
}

/// One request the simulator received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    /// Parameters as received (query, JSON or form; form values that are JSON are decoded).
    pub params: Map<String, Value>,
    /// When the request arrived.
    pub at: Instant,
    /// The HTTP status answered; `None` while the call is still open, `Some(0)` when the
    /// connection was dropped ([`Fault::Drop`]).
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

/// One thing the bot did: a send, an edit, a delete, a chat action or a callback answer, in
/// the order the simulator accepted them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    /// Position in the bot's log, from 1.
    pub seq: u64,
    pub method: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<i64>,
    /// The text, caption, or callback answer text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `sendChatAction`'s action.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_query_id: Option<String>,
    /// The Message returned to the bot (sends and edits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Value>,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
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
        Simulator::start_with(listener, SimConfig::default())
    }

    /// Starts serving on `listener` with these settings.
    pub fn start_with(listener: TcpListener, config: SimConfig) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(State::new(stopped.clone(), config));
        let shutdown = async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|v| *v).await;
        };
        let task = tokio::spawn(serve::run(listener, state.clone(), shutdown));
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
        let mut secret = [0u8; 17];
        getrandom::fill(&mut secret).expect("random token");
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let mut inner = self.state.lock();
        inner.next_bot_id += 1;
        let id = inner.next_bot_id;
        let token = format!("{id}:AA{}", &secret[..33]);
        inner.bots.insert(token.clone(), BotState::new(id, username));
        drop(inner);
        self.state.bump();
        SimBot {
            state: self.state.clone(),
            token,
        }
    }

    /// Registers a bot under a given well-formed token (`<digits>:<35 characters>`); its ID is
    /// the token's digits. An existing bot is returned as it is.
    pub fn add_bot_with_token(&self, token: &str, username: &str) -> Option<SimBot> {
        let id = state::well_formed(token)?;
        self.state.with_inner(|inner| {
            inner
                .bots
                .entry(token.to_owned())
                .or_insert_with(|| BotState::new(id, username));
        });
        self.bot(token)
    }

    /// A handle to a bot that exists (added, or registered on first use).
    pub fn bot(&self, token: &str) -> Option<SimBot> {
        self.state.lock().bots.contains_key(token).then(|| SimBot {
            state: self.state.clone(),
            token: token.to_owned(),
        })
    }

    /// Every registered bot's token.
    pub fn tokens(&self) -> Vec<String> {
        let mut t: Vec<String> = self.state.lock().bots.keys().cloned().collect();
        t.sort();
        t
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
    pub fn inject(&self, update: Value) -> i64 {
        self.state
            .with_inner(|inner| inner.enqueue(&self.token, update, None, false).0)
    }

    /// Queues many updates under one lock (IDs assigned in sequence); returns the last ID.
    pub fn inject_all(&self, updates: impl IntoIterator<Item = Value>) -> Option<i64> {
        self.state.with_inner(|inner| {
            updates
                .into_iter()
                .map(|u| inner.enqueue(&self.token, u, None, false).0)
                .last()
        })
    }

    /// Queues an update as raw text (which need not be valid JSON), under the next update ID,
    /// which is returned; the text should carry that ID itself if the client is to read it.
    pub fn inject_raw(&self, text: impl FnOnce(i64) -> String) -> i64 {
        self.state.with_bot(&self.token, |b| {
            let id = b.next_update_id;
            b.next_update_id += 1;
            b.push_queued(state::Queued {
                id,
                text: text(id),
                counted: false,
            });
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

    /// Makes a file downloadable; returns its `file_id`. (Not refused past the file cap: the
    /// test decides what it stores; the bytes still count towards the cap.)
    pub fn add_file(&self, bytes: Vec<u8>) -> String {
        self.state.with_inner(|inner| {
            inner
                .store_file(&self.token, u64::MAX, "documents", "bin", bytes.into())
                .expect("no cap")
                .0
        })
    }

    /// Every call received so far, oldest first (the last 50 000).
    pub fn calls(&self) -> Vec<Call> {
        self.state
            .read_bot(&self.token, |b| b.calls.iter().cloned().collect())
    }

    /// Every send, edit, delete, chat action and callback answer, oldest first (the last
    /// 50 000).
    pub fn activity(&self) -> Vec<Activity> {
        self.state
            .read_bot(&self.token, |b| b.activity.iter().cloned().collect())
    }

    /// Send counts in sliding windows against Telegram's limits, as `/_sim/bot{token}/stats`
    /// shows them.
    pub fn stats(&self) -> Value {
        self.state.read_bot(&self.token, |b| b.limits.stats())
    }

    /// `getWebhookInfo`'s result as the bot would see it.
    pub fn webhook_info(&self) -> Value {
        self.state.read_bot(&self.token, methods::webhook_info)
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
        self.state.read_bot(&self.token, |b| {
            b.webhook.as_ref().map(|w| (w.url.clone(), w.secret.clone()))
        })
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
