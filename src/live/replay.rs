//! Reading the event log for a client: whether it still reaches back to where the client was,
//! and a page of events after that point as the client sees them. Used by WebSocket `resume`
//! and by the REST `events` route alike.

use serde_json::Value;

use super::protocol::{View, event_chat, event_json, wants_message};
use crate::store::{Reader, StoreError};
use crate::view::visible;

/// Whether the log can replay everything after `from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Complete,
    /// The log no longer holds what follows `from` (or `from` is from another database):
    /// reload, then start again from `last_seq`.
    Resync {
        first_seq: Option<u64>,
        last_seq: u64,
    },
}

pub fn reach(r: &Reader, from: u64) -> Result<Reach, StoreError> {
    let last_seq = r.last_seq()?;
    let first_seq = r.first_seq()?;
    let complete = from <= last_seq
        && match first_seq {
            Some(f) => from.saturating_add(1) >= f,
            None => from == last_seq,
        };
    Ok(if complete {
        Reach::Complete
    } else {
        Reach::Resync { first_seq, last_seq }
    })
}

/// One page of the log after `after`, as `view` sees it.
#[derive(Debug, Default)]
pub struct Page {
    pub events: Vec<Value>,
    /// The last sequence number read (seen or not): where the next page starts.
    pub last: u64,
    /// Events read, visible or not; fewer than the limit means the log's end was reached.
    pub read: usize,
}

pub fn page(r: &Reader, view: &View, after: u64, limit: usize) -> Result<Page, StoreError> {
    let rows = r.events_after(after, limit)?;
    let mut out = Page {
        events: Vec::new(),
        last: after,
        read: rows.len(),
    };
    for e in rows {
        out.last = e.seq;
        if !view.sees_event(&e) {
            continue;
        }
        let message = match (wants_message(e.kind), e.message_key) {
            (true, Some(k)) => visible::message(r, &view.grants, event_chat(&e).msg(k))?,
            _ => None,
        };
        let mut v = event_json(&view.grants, &e, message);
        crate::outbox::complete_event(r, &mut v)?;
        crate::view::conversation::complete_event(r, &e, &mut v)?;
        crate::view::notes::complete_event(r, &e, &mut v)?;
        out.events.push(v);
    }
    Ok(out)
}
