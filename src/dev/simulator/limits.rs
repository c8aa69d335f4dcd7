//! Telegram's published sending limits, measured and optionally enforced: about 30 messages a
//! second per bot, about one a second per chat (short bursts allowed), 20 a minute per group.
//!
//! Every accepted send is recorded in sliding windows, so `/_sim/bot{token}/stats` can show the
//! most sends in any 1 s window per bot and per chat and in any 60 s window per group: a test
//! checks that a client never went over. With enforcement on, a send over a limit gets 429
//! with `retry_after`, as Telegram answers it.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PER_BOT_PER_SECOND: usize = 30;
pub const PER_GROUP_PER_MINUTE: usize = 20;
/// Per chat: one a second, with bursts of this many.
pub const PER_CHAT_BURST: f64 = 3.0;

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(super) struct Limits {
    bot: Window,
    chats: HashMap<i64, Chat>,
    sends: u64,
    rejected: u64,
}

struct Chat {
    second: Window,
    minute: Window,
    sends: u64,
    /// Token bucket for the per-chat limit: tokens and when last refilled.
    tokens: f64,
    refilled: Instant,
}

/// Sends inside the last `span` and the most ever seen inside one.
#[derive(Default)]
struct Window {
    times: VecDeque<Instant>,
    max: usize,
}

impl Window {
    fn trim(&mut self, now: Instant, span: Duration) {
        while self.times.front().is_some_and(|t| now.duration_since(*t) >= span) {
            self.times.pop_front();
        }
    }

    fn record(&mut self, now: Instant, span: Duration) {
        self.trim(now, span);
        self.times.push_back(now);
        self.max = self.max.max(self.times.len());
    }

    /// Seconds until a send would fit under `limit` (0: it fits now).
    fn wait(&mut self, now: Instant, span: Duration, limit: usize) -> u32 {
        self.trim(now, span);
        if self.times.len() < limit {
            return 0;
        }
        let oldest = self.times[self.times.len() - limit];
        let left = span.saturating_sub(now.duration_since(oldest));
        left.as_secs_f64().ceil().max(1.0) as u32
    }
}

fn is_group(chat_id: i64) -> bool {
    chat_id < 0
}

impl Limits {
    /// `Some(retry_after)` when a send to `chat_id` now would break a limit.
    pub fn check(&mut self, chat_id: i64, now: Instant) -> Option<u32> {
        let mut wait = self.bot.wait(now, SECOND, PER_BOT_PER_SECOND);
        if let Some(c) = self.chats.get_mut(&chat_id) {
            c.refill(now);
            if c.tokens < 1.0 {
                wait = wait.max(((1.0 - c.tokens).ceil() as u32).max(1));
            }
            if is_group(chat_id) {
                wait = wait.max(c.minute.wait(now, MINUTE, PER_GROUP_PER_MINUTE));
            }
        }
        if wait > 0 {
            self.rejected += 1;
            return Some(wait);
        }
        None
    }

    pub fn record(&mut self, chat_id: i64, now: Instant) {
        self.sends += 1;
        self.bot.record(now, SECOND);
        let c = self.chats.entry(chat_id).or_insert_with(|| Chat {
            second: Window::default(),
            minute: Window::default(),
            sends: 0,
            tokens: PER_CHAT_BURST,
            refilled: now,
        });
        c.refill(now);
        c.tokens -= 1.0;
        c.sends += 1;
        c.second.record(now, SECOND);
        c.minute.record(now, MINUTE);
    }

    pub fn stats(&self) -> Value {
        let mut chats: Vec<_> = self.chats.iter().collect();
        chats.sort_by_key(|(id, _)| **id);
        let max_private = chats
            .iter()
            .filter(|(id, _)| !is_group(**id))
            .map(|(_, c)| c.second.max)
            .max()
            .unwrap_or(0);
        let max_group_minute = chats
            .iter()
            .filter(|(id, _)| is_group(**id))
            .map(|(_, c)| c.minute.max)
            .max()
            .unwrap_or(0);
        json!({
            "sends": self.sends,
            "rejected_429": self.rejected,
            "max_per_second": self.bot.max,
            "max_per_second_private_chat": max_private,
            "max_per_minute_group": max_group_minute,
            "limits": {
                "per_bot_per_second": PER_BOT_PER_SECOND,
                "per_chat_per_second": 1,
                "per_chat_burst": PER_CHAT_BURST,
                "per_group_per_minute": PER_GROUP_PER_MINUTE,
            },
            "chats": chats.iter().map(|(id, c)| json!({
                "chat_id": id,
                "type": if is_group(**id) { "group" } else { "private" },
                "sends": c.sends,
                "max_per_second": c.second.max,
                "max_per_minute": c.minute.max,
            })).collect::<Vec<_>>(),
        })
    }
}

impl Chat {
    fn refill(&mut self, now: Instant) {
        let add = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + add).min(PER_CHAT_BURST);
        self.refilled = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_chat_and_group_limits() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut l = Limits::default();
        // A burst of 3 in one chat, then one a second.
        for i in 0..3 {
            assert_eq!(l.check(5, at(i)), None);
            l.record(5, at(i));
        }
        assert_eq!(l.check(5, at(10)), Some(1));
        assert_eq!(l.check(5, at(1010)), None);
        // 30 a second per bot, across chats.
        let mut l = Limits::default();
        for i in 0..30 {
            assert_eq!(l.check(1000 + i, at(i as u64)), None);
            l.record(1000 + i, at(i as u64));
        }
        assert_eq!(l.check(99, at(500)), Some(1));
        assert_eq!(l.check(99, at(1000)), None);
        // 20 a minute per group, even at one a second.
        let mut l = Limits::default();
        for i in 0..20 {
            let now = at(i * 1000);
            assert_eq!(l.check(-7, now), None, "send {i}");
            l.record(-7, now);
        }
        assert_eq!(l.check(-7, at(20_000)), Some(40));
        assert_eq!(l.check(-7, at(60_000)), None);
        let s = l.stats();
        assert_eq!(
            (s["max_per_minute_group"].as_u64(), s["rejected_429"].as_u64()),
            (Some(20), Some(1))
        );
    }
}
