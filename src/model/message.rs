//! The normalised message.

use serde::{Deserialize, Serialize};

use super::{AccountId, Chat};

/// One message in one chat, as seen by one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub account: AccountId,
    pub chat: Chat,
    /// Telegram's message ID (per account in private chats and basic groups, global otherwise).
    pub message_id: i64,
    /// Forum topic (`message_thread_id` of a topic message).
    pub topic: Option<i64>,
    pub direction: Direction,
    /// Unix seconds.
    pub date: i64,
    /// Unix seconds of the last edit; `None` until edited.
    pub edited_at: Option<i64>,
    pub status: Status,
    pub content: MessageContent,
}

/// Everything in a message that is sealed at rest: who wrote it (names), what it says, and what
/// it quotes or forwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageContent {
    pub sender: Sender,
    pub reply_to: Option<ReplyTo>,
    pub forward: Option<ForwardOrigin>,
    /// Album: messages sharing this ID are shown together.
    pub media_group: Option<String>,
    pub body: Body,
    /// Problems met while normalising (e.g. an entity with an impossible offset was dropped).
    /// Never contains message text.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Incoming,
    Outgoing,
}

/// Delivery status, after the seed's `status` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// An incoming message, stored.
    Delivered,
    /// Outgoing, waiting in the outbox.
    Queued,
    /// Outgoing, accepted by Telegram.
    Sent,
    /// Outgoing, given up on; the reason never contains message text.
    Failed(String),
    /// Outgoing, and the other side has read it (a user account's read receipt; Telegram
    /// tells bots nothing of the kind). Last, so stored records keep their encoding.
    Read,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRef {
    pub id: i64,
    pub is_bot: bool,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
}

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Sender {
    User(UserRef),
    /// Sent on behalf of a chat (a channel post, or a linked channel).
    Chat {
        id: i64,
        title: Option<String>,
        username: Option<String>,
        signature: Option<String>,
    },
    /// An anonymous group administrator (Telegram sends `GroupAnonymousBot` plus `sender_chat`
    /// equal to the group itself).
    AnonymousAdmin {
        chat_id: i64,
        signature: Option<String>,
    },
    /// Telegram sent no sender at all (e.g. some service messages).
    Unknown,
}

