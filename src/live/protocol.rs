//! The `lanbox.v1` WebSocket protocol: JSON text frames, one object each, with a `type`.
//!
//! Client to server (each may carry an `id`, echoed in the reply):
//! - `subscribe {accounts?, chats?}`: start (or change) the live feed; replies `ack` with
//!   `last_seq`, the position the feed starts after.
//! - `resume {from_seq, accounts?, chats?}`: replay every event after `from_seq` in order, then
//!   continue live; replies `ack` with `replayed` and `last_seq`, or `resync_required` when the
//!   log no longer reaches back (the client reloads over REST, then subscribes).
//! - `mark_read {chat, up_to}`: replies `ack` with `unread`.
//! - `send_message {chat, text, reply_to?, account?, idempotency_key?, attachment?}`: queues the send in the
//!   outbox; replies `ack` with `outbox` (the item: `id`, `status`, ...). Its progress arrives
//!   as `message.status` events (`queued`, then `sent` or `failed`) naming the item; a user
//!   account's read receipt makes an outgoing message `read` (a `message.status` event with no
//!   item).
//! - `typing {chat}`: tells the other agents who see the chat and, within the sending limits,
//!   Telegram; replies `ack` with `telegram` (whether Telegram was told).
//! - `assign {chat, assignee}` (a user ID or `null`), `set_status {chat, status,
//!   snoozed_until?}`: change a conversation like `POST .../assign` and `.../status`; reply
//!   `ack` with `conversation` (its status, assignee, labels).
//! - `ping`: replies `pong`.
//!
//! Server to client: `hello` on connect; events `message.created`, `message.updated`,
//! `message.deleted`, `chat.read`, `chat.migrated`, `message.status`, `message.reaction`,
//! `message.postback`, `conversation.assigned {assignee, by}`, `conversation.status {status,
//! snoozed_until, reopened, by}` (`reopened: true` and `by: null` when an incoming message
//! opened it), `conversation.labels {labels, by}`, `note.created {note_id, note}` and
//! `note.deleted {note_id}` (private notes; a note's `mentions` name the teammates it tells),
//! `conversation.exported {format, from, to, by}`
//! (from the event log, each with its `seq`), and `typing {chat, user}` (an agent, or the
//! other side of a user account's chat, by name), `account.status`, `store.status`, `update.progress` (not logged: their `seq` is the stream position they were
//! sent at, and a resume does not replay them); `ack`, `error`, `resync_required`, `pong`.
//! `store.status {status, reasons}` goes to every client when the store's health changes
//! (`degraded` with `disk_full` while the disk refuses writes, `ok` again once they work); `hello`
//! carries the current one as `store`. `update.progress {state, percent, message, error}`
//! (admins only, not logged) follows an update's install: `installing` with RAUC's percentage
//! and step, then `installed` or `failed`.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Grants;
use crate::model::{EventKind, EventRecord};
use crate::store::ChatKey;
use crate::view::dto::{MessageDto, chat_id, parse_chat_id};
use crate::view::visible;

/// The subprotocol name a client offers (with its token) and the server selects.
pub const PROTOCOL: &str = "lanbox.v1";

/// Close codes.
pub mod close {
    /// The client could not keep up; resume from the last `seq` received.
    pub const TOO_SLOW: u16 = 4008;
    /// The credential stopped working: the token was revoked or expired, the session logged
    /// out or expired (a password reset ends every session), or the user was disabled or
    /// deleted. A socket opened with a ticket goes with the token or session that minted it.
    /// Sent at once on a revocation (expiry shows at the next heartbeat or client message);
    /// log in again or use another credential.
    pub const UNAUTHORIZED: u16 = 4001;
    /// Nothing heard from the client for two heartbeats.
    pub const HEARTBEAT_TIMEOUT: u16 = 4009;
    /// The server is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The server could not check the credential after a revocation that may concern it;
    /// reconnect.
    pub const INTERNAL_ERROR: u16 = 1011;
}

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    Subscribe {
        id: Option<Value>,
        #[serde(flatten)]
        filter: FilterSpec,
    },
    Resume {
        id: Option<Value>,
        from_seq: u64,
        #[serde(flatten)]
        filter: FilterSpec,
    },
    SendMessage {
        id: Option<Value>,
        chat: String,
        text: String,
        reply_to: Option<i64>,
        account: Option<u64>,
        idempotency_key: Option<String>,
        /// An uploaded file to send (see `POST /api/v1/attachments`).
        #[serde(default)]
        attachment: Option<u64>,
        /// The text's formatting (as the REST send takes it).
        #[serde(default)]
        entities: Vec<crate::outbox::record::OutEntity>,
    },
    MarkRead {
        id: Option<Value>,
        chat: String,
        up_to: i64,
    },
    Typing {
        id: Option<Value>,
        chat: String,
    },
    /// Assign a conversation to a user, or unassign it (`assignee: null`).
    Assign {
        id: Option<Value>,
        chat: String,
        /// Required; `null` unassigns.
        #[serde(deserialize_with = "present")]
        assignee: Option<u64>,
    },
    /// Set a conversation's status (`snoozed_until` with `snoozed`).
    SetStatus {
        id: Option<Value>,
        chat: String,
        status: String,
        snoozed_until: Option<i64>,
    },
    Ping {
        id: Option<Value>,
    },
}

