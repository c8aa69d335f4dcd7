//! Sending through a user account (issue 16, point 7): the calls the outbox makes, on the
//! connector's own running grammers client, never a second session (Telegram sees one
//! connection per account, and what it answers goes through the same message box, so the
//! pts a send moves is the one the update stream follows).
//!
//! The connector publishes its client in a [`LiveSlot`] while it is connected
//! ([`super::connectors::UserConnectors::sender`] hands a [`UserSender`] over it to the outbox).
//! A chat is named to Telegram by an `InputPeer`, which for a person or a channel needs its
//! access hash: the client's session holds the hashes of every peer its updates described
//! (grammers caches them), the store the channels' ([`super::channel_access`], kept across
//! restarts) and the people's ([`super::channel_access::ACCOUNT_USER_ACCESS`]).
//!
//! Errors never carry message text: Telegram's RPC errors are names (`MESSAGE_TOO_LONG`),
//! and `FLOOD_WAIT_n` / `SLOWMODE_WAIT_n` become [`SendError::Wait`] with their seconds.

use std::sync::{Arc, Mutex};

use grammers_client::{Client, InvocationError};
use grammers_session::Session;
use grammers_session::storages::MemorySession;
use grammers_session::types::{PeerAuth, PeerId, PeerKind, PeerRef};
use grammers_tl_types as tl;

use super::channel_access;
use crate::model::ChatKind;
use crate::store::Store;

/// The connector's client while it is connected, and the session it runs on.
#[derive(Clone)]
pub struct LiveClient {
    pub client: Client,
    pub session: Arc<MemorySession>,
    /// The signed-in person's user ID.
    pub me: i64,
}

/// Where a connector publishes its [`LiveClient`] (empty while it is not connected). A std
/// Mutex, not a tokio one: it is held only to clone or replace the handle. Each client put in
/// gets a number, so a connector that stops after its successor started (a restart) withdraws
/// only its own client.
#[derive(Clone, Default)]
pub struct LiveSlot(Arc<Mutex<(u64, Option<LiveClient>)>>);

impl LiveSlot {
    /// Publishes `live`; returns the number to [`LiveSlot::withdraw`] it with.
    pub fn set(&self, live: LiveClient) -> u64 {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        g.1 = Some(live);
        g.0
    }

    /// Empties the slot if it still holds client `number`.
    pub fn withdraw(&self, number: u64) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 == number {
            g.1 = None;
        }
    }

    pub fn get(&self) -> Option<LiveClient> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1.clone()
    }
}

/// Why a call through a user account did not go through. No variant holds message text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// `FLOOD_WAIT_n`, `SLOWMODE_WAIT_n` (or `FLOOD_PREMIUM_WAIT_n`): wait `n` seconds.
    #[error("Telegram asks to wait {0} s ({1})")]
    Wait(u64, String),
    /// The connector is not connected right now (it reconnects by itself).
    #[error("the account's connection to Telegram is down")]
    Offline,
    /// The request may not have reached Telegram, or its answer did not come back.
    #[error("network error: {0}")]
    Network(String),
    /// Telegram had an internal problem (5xx): worth trying again.
    #[error("Telegram server error {0}")]
    Server(String),
    /// No access hash is known for the chat (no update has described it yet).
    #[error("the chat is not known to this account's session yet")]
    UnknownPeer,
    /// Telegram refused the request (its error name, e.g. `CHAT_WRITE_FORBIDDEN`).
    #[error("Telegram error {0}: {1}")]
    Refused(i32, String),
}

impl SendError {
    fn from_invocation(e: InvocationError) -> SendError {
        match e {
            InvocationError::Rpc(r) => {
                let waits = ["FLOOD_WAIT", "SLOWMODE_WAIT", "FLOOD_PREMIUM_WAIT"];
                match r.value {
                    Some(n) if waits.contains(&r.name.as_str()) => SendError::Wait(u64::from(n), r.name),
                    _ if r.code >= 500 => SendError::Server(r.name),
                    Some(n) => SendError::Refused(r.code, format!("{}_{n}", r.name)),
                    None => SendError::Refused(r.code, r.name),
                }
            }
            other => SendError::Network(other.to_string()),
        }
    }
}

/// What Telegram answered to a send: the new message's ID and date, and who sent it (the
/// signed-in person).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub message_id: i32,
    pub date: i32,
    pub from: i64,
}

/// Sending through one user account, over its connector's client.
#[derive(Clone)]
pub struct UserSender {
    pub account: u64,
    pub store: Store,
    pub slot: LiveSlot,
}

impl std::fmt::Debug for UserSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSender")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// A chat as MTProto names it.
enum Target {
    Peer(tl::enums::InputPeer),
    Channel(tl::enums::InputPeer, tl::enums::InputChannel),
}

impl Target {
    fn peer(&self) -> tl::enums::InputPeer {
        match self {
            Target::Peer(p) | Target::Channel(p, _) => p.clone(),
        }
    }
}

