//! The chats the simulator knows, and how it numbers their messages as Telegram does.
//!
//! Telegram gives a supergroup or a channel one sequence of message IDs, shared by everybody in
//! it: two bots in one supergroup never get the same ID for different messages, and a message
//! both receive has the same ID for both. Private chats and basic groups are numbered per
//! account instead (each bot has its own sequence there). Which rule applies is a question of
//! the chat's type, recorded from the Chat objects of injected updates and from the control
//! API's `POST /_sim/chats`; only a chat the simulator has never seen is judged by the shape of
//! its ID (what Telegram's IDs look like: positive for users, `-100…` for supergroups and
//! channels), the one hint there is.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Value, json};

/// A chat's type, as Telegram's `Chat.type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Private,
    Group,
    Supergroup,
    Channel,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "private" => Some(Kind::Private),
            "group" => Some(Kind::Group),
            "supergroup" => Some(Kind::Supergroup),
            "channel" => Some(Kind::Channel),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Private => "private",
            Kind::Group => "group",
            Kind::Supergroup => "supergroup",
            Kind::Channel => "channel",
        }
    }

    /// Whether the chat has one sequence of message IDs for everybody in it.
    pub fn numbers_per_chat(self) -> bool {
        matches!(self, Kind::Supergroup | Kind::Channel)
    }

    /// The guess for a chat never seen: from the shape of its ID.
    fn from_id_shape(chat: i64) -> Kind {
        match chat {
            id if id > 0 => Kind::Private,
            id if id < -1_000_000_000_000 => Kind::Supergroup,
            _ => Kind::Group,
        }
    }
}

/// One chat the simulator has seen.
pub(super) struct KnownChat {
    pub kind: Kind,
    /// The Chat object as last seen (`id`, `type`, title or names), put into the messages bots
    /// send there, as Telegram does.
    pub object: Value,
    /// Tokens of the bots in the chat: those added with `POST /_sim/chats` and those that were
    /// given an update from it. `POST /_sim/chats/{id}/messages` delivers to them.
    pub members: BTreeSet<String>,
}

/// Every chat the simulator has seen, by chat ID, and the message ID sequences of supergroups
/// and channels.
#[derive(Default)]
pub(super) struct Chats {
    known: HashMap<i64, KnownChat>,
    /// Newest message ID of each supergroup and channel (the chat's one sequence). Private
    /// chats and basic groups are numbered by each bot, in their own counters (`BotState::last_message_id`).
    last_message_id: HashMap<i64, i64>,
}

impl Chats {
    pub fn get(&self, chat: i64) -> Option<&KnownChat> {
        self.known.get(&chat)
    }

    /// The chat's type: as recorded, else guessed from its ID.
    pub fn kind(&self, chat: i64) -> Kind {
        self.known
            .get(&chat)
            .map_or_else(|| Kind::from_id_shape(chat), |c| c.kind)
    }

    /// The Chat object to put into a message sent to `chat`.
    pub fn object(&self, chat: i64) -> Value {
        match self.known.get(&chat) {
            Some(c) => c.object.clone(),
            None => json!({"id": chat, "type": Kind::from_id_shape(chat).as_str()}),
        }
    }

    /// Records a Chat object (`id` and a known `type` required; anything else is ignored) and
    /// `token`'s bot as a member. Returns the chat ID when recorded.
    pub fn record(&mut self, own: &HashMap<i64, i64>, token: &str, object: &Value) -> Option<i64> {
        let (id, kind) = id_and_kind(object)?;
        if kind.numbers_per_chat() && !self.kind(id).numbers_per_chat() {
            // Known as one sequence only now: continue past what this bot numbered on its own,
            // so no ID is given twice.
            let own = own.get(&id).copied().unwrap_or(0);
            let last = self.last_message_id.entry(id).or_default();
            *last = (*last).max(own);
        }
        self.put(object)?;
        self.join(id, token);
        Some(id)
    }

    /// Records a Chat object without members (see [`Chats::record`]).
    pub fn put(&mut self, object: &Value) -> Option<i64> {
        let (id, kind) = id_and_kind(object)?;
        let c = self.known.entry(id).or_insert_with(|| KnownChat {
            kind,
            object: Value::Null,
            members: BTreeSet::new(),
        });
        c.kind = kind;
        c.object = object.clone();
        Some(id)
    }

    /// The sequence a bot's messages in `chat` take their IDs from.
    fn sequence<'a>(&'a mut self, own: &'a mut HashMap<i64, i64>, chat: i64) -> &'a mut i64 {
        if self.kind(chat).numbers_per_chat() {
            self.last_message_id.entry(chat).or_default()
        } else {
            own.entry(chat).or_default()
        }
    }

    /// A message ID seen in `chat` by a bot (an injected update): its sequence moves past it.
    pub fn seen(&mut self, own: &mut HashMap<i64, i64>, chat: i64, message_id: i64) {
        let last = self.sequence(own, chat);
        *last = (*last).max(message_id);
    }

    /// The ID of the next message a bot sends (or receives) in `chat`: the chat's next for a
    /// supergroup or channel, the bot's own next otherwise.
    pub fn next_message_id(&mut self, own: &mut HashMap<i64, i64>, chat: i64) -> i64 {
        let last = self.sequence(own, chat);
        *last += 1;
        *last
    }

    /// Adds a bot to a recorded chat; false when the chat is not recorded.
    pub fn join(&mut self, chat: i64, token: &str) -> bool {
        match self.known.get_mut(&chat) {
            Some(c) => {
                c.members.insert(token.to_owned());
                true
            }
            None => false,
        }
    }
}

fn id_and_kind(object: &Value) -> Option<(i64, Kind)> {
    let id = object.get("id").and_then(Value::as_i64)?;
    let kind = object.get("type").and_then(Value::as_str).and_then(Kind::parse)?;
    Some((id, kind))
}

/// Where the Chat objects of an update are: the message kinds (which also carry a message ID
/// in that chat) and the rest.
const MESSAGE_FIELDS: [&str; 5] = [
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
];
const OTHER_CHAT_POINTERS: [&str; 4] = [
    "/my_chat_member/chat",
    "/chat_member/chat",
    "/chat_join_request/chat",
    "/callback_query/message/chat",
];

/// Records the chats of an update given to `token`'s bot and moves the message ID sequences
/// past the IDs it carries.
pub(super) fn note_update(chats: &mut Chats, own: &mut HashMap<i64, i64>, token: &str, update: &Value) {
    for field in MESSAGE_FIELDS {
        let Some(m) = update.get(field) else { continue };
        let Some(chat) = m.get("chat") else { continue };
        let id = chats
            .record(own, token, chat)
            .or_else(|| chat.get("id").and_then(Value::as_i64));
        if let (Some(id), Some(msg)) = (id, m.get("message_id").and_then(Value::as_i64)) {
            chats.seen(own, id, msg);
        }
    }
    for pointer in OTHER_CHAT_POINTERS {
        if let Some(chat) = update.pointer(pointer) {
            chats.record(own, token, chat);
        }
    }
}
