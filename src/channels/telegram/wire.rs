//! The Bot API wire format: `Update` and the objects inside it, as Telegram sends them.
//!
//! Parsing is tolerant: unknown fields are ignored, explicit `null` is read as "absent" wherever a
//! field is optional, identifiers that some sources write as numbers are read as text, and old
//! field names (`thumb`, the `forward_*` fields) are read next to the current ones. What the
//! mapper does not use is skipped, not stored.
//!
//! Two entry points:
//! - [`split_updates`] cuts a whole `getUpdates` response into one byte slice per update with a
//!   shallow scanner ([`scan`]), so a malformed or absurdly nested element fails alone and the
//!   updates around it still go through;
//! - [`parse_update`] parses one update. Its [`WireError`] names fields, positions and JSON
//!   kinds, never payload content.

mod de;
mod error;
mod media;
mod objects;
pub mod scan;

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::Deserialize;
use serde::de::IgnoredAny;

pub use error::WireError;
pub use media::{Animation, Audio, Document, PhotoSize, Sticker, Video, VideoNote, Voice};
pub use objects::{
    BusinessMessagesDeleted, CallbackQuery, Chat, Contact, Dice, ExternalReplyInfo, ForumTopicCreated,
    ForumTopicEdited, Location, MessageEntity, MessageOrigin, MessageReactionCountUpdated,
    MessageReactionUpdated, MessageRef, Poll, PollOption, ReactionCount, ReactionType, TextQuote, User,
    Venue, WebAppData,
};

use de::{null_default, opt_string_or_number, struct_fields};

/// One update as delivered by `getUpdates` or a webhook. Telegram sets exactly one of the
/// optional fields; [`Update::payload`] says which.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Update {
    pub update_id: i64,
    pub message: Option<Box<Message>>,
    pub edited_message: Option<Box<Message>>,
    pub channel_post: Option<Box<Message>>,
    pub edited_channel_post: Option<Box<Message>>,
    pub business_message: Option<Box<Message>>,
    pub edited_business_message: Option<Box<Message>>,
    pub deleted_business_messages: Option<BusinessMessagesDeleted>,
    pub callback_query: Option<CallbackQuery>,
    pub message_reaction: Option<MessageReactionUpdated>,
    pub message_reaction_count: Option<MessageReactionCountUpdated>,
    // Update types lanbox does not store as messages (yet): only their presence is read.
    pub inline_query: Option<IgnoredAny>,
    pub chosen_inline_result: Option<IgnoredAny>,
    pub shipping_query: Option<IgnoredAny>,
    pub pre_checkout_query: Option<IgnoredAny>,
    pub purchased_paid_media: Option<IgnoredAny>,
    pub poll: Option<IgnoredAny>,
    pub poll_answer: Option<IgnoredAny>,
    pub my_chat_member: Option<IgnoredAny>,
    pub chat_member: Option<IgnoredAny>,
    pub chat_join_request: Option<IgnoredAny>,
    pub chat_boost: Option<IgnoredAny>,
    pub removed_chat_boost: Option<IgnoredAny>,
    pub business_connection: Option<IgnoredAny>,
    /// Field name of an update type newer than this parser (set by [`parse_update`]).
    #[serde(skip)]
    pub unknown_kind: Option<String>,
}

