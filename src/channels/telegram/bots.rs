//! Telegram bot accounts: adding one (the token is checked with `getMe` first), listing,
//! changing and removing them, and loading their tokens for the pollers.
//!
//! The token is stored only inside [`AccountRecord::secret`], sealed with the account's own data
//! key ([`crate::store::new_account::create_in`]); what [`AccountSummary`] shows is the bot's username and
//! ID from `getMe`, never the token. What is not secret goes in [`AccountRecord::options`] as
//! [`BotOptions`] JSON.
//!
//! Removing an account keeps a tombstone: the record stays (its messages are still sealed with
//! its key), the token is erased and the account disappears from every listing. Releasing it
//! ([`crate::ingest::release`], `lanbox account remove ID --release`) then deletes what only it
//! received and destroys its key.

use serde::{Deserialize, Serialize};

use super::client::{self, ApiError, BadToken, BotClient, Token};
use crate::store::new_account::{NewAccount, secret_aad};
use crate::store::records::AccountRecord;
use crate::store::{Store, StoreError, WriteCtx};

/// [`AccountRecord::channel`] of Telegram bots.
pub const CHANNEL: &str = "telegram";

/// How the bot receives updates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Polling,
    Webhook,
}

/// The non-secret part of a bot account, stored as JSON in [`AccountRecord::options`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BotOptions {
    pub api_base: String,
    pub bot_id: i64,
    pub bot_username: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Where Telegram delivers updates in [`Mode::Webhook`] (kept when switching back to
    /// polling, so the secret's epoch keeps counting up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookOptions>,
    /// Set when the account was removed (a tombstone; see the module documentation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<i64>,
}

/// A new bot account, as the operator gives it.
#[derive(Debug, Clone)]
pub struct AddBot {
    pub token: Token,
    /// Defaults to the bot's username.
    pub name: Option<String>,
    pub rented: bool,
    pub daily_limit: Option<u32>,
    /// Defaults to [`client::DEFAULT_API_BASE`].
    pub api_base: Option<String>,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChanges {
    pub name: Option<String>,
    pub rented: Option<bool>,
    /// `Some(None)` removes the limit.
    pub daily_limit: Option<Option<u32>>,
}

/// What may be shown of an account: never the token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountSummary {
    pub id: u64,
    pub name: String,
    pub rented: bool,
    pub daily_limit: Option<u32>,
    pub bot_id: i64,
    pub bot_username: Option<String>,
    pub api_base: String,
    pub mode: Mode,
    /// The URL Telegram delivers to, in webhook mode.
    pub webhook_url: Option<String>,
    pub created_at: i64,
}

/// A bot account with its token opened, for the pollers and the outbox.
#[derive(Debug, Clone)]
pub struct Bot {
    pub id: u64,
    pub options: BotOptions,
    pub token: Token,
}

