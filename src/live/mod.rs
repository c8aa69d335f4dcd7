//! The live feed: WebSocket clients receive the workspace's events as they commit, filtered by
//! their grants, and can resume from a sequence number after a disconnect.
//!
//! - [`protocol`]: the `lanbox.v1` messages both ways, close codes, event rendering.
//! - [`hub`]: one fan-out task from the store's broadcast to bounded per-client queues; a slow
//!   client is dropped, never waited for.
//! - [`replay`]: reading the event log for `resume` (and for the REST `events` route).
//! - [`retention`]: trimming the log's oldest end by count and age.
//!
//! The WebSocket itself (authentication, the upgrade, one task per connection) is
//! `api::ws`: this module knows nothing of HTTP.

pub mod hub;
pub mod protocol;
pub mod replay;
pub mod retention;

use std::time::Duration;

pub use hub::{Ephemeral, Hub};

/// Tunables of the live feed.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Events queued per client before it counts as too slow. A queue holds pointers to
    /// events shared by all clients, so it is cheap; it must exceed the largest burst one
    /// commit publishes (the writer's batch limit, 4096 by default), or a client that reads
    /// perfectly well would be dropped for a burst.
    pub queue: usize,
    /// Ping interval; a client silent for two intervals is closed.
    pub heartbeat: Duration,
    /// Longest a single write to a client may take.
    pub write_timeout: Duration,
    /// Largest client message, bytes.
    pub max_message: usize,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            queue: 8192,
            heartbeat: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            max_message: 64 << 10,
        }
    }
}