/// Filters of a subscription, as sent; absent means "everything the grants allow".
#[derive(Debug, Default, Deserialize)]
pub struct FilterSpec {
    pub accounts: Option<Vec<u64>>,
    pub chats: Option<Vec<String>>,
}

/// A parsed subscription filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Subscription {
    pub accounts: Option<Vec<u64>>,
    pub chats: Option<Vec<ChatKey>>,
}

impl Subscription {
    pub fn parse(spec: FilterSpec) -> Result<Subscription, String> {
        let chats = spec
            .chats
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        parse_chat_id(c).ok_or_else(|| "chats are chat ids like \"0:-100123\"".to_string())
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(Subscription {
            accounts: spec.accounts,
            chats,
        })
    }

    pub fn matches(&self, accounts: &[u64], chat: Option<ChatKey>) -> bool {
        self.accounts
            .as_ref()
            .is_none_or(|a| accounts.iter().any(|x| a.contains(x)))
            && self
                .chats
                .as_ref()
                .is_none_or(|cs| chat.is_some_and(|c| cs.contains(&c)))
    }
}

/// What a client sees: its grants and its subscription (set by `subscribe`/`resume`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct View {
    pub grants: Grants,
    pub sub: Subscription,
}

impl View {
    pub fn sees(&self, accounts: &[u64], chat: Option<ChatKey>) -> bool {
        visible::event(&self.grants, accounts) && self.sub.matches(accounts, chat)
    }

    pub fn sees_event(&self, e: &EventRecord) -> bool {
        self.sees(&e.accounts, Some(event_chat(e)))
    }
}

pub fn event_chat(e: &EventRecord) -> ChatKey {
    ChatKey {
        scope: e.scope,
        chat: e.chat_id,
    }
}

/// Whether an event of this kind carries the message it is about.
pub fn wants_message(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::MessageCreated
            | EventKind::MessageUpdated
            | EventKind::MessageStatus
            | EventKind::Reaction
            | EventKind::Postback
    )
}

/// A logged event as the client sees it. `message` is the message it is about (for kinds that
/// carry one; `null` when it was deleted since).
pub fn event_json(g: &Grants, e: &EventRecord, message: Option<MessageDto>) -> Value {
    let mut v = json!({
        "type": e.kind.as_str(),
        "seq": e.seq,
        "at": e.at,
        "chat": chat_id(event_chat(e)),
        "accounts": g.visible(&e.accounts),
    });
    let o = v.as_object_mut().expect("object");
    match e.kind {
        EventKind::ChatRead => {
            o.insert("read_up_to".into(), json!(e.message_key));
        }
        EventKind::ChatMigrated => {
            o.insert("from_telegram_id".into(), json!(e.from_chat));
        }
        _ => {
            o.insert("message_id".into(), json!(e.message_key));
        }
    }
    // Read state is per user: a count in the shared log would be somebody else's. (A
    // `chat.read` of a user comes as its own message to their sessions.)
    if e.unread.is_some() && e.kind == EventKind::ChatRead {
        o.insert("unread".into(), json!(e.unread));
    }
    if e.kind == EventKind::MessageStatus {
        o.insert("status".into(), json!(message.as_ref().map(|m| m.status)));
        o.insert(
            "status_reason".into(),
            json!(message.as_ref().and_then(|m| m.status_reason.clone())),
        );
    }
    if wants_message(e.kind) {
        o.insert("message".into(), json!(message));
    }
    v
}

/// A reply to a client message.
pub fn ack(id: &Option<Value>, extra: Value) -> Value {
    let mut v = json!({"type": "ack", "id": id});
    if let (Some(o), Value::Object(x)) = (v.as_object_mut(), extra) {
        o.extend(x);
    }
    v
}

pub fn error(id: &Option<Value>, code: &str, message: &str) -> Value {
    json!({"type": "error", "id": id, "code": code, "message": message})
}

/// A field that must be present but may be `null` (serde takes a missing `Option` for `None`
/// unless the field has a deserializer of its own).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}