impl Sender {
    /// A stable numeric identity for filters: user ID, or chat ID for chats.
    pub fn id(&self) -> i64 {
        match self {
            Sender::User(u) => u.id,
            Sender::Chat { id, .. } => *id,
            Sender::AnonymousAdmin { chat_id, .. } => *chat_id,
            Sender::Unknown => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyTo {
    pub message_id: i64,
    /// Set when the replied-to message is in another chat (`external_reply`).
    pub chat_id: Option<i64>,
    /// The quoted part, when the sender quoted only part of the message.
    pub quote: Option<String>,
}

/// Where a forwarded message came from (`forward_origin`, or the legacy `forward_*` fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ForwardOrigin {
    User {
        user: UserRef,
        date: i64,
    },
    HiddenUser {
        name: String,
        date: i64,
    },
    Chat {
        chat_id: i64,
        title: Option<String>,
        signature: Option<String>,
        date: i64,
    },
    Channel {
        chat_id: i64,
        title: Option<String>,
        message_id: i64,
        signature: Option<String>,
        date: i64,
    },
}

/// Text with formatting. Entity offsets are UTF-8 byte offsets into `text`, on char boundaries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub text: String,
    pub entities: Vec<Entity>,
}

impl Text {
    pub fn plain(text: impl Into<String>) -> Self {
        Text {
            text: text.into(),
            entities: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    /// Telegram's entity type name: `bold`, `url`, `text_link`, `mention`, `code`, ...
    pub kind: String,
    /// Byte range in the UTF-8 text.
    pub start: u32,
    pub end: u32,
    pub url: Option<String>,
    pub user_id: Option<i64>,
    pub language: Option<String>,
    pub custom_emoji_id: Option<String>,
}

/// A file held by the channel, fetched later by the media worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Channel handle used to download (Telegram `file_id`).
    pub file_id: String,
    /// Stable identity across bots (Telegram `file_unique_id`), may be empty on old captures.
    pub file_unique_id: String,
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MediaKind {
    Image,
    File,
    Video,
    Audio,
    Voice,
    VideoNote,
    Sticker,
    Animation,
}

/// A media message: the main file, an optional thumbnail (the smallest photo size for images),
/// and a caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub kind: MediaKind,
    pub file: Attachment,
    pub thumbnail: Option<Attachment>,
    pub caption: Option<Text>,
    /// Audio title/performer, sticker emoji and set name: labels shown with the file.
    pub title: Option<String>,
    pub performer: Option<String>,
    pub emoji: Option<String>,
    pub spoiler: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    pub accuracy_m: Option<f64>,
    pub live_period_s: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PollOption {
    pub text: String,
    pub votes: u32,
}

/// Group and chat happenings that are messages in Telegram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServiceEvent {
    MembersJoined(Vec<UserRef>),
    MemberLeft(UserRef),
    Pinned {
        message_id: i64,
    },
    TopicCreated {
        name: String,
        icon_color: Option<u32>,
    },
    TopicEdited {
        name: Option<String>,
    },
    TopicClosed,
    TopicReopened,
    /// This basic group became the supergroup `to`.
    MigratedTo {
        to: i64,
    },
    /// This supergroup was the basic group `from`.
    MigratedFrom {
        from: i64,
    },
    TitleChanged {
        title: String,
    },
    ChatCreated,
    /// Any other service message, by Telegram's field name (`video_chat_started`, ...).
    Other(String),
}

/// What a message says. One variant per kind the seeds name and Telegram sends.
///
/// `Media` is much larger than the other variants; it is not boxed because messages are
/// handled one at a time (never in large arrays of `Body`), and most of what lanbox stores is
/// media or text anyway, so a box would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Body {
    Text(Text),
    Media(Media),
    Location(Location),
    Venue {
        location: Location,
        title: String,
        address: String,
    },
    Contact {
        phone: String,
        first_name: String,
        last_name: Option<String>,
        user_id: Option<i64>,
        vcard: Option<String>,
    },
    Poll {
        question: String,
        options: Vec<PollOption>,
        total_voters: u32,
        anonymous: bool,
        quiz: bool,
        multiple_answers: bool,
        closed: bool,
    },
    Dice {
        emoji: String,
        value: u32,
    },
    /// A reply produced by a button (Telegram `web_app_data`): the text the button showed and
    /// the data it carried.
    InteractiveReply {
        text: String,
        payload: String,
    },
    /// A button press on one of our messages (Telegram `callback_query`).
    Postback {
        payload: String,
        /// The message carrying the button, when Telegram says which.
        origin_message_id: Option<i64>,
    },
    Service(ServiceEvent),
    /// Login-code redaction placeholder; the original content was never stored.
    Redacted,
    /// Something lanbox does not understand (yet). Keeps the update type name so nothing is
    /// silently dropped; `reason` never contains message text.
    Unsupported {
        update_type: String,
        reason: String,
    },
}

/// Flat body kind, for filters and the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BodyKind {
    Text,
    Image,
    File,
    Video,
    Audio,
    Voice,
    VideoNote,
    Sticker,
    Animation,
    Location,
    Venue,
    Contact,
    Poll,
    Dice,
    InteractiveReply,
    Postback,
    Service,
    Redacted,
    Unsupported,
}

