//! The store's redb tables, declared once, with the key and value types that own their byte
//! encoding. (The layers above declare their own the same way: `auth::tables`,
//! `search::tables`, `outbox::tables`, `attachments::tables`.)
//!
//! Keys are fixed-width big-endian, so byte order is numeric order and range scans walk a chat's
//! messages oldest to newest. Signed integers are stored with the sign bit flipped for the same
//! reason. Record values are [`Rec<T>`](super::codec::Rec): a versioned postcard record that
//! reads as a [`Stored`](super::codec::Stored) and decodes with `.get()`, because decoding can
//! fail on a damaged or future record, and that must be an error, not a panic inside redb's
//! `Value::from_bytes`. Their bytes and redb type name are those of the `&[u8]` the tables were
//! first declared with, so existing databases open unchanged.
//!
//! Names follow `key_value`.

use std::cmp::Ordering;

use redb::{Key, TableDefinition, TypeName, Value};

use super::codec::Rec;
use super::records::{
    AccountRecord, ActivityRecord, ChatRecord, ConversationRecord, LabelRecord, NoteRecord, StoredMessage,
};
use super::seal::Sealed;
use crate::model::EventRecord;

/// `name -> u64`: schema version, workspace sequence number.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The writer's scratch table when it probes for room after a full disk: written, committed and
/// dropped again, so it exists only between those two commits (never in a backup).
pub const SPACE_PROBE: TableDefinition<u64, &[u8]> = TableDefinition::new("space_probe");
/// Zeros written over free pages by [`super::Store::scrub_free_pages`], dropped when it ends.
pub const SCRUB_FILL: TableDefinition<u64, &[u8]> = TableDefinition::new("scrub_fill");
/// The scratch tables above: they hold nothing to keep (a backup leaves them out).
pub const SCRATCH: [&str; 2] = ["space_probe", "scrub_fill"];
/// `account -> AccountRecord`.
pub const ACCOUNT_RECORD: TableDefinition<u64, Rec<AccountRecord>> = TableDefinition::new("account_record");
/// `account -> unread incoming messages over all its chats`.
pub const ACCOUNT_UNREAD: TableDefinition<u64, u64> = TableDefinition::new("account_unread");
/// `account -> upstream position` (Telegram: next getUpdates offset), committed with the batch.
pub const ACCOUNT_POSITION: TableDefinition<u64, u64> = TableDefinition::new("account_position");
/// `account -> updates that could not be stored at all` (visible count, no content).
pub const ACCOUNT_REJECTED: TableDefinition<u64, u64> = TableDefinition::new("account_rejected");
/// `(scope, chat) -> ChatRecord`.
pub const CHAT_RECORD: TableDefinition<ChatKey, Rec<ChatRecord>> = TableDefinition::new("chat_record");
/// `(scope, chat, message) -> StoredMessage`.
pub const CHAT_MESSAGE: TableDefinition<MsgKey, Rec<StoredMessage>> = TableDefinition::new("chat_message");
/// `(scope, chat, message) -> sealed Reactions`: reactions on a message, sealed like its content
/// (open with `Sealer::open_record` under [`MsgKey::reactions_aad`]).
pub const MESSAGE_REACTIONS: TableDefinition<MsgKey, Rec<Sealed>> = TableDefinition::new("message_reactions");
/// `(scope, chat, user) -> (read_up_to, unread)`: one user's read position in a chat and the
/// incoming messages above it. A user without a row shares the chat's own counters (what
/// `ChatRecord` says: the box's read state before read state was per user, and everything
/// unread in a chat nobody has opened).
pub const CHAT_USER_READ: TableDefinition<(u64, i64, u64), (i64, u32)> =
    TableDefinition::new("chat_user_read");
/// `(scope, chat) -> ConversationRecord`: status, assignee and labels of a conversation.
pub const CHAT_CONVERSATION: TableDefinition<ChatKey, Rec<ConversationRecord>> =
    TableDefinition::new("chat_conversation");
/// `(scope, chat, seq) -> ActivityRecord`: a conversation's activity trail, keyed by the
/// sequence number of the event that announced each entry.
pub const CHAT_ACTIVITY: TableDefinition<(u64, i64, u64), Rec<ActivityRecord>> =
    TableDefinition::new("chat_activity");
/// `(scope, chat, note) -> NoteRecord`: private notes, sealed (see `ChatKey::note_aad`).
pub const CHAT_NOTE: TableDefinition<(u64, i64, u64), Rec<NoteRecord>> = TableDefinition::new("chat_note");
/// `label -> LabelRecord`.
pub const LABEL_RECORD: TableDefinition<u64, Rec<LabelRecord>> = TableDefinition::new("label_record");
/// `(account, sender, scope, chat) -> first date`: the chats where a Telegram user wrote to
/// the account (incoming messages; the contact panel's "other conversations"). Only
/// identifiers and a date, like the message keys; kept from the first message on (a store
/// older than this table gets it built from its messages on start), removed with the account on
/// release. Chats that went away are skipped when read.
pub const SENDER_CHAT: TableDefinition<(u64, i64, u64, i64), i64> = TableDefinition::new("sender_chat");
/// `seq -> EventRecord`: the workspace event log.
pub const SEQ_EVENT: TableDefinition<u64, Rec<EventRecord>> = TableDefinition::new("seq_event");

