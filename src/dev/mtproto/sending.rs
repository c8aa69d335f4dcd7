//! What the account sends, as Telegram receives it: `messages.sendMessage` to a person, a
//! basic group, a supergroup or a channel (with entities and `reply_to`), `messages.editMessage`,
//! `messages.deleteMessages` and `channels.deleteMessages`, `messages.setTyping`,
//! `messages.readHistory` and `channels.readHistory`.
//!
//! Each call is checked as Telegram checks it (the peer's access hash, the account being in the
//! chat, the message existing and being the account's own for an edit), logged as a step of
//! the right sequence where Telegram's would move (a sent message at the account's pts, or at
//! the channel's; an edit; a delete), answered in Telegram's shape (`updateShortSentMessage`
//! for a person, `updates` with `updateMessageID` for a group or channel, `affectedMessages`
//! for deletes), and recorded in [`Outbound`] so a test can assert exactly what arrived
//! ([`MtSimulator::outbound`]). A fault scheduled with [`MtSimulator::fail_next`] answers first
//! (`FLOOD_WAIT_n`, `SLOWMODE_WAIT_n`) and is not recorded here.

use std::collections::VecDeque;
use std::time::Instant;

use grammers_tl_types::{self as tl, Deserializable, Identifiable, Serializable};

use super::world::{Logged, Step, World, now};
use super::{MtSimulator, Shared, SimUser, tl_build};

/// One call the account made, as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The method's TL name (`messages.sendMessage`).
    pub method: &'static str,
    /// The chat it named.
    pub peer: SimPeer,
    /// A message's text (send, edit).
    pub text: Option<String>,
    /// Its entities, as Telegram's `messageEntity*` (send, edit).
    pub entities: Vec<tl::enums::MessageEntity>,
    /// The message answered (send).
    pub reply_to: Option<i32>,
    /// The message created, edited; the messages deleted; a read's `max_id`.
    pub ids: Vec<i32>,
    /// When it arrived.
    pub at: Instant,
}

/// A chat as a call named it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimPeer {
    User(i64),
    Chat(i64),
    Channel(i64),
    /// `messages.deleteMessages` names no chat.
    None,
}

/// Calls kept (oldest dropped first).
const OUTBOUND_CAP: usize = 10_000;

impl MtSimulator {
    /// `from` writes `text` to the account for the first time: Telegram then sends the whole
    /// `updateNewMessage` in an `updates` with `from` attached (an `updateShortMessage` names
    /// only people the session already knows), which gives the client the person's access hash,
    /// as a private chat needs to be answered. Returns the message ID.
    pub fn message_from_new_contact(&self, from: &SimUser, text: &str) -> i32 {
        let mut w = self.shared.lock();
        let e = w.append_private(from.id, false, text);
        let (users, _) = tl_build::peers_of(&w, [&e]);
        let push = tl::types::Updates {
            updates: vec![tl_build::update(&e, w.me.id, None)],
            users,
            chats: Vec::new(),
            date: e.date,
            seq: w.seq,
        };
        let _ = self.pushes.send(std::sync::Arc::new(push.into()));
        e.message_id
    }

    /// Every call of the account this file answers, in order.
    pub fn outbound(&self) -> Vec<Outbound> {
        self.shared.outbound().iter().cloned().collect()
    }
}

/// A result object's bytes, or an RPC error (code, name).
type Reply = Result<Vec<u8>, (i32, String)>;

fn err(code: i32, message: &str) -> (i32, String) {
    (code, message.to_string())
}

fn ok(v: &impl Serializable) -> Vec<u8> {
    v.to_bytes()
}

