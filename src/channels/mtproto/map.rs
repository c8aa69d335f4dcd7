//! MTProto updates (grammers' raw TL types) to normalised [`Change`]s.
//!
//! Mapped so far: new messages (`updateNewMessage`, which grammers also makes of
//! `updateShortMessage`, `updateShortChatMessage` and of the messages in a difference, and
//! `updateNewChannelMessage`) in private chats, basic groups, supergroups and channels, incoming
//! and outgoing, with text and entities, and their edits (`updateEditMessage`,
//! `updateEditChannelMessage`: the text is replaced, `edited_at` set). Chats get the Bot API's
//! IDs (a basic group `-id`, a supergroup or channel `-100…id`), so a supergroup message seen
//! by a bot and by a user account is one message. (Deletes, read receipts and typing are
//! mapped in `events`, which builds on this file.)
//!
//! Media (photos, documents as files, audio, voice, video, video notes, animations and
//! stickers, polls, locations, venues, contacts, dice) become the Bot API path's `Body`
//! variants in `map_media`, which also documents the file references stored for the later
//! download; the text becomes the caption. `reply_to` becomes the reply (and the forum topic),
//! `fwd_from` the forward origin, `grouped_id` the album (`media_group`). Service messages with
//! the common actions (chat created, members added, joined or left, title and photo changed,
//! pinned, migrated both ways, topic created) become the Bot API's service events, and a
//! migration also a [`Change::Migrate`]. A media kind or service action lanbox does not store
//! becomes a counted [`Change::Rejected`] naming only its kind, never the text; other updates
//! (online status, ...) map to nothing yet.

use std::collections::HashMap;

use grammers_client::peer::{Peer, PeerMap};
use grammers_client::session::types::PeerId;
use grammers_tl_types as tl;

use super::map_media;
use crate::ingest::Change;
use crate::model::{
    AccountId, Body, Chat, ChatKind, Direction, Entity, ForwardOrigin, Message, MessageContent, ReplyTo,
    Sender, ServiceEvent, Status, Text, UserRef,
};

/// The users and chats an answer described, by ID: an update's [`PeerMap`], or a history page's
/// (`backfill`: grammers builds no `PeerMap` for a raw call's answer).
pub trait Peers {
    fn get(&self, id: PeerId) -> Option<&Peer>;
}

impl Peers for PeerMap {
    fn get(&self, id: PeerId) -> Option<&Peer> {
        PeerMap::get(self, id)
    }
}

impl Peers for HashMap<PeerId, Peer> {
    fn get(&self, id: PeerId) -> Option<&Peer> {
        HashMap::get(self, &id)
    }
}