/// What an update carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Payload<'a> {
    /// A message update; `kind` is its field name (`message`, `edited_channel_post`, ...).
    Message {
        kind: &'static str,
        edited: bool,
        message: &'a Message,
    },
    DeletedBusinessMessages(&'a BusinessMessagesDeleted),
    CallbackQuery(&'a CallbackQuery),
    MessageReaction(&'a MessageReactionUpdated),
    MessageReactionCount(&'a MessageReactionCountUpdated),
    /// Any other update type, by field name.
    Other(&'a str),
    /// No payload at all.
    Empty,
}

impl Update {
    pub fn payload(&self) -> Payload<'_> {
        let messages = [
            ("message", false, &self.message),
            ("edited_message", true, &self.edited_message),
            ("channel_post", false, &self.channel_post),
            ("edited_channel_post", true, &self.edited_channel_post),
            ("business_message", false, &self.business_message),
            ("edited_business_message", true, &self.edited_business_message),
        ];
        for (kind, edited, m) in messages {
            if let Some(message) = m {
                return Payload::Message {
                    kind,
                    edited,
                    message,
                };
            }
        }
        if let Some(d) = &self.deleted_business_messages {
            return Payload::DeletedBusinessMessages(d);
        }
        if let Some(c) = &self.callback_query {
            return Payload::CallbackQuery(c);
        }
        if let Some(r) = &self.message_reaction {
            return Payload::MessageReaction(r);
        }
        if let Some(r) = &self.message_reaction_count {
            return Payload::MessageReactionCount(r);
        }
        let others = [
            ("inline_query", &self.inline_query),
            ("chosen_inline_result", &self.chosen_inline_result),
            ("shipping_query", &self.shipping_query),
            ("pre_checkout_query", &self.pre_checkout_query),
            ("purchased_paid_media", &self.purchased_paid_media),
            ("poll", &self.poll),
            ("poll_answer", &self.poll_answer),
            ("my_chat_member", &self.my_chat_member),
            ("chat_member", &self.chat_member),
            ("chat_join_request", &self.chat_join_request),
            ("chat_boost", &self.chat_boost),
            ("removed_chat_boost", &self.removed_chat_boost),
            ("business_connection", &self.business_connection),
        ];
        if let Some((name, _)) = others.into_iter().find(|(_, v)| v.is_some()) {
            return Payload::Other(name);
        }
        match &self.unknown_kind {
            Some(name) => Payload::Other(name),
            None => Payload::Empty,
        }
    }
}

/// A message, channel post or business message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    pub message_id: i64,
    pub message_thread_id: Option<i64>,
    pub from: Option<User>,
    pub sender_chat: Option<Chat>,
    /// Required by the Bot API, but a real capture has `0`; absent reads as 0 too.
    #[serde(default, deserialize_with = "null_default")]
    pub date: i64,
    pub business_connection_id: Option<String>,
    pub chat: Chat,
    pub forward_origin: Option<MessageOrigin>,
    // Forward fields before Bot API 7.0.
    pub forward_from: Option<User>,
    pub forward_from_chat: Option<Chat>,
    pub forward_from_message_id: Option<i64>,
    pub forward_signature: Option<String>,
    pub forward_sender_name: Option<String>,
    pub forward_date: Option<i64>,
    #[serde(default, deserialize_with = "null_default")]
    pub is_topic_message: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub is_automatic_forward: bool,
    pub reply_to_message: Option<MessageRef>,
    pub external_reply: Option<ExternalReplyInfo>,
    pub quote: Option<TextQuote>,
    pub via_bot: Option<User>,
    pub edit_date: Option<i64>,
    #[serde(default, deserialize_with = "opt_string_or_number")]
    pub media_group_id: Option<String>,
    pub author_signature: Option<String>,
    pub text: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub entities: Vec<MessageEntity>,
    pub animation: Option<Animation>,
    pub audio: Option<Audio>,
    pub document: Option<Document>,
    pub photo: Option<Vec<PhotoSize>>,
    pub sticker: Option<Sticker>,
    pub video: Option<Video>,
    pub video_note: Option<VideoNote>,
    pub voice: Option<Voice>,
    pub caption: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub caption_entities: Vec<MessageEntity>,
    #[serde(default, deserialize_with = "null_default")]
    pub has_media_spoiler: bool,
    pub contact: Option<Contact>,
    pub dice: Option<Dice>,
    pub poll: Option<Poll>,
    pub venue: Option<Venue>,
    pub location: Option<Location>,
    pub web_app_data: Option<WebAppData>,
    pub new_chat_members: Option<Vec<User>>,
    pub left_chat_member: Option<User>,
    pub new_chat_title: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub group_chat_created: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub supergroup_chat_created: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub channel_chat_created: bool,
    #[serde(default, deserialize_with = "null_default")]
    pub delete_chat_photo: bool,
    pub migrate_to_chat_id: Option<i64>,
    pub migrate_from_chat_id: Option<i64>,
    pub pinned_message: Option<MessageRef>,
    pub forum_topic_created: Option<ForumTopicCreated>,
    pub forum_topic_edited: Option<ForumTopicEdited>,
    pub forum_topic_closed: Option<IgnoredAny>,
    pub forum_topic_reopened: Option<IgnoredAny>,
    // Service messages without a normalised form of their own: presence only.
    pub new_chat_photo: Option<IgnoredAny>,
    pub message_auto_delete_timer_changed: Option<IgnoredAny>,
    pub video_chat_scheduled: Option<IgnoredAny>,
    pub video_chat_started: Option<IgnoredAny>,
    pub video_chat_ended: Option<IgnoredAny>,
    pub video_chat_participants_invited: Option<IgnoredAny>,
    pub general_forum_topic_hidden: Option<IgnoredAny>,
    pub general_forum_topic_unhidden: Option<IgnoredAny>,
    pub write_access_allowed: Option<IgnoredAny>,
    pub users_shared: Option<IgnoredAny>,
    pub chat_shared: Option<IgnoredAny>,
    pub connected_website: Option<IgnoredAny>,
    pub proximity_alert_triggered: Option<IgnoredAny>,
    pub boost_added: Option<IgnoredAny>,
    pub chat_background_set: Option<IgnoredAny>,
    pub giveaway_created: Option<IgnoredAny>,
    pub giveaway_completed: Option<IgnoredAny>,
    pub successful_payment: Option<IgnoredAny>,
    pub refunded_payment: Option<IgnoredAny>,
    // Content lanbox cannot show yet: presence only.
    pub story: Option<IgnoredAny>,
    pub game: Option<IgnoredAny>,
    pub invoice: Option<IgnoredAny>,
    pub giveaway: Option<IgnoredAny>,
    pub giveaway_winners: Option<IgnoredAny>,
    pub paid_media: Option<IgnoredAny>,
    pub passport_data: Option<IgnoredAny>,
    /// Keys of this message that are neither declared above nor known metadata: content types
    /// newer than this parser (set by [`parse_update`]; names only, no values).
    #[serde(skip)]
    pub unknown_fields: Vec<String>,
}

impl Message {
    /// The field name of a service message that has no normalised form of its own.
    pub fn other_service(&self) -> Option<&'static str> {
        let flags = [
            ("new_chat_photo", self.new_chat_photo.is_some()),
            ("delete_chat_photo", self.delete_chat_photo),
            (
                "message_auto_delete_timer_changed",
                self.message_auto_delete_timer_changed.is_some(),
            ),
            ("video_chat_scheduled", self.video_chat_scheduled.is_some()),
            ("video_chat_started", self.video_chat_started.is_some()),
            ("video_chat_ended", self.video_chat_ended.is_some()),
            (
                "video_chat_participants_invited",
                self.video_chat_participants_invited.is_some(),
            ),
            (
                "general_forum_topic_hidden",
                self.general_forum_topic_hidden.is_some(),
            ),
            (
                "general_forum_topic_unhidden",
                self.general_forum_topic_unhidden.is_some(),
            ),
            ("write_access_allowed", self.write_access_allowed.is_some()),
            ("users_shared", self.users_shared.is_some()),
            ("chat_shared", self.chat_shared.is_some()),
            ("connected_website", self.connected_website.is_some()),
            (
                "proximity_alert_triggered",
                self.proximity_alert_triggered.is_some(),
            ),
            ("boost_added", self.boost_added.is_some()),
            ("chat_background_set", self.chat_background_set.is_some()),
            ("giveaway_created", self.giveaway_created.is_some()),
            ("giveaway_completed", self.giveaway_completed.is_some()),
            ("successful_payment", self.successful_payment.is_some()),
            ("refunded_payment", self.refunded_payment.is_some()),
        ];
        flags.into_iter().find(|(_, on)| *on).map(|(name, _)| name)
    }

    /// The field name of content lanbox cannot show yet.
    pub fn unsupported_content(&self) -> Option<&str> {
        let flags = [
            ("story", self.story.is_some()),
            ("game", self.game.is_some()),
            ("invoice", self.invoice.is_some()),
            ("giveaway", self.giveaway.is_some()),
            ("giveaway_winners", self.giveaway_winners.is_some()),
            ("paid_media", self.paid_media.is_some()),
            ("passport_data", self.passport_data.is_some()),
        ];
        flags
            .into_iter()
            .find(|(_, on)| *on)
            .map(|(name, _)| name)
            .or_else(|| self.unknown_fields.first().map(String::as_str))
    }
}

/// Message keys the parser knowingly skips: metadata, not content. A key outside this list and
/// outside [`Message`]'s fields is reported in `unknown_fields`.
const MESSAGE_METADATA: &[&str] = &[
    "link_preview_options",
    "reply_markup",
    "has_protected_content",
    "is_from_offline",
    "is_paid_post",
    "paid_star_count",
    "sender_boost_count",
    "sender_business_bot",
    "sender_tag",
    "reply_to_story",
    "reply_to_checklist_task_id",
    "effect_id",
    "show_caption_above_media",
    "direct_messages_topic",
    "suggested_post_info",
];

/// Every field name the wire types declare, for naming fields in error paths.
fn known_names() -> &'static HashSet<&'static str> {
    static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names: HashSet<&'static str> = HashSet::new();
        for fields in [
            struct_fields::<Update>(),
            struct_fields::<Message>(),
            struct_fields::<Chat>(),
            struct_fields::<User>(),
            struct_fields::<MessageEntity>(),
            struct_fields::<PhotoSize>(),
            struct_fields::<Document>(),
            struct_fields::<Video>(),
            struct_fields::<Animation>(),
            struct_fields::<Audio>(),
            struct_fields::<Voice>(),
            struct_fields::<VideoNote>(),
            struct_fields::<Sticker>(),
            struct_fields::<Location>(),
            struct_fields::<Venue>(),
            struct_fields::<Contact>(),
            struct_fields::<Poll>(),
            struct_fields::<PollOption>(),
            struct_fields::<Dice>(),
            struct_fields::<WebAppData>(),
            struct_fields::<ForumTopicCreated>(),
            struct_fields::<ForumTopicEdited>(),
            struct_fields::<MessageRef>(),
            struct_fields::<ExternalReplyInfo>(),
            struct_fields::<TextQuote>(),
            struct_fields::<CallbackQuery>(),
            struct_fields::<BusinessMessagesDeleted>(),
            struct_fields::<MessageReactionUpdated>(),
            struct_fields::<MessageReactionCountUpdated>(),
            struct_fields::<ReactionCount>(),
            MESSAGE_METADATA,
            // Fields of the tagged enums (not visible to `struct_fields`) and the envelope.
            &[
                "type",
                "sender_user",
                "sender_user_name",
                "sender_chat",
                "author_signature",
                "emoji",
                "custom_emoji_id",
                "ok",
                "result",
                "error_code",
                "description",
                "parameters",
            ],
        ] {
            names.extend(fields.iter().copied());
        }
        names
    })
}

