//! Long polling for one bot: `getUpdates` in a loop, each response committed as one
//! [`Batch`] whose position is the next offset.
//!
//! The offset starts from the store's committed position and moves only after the pipeline has
//! committed the updates it confirms, in the same transaction as their messages: a crash between
//! two polls makes Telegram deliver the uncommitted updates again, never skip them.
//!
//! Failures:
//! - 429: wait exactly `retry_after`, no jitter (Telegram means it);
//! - 5xx, network errors, timeouts, a response that is not understood, a store error: back off
//!   exponentially with jitter, up to a cap, then try again;
//! - 401 (token revoked) or 409 (a webhook is set, or another process polls the same bot):
//!   stop, with the reason in the account's [`AccountStatus`], instead of hammering Telegram.
//!
//! The task reports what it is doing through a `watch` channel so the API can show it, and
//! stops when the shutdown future it was given completes.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::client::{ApiError, BotClient, GetUpdates};
use super::{map_raw, split_updates};
use crate::ingest::{Batch, Pipeline};
use crate::model::AccountId;
use crate::store::StoreError;

/// Every update type lanbox handles; sent as `allowed_updates`, because Telegram's default
/// leaves out reactions and member changes.
pub const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "callback_query",
    "chat_member",
    "my_chat_member",
];

/// How a poller polls and retries.
#[derive(Debug, Clone)]
pub struct PollerConfig {
    /// Seconds Telegram holds a `getUpdates` call open when there is nothing to deliver.
    pub poll_timeout: u32,
    /// Added to `poll_timeout` for the HTTP request's own timeout.
    pub request_margin: Duration,
    /// Updates per call (Telegram allows 1 to 100).
    pub limit: u32,
    pub backoff: Backoff,
}

impl Default for PollerConfig {
    fn default() -> Self {
        PollerConfig {
            poll_timeout: 25,
            request_margin: Duration::from_secs(10),
            limit: 100,
            backoff: Backoff::default(),
        }
    }
}

/// Exponential backoff with "equal jitter": attempt `n` waits between half and all of
/// `initial * 2^n`, capped at `max`, so pollers that failed together do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = self.initial.saturating_mul(1u32 << attempt.min(20)).min(self.max);
        let half = full / 2;
        // Jitter needs no cryptographic quality, but getrandom is already here and cannot run out.
        let r = getrandom::u32().unwrap_or(u32::MAX / 2);
        half + half.mul_f64(f64::from(r) / f64::from(u32::MAX))
    }
}

/// What an account's poller is doing, for the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum AccountStatus {
    /// Reading its offset from the store.
    Starting,
    /// Polling normally.
    Running,
    /// Waiting before the next call.
    BackingOff {
        until: SystemTime,
        reason: String,
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Not polling; needs the operator (or was shut down).
    Stopped { reason: StopReason },
}

/// Why a poller stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StopReason {
    #[error("shut down")]
    Shutdown,
    #[error("Telegram rejected the bot token (401): it was revoked or changed; update the account")]
    Unauthorized,
    #[error("conflict (409): {0}; remove the webhook or stop the other poller, then restart")]
    Conflict(String),
    #[error("the store is closed")]
    StoreClosed,
    #[error("could not start: {0}")]
    Setup(String),
}

/// One account's poller.
pub struct Poller {
    pub account: AccountId,
    pub client: BotClient,
    pub pipeline: Pipeline,
    pub config: PollerConfig,
    pub status: watch::Sender<AccountStatus>,
}

/// What one poll turned into.
enum Polled {
    /// Nothing arrived before the long poll ended.
    Empty,
    /// Updates committed; the next offset.
    Committed(u64),
}