impl Shared {
    fn outbound(&self) -> std::sync::MutexGuard<'_, VecDeque<Outbound>> {
        self.outbound.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn decode<T: Deserializable>(body: &[u8]) -> Result<T, (i32, String)> {
    T::from_bytes(&body[4..]).map_err(|_| err(400, "INPUT_REQUEST_INVALID"))
}

/// Answers `body` when it is one of this file's methods (`id` is its constructor ID); `None`
/// leaves it to the rest of `rpc.rs`.
pub(super) fn call(shared: &Shared, id: u32, body: &[u8]) -> Option<Reply> {
    use tl::functions as f;
    Some(match id {
        f::messages::SendMessage::CONSTRUCTOR_ID => decode(body).and_then(|r| send(shared, r)),
        f::messages::EditMessage::CONSTRUCTOR_ID => decode(body).and_then(|r| edit(shared, r)),
        f::messages::DeleteMessages::CONSTRUCTOR_ID => decode(body).and_then(|r| delete(shared, r)),
        f::channels::DeleteMessages::CONSTRUCTOR_ID => decode(body).and_then(|r| delete_channel(shared, r)),
        f::messages::SetTyping::CONSTRUCTOR_ID => decode(body).and_then(|r| typing(shared, r)),
        f::messages::ReadHistory::CONSTRUCTOR_ID => decode(body).and_then(|r| read(shared, r)),
        f::channels::ReadHistory::CONSTRUCTOR_ID => decode(body).and_then(|r| read_channel(shared, r)),
        _ => return None,
    })
}

/// The world, when the key is signed in.
fn authorized(shared: &Shared) -> Result<std::sync::MutexGuard<'_, World>, (i32, String)> {
    let w = shared.lock();
    if w.authorized {
        Ok(w)
    } else {
        Err(err(401, "AUTH_KEY_UNREGISTERED"))
    }
}

/// The chat an `InputPeer` names, its access hash checked as Telegram does.
fn peer_of(w: &World, peer: &tl::enums::InputPeer) -> Result<SimPeer, (i32, String)> {
    use tl::enums::InputPeer as P;
    match peer {
        P::PeerSelf => Ok(SimPeer::User(w.me.id)),
        P::User(u) if u.user_id == w.me.id => Ok(SimPeer::User(u.user_id)),
        P::User(u) => match w.users.get(&u.user_id) {
            Some(known) if known.access_hash == u.access_hash => Ok(SimPeer::User(u.user_id)),
            _ => Err(err(400, "PEER_ID_INVALID")),
        },
        P::Chat(c) => match w.chats.get(&c.chat_id) {
            Some(known) if !known.is_channel() => Ok(SimPeer::Chat(c.chat_id)),
            _ => Err(err(400, "PEER_ID_INVALID")),
        },
        P::Channel(c) => channel(w, c.channel_id, c.access_hash),
        _ => Err(err(400, "PEER_ID_INVALID")),
    }
}

fn channel(w: &World, id: i64, hash: i64) -> Result<SimPeer, (i32, String)> {
    match w.chats.get(&id) {
        Some(known) if known.is_channel() && known.access_hash == hash => Ok(SimPeer::Channel(id)),
        _ => Err(err(400, "CHANNEL_INVALID")),
    }
}

fn input_channel(w: &World, c: &tl::enums::InputChannel) -> Result<SimPeer, (i32, String)> {
    match c {
        tl::enums::InputChannel::Channel(c) => channel(w, c.channel_id, c.access_hash),
        _ => Err(err(400, "CHANNEL_INVALID")),
    }
}

fn record(shared: &Shared, o: Outbound) {
    let mut out = shared.outbound();
    if out.len() == OUTBOUND_CAP {
        out.pop_front();
    }
    out.push_back(o);
}

fn check_text(text: &str) -> Result<(), (i32, String)> {
    if text.trim().is_empty() {
        return Err(err(400, "MESSAGE_EMPTY"));
    }
    if text.encode_utf16().count() > 4096 {
        return Err(err(400, "MESSAGE_TOO_LONG"));
    }
    Ok(())
}

/// `updates` carrying one logged step (and `updateMessageID` for a new message).
fn updates_of(w: &World, e: &Logged, random_id: Option<i64>) -> tl::enums::Updates {
    let tl::enums::Updates::Updates(mut u) = tl_build::push(e, w) else {
        // A new private message: callers answer it with `updateShortSentMessage` instead.
        unreachable!("push of a chat step is an `updates`")
    };
    if let Some(random_id) = random_id {
        u.updates.insert(
            0,
            tl::types::UpdateMessageId {
                id: e.message_id,
                random_id,
            }
            .into(),
        );
    }
    u.into()
}

