//! MTProto updates (grammers' raw TL types) to normalised [`Change`]s.
//!
//! Mapped so far: new messages (`updateNewMessage`, which grammers also makes of
//! `updateShortMessage`, `updateShortChatMessage` and of the messages in a difference, and
//! `updateNewChannelMessage`) in private chats, basic groups, supergroups and channels, incoming
//! and outgoing, with text and entities, and their edits (`updateEditMessage`,
//! `updateEditChannelMessage`: the text is replaced, `edited_at` set). Chats get the Bot API's
//! IDs (a basic group `-id`, a supergroup or channel `-100…id`), so a supergroup message seen
//! by a bot and by a user account is one message. (Deletes, read receipts and typing are
//! mapped in `events`, which builds on this file.) A message with media, or a service message, becomes a counted
//! [`Change::Rejected`] naming what it was, never its text; other updates (online status, ...)
//! map to nothing yet. Media is the next step of issue 16.

use std::collections::HashMap;

use grammers_client::peer::{Peer, PeerMap};
use grammers_client::session::types::PeerId;
use grammers_tl_types as tl;

use crate::ingest::Change;
use crate::model::{
    AccountId, Body, Chat, ChatKind, Direction, Entity, Message, MessageContent, Sender, Status, Text,
    UserRef,
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
    let (message, edit, name) = match update {
        U::NewMessage(u) => (&u.message, false, "updateNewMessage"),
        U::EditMessage(u) => (&u.message, true, "updateEditMessage"),
        U::NewChannelMessage(u) => (&u.message, false, "updateNewChannelMessage"),
        U::EditChannelMessage(u) => (&u.message, true, "updateEditChannelMessage"),
        _ => return Vec::new(),
    };
    let tl::enums::Message::Message(m) = message else {
        return vec![rejected(
            account,
            "messageService",
            "service messages are not stored yet",
        )];
    };
    if m.media.is_some() {
        return vec![rejected(account, name, "media messages are not stored yet")];
    }
    let chat = chat_of(&m.peer_id, peers, m.post);
    let (direction, status) = if m.out {
        (Direction::Outgoing, Status::Sent)
    } else {
        (Direction::Incoming, Status::Delivered)
    };
    let sender = match (&m.from_id, &m.peer_id) {
        (_, tl::enums::Peer::User(_)) if m.out => Sender::User(user_ref(peers, me)),
        (_, tl::enums::Peer::User(p)) => Sender::User(user_ref(peers, p.user_id)),
        (Some(tl::enums::Peer::User(u)), _) => Sender::User(user_ref(peers, u.user_id)),
        (Some(other), _) => {
            let c = chat_of(other, peers, true);
            Sender::Chat {
                id: c.id,
                title: c.title,
                username: c.username,
                signature: m.post_author.clone(),
            }
        }
        // A channel post: the channel itself wrote it.
        (None, _) if chat.kind == ChatKind::Channel => Sender::Chat {
            id: chat.id,
            title: chat.title.clone(),
            username: chat.username.clone(),
            signature: m.post_author.clone(),
        },
        (None, _) if m.out => Sender::User(user_ref(peers, me)),
        (None, _) => Sender::Unknown,
    };
    let (text, notes) = text(&m.message, m.entities.as_deref().unwrap_or(&[]));
    let message = Message {
        account,
        chat,
        message_id: i64::from(m.id),
        topic: None,
        direction,
        date: i64::from(m.date),
        edited_at: m.edit_date.map(i64::from),
        status,
        content: MessageContent {
            sender,
            reply_to: None,
            forward: None,
            media_group: m.grouped_id.map(|g| g.to_string()),
            body: Body::Text(text),
            notes,
        },
    };
    vec![if edit {
        Change::Edit(message)
    } else {
        Change::New(message)
    }]
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
}