/// Why a response could not be committed (transient: the same updates come again).
#[derive(Debug, thiserror::Error)]
enum IngestError {
    #[error("{0}")]
    Wire(#[from] super::WireError),
    #[error("no update in the response has a readable update_id")]
    NoUpdateId,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Poller {
    /// Polls until `shutdown` completes or the account must stop; returns why it stopped (also
    /// left in the status channel).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> StopReason {
        tokio::pin!(shutdown);
        let reason = tokio::select! {
            biased;
            _ = &mut shutdown => StopReason::Shutdown,
            r = self.poll_loop() => r,
        };
        match &reason {
            StopReason::Shutdown => tracing::info!(account = self.account, "poller stopped"),
            r => tracing::error!(account = self.account, reason = %r, "poller stopped"),
        }
        self.status.send_replace(AccountStatus::Stopped {
            reason: reason.clone(),
        });
        reason
    }

    /// The loop proper. Cancelled (dropped) at any await by [`Poller::run`] on shutdown: a
    /// commit already handed to the writer still completes, and its offset is in the store.
    async fn poll_loop(&self) -> StopReason {
        self.status.send_replace(AccountStatus::Starting);
        let account = self.account;
        let mut offset = match self.pipeline.store().read(move |r| r.position(account)).await {
            Ok(p) => p,
            Err(StoreError::WriterGone) => return StopReason::StoreClosed,
            Err(e) => return StopReason::Setup(e.to_string()),
        };
        tracing::info!(account, offset, "poller started");
        self.status.send_replace(AccountStatus::Running);
        let mut failures: u32 = 0;
        loop {
            let req = GetUpdates {
                offset: offset.and_then(|o| i64::try_from(o).ok()),
                limit: self.config.limit.clamp(1, 100),
                timeout: self.config.poll_timeout,
                allowed_updates: ALLOWED_UPDATES.iter().map(|s| s.to_string()).collect(),
            };
            let polled = self.client.get_updates(&req, self.config.request_margin).await;
            let wait = match polled {
                Ok(body) => match self.ingest(&body).await {
                    Ok(Polled::Empty) => None,
                    Ok(Polled::Committed(next)) => {
                        offset = Some(offset.map_or(next, |o| o.max(next)));
                        None
                    }
                    Err(IngestError::Store(StoreError::WriterGone)) => return StopReason::StoreClosed,
                    Err(e) => Some((self.config.backoff.delay(failures), e.to_string())),
                },
                Err(ApiError::Unauthorized) => return StopReason::Unauthorized,
                Err(ApiError::Conflict(d)) => return StopReason::Conflict(d),
                Err(e @ ApiError::RetryAfter(secs)) => Some((Duration::from_secs(secs), e.to_string())),
                Err(e) => Some((self.config.backoff.delay(failures), e.to_string())),
            };
            match wait {
                None => {
                    if failures > 0 {
                        tracing::info!(account, failures, "poller recovered");
                        self.status.send_replace(AccountStatus::Running);
                    }
                    failures = 0;
                }
                Some((delay, reason)) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(account, failures, ?delay, %reason, "poll failed; waiting");
                    self.status.send_replace(AccountStatus::BackingOff {
                        until: SystemTime::now() + delay,
                        reason,
                        failures,
                    });
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Splits, maps and commits one `getUpdates` response. A malformed update becomes a
    /// placeholder or a counted rejection and its neighbours go through.
    async fn ingest(&self, body: &[u8]) -> Result<Polled, IngestError> {
        let raws = split_updates(body)?;
        if raws.is_empty() {
            return Ok(Polled::Empty);
        }
        let mut changes = Vec::with_capacity(raws.len());
        let mut last_id: Option<i64> = None;
        for raw in &raws {
            let mapped = map_raw(self.account, raw.0);
            last_id = last_id.max(mapped.update_id);
            changes.extend(mapped.changes);
        }
        // Without any update_id the offset cannot move, and committing would count the same
        // rejections again on every poll: treat the response as not understood instead.
        let next = last_id
            .and_then(|id| u64::try_from(id).ok())
            .ok_or(IngestError::NoUpdateId)?
            + 1;
        let count = raws.len();
        let outcome = self
            .pipeline
            .submit(Batch {
                account: self.account,
                changes,
                position: Some(next),
            })
            .await?;
        tracing::debug!(account = self.account, count, next, ?outcome, "updates committed");
        Ok(Polled::Committed(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for (attempt, full) in [(0, 100), (1, 200), (2, 400), (3, 800), (4, 1000), (40, 1000)] {
            let full = Duration::from_millis(full);
            for _ in 0..20 {
                let d = b.delay(attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
    }
}