/// The changes of an update that carries a message (none for any other update).
pub fn map_update(
    account: AccountId,
    update: &tl::enums::Update,
    peers: &impl Peers,
    me: i64,
) -> Vec<Change> {
    use tl::enums::Update as U;
    let (message, edit) = match update {
        U::NewMessage(u) => (&u.message, false),
        U::EditMessage(u) => (&u.message, true),
        U::NewChannelMessage(u) => (&u.message, false),
        U::EditChannelMessage(u) => (&u.message, true),
        _ => return Vec::new(),
    };
    let mut notes = Vec::new();
    let mut migrate = None;
    let (head, body, media_group) = match message {
        tl::enums::Message::Message(m) => {
            let (text, text_notes) = text(&m.message, m.entities.as_deref().unwrap_or(&[]));
            notes.extend(text_notes);
            let body = match &m.media {
                None => Body::Text(text),
                Some(media) => {
                    let caption = (!text.text.is_empty()).then_some(text.clone());
                    match map_media::body(media, caption) {
                        map_media::Mapped::Text => Body::Text(text),
                        map_media::Mapped::Body(b) => b,
                        map_media::Mapped::Unsupported(kind) => {
                            return vec![rejected(account, kind, "media of this kind is not stored")];
                        }
                    }
                }
            };
            let head = Head {
                id: m.id,
                out: m.out,
                post: m.post,
                peer_id: &m.peer_id,
                from_id: m.from_id.as_ref(),
                post_author: m.post_author.as_deref(),
                date: m.date,
                edit_date: m.edit_date,
                reply_to: m.reply_to.as_ref(),
                fwd_from: m.fwd_from.as_ref(),
            };
            (head, body, m.grouped_id.map(|g| g.to_string()))
        }
        tl::enums::Message::Service(m) => {
            let head = Head {
                id: m.id,
                out: m.out,
                post: m.post,
                peer_id: &m.peer_id,
                from_id: m.from_id.as_ref(),
                post_author: None,
                date: m.date,
                edit_date: None,
                reply_to: m.reply_to.as_ref(),
                fwd_from: None,
            };
            let Some(event) = service(&m.action, &head, peers) else {
                return vec![rejected(
                    account,
                    "messageService",
                    &format!("service action {} is not stored", action_name(&m.action)),
                )];
            };
            migrate = migration(account, &event, &head, peers);
            (head, Body::Service(event), None)
        }
        tl::enums::Message::Empty(_) => return vec![rejected(account, "messageEmpty", "empty message")],
    };
    let chat = chat_of(head.peer_id, peers, head.post);
    let (direction, status) = if head.out {
        (Direction::Outgoing, Status::Sent)
    } else {
        (Direction::Incoming, Status::Delivered)
    };
    let sender = sender(&head, &chat, peers, me);
    let (reply_to, topic) = reply_to(head.reply_to, peers);
    let is_pin = matches!(body, Body::Service(ServiceEvent::Pinned { .. }));
    let forward = head.fwd_from.and_then(|f| forward(f, peers, &mut notes));
    let message = Message {
        account,
        chat,
        message_id: i64::from(head.id),
        topic,
        direction,
        date: i64::from(head.date),
        edited_at: head.edit_date.map(i64::from),
        status,
        content: MessageContent {
            sender,
            // A pin names its message in `reply_to`; the body says which already.
            reply_to: reply_to.filter(|_| !is_pin),
            forward,
            media_group,
            body,
            notes,
        },
    };
    let mut out = Vec::with_capacity(2);
    out.push(if edit {
        Change::Edit(message)
    } else {
        Change::New(message)
    });
    out.extend(migrate);
    out
}

/// The parts of a message and a service message that are mapped alike.
struct Head<'a> {
    id: i32,
    out: bool,
    post: bool,
    peer_id: &'a tl::enums::Peer,
    from_id: Option<&'a tl::enums::Peer>,
    post_author: Option<&'a str>,
    date: i32,
    edit_date: Option<i32>,
    reply_to: Option<&'a tl::enums::MessageReplyHeader>,
    fwd_from: Option<&'a tl::enums::MessageFwdHeader>,
}

fn sender(m: &Head<'_>, chat: &Chat, peers: &impl Peers, me: i64) -> Sender {
    let signature = m.post_author.map(str::to_string);
    match (m.from_id, m.peer_id) {
        (_, tl::enums::Peer::User(_)) if m.out => Sender::User(user_ref(peers, me)),
        (_, tl::enums::Peer::User(p)) => Sender::User(user_ref(peers, p.user_id)),
        (Some(tl::enums::Peer::User(u)), _) => Sender::User(user_ref(peers, u.user_id)),
        (Some(other), _) => {
            let c = chat_of(other, peers, true);
            Sender::Chat {
                id: c.id,
                title: c.title,
                username: c.username,
                signature,
            }
        }
        // A channel post: the channel itself wrote it.
        (None, _) if chat.kind == ChatKind::Channel => Sender::Chat {
            id: chat.id,
            title: chat.title.clone(),
            username: chat.username.clone(),
            signature,
        },
        (None, _) if m.out => Sender::User(user_ref(peers, me)),
        (None, _) => Sender::Unknown,
    }
}

