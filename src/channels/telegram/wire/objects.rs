//! The smaller Bot API objects: chats, users, entities, places, polls, forwards, replies, button
//! presses, business deletions and reactions.

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::de::{null_default, opt_string_or_number, string_or_number};

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Chat {
    pub id: i64,
    /// `private`, `group`, `supergroup` or `channel` (kept as text: an unknown kind must not
    /// fail the whole update).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub title: Option<String>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub is_forum: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct User {
    pub id: i64,
    /// Missing before Bot API 3.4.
    #[serde(default, deserialize_with = "null_default")]
    pub is_bot: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageEntity {
    #[serde(rename = "type", default, deserialize_with = "null_default")]
    pub kind: String,
    /// UTF-16 code units. Signed on the wire so a negative value is refused by the mapper, not
    /// by the parser.
    pub offset: i64,
    pub length: i64,
    pub url: Option<String>,
    pub user: Option<User>,
    pub language: Option<String>,
    pub custom_emoji_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub horizontal_accuracy: Option<f64>,
    pub live_period: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Venue {
    pub location: Location,
    #[serde(default, deserialize_with = "null_default")]
    pub title: String,
    #[serde(default, deserialize_with = "null_default")]
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Contact {
    #[serde(default, deserialize_with = "null_default")]
    pub phone_number: String,
    #[serde(default, deserialize_with = "null_default")]
    pub first_name: String,
    pub last_name: Option<String>,
    pub user_id: Option<i64>,
    pub vcard: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PollOption {
    #[serde(default, deserialize_with = "null_default")]
    pub text: String,
    #[serde(default, deserialize_with = "null_default")]
    pub voter_count: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Poll {
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub question: String,
    #[serde(default, deserialize_with = "null_default")]
    pub options: Vec<PollOption>,
    #[serde(default, deserialize_with = "null_default")]
    pub total_voter_count: u32,
    #[serde(default, deserialize_with = "null_default")]
    pub is_closed: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub is_anonymous: bool,
    /// `regular` or `quiz`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub allows_multiple_answers: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dice {
    #[serde(default, deserialize_with = "null_default")]
    pub emoji: String,
    #[serde(default, deserialize_with = "null_default")]
    pub value: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WebAppData {
    #[serde(default, deserialize_with = "null_default")]
    pub data: String,
    #[serde(default, deserialize_with = "null_default")]
    pub button_text: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ForumTopicCreated {
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    pub icon_color: Option<u32>,
    pub icon_custom_emoji_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ForumTopicEdited {
    pub name: Option<String>,
    pub icon_custom_emoji_id: Option<String>,
}

/// `forward_origin` (Bot API 7.0+). An origin type added later reads as `Unknown`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageOrigin {
    User {
        #[serde(default, deserialize_with = "null_default")]
        date: i64,
        sender_user: User,
    },
    HiddenUser {
        #[serde(default, deserialize_with = "null_default")]
        date: i64,
        #[serde(default, deserialize_with = "null_default")]
        sender_user_name: String,
    },
    Chat {
        #[serde(default, deserialize_with = "null_default")]
        date: i64,
        sender_chat: Chat,
        author_signature: Option<String>,
    },
    Channel {
        #[serde(default, deserialize_with = "null_default")]
        date: i64,
        chat: Chat,
        message_id: i64,
        author_signature: Option<String>,
    },
    #[serde(other)]
    Unknown,
}

/// A message named by another object (`reply_to_message`, `pinned_message`,
/// `callback_query.message`). Deliberately shallow: only what the mapper uses is read and the
/// rest is skipped, so a message nested in a message nested in a message costs no recursion.
/// Also covers `InaccessibleMessage` (date 0).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageRef {
    pub message_id: i64,
    pub chat: Option<Chat>,
    #[serde(default, deserialize_with = "null_default")]
    pub date: i64,
    pub message_thread_id: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub is_topic_message: bool,
    /// Present when the replied-to message is the one that opened a forum topic.
    pub forum_topic_created: Option<IgnoredAny>,
}

/// `external_reply`: a reply to a message in another chat or topic.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExternalReplyInfo {
    pub chat: Option<Chat>,
    pub message_id: Option<i64>,
}

/// `quote`: the part of the replied-to message the sender quoted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TextQuote {
    #[serde(default, deserialize_with = "null_default")]
    pub text: String,
    pub position: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallbackQuery {
    #[serde(deserialize_with = "string_or_number")]
    pub id: String,
    pub from: Option<User>,
    pub message: Option<MessageRef>,
    pub inline_message_id: Option<String>,
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub chat_instance: Option<String>,
    pub data: Option<String>,
    pub game_short_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BusinessMessagesDeleted {
    #[serde(default, deserialize_with = "null_default")]
    pub business_connection_id: String,
    pub chat: Chat,
    #[serde(default, deserialize_with = "null_default")]
    pub message_ids: Vec<i64>,
}

/// A reaction type. Types added later read as `Unknown`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ReactionType {
    Emoji {
        #[serde(default, deserialize_with = "null_default")]
        emoji: String,
    },
    CustomEmoji {
        #[serde(default, deserialize_with = "null_default")]
        custom_emoji_id: String,
    },
    Paid,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageReactionUpdated {
    pub chat: Chat,
    pub message_id: i64,
    pub user: Option<User>,
    pub actor_chat: Option<Chat>,
    #[serde(default, deserialize_with = "null_default")]
    pub date: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub old_reaction: Vec<ReactionType>,
    #[serde(default, deserialize_with = "null_default")]
    pub new_reaction: Vec<ReactionType>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReactionCount {
    #[serde(rename = "type")]
    pub kind: ReactionType,
    #[serde(default, deserialize_with = "null_default")]
    pub total_count: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MessageReactionCountUpdated {
    pub chat: Chat,
    pub message_id: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub date: i64,
    #[serde(default, deserialize_with = "null_default")]
    pub reactions: Vec<ReactionCount>,
}
