//! The values kept in the tables of [`super::tables`]. Anything that can reveal what a
//! conversation says is inside a [`Sealed`] field; what stays in the clear is identifiers,
//! times, kinds and counters, which the store needs to sort, filter and count without a key.

use serde::{Deserialize, Serialize};

use super::codec::Record;
use super::seal::Sealed;
use crate::model::{Activity, BodyKind, ChatKind, ConversationStatus, Direction, EventRecord, Status};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountRecord {
    pub id: u64,
    /// Channel name, `telegram`.
    pub channel: String,
    /// The operator's label for the account (not conversation content).
    pub name: String,
    /// Login-code redaction applies (messages from chat 777000 become placeholders).
    pub rented: bool,
    /// Sends per day; `None` means no limit.
    pub daily_limit: Option<u32>,
    /// The account's data key, wrapped by the master key.
    pub wrapped_key: Sealed,
    /// Channel credentials (bot token), sealed with the account's data key.
    pub secret: Option<Sealed>,
    /// Connector options that are not secret (API base URL, mode), as JSON text.
    pub options: String,
    pub created_at: i64,
}

impl Record for AccountRecord {
    const NAME: &'static str = "account";
    const VERSION: u8 = 1;
}

/// Sealed part of a chat: what names it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatMeta {
    pub title: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRecord {
    pub kind: ChatKind,
    pub is_forum: bool,
    /// Account whose data key sealed `meta` and the chat's messages by default.
    pub owner: u64,
    /// Every account that has seen this chat: grants and per-account unread follow it.
    pub accounts: Vec<u64>,
    pub meta: Sealed,
    /// Incoming messages with a key above `read_up_to` are unread.
    pub read_up_to: i64,
    pub unread: u32,
    pub messages: u32,
    /// Key and date of the newest message.
    pub last_key: Option<i64>,
    pub last_date: i64,
    /// Set on a basic group that became a supergroup (the record then only redirects).
    pub migrated_to: Option<i64>,
}

impl Record for ChatRecord {
    const NAME: &'static str = "chat";
    const VERSION: u8 = 1;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Account whose data key sealed `content`.
    pub owner: u64,
    /// Every account that received this message (a supergroup message seen by two bots is
    /// stored once and visible to both).
    pub seen_by: Vec<u64>,
    pub chat_kind: ChatKind,
    /// Telegram's message ID (the store key differs for migrated messages).
    pub message_id: i64,
    pub topic: Option<i64>,
    pub direction: Direction,
    pub date: i64,
    pub edited_at: Option<i64>,
    pub status: Status,
    pub body_kind: BodyKind,
    pub sender_id: i64,
    /// postcard of [`crate::model::MessageContent`], sealed under the owner's data key.
    pub content: Sealed,
}

impl Record for StoredMessage {
    const NAME: &'static str = "message";
    const VERSION: u8 = 1;
}

impl Record for EventRecord {
    const NAME: &'static str = "event";
    const VERSION: u8 = 1;
}

impl Record for crate::model::MessageContent {
    const NAME: &'static str = "message content";
    const VERSION: u8 = 1;
}

/// A value that is nothing but sealed bytes (reactions).
impl Record for Sealed {
    const NAME: &'static str = "sealed value";
    const VERSION: u8 = 1;
}

impl Record for crate::model::Reactions {
    const NAME: &'static str = "reactions";
    const VERSION: u8 = 1;
}

impl Record for ChatMeta {
    const NAME: &'static str = "chat meta";
    const VERSION: u8 = 1;
}

/// The team's state of a conversation (a chat): status, assignee, labels. A chat without a row
/// is open, unassigned and unlabelled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub status: ConversationStatus,
    /// End of a snooze (unix seconds); after it the conversation reads as open.
    pub snoozed_until: Option<i64>,
    pub assignee: Option<u64>,
    /// Label IDs, sorted.
    pub labels: Vec<u64>,
    /// When the status or assignee last changed.
    pub updated_at: i64,
}

impl Record for ConversationRecord {
    const NAME: &'static str = "conversation";
    const VERSION: u8 = 1;
}

/// One entry of a conversation's activity trail. `by` is the user (0: lanbox itself, for a
/// reopening by an incoming message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityRecord {
    pub at: i64,
    pub by: u64,
    pub what: Activity,
}

impl Record for ActivityRecord {
    const NAME: &'static str = "activity";
    const VERSION: u8 = 1;
}

/// A private note a user left in a conversation: never sent to Telegram, sealed like the
/// conversation's messages (under the chat owner's key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteRecord {
    pub by: u64,
    pub at: i64,
    /// Account whose data key sealed `body` (the chat's owner when it was written).
    pub owner: u64,
    /// A [`NoteBody`], sealed.
    pub body: Sealed,
}

impl Record for NoteRecord {
    const NAME: &'static str = "note";
    const VERSION: u8 = 1;
}

/// What a note says: its text and the users it mentions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteBody {
    pub text: String,
    pub mentions: Vec<u64>,
}

impl Record for NoteBody {
    const NAME: &'static str = "note body";
    const VERSION: u8 = 1;
}

/// A label the admins created. Its name is the team's word ("billing", "vip"), not
/// conversation content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRecord {
    pub id: u64,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    pub created_at: i64,
}

impl Record for LabelRecord {
    const NAME: &'static str = "label";
    const VERSION: u8 = 1;
}
