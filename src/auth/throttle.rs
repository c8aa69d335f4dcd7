//! Login throttling: growing waits after failed logins, per user name and per client address.
//!
//! An attempt is counted *before* its password is checked ([`Throttle::reserve`], atomically
//! under one lock), so parallel guesses are counted like sequential ones: of 60 sent at once
//! for one name, 5 are checked and the rest told to wait. A success gives its count back.
//!
//! - **Per name** (known or not, so probing names learns nothing): 5 attempts free, then each
//!   must wait 1 s, 2 s, 4 s, ... after the last, **at most a minute**. No long lock-out: after
//!   a burst of guesses the real user is let in within a minute, and a correct login clears
//!   the name's count.
//! - **Per client address**, when the server knows it: 10 attempts free (several people may
//!   share one address), then the same doubling, up to 5 minutes. A guesser at one address is
//!   slowed down across every name it tries, while the name it attacks stays usable from
//!   other addresses: the refused attempts of a throttled address count for no name. Addresses
//!   are taken whole (no IPv6 /64 grouping: on a LAN the whole network shares one /64).
//!
//! A refusal carries the wait, rounded up to whole seconds (for `Retry-After`). Counts of keys
//! that stopped failing are forgotten after an hour. The table is bounded so spraying names
//! cannot grow it without limit. Password hashing itself is bounded separately
//! ([`super::hashing`]).
//!
//! The logic takes the time as an argument, so tests drive it with made-up instants.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts per name before waiting starts.
pub const FREE_FAILURES: u32 = 5;
/// The longest wait for a name.
pub const NAME_MAX_WAIT: Duration = Duration::from_secs(60);
/// Attempts per client address before waiting starts.
pub const ADDR_FREE_FAILURES: u32 = 10;
/// The longest wait for an address.
pub const ADDR_MAX_WAIT: Duration = Duration::from_secs(5 * 60);
const BASE_WAIT: Duration = Duration::from_secs(1);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Addr(IpAddr),
}

impl Key {
    fn rule(&self) -> (u32, Duration) {
        match self {
            Key::Name(_) => (FREE_FAILURES, NAME_MAX_WAIT),
            Key::Addr(_) => (ADDR_FREE_FAILURES, ADDR_MAX_WAIT),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Attempts counted (in flight or failed) since the count was last forgotten.
    count: u32,
    /// When the last one was counted.
    last: Instant,
}

impl Entry {
    fn forgotten(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last) >= FORGET_AFTER
    }

    /// How long an attempt at `now` must still wait.
    fn wait(&self, key: &Key, now: Instant) -> Duration {
        if self.forgotten(now) {
            return Duration::ZERO;
        }
        let (free, max) = key.rule();
        (self.last + wait_for(self.count, free, max)).saturating_duration_since(now)
    }
}

fn wait_for(count: u32, free: u32, max: Duration) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(20);
    (BASE_WAIT * 2u32.pow(doublings)).min(max)
}

/// Whole seconds, rounded up: what `Retry-After` can say without sending the client back early.
fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

fn name_key(name: &str) -> Key {
    Key::Name(name.trim().to_lowercase())
}

fn addr_key(ip: IpAddr) -> Key {
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    Key::Addr(ip.to_canonical())
}

/// A counted attempt: until [`Throttle::refund`] or [`Throttle::succeeded`] gives it back it
/// counts as a failure (so dropping it, as a failed check does, keeps it counted).
#[derive(Debug)]
#[must_use]
pub struct Attempt {
    name: Key,
    addr: Option<Key>,
}

