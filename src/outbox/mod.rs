//! The outbox: durable, rate-limited sending.
//!
//! A send is an [`OutboxRecord`] in redb, queued by one writer job that also checks the
//! client's idempotency key (a retried request returns the item it queued and sends nothing new)
//! and the account's daily limit, and appends a `message.status` event (`queued`). Each account
//! with a bot, and each user account whose connector runs, has one sender task ([`worker`])
//! that drains its items within the [`Limits`] (stricter for user accounts:
//! [`Limits::for_user`]), through its [`Sender`] (the Bot API, or the user account's MTProto
//! client: [`sender`]),
//! retries transient failures, and records the outcome: `sent` with the Telegram message ID (the
//! message then joins its chat through the ingest stages, so it is in the conversation and in
//! search) or `failed` with a reason that never holds the text. Every change of status is a
//! `message.status` event in the log, with its sequence number.
//!
//! The at-least-once gap: an item is marked "sending" durably before its request. If lanbox
//! stops before recording the answer, nobody knows whether Telegram delivered it, and the Bot
//! API has no idempotency key to ask. By default such an item is marked failed with
//! [`jobs::INTERRUPTED`] as its reason (at most once: the agent sees it and checks the chat);
//! `[outbox] resend_interrupted = true` sends it again instead (at least once: it may appear
//! twice). A timeout is the same question during a run; it is retried (that is what "3
//! retries" asks for), with the same risk of a double.
//!
//! Edits, deletes and typing are not queued: they go straight to Telegram through the
//! account's client, within the same [`Limits`] (typing is dropped, not delayed, when the bot
//! is at its limit, so a typing storm cannot use up the budget of real messages).
//!
//! - [`tables`], [`record`]: what is stored; [`jobs`]: the writer jobs;
//! - [`limits`]: windows and buckets; [`worker`]: the sender task;
//! - [`attach`]: what the attachment store must provide for file sends;
//! - [`sender`]: a bot's or a user account's way to Telegram, and what a user account's send
//!   becomes (entities, the stored message).
//!
//! A user account also marks the other side's messages read on Telegram when an agent reads
//! them ([`Outbox::read_on_telegram`]).

pub mod attach;
pub mod jobs;
pub mod limits;
pub mod record;
pub mod release;
pub mod sender;
pub mod tables;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

pub use attach::AttachmentSource;
pub use jobs::{Enqueued, NewItem};
pub use limits::{Limits, OutboxOptions};
pub use record::{AttachmentRef, ItemState, OutboxRecord, StatusSnapshot};
pub use sender::Sender;

use crate::channels::mtproto::UserConnectors;
use crate::channels::telegram::bots::{self, AccountError};
use crate::channels::telegram::client::{self, ApiError, ChatAction, EditMessageText};
use crate::ingest::{Batch, Change, IndexHook, apply};
use crate::model::{Chat, ChatKind, Message};
use crate::store::{MsgKey, Store, StoreError};

/// Items looked at per write job by the start-up upgrade ([`jobs::seal_old_files`]).
const SEAL_STEP: usize = 1_000;

/// Longest an edit or delete waits for the limits before it is refused with a retry time.
const MAX_DIRECT_WAIT: Duration = Duration::from_secs(5);

/// What can go wrong with a send, an edit, a delete. Messages never contain message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    #[error("account {account} reached its daily limit of {limit} sends; it resets at 00:00 UTC")]
    DailyLimit { account: u64, limit: u32 },
    #[error("account {0} has no bot or connected user account to send with")]
    NotConnected(u64),
    #[error("only messages the team sent can be edited or deleted")]
    NotOutgoing,
    #[error("file sends are not available yet: the attachment store is not connected")]
    FilesUnavailable,
    #[error("Telegram refused: {0}")]
    Refused(String),
    #[error("Telegram could not be reached: {0}")]
    Unavailable(String),
    #[error("rate limited; retry in {0} s")]
    RateLimited(u64),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Account(String),
}

impl From<AccountError> for OutboxError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Store(s) => OutboxError::Store(s),
            other => OutboxError::Account(other.to_string()),
        }
    }
}

struct WorkerHandle {
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
    sender: Sender,
    limits: Arc<Mutex<Limits>>,
}

struct Shared {
    store: Store,
    index: Arc<dyn IndexHook>,
    opts: OutboxOptions,
    http: Mutex<Option<reqwest::Client>>,
    workers: Mutex<HashMap<u64, WorkerHandle>>,
    attachments: Arc<Mutex<Option<Arc<dyn AttachmentSource>>>>,
    /// The user accounts' connectors, whose clients user accounts send with.
    users: Mutex<Option<UserConnectors>>,
}

