//! What every connection is held to ([`Limits`]), and the gate that counts connections in
//! total and per client.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::REFUSAL_SLOTS;

/// File descriptors kept for everything but client connections: listeners, the store, the
/// runtime, mDNS, logs, the Bot API and S3 clients' pools, and the refusal slots.
pub(super) const RESERVED_FDS: u64 = 64 + REFUSAL_SLOTS as u64;
/// At most one refusal log line in this long (with the count since the last one).
pub(super) const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What every connection is held to. [`Limits::default`] derives the caps from the process's
/// file-descriptor limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Client connections open at once; more are refused.
    pub max_connections: u32,
    /// Connections open at once from one client (an IPv4 address, an IPv6 /64).
    pub max_per_client: u32,
    /// Time to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to receive a request's headers, counted from when the server waits for them: on a
    /// kept-alive connection this is also how long it may sit idle between requests.
    pub header_timeout: Duration,
    /// A connection (upgraded or not) that moves no byte either way for this long while it
    /// waits on the client is closed. Longer than the WebSocket heartbeat (30 s).
    pub idle_timeout: Duration,
    /// A request body must bring at least this many bytes in every `body_window` the server
    /// spends waiting for it; slower, it is aborted (and the connection with it).
    pub min_body_bytes: u32,
    pub body_window: Duration,
    /// How long shutdown waits for open requests.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    /// Caps derived from `RLIMIT_NOFILE` (the packaged unit sets 16384, so 1024 connections).
    fn default() -> Self {
        Limits::for_fd_limit(fd_limit().unwrap_or(1024))
    }
}

impl Limits {
    /// The defaults for a process allowed `nofile` open files: [`RESERVED_FDS`] are kept for
    /// the rest of lanbox, and half of what remains goes to connections, since a connection
    /// may hold a file open too (an upload being written, an attachment being sent). At most
    /// 1024 connections, at least 16; one client gets at most half of them, and at most 64.
    pub fn for_fd_limit(nofile: u64) -> Limits {
        let total = (nofile.saturating_sub(RESERVED_FDS) / 2).clamp(16, 1024) as u32;
        Limits {
            max_connections: total,
            max_per_client: (total / 2).min(64),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            min_body_bytes: 1024,
            body_window: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// The soft `RLIMIT_NOFILE`, when there is one.
#[cfg(unix)]
#[allow(clippy::useless_conversion)] // `rlim_t` is 32 bits on 32-bit ARM with glibc.
fn fd_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then(|| u64::from(r.rlim_cur))
}

#[cfg(not(unix))]
fn fd_limit() -> Option<u64> {
    None
}

/// The per-client and total connection counts. A std mutex, not a tokio one: nothing awaits
/// while it is held, and it is held for a map lookup.
pub(super) struct Gate {
    pub(super) max_total: u32,
    pub(super) max_per_client: u32,
    pub(super) counts: Mutex<Counts>,
}

#[derive(Default)]
pub(super) struct Counts {
    pub(super) open: u32,
    /// Only clients with an open connection: at most `max_total` entries.
    pub(super) per_client: HashMap<IpAddr, u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    Total,
    PerClient,
}

impl Refused {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "total connection limit",
            Refused::PerClient => "per-client connection limit",
        }
    }
}

impl Gate {
    pub(super) fn new(max_total: u32, max_per_client: u32) -> Arc<Gate> {
        Arc::new(Gate {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            counts: Mutex::new(Counts::default()),
        })
    }

    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let client = client_key(ip);
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.open >= self.max_total {
            return Err(Refused::Total);
        }
        let n = c.per_client.entry(client).or_insert(0);
        if *n >= self.max_per_client {
            return Err(Refused::PerClient);
        }
        *n += 1;
        c.open += 1;
        Ok(Permit {
            gate: self.clone(),
            client,
        })
    }
}

/// One admitted connection; dropping it (with the connection's IO, upgraded or not) frees its
/// place.
pub(super) struct Permit {
    pub(super) gate: Arc<Gate>,
    pub(super) client: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.gate.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.open = c.open.saturating_sub(1);
        if let Some(n) = c.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.per_client.remove(&self.client);
            }
        }
    }
}

/// What counts as one client: an IPv4 address (also when mapped into IPv6), or an IPv6 /64,
/// since one host usually holds a whole /64.
pub(super) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Refusals logged at most every [`REFUSAL_LOG_EVERY`], with how many there were.
#[derive(Default)]
pub(super) struct RefusalLog {
    pub(super) last: Option<Instant>,
    pub(super) count: u64,
}

impl RefusalLog {
    pub(super) fn note(&mut self, ip: IpAddr, why: Refused, answered: bool) {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                client = %ip,
                reason = why.as_str(),
                answered,
                refused = self.count,
                "connection refused: too many connections"
            );
            self.last = Some(now);
            self.count = 0;
        }
    }
}