/// A std `Mutex`, not a tokio one: nothing awaits while it is held.
#[derive(Debug, Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Throttle {
    /// Counts an attempt for `name` from `addr`, or refuses it with how long to wait (whole
    /// seconds, at least one). A refused attempt is not counted.
    pub fn reserve(&self, name: &str, addr: Option<IpAddr>, now: Instant) -> Result<Attempt, Duration> {
        let attempt = Attempt {
            name: name_key(name),
            addr: addr.map(addr_key),
        };
        let mut entries = self.lock();
        let keys = || std::iter::once(&attempt.name).chain(attempt.addr.as_ref());
        let wait = keys()
            .filter_map(|k| entries.get(k).map(|e| e.wait(k, now)))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(whole_seconds(wait).max(BASE_WAIT));
        }
        for k in keys() {
            if !entries.contains_key(k) {
                make_room(&mut entries, now);
            }
            let e = entries.entry(k.clone()).or_insert(Entry { count: 0, last: now });
            if e.forgotten(now) {
                e.count = 0;
            }
            e.count = e.count.saturating_add(1);
            e.last = now;
        }
        Ok(attempt)
    }

    /// The attempt's password was not checked after all (the box was busy, or failed): it
    /// counts for nothing.
    pub fn refund(&self, attempt: Attempt) {
        let mut entries = self.lock();
        std::iter::once(&attempt.name)
            .chain(attempt.addr.as_ref())
            .for_each(|k| give_back(&mut entries, k));
    }

    /// The password was right: the name's count is cleared (the real user is in), the
    /// address's attempt given back (a guesser with an account of its own cannot wipe its
    /// address's failures by logging in).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut entries = self.lock();
        entries.remove(&attempt.name);
        if let Some(k) = &attempt.addr {
            give_back(&mut entries, k);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn give_back(entries: &mut HashMap<Key, Entry>, k: &Key) {
    if let Some(e) = entries.get_mut(k) {
        e.count = e.count.saturating_sub(1);
        if e.count == 0 {
            entries.remove(k);
        }
    }
}

fn make_room(entries: &mut HashMap<Key, Entry>, now: Instant) {
    if entries.len() < MAX_ENTRIES {
        return;
    }
    entries.retain(|_, e| !e.forgotten(now));
    if entries.len() >= MAX_ENTRIES {
        // Still full of recent failures: drop the oldest one.
        if let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.last).map(|(k, _)| k.clone()) {
            entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, last)))
    }

    #[test]
    fn waits_grow_after_free_failures_and_success_clears() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            let _failed = t.reserve("Alice", None, t0).expect("five are free");
        }
        assert_eq!(
            t.reserve("ALICE ", None, t0).err(),
            Some(S),
            "names are case-folded"
        );
        let _ = t.reserve("alice", None, t0 + S).expect("after the wait");
        assert_eq!(t.reserve("alice", None, t0 + S).err(), Some(2 * S));
        let mut now = t0 + S;
        for _ in 0..40 {
            now += NAME_MAX_WAIT;
            let _ = t.reserve("alice", None, now).expect("never more than the cap");
        }
        assert_eq!(t.reserve("alice", None, now).err(), Some(NAME_MAX_WAIT));
        assert!(
            t.reserve("bob", None, now).is_ok(),
            "other names are not affected"
        );
        now += NAME_MAX_WAIT;
        let ok = t.reserve("alice", None, now).unwrap();
        t.succeeded(ok);
        for _ in 0..FREE_FAILURES {
            let _ = t
                .reserve("alice", None, now)
                .expect("a success cleared the count");
        }
    }

    /// Regression guard: parallel wrong passwords were all checked (the count was taken after
    /// the hash), so a burst of 60 got 59 guesses where a sequential guesser got 5.
    #[test]
    fn attempts_in_flight_count_before_they_are_checked() {
        let t = Throttle::default();
        let t0 = Instant::now();
        let in_flight: Vec<_> = (0..60)
            .filter_map(|_| t.reserve("carol", None, t0).ok())
            .collect();
        assert_eq!(in_flight.len(), FREE_FAILURES as usize);
    }

    /// Regression guard: after a burst of wrong passwords the name was locked for 15 minutes,
    /// locking the real user out too. Now the guesser's address is slowed down, and the real
    /// user, from another address, gets in within the name's cap of a minute.
    #[test]
    fn after_a_burst_the_real_user_gets_in_within_a_minute() {
        let t = Throttle::default();
        let t0 = Instant::now();
        let mut now = t0;
        // A guesser at .66 tries as fast as it is allowed for an hour, then once more.
        loop {
            match t.reserve("dave", ip(66), now) {
                Ok(_failed) if now >= t0 + Duration::from_secs(3600) => break,
                Ok(_failed) => now += Duration::from_millis(100),
                Err(wait) => {
                    assert!(wait <= ADDR_MAX_WAIT, "{wait:?}");
                    now += wait;
                }
            }
        }
        // The real user at .10 waits at most the name's cap, once, and is let in.
        let before = now;
        let ok = match t.reserve("dave", ip(10), now) {
            Ok(a) => a,
            Err(wait) => {
                assert!(wait <= NAME_MAX_WAIT, "{wait:?}");
                now += wait;
                t.reserve("dave", ip(10), now).expect("let in after the wait")
            }
        };
        t.succeeded(ok);
        assert!(now - before <= NAME_MAX_WAIT);
        // The guesser's address stays slowed down, for every name.
        assert_eq!(
            t.reserve("erin", ip(66), now).err(),
            Some(ADDR_MAX_WAIT - (now - before))
        );
    }

    #[test]
    fn an_address_is_slowed_down_across_names() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for i in 0..ADDR_FREE_FAILURES {
            let _ = t.reserve(&format!("name{i}"), ip(5), t0).expect("ten are free");
        }
        assert_eq!(t.reserve("another", ip(5), t0).err(), Some(S));
        assert!(
            t.reserve("another", ip(6), t0).is_ok(),
            "other addresses are not affected"
        );
        let v6 = "::ffff:192.168.1.5".parse().ok();
        assert_eq!(t.reserve("another", v6, t0).err(), Some(S), "mapped IPv4 is IPv4");
    }

    #[test]
    fn refunds_and_successes_give_attempts_back() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..20 {
            let a = t.reserve("frank", ip(7), t0).unwrap();
            t.refund(a);
        }
        for _ in 0..20 {
            let a = t.reserve("frank", ip(7), t0).unwrap();
            t.succeeded(a);
        }
        assert!(t.lock().is_empty(), "nothing left counted");
    }

    #[test]
    fn waits_are_whole_seconds_rounded_up() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES + 1 {
            let _ = t.reserve("gina", None, t0);
        }
        let _ = t.reserve("gina", None, t0 + S).unwrap();
        let later = t0 + S + Duration::from_millis(300);
        assert_eq!(t.reserve("gina", None, later).err(), Some(2 * S), "1.7 s says 2");
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            let _ = t.reserve("a", None, t0);
        }
        assert!(t.reserve("a", None, t0).is_err());
        let later = t0 + FORGET_AFTER;
        for _ in 0..FREE_FAILURES {
            let _ = t.reserve("a", None, later).expect("the count restarted");
        }
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for i in 0..MAX_ENTRIES + 50 {
            let _ = t.reserve(&format!("n{i}"), None, t0);
        }
        assert!(t.lock().len() <= MAX_ENTRIES);
    }
}