fn known_name(key: &str) -> Option<&'static str> {
    known_names().get(key).copied()
}

/// `name` when it looks like a Telegram field name (`[a-z0-9_]`, at most 64 bytes); such names
/// are safe to report. Anything else is not repeated.
pub fn safe_name(name: &str) -> Option<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
    ok.then_some(name)
}

/// Parses one update. Fields the Bot API added after this parser are noted by name
/// ([`Update::unknown_kind`], [`Message::unknown_fields`]), never dropped silently.
pub fn parse_update(raw: &[u8]) -> Result<Update, WireError> {
    let mut update: Update =
        serde_json::from_slice(raw).map_err(|e| WireError::from_json(&e, raw, known_name))?;
    // The parse succeeded, so the shallow scan below sees well-formed JSON.
    let members = scan::object_members(raw).unwrap_or_default();
    if update.payload() == Payload::Empty {
        update.unknown_kind = members
            .iter()
            .filter_map(|(k, _)| k.as_deref())
            .find(|k| *k != "update_id")
            .map(|k| safe_name(k).unwrap_or("unknown").to_owned());
    }
    let message_fields = struct_fields::<Message>();
    let slots = [
        ("message", &mut update.message),
        ("edited_message", &mut update.edited_message),
        ("channel_post", &mut update.channel_post),
        ("edited_channel_post", &mut update.edited_channel_post),
        ("business_message", &mut update.business_message),
        ("edited_business_message", &mut update.edited_business_message),
    ];
    for (kind, slot) in slots {
        let (Some(message), Some((_, body))) = (
            slot.as_mut(),
            members.iter().find(|(k, _)| k.as_deref() == Some(kind)),
        ) else {
            continue;
        };
        for (key, _) in scan::object_members(body).unwrap_or_default() {
            let Some(key) = key else { continue };
            if !message_fields.contains(&key.as_ref()) && !MESSAGE_METADATA.contains(&key.as_ref()) {
                message
                    .unknown_fields
                    .push(safe_name(&key).unwrap_or("unknown").to_owned());
            }
        }
    }
    Ok(update)
}