/// The reply (`reply_to_msg_id`, in another chat when `reply_to_peer_id` is set) and the forum
/// topic. In a forum topic, a message that answers nothing names the topic's first message
/// with `forum_topic` set and no `reply_to_top_id`: that is the thread, not a reply (as the
/// Bot API path reads its `reply_to_message`).
fn reply_to(h: Option<&tl::enums::MessageReplyHeader>, peers: &impl Peers) -> (Option<ReplyTo>, Option<i64>) {
    let Some(tl::enums::MessageReplyHeader::Header(h)) = h else {
        return (None, None);
    };
    let Some(id) = h.reply_to_msg_id else {
        return (None, None);
    };
    if h.forum_topic && h.reply_to_top_id.is_none() {
        return (None, Some(i64::from(id)));
    }
    let topic = h.forum_topic.then(|| h.reply_to_top_id.map(i64::from)).flatten();
    let reply = ReplyTo {
        message_id: i64::from(id),
        chat_id: h.reply_to_peer_id.as_ref().map(|p| chat_of(p, peers, false).id),
        quote: h.quote_text.clone(),
    };
    (Some(reply), topic)
}

/// Where a forwarded message came from (`fwd_from`), as the Bot API's `forward_origin` says it.
fn forward(
    f: &tl::enums::MessageFwdHeader,
    peers: &impl Peers,
    notes: &mut Vec<String>,
) -> Option<ForwardOrigin> {
    let tl::enums::MessageFwdHeader::Header(f) = f;
    let date = i64::from(f.date);
    let signature = f.post_author.clone();
    match (&f.from_id, f.channel_post) {
        (Some(tl::enums::Peer::User(u)), _) => Some(ForwardOrigin::User {
            user: user_ref(peers, u.user_id),
            date,
        }),
        (Some(p @ tl::enums::Peer::Channel(_)), Some(post)) => {
            let c = chat_of(p, peers, true);
            Some(ForwardOrigin::Channel {
                chat_id: c.id,
                title: c.title,
                message_id: i64::from(post),
                signature,
                date,
            })
        }
        (Some(p), _) => {
            let c = chat_of(p, peers, false);
            Some(ForwardOrigin::Chat {
                chat_id: c.id,
                title: c.title,
                signature,
                date,
            })
        }
        (None, _) => match &f.from_name {
            Some(name) => Some(ForwardOrigin::HiddenUser {
                name: name.clone(),
                date,
            }),
            None => {
                notes.push("forward without an origin: not shown".to_string());
                None
            }
        },
    }
}

/// A service action as the Bot API's service message says it; `None` for actions lanbox does
/// not store.
fn service(action: &tl::enums::MessageAction, head: &Head<'_>, peers: &impl Peers) -> Option<ServiceEvent> {
    use tl::enums::MessageAction as A;
    Some(match action {
        A::ChatCreate(_) | A::ChannelCreate(_) => ServiceEvent::ChatCreated,
        A::ChatAddUser(a) => {
            ServiceEvent::MembersJoined(a.users.iter().map(|&id| user_ref(peers, id)).collect())
        }
        // The Bot API lists who joined by a link in `new_chat_members`: the sender.
        A::ChatJoinedByLink(_) | A::ChatJoinedByRequest => match head.from_id {
            Some(tl::enums::Peer::User(u)) => ServiceEvent::MembersJoined(vec![user_ref(peers, u.user_id)]),
            _ => return None,
        },
        A::ChatDeleteUser(a) => ServiceEvent::MemberLeft(user_ref(peers, a.user_id)),
        A::ChatEditTitle(a) => ServiceEvent::TitleChanged {
            title: a.title.clone(),
        },
        A::ChatEditPhoto(_) => ServiceEvent::Other("new_chat_photo".to_string()),
        A::ChatDeletePhoto => ServiceEvent::Other("delete_chat_photo".to_string()),
        A::PinMessage => match head.reply_to {
            Some(tl::enums::MessageReplyHeader::Header(h)) => ServiceEvent::Pinned {
                message_id: i64::from(h.reply_to_msg_id?),
            },
            _ => return None,
        },
        A::ChatMigrateTo(a) => ServiceEvent::MigratedTo {
            to: PeerId::channel_unchecked(a.channel_id).bot_api_dialog_id_unchecked(),
        },
        A::ChannelMigrateFrom(a) => ServiceEvent::MigratedFrom {
            from: PeerId::chat_unchecked(a.chat_id).bot_api_dialog_id_unchecked(),
        },
        A::TopicCreate(a) => ServiceEvent::TopicCreated {
            name: a.title.clone(),
            icon_color: u32::try_from(a.icon_color).ok(),
        },
        _ => return None,
    })
}