pub const META_SCHEMA_VERSION: &str = "schema_version";
pub const META_LAST_SEQ: &str = "last_seq";
pub const META_NEXT_ACCOUNT: &str = "next_account";
/// The next user ID; user IDs are never reused (`auth::users::add`).
pub const META_NEXT_USER: &str = "next_user";
/// The next note ID (box-wide).
pub const META_NEXT_NOTE: &str = "next_note";
/// The next label ID.
pub const META_NEXT_LABEL: &str = "next_label";
/// Set once [`SENDER_CHAT`] holds what the messages stored before it say.
pub const META_SENDER_CHAT_BUILT: &str = "sender_chat_built";

/// Current layout of the tables above. A release that changes it adds a migration step.
pub const SCHEMA_VERSION: u64 = 1;

fn flip(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn unflip(b: &[u8]) -> i64 {
    (u64::from_be_bytes(b.try_into().expect("8 bytes")) ^ (1 << 63)) as i64
}

/// A chat as the store knows it. `scope` is 0 for chats whose message IDs are global
/// (supergroups, channels) and the account ID for chats that number messages per account
/// (private chats, basic groups): that is what makes the dedup key of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatKey {
    pub scope: u64,
    pub chat: i64,
}

/// A message as the store knows it: its chat plus its key inside the chat (the Telegram message
/// ID, or for messages moved by a group migration, that ID shifted below zero so it sorts before
/// the supergroup's own messages and cannot collide with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MsgKey {
    pub scope: u64,
    pub chat: i64,
    pub msg: i64,
}

impl MsgKey {
    pub fn chat_key(&self) -> ChatKey {
        ChatKey {
            scope: self.scope,
            chat: self.chat,
        }
    }

    /// Associated data for the sealed content of this message.
    pub fn aad(&self) -> [u8; 27] {
        let mut out = [0u8; 27];
        out[..3].copy_from_slice(b"msg");
        out[3..].copy_from_slice(&<MsgKey as Value>::as_bytes(self));
        out
    }

    /// Associated data for the sealed reactions of this message.
    pub fn reactions_aad(&self) -> [u8; 27] {
        let mut out = [0u8; 27];
        out[..3].copy_from_slice(b"rct");
        out[3..].copy_from_slice(&<MsgKey as Value>::as_bytes(self));
        out
    }
}

impl ChatKey {
    pub fn msg(&self, msg: i64) -> MsgKey {
        MsgKey {
            scope: self.scope,
            chat: self.chat,
            msg,
        }
    }

    /// Associated data for the sealed body of note `note` in this chat.
    pub fn note_aad(&self, note: u64) -> [u8; 28] {
        let mut out = [0u8; 28];
        out[..4].copy_from_slice(b"note");
        out[4..20].copy_from_slice(&<ChatKey as Value>::as_bytes(self));
        out[20..].copy_from_slice(&note.to_be_bytes());
        out
    }

    /// Associated data for the sealed metadata (title, username) of this chat.
    pub fn aad(&self) -> [u8; 20] {
        let mut out = [0u8; 20];
        out[..4].copy_from_slice(b"chat");
        out[4..].copy_from_slice(&<ChatKey as Value>::as_bytes(self));
        out
    }
}

/// Offset that moves a migrated basic group's message IDs below every supergroup ID.
pub const MIGRATED_SHIFT: i64 = 1 << 40;

macro_rules! fixed_key {
    ($ty:ident, $width:expr, $name:expr, |$v:ident| $enc:expr, |$b:ident| $dec:expr) => {
        impl Value for $ty {
            type SelfType<'a> = $ty;
            type AsBytes<'a> = [u8; $width];

            fn fixed_width() -> Option<usize> {
                Some($width)
            }

            fn from_bytes<'a>($b: &'a [u8]) -> $ty
            where
                Self: 'a,
            {
                $dec
            }

            fn as_bytes<'a, 'b: 'a>($v: &'a $ty) -> [u8; $width]
            where
                Self: 'b,
            {
                $enc
            }

            fn type_name() -> TypeName {
                TypeName::new($name)
            }
        }

        impl Key for $ty {
            fn compare(a: &[u8], b: &[u8]) -> Ordering {
                a.cmp(b)
            }
        }
    };
}

fixed_key!(
    ChatKey,
    16,
    "lanbox::ChatKey",
    |v| {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&v.scope.to_be_bytes());
        out[8..].copy_from_slice(&flip(v.chat));
        out
    },
    |b| ChatKey {
        scope: u64::from_be_bytes(b[..8].try_into().expect("fixed width")),
        chat: unflip(&b[8..16]),
    }
);

fixed_key!(
    MsgKey,
    24,
    "lanbox::MsgKey",
    |v| {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&v.scope.to_be_bytes());
        out[8..16].copy_from_slice(&flip(v.chat));
        out[16..].copy_from_slice(&flip(v.msg));
        out
    },
    |b| MsgKey {
        scope: u64::from_be_bytes(b[..8].try_into().expect("fixed width")),
        chat: unflip(&b[8..16]),
        msg: unflip(&b[16..24]),
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_numeric_order() {
        let keys = [
            MsgKey {
                scope: 0,
                chat: -1001,
                msg: -5,
            },
            MsgKey {
                scope: 0,
                chat: -1001,
                msg: 3,
            },
            MsgKey {
                scope: 0,
                chat: 5,
                msg: i64::MIN,
            },
            MsgKey {
                scope: 1,
                chat: i64::MIN,
                msg: 0,
            },
        ];
        for w in keys.windows(2) {
            let (a, b) = (MsgKey::as_bytes(&w[0]), MsgKey::as_bytes(&w[1]));
            assert_eq!(a.cmp(&b), Ordering::Less, "{:?} < {:?}", w[0], w[1]);
            assert_eq!(MsgKey::from_bytes(&a), w[0]);
        }
    }
}
