//! What a test makes happen in groups and channels, and what carries no message: deletes, the
//! other side's read receipts and typing. Each is pushed to the connected clients as Telegram
//! words it; the steps with a pts are also logged, so a client that missed them gets them in
//! its next difference.

use grammers_tl_types as tl;

use super::world::{SimChat, SimChatKind, Step};
use super::{MtSimulator, SimUser};

impl MtSimulator {
    /// A basic group, supergroup or broadcast channel the account is in.
    pub fn add_chat(&self, title: &str, kind: SimChatKind) -> SimChat {
        self.shared.lock().add_chat(title, kind)
    }

    /// `from` writes `text` in `chat` (`updateNewMessage` in a basic group,
    /// `updateNewChannelMessage` in a supergroup or channel); the message ID.
    pub fn message_in(&self, chat: &SimChat, from: &SimUser, text: &str) -> i32 {
        let from = if chat.kind == SimChatKind::Channel {
            0
        } else {
            from.id
        };
        self.step(|w| w.append_chat_message(chat.id, from, false, text))
            .expect("the account is in the chat")
            .message_id
    }

    /// The account writes `text` in `chat` from another device (in a channel: posts it).
    pub fn message_out_in(&self, chat: &SimChat, text: &str) -> i32 {
        self.step(|w| {
            let me = w.me.id;
            w.append_chat_message(chat.id, me, true, text)
        })
        .expect("the account is in the chat")
        .message_id
    }

    /// Messages of private chats and basic groups are deleted: `updateDeleteMessages`, which
    /// names only the (per-account) IDs.
    pub fn delete(&self, ids: &[i32]) {
        self.step(|w| Some(w.append_step(None, 0, 0, ids.len() as i32, Step::Deleted(ids.to_vec()))));
    }

    /// Messages of a supergroup or channel are deleted: `updateDeleteChannelMessages`.
    pub fn delete_in(&self, chat: &SimChat, ids: &[i32]) {
        self.step(|w| w.append_channel_delete(chat.id, ids))
            .expect("a supergroup or channel the account is in");
    }

    /// `peer` read the account's messages up to `max_id`: `updateReadHistoryOutbox`.
    pub fn read_outbox(&self, peer: &SimUser, max_id: i32) {
        self.step(|w| Some(w.append_step(None, peer.id, max_id, 1, Step::ReadOutbox)));
    }

    /// The account's messages in `chat` were read up to `max_id`: `updateReadHistoryOutbox` in
    /// a basic group (a step of the account's sequence), `updateReadChannelOutbox` (no pts)
    /// in a supergroup or channel.
    pub fn read_outbox_in(&self, chat: &SimChat, max_id: i32) {
        if !chat.is_channel() {
            self.step(|w| Some(w.append_step(Some(chat.id), 0, max_id, 1, Step::ReadOutbox)));
            return;
        }
        let u = tl::types::UpdateReadChannelOutbox {
            channel_id: chat.id,
            max_id,
        };
        self.push_plain(vec![u.into()], &[], Some(chat));
    }

    /// `from` is typing to the account: `updateUserTyping` in an `updateShort`, as Telegram
    /// sends it (no users attached: the client knows them from their messages).
    pub fn typing(&self, from: &SimUser) {
        let w = self.shared.lock();
        let u = tl::types::UpdateShort {
            update: tl::types::UpdateUserTyping {
                user_id: from.id,
                top_msg_id: None,
                action: tl::enums::SendMessageAction::SendMessageTypingAction,
            }
            .into(),
            date: w.date.max(super::world::now()),
        };
        let _ = self.pushes.send(std::sync::Arc::new(u.into()));
    }

    /// `from` is typing in `chat`: `updateChatUserTyping` or `updateChannelUserTyping`.
    pub fn typing_in(&self, chat: &SimChat, from: &SimUser) {
        let action = tl::enums::SendMessageAction::SendMessageTypingAction;
        let from_id: tl::enums::Peer = tl::types::PeerUser { user_id: from.id }.into();
        let u: tl::enums::Update = if chat.is_channel() {
            tl::types::UpdateChannelUserTyping {
                channel_id: chat.id,
                top_msg_id: None,
                from_id,
                action,
            }
            .into()
        } else {
            tl::types::UpdateChatUserTyping {
                chat_id: chat.id,
                from_id,
                action,
            }
            .into()
        };
        self.push_plain(vec![u], &[from.id], Some(chat));
    }
}
