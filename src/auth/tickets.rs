//! Single-use WebSocket tickets: a logged-in client asks the REST API for one and passes it in
//! the WebSocket URL (`?ticket=`), for clients that can set neither a cookie nor a
//! subprotocol. A ticket names a user, works once, and expires after [`TICKET_TTL`].
//!
//! Kept in memory only (hashed, like every bearer secret): a restart invalidates them, which
//! costs a client one more REST call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AuthError;
use super::secrets;

pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Outstanding tickets at most; beyond it the oldest are dropped.
const MAX_TICKETS: usize = 4096;

/// A std `Mutex`, not a tokio one: nothing awaits while it is held.
#[derive(Debug, Default)]
pub struct Tickets {
    open: Mutex<HashMap<[u8; 32], (u64, Instant)>>,
}

impl Tickets {
    /// A new ticket for `user`, valid for [`TICKET_TTL`] from `now`.
    pub fn issue(&self, user: u64, now: Instant) -> Result<String, AuthError> {
        let ticket = secrets::random_value()?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, (_, exp)| *exp > now);
        while open.len() >= MAX_TICKETS {
            let Some(oldest) = open.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| *k) else {
                break;
            };
            open.remove(&oldest);
        }
        open.insert(secrets::digest(&ticket), (user, now + TICKET_TTL));
        Ok(ticket)
    }

    /// The user of a valid ticket, which is used up by this call.
    pub fn redeem(&self, ticket: &str, now: Instant) -> Option<u64> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match open.remove(&secrets::digest(ticket)) {
            Some((user, exp)) if exp > now => Some(user),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_use_and_expiring() {
        let t = Tickets::default();
        let now = Instant::now();
        let a = t.issue(7, now).unwrap();
        assert_eq!(t.redeem(&a, now), Some(7));
        assert_eq!(t.redeem(&a, now), None, "used up");
        let b = t.issue(7, now).unwrap();
        assert_eq!(t.redeem(&b, now + TICKET_TTL), None, "expired");
        assert_eq!(t.redeem("made-up", now), None);
    }
}
