//! What the simulated Telegram knows: the one account, its login code, the people who write
//! to it, the groups and channels it is in (`chats.rs`), and the account's update sequence
//! (`pts`), with what each step carried (a message, an edit, a delete, a read receipt) so
//! `updates.getDifference` can hand it out again; each channel has its own sequence and log.
//!
//! One std `Mutex` guards it, never held across an await: every call is a short in-memory
//! change. The message log is bounded ([`World::LOG_CAP`]); a client further behind than the
//! log reaches gets `updates.differenceTooLong`, as from Telegram.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// A Telegram user the simulator knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    pub id: i64,
    pub access_hash: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
}

/// What kind of group or channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimChatKind {
    /// A basic group (`chat`): message IDs per account, in the account's sequence.
    Group,
    /// A supergroup (`channel` with `megagroup`).
    Supergroup,
    /// A broadcast channel (`channel` with `broadcast`): posts come from the channel.
    Channel,
}

/// A group or channel the account is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimChat {
    /// MTProto's bare ID (the Bot API writes it `-id`, or `-100…id` for a channel).
    pub id: i64,
    pub access_hash: i64,
    pub title: String,
    pub kind: SimChatKind,
    /// A channel's own pts (unused for a basic group).
    pub(super) pts: i32,
    pub(super) next_message_id: i32,
}

impl SimChat {
    pub fn is_channel(&self) -> bool {
        self.kind != SimChatKind::Group
    }
}

/// A login code "sent to the Telegram app".
#[derive(Debug, Clone)]
pub(super) struct PendingCode {
    pub hash: String,
    pub code: String,
    pub expires: Instant,
}

/// One step of an update sequence (the account's, or a channel's): a message at `pts`, an edit
/// of one, a delete or a read receipt.
#[derive(Debug, Clone)]
pub(super) struct Logged {
    /// The step's pts (a delete of n messages moves the sequence by n and ends here).
    pub pts: i32,
    /// A message's ID; a read receipt's `max_id`; 0 for a delete.
    pub message_id: i32,
    /// In a private chat the other person; in a group or channel the sender (the account's
    /// own ID when `out`; 0 for a channel's post).
    pub from: i64,
    /// The basic group or channel of the step (its ID in `World::chats`); `None`: private.
    pub chat: Option<i64>,
    pub out: bool,
    pub date: i32,
    pub text: String,
    /// Set on an edit: when it was made (the message keeps its `date`).
    pub edit_date: Option<i32>,
    pub step: Step,
    /// Media, reply, forward, album or service action of a message (`media.rs`).
    pub rich: Option<std::sync::Arc<super::rich::Rich>>,
}

/// What a [`Logged`] step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// A new message, or an edit of one (`edit_date` set).
    Message,
    /// Messages deleted (their IDs).
    Deleted(Vec<i32>),
    /// The other side read the account's messages up to `message_id`.
    ReadOutbox,
}

pub(super) struct World {
    pub me: SimUser,
    pub authorized: bool,
    /// The account's 2FA password (its SRP verifier), if it has one.
    pub password: Option<super::srp::Verifier>,
    /// The code was right and the password is still to come.
    pub password_pending: bool,
    /// The last `account.getPassword` challenge, until answered.
    pub challenge: Option<super::srp::Challenge>,
    pub code: Option<PendingCode>,
    pub code_ttl: Duration,
    /// The code every login gets, when set (else five random digits).
    pub fixed_code: Option<String>,
    pub users: HashMap<i64, SimUser>,
    /// Basic groups, supergroups and channels the account is in.
    pub chats: HashMap<i64, SimChat>,
    /// Every channel's steps, each at its channel's own pts (bounded like `log`).
    pub channel_log: VecDeque<Logged>,
    pub next_chat_id: i64,
    pub pts: i32,
    pub seq: i32,
    pub date: i32,
    pub(super) next_message_id: i32,
    next_user_id: i64,
    pub log: VecDeque<Logged>,
    /// Method names of every call received, in order (bounded like the log).
    pub calls: VecDeque<String>,
    /// Errors to answer the next calls of a method with: `(method, code, error name)`.
    pub faults: Vec<(String, i32, String)>,
    /// Seeded old messages and the `getHistory` calls answered (`history.rs`).
    pub(super) history: History,
}

/// Old messages seeded for history only (`history.rs`), and the record of `getHistory` calls.
#[derive(Debug, Default)]
pub(super) struct History {
    pub seeded: Vec<Logged>,
    pub calls: VecDeque<HistoryCall>,
}

/// One answered `messages.getHistory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryCall {
    /// The dialog: the other person's user ID, or the group's or channel's bare ID.
    pub dialog: i64,
    pub offset_id: i32,
    /// Messages in the answer.
    pub returned: usize,
    pub at: Instant,
}

impl World {
    pub const LOG_CAP: usize = 200_000;
    const CALLS_CAP: usize = 10_000;

    pub fn new(me: SimUser, code_ttl: Duration) -> World {
        World {
            me,
            authorized: false,
            password: None,
            password_pending: false,
            challenge: None,
            code: None,
            code_ttl,
            fixed_code: None,
            users: HashMap::new(),
            chats: HashMap::new(),
            channel_log: VecDeque::new(),
            next_chat_id: 700_000_001,
            pts: 1,
            seq: 0,
            date: now(),
            next_message_id: 1,
            next_user_id: 5_000_000_001,
            log: VecDeque::new(),
            calls: VecDeque::new(),
            faults: Vec::new(),
            history: Default::default(),
        }
    }

