//! Dialogs and history: `messages.getDialogs` (paged by `offset_peer`, a `messages.dialogsSlice`
//! while more remain) and `messages.getHistory` (newest first, paged by `offset_id`, at most 100
//! a page: `messages.messagesSlice` for private chats and basic groups, `messages.channelMessages`
//! for supergroups and channels), as a user account's history backfill calls them.
//!
//! A dialog's history is what the update logs carry for it (new messages, with their latest
//! edit, without the deleted ones) plus old messages a test seeds with
//! [`MtSimulator::seed_history`]: those are in no update sequence (they predate the login, so no
//! difference hands them out), only in history. Every answered `getHistory` is recorded
//! ([`MtSimulator::history_calls`]) with its time, so a test can see pacing, FLOOD_WAIT and where
//! a resumed backfill started.

use std::collections::BTreeMap;
use std::time::Instant;

use grammers_tl_types as tl;

use super::world::{HistoryCall, Logged, SimChat, Step, World};
use super::{MtSimulator, Shared, SimUser, tl_build};

const CALLS_CAP: usize = 10_000;
/// Most dialogs or messages in one answer, as Telegram's.
const PAGE: usize = 100;

/// A dialog's key: the other person's user ID for a private chat, the chat's bare ID otherwise.
fn dialog_of(e: &Logged) -> i64 {
    e.chat.unwrap_or(e.from)
}

impl World {
    /// Every message of every dialog as it stands now (latest edit, deletes applied), by dialog,
    /// each ascending by ID.
    fn dialogs_now(&self) -> BTreeMap<i64, Vec<Logged>> {
        // Private chats and basic groups share one numbering; each channel has its own.
        let mut common: BTreeMap<i32, Logged> = BTreeMap::new();
        let mut channels: BTreeMap<(i64, i32), Logged> = BTreeMap::new();
        let is_channel = |e: &Logged| {
            e.chat
                .and_then(|c| self.chats.get(&c))
                .is_some_and(SimChat::is_channel)
        };
        for e in self.history.seeded.iter() {
            if is_channel(e) {
                channels.insert((dialog_of(e), e.message_id), e.clone());
            } else {
                common.insert(e.message_id, e.clone());
            }
        }
        for e in &self.log {
            match &e.step {
                Step::Message => match (e.edit_date, common.get_mut(&e.message_id)) {
                    (Some(_), Some(m)) => {
                        m.text = e.text.clone();
                        m.edit_date = e.edit_date;
                    }
                    (Some(_), None) => {}
                    (None, _) => {
                        common.insert(e.message_id, e.clone());
                    }
                },
                Step::Deleted(ids) => ids.iter().for_each(|id| {
                    common.remove(id);
                }),
                Step::ReadOutbox => {}
            }
        }
        for e in &self.channel_log {
            let key = (dialog_of(e), e.message_id);
            match &e.step {
                Step::Message => match (e.edit_date, channels.get_mut(&key)) {
                    (Some(_), Some(m)) => {
                        m.text = e.text.clone();
                        m.edit_date = e.edit_date;
                    }
                    (Some(_), None) => {}
                    (None, _) => {
                        channels.insert(key, e.clone());
                    }
                },
                Step::Deleted(ids) => ids.iter().for_each(|id| {
                    channels.remove(&(dialog_of(e), *id));
                }),
                Step::ReadOutbox => {}
            }
        }
        let mut out: BTreeMap<i64, Vec<Logged>> = BTreeMap::new();
        for e in common.into_values().chain(channels.into_values()) {
            out.entry(dialog_of(&e)).or_default().push(e);
        }
        for v in out.values_mut() {
            v.sort_by_key(|e| e.message_id);
        }
        out
    }

    fn peer_of(&self, dialog: i64) -> tl::enums::Peer {
        match self.chats.get(&dialog) {
            Some(c) => tl_build::peer(c),
            None => tl::types::PeerUser { user_id: dialog }.into(),
        }
    }

    fn record_history(&mut self, call: HistoryCall) {
        if self.history.calls.len() == CALLS_CAP {
            self.history.calls.pop_front();
        }
        self.history.calls.push_back(call);
    }
}

