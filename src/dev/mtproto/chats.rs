//! The simulator's groups and channels: basic groups, whose messages share the account's
//! sequence and numbering (as Telegram's do), and supergroups and broadcast channels, each
//! with its own pts, message numbering and log, which `updates.getChannelDifference` reads.

use super::world::{Logged, SimChat, SimChatKind, Step, World, now, random_i64};

impl World {
    /// Steps kept of all channels together.
    const CHANNEL_LOG_CAP: usize = 200_000;

    pub fn add_chat(&mut self, title: &str, kind: SimChatKind) -> SimChat {
        let c = SimChat {
            id: self.next_chat_id,
            access_hash: random_i64(),
            title: title.to_string(),
            kind,
            pts: 1,
            next_message_id: 1,
        };
        self.next_chat_id += 1;
        self.chats.insert(c.id, c.clone());
        c
    }

    /// A message in a group or channel from `from` (the account itself when `out`; 0 for a
    /// broadcast channel's own post); `None` when the account is not in `chat`.
    pub fn append_chat_message(&mut self, chat: i64, from: i64, out: bool, text: &str) -> Option<Logged> {
        let c = self.chats.get(&chat)?.clone();
        if !c.is_channel() {
            return Some(self.append_common(Some(chat), from, out, text));
        }
        let c = self.chats.get_mut(&chat)?;
        c.pts += 1;
        let message_id = c.next_message_id;
        c.next_message_id += 1;
        let pts = c.pts;
        self.date = self.date.max(now());
        let entry = Logged {
            pts,
            message_id,
            from,
            chat: Some(chat),
            out,
            date: self.date,
            text: text.to_string(),
            edit_date: None,
            step: Step::Message,
            rich: None,
        };
        Some(self.push_channel(entry))
    }

    /// Deletes `ids` in a channel, at its next pts (moved by their number).
    pub fn append_channel_delete(&mut self, chat: i64, ids: &[i32]) -> Option<Logged> {
        let c = self.chats.get_mut(&chat).filter(|c| c.is_channel())?;
        c.pts += ids.len() as i32;
        let pts = c.pts;
        self.date = self.date.max(now());
        let entry = Logged {
            pts,
            message_id: 0,
            from: 0,
            chat: Some(chat),
            out: false,
            date: self.date,
            text: String::new(),
            edit_date: None,
            step: Step::Deleted(ids.to_vec()),
            rich: None,
        };
        Some(self.push_channel(entry))
    }

    fn push_channel(&mut self, entry: Logged) -> Logged {
        if self.channel_log.len() == Self::CHANNEL_LOG_CAP {
            self.channel_log.pop_front();
        }
        self.channel_log.push_back(entry.clone());
        entry
    }

    /// A channel's steps after `pts`, at most `limit`, and its current pts; `None` when the
    /// account is not in it.
    pub fn channel_after(&self, chat: i64, pts: i32, limit: usize) -> Option<(Vec<Logged>, i32)> {
        let c = self.chats.get(&chat).filter(|c| c.is_channel())?;
        let steps = self
            .channel_log
            .iter()
            .filter(|e| e.chat == Some(chat) && e.pts > pts)
            .take(limit)
            .cloned()
            .collect();
        Some((steps, c.pts))
    }

    /// The channels with steps at or after `date` (what a client whose state has that date may
    /// have missed), each with the pts it stood at before that second: a difference tells the
    /// client to catch these up (`updateChannelTooLong`), as Telegram does. A step in the same
    /// second may come again; the client's dedup absorbs it.
    pub fn channels_since(&self, date: i32) -> Vec<(i64, i32)> {
        let mut out: Vec<(i64, i32)> = Vec::new();
        for (&id, _) in self.chats.iter().filter(|(_, c)| c.is_channel()) {
            let steps = self.channel_log.iter().filter(|e| e.chat == Some(id));
            let (before, after): (Vec<_>, Vec<_>) = steps.partition(|e| e.date < date);
            if !after.is_empty() {
                out.push((id, before.last().map_or(1, |e| e.pts)));
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::dev::mtproto::world::SimUser;

    #[test]
    fn a_difference_names_the_channels_with_steps_since_the_clients_date() {
        let me = SimUser {
            id: 1,
            access_hash: 2,
            first_name: "Me".into(),
            last_name: None,
            username: None,
            phone: None,
        };
        let mut w = World::new(me, Duration::from_secs(60));
        let quiet = w.add_chat("quiet", SimChatKind::Supergroup);
        let busy = w.add_chat("busy", SimChatKind::Channel);
        let group = w.add_chat("group", SimChatKind::Group);
        w.append_chat_message(quiet.id, 5, false, "old").unwrap();
        w.append_chat_message(group.id, 5, false, "in the account's sequence")
            .unwrap();
        let e = w.append_chat_message(busy.id, 0, false, "new").unwrap();
        assert_eq!((e.pts, e.message_id), (2, 1), "a channel's own sequence");
        assert!(
            w.channels_since(e.date + 1).is_empty(),
            "nothing after the last step"
        );
        let mut since = w.channels_since(e.date);
        since.sort_unstable();
        assert_eq!(
            since,
            vec![(quiet.id, 1), (busy.id, 1)],
            "same second: both, from the start"
        );
        assert_eq!(w.channel_after(busy.id, 1, 10).unwrap().0.len(), 1);
        assert!(
            w.channel_after(group.id, 0, 10).is_none(),
            "a basic group has no channel log"
        );
    }
}
