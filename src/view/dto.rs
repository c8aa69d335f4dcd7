//! The JSON shapes of the API (REST and WebSocket), derived from the model but owned here, so
//! the model can change without breaking clients. `openapi.json` documents every field.
//!
//! Conventions:
//! - A chat is named by a string `"{scope}:{chat}"` ([`chat_id`]): scope 0 for supergroups and
//!   channels (one conversation for every account in them), the account ID for private chats
//!   and basic groups (each account has its own).
//! - A message is named by its chat and its `id`, the store key inside the chat: Telegram's
//!   message ID, except for messages moved over from a basic group that became a supergroup
//!   (`telegram_id` keeps Telegram's number). Keys sort in chat order and serve as cursors.
//! - Enums are lowercase snake-case strings; times are Unix seconds.
//! - Text offsets (`entities`, snippet `marks`) count UTF-16 code units, like JavaScript strings
//!   and Telegram itself.
//! - No internal handles leave: files are described, not addressed (no Telegram `file_id`).

use serde::Serialize;

use crate::model::*;
use crate::store::{ChatKey, MsgKey};

pub fn chat_id(key: ChatKey) -> String {
    format!("{}:{}", key.scope, key.chat)
}

pub fn parse_chat_id(s: &str) -> Option<ChatKey> {
    let (scope, chat) = s.split_once(':')?;
    Some(ChatKey {
        scope: scope.parse().ok()?,
        chat: chat.parse().ok()?,
    })
}

/// UTF-16 length of `text[..byte]` (the byte offset is clamped to a character boundary).
pub fn utf16_at(text: &str, byte: usize) -> u32 {
    let mut b = byte.min(text.len());
    while !text.is_char_boundary(b) {
        b -= 1;
    }
    text[..b].encode_utf16().count() as u32
}

#[derive(Debug, Clone, Serialize)]
pub struct EntityDto {
    pub kind: String,
    pub offset: u32,
    pub length: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_emoji_id: Option<String>,
}

fn entities(t: &Text) -> Vec<EntityDto> {
    t.entities
        .iter()
        .map(|e| {
            let start = utf16_at(&t.text, e.start as usize);
            EntityDto {
                kind: e.kind.clone(),
                offset: start,
                length: utf16_at(&t.text, e.end as usize).saturating_sub(start),
                url: e.url.clone(),
                user_id: e.user_id,
                language: e.language.clone(),
                custom_emoji_id: e.custom_emoji_id.clone(),
            }
        })
        .collect()
}

/// The lanbox user behind an outgoing message.
#[derive(Debug, Clone, Serialize)]
pub struct SentByDto {
    /// The user's ID (compare with `GET /api/v1/me` to tell your own messages).
    pub user: u64,
    /// Their user name; `null` once the user has been deleted.
    pub name: Option<String>,
    /// The API token a message was sent with (absent when sent from a browser session, and on
    /// everything that is not a sent message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenRefDto>,
}

/// An API token as a message names it: its `id` (as `GET /api/v1/tokens` lists it) and label,
/// `null` once the token was revoked.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRefDto {
    pub id: String,
    pub label: Option<String>,
}

/// Who wrote a message, as Telegram says.
#[derive(Debug, Clone, Serialize)]
pub struct SenderDto {
    /// `user`, `chat`, `anonymous_admin` or `unknown`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: i64,
    pub name: Option<String>,
    pub username: Option<String>,
    pub is_bot: bool,
    pub signature: Option<String>,
}

fn user_name(u: &UserRef) -> String {
    match &u.last_name {
        Some(l) => format!("{} {l}", u.first_name),
        None => u.first_name.clone(),
    }
}