    pub fn add_user(&mut self, first_name: &str) -> SimUser {
        let id = self.next_user_id;
        self.next_user_id += 1;
        self.add_user_at(id, first_name)
    }

    /// A user with a given ID (Telegram's own service account is 777000).
    pub fn add_user_at(&mut self, id: i64, first_name: &str) -> SimUser {
        let u = SimUser {
            id,
            access_hash: random_i64(),
            first_name: first_name.to_string(),
            last_name: None,
            username: None,
            phone: None,
        };
        self.users.insert(id, u.clone());
        u
    }

    /// Appends a private message to the account's sequence; returns what was logged.
    pub fn append_private(&mut self, from: i64, out: bool, text: &str) -> Logged {
        self.append_common(None, from, out, text)
    }

    /// Appends a message of a private chat (`chat` `None`) or a basic group to the account's
    /// sequence, with the account's next message ID.
    pub fn append_common(&mut self, chat: Option<i64>, from: i64, out: bool, text: &str) -> Logged {
        self.pts += 1;
        self.date = self.date.max(now());
        let entry = Logged {
            pts: self.pts,
            message_id: self.next_message_id,
            from,
            chat,
            out,
            date: self.date,
            text: text.to_string(),
            edit_date: None,
            step: Step::Message,
            rich: None,
        };
        self.next_message_id += 1;
        self.push_log(entry)
    }

    /// Appends a step that is not a message (a delete moves pts by `count`).
    pub fn append_step(
        &mut self,
        chat: Option<i64>,
        from: i64,
        message_id: i32,
        count: i32,
        step: Step,
    ) -> Logged {
        self.pts += count;
        self.date = self.date.max(now());
        let entry = Logged {
            pts: self.pts,
            message_id,
            from,
            chat,
            out: false,
            date: self.date,
            text: String::new(),
            edit_date: None,
            step,
            rich: None,
        };
        self.push_log(entry)
    }

    fn push_log(&mut self, entry: Logged) -> Logged {
        if self.log.len() == Self::LOG_CAP {
            self.log.pop_front();
        }
        self.log.push_back(entry.clone());
        entry
    }

    /// Appends an edit of message `message_id` (its new text) at the next pts; `None` when the
    /// log has no such message.
    pub fn append_edit(&mut self, message_id: i32, text: &str) -> Option<Logged> {
        let original = self
            .log
            .iter()
            .find(|e| e.message_id == message_id && e.edit_date.is_none() && e.step == Step::Message)?
            .clone();
        self.pts += 1;
        self.date = self.date.max(now());
        let entry = Logged {
            pts: self.pts,
            text: text.to_string(),
            edit_date: Some(self.date),
            ..original
        };
        Some(self.push_log(entry))
    }

    /// Messages after `pts`, at most `limit`; `None` when the log no longer reaches back that far.
    pub fn after(&self, pts: i32, limit: usize) -> Option<Vec<Logged>> {
        if let Some(first) = self.log.front()
            && first.pts > pts + 1
        {
            return None;
        }
        let start = self.log.partition_point(|e| e.pts <= pts);
        Some(self.log.iter().skip(start).take(limit).cloned().collect())
    }

    pub fn record_call(&mut self, name: &str) {
        if self.calls.len() == Self::CALLS_CAP {
            self.calls.pop_front();
        }
        self.calls.push_back(name.to_string());
    }

    /// The first fault scheduled for `method`, taken.
    pub fn take_fault(&mut self, method: &str) -> Option<(i32, String)> {
        let i = self.faults.iter().position(|f| f.0 == method)?;
        let (_, code, name) = self.faults.remove(i);
        Some((code, name))
    }

    /// Issues a new login code (five digits, as Telegram's app codes).
    pub fn new_code(&mut self) -> PendingCode {
        let code = self
            .fixed_code
            .clone()
            .unwrap_or_else(|| format!("{:05}", random_i64().unsigned_abs() % 100_000));
        let pending = PendingCode {
            hash: format!("{:016x}", random_i64()),
            code,
            expires: Instant::now() + self.code_ttl,
        };
        self.code = Some(pending.clone());
        pending
    }
}

pub(super) fn now() -> i32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i32)
        .unwrap_or(0)
}

pub(super) fn random_i64() -> i64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("the OS random source");
    i64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_starts_after_the_given_pts_and_knows_when_the_log_is_too_short() {
        let me = SimUser {
            id: 1,
            access_hash: 2,
            first_name: "Me".into(),
            last_name: None,
            username: None,
            phone: Some("15550001".into()),
        };
        let mut w = World::new(me, Duration::from_secs(60));
        let u = w.add_user("Ann");
        for i in 0..5 {
            w.append_private(u.id, false, &format!("m{i}"));
        }
        let all = w.after(1, 100).unwrap();
        assert_eq!(all.iter().map(|e| e.pts).collect::<Vec<_>>(), vec![2, 3, 4, 5, 6]);
        assert_eq!(w.after(4, 1).unwrap()[0].pts, 5);
        assert!(w.after(6, 10).unwrap().is_empty());
        w.log.pop_front();
        assert!(w.after(1, 10).is_none(), "pts 2 is gone from the log");
    }
}
