//! Single-use WebSocket tickets: a logged-in client asks the REST API for one and passes it in
//! the WebSocket URL (`?ticket=`), for clients that can set neither a cookie nor a
//! subprotocol. A ticket names a user and the credential (token or session) that asked for it,
//! works once, and expires after [`TICKET_TTL`]. The WebSocket it opens lives as long as that
//! credential: revoking the token or logging out the session ends it too.
//!
//! Kept in memory only (hashed, like every bearer secret): a restart invalidates them, which
//! costs a client one more REST call.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::secrets;
use super::{AuthError, Via};

pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Outstanding tickets at most; beyond it the oldest are dropped.
const MAX_TICKETS: usize = 4096;

/// A std `Mutex`, not a tokio one: nothing awaits while it is held.
#[derive(Debug, Default)]
pub struct Tickets {
    open: Mutex<HashMap<[u8; 32], Open>>,
}

#[derive(Debug, Clone, Copy)]
struct Open {
    user: u64,
    minted_by: Via,
    expires: Instant,
}

impl Tickets {
    /// A new ticket for `user`, asked for with the credential `minted_by`, valid for
    /// [`TICKET_TTL`] from `now`.
    pub fn issue(&self, user: u64, minted_by: Via, now: Instant) -> Result<String, AuthError> {
        let ticket = secrets::random_value()?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, t| t.expires > now);
        while open.len() >= MAX_TICKETS {
            let Some(oldest) = open.iter().min_by_key(|(_, t)| t.expires).map(|(k, _)| *k) else {
                break;
            };
            open.remove(&oldest);
        }
        let t = Open {
            user,
            minted_by,
            expires: now + TICKET_TTL,
        };
        open.insert(secrets::digest(&ticket), t);
        Ok(ticket)
    }

    /// The user of a valid ticket and the credential that minted it; the ticket is used up by
    /// this call.
    pub fn redeem(&self, ticket: &str, now: Instant) -> Option<(u64, Via)> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match open.remove(&secrets::digest(ticket)) {
            Some(t) if t.expires > now => Some((t.user, t.minted_by)),
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
        let via = Via::Token([3; 32]);
        let a = t.issue(7, via, now).unwrap();
        assert_eq!(t.redeem(&a, now), Some((7, via)), "remembers who minted it");
        assert_eq!(t.redeem(&a, now), None, "used up");
        let b = t.issue(7, via, now).unwrap();
        assert_eq!(t.redeem(&b, now + TICKET_TTL), None, "expired");
        assert_eq!(t.redeem("made-up", now), None);
    }
}