impl From<&Sender> for SenderDto {
    fn from(s: &Sender) -> Self {
        let blank = |kind, id| SenderDto {
            kind,
            id,
            name: None,
            username: None,
            is_bot: false,
            signature: None,
        };
        match s {
            Sender::User(u) => SenderDto {
                name: Some(user_name(u)),
                username: u.username.clone(),
                is_bot: u.is_bot,
                ..blank("user", u.id)
            },
            Sender::Chat {
                id,
                title,
                username,
                signature,
            } => SenderDto {
                name: title.clone(),
                username: username.clone(),
                signature: signature.clone(),
                ..blank("chat", *id)
            },
            Sender::AnonymousAdmin { chat_id, signature } => SenderDto {
                signature: signature.clone(),
                ..blank("anonymous_admin", *chat_id)
            },
            Sender::Unknown => blank("unknown", 0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ReplyDto {
    pub message_id: i64,
    pub chat_id: Option<i64>,
    pub quote: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForwardDto {
    /// `user`, `hidden_user`, `chat` or `channel`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub name: Option<String>,
    pub chat_id: Option<i64>,
    pub message_id: Option<i64>,
    pub date: i64,
}

impl From<&ForwardOrigin> for ForwardDto {
    fn from(f: &ForwardOrigin) -> Self {
        let (kind, name, chat_id, message_id, date) = match f {
            ForwardOrigin::User { user, date } => ("user", Some(user_name(user)), None, None, *date),
            ForwardOrigin::HiddenUser { name, date } => {
                ("hidden_user", Some(name.clone()), None, None, *date)
            }
            ForwardOrigin::Chat {
                chat_id, title, date, ..
            } => ("chat", title.clone(), Some(*chat_id), None, *date),
            ForwardOrigin::Channel {
                chat_id,
                title,
                message_id,
                date,
                ..
            } => ("channel", title.clone(), Some(*chat_id), Some(*message_id), *date),
        };
        ForwardDto {
            kind,
            name,
            chat_id,
            message_id,
            date,
        }
    }
}

/// A file attached to a message, described (fetching it is the media service's job).
#[derive(Debug, Clone, Serialize)]
pub struct MediaDto {
    pub file_name: Option<String>,
    pub mime_type: Option<String>,
    pub size: Option<u64>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<u32>,
    pub has_thumbnail: bool,
    pub title: Option<String>,
    pub performer: Option<String>,
    pub emoji: Option<String>,
    pub spoiler: bool,
}

/// Kind-specific details of a message body; which field is set follows `kind`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DetailsDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub venue: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dice: Option<serde_json::Value>,
    /// Button data (`interactive_reply`, `postback`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<serde_json::Value>,
    /// Why lanbox could not show an `unsupported` message (never message text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One message, as every route and event shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MessageDto {
    pub id: i64,
    pub chat: String,
    pub telegram_id: i64,
    /// The caller's accounts that received it.
    pub accounts: Vec<u64>,
    pub direction: &'static str,
    pub date: i64,
    pub edited_at: Option<i64>,
    /// `delivered`, `queued`, `sent` or `failed`.
    pub status: &'static str,
    pub status_reason: Option<String>,
    pub topic: Option<i64>,
    pub sender: SenderDto,
    /// The lanbox user who sent an outgoing message (through the browser or their API token);
    /// `null` for incoming messages and for messages sent from a Telegram app.
    pub sent_by: Option<SentByDto>,
    pub reply_to: Option<ReplyDto>,
    pub forward: Option<ForwardDto>,
    pub media_group: Option<String>,
    pub kind: &'static str,
    /// The text, caption or other readable line of the message; `null` when it has none.
    pub text: Option<String>,
    pub entities: Vec<EntityDto>,
    /// Reactions with their counts, most frequent first.
    pub reactions: Vec<ReactionDto>,
    #[serde(flatten)]
    pub details: DetailsDto,
}

/// One reaction and how many chose it. `type` is `emoji`, `custom_emoji` or `paid`, as in the
/// Bot API's ReactionType.
#[derive(Debug, Clone, Serialize)]
pub struct ReactionDto {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_emoji_id: Option<String>,
    pub count: u32,
}

impl From<&ReactionTally> for ReactionDto {
    fn from(t: &ReactionTally) -> ReactionDto {
        let (kind, emoji, custom_emoji_id) = match &t.reaction {
            Reaction::Emoji(e) => ("emoji", Some(e.clone()), None),
            Reaction::Custom(id) => ("custom_emoji", None, Some(id.clone())),
            Reaction::Paid => ("paid", None, None),
        };
        ReactionDto {
            kind,
            emoji,
            custom_emoji_id,
            count: t.count,
        }
    }
}

pub fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Incoming => "incoming",
        Direction::Outgoing => "outgoing",
    }
}

pub fn status_parts(s: &Status) -> (&'static str, Option<String>) {
    match s {
        Status::Delivered => ("delivered", None),
        Status::Queued => ("queued", None),
        Status::Sent => ("sent", None),
        Status::Failed(r) => ("failed", Some(r.clone())),
        Status::Read => ("read", None),
    }
}

fn service_json(e: &ServiceEvent) -> serde_json::Value {
    use serde_json::json;
    match e {
        ServiceEvent::MembersJoined(us) => {
            json!({"event": "members_joined", "users": us.iter().map(|u| json!({"id": u.id, "name": user_name(u)})).collect::<Vec<_>>()})
        }
        ServiceEvent::MemberLeft(u) => {
            json!({"event": "member_left", "users": [{"id": u.id, "name": user_name(u)}]})
        }
        ServiceEvent::Pinned { message_id } => json!({"event": "pinned", "message_id": message_id}),
        ServiceEvent::TopicCreated { name, .. } => json!({"event": "topic_created", "name": name}),
        ServiceEvent::TopicEdited { name } => json!({"event": "topic_edited", "name": name}),
        ServiceEvent::TopicClosed => json!({"event": "topic_closed"}),
        ServiceEvent::TopicReopened => json!({"event": "topic_reopened"}),
        ServiceEvent::MigratedTo { to } => json!({"event": "migrated_to", "chat_id": to}),
        ServiceEvent::MigratedFrom { from } => json!({"event": "migrated_from", "chat_id": from}),
        ServiceEvent::TitleChanged { title } => json!({"event": "title_changed", "name": title}),
        ServiceEvent::ChatCreated => json!({"event": "chat_created"}),
        ServiceEvent::Other(name) => json!({"event": name}),
    }
}

fn location_json(l: &Location) -> serde_json::Value {
    serde_json::json!({"latitude": l.latitude, "longitude": l.longitude, "accuracy_m": l.accuracy_m, "live_period_s": l.live_period_s})
}

/// The readable line, its entities and the kind-specific details of a body.
/// Takes the body apart (by value: its strings move into the answer, not copied).
fn body_parts(body: Body) -> (Option<String>, Vec<EntityDto>, DetailsDto) {
    use serde_json::json;
    let mut d = DetailsDto::default();
    let (text, ents) = match body {
        Body::Text(t) => {
            let ents = entities(&t);
            (Some(t.text), ents)
        }
        Body::Media(m) => {
            d.media = Some(MediaDto {
                file_name: m.file.file_name,
                mime_type: m.file.mime_type,
                size: m.file.size,
                width: m.file.width,
                height: m.file.height,
                duration: m.file.duration,
                has_thumbnail: m.thumbnail.is_some(),
                title: m.title,
                performer: m.performer,
                emoji: m.emoji,
                spoiler: m.spoiler,
            });
            match m.caption {
                Some(c) => {
                    let ents = entities(&c);
                    (Some(c.text), ents)
                }
                None => (None, Vec::new()),
            }
        }
        Body::Location(l) => {
            d.location = Some(location_json(&l));
            (None, Vec::new())
        }
        Body::Venue {
            location,
            title,
            address,
        } => {
            d.venue = Some(json!({"title": title, "address": address, "location": location_json(&location)}));
            (Some(title), Vec::new())
        }
        Body::Contact {
            phone,
            first_name,
            last_name,
            user_id,
            vcard,
        } => {
            d.contact = Some(
                json!({"phone": phone, "first_name": first_name, "last_name": last_name, "user_id": user_id, "vcard": vcard}),
            );
            (None, Vec::new())
        }
        Body::Poll {
            question,
            options,
            total_voters,
            anonymous,
            quiz,
            multiple_answers,
            closed,
        } => {
            d.poll = Some(json!({
                "options": options.iter().map(|o| json!({"text": o.text, "votes": o.votes})).collect::<Vec<_>>(),
                "total_voters": total_voters, "anonymous": anonymous, "quiz": quiz,
                "multiple_answers": multiple_answers, "closed": closed,
            }));
            (Some(question), Vec::new())
        }
        Body::Dice { emoji, value } => {
            d.dice = Some(json!({"emoji": emoji, "value": value}));
            (None, Vec::new())
        }
        Body::InteractiveReply { text, payload } => {
            d.payload = Some(payload);
            (Some(text), Vec::new())
        }
        Body::Postback { payload, .. } => {
            d.payload = Some(payload);
            (None, Vec::new())
        }
        Body::Service(e) => {
            d.service = Some(service_json(&e));
            (None, Vec::new())
        }
        Body::Redacted => (Some(REDACTED_PLACEHOLDER.to_string()), Vec::new()),
        Body::Unsupported { update_type, reason } => {
            d.reason = Some(format!("{update_type}: {reason}"));
            (None, Vec::new())
        }
    };
    (text, ents, d)
}

impl MessageDto {
    /// `accounts` are the caller's accounts that received the message (already filtered).
    pub fn new(key: MsgKey, m: &Message, accounts: Vec<u64>) -> MessageDto {
        MessageDto::from_message(key, m.clone(), accounts)
    }

    /// As [`MessageDto::new`], taking the message apart instead of copying its text.
    pub fn from_message(key: MsgKey, m: Message, accounts: Vec<u64>) -> MessageDto {
        let (status, status_reason) = status_parts(&m.status);
        let kind = m.content.body.kind().as_str();
        let content = m.content;
        let (text, entities, details) = body_parts(content.body);
        MessageDto {
            id: key.msg,
            chat: chat_id(key.chat_key()),
            telegram_id: m.message_id,
            accounts,
            direction: direction_str(m.direction),
            date: m.date,
            edited_at: m.edited_at,
            status,
            status_reason,
            topic: m.topic,
            sender: SenderDto::from(&content.sender),
            sent_by: None,
            reply_to: content.reply_to.map(|r| ReplyDto {
                message_id: r.message_id,
                chat_id: r.chat_id,
                quote: r.quote,
            }),
            forward: content.forward.as_ref().map(ForwardDto::from),
            media_group: content.media_group,
            kind,
            text,
            entities,
            reactions: Vec::new(),
            details,
        }
    }

    pub fn with_sent_by(mut self, by: Option<SentByDto>) -> MessageDto {
        self.sent_by = by;
        self
    }

    pub fn with_reactions(mut self, r: &Reactions) -> MessageDto {
        self.reactions = r.tally().iter().map(ReactionDto::from).collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_ids_round_trip() {
        for key in [
            ChatKey {
                scope: 0,
                chat: -100123,
            },
            ChatKey { scope: 7, chat: 555 },
        ] {
            assert_eq!(parse_chat_id(&chat_id(key)), Some(key));
        }
        assert_eq!(parse_chat_id("x:1"), None);
        assert_eq!(parse_chat_id("1"), None);
    }

    #[test]
    fn offsets_are_utf16() {
        let t = "👋 hi";
        assert_eq!(utf16_at(t, 0), 0);
        assert_eq!(utf16_at(t, 4), 2, "the emoji is two UTF-16 units");
        assert_eq!(utf16_at(t, 2), 0, "inside a character: clamped back");
        assert_eq!(utf16_at(t, 99), 5);
    }
}