/// One element of a `getUpdates` result, as its own bytes, not yet parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawUpdate<'a>(pub &'a [u8]);

/// Splits a `getUpdates` response (`{"ok":true,"result":[...]}`) into its updates without parsing
/// them: each element is handed to [`parse_update`] (through the mapper) on its own.
pub fn split_updates(body: &[u8]) -> Result<Vec<RawUpdate<'_>>, WireError> {
    let members = scan::object_members(body)?;
    let field = |name: &str| {
        members
            .iter()
            .find(|(k, _)| k.as_deref() == Some(name))
            .map(|(_, v)| *v)
    };
    if field("ok") != Some(b"true".as_slice()) {
        let error_code = field("error_code").and_then(|v| serde_json::from_slice(v).ok());
        return Err(WireError::NotOk { error_code });
    }
    let result = field("result").ok_or(WireError::Envelope {
        reason: "no `result` field",
        offset: body.len(),
    })?;
    Ok(scan::array_elements(result)?.into_iter().map(RawUpdate).collect())
}

/// What can be read of an update that did not parse: enough to point at a chat and a message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outline {
    pub update_id: Option<i64>,
    /// The update type's field name (as reported by [`safe_name`]).
    pub kind: Option<String>,
    pub chat: Option<Chat>,
    pub message_id: Option<i64>,
    pub date: Option<i64>,
}

