//! Webhook mode: Telegram POSTs every update to the box instead of the box long-polling.
//!
//! Long polling is the default because a box on a LAN behind NAT has no public address, and
//! lanbox must not need one. Installations that do have one (a reverse proxy, a port forward)
//! can switch an account to webhook mode; updates then arrive at
//! `POST {base}/telegram/webhook/{account}` ([`url`]).
//!
//! Every delivery must carry the account's secret in `X-Telegram-Bot-Api-Secret-Token`. The
//! secret is never stored: it is derived from the account's data key and an epoch counter
//! ([`secret`]), and each switch to webhook mode moves to a new epoch, so switching again
//! rotates it. Requests without the current secret are refused before their body is parsed.
//!
//! Switching ([`switch_to_webhook`], [`switch_to_polling`]) calls Telegram first (`setWebhook`
//! with the secret and [`ALLOWED_UPDATES`], or `deleteWebhook`) and records the mode only when
//! Telegram accepted it, so the stored mode never claims what Telegram was not told. A received
//! update goes through the same mapping and pipeline as a polled one; it is acknowledged only
//! after it committed, so Telegram redelivers anything lanbox did not store, and the pipeline's
//! dedup makes a redelivery harmless.

use std::future::Future;
use std::time::{Duration, SystemTime};

use base64::Engine;
use tokio::sync::watch;

use super::bots::{self, AccountError, AccountSummary, BotOptions, Mode, WebhookOptions, url};
use super::client::{ApiError, BotClient, SetWebhook};
use super::map_raw;
use super::poller::{ALLOWED_UPDATES, AccountStatus, StopReason};
use crate::ingest::{Batch, Outcome, Pipeline};
use crate::store::seal::SecretKey;
use crate::store::{Store, StoreError};
/// The header Telegram sends the secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
/// Largest update body accepted (a Telegram update is a few kilobytes).
pub const MAX_BODY: usize = 1 << 20;

/// The secret for one epoch: 43 characters of `A-Z a-z 0-9 _ -`, as Telegram requires.
pub fn secret(key: &SecretKey, epoch: u32) -> String {
    let mut msg = b"lanbox telegram webhook secret ".to_vec();
    msg.extend_from_slice(&epoch.to_be_bytes());
    let mac = blake3::keyed_hash(key.expose(), &msg);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.as_bytes())
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no Telegram account {0} in webhook mode")]
    NotWebhook(u64),
    #[error("missing or wrong secret token")]
    BadSecret,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Checks a delivery's secret, then maps and commits its update. Answers only after the commit.