/// `messages.getDialogs`: the dialogs with messages, the most recent first, after
/// `offset_peer` when one is given.
pub(super) fn dialogs(shared: &Shared, req: tl::functions::messages::GetDialogs) -> Answer {
    let w = shared.lock();
    if !w.authorized {
        return Err((401, "AUTH_KEY_UNREGISTERED".into()));
    }
    let all = w.dialogs_now();
    let mut tops: Vec<(i64, Logged)> = all
        .into_iter()
        .filter_map(|(d, v)| v.last().cloned().map(|top| (d, top)))
        .collect();
    tops.sort_by_key(|(d, top)| std::cmp::Reverse((top.date, top.message_id, *d)));
    let after = match &req.offset_peer {
        tl::enums::InputPeer::User(u) => Some(u.user_id),
        tl::enums::InputPeer::Chat(c) => Some(c.chat_id),
        tl::enums::InputPeer::Channel(c) => Some(c.channel_id),
        _ => None,
    };
    let start = after
        .and_then(|id| tops.iter().position(|(d, _)| *d == id))
        .map_or(0, |i| i + 1);
    let limit = usize::try_from(req.limit).unwrap_or(0).clamp(1, PAGE);
    let page: Vec<&(i64, Logged)> = tops.iter().skip(start).take(limit).collect();
    let me = w.me.id;
    let dialogs = page
        .iter()
        .map(|(d, top)| {
            tl::types::Dialog {
                pinned: false,
                unread_mark: false,
                view_forum_as_messages: false,
                peer: w.peer_of(*d),
                top_message: top.message_id,
                read_inbox_max_id: 0,
                read_outbox_max_id: 0,
                unread_count: 0,
                unread_mentions_count: 0,
                unread_reactions_count: 0,
                unread_poll_votes_count: 0,
                notify_settings: tl::types::PeerNotifySettings {
                    show_previews: None,
                    silent: None,
                    mute_until: None,
                    ios_sound: None,
                    android_sound: None,
                    other_sound: None,
                    stories_muted: None,
                    stories_hide_sender: None,
                    stories_ios_sound: None,
                    stories_android_sound: None,
                    stories_other_sound: None,
                }
                .into(),
                pts: w.chats.get(d).filter(|c| c.is_channel()).map(|c| c.pts),
                draft: None,
                folder_id: None,
                ttl_period: None,
            }
            .into()
        })
        .collect();
    let messages = page
        .iter()
        .map(|(_, top)| tl_build::message(top, me, top.chat.and_then(|c| w.chats.get(&c))))
        .collect();
    let (mut users, chats) = tl_build::peers_of(&w, page.iter().map(|(_, top)| top));
    // A private chat's person, even when the top message is the account's own.
    for (d, _) in &page {
        if !users.iter().any(|u| u_id(u) == *d)
            && let Some(u) = w.users.get(d)
        {
            users.push(tl_build::user(u, false));
        }
    }
    let more = start + page.len() < tops.len();
    let answer = if more {
        tl::enums::messages::Dialogs::Slice(tl::types::messages::DialogsSlice {
            count: tops.len() as i32,
            dialogs,
            messages,
            chats,
            users,
        })
    } else {
        tl::enums::messages::Dialogs::Dialogs(tl::types::messages::Dialogs {
            dialogs,
            messages,
            chats,
            users,
        })
    };
    Ok(tl::Serializable::to_bytes(&answer))
}

/// The bytes of an answer, or an RPC error (code, name).
pub(super) type Answer = Result<Vec<u8>, (i32, String)>;

fn u_id(u: &tl::enums::User) -> i64 {
    match u {
        tl::enums::User::User(u) => u.id,
        tl::enums::User::Empty(u) => u.id,
    }
}