/// A migration's [`Change::Migrate`], from either side, as the Bot API path makes it.
fn migration(
    account: AccountId,
    event: &ServiceEvent,
    head: &Head<'_>,
    peers: &impl Peers,
) -> Option<Change> {
    let chat = chat_of(head.peer_id, peers, false);
    match *event {
        ServiceEvent::MigratedTo { to } => Some(Change::Migrate {
            account,
            from_group: chat.id,
            to_supergroup: Chat {
                id: to,
                kind: ChatKind::Supergroup,
                title: chat.title,
                username: None,
                is_forum: false,
            },
        }),
        ServiceEvent::MigratedFrom { from } => Some(Change::Migrate {
            account,
            from_group: from,
            to_supergroup: chat,
        }),
        _ => None,
    }
}

/// The TL name of a service action (`messageActionPhoneCall`), never its content.
fn action_name(action: &tl::enums::MessageAction) -> String {
    // The variant's name is the start of its debug form; the rest (the content) is dropped.
    let debug = format!("{action:?}");
    let variant: String = debug.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    format!("messageAction{variant}")
}

/// The chat of a peer, with the Bot API's ID, its kind and title from `peers` (what the update
/// carried). A channel the update did not describe is a supergroup unless the message is a
/// broadcast `post`.
pub(super) fn chat_of(peer: &tl::enums::Peer, peers: &impl Peers, post: bool) -> Chat {
    match peer {
        tl::enums::Peer::User(p) => {
            let other = user_ref(peers, p.user_id);
            // An update that did not describe the person (`updateShortMessage`) leaves the
            // title the chat has rather than blanking it.
            let known = peers.get(PeerId::user_unchecked(p.user_id)).is_some();
            Chat {
                id: p.user_id,
                kind: ChatKind::Private,
                title: known.then(|| full_name(&other)),
                username: other.username,
                is_forum: false,
            }
        }
        tl::enums::Peer::Chat(p) => {
            let id = PeerId::chat_unchecked(p.chat_id);
            Chat {
                id: id.bot_api_dialog_id_unchecked(),
                kind: ChatKind::Group,
                title: peers.get(id).and_then(Peer::name).map(str::to_string),
                username: None,
                is_forum: false,
            }
        }
        tl::enums::Peer::Channel(p) => {
            let id = PeerId::channel_unchecked(p.channel_id);
            let found = peers.get(id);
            let kind = match found {
                Some(Peer::Channel(_)) => ChatKind::Channel,
                Some(_) => ChatKind::Supergroup,
                None if post => ChatKind::Channel,
                None => ChatKind::Supergroup,
            };
            Chat {
                id: id.bot_api_dialog_id_unchecked(),
                kind,
                title: found.and_then(Peer::name).map(str::to_string),
                username: found.and_then(Peer::username).map(str::to_string),
                is_forum: false,
            }
        }
    }
}

pub(super) fn rejected(account: AccountId, update_type: &str, reason: &str) -> Change {
    Change::Rejected {
        account,
        update_type: update_type.to_string(),
        reason: reason.to_string(),
    }
}

pub(super) fn user_ref(peers: &impl Peers, id: i64) -> UserRef {
    let found = peers.get(PeerId::user_unchecked(id)).and_then(|p| match p {
        Peer::User(u) => Some(u),
        _ => None,
    });
    UserRef {
        id,
        is_bot: found.is_some_and(|u| u.is_bot()),
        first_name: found.and_then(|u| u.first_name()).unwrap_or_default().to_string(),
        last_name: found.and_then(|u| u.last_name()).map(str::to_string),
        username: found.and_then(|u| u.username()).map(str::to_string),
        language_code: None,
    }
}