impl UserSender {
    fn live(&self) -> Result<LiveClient, SendError> {
        self.slot.get().ok_or(SendError::Offline)
    }

    /// The chat `chat` (the Bot API's ID, as the store keys chats) as an `InputPeer`.
    async fn target(&self, live: &LiveClient, chat: i64, kind: ChatKind) -> Result<Target, SendError> {
        let id = PeerId::from_bot_api_dialog_id(chat).ok_or(SendError::UnknownPeer)?;
        let cached = live
            .session
            .peer_ref(id)
            .await
            .map_err(|e| SendError::Network(e.to_string()))?;
        let peer = match (cached, id.kind()) {
            (Some(p), _) => p,
            (None, PeerKind::Chat) => id.to_ambient_ref(),
            (None, kind) => {
                let (account, bare) = (self.account, id.bare_id_unchecked());
                let channel = kind != PeerKind::User;
                let hash = self
                    .store
                    .read(move |r| {
                        if channel {
                            channel_access::hash_of(r, account, bare)
                        } else {
                            channel_access::user_hash_of(r, account, bare)
                        }
                    })
                    .await
                    .map_err(|e| SendError::Network(e.to_string()))?
                    .ok_or(SendError::UnknownPeer)?;
                PeerRef {
                    id,
                    auth: PeerAuth::from_hash(hash),
                }
            }
        };
        let input = tl::enums::InputPeer::from(&peer);
        Ok(match (kind, peer.id.kind()) {
            (_, PeerKind::Channel) => Target::Channel(input, tl::enums::InputChannel::from(&peer)),
            _ => Target::Peer(input),
        })
    }

    /// `messages.sendMessage`: `text` (with `entities`) to `chat`, answering `reply_to`.
    pub async fn send_text(
        &self,
        chat: i64,
        kind: ChatKind,
        text: &str,
        entities: Vec<tl::enums::MessageEntity>,
        reply_to: Option<i64>,
    ) -> Result<Sent, SendError> {
        let live = self.live()?;
        let target = self.target(&live, chat, kind).await?;
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| SendError::Network(e.to_string()))?;
        let req = tl::functions::messages::SendMessage {
            no_webpage: false,
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer: target.peer(),
            reply_to: reply_to
                .and_then(|m| i32::try_from(m).ok())
                .map(|reply_to_msg_id| {
                    tl::types::InputReplyToMessage {
                        reply_to_msg_id,
                        top_msg_id: None,
                        reply_to_peer_id: None,
                        quote_text: None,
                        quote_entities: None,
                        quote_offset: None,
                        monoforum_peer_id: None,
                        todo_item_id: None,
                        poll_option: None,
                    }
                    .into()
                }),
            message: text.to_owned(),
            random_id: i64::from_le_bytes(random),
            reply_markup: None,
            entities: (!entities.is_empty()).then_some(entities),
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        };
        let answer = live
            .client
            .invoke(&req)
            .await
            .map_err(SendError::from_invocation)?;
        sent_of(&answer, req.random_id, live.me).ok_or_else(|| {
            SendError::Network("Telegram's answer named no message; it may have been sent".into())
        })
    }

    /// `messages.editMessage`: the text of message `id` in `chat`. Returns the edit's date
    /// when Telegram's answer carried the edited message.
    pub async fn edit_text(
        &self,
        chat: i64,
        kind: ChatKind,
        id: i64,
        text: &str,
    ) -> Result<Option<i32>, SendError> {
        let live = self.live()?;
        let target = self.target(&live, chat, kind).await?;
        let id = i32::try_from(id).map_err(|_| SendError::Refused(400, "MESSAGE_ID_INVALID".into()))?;
        let req = tl::functions::messages::EditMessage {
            no_webpage: false,
            invert_media: false,
            peer: target.peer(),
            id,
            message: Some(text.to_owned()),
            media: None,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            quick_reply_shortcut_id: None,
            rich_message: None,
        };
        let answer = live
            .client
            .invoke(&req)
            .await
            .map_err(SendError::from_invocation)?;
        Ok(edit_date_of(&answer, id))
    }

    /// Deletes message `id` for everyone: `channels.deleteMessages` in a supergroup or
    /// channel, `messages.deleteMessages` with `revoke` elsewhere.
    pub async fn delete(&self, chat: i64, kind: ChatKind, id: i64) -> Result<(), SendError> {
        let live = self.live()?;
        let target = self.target(&live, chat, kind).await?;
        let id = i32::try_from(id).map_err(|_| SendError::Refused(400, "MESSAGE_ID_INVALID".into()))?;
        let r = match target {
            Target::Channel(_, channel) => live
                .client
                .invoke(&tl::functions::channels::DeleteMessages {
                    channel,
                    id: vec![id],
                })
                .await
                .map(drop),
            Target::Peer(_) => live
                .client
                .invoke(&tl::functions::messages::DeleteMessages {
                    revoke: true,
                    id: vec![id],
                })
                .await
                .map(drop),
        };
        r.map_err(SendError::from_invocation)
    }

    /// `messages.setTyping` (the typing action) in `chat`.
    pub async fn typing(&self, chat: i64, kind: ChatKind) -> Result<(), SendError> {
        let live = self.live()?;
        let target = self.target(&live, chat, kind).await?;
        live.client
            .invoke(&tl::functions::messages::SetTyping {
                peer: target.peer(),
                top_msg_id: None,
                action: tl::enums::SendMessageAction::SendMessageTypingAction,
            })
            .await
            .map(drop)
            .map_err(SendError::from_invocation)
    }

    /// Marks the other side's messages in `chat` read on Telegram up to `max_id`:
    /// `channels.readHistory` in a supergroup or channel, `messages.readHistory` elsewhere.
    pub async fn read_history(&self, chat: i64, kind: ChatKind, max_id: i64) -> Result<(), SendError> {
        let live = self.live()?;
        let target = self.target(&live, chat, kind).await?;
        let max_id = i32::try_from(max_id).unwrap_or(i32::MAX);
        let r = match target {
            Target::Channel(_, channel) => live
                .client
                .invoke(&tl::functions::channels::ReadHistory { channel, max_id })
                .await
                .map(drop),
            Target::Peer(peer) => live
                .client
                .invoke(&tl::functions::messages::ReadHistory { peer, max_id })
                .await
                .map(drop),
        };
        r.map_err(SendError::from_invocation)
    }
}

