//! Bot API updates to normalised [`Change`]s.
//!
//! Every update yields at least one change, so nothing is dropped without a trace:
//! - `message`, `channel_post`, `business_message` become [`Change::New`]; their `edited_*`
//!   forms become [`Change::Edit`] (`edited_at` from `edit_date`);
//! - `deleted_business_messages` becomes [`Change::Delete`];
//! - a group migration (`migrate_to_chat_id` in the old group, `migrate_from_chat_id` in the new
//!   supergroup) becomes the service message plus a [`Change::Migrate`]; Telegram sends both
//!   sides, so the pipeline sees the same migration twice;
//! - `callback_query` becomes a postback message when it can be given a safe id (see
//!   [`map_callback`]);
//! - `message_reaction` and `message_reaction_count` become [`Change::Reaction`] and
//!   [`Change::ReactionCount`] (stored on the message, published as `message.reaction`);
//! - every other update type (member changes, inline queries, boosts, ...) becomes
//!   [`Change::Rejected`] with the update's field name, until lanbox stores them as events;
//! - a payload that does not parse becomes a placeholder message when its chat and message id
//!   can still be read ([`map_raw`]), and a rejection otherwise.
//!
//! Updates only ever bring messages *to* the bot, so everything mapped here is
//! [`Direction::Incoming`] and [`Status::Delivered`]. Reasons and notes never contain message
//! text: they name fields, indexes and limits.

use crate::ingest::Change;
use crate::model::{
    AccountId, Body, Chat, ChatKind, Direction, ForwardOrigin, Message, MessageContent, Reaction,
    ReactionTally, ReplyTo, Sender, Status,
};

use super::body::user;
pub use super::body::{MAX_CAPTION_BYTES, MAX_ENTITIES, MAX_TEXT_BYTES};
use super::wire::{self, MessageOrigin, Payload, Update};

/// Reason given for update types that are understood but not stored as messages.
pub const NOT_STORED: &str = "not stored as a message";

/// The changes one update maps to, and its `update_id` when it could be read (the poller's next
/// offset is the largest one plus one).
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub update_id: Option<i64>,
    pub changes: Vec<Change>,
}

/// Maps one raw update (a `getUpdates` element or a webhook body). Never fails: see the module
/// documentation for what a payload that does not parse becomes.
pub fn map_raw(account: AccountId, raw: &[u8]) -> Mapped {
    match wire::parse_update(raw) {
        Ok(update) => map_update(account, &update),
        Err(err) => map_unparsed(account, raw, &err),
    }
}

/// Maps one parsed update.
pub fn map_update(account: AccountId, update: &Update) -> Mapped {
    let changes = match update.payload() {
        Payload::Message {
            kind,
            edited,
            message,
        } => map_message_update(account, kind, edited, message),
        Payload::DeletedBusinessMessages(d) => vec![Change::Delete {
            account,
            chat: chat(&d.chat, &mut Vec::new()),
            message_ids: d.message_ids.clone(),
        }],
        Payload::CallbackQuery(q) => vec![map_callback(account, q)],
        Payload::MessageReaction(r) => vec![map_reaction(account, r)],
        Payload::MessageReactionCount(r) => vec![map_reaction_count(account, r)],
        Payload::Other(name) if update.unknown_kind.is_some() => {
            vec![rejected(account, name, "unknown update type")]
        }
        Payload::Other(name) => vec![rejected(account, name, NOT_STORED)],
        Payload::Empty => vec![rejected(account, "unknown", "update carries no payload")],
    };
    Mapped {
        update_id: Some(update.update_id),
        changes,
    }
}