/// `messages.getHistory`: the dialog's messages older than `offset_id` (all when 0), newest
/// first, at most `limit` (and 100).
pub(super) fn history(shared: &Shared, req: tl::functions::messages::GetHistory) -> Answer {
    let mut w = shared.lock();
    if !w.authorized {
        return Err((401, "AUTH_KEY_UNREGISTERED".into()));
    }
    let dialog = match &req.peer {
        tl::enums::InputPeer::User(u)
            if w.users.get(&u.user_id).map(|x| x.access_hash) == Some(u.access_hash) =>
        {
            u.user_id
        }
        tl::enums::InputPeer::Chat(c) if w.chats.get(&c.chat_id).is_some_and(|x| !x.is_channel()) => {
            c.chat_id
        }
        tl::enums::InputPeer::Channel(c)
            if w.chats.get(&c.channel_id).map(|x| x.access_hash) == Some(c.access_hash) =>
        {
            c.channel_id
        }
        _ => return Err((400, "PEER_ID_INVALID".into())),
    };
    let all = w.dialogs_now().remove(&dialog).unwrap_or_default();
    let count = all.len();
    let limit = usize::try_from(req.limit).unwrap_or(0).clamp(1, PAGE);
    let page: Vec<Logged> = all
        .into_iter()
        .rev()
        .filter(|e| req.offset_id <= 0 || e.message_id < req.offset_id)
        .filter(|e| req.max_id <= 0 || e.message_id < req.max_id)
        .filter(|e| e.message_id > req.min_id)
        .take(limit)
        .collect();
    w.record_history(HistoryCall {
        dialog,
        offset_id: req.offset_id,
        returned: page.len(),
        at: Instant::now(),
    });
    let me = w.me.id;
    let chat = w.chats.get(&dialog).cloned();
    let messages = page
        .iter()
        .map(|e| tl_build::message(e, me, chat.as_ref()))
        .collect();
    let (mut users, chats) = tl_build::peers_of(&w, &page);
    if chat.is_none()
        && !users.iter().any(|u| u_id(u) == dialog)
        && let Some(u) = w.users.get(&dialog)
    {
        users.push(tl_build::user(u, false));
    }
    let answer = match &chat {
        Some(c) if c.is_channel() => {
            tl::enums::messages::Messages::ChannelMessages(tl::types::messages::ChannelMessages {
                inexact: false,
                pts: c.pts,
                count: count as i32,
                offset_id_offset: None,
                messages,
                topics: Vec::new(),
                chats,
                users,
            })
        }
        _ => tl::enums::messages::Messages::Slice(tl::types::messages::MessagesSlice {
            inexact: false,
            count: count as i32,
            next_rate: None,
            offset_id_offset: None,
            search_flood: None,
            messages,
            topics: Vec::new(),
            chats,
            users,
        }),
    };
    Ok(tl::Serializable::to_bytes(&answer))
}

impl MtSimulator {
    /// Old messages of a dialog, in history only (no update sequence has them): a private chat
    /// with `from` (`chat` `None`), or `chat`, where `from` wrote them (a channel posts them
    /// itself). `items` are `(date, text)`, oldest first; they take the next message IDs, so
    /// seed before anything live. Returns their IDs.
    pub fn seed_history(&self, chat: Option<&SimChat>, from: &SimUser, items: &[(i32, String)]) -> Vec<i32> {
        let mut w = self.shared.lock();
        let mut ids = Vec::with_capacity(items.len());
        for (date, text) in items {
            let channel = chat.is_some_and(SimChat::is_channel);
            let message_id = match chat {
                Some(c) if channel => {
                    let c = w.chats.get_mut(&c.id).expect("a chat of this simulator");
                    let id = c.next_message_id;
                    c.next_message_id += 1;
                    id
                }
                _ => {
                    let id = w.next_message_id;
                    w.next_message_id += 1;
                    id
                }
            };
            let poster = chat.is_some_and(|c| c.kind == super::SimChatKind::Channel);
            w.history.seeded.push(Logged {
                pts: 0,
                message_id,
                from: if poster { 0 } else { from.id },
                chat: chat.map(|c| c.id),
                out: false,
                date: *date,
                text: text.clone(),
                edit_date: None,
                step: Step::Message,
                rich: None,
            });
            ids.push(message_id);
        }
        ids
    }

    /// Every `messages.getHistory` answered (not those answered with a scheduled fault), in order.
    pub fn history_calls(&self) -> Vec<HistoryCall> {
        self.shared.lock().history.calls.iter().cloned().collect()
    }
}