/// The new message in Telegram's answer to `messages.sendMessage`: `updateShortSentMessage`
/// (private chats), or `updates` with `updateMessageID` (our `random_id`) and the message.
fn sent_of(answer: &tl::enums::Updates, random_id: i64, from: i64) -> Option<Sent> {
    use tl::enums::Update as U;
    let updates = match answer {
        tl::enums::Updates::UpdateShortSentMessage(s) => {
            return Some(Sent {
                message_id: s.id,
                date: s.date,
                from,
            });
        }
        tl::enums::Updates::Updates(u) => &u.updates,
        tl::enums::Updates::Combined(u) => &u.updates,
        _ => return None,
    };
    let id = updates.iter().find_map(|u| match u {
        U::MessageId(m) if m.random_id == random_id => Some(m.id),
        _ => None,
    });
    let message = updates.iter().find_map(|u| match u {
        U::NewMessage(tl::types::UpdateNewMessage {
            message: tl::enums::Message::Message(m),
            ..
        })
        | U::NewChannelMessage(tl::types::UpdateNewChannelMessage {
            message: tl::enums::Message::Message(m),
            ..
        }) if id.is_none_or(|id| id == m.id) => Some(m),
        _ => None,
    });
    match (id, message) {
        (_, Some(m)) => Some(Sent {
            message_id: m.id,
            date: m.date,
            from,
        }),
        (Some(message_id), None) => Some(Sent {
            message_id,
            from,
            date: i32::try_from(crate::store::ctx::unix_now()).unwrap_or(i32::MAX),
        }),
        (None, None) => None,
    }
}

/// The edit date of message `id` in Telegram's answer to `messages.editMessage`.
fn edit_date_of(answer: &tl::enums::Updates, id: i32) -> Option<i32> {
    use tl::enums::Update as U;
    let updates = match answer {
        tl::enums::Updates::Updates(u) => &u.updates,
        tl::enums::Updates::Combined(u) => &u.updates,
        _ => return None,
    };
    updates.iter().find_map(|u| match u {
        U::EditMessage(tl::types::UpdateEditMessage {
            message: tl::enums::Message::Message(m),
            ..
        })
        | U::EditChannelMessage(tl::types::UpdateEditChannelMessage {
            message: tl::enums::Message::Message(m),
            ..
        }) if m.id == id => m.edit_date,
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i32, message: &str) -> InvocationError {
        InvocationError::Rpc(grammers_mtsender::RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: message.into(),
        }))
    }

    #[test]
    fn flood_and_slowmode_waits_carry_their_seconds() {
        assert_eq!(
            SendError::from_invocation(rpc(420, "FLOOD_WAIT_31")),
            SendError::Wait(31, "FLOOD_WAIT".into())
        );
        assert_eq!(
            SendError::from_invocation(rpc(400, "SLOWMODE_WAIT_7")),
            SendError::Wait(7, "SLOWMODE_WAIT".into())
        );
        assert_eq!(
            SendError::from_invocation(rpc(403, "CHAT_WRITE_FORBIDDEN")),
            SendError::Refused(403, "CHAT_WRITE_FORBIDDEN".into())
        );
        assert!(matches!(
            SendError::from_invocation(rpc(500, "INTERDC_2_CALL_ERROR")),
            SendError::Server(_)
        ));
    }
}