/// A cheap-to-clone handle to the outbox and its sender tasks.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("opts", &self.shared.opts)
            .finish_non_exhaustive()
    }
}

impl Outbox {
    /// No senders yet: [`Outbox::start_all`] or [`Outbox::start`] add them. `index` is the
    /// ingest pipeline's index hook (sent messages are indexed like received ones).
    pub fn new(store: Store, index: Arc<dyn IndexHook>, opts: OutboxOptions) -> Outbox {
        Outbox {
            shared: Arc::new(Shared {
                store,
                index,
                opts,
                http: Mutex::new(None),
                workers: Mutex::new(HashMap::new()),
                attachments: Arc::new(Mutex::new(None)),
                users: Mutex::new(None),
            }),
        }
    }

    /// Creates the outbox's tables and seals what older releases left in the clear (once, at
    /// start).
    pub async fn ensure_tables(store: &Store) -> Result<(), StoreError> {
        store
            .write(1, |ctx| tables::create_all(ctx.txn()).map_err(StoreError::from))
            .await?;
        // In steps, so a large outbox is not one huge transaction.
        let mut from = Some(0);
        while let Some(at) = from {
            from = store
                .write(1, move |ctx| jobs::seal_old_files(ctx, at, SEAL_STEP))
                .await?;
        }
        Ok(())
    }

    pub fn options(&self) -> &OutboxOptions {
        &self.shared.opts
    }