fn rejected(account: AccountId, update_type: &str, reason: &str) -> Change {
    Change::Rejected {
        account,
        update_type: update_type.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Update types that carry a message at their top level.
const MESSAGE_KINDS: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
];

/// A payload that did not parse. When its chat and message id can still be read it becomes a
/// [`Change::New`] of an [`Body::Unsupported`] placeholder, so the conversation shows that
/// something arrived. Edits map to `New` too: a known message is deduplicated and keeps its
/// last good content instead of being overwritten by a placeholder.
fn map_unparsed(account: AccountId, raw: &[u8], err: &wire::WireError) -> Mapped {
    let outline = wire::outline(raw);
    let update_type = outline.kind.clone().unwrap_or_else(|| "unknown".to_owned());
    let reason = format!("update could not be parsed: {err}");
    let change = match (&outline.chat, outline.message_id) {
        (Some(c), Some(message_id)) if MESSAGE_KINDS.contains(&update_type.as_str()) => {
            let mut notes = Vec::new();
            let chat = chat(c, &mut notes);
            Change::New(Message {
                account,
                chat,
                message_id,
                topic: None,
                direction: Direction::Incoming,
                date: outline.date.unwrap_or(0),
                edited_at: None,
                status: Status::Delivered,
                content: MessageContent {
                    sender: Sender::Unknown,
                    reply_to: None,
                    forward: None,
                    media_group: None,
                    body: Body::Unsupported { update_type, reason },
                    notes,
                },
            })
        }
        _ => Change::Rejected {
            account,
            update_type,
            reason,
        },
    };
    Mapped {
        update_id: outline.update_id,
        changes: vec![change],
    }
}

fn map_message_update(account: AccountId, kind: &str, edited: bool, m: &wire::Message) -> Vec<Change> {
    let message = normalise(account, kind, edited, m);
    let migrate = if edited {
        None
    } else if let Some(to) = m.migrate_to_chat_id {
        Some(Change::Migrate {
            account,
            from_group: message.chat.id,
            to_supergroup: Chat {
                id: to,
                kind: ChatKind::Supergroup,
                title: message.chat.title.clone(),
                username: None,
                is_forum: false,
            },
        })
    } else {
        m.migrate_from_chat_id.map(|from| Change::Migrate {
            account,
            from_group: from,
            to_supergroup: message.chat.clone(),
        })
    };
    let mut out = Vec::with_capacity(2);
    out.push(if edited {
        Change::Edit(message)
    } else {
        Change::New(message)
    });
    out.extend(migrate);
    out
}

fn normalise(account: AccountId, kind: &str, edited: bool, m: &wire::Message) -> Message {
    let mut notes = Vec::new();
    let chat = chat(&m.chat, &mut notes);
    let body = super::body::body(kind, m, &mut notes);
    let edited_at = match (m.edit_date, edited) {
        (Some(at), _) => Some(at),
        (None, true) => {
            notes.push("edit without edit_date: the message date is used".to_owned());
            Some(m.date)
        }
        (None, false) => None,
    };
    let sender = sender(m, &chat);
    let reply_to = reply_to(m, &mut notes);
    let forward = forward(m, &mut notes);
    Message {
        account,
        message_id: m.message_id,
        topic: m.message_thread_id.filter(|_| m.is_topic_message),
        direction: Direction::Incoming,
        date: m.date,
        edited_at,
        status: Status::Delivered,
        chat,
        content: MessageContent {
            sender,
            reply_to,
            forward,
            media_group: m.media_group_id.clone(),
            body,
            notes,
        },
    }
}

pub(super) fn chat(c: &wire::Chat, notes: &mut Vec<String>) -> Chat {
    let kind = match c.kind.as_deref() {
        Some("private") => ChatKind::Private,
        Some("group") => ChatKind::Group,
        Some("supergroup") => ChatKind::Supergroup,
        Some("channel") => ChatKind::Channel,
        _ => {
            notes.push("chat type missing or unknown: guessed from the chat id".to_owned());
            // Supergroup and channel ids are -100xxxxxxxxxx; basic groups are other negatives.
            if c.id > 0 {
                ChatKind::Private
            } else if c.id <= -1_000_000_000_000 {
                ChatKind::Supergroup
            } else {
                ChatKind::Group
            }
        }
    };
    Chat {
        id: c.id,
        kind,
        title: chat_title(c),
        username: c.username.clone(),
        is_forum: c.is_forum,
    }
}

/// The group or channel title, or the person's name for a private chat.
fn chat_title(c: &wire::Chat) -> Option<String> {
    c.title.clone().or_else(|| match (&c.first_name, &c.last_name) {
        (Some(f), Some(l)) => Some(format!("{f} {l}")),
        (Some(f), None) => Some(f.clone()),
        (None, l) => l.clone(),
    })
}

/// Telegram's stand-in author for messages an anonymous group admin sends.
const ANONYMOUS_ADMIN_BOT: &str = "GroupAnonymousBot";

fn sender(m: &wire::Message, chat: &Chat) -> Sender {
    if let Some(sc) = &m.sender_chat {
        let from_anon_bot = m.from.as_ref().and_then(|u| u.username.as_deref()) == Some(ANONYMOUS_ADMIN_BOT);
        if sc.id == m.chat.id && from_anon_bot {
            return Sender::AnonymousAdmin {
                chat_id: sc.id,
                signature: m.author_signature.clone(),
            };
        }
        return Sender::Chat {
            id: sc.id,
            title: chat_title(sc),
            username: sc.username.clone(),
            signature: m.author_signature.clone(),
        };
    }
    if let Some(u) = &m.from {
        return Sender::User(user(u));
    }
    if chat.kind == ChatKind::Channel {
        return Sender::Chat {
            id: chat.id,
            title: chat.title.clone(),
            username: chat.username.clone(),
            signature: m.author_signature.clone(),
        };
    }
    Sender::Unknown
}

fn reply_to(m: &wire::Message, notes: &mut Vec<String>) -> Option<ReplyTo> {
    let quote = m.quote.as_ref().map(|q| q.text.clone());
    if let Some(r) = &m.reply_to_message {
        // In a forum, Telegram marks every message of a topic that is not an explicit reply as
        // a reply to the topic's opening service message. That is the thread (already in
        // `topic`), not a reply.
        let topic_root = m.is_topic_message
            && m.message_thread_id == Some(r.message_id)
            && r.forum_topic_created.is_some();
        return (!topic_root).then_some(ReplyTo {
            message_id: r.message_id,
            chat_id: None,
            quote,
        });
    }
    let external = m.external_reply.as_ref()?;
    match external.message_id {
        Some(message_id) => Some(ReplyTo {
            message_id,
            chat_id: external.chat.as_ref().map(|c| c.id),
            quote,
        }),
        None => {
            notes.push("external reply without a message id: not linked".to_owned());
            None
        }
    }
}

/// `forward_origin`, or the legacy `forward_*` fields of older captures; both read the same.
fn forward(m: &wire::Message, notes: &mut Vec<String>) -> Option<ForwardOrigin> {
    if let Some(origin) = &m.forward_origin {
        return match origin {
            MessageOrigin::User { date, sender_user } => Some(ForwardOrigin::User {
                user: user(sender_user),
                date: *date,
            }),
            MessageOrigin::HiddenUser {
                date,
                sender_user_name,
            } => Some(ForwardOrigin::HiddenUser {
                name: sender_user_name.clone(),
                date: *date,
            }),
            MessageOrigin::Chat {
                date,
                sender_chat,
                author_signature,
            } => Some(ForwardOrigin::Chat {
                chat_id: sender_chat.id,
                title: chat_title(sender_chat),
                signature: author_signature.clone(),
                date: *date,
            }),
            MessageOrigin::Channel {
                date,
                chat,
                message_id,
                author_signature,
            } => Some(ForwardOrigin::Channel {
                chat_id: chat.id,
                title: chat_title(chat),
                message_id: *message_id,
                signature: author_signature.clone(),
                date: *date,
            }),
            MessageOrigin::Unknown => {
                notes.push("forward origin of an unknown type: not shown".to_owned());
                None
            }
        };
    }
    let date = m.forward_date.unwrap_or(0);
    if let Some(u) = &m.forward_from {
        return Some(ForwardOrigin::User { user: user(u), date });
    }
    if let Some(c) = &m.forward_from_chat {
        let signature = m.forward_signature.clone();
        if let (Some("channel"), Some(message_id)) = (c.kind.as_deref(), m.forward_from_message_id) {
            return Some(ForwardOrigin::Channel {
                chat_id: c.id,
                title: chat_title(c),
                message_id,
                signature,
                date,
            });
        }
        return Some(ForwardOrigin::Chat {
            chat_id: c.id,
            title: chat_title(c),
            signature,
            date,
        });
    }
    m.forward_sender_name
        .as_ref()
        .map(|name| ForwardOrigin::HiddenUser {
            name: name.clone(),
            date,
        })
}

/// Where stored postback ids start: above every 32-bit message id (MTProto message ids are
/// 32-bit), so a postback can never share a key with a real message.
pub const POSTBACK_ID_BASE: i64 = 1 << 62;

/// A button press (`callback_query`).
///
/// A press is not a Telegram message: it has no message id and no time of its own. Storing it as
/// a message needs an id that (a) is the same each time Telegram delivers the update, so dedup
/// still works, and (b) can never be the id of a real message in that chat, or the press would
/// be deduplicated against (or overwrite) the message carrying the button. The origin message id
/// fails (b); a counter or a clock fails (a).
///
/// Telegram's callback query id is unique and stable across redeliveries, and is the decimal
/// form of a 64-bit integer (possibly negative). Its low 62 bits, added to
/// [`POSTBACK_ID_BASE`], become the message id: stable, above every real message id, and unique
/// unless two presses in one chat have ids that differ only in their two high bits (random ids:
/// odds of 2^-62 per pair). A callback id that is not such a number is rejected ("callback id is
/// not a number"), and so is a press on an inline-mode message (`inline_message_id`, no
/// `message`), which names no chat ("no chat").
///
/// The postback's date is the origin message's date (Telegram sends no time for a press; the
/// pipeline may prefer its receive time). Its sender is the user who pressed.
pub fn map_callback(account: AccountId, q: &wire::CallbackQuery) -> Change {
    let Some((origin, origin_chat)) = q.message.as_ref().and_then(|m| Some((m, m.chat.as_ref()?))) else {
        return rejected(account, "callback_query", "no chat");
    };
    let id =
        q.id.parse::<i64>()
            .ok()
            .or_else(|| q.id.parse::<u64>().ok().map(|u| u as i64));
    let Some(id) = id else {
        return rejected(account, "callback_query", "callback id is not a number");
    };
    let mut notes = Vec::new();
    let chat = chat(origin_chat, &mut notes);
    let sender = q.from.as_ref().map_or(Sender::Unknown, |u| Sender::User(user(u)));
    let payload = q
        .data
        .clone()
        .or_else(|| q.game_short_name.clone())
        .unwrap_or_default();
    Change::New(Message {
        account,
        chat,
        message_id: POSTBACK_ID_BASE | (id & (POSTBACK_ID_BASE - 1)),
        topic: origin.message_thread_id.filter(|_| origin.is_topic_message),
        direction: Direction::Incoming,
        date: origin.date,
        edited_at: None,
        status: Status::Delivered,
        content: MessageContent {
            sender,
            reply_to: None,
            forward: None,
            media_group: None,
            body: Body::Postback {
                payload,
                origin_message_id: Some(origin.message_id),
            },
            notes,
        },
    })
}

fn reaction(r: &wire::ReactionType) -> Option<Reaction> {
    match r {
        wire::ReactionType::Emoji { emoji } if !emoji.is_empty() => Some(Reaction::Emoji(emoji.clone())),
        wire::ReactionType::CustomEmoji { custom_emoji_id } if !custom_emoji_id.is_empty() => {
            Some(Reaction::Custom(custom_emoji_id.clone()))
        }
        wire::ReactionType::Paid => Some(Reaction::Paid),
        _ => None,
    }
}

/// One actor's new set of reactions (`message_reaction`). The actor is the user, or the chat
/// for reactions made on behalf of a chat; an update naming neither is rejected.
pub fn map_reaction(account: AccountId, r: &wire::MessageReactionUpdated) -> Change {
    let actor = match (&r.user, &r.actor_chat) {
        (Some(u), _) => u.id,
        (None, Some(c)) => c.id,
        (None, None) => return rejected(account, "message_reaction", "no actor"),
    };
    let mut reactions: Vec<Reaction> = r.new_reaction.iter().filter_map(reaction).collect();
    reactions.dedup();
    Change::Reaction {
        account,
        chat: chat(&r.chat, &mut Vec::new()),
        message_id: r.message_id,
        actor,
        reactions,
    }
}

/// Anonymous totals (`message_reaction_count`).
pub fn map_reaction_count(account: AccountId, r: &wire::MessageReactionCountUpdated) -> Change {
    Change::ReactionCount {
        account,
        chat: chat(&r.chat, &mut Vec::new()),
        message_id: r.message_id,
        totals: r
            .reactions
            .iter()
            .filter_map(|c| {
                Some(ReactionTally {
                    reaction: reaction(&c.kind)?,
                    count: c.total_count,
                })
            })
            .collect(),
    }
}
