//! What an account sends with: a bot's Bot API client, or a user account's MTProto client (the
//! connector's own, shared through `UserConnectors`). The queue, its order, the limits, the
//! retries and the status records are the same for both; only the request differs. Failures of
//! either come back as the Bot API client's [`ApiError`], so the retry logic reads one kind of
//! error: a `FLOOD_WAIT_n` or `SLOWMODE_WAIT_n` is [`ApiError::RetryAfter`] with its seconds,
//! as a bot's 429 is.

use std::time::Duration;

use grammers_tl_types as tl;
use serde_json::{Value, json};

use super::record::OutEntity;
use crate::channels::mtproto::{SendError, UserSender};
use crate::channels::telegram::client::{ApiError, BotClient};
use crate::model::{
    Body, Chat, ChatKind, Direction, Entity, Message, MessageContent, ReplyTo, Sender as From, Status, Text,
    UserRef,
};

/// The entity types an agent can send (Telegram's names, as the API shows received ones).
/// `text_mention` and `custom_emoji` are not among them: the first needs the person's access
/// hash, the second a Premium account.
pub const SENDABLE_ENTITIES: [&str; 14] = [
    "bold",
    "italic",
    "underline",
    "strikethrough",
    "spoiler",
    "code",
    "pre",
    "text_link",
    "url",
    "mention",
    "hashtag",
    "email",
    "phone_number",
    "blockquote",
];

/// `entities` as MTProto's `messageEntity*` (offsets are UTF-16 code units in both).
pub fn tl_entities(entities: &[OutEntity]) -> Vec<tl::enums::MessageEntity> {
    entities
        .iter()
        .filter_map(|e| {
            let (offset, length) = (i32::try_from(e.offset).ok()?, i32::try_from(e.length).ok()?);
            use tl::types as t;
            Some(match e.kind.as_str() {
                "bold" => t::MessageEntityBold { offset, length }.into(),
                "italic" => t::MessageEntityItalic { offset, length }.into(),
                "underline" => t::MessageEntityUnderline { offset, length }.into(),
                "strikethrough" => t::MessageEntityStrike { offset, length }.into(),
                "spoiler" => t::MessageEntitySpoiler { offset, length }.into(),
                "code" => t::MessageEntityCode { offset, length }.into(),
                "pre" => t::MessageEntityPre {
                    offset,
                    length,
                    language: e.language.clone().unwrap_or_default(),
                }
                .into(),
                "text_link" => t::MessageEntityTextUrl {
                    offset,
                    length,
                    url: e.url.clone()?,
                }
                .into(),
                "url" => t::MessageEntityUrl { offset, length }.into(),
                "mention" => t::MessageEntityMention { offset, length }.into(),
                "hashtag" => t::MessageEntityHashtag { offset, length }.into(),
                "email" => t::MessageEntityEmail { offset, length }.into(),
                "phone_number" => t::MessageEntityPhone { offset, length }.into(),
                "blockquote" => t::MessageEntityBlockquote {
                    collapsed: false,
                    offset,
                    length,
                }
                .into(),
                _ => return None,
            })
        })
        .collect()
}

/// `entities` as the Bot API's `MessageEntity` objects.
pub fn bot_entities(entities: &[OutEntity]) -> Vec<Value> {
    entities
        .iter()
        .map(|e| {
            let mut v = json!({"type": e.kind, "offset": e.offset, "length": e.length});
            if let Some(url) = &e.url {
                v["url"] = json!(url);
            }
            if let Some(language) = &e.language {
                v["language"] = json!(language);
            }
            v
        })
        .collect()
}

/// `entities` as the model keeps them (byte ranges of the UTF-8 text); one whose range does not
/// fall on character boundaries is left out.
pub fn model_entities(text: &str, entities: &[OutEntity]) -> Vec<Entity> {
    let byte_at = |units: u32| -> Option<u32> {
        let mut seen = 0u32;
        for (byte, c) in text.char_indices() {
            if seen == units {
                return u32::try_from(byte).ok();
            }
            seen += c.len_utf16() as u32;
            if seen > units {
                return None;
            }
        }
        (seen == units).then(|| u32::try_from(text.len()).ok()).flatten()
    };
    entities
        .iter()
        .filter_map(|e| {
            Some(Entity {
                kind: e.kind.clone(),
                start: byte_at(e.offset)?,
                end: byte_at(e.offset.checked_add(e.length)?)?,
                url: e.url.clone(),
                user_id: None,
                language: e.language.clone(),
                custom_emoji_id: None,
            })
        })
        .collect()
}