    /// Connects the attachment store, which enables file sends.
    pub fn set_attachments(&self, source: Arc<dyn AttachmentSource>) {
        *self.shared.attachments.lock().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    /// Connects the user accounts' connectors: user accounts then send through their
    /// connector's client.
    pub fn set_users(&self, users: UserConnectors) {
        *self.shared.users.lock().unwrap_or_else(|p| p.into_inner()) = Some(users);
    }

    /// A user account's sender, when its connector was started.
    fn user_sender(&self, account: u64) -> Option<Sender> {
        let users = self
            .shared
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        Some(Sender::User {
            sender: users.sender(account)?,
            timeout: self.shared.opts.request_timeout,
        })
    }

    fn workers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, WorkerHandle>> {
        self.shared.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn http(&self) -> Result<reqwest::Client, OutboxError> {
        let mut h = self.shared.http.lock().unwrap_or_else(|p| p.into_inner());
        if h.is_none() {
            *h = Some(client::http_client().map_err(|e| OutboxError::Unavailable(e.to_string()))?);
        }
        Ok(h.clone().expect("set above"))
    }

    /// Starts a sender for every bot account and every user account whose connector runs;
    /// returns how many started.
    pub async fn start_all(&self) -> Result<usize, OutboxError> {
        let all = bots::load_bots(&self.shared.store).await?;
        let mut n = all.len();
        for bot in all {
            let client = bot.client(self.http()?);
            self.spawn(bot.id, Sender::Bot(client));
        }
        let users = self
            .shared
            .users
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for account in users.map(|u| u.accounts()).unwrap_or_default() {
            if let Some(sender) = self.user_sender(account) {
                self.spawn(account, sender);
                n += 1;
            }
        }
        Ok(n)
    }

    /// (Re)starts one account's sender; false when the account has neither a bot nor a
    /// running user-account connector.
    pub async fn start(&self, account: u64) -> Result<bool, OutboxError> {
        self.stop(account);
        match bots::load_bot(&self.shared.store, account).await? {
            Some(bot) => {
                let client = bot.client(self.http()?);
                self.spawn(account, Sender::Bot(client));
                Ok(true)
            }
            None => match self.user_sender(account) {
                Some(sender) => {
                    self.spawn(account, sender);
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    fn spawn(&self, account: u64, sender: Sender) {
        let mut opts = self.shared.opts.clone();
        let (sender, limits) = match sender {
            Sender::Bot(client) => (
                Sender::Bot(client.with_send_timeout(opts.request_timeout)),
                Limits::new(&opts),
            ),
            user => {
                // One request at a time, as a person sends.
                opts.concurrency = 1;
                (user, Limits::for_user(&opts))
            }
        };
        let limits = Arc::new(Mutex::new(limits));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let worker = worker::Worker {
            account,
            store: self.shared.store.clone(),
            index: self.shared.index.clone(),
            sender: sender.clone(),
            opts,
            limits: limits.clone(),
            wake: wake.clone(),
            attachments: self.shared.attachments.clone(),
        };
        let handle = tokio::spawn(worker.run(stopped));
        let old = self.workers().insert(
            account,
            WorkerHandle {
                wake,
                stop,
                handle,
                sender,
                limits,
            },
        );
        if let Some(old) = old {
            old.stop.send_replace(true);
        }
    }

    /// Stops one account's sender (an item in flight stays "sending"; see the module docs).
    pub fn stop(&self, account: u64) {
        if let Some(w) = self.workers().remove(&account) {
            w.stop.send_replace(true);
        }
    }

    /// Stops every sender and waits for them.
    pub async fn shutdown(&self) {
        let all: Vec<WorkerHandle> = self.workers().drain().map(|(_, w)| w).collect();
        for w in &all {
            w.stop.send_replace(true);
        }
        for w in all {
            let _ = w.handle.await;
        }
    }

    pub fn is_running(&self, account: u64) -> bool {
        self.workers().contains_key(&account)
    }

    /// Starts the account's sender if it is not running (an account added since start-up);
    /// `NotConnected` when the account has no bot.
    async fn ensure_running(&self, account: u64) -> Result<(), OutboxError> {
        if self.is_running(account) || self.start(account).await? {
            Ok(())
        } else {
            Err(OutboxError::NotConnected(account))
        }
    }

    async fn connection(&self, account: u64) -> Result<(Sender, Arc<Mutex<Limits>>), OutboxError> {
        self.ensure_running(account).await?;
        self.workers()
            .get(&account)
            .map(|w| (w.sender.clone(), w.limits.clone()))
            .ok_or(OutboxError::NotConnected(account))
    }

    /// The account's sender and limits; a user account's sender is started here if it is not
    /// running yet (an account signed in since start-up that has not sent yet). Synchronous,
    /// for typing and read marks: a bot's is started with the account.
    fn running(&self, account: u64) -> Option<(Sender, Arc<Mutex<Limits>>)> {
        let found = self
            .workers()
            .get(&account)
            .map(|w| (w.sender.clone(), w.limits.clone()));
        if found.is_some() {
            return found;
        }
        self.spawn(account, self.user_sender(account)?);
        self.workers()
            .get(&account)
            .map(|w| (w.sender.clone(), w.limits.clone()))
    }

    /// Queues a send. Returns the item and whether it is new (false: the idempotency key was
    /// used before and this is the item it queued).
    pub async fn enqueue(&self, item: NewItem) -> Result<(OutboxRecord, bool), OutboxError> {
        let account = item.account;
        self.ensure_running(account).await?;
        if item.attachment.is_some() && self.workers().get(&account).is_some_and(|w| w.sender.is_user()) {
            return Err(OutboxError::Refused(
                "file sends through a user account are not available yet".into(),
            ));
        }
        if let Some(a) = &item.attachment {
            let source = self
                .shared
                .attachments
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or(OutboxError::FilesUnavailable)?;
            if a.size > attach::MAX_UPLOAD_BYTES {
                return Err(OutboxError::Refused(
                    "files above 50 MB cannot be sent by a bot".into(),
                ));
            }
            source.check(account, a).await.map_err(OutboxError::Refused)?;
        }
        let done = self
            .shared
            .store
            .write(1, move |ctx| jobs::enqueue(ctx, &item))
            .await?;
        match done {
            Enqueued::New(rec) => {
                if let Some(w) = self.workers().get(&account) {
                    w.wake.notify_one();
                }
                Ok((rec, true))
            }
            Enqueued::Existing(rec) => Ok((rec, false)),
            Enqueued::DailyLimit { limit } => Err(OutboxError::DailyLimit { account, limit }),
        }
    }

    pub async fn item(&self, id: u64) -> Result<Option<OutboxRecord>, StoreError> {
        self.shared
            .store
            .read(move |r| jobs::read_item(r.txn(), id))
            .await
    }

    /// Waits for the limits of a direct request (edit, delete) and takes its slot.
    async fn direct_slot(
        &self,
        limits: &Mutex<Limits>,
        chat: i64,
        kind: ChatKind,
    ) -> Result<(), OutboxError> {
        loop {
            let now = Instant::now();
            let at = {
                let mut l = limits.lock().unwrap_or_else(|p| p.into_inner());
                let at = l.ready_at(chat, kind, now);
                if at <= now {
                    l.take(chat, kind, now);
                    return Ok(());
                }
                at
            };
            if at - now > MAX_DIRECT_WAIT {
                return Err(OutboxError::RateLimited((at - now).as_secs().max(1)));
            }
            tokio::time::sleep_until(at.into()).await;
        }
    }

    /// Runs a direct request with the retries of the options; a 429 pauses the bot and is
    /// reported, not waited out (the caller is an HTTP request).
    async fn direct<T, F, Fut>(
        &self,
        limits: &Mutex<Limits>,
        chat: i64,
        kind: ChatKind,
        mut call: F,
    ) -> Result<T, OutboxError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let mut attempt = 0;
        loop {
            self.direct_slot(limits, chat, kind).await?;
            attempt += 1;
            match call().await {
                Ok(v) => return Ok(v),
                Err(ApiError::RetryAfter(s)) => {
                    limits
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pause(s, Instant::now());
                    return Err(OutboxError::RateLimited(s));
                }
                Err(e) if e.is_transient() && attempt <= self.shared.opts.retries => {
                    tokio::time::sleep(Duration::from_millis(250 << attempt.min(4))).await;
                }
                Err(e) if e.is_transient() => return Err(OutboxError::Unavailable(e.to_string())),
                Err(e) => return Err(OutboxError::Refused(e.to_string())),
            }
        }
    }

    /// Edits the text of a message the team sent (`stored` is its store record). Returns the
    /// edited message as stored.
    pub async fn edit(
        &self,
        key: MsgKey,
        owner: u64,
        kind: ChatKind,
        telegram_id: i64,
        text: Zeroizing<String>,
    ) -> Result<Message, OutboxError> {
        let (sender, limits) = self.connection(owner).await?;
        let client = match sender {
            Sender::Bot(client) => client,
            Sender::User { sender, timeout } => {
                let edited = self
                    .direct(&limits, key.chat, kind, || {
                        sender::bounded(timeout, sender.edit_text(key.chat, kind, telegram_id, &text))
                    })
                    .await
                    .map_err(|e| match e {
                        OutboxError::Refused(r) => OutboxError::Refused(worker::safe_reason(&r, &text)),
                        other => other,
                    })?;
                let edited_at = edited.map(i64::from).unwrap_or_else(crate::store::ctx::unix_now);
                return self
                    .edited_here(key, owner, kind, telegram_id, text, edited_at)
                    .await;
            }
        };
        let req = EditMessageText {
            chat_id: key.chat,
            message_id: telegram_id,
            text: text.to_string(),
            ..Default::default()
        };
        let value = self
            .direct(&limits, key.chat, kind, || client.edit_message_text_json(&req))
            .await
            .map_err(|e| match e {
                OutboxError::Refused(r) => OutboxError::Refused(worker::safe_reason(&r, &text)),
                other => other,
            })?;
        let message = worker::outgoing(owner, value, true)
            .ok_or_else(|| OutboxError::Unavailable("Telegram's answer named no message".into()))?;
        let index = self.shared.index.clone();
        let m = message.clone();
        self.shared
            .store
            .write(1, move |ctx| {
                apply::apply_batch(
                    ctx,
                    index.as_ref(),
                    &Batch {
                        account: owner,
                        changes: vec![Change::Edit(m.clone())],
                        position: None,
                    },
                )
            })
            .await?;
        Ok(message)
    }

    /// Records the edit of a user account's message: the stored message with its text replaced
    /// (what it answered, its sender and the rest stay as they were).
    async fn edited_here(
        &self,
        key: MsgKey,
        owner: u64,
        kind: ChatKind,
        telegram_id: i64,
        text: Zeroizing<String>,
        edited_at: i64,
    ) -> Result<Message, OutboxError> {
        let index = self.shared.index.clone();
        let message = self
            .shared
            .store
            .write(1, move |ctx| {
                let Some(stored) = ctx.get_message(key)? else {
                    return Ok(None);
                };
                let mut content = ctx.open_content(key, &stored)?;
                content.body = crate::model::Body::Text(crate::model::Text::plain(text.as_str()));
                let m = Message {
                    account: owner,
                    chat: Chat {
                        id: key.chat,
                        kind,
                        title: None,
                        username: None,
                        is_forum: false,
                    },
                    message_id: telegram_id,
                    topic: stored.topic,
                    direction: stored.direction,
                    date: stored.date,
                    edited_at: Some(edited_at.max(stored.edited_at.unwrap_or(0) + 1)),
                    status: stored.status.clone(),
                    content,
                };
                apply::apply_batch(
                    ctx,
                    index.as_ref(),
                    &Batch {
                        account: owner,
                        changes: vec![Change::Edit(m.clone())],
                        position: None,
                    },
                )?;
                Ok(Some(m))
            })
            .await?;
        message.ok_or_else(|| OutboxError::Unavailable("the message is no longer stored".into()))
    }

    /// Deletes a message the team sent, in Telegram and then in the store.
    pub async fn delete(
        &self,
        key: MsgKey,
        owner: u64,
        kind: ChatKind,
        telegram_id: i64,
    ) -> Result<(), OutboxError> {
        let (sender, limits) = self.connection(owner).await?;
        match sender {
            Sender::Bot(client) => {
                self.direct(&limits, key.chat, kind, || {
                    client.delete_message(key.chat, telegram_id)
                })
                .await?;
            }
            Sender::User { sender, timeout } => {
                self.direct(&limits, key.chat, kind, || {
                    sender::bounded(timeout, sender.delete(key.chat, kind, telegram_id))
                })
                .await?;
            }
        }
        let index = self.shared.index.clone();
        let chat = Chat {
            id: key.chat,
            kind,
            title: None,
            username: None,
            is_forum: false,
        };
        self.shared
            .store
            .write(1, move |ctx| {
                apply::apply_batch(
                    ctx,
                    index.as_ref(),
                    &Batch {
                        account: owner,
                        changes: vec![Change::Delete {
                            account: owner,
                            chat: chat.clone(),
                            message_ids: vec![telegram_id],
                        }],
                        position: None,
                    },
                )
            })
            .await?;
        Ok(())
    }

    /// Shows "typing…" in a chat through `account`'s bot, if the limits have room right now
    /// (best effort: never queued, never retried). Returns whether a notice was sent.
    pub fn typing(&self, account: u64, chat: i64, kind: ChatKind) -> bool {
        let Some((sender, limits)) = self.running(account) else {
            return false;
        };
        if !limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_typing(chat, Instant::now())
        {
            return false;
        }
        tokio::spawn(async move {
            let done = match sender {
                Sender::Bot(client) => client.send_chat_action(chat, ChatAction::Typing).await.map(drop),
                Sender::User { sender, timeout } => sender::bounded(timeout, sender.typing(chat, kind)).await,
            };
            match done {
                Ok(_) => {}
                Err(ApiError::RetryAfter(s)) => limits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pause(s, Instant::now()),
                Err(e) => tracing::debug!(error = %e, "outbox: typing notice failed"),
            }
        });
        true
    }
}

impl Outbox {
    /// Marks the other side's messages of `chat` read on Telegram up to message `up_to`, for a
    /// user account (`messages.readHistory` / `channels.readHistory`), when the account's
    /// limits have room right now: best effort, never queued, so a storm of reads cannot use
    /// up the budget of real messages (the next read covers what one skipped). Bots cannot mark
    /// messages read on Telegram: false, as when nothing was sent.
    pub fn read_on_telegram(&self, account: u64, chat: i64, kind: ChatKind, up_to: i64) -> bool {
        let Some((Sender::User { sender, timeout }, limits)) = self.running(account) else {
            return false;
        };
        if !limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .try_now(Instant::now())
        {
            return false;
        }
        tokio::spawn(async move {
            match sender::bounded(timeout, sender.read_history(chat, kind, up_to)).await {
                Ok(()) => {}
                Err(ApiError::RetryAfter(s)) => limits
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pause(s, Instant::now()),
                Err(e) => tracing::debug!(error = %e, "outbox: marking read on Telegram failed"),
            }
        });
        true
    }
}

/// What a `message.status` event adds to its JSON: the status it announced and the item.
pub fn status_fields(snap: &StatusSnapshot) -> (&'static str, Option<String>, Value) {
    let (telegram_id, reason) = match &snap.state {
        ItemState::Sent { telegram_id, .. } => (Some(*telegram_id), None),
        ItemState::Failed { reason } => (None, Some(reason.clone())),
        _ => (None, None),
    };
    (
        snap.state.as_str(),
        reason,
        json!({"id": snap.item, "telegram_id": telegram_id}),
    )
}

/// Fills in a `message.status` event's status from its snapshot (no-op for other events).
pub fn complete_event(r: &crate::store::Reader, event: &mut Value) -> Result<(), StoreError> {
    if event.get("type").and_then(Value::as_str) != Some("message.status") {
        return Ok(());
    }
    let Some(seq) = event.get("seq").and_then(Value::as_u64) else {
        return Ok(());
    };
    if let Some(snap) = jobs::read_status(r.txn(), seq)? {
        let (status, reason, outbox) = status_fields(&snap);
        event["status"] = json!(status);
        event["status_reason"] = json!(reason);
        event["outbox"] = outbox;
    }
    Ok(())
}