pub(super) fn full_name(u: &UserRef) -> String {
    match &u.last_name {
        Some(l) => format!("{} {l}", u.first_name),
        None => u.first_name.clone(),
    }
}

/// Text with its entities; MTProto offsets count UTF-16 code units, the model's count UTF-8
/// bytes. An entity that does not fit the text is dropped with a note (no text in the note).
fn text(s: &str, entities: &[tl::enums::MessageEntity]) -> (Text, Vec<String>) {
    let mut notes = Vec::new();
    let mut out = Vec::new();
    for (i, e) in entities.iter().enumerate() {
        let (kind, offset, length, url) = entity_parts(e);
        match (
            utf16_to_byte(s, offset),
            utf16_to_byte(s, offset.saturating_add(length)),
        ) {
            (Some(start), Some(end)) if start < end => out.push(Entity {
                kind: kind.to_string(),
                start: start as u32,
                end: end as u32,
                url,
                user_id: None,
                language: None,
                custom_emoji_id: None,
            }),
            _ => notes.push(format!("entity {i} ({kind}) is outside the text and was dropped")),
        }
    }
    (
        Text {
            text: s.to_string(),
            entities: out,
        },
        notes,
    )
}

fn entity_parts(e: &tl::enums::MessageEntity) -> (&'static str, i32, i32, Option<String>) {
    use tl::enums::MessageEntity as E;
    match e {
        E::Bold(x) => ("bold", x.offset, x.length, None),
        E::Italic(x) => ("italic", x.offset, x.length, None),
        E::Underline(x) => ("underline", x.offset, x.length, None),
        E::Strike(x) => ("strikethrough", x.offset, x.length, None),
        E::Code(x) => ("code", x.offset, x.length, None),
        E::Pre(x) => ("pre", x.offset, x.length, None),
        E::Url(x) => ("url", x.offset, x.length, None),
        E::TextUrl(x) => ("text_link", x.offset, x.length, Some(x.url.clone())),
        E::Mention(x) => ("mention", x.offset, x.length, None),
        E::Hashtag(x) => ("hashtag", x.offset, x.length, None),
        E::Email(x) => ("email", x.offset, x.length, None),
        E::Phone(x) => ("phone_number", x.offset, x.length, None),
        E::Spoiler(x) => ("spoiler", x.offset, x.length, None),
        _ => ("unknown", 0, 0, None),
    }
}

/// The byte offset of UTF-16 offset `units` in `s`, if it falls on a character boundary.
fn utf16_to_byte(s: &str, units: i32) -> Option<usize> {
    let units = usize::try_from(units).ok()?;
    let mut seen = 0usize;
    for (byte, c) in s.char_indices() {
        if seen == units {
            return Some(byte);
        }
        seen += c.len_utf16();
        if seen > units {
            return None;
        }
    }
    (seen == units).then_some(s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_offsets_become_byte_offsets_on_boundaries() {
        let s = "a😀b";
        assert_eq!(utf16_to_byte(s, 0), Some(0));
        assert_eq!(utf16_to_byte(s, 1), Some(1));
        assert_eq!(utf16_to_byte(s, 2), None, "inside the surrogate pair");
        assert_eq!(utf16_to_byte(s, 3), Some(5));
        assert_eq!(utf16_to_byte(s, 4), Some(6));
        assert_eq!(utf16_to_byte(s, 5), None);
    }

    #[test]
    fn an_action_is_named_without_its_content() {
        let a: tl::enums::MessageAction = tl::types::MessageActionCustomAction {
            message: "secret words".into(),
        }
        .into();
        assert_eq!(action_name(&a), "messageActionCustomAction");
        assert_eq!(
            action_name(&tl::enums::MessageAction::PinMessage),
            "messageActionPinMessage"
        );
    }
}