fn send(shared: &Shared, req: tl::functions::messages::SendMessage) -> Reply {
    let mut w = authorized(shared)?;
    let peer = peer_of(&w, &req.peer)?;
    check_text(&req.message)?;
    let reply_to = match &req.reply_to {
        Some(tl::enums::InputReplyTo::Message(r)) => Some(r.reply_to_msg_id),
        Some(_) => return Err(err(400, "REPLY_TO_INVALID")),
        None => None,
    };
    let e = match peer {
        SimPeer::User(to) => w.append_private(to, true, &req.message),
        SimPeer::Chat(chat) | SimPeer::Channel(chat) => {
            let me = w.me.id;
            w.append_chat_message(chat, me, true, &req.message)
                .ok_or_else(|| err(400, "PEER_ID_INVALID"))?
        }
        SimPeer::None => return Err(err(400, "PEER_ID_INVALID")),
    };
    record(
        shared,
        Outbound {
            method: "messages.sendMessage",
            peer,
            text: Some(req.message.clone()),
            entities: req.entities.clone().unwrap_or_default(),
            reply_to,
            ids: vec![e.message_id],
            at: Instant::now(),
        },
    );
    if let SimPeer::User(_) = peer {
        return Ok(ok(&tl::enums::Updates::UpdateShortSentMessage(
            tl::types::UpdateShortSentMessage {
                out: true,
                id: e.message_id,
                pts: e.pts,
                pts_count: 1,
                date: e.date,
                media: None,
                entities: req.entities,
                ttl_period: None,
            },
        )));
    }
    Ok(ok(&updates_of(&w, &e, Some(req.random_id))))
}

/// The account's own message `id` in `peer` as last logged (new or edited), if any.
fn own_message(w: &World, peer: SimPeer, id: i32) -> Option<Logged> {
    let is_it = |e: &&Logged| e.message_id == id && e.step == Step::Message && e.out;
    match peer {
        SimPeer::User(u) => w
            .log
            .iter()
            .rev()
            .find(|e| is_it(e) && e.chat.is_none() && e.from == u)
            .cloned(),
        SimPeer::Chat(c) => w
            .log
            .iter()
            .rev()
            .find(|e| is_it(e) && e.chat == Some(c))
            .cloned(),
        SimPeer::Channel(c) => w
            .channel_log
            .iter()
            .rev()
            .find(|e| is_it(e) && e.chat == Some(c))
            .cloned(),
        SimPeer::None => None,
    }
}

fn edit(shared: &Shared, req: tl::functions::messages::EditMessage) -> Reply {
    let mut w = authorized(shared)?;
    let peer = peer_of(&w, &req.peer)?;
    let text = req.message.clone().ok_or_else(|| err(400, "MESSAGE_EMPTY"))?;
    check_text(&text)?;
    let Some(original) = own_message(&w, peer, req.id) else {
        return Err(err(400, "MESSAGE_ID_INVALID"));
    };
    if original.text == text {
        return Err(err(400, "MESSAGE_NOT_MODIFIED"));
    }
    let e = match peer {
        SimPeer::Channel(c) => {
            let chat = w.chats.get_mut(&c).ok_or_else(|| err(400, "CHANNEL_INVALID"))?;
            chat.pts += 1;
            let pts = chat.pts;
            w.date = w.date.max(now());
            let e = Logged {
                pts,
                text: text.clone(),
                edit_date: Some(w.date),
                ..original
            };
            if w.channel_log.len() == World::LOG_CAP {
                w.channel_log.pop_front();
            }
            w.channel_log.push_back(e.clone());
            e
        }
        _ => w
            .append_edit(req.id, &text)
            .ok_or_else(|| err(400, "MESSAGE_ID_INVALID"))?,
    };
    record(
        shared,
        Outbound {
            method: "messages.editMessage",
            peer,
            text: Some(text),
            entities: req.entities.clone().unwrap_or_default(),
            reply_to: None,
            ids: vec![req.id],
            at: Instant::now(),
        },
    );
    Ok(ok(&updates_of(&w, &e, None)))
}

