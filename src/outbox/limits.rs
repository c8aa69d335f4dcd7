//! Sending limits, after Telegram's published guidance and the seeds: about 30 messages a
//! second per bot, one a second per private chat with short bursts, 20 a minute per group,
//! supergroup or channel. Every figure comes from [`OutboxOptions`]; 0 turns a limit off.
//!
//! Per bot and per group the limit is a sliding window ("at most N in any span"), because a
//! token bucket with any burst would let a group see more than 20 in some minute. Per private
//! chat it is a token bucket (rate 1/s, `private_burst` tokens), which is what "short bursts"
//! means. A 429's `retry_after` pauses the whole bot: Telegram's answer outranks the
//! arithmetic. Every request counts, the ones that get a 429 included, as Telegram counts them.
//!
//! A user account (a person's own Telegram account, over MTProto) gets stricter figures
//! ([`Limits::for_user`]): Telegram publishes no limits for people, and bans accounts that
//! send like a machine, so it sends at most like a fast typist: [`USER_PER_SECOND`] request a
//! second and [`USER_PER_MINUTE`] messages a minute for the whole account, one message a
//! second in a private chat with no burst, [`USER_GROUP_PER_MINUTE`] a minute per group, one
//! request at a time. A configured figure that is lower (or 0, off) wins.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::model::ChatKind;

/// Telegram counts requests where they arrive; concurrent requests can arrive in another order
/// and spacing than they left in, so each sliding window is kept this much longer than its
/// nominal span.
pub const JITTER_MARGIN: Duration = Duration::from_millis(100);

/// A user account's requests per second, all chats together.
pub const USER_PER_SECOND: u32 = 1;
/// A user account's messages per minute, all chats together.
pub const USER_PER_MINUTE: u32 = 20;
/// A user account's messages per minute in one group, supergroup or channel.
pub const USER_GROUP_PER_MINUTE: u32 = 10;

/// The `[outbox]` settings (see `config::OutboxSection`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxOptions {
    /// Requests per second per bot (`sendMessage`, edits, deletes, typing); 0: no limit.
    pub bot_per_second: u32,
    /// Messages per second per private chat; 0: no limit.
    pub private_per_second: f64,
    /// Tokens of the private-chat bucket (the burst).
    pub private_burst: u32,
    /// Messages per minute per group, supergroup or channel; 0: no limit.
    pub group_per_minute: u32,
    /// Requests in flight at once per bot (never two for the same chat).
    pub concurrency: u32,
    /// Retries after a failed request (5xx, network, timeout); a 429 is not a failure.
    pub retries: u32,
    /// Most 429 answers one item rides out before it fails.
    pub max_rate_limited: u32,
    /// Timeout of each Bot API request.
    pub request_timeout: Duration,
    /// Longest pause between retries (they back off 1 s, 2 s, 4 s, ... up to this).
    pub max_backoff: Duration,
    /// At most one `sendChatAction` per chat in this interval (Telegram shows it for 5 s).
    pub typing_interval: Duration,
    /// Items found in "sending" at start-up (lanbox stopped while Telegram had the request):
    /// `false` marks them failed with a reason saying the outcome is unknown (at most once);
    /// `true` sends them again (at least once: the chat may show the message twice).
    pub resend_interrupted: bool,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            bot_per_second: 30,
            private_per_second: 1.0,
            private_burst: 3,
            group_per_minute: 20,
            concurrency: 4,
            retries: 3,
            max_rate_limited: 20,
            request_timeout: Duration::from_secs(30),
            max_backoff: Duration::from_secs(30),
            typing_interval: Duration::from_secs(4),
            resend_interrupted: false,
        }
    }
}

impl OutboxOptions {
    /// No rate limits at all (benchmarks).
    pub fn unlimited() -> OutboxOptions {
        OutboxOptions {
            bot_per_second: 0,
            private_per_second: 0.0,
            group_per_minute: 0,
            ..OutboxOptions::default()
        }
    }
}

/// At most `max` events in any `span`.
#[derive(Debug)]
struct Window {
    max: usize,
    span: Duration,
    times: VecDeque<Instant>,
}

impl Window {
    fn new(max: u32, span: Duration) -> Window {
        Window {
            max: max as usize,
            span,
            times: VecDeque::new(),
        }
    }