impl BodyKind {
    /// Every kind, in declaration order (the search index's kind codes are positions here).
    pub const ALL: [BodyKind; 19] = [
        BodyKind::Text,
        BodyKind::Image,
        BodyKind::File,
        BodyKind::Video,
        BodyKind::Audio,
        BodyKind::Voice,
        BodyKind::VideoNote,
        BodyKind::Sticker,
        BodyKind::Animation,
        BodyKind::Location,
        BodyKind::Venue,
        BodyKind::Contact,
        BodyKind::Poll,
        BodyKind::Dice,
        BodyKind::InteractiveReply,
        BodyKind::Postback,
        BodyKind::Service,
        BodyKind::Redacted,
        BodyKind::Unsupported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::Text => "text",
            BodyKind::Image => "image",
            BodyKind::File => "file",
            BodyKind::Video => "video",
            BodyKind::Audio => "audio",
            BodyKind::Voice => "voice",
            BodyKind::VideoNote => "video_note",
            BodyKind::Sticker => "sticker",
            BodyKind::Animation => "animation",
            BodyKind::Location => "location",
            BodyKind::Venue => "venue",
            BodyKind::Contact => "contact",
            BodyKind::Poll => "poll",
            BodyKind::Dice => "dice",
            BodyKind::InteractiveReply => "interactive_reply",
            BodyKind::Postback => "postback",
            BodyKind::Service => "service",
            BodyKind::Redacted => "redacted",
            BodyKind::Unsupported => "unsupported",
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl Body {
    pub fn kind(&self) -> BodyKind {
        match self {
            Body::Text(_) => BodyKind::Text,
            Body::Media(m) => match m.kind {
                MediaKind::Image => BodyKind::Image,
                MediaKind::File => BodyKind::File,
                MediaKind::Video => BodyKind::Video,
                MediaKind::Audio => BodyKind::Audio,
                MediaKind::Voice => BodyKind::Voice,
                MediaKind::VideoNote => BodyKind::VideoNote,
                MediaKind::Sticker => BodyKind::Sticker,
                MediaKind::Animation => BodyKind::Animation,
            },
            Body::Location(_) => BodyKind::Location,
            Body::Venue { .. } => BodyKind::Venue,
            Body::Contact { .. } => BodyKind::Contact,
            Body::Poll { .. } => BodyKind::Poll,
            Body::Dice { .. } => BodyKind::Dice,
            Body::InteractiveReply { .. } => BodyKind::InteractiveReply,
            Body::Postback { .. } => BodyKind::Postback,
            Body::Service(_) => BodyKind::Service,
            Body::Redacted => BodyKind::Redacted,
            Body::Unsupported { .. } => BodyKind::Unsupported,
        }
    }

    /// The searchable words of the body: text, caption, file name, contact and place names.
    /// Used by the index hook; never logged.
    pub fn searchable_text(&self) -> Vec<&str> {
        let mut out = Vec::new();
        match self {
            Body::Text(t) => out.push(t.text.as_str()),
            Body::Media(m) => {
                if let Some(c) = &m.caption {
                    out.push(c.text.as_str());
                }
                if let Some(n) = &m.file.file_name {
                    out.push(n.as_str());
                }
                for s in [&m.title, &m.performer].into_iter().flatten() {
                    out.push(s.as_str());
                }
            }
            Body::Venue { title, address, .. } => {
                out.push(title.as_str());
                out.push(address.as_str());
            }
            Body::Contact {
                first_name,
                last_name,
                phone,
                ..
            } => {
                out.push(first_name.as_str());
                if let Some(l) = last_name {
                    out.push(l.as_str());
                }
                out.push(phone.as_str());
            }
            Body::Poll {
                question, options, ..
            } => {
                out.push(question.as_str());
                out.extend(options.iter().map(|o| o.text.as_str()));
            }
            Body::InteractiveReply { text, .. } => out.push(text.as_str()),
            Body::Service(ServiceEvent::TopicCreated { name, .. }) => out.push(name.as_str()),
            Body::Service(ServiceEvent::TitleChanged { title }) => out.push(title.as_str()),
            _ => {}
        }
        out
    }
}
