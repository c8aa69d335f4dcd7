//! MTProto updates that carry no message: deletes, read receipts of the account's outgoing
//! messages, and the other side typing.
//!
//! - `updateDeleteChannelMessages` names its channel: a [`Change::Delete`] at once.
//!   `updateDeleteMessages` (private chats and basic groups) names only message IDs, which are
//!   per account there: [`deleted_ids`] hands them to the connector, which finds their chats in
//!   [`super::message_chat`] before it builds the delete.
//! - `updateReadHistoryOutbox` and `updateReadChannelOutbox` become [`Change::ReadOutbox`]: the
//!   account's outgoing messages up to `max_id` are `read`.
//! - `updateUserTyping`, `updateChatUserTyping` and `updateChannelUserTyping` (the "typing"
//!   action only; the other actions, and cancelling, are not shown) become a
//!   [`CustomerTyping`], which is not stored: the service passes it to the live feed.

use grammers_client::peer::PeerMap;
use grammers_tl_types as tl;

use super::map::{chat_of, full_name, user_ref};
use crate::ingest::Change;
use crate::ingest::apply::scope_for;
use crate::model::{AccountId, Chat};
use crate::store::ChatKey;

/// Someone other than the account started typing in one of its chats.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerTyping {
    pub account: AccountId,
    /// The chat as the store keys it.
    pub chat: ChatKey,
    /// The Telegram user typing.
    pub user_id: i64,
    /// Their name, as the update's peers give it (empty when it named none).
    pub name: String,
}

/// The changes of an update that carries no message (none for any other update);
/// `updateDeleteMessages` maps to none here (see [`deleted_ids`]).
pub fn map_event(account: AccountId, update: &tl::enums::Update, peers: &PeerMap) -> Vec<Change> {
    use tl::enums::Update as U;
    match update {
        U::DeleteChannelMessages(u) => vec![Change::Delete {
            account,
            chat: channel(u.channel_id, peers),
            message_ids: u.messages.iter().map(|&i| i64::from(i)).collect(),
        }],
        U::ReadHistoryOutbox(u) => vec![Change::ReadOutbox {
            account,
            chat: chat_of(&u.peer, peers, false),
            up_to: i64::from(u.max_id),
        }],
        U::ReadChannelOutbox(u) => vec![Change::ReadOutbox {
            account,
            chat: channel(u.channel_id, peers),
            up_to: i64::from(u.max_id),
        }],
        _ => Vec::new(),
    }
}

/// The message IDs of an `updateDeleteMessages` (a private chat or basic group, chat unnamed).
pub fn deleted_ids(update: &tl::enums::Update) -> Option<&[i32]> {
    match update {
        tl::enums::Update::DeleteMessages(u) => Some(&u.messages),
        _ => None,
    }
}

/// Who started typing where, if `update` says so; `me`'s own typing (another device of the
/// account) is not shown.
pub fn typing(
    account: AccountId,
    update: &tl::enums::Update,
    peers: &PeerMap,
    me: i64,
) -> Option<CustomerTyping> {
    use tl::enums::Update as U;
    let user = |p: &tl::enums::Peer| match p {
        tl::enums::Peer::User(u) => Some(u.user_id),
        _ => None,
    };
    let (chat, user_id, action) = match update {
        U::UserTyping(u) => (
            chat_of(&tl::types::PeerUser { user_id: u.user_id }.into(), peers, false),
            u.user_id,
            &u.action,
        ),
        U::ChatUserTyping(u) => (
            chat_of(&tl::types::PeerChat { chat_id: u.chat_id }.into(), peers, false),
            user(&u.from_id)?,
            &u.action,
        ),
        U::ChannelUserTyping(u) => (channel(u.channel_id, peers), user(&u.from_id)?, &u.action),
        _ => return None,
    };
    if user_id == me || !matches!(action, tl::enums::SendMessageAction::SendMessageTypingAction) {
        return None;
    }
    Some(CustomerTyping {
        account,
        chat: ChatKey {
            scope: scope_for(account, chat.kind),
            chat: chat.id,
        },
        user_id,
        name: full_name(&user_ref(peers, user_id)),
    })
}

fn channel(channel_id: i64, peers: &PeerMap) -> Chat {
    chat_of(&tl::types::PeerChannel { channel_id }.into(), peers, false)
}