/// An account's way to Telegram.
#[derive(Debug, Clone)]
pub enum Sender {
    Bot(BotClient),
    /// A user account: its connector's client; each call bounded by `timeout`.
    User {
        sender: UserSender,
        timeout: Duration,
    },
}

impl Sender {
    pub fn is_user(&self) -> bool {
        matches!(self, Sender::User { .. })
    }
}

/// A user account's failure as the outbox's retry logic reads it.
pub fn api_error(e: SendError) -> ApiError {
    match e {
        SendError::Wait(secs, _) => ApiError::RetryAfter(secs.max(1)),
        SendError::Offline => ApiError::Network("the account's connection to Telegram is down".into()),
        SendError::Network(d) => ApiError::Network(d),
        SendError::Server(_) => ApiError::Server(500),
        SendError::UnknownPeer => ApiError::Other(
            400,
            "the chat is not known to this account's session yet (no update has named it)".into(),
        ),
        SendError::Refused(code, name) => ApiError::Other(i64::from(code), name),
    }
}

/// Runs one user-account call within `timeout`.
pub async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, SendError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r.map_err(api_error),
        Err(_) => Err(ApiError::Timeout),
    }
}

/// The message a user account just sent, as the store keeps it (outgoing, sent).
pub fn user_message(
    account: u64,
    chat: i64,
    kind: ChatKind,
    text: &str,
    entities: &[OutEntity],
    reply_to: Option<i64>,
    sent: crate::channels::mtproto::send::Sent,
) -> Message {
    let chat = Chat {
        id: chat,
        kind,
        // None keeps the title the chat has.
        title: None,
        username: None,
        is_forum: false,
    };
    let sender = if kind == ChatKind::Channel {
        From::Chat {
            id: chat.id,
            title: None,
            username: None,
            signature: None,
        }
    } else {
        From::User(UserRef {
            id: sent.from,
            is_bot: false,
            first_name: String::new(),
            last_name: None,
            username: None,
            language_code: None,
        })
    };
    Message {
        account,
        chat,
        message_id: i64::from(sent.message_id),
        topic: None,
        direction: Direction::Outgoing,
        date: i64::from(sent.date),
        edited_at: None,
        status: Status::Sent,
        content: MessageContent {
            sender,
            reply_to: reply_to.map(|message_id| ReplyTo {
                message_id,
                chat_id: None,
                quote: None,
            }),
            forward: None,
            media_group: None,
            body: Body::Text(Text {
                text: text.to_owned(),
                entities: model_entities(text, entities),
            }),
            notes: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: &str, offset: u32, length: u32) -> OutEntity {
        OutEntity {
            kind: kind.into(),
            offset,
            length,
            url: None,
            user_id: None,
            language: None,
            custom_emoji_id: None,
        }
    }

    #[test]
    fn utf16_ranges_become_byte_ranges_and_mtproto_entities() {
        let text = "a😀 bold";
        let ents = [e("bold", 4, 4), e("italic", 2, 1)];
        let model = model_entities(text, &ents);
        assert_eq!(model.len(), 1, "the italic range splits the emoji: left out");
        assert_eq!((model[0].start, model[0].end), (6, 10));
        assert_eq!(&text[6..10], "bold");
        let tl = tl_entities(&ents);
        assert!(matches!(
            &tl[0],
            tl::enums::MessageEntity::Bold(b) if (b.offset, b.length) == (4, 4)
        ));
        let mut link = e("text_link", 0, 1);
        assert!(
            tl_entities(std::slice::from_ref(&link)).is_empty(),
            "a link needs its URL"
        );
        link.url = Some("https://example.org/".into());
        assert!(matches!(
            &tl_entities(&[link.clone()])[0],
            tl::enums::MessageEntity::TextUrl(_)
        ));
        assert_eq!(bot_entities(&[link])[0]["url"], "https://example.org/");
    }
}
