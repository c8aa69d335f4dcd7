//! Chats as the inbox sees them.

use serde::{Deserialize, Serialize};

/// The kind of a chat. It decides whether message IDs are global (supergroups and channels) or
/// counted per account (private chats and basic groups), which the store's dedup key follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChatKind {
    Private,
    Group,
    Supergroup,
    Channel,
}

impl ChatKind {
    /// True when Telegram numbers messages per account in this kind of chat.
    pub fn ids_per_account(self) -> bool {
        matches!(self, ChatKind::Private | ChatKind::Group)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChatKind::Private => "private",
            ChatKind::Group => "group",
            ChatKind::Supergroup => "supergroup",
            ChatKind::Channel => "channel",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// A chat as carried on a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chat {
    pub id: i64,
    pub kind: ChatKind,
    /// Group or channel title, or the other person's name in a private chat. Sealed at rest.
    pub title: Option<String>,
    pub username: Option<String>,
    /// A supergroup with forum topics.
    pub is_forum: bool,
}