/// Reads an update shallowly: every value is parsed on its own, so one bad field spoils only
/// itself. Never fails; whatever cannot be read stays `None`.
pub fn outline(raw: &[u8]) -> Outline {
    let mut out = Outline::default();
    let Ok(members) = scan::object_members(raw) else {
        return out;
    };
    let kinds = struct_fields::<Update>();
    let mut known = None;
    let mut other = None;
    for (key, value) in &members {
        let Some(key) = key.as_deref() else { continue };
        if key == "update_id" {
            out.update_id = out.update_id.or(serde_json::from_slice(value).ok());
        } else if known.is_none() && kinds.contains(&key) {
            known = Some((key, *value));
        } else if other.is_none() {
            other = Some(key);
        }
    }
    if let Some((kind, value)) = known {
        out.kind = Some(kind.to_owned());
        read_message_outline(value, &mut out);
    } else {
        out.kind = other.map(|k| safe_name(k).unwrap_or("unknown").to_owned());
    }
    out
}

fn read_message_outline(message: &[u8], out: &mut Outline) {
    let get = |name| scan::member(message, name);
    out.message_id = get("message_id").and_then(|v| serde_json::from_slice(v).ok());
    out.date = get("date").and_then(|v| serde_json::from_slice(v).ok());
    out.chat = get("chat").and_then(|chat| {
        serde_json::from_slice::<Chat>(chat).ok().or_else(|| {
            let id = serde_json::from_slice(scan::member(chat, "id")?).ok()?;
            let text = |name| scan::member(chat, name).and_then(|v| serde_json::from_slice(v).ok());
            Some(Chat {
                id,
                kind: text("type"),
                title: None,
                username: None,
                first_name: None,
                last_name: None,
                is_forum: false,
            })
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_introspected() {
        assert!(struct_fields::<Message>().contains(&"message_thread_id"));
        assert!(struct_fields::<Sticker>().contains(&"type"));
        assert!(!struct_fields::<Message>().contains(&"unknown_fields"));
        assert_eq!(known_name("entities"), Some("entities"));
        assert_eq!(known_name("CANARY"), None);
    }

    #[test]
    fn outline_survives_a_bad_field() {
        let raw = br#"{"update_id": 7, "message": {"message_id": 3, "text": 5,
            "chat": {"id": -100, "type": "supergroup", "title": {"x": 1}}, "date": "x"}}"#;
        let o = outline(raw);
        assert_eq!(o.update_id, Some(7));
        assert_eq!(o.kind.as_deref(), Some("message"));
        assert_eq!(o.message_id, Some(3));
        assert_eq!(o.date, None);
        let chat = o.chat.unwrap();
        assert_eq!((chat.id, chat.kind.as_deref()), (-100, Some("supergroup")));
    }

    #[test]
    fn envelope_not_ok() {
        let e = split_updates(br#"{"ok":false,"error_code":409,"description":"Conflict"}"#);
        assert_eq!(
            e,
            Err(WireError::NotOk {
                error_code: Some(409)
            })
        );
        assert!(split_updates(br#"{"ok":true,"result":[]}"#).unwrap().is_empty());
    }
}
