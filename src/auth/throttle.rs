//! Login throttling: after a few failed passwords for one user name, each further attempt must
//! wait, twice as long after every failure (1 s, 2 s, 4 s, ... up to 15 minutes). A success
//! clears the name's record; records of names that stopped failing are forgotten after an hour.
//!
//! Keyed by the user name (known or not, so probing names learns nothing), not by address:
//! the server does not see client addresses behind a reverse proxy, and on a LAN the name is
//! what an attacker guesses against. The table is bounded so spraying names cannot grow it
//! without limit. Password hashing itself is bounded separately (see [`super::Auth`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed before waiting starts.
pub const FREE_FAILURES: u32 = 5;
const BASE_WAIT: Duration = Duration::from_secs(1);
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
}

/// A std `Mutex`, not a tokio one: nothing awaits while it is held.
#[derive(Debug, Default)]
pub struct Throttle {
    names: Mutex<HashMap<String, Entry>>,
}

fn wait_for(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(20);
    (BASE_WAIT * 2u32.pow(doublings)).min(MAX_WAIT)
}

impl Throttle {
    fn key(name: &str) -> String {
        name.trim().to_lowercase()
    }

    /// `Err(retry_after)` when an attempt for `name` must wait.
    pub fn check(&self, name: &str, now: Instant) -> Result<(), Duration> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = names.get(&Self::key(name)) else {
            return Ok(());
        };
        let until = e.last + wait_for(e.failures);
        if now < until { Err(until - now) } else { Ok(()) }
    }

    pub fn failed(&self, name: &str, now: Instant) {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.len() >= MAX_ENTRIES {
            names.retain(|_, e| now.saturating_duration_since(e.last) < FORGET_AFTER);
            if names.len() >= MAX_ENTRIES {
                // Still full of recent failures: drop the oldest one.
                if let Some(oldest) = names.iter().min_by_key(|(_, e)| e.last).map(|(k, _)| k.clone()) {
                    names.remove(&oldest);
                }
            }
        }
        let e = names.entry(Self::key(name)).or_insert(Entry {
            failures: 0,
            last: now,
        });
        if now.saturating_duration_since(e.last) >= FORGET_AFTER {
            e.failures = 0;
        }
        e.failures = e.failures.saturating_add(1);
        e.last = now;
    }

    pub fn succeeded(&self, name: &str) {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&Self::key(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_after_free_failures_and_success_clears() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES - 1 {
            t.failed("Alice", t0);
        }
        assert!(t.check("alice", t0).is_ok(), "four failures are free");
        t.failed("alice", t0);
        assert_eq!(t.check("ALICE ", t0), Err(Duration::from_secs(1)));
        assert!(t.check("alice", t0 + Duration::from_secs(1)).is_ok());
        t.failed("alice", t0 + Duration::from_secs(1));
        assert_eq!(
            t.check("alice", t0 + Duration::from_secs(1)),
            Err(Duration::from_secs(2))
        );
        for _ in 0..40 {
            t.failed("alice", t0 + Duration::from_secs(1));
        }
        assert_eq!(t.check("alice", t0 + Duration::from_secs(1)), Err(MAX_WAIT));
        assert!(t.check("bob", t0).is_ok(), "other names are not affected");
        t.succeeded("alice");
        assert!(t.check("alice", t0).is_ok());
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t = Throttle::default();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            t.failed("a", t0);
        }
        let later = t0 + FORGET_AFTER;
        t.failed("a", later);
        assert!(t.check("a", later).is_ok(), "the count restarted");
    }
}