fn affected(pts: i32, pts_count: i32) -> Vec<u8> {
    ok(&tl::enums::messages::AffectedMessages::Messages(
        tl::types::messages::AffectedMessages { pts, pts_count },
    ))
}

fn delete(shared: &Shared, req: tl::functions::messages::DeleteMessages) -> Reply {
    let mut w = authorized(shared)?;
    let ids: Vec<i32> = req
        .id
        .iter()
        .copied()
        .filter(|&id| {
            w.log
                .iter()
                .any(|e| e.message_id == id && e.step == Step::Message)
        })
        .collect();
    record(
        shared,
        Outbound {
            method: "messages.deleteMessages",
            peer: SimPeer::None,
            text: None,
            entities: Vec::new(),
            reply_to: None,
            ids: req.id.clone(),
            at: Instant::now(),
        },
    );
    if ids.is_empty() {
        return Ok(affected(w.pts, 0));
    }
    let n = ids.len() as i32;
    let e = w.append_step(None, 0, 0, n, Step::Deleted(ids));
    Ok(affected(e.pts, n))
}

fn delete_channel(shared: &Shared, req: tl::functions::channels::DeleteMessages) -> Reply {
    let mut w = authorized(shared)?;
    let peer = input_channel(&w, &req.channel)?;
    let SimPeer::Channel(c) = peer else {
        return Err(err(400, "CHANNEL_INVALID"));
    };
    record(
        shared,
        Outbound {
            method: "channels.deleteMessages",
            peer,
            text: None,
            entities: Vec::new(),
            reply_to: None,
            ids: req.id.clone(),
            at: Instant::now(),
        },
    );
    let n = req.id.len() as i32;
    let e = w
        .append_channel_delete(c, &req.id)
        .ok_or_else(|| err(400, "CHANNEL_INVALID"))?;
    Ok(affected(e.pts, n))
}

fn typing(shared: &Shared, req: tl::functions::messages::SetTyping) -> Reply {
    let w = authorized(shared)?;
    let peer = peer_of(&w, &req.peer)?;
    if !matches!(req.action, tl::enums::SendMessageAction::SendMessageTypingAction) {
        return Err(err(400, "ACTION_INVALID"));
    }
    record(
        shared,
        Outbound {
            method: "messages.setTyping",
            peer,
            text: None,
            entities: Vec::new(),
            reply_to: None,
            ids: Vec::new(),
            at: Instant::now(),
        },
    );
    Ok(ok(&true))
}

/// `messages.readHistory` (a person or a basic group). The account's own read position moves no
/// pts here (the simulator does not log inbox reads), so the answer leaves it where it is.
fn read(shared: &Shared, req: tl::functions::messages::ReadHistory) -> Reply {
    let w = authorized(shared)?;
    let peer = peer_of(&w, &req.peer)?;
    if let SimPeer::Channel(_) = peer {
        return Err(err(400, "PEER_ID_INVALID"));
    }
    record(
        shared,
        Outbound {
            method: "messages.readHistory",
            peer,
            text: None,
            entities: Vec::new(),
            reply_to: None,
            ids: vec![req.max_id],
            at: Instant::now(),
        },
    );
    Ok(affected(w.pts, 0))
}

fn read_channel(shared: &Shared, req: tl::functions::channels::ReadHistory) -> Reply {
    let w = authorized(shared)?;
    let peer = input_channel(&w, &req.channel)?;
    record(
        shared,
        Outbound {
            method: "channels.readHistory",
            peer,
            text: None,
            entities: Vec::new(),
            reply_to: None,
            ids: vec![req.max_id],
            at: Instant::now(),
        },
    );
    Ok(ok(&true))
}
