//! Entries of the workspace event log.
//!
//! Every change the pipeline commits appends one [`EventRecord`] under the next workspace
//! sequence number, in the same transaction. Records carry identifiers only, never message text,
//! so the log needs no sealing: a reader that wants content loads the message it names.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    MessageCreated,
    MessageUpdated,
    MessageDeleted,
    /// The chat's unread count changed because it was read.
    ChatRead,
    /// A basic group became a supergroup; `message_id` is empty, `from_chat` names the old chat.
    ChatMigrated,
    MessageStatus,
    Reaction,
    Postback,
    /// A message's attachment was fetched and stored (`message_key` names the message).
    AttachmentReady,
    /// A conversation was assigned or unassigned (`message_key` is the activity entry's seq).
    ConversationAssigned,
    /// A conversation's status changed (`message_key` as above).
    ConversationStatus,
    /// A conversation's labels changed (`message_key` as above).
    ConversationLabels,
    /// A private note was written (`message_key` is the note's ID).
    NoteCreated,
    /// A private note was deleted (`message_key` is the note's ID).
    NoteDeleted,
    /// A conversation was exported (the activity entry under this seq says how).
    ConversationExported,
}

impl EventKind {
    /// The name used on the wire (WebSocket and REST).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageCreated => "message.created",
            EventKind::MessageUpdated => "message.updated",
            EventKind::MessageDeleted => "message.deleted",
            EventKind::ChatRead => "chat.read",
            EventKind::ChatMigrated => "chat.migrated",
            EventKind::MessageStatus => "message.status",
            EventKind::Reaction => "message.reaction",
            EventKind::Postback => "message.postback",
            EventKind::AttachmentReady => "attachment.ready",
            EventKind::ConversationAssigned => "conversation.assigned",
            EventKind::ConversationStatus => "conversation.status",
            EventKind::ConversationLabels => "conversation.labels",
            EventKind::NoteCreated => "note.created",
            EventKind::NoteDeleted => "note.deleted",
            EventKind::ConversationExported => "conversation.exported",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: u64,
    pub kind: EventKind,
    /// Accounts that can see this event (grants filter on it).
    pub accounts: Vec<u64>,
    /// Store scope of the chat: 0 for global chats, else the account.
    pub scope: u64,
    pub chat_id: i64,
    /// Store key of the message inside its chat, when the event is about one message.
    pub message_key: Option<i64>,
    /// The chat this one migrated from (ChatMigrated only).
    pub from_chat: Option<i64>,
    /// Unread count after the change (ChatRead, MessageCreated on incoming).
    pub unread: Option<u32>,
    /// Unix seconds at commit.
    pub at: i64,
}