pub async fn receive(
    pipeline: &Pipeline,
    account: u64,
    secret_header: Option<&[u8]>,
    body: &[u8],
) -> Result<Outcome, WebhookError> {
    let expected = pipeline
        .store()
        .read(move |r| {
            let Some(rec) = r.account(account)? else {
                return Ok(None);
            };
            let Ok(opts) = bots::parse_options(&rec.options) else {
                return Ok(None);
            };
            let live = rec.channel == bots::CHANNEL && opts.removed_at.is_none();
            match (live, opts.mode, &opts.webhook) {
                (true, Mode::Webhook, Some(w)) => Ok(Some(secret(r.sealer(account)?.key(), w.epoch))),
                _ => Ok(None),
            }
        })
        .await?
        .ok_or(WebhookError::NotWebhook(account))?;
    if !secret_header.is_some_and(|got| constant_time_eq(got, expected.as_bytes())) {
        return Err(WebhookError::BadSecret);
    }
    let mapped = map_raw(account, body);
    let outcome = pipeline
        .submit(Batch {
            account,
            changes: mapped.changes,
            position: None,
        })
        .await?;
    Ok(outcome)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Tells Telegram to deliver to `base` (with the box's certificate when it is self-signed),
/// then records webhook mode under a new secret epoch.
pub async fn switch_to_webhook(
    store: &Store,
    http: reqwest::Client,
    id: u64,
    base: &str,
    certificate: Option<Vec<u8>>,
) -> Result<AccountSummary, AccountError> {
    let base = normalise_base(base)?;
    let bot = bots::load_bot(store, id)
        .await?
        .ok_or(AccountError::NotFound(id))?;
    let epoch = bot
        .options
        .webhook
        .as_ref()
        .map_or(1, |w| w.epoch.wrapping_add(1));
    let key = store
        .read(move |r| Ok(r.sealer(id)?.key().expose().to_vec()))
        .await?;
    let key = SecretKey::from_bytes(&key).ok_or(AccountError::BadOptions(id, "data key".into()))?;
    let req = SetWebhook {
        url: url(&base, id),
        secret_token: Some(secret(&key, epoch)),
        allowed_updates: ALLOWED_UPDATES.iter().map(|s| s.to_string()).collect(),
        max_connections: Some(4),
        drop_pending_updates: false,
    };
    let client = bot.client(http);
    let self_signed = certificate.is_some();
    match certificate {
        Some(pem) => client.set_webhook_with_certificate(&req, pem).await?,
        None => client.set_webhook(&req).await?,
    };
    let webhook = WebhookOptions {
        base,
        epoch,
        self_signed,
    };
    set_options(store, id, move |o| {
        o.mode = Mode::Webhook;
        o.webhook = Some(webhook.clone());
    })
    .await
}

/// Tells Telegram to stop delivering (`deleteWebhook`; pending updates are kept and will be
/// polled), then records polling mode.
pub async fn switch_to_polling(
    store: &Store,
    http: reqwest::Client,
    id: u64,
) -> Result<AccountSummary, AccountError> {
    let bot = bots::load_bot(store, id)
        .await?
        .ok_or(AccountError::NotFound(id))?;
    bot.client(http).delete_webhook(false).await?;
    set_options(store, id, |o| o.mode = Mode::Polling).await
}

async fn set_options(
    store: &Store,
    id: u64,
    change: impl Fn(&mut BotOptions) + Send + 'static,
) -> Result<AccountSummary, AccountError> {
    let rec = store
        .write(1, move |ctx| {
            let Some(mut rec) = bots::live_account(ctx, id)? else {
                return Ok(None);
            };
            let Ok(mut opts) = bots::parse_options(&rec.options) else {
                return Ok(None);
            };
            change(&mut opts);
            rec.options = serde_json::to_string(&opts).expect("options serialise");
            ctx.put_account(rec.clone())?;
            Ok(Some(rec))
        })
        .await?
        .ok_or(AccountError::NotFound(id))?;
    bots::summary(&rec)
}

/// How often a webhook account's delivery state is checked with `getWebhookInfo`.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);
/// A delivery error Telegram reports is shown for this long after it happened.
const RECENT_ERROR_S: i64 = 600;

/// Stands in for the poller of an account in webhook mode: nothing to poll, but the account's
/// status must still say whether Telegram can deliver. Checks `getWebhookInfo` every
/// [`CHECK_EVERY`]: a revoked token stops it like a poller; a webhook that is no longer set at
/// Telegram (someone called `deleteWebhook`) stops it with a conflict to resolve; a recent
/// delivery error (the box unreachable from Telegram) shows as backing off with Telegram's reason.
pub struct Keeper {
    pub account: u64,
    pub client: BotClient,
    pub url: String,
    pub status: watch::Sender<AccountStatus>,
}

impl Keeper {
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> StopReason {
        tokio::pin!(shutdown);
        let reason = tokio::select! {
            biased;
            _ = &mut shutdown => StopReason::Shutdown,
            r = self.check_loop() => r,
        };
        self.status.send_replace(AccountStatus::Stopped {
            reason: reason.clone(),
        });
        reason
    }

    async fn check_loop(&self) -> StopReason {
        let mut failures = 0u32;
        loop {
            match self.client.get_webhook_info().await {
                Err(ApiError::Unauthorized) => return StopReason::Unauthorized,
                Ok(info) if info.url != self.url => {
                    return StopReason::Conflict(
                        "Telegram has no webhook at this account's URL; switch the account to webhook mode again"
                            .into(),
                    );
                }
                Ok(info) => {
                    failures = 0;
                    let now = crate::store::ctx::unix_now();
                    let recent = info.last_error_date.is_some_and(|d| now - d < RECENT_ERROR_S);
                    self.status.send_replace(if recent {
                        AccountStatus::BackingOff {
                            until: SystemTime::now() + CHECK_EVERY,
                            reason: format!(
                                "Telegram cannot deliver to the webhook: {}",
                                printable(info.last_error_message.as_deref().unwrap_or("unknown error"))
                            ),
                            failures: u32::try_from(info.pending_update_count).unwrap_or(u32::MAX),
                        }
                    } else {
                        AccountStatus::Running
                    });
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.status.send_replace(AccountStatus::BackingOff {
                        until: SystemTime::now() + CHECK_EVERY,
                        reason: e.to_string(),
                        failures,
                    });
                }
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}

/// At most 200 printable characters of a reason from Telegram.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// `https://host[:port]` with an optional path prefix, no query, no credentials.
fn normalise_base(base: &str) -> Result<String, AccountError> {
    bots::plain_url(base, &["https"]).ok_or(AccountError::BadWebhookBase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_telegram_safe_and_rotate_with_the_epoch() {
        let key = SecretKey::from_bytes(&[7; 32]).unwrap();
        let a = secret(&key, 1);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        );
        assert_ne!(a, secret(&key, 2));
        assert_eq!(a, secret(&key, 1));
        let other = SecretKey::from_bytes(&[8; 32]).unwrap();
        assert_ne!(a, secret(&other, 1));
    }

    #[test]
    fn urls_and_bases() {
        assert_eq!(
            url("https://x.example/", 3),
            "https://x.example/telegram/webhook/3"
        );
        assert!(
            normalise_base("http://x.example").is_err(),
            "Telegram requires https"
        );
        assert!(normalise_base("https://u:p@x.example").is_err());
        assert_eq!(
            normalise_base("https://x.example:8443/").unwrap(),
            "https://x.example:8443"
        );
    }
}