    fn ready_at(&mut self, now: Instant) -> Instant {
        if self.max == 0 {
            return now;
        }
        while self
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.span)
        {
            self.times.pop_front();
        }
        if self.times.len() < self.max {
            now
        } else {
            self.times[self.times.len() - self.max] + self.span
        }
    }

    fn take(&mut self, now: Instant) {
        if self.max > 0 {
            self.times.push_back(now);
        }
    }
}

/// A token bucket: `rate` tokens a second, at most `burst`.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: u32, now: Instant) -> Bucket {
        let burst = f64::from(burst.max(1));
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = now;
    }

    fn ready_at(&mut self, now: Instant) -> Instant {
        if self.rate <= 0.0 {
            return now;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            now
        } else {
            now + Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    fn take(&mut self, now: Instant) {
        if self.rate > 0.0 {
            self.refill(now);
            self.tokens -= 1.0;
        }
    }
}

#[derive(Debug)]
enum ChatLimit {
    Private(Bucket),
    Group(Window),
}

/// One bot's limits. Owned by its sender and shared (behind a mutex held for arithmetic only)
/// with edits, deletes and typing.
#[derive(Debug)]
pub struct Limits {
    opts: OutboxOptions,
    bot: Window,
    /// Messages per minute of the whole account (user accounts; off for bots).
    minute: Window,
    chats: HashMap<i64, ChatLimit>,
    typing: HashMap<i64, Instant>,
    /// Set by a 429: nothing is sent before this.
    paused_until: Option<Instant>,
}

impl Limits {
    pub fn new(opts: &OutboxOptions) -> Limits {
        Limits {
            bot: Window::new(opts.bot_per_second, Duration::from_secs(1) + JITTER_MARGIN),
            minute: Window::new(0, Duration::from_secs(60) + JITTER_MARGIN),
            opts: opts.clone(),
            chats: HashMap::new(),
            typing: HashMap::new(),
            paused_until: None,
        }
    }

    /// A user account's limits: `opts` made stricter (see the module docs); a figure that is
    /// off (0) in `opts` stays off, so tests and benchmarks can still turn limits off.
    pub fn for_user(opts: &OutboxOptions) -> Limits {
        let stricter = |configured: u32, user: u32| if configured == 0 { 0 } else { configured.min(user) };
        let user = OutboxOptions {
            bot_per_second: stricter(opts.bot_per_second, USER_PER_SECOND),
            private_per_second: opts.private_per_second.min(1.0),
            private_burst: 1,
            group_per_minute: stricter(opts.group_per_minute, USER_GROUP_PER_MINUTE),
            concurrency: 1,
            ..opts.clone()
        };
        let mut l = Limits::new(&user);
        l.minute = Window::new(
            stricter(opts.bot_per_second, USER_PER_MINUTE),
            Duration::from_secs(60) + JITTER_MARGIN,
        );
        l
    }

    fn chat(&mut self, chat: i64, kind: ChatKind, now: Instant) -> &mut ChatLimit {
        let opts = &self.opts;
        self.chats.entry(chat).or_insert_with(|| match kind {
            ChatKind::Private => {
                ChatLimit::Private(Bucket::new(opts.private_per_second, opts.private_burst, now))
            }
            _ => ChatLimit::Group(Window::new(
                opts.group_per_minute,
                Duration::from_secs(60) + JITTER_MARGIN,
            )),
        })
    }

    /// When the bot as a whole may make its next request.
    pub fn bot_ready_at(&mut self, now: Instant) -> Instant {
        let at = self.bot.ready_at(now);
        self.paused_until.filter(|p| *p > at).unwrap_or(at)
    }

    /// When a message to `chat` may go (bot limit and pause included).
    pub fn ready_at(&mut self, chat: i64, kind: ChatKind, now: Instant) -> Instant {
        let bot = self.bot_ready_at(now).max(self.minute.ready_at(now));
        let chat = match self.chat(chat, kind, now) {
            ChatLimit::Private(b) => b.ready_at(now),
            ChatLimit::Group(w) => w.ready_at(now),
        };
        bot.max(chat)
    }

    /// Records a message request to `chat` made at `now` (call only when [`Limits::ready_at`]
    /// said `now`).
    pub fn take(&mut self, chat: i64, kind: ChatKind, now: Instant) {
        self.bot.take(now);
        self.minute.take(now);
        match self.chat(chat, kind, now) {
            ChatLimit::Private(b) => b.take(now),
            ChatLimit::Group(w) => w.take(now),
        }
    }

    /// Takes a slot for a typing notice if one is free right now: typing is best effort, so a
    /// storm of it is dropped here instead of reaching Telegram's limits.
    pub fn try_typing(&mut self, chat: i64, now: Instant) -> bool {
        if self.bot_ready_at(now) > now {
            return false;
        }
        if self
            .typing
            .get(&chat)
            .is_some_and(|t| now.duration_since(*t) < self.opts.typing_interval)
        {
            return false;
        }
        if self.typing.len() > 4096 {
            let interval = self.opts.typing_interval;
            self.typing.retain(|_, t| now.duration_since(*t) < interval);
        }
        self.typing.insert(chat, now);
        self.bot.take(now);
        true
    }

    /// Takes a slot of the account's own window for a best-effort request (marking read) if
    /// one is free right now.
    pub fn try_now(&mut self, now: Instant) -> bool {
        if self.bot_ready_at(now) > now {
            return false;
        }
        self.bot.take(now);
        true
    }

    /// A 429: pause the bot for `secs`.
    pub fn pause(&mut self, secs: u64, now: Instant) {
        let until = now + Duration::from_secs(secs.max(1));
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_buckets_and_pauses() {
        let t0 = Instant::now();
        let mut l = Limits::new(&OutboxOptions::default());
        // Private: a burst of three, then one a second.
        for _ in 0..3 {
            assert_eq!(l.ready_at(5, ChatKind::Private, t0), t0);
            l.take(5, ChatKind::Private, t0);
        }
        let next = l.ready_at(5, ChatKind::Private, t0);
        assert!(next > t0 + Duration::from_millis(990) && next <= t0 + Duration::from_millis(1001));
        // Group: 20 (the bot's own window is the only thing spacing them), then nothing until
        // the first of them is a minute old.
        let mut now = t0;
        for _ in 0..20 {
            now = l.ready_at(-100, ChatKind::Group, now);
            l.take(-100, ChatKind::Group, now);
        }
        assert!(now < t0 + Duration::from_secs(2));
        assert!(l.ready_at(-100, ChatKind::Group, now) >= t0 + Duration::from_secs(60));
        // A pause holds everything.
        l.pause(7, t0);
        assert!(l.ready_at(9, ChatKind::Private, t0) >= t0 + Duration::from_secs(7));
        assert!(!l.try_typing(9, t0));
        // Unlimited is unlimited.
        let mut u = Limits::new(&OutboxOptions::unlimited());
        for _ in 0..1000 {
            assert_eq!(u.ready_at(1, ChatKind::Private, t0), t0);
            u.take(1, ChatKind::Private, t0);
        }
    }

    #[test]
    fn user_accounts_are_stricter() {
        let t0 = Instant::now();
        let mut l = Limits::for_user(&OutboxOptions::default());
        // One a second in a private chat, no burst.
        assert_eq!(l.ready_at(5, ChatKind::Private, t0), t0);
        l.take(5, ChatKind::Private, t0);
        assert!(l.ready_at(5, ChatKind::Private, t0) >= t0 + Duration::from_millis(990));
        // Twenty a minute for the whole account, whichever chats.
        let mut now = t0;
        for c in 0..19 {
            now = l.ready_at(100 + c, ChatKind::Private, now);
            l.take(100 + c, ChatKind::Private, now);
        }
        assert!(now < t0 + Duration::from_secs(60));
        assert!(l.ready_at(999, ChatKind::Private, now) >= t0 + Duration::from_secs(60));
        // Off stays off.
        let mut u = Limits::for_user(&OutboxOptions::unlimited());
        for _ in 0..100 {
            assert_eq!(u.ready_at(1, ChatKind::Private, t0), t0);
            u.take(1, ChatKind::Private, t0);
        }
    }

    #[test]
    fn bot_window_is_thirty_a_second() {
        let t0 = Instant::now();
        let mut l = Limits::new(&OutboxOptions::default());
        for c in 0..30 {
            assert_eq!(l.ready_at(c, ChatKind::Supergroup, t0), t0);
            l.take(c, ChatKind::Supergroup, t0);
        }
        assert_eq!(
            l.ready_at(99, ChatKind::Supergroup, t0),
            t0 + Duration::from_secs(1) + JITTER_MARGIN
        );
    }
}