impl Bot {
    pub fn client(&self, http: reqwest::Client) -> BotClient {
        BotClient::new(http, &self.options.api_base, self.token.clone())
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    #[error(transparent)]
    BadToken(#[from] BadToken),
    #[error("--api-base must be an http:// or https:// URL without query or credentials")]
    BadApiBase,
    #[error("checking the token with getMe: {0}")]
    Api(#[from] ApiError),
    #[error("the webhook base must be an https:// URL without query or credentials")]
    BadWebhookBase,
    #[error("getMe did not describe a bot; is --api-base a Bot API server?")]
    NotABot,
    #[error("bot {bot_id} is already account {account}")]
    AlreadyAdded { bot_id: i64, account: u64 },
    #[error("no Telegram account {0}")]
    NotFound(u64),
    #[error("account {0} has corrupt options: {1}")]
    BadOptions(u64, String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Checks the token with `getMe`, then stores the account with its token sealed.
pub async fn add(store: &Store, http: reqwest::Client, spec: AddBot) -> Result<AccountSummary, AccountError> {
    let api_base = normalise_api_base(spec.api_base.as_deref().unwrap_or(client::DEFAULT_API_BASE))?;
    let me = BotClient::new(http, &api_base, spec.token.clone())
        .get_me()
        .await?;
    if !me.is_bot || me.id != spec.token.bot_id() {
        return Err(AccountError::NotABot);
    }
    if let Some(existing) = list(store)
        .await?
        .into_iter()
        .find(|a| a.bot_id == me.id && a.api_base == api_base)
    {
        return Err(AccountError::AlreadyAdded {
            bot_id: me.id,
            account: existing.id,
        });
    }
    let options = BotOptions {
        api_base,
        bot_id: me.id,
        bot_username: me.username.clone(),
        mode: Mode::Polling,
        webhook: None,
        removed_at: None,
    };
    let name = spec.name.or(me.username).unwrap_or_else(|| me.first_name.clone());
    let new = NewAccount {
        channel: CHANNEL.into(),
        name,
        rented: spec.rented,
        daily_limit: spec.daily_limit,
        secret: Some(spec.token.expose().as_bytes().to_vec()),
        options: serde_json::to_string(&options).expect("options serialise"),
    };
    let rec = crate::store::new_account::create(store, new).await?;
    summary(&rec)
}

/// Every Telegram account that was not removed, by ID.
pub async fn list(store: &Store) -> Result<Vec<AccountSummary>, AccountError> {
    let records = store.read(|r| r.accounts()).await?;
    let mut out = Vec::new();
    for rec in records.iter().filter(|r| r.channel == CHANNEL) {
        // One damaged record must not take every other account down with it.
        match options(rec) {
            Ok(o) if o.removed_at.is_some() => {}
            Ok(_) => out.push(summary(rec)?),
            Err(e) => tracing::error!(account = rec.id, error = %e, "account skipped"),
        }
    }
    Ok(out)
}

pub async fn update(store: &Store, id: u64, changes: AccountChanges) -> Result<AccountSummary, AccountError> {
    let rec = store
        .write(1, move |ctx| {
            let Some(mut rec) = live_account(ctx, id)? else {
                return Ok(None);
            };
            if let Some(name) = &changes.name {
                rec.name = name.clone();
            }
            if let Some(rented) = changes.rented {
                rec.rented = rented;
            }
            if let Some(limit) = changes.daily_limit {
                rec.daily_limit = limit;
            }
            ctx.put_account(rec.clone())?;
            Ok(Some(rec))
        })
        .await?
        .ok_or(AccountError::NotFound(id))?;
    summary(&rec)
}

/// Erases the token and hides the account (see the module documentation for what stays).
pub async fn remove(store: &Store, id: u64) -> Result<(), AccountError> {
    let removed = store
        .write(1, move |ctx| {
            let Some(mut rec) = live_account(ctx, id)? else {
                return Ok(false);
            };
            let mut opts = parse_options(&rec.options).unwrap_or_else(|_| BotOptions {
                api_base: String::new(),
                bot_id: 0,
                bot_username: None,
                mode: Mode::Polling,
                webhook: None,
                removed_at: None,
            });
            opts.removed_at = Some(ctx.now);
            rec.options = serde_json::to_string(&opts).expect("options serialise");
            rec.secret = None;
            ctx.put_account(rec)?;
            Ok(true)
        })
        .await?;
    if removed {
        Ok(())
    } else {
        Err(AccountError::NotFound(id))
    }
}

/// Every live bot with its token, for starting the pollers.
pub async fn load_bots(store: &Store) -> Result<Vec<Bot>, AccountError> {
    let ids: Vec<u64> = list(store).await?.iter().map(|a| a.id).collect();
    let mut bots = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(bot) = load_bot(store, id).await? {
            bots.push(bot);
        }
    }
    Ok(bots)
}

/// One live bot with its token; `None` when it was removed or has no token.
///
/// Runs as a write job that changes nothing: the data keys are reachable from a write job's
/// context only, and a read of one record is cheap next to a poll.
pub async fn load_bot(store: &Store, id: u64) -> Result<Option<Bot>, AccountError> {
    let opened = store
        .write(1, move |ctx| {
            let Some(rec) = live_account(ctx, id)? else {
                return Ok(None);
            };
            let Some(secret) = &rec.secret else {
                return Ok(None);
            };
            let plain = ctx.sealer(id)?.open(secret, &secret_aad(id))?;
            Ok(Some((rec.options.clone(), plain)))
        })
        .await?;
    let Some((options, plain)) = opened else {
        return Ok(None);
    };
    let options = parse_options(&options).map_err(|e| AccountError::BadOptions(id, e))?;
    let token = String::from_utf8(plain)
        .ok()
        .and_then(|t| Token::new(t).ok())
        .ok_or_else(|| AccountError::BadOptions(id, "stored token is not a bot token".into()))?;
    Ok(Some(Bot { id, options, token }))
}

/// Inside a write job: the Telegram account `id`, unless it is missing or removed.
pub(super) fn live_account(ctx: &mut WriteCtx<'_>, id: u64) -> Result<Option<AccountRecord>, StoreError> {
    let rec = match ctx.account(id) {
        Ok(rec) => rec.clone(),
        Err(StoreError::UnknownAccount(_)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let removed = parse_options(&rec.options).is_ok_and(|o| o.removed_at.is_some());
    Ok((rec.channel == CHANNEL && !removed).then_some(rec))
}

pub fn parse_options(json: &str) -> Result<BotOptions, String> {
    // serde's message may quote a value; the options hold no secret, but keep the habit.
    serde_json::from_str(json).map_err(|e| format!("invalid JSON at column {}", e.column()))
}

fn options(rec: &AccountRecord) -> Result<BotOptions, AccountError> {
    parse_options(&rec.options).map_err(|e| AccountError::BadOptions(rec.id, e))
}

pub fn summary(rec: &AccountRecord) -> Result<AccountSummary, AccountError> {
    let o = options(rec)?;
    Ok(AccountSummary {
        id: rec.id,
        name: rec.name.clone(),
        rented: rec.rented,
        daily_limit: rec.daily_limit,
        bot_id: o.bot_id,
        bot_username: o.bot_username,
        api_base: o.api_base,
        mode: o.mode,
        webhook_url: match (o.mode, &o.webhook) {
            (Mode::Webhook, Some(w)) => Some(url(&w.base, rec.id)),
            _ => None,
        },
        created_at: rec.created_at,
    })
}

/// A plain-text table of accounts, for the command line.
pub fn table(accounts: &[AccountSummary]) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "NAME".to_owned(),
        "BOT".to_owned(),
        "RENTED".to_owned(),
        "DAILY LIMIT".to_owned(),
        "MODE".to_owned(),
        "API".to_owned(),
    ]];
    for a in accounts {
        rows.push([
            a.id.to_string(),
            a.name.clone(),
            match &a.bot_username {
                Some(u) => format!("@{u} ({})", a.bot_id),
                None => a.bot_id.to_string(),
            },
            if a.rented { "yes" } else { "no" }.to_owned(),
            a.daily_limit.map_or("-".to_owned(), |l| l.to_string()),
            format!("{:?}", a.mode).to_lowercase(),
            a.api_base.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let lines: Vec<String> = rows
        .iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect();
    lines.join("\n")
}

/// Checks an API base URL and drops its trailing slash.
pub fn normalise_api_base(url: &str) -> Result<String, AccountError> {
    plain_url(url, &["http", "https"]).ok_or(AccountError::BadApiBase)
}

/// `url` without its trailing slash, when it parses, has one of `schemes` and a host, and has
/// no query, fragment or credentials.
pub(super) fn plain_url(url: &str, schemes: &[&str]) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let ok = schemes.contains(&parsed.scheme())
        && parsed.host().is_some()
        && parsed.query().is_none()
        && parsed.fragment().is_none()
        && parsed.username().is_empty()
        && parsed.password().is_none();
    ok.then(|| url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_is_checked() {
        assert_eq!(
            normalise_api_base("https://api.telegram.org/").unwrap(),
            "https://api.telegram.org"
        );
        assert_eq!(
            normalise_api_base("http://127.0.0.1:8081").unwrap(),
            "http://127.0.0.1:8081"
        );
        for bad in [
            "ftp://x",
            "api.telegram.org",
            "https://u:p@x",
            "https://x/?a=1",
            "",
        ] {
            assert!(normalise_api_base(bad).is_err(), "{bad}");
        }
    }
}

/// Where the box's webhook endpoints live.
pub const PATH_PREFIX: &str = "/telegram/webhook/";

/// Webhook settings of an account, kept in its [`BotOptions`]; the webhook itself is [`super::webhook`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookOptions {
    /// Public `https://host[:port]` at which Telegram reaches this box.
    pub base: String,
    /// Bumped on every switch to webhook mode; part of the secret.
    pub epoch: u32,
    /// Whether the box's own (self-signed) certificate was uploaded to Telegram.
    pub self_signed: bool,
}

/// The URL Telegram delivers an account's updates to.
pub fn url(base: &str, account: u64) -> String {
    format!("{}{PATH_PREFIX}{account}", base.trim_end_matches('/'))
}
