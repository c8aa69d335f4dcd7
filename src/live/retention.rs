//! Trimming the event log. The log (`SEQ_EVENT`) exists so that clients can `resume` after a
//! disconnect; on an SD card it must not grow forever. A background task removes the oldest
//! events beyond a count and/or older than an age, in bounded batches, each one write job of
//! the store's single writer (so ingest goes on between batches and nothing else ever writes
//! the store).
//!
//! The log only ever loses its oldest end, so sequence numbers stay contiguous from the first
//! kept event to `last_seq`. A client resuming from before the first kept event is answered
//! `resync_required` by [`super::replay::reach`], which compares with the first sequence
//! number still stored: trimming needs no cooperation from the live feed.

use std::time::Duration;

use redb::ReadableTable;
use tokio::sync::watch;

use crate::store::ctx::unix_now;
use crate::store::{Store, StoreError};

/// How much of the log to keep. A limit of `None` does not trim by that measure.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Most events kept.
    pub max_events: Option<u64>,
    /// Oldest event kept.
    pub max_age: Option<Duration>,
    /// Events removed per write transaction.
    pub batch: usize,
    /// Pause between trimming runs.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: Some(200_000),
            max_age: Some(Duration::from_secs(90 * 86_400)),
            batch: 2_000,
            every: Duration::from_secs(600),
        }
    }
}

impl Retention {
    fn enabled(&self) -> bool {
        self.max_events.is_some() || self.max_age.is_some()
    }
}

/// One batch: removes up to `batch` of the oldest events that fall outside the limits as of
/// `now` (Unix seconds). Returns how many were removed.
async fn trim_batch(store: &Store, r: &Retention, now: i64) -> Result<usize, StoreError> {
    let (max_events, batch) = (r.max_events, r.batch.max(1));
    let cutoff = r
        .max_age
        .map(|a| now.saturating_sub(i64::try_from(a.as_secs()).unwrap_or(i64::MAX)));
    store
        .write(batch, move |ctx| {
            let events = ctx.events_table();
            let Some(last) = events.last()?.map(|(k, _)| k.value()) else {
                return Ok(0);
            };
            // Sequence numbers are contiguous up to `last`: everything at or below this goes.
            let by_count = max_events.map(|m| last.saturating_sub(m)).unwrap_or(0);
            let mut doomed = Vec::new();
            for row in events.range::<u64>(..)?.take(batch) {
                let (k, v) = row?;
                let seq = k.value();
                let too_many = seq <= by_count;
                let too_old = match cutoff {
                    Some(c) => v.value().get()?.at < c,
                    None => false,
                };
                if !(too_many || too_old) {
                    break;
                }
                doomed.push(seq);
            }
            for seq in &doomed {
                events.remove(*seq)?;
            }
            Ok(doomed.len())
        })
        .await
}

/// Trims the log down to the limits as of `now`, batch after batch. Returns events removed.
pub async fn trim_at(store: &Store, r: &Retention, now: i64) -> Result<u64, StoreError> {
    let mut removed = 0u64;
    if !r.enabled() {
        return Ok(0);
    }
    loop {
        let n = trim_batch(store, r, now).await?;
        removed += n as u64;
        if n < r.batch.max(1) {
            return Ok(removed);
        }
        // Let ingest and the other writers in between batches.
        tokio::task::yield_now().await;
    }
}

/// Trims the log down to the limits as of now.
pub async fn trim(store: &Store, r: &Retention) -> Result<u64, StoreError> {
    trim_at(store, r, unix_now()).await
}

/// Trims at start and then every `r.every`, until `stop` turns true.
pub fn spawn(store: Store, r: Retention, mut stop: watch::Receiver<bool>) {
    if !r.enabled() {
        return;
    }
    tokio::spawn(async move {
        loop {
            match trim(&store, &r).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "event log trimmed"),
                Err(e) => tracing::warn!(error = %e, "trimming the event log failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(r.every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    });
}
