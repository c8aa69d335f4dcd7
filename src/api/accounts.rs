//! The accounts routes: everybody lists the accounts granted to them, with unread counts and
//! the connection status; admins add (the token is checked with `getMe` first), change (label,
//! rented flag, daily limit, polling or webhook mode) and remove or release accounts, and the
//! change takes effect at once: the account's poller (or webhook keeper) and outbox sender are
//! (re)started or stopped.
//!
//! Telegram user accounts (MTProto) list here too (`kind: user`); they are added through the
//! login routes of [`super::account_logins`], and removing one logs it out on Telegram.
//!
//! A token goes in and never comes out: no reply, log line or error carries it.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::admin::Admin;
use super::extract::{Json, Path, Query};
use crate::auth::{Caller, Grants};
use crate::channels::mtproto::backfill::{self, BackfillLimit, BackfillState};
use crate::channels::mtproto::{self, UserOptions};
use crate::channels::telegram::bots::{self, AccountChanges, AddBot, Mode};
use crate::channels::telegram::client::Token;
use crate::service::Service;
use crate::service::lifecycle::{Receive, status_parts, user_status_parts};
use crate::view::visible;

#[derive(Serialize)]
pub struct AccountDto {
    id: u64,
    channel: String,
    /// `bot` (Bot API) or `user` (a person's own account, over MTProto).
    kind: &'static str,
    /// A user account's Telegram user ID.
    user_id: Option<i64>,
    name: String,
    rented: bool,
    daily_limit: Option<u32>,
    unread: u64,
    created_at: i64,
    bot_id: Option<i64>,
    bot_username: Option<String>,
    /// `polling` or `webhook` (bots), `mtproto` (user accounts).
    mode: &'static str,
    webhook_url: Option<String>,
    /// `starting`, `online`, `backing_off`, `stopped` or `not_running`.
    status: &'static str,
    /// Why it is backing off or stopped (never message content, never the token).
    status_detail: Option<String>,
    /// A user account's history backfill: its setting and progress (`null` for bots).
    backfill: Option<BackfillDto>,
}

/// A user account's history backfill, as Settings shows it.
#[derive(Serialize)]
pub struct BackfillDto {
    /// `none`, `days` or `all`.
    limit: &'static str,
    /// With `days`: how many.
    days: Option<u32>,
    pace_ms: u32,
    /// `pending` (not started yet), `listing`, `running`, `paused` (FLOOD_WAIT), `done` or `off`.
    state: &'static str,
    dialogs_done: u32,
    dialogs_total: u32,
    messages: u64,
    /// While paused: when Telegram's FLOOD_WAIT ends (Unix seconds).
    flood_wait_until: Option<i64>,
}

fn backfill_dto(options: &backfill::BackfillOptions, p: Option<backfill::Progress>) -> BackfillDto {
    let (limit, days) = match options.limit {
        BackfillLimit::None => ("none", None),
        BackfillLimit::Days { days } => ("days", Some(days)),
        BackfillLimit::All => ("all", None),
    };
    let now = backfill::unix_now();
    let flood = p.and_then(|p| p.flood_until).filter(|&t| t > now);
    let state = match p.map(|p| p.state) {
        None => "pending",
        Some(BackfillState::Listing) => "listing",
        Some(BackfillState::Running) => "running",
        Some(BackfillState::Paused) if flood.is_some() => "paused",
        Some(BackfillState::Paused) => "running",
        Some(BackfillState::Done) => "done",
        Some(BackfillState::Off) => "off",
    };
    BackfillDto {
        limit,
        days,
        pace_ms: options.pace_ms,
        state,
        dialogs_done: p.map_or(0, |p| p.dialogs_done),
        dialogs_total: p.map_or(0, |p| p.dialogs_total),
        messages: p.map_or(0, |p| p.messages),
        flood_wait_until: flood,
    }
}

pub async fn list(State(s): State<Service>, caller: Caller) -> Result<Json<Vec<AccountDto>>, ApiError> {
    Ok(Json(dtos(&s, caller.grants, Some(caller.user)).await?))
}

/// The accounts `grants` allow, with `user`'s own unread counts (the shared counters when
/// `None`).
async fn dtos(s: &Service, grants: Grants, user: Option<u64>) -> Result<Vec<AccountDto>, ApiError> {
    let records = s
        .store
        .read(move |r| {
            let own = user.map(|u| visible::account_unread(r, &grants, u)).transpose()?;
            visible::accounts(r, &grants)?
                .into_iter()
                .map(|a| {
                    let unread = match &own {
                        Some(m) => m.get(&a.id).copied().unwrap_or(0),
                        None => r.account_unread(a.id)?,
                    };
                    Ok((unread, a))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let mut out = Vec::with_capacity(records.len());
    for (unread, a) in records {
        let is_user = a.channel == mtproto::CHANNEL;
        let user = is_user
            .then(|| serde_json::from_str::<UserOptions>(&a.options).ok())
            .flatten();
        // Accounts of other channels or without bot options still list, plainly.
        let options = (!is_user).then(|| bots::parse_options(&a.options).ok()).flatten();
        if options.as_ref().is_some_and(|o| o.removed_at.is_some())
            || user.as_ref().is_some_and(|o| o.removed_at.is_some())
        {
            continue;
        }
        let bot = (!is_user).then(|| bots::summary(&a).ok()).flatten();
        let backfill = match &user {
            Some(u) => {
                let id = a.id;
                let p = s.store.read(move |r| backfill::progress(r, id)).await?;
                Some(backfill_dto(&u.backfill, p))
            }
            None => None,
        };
        let (status, status_detail) = if is_user {
            user_status_parts(s.users.status(a.id).as_ref())
        } else {
            status_parts(s.pollers.status(a.id).as_ref())
        };
        out.push(AccountDto {
            id: a.id,
            channel: a.channel,
            kind: if is_user { "user" } else { "bot" },
            user_id: user.as_ref().map(|u| u.user_id),
            name: a.name,
            rented: a.rented,
            daily_limit: a.daily_limit,
            unread,
            created_at: a.created_at,
            bot_id: bot.as_ref().map(|b| b.bot_id),
            bot_username: bot.as_ref().and_then(|b| b.bot_username.clone()),
            mode: match bot.as_ref().map(|b| b.mode) {
                _ if is_user => "mtproto",
                Some(Mode::Webhook) => "webhook",
                _ => "polling",
            },
            webhook_url: bot.and_then(|b| b.webhook_url),
            status,
            status_detail,
            backfill,
        });
    }
    Ok(out)
}

pub(super) async fn one(s: &Service, id: u64) -> Result<AccountDto, ApiError> {
    dtos(s, Grants::All, None)
        .await?
        .into_iter()
        .find(|a| a.id == id)
        .ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Only `telegram`.
    #[serde(default)]
    channel: Option<String>,
    token: String,
    name: Option<String>,
    #[serde(default)]
    rented: bool,
    daily_limit: Option<u32>,
    api_base: Option<String>,
}

pub async fn create(
    State(s): State<Service>,
    _admin: Admin,
    Json(req): Json<NewAccount>,
) -> Result<(StatusCode, Json<AccountDto>), ApiError> {
    if req.channel.as_deref().is_some_and(|c| c != bots::CHANNEL) {
        return Err(ApiError::invalid("bad_channel", "only `telegram` accounts exist"));
    }
    let spec = AddBot {
        token: Token::new(req.token)?,
        name: req.name,
        rented: req.rented,
        daily_limit: req.daily_limit,
        api_base: req.api_base,
    };
    let added = s.add_bot(spec).await?;
    Ok((StatusCode::CREATED, Json(one(&s, added.id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPatch {
    #[serde(default, deserialize_with = "super::extract::not_null")]
    name: Option<String>,
    #[serde(default, deserialize_with = "super::extract::not_null")]
    rented: Option<bool>,
    /// A number sets the limit; `null` removes it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    daily_limit: Option<Option<u32>>,
    /// `polling` or `webhook` (with `webhook_base`).
    #[serde(default, deserialize_with = "super::extract::not_null")]
    mode: Option<String>,
    /// Public `https://host[:port]` at which Telegram reaches this box.
    #[serde(default, deserialize_with = "super::extract::not_null")]
    webhook_base: Option<String>,
    /// Upload this box's (self-signed) certificate to Telegram with the webhook.
    #[serde(default)]
    webhook_self_signed: bool,
    /// A user account's history backfill: `none`, `days` (with `backfill_days`) or `all`.
    #[serde(default, deserialize_with = "super::extract::not_null")]
    backfill: Option<String>,
    /// Days of history (1 to 3650); alone it means `backfill: days`.
    #[serde(default, deserialize_with = "super::extract::not_null")]
    backfill_days: Option<u32>,
    /// Milliseconds between two backfill calls (0 to 60000).
    #[serde(default, deserialize_with = "super::extract::not_null")]
    backfill_pace_ms: Option<u32>,
}

/// The backfill settings `req` asks for, from `now`; `None` when it changes none.
fn backfill_change(
    req: &AccountPatch,
    now: backfill::BackfillOptions,
) -> Result<Option<backfill::BackfillOptions>, ApiError> {
    if req.backfill.is_none() && req.backfill_days.is_none() && req.backfill_pace_ms.is_none() {
        return Ok(None);
    }
    if req.backfill_days.is_some_and(|d| !(1..=3650).contains(&d)) {
        return Err(ApiError::invalid("bad_backfill", "backfill_days is 1 to 3650"));
    }
    if req.backfill_pace_ms.is_some_and(|p| p > 60_000) {
        return Err(ApiError::invalid(
            "bad_backfill",
            "backfill_pace_ms is 0 to 60000",
        ));
    }
    let days = || match now.limit {
        BackfillLimit::Days { days } => days,
        _ => 30,
    };
    let limit = match (req.backfill.as_deref(), req.backfill_days) {
        (None, None) => now.limit,
        (Some("none"), None) => BackfillLimit::None,
        (Some("all"), None) => BackfillLimit::All,
        (Some("days") | None, d) => BackfillLimit::Days {
            days: d.unwrap_or_else(days),
        },
        _ => {
            return Err(ApiError::invalid(
                "bad_backfill",
                "backfill is `none`, `days` (with backfill_days) or `all`",
            ));
        }
    };
    Ok(Some(backfill::BackfillOptions {
        limit,
        pace_ms: req.backfill_pace_ms.unwrap_or(now.pace_ms),
    }))
}

/// Tells "absent" (outer `None`) from `null` (inner `None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u32>>, D::Error> {
    Option::<u32>::deserialize(d).map(Some)
}

pub async fn update(
    State(s): State<Service>,
    _admin: Admin,
    Path(id): Path<u64>,
    Json(req): Json<AccountPatch>,
) -> Result<Json<AccountDto>, ApiError> {
    if req
        .name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 200)
    {
        return Err(ApiError::invalid("bad_name", "a name is 1 to 200 bytes"));
    }
    let record = s.store.read(move |r| r.account(id)).await?;
    let is_user = record.as_ref().is_some_and(|a| a.channel == mtproto::CHANNEL);
    if is_user {
        // A user account has no receiving mode to switch.
        if req.mode.is_some() || req.webhook_base.is_some() {
            return Err(ApiError::invalid(
                "bad_mode",
                "a user account has no mode: it always receives over MTProto",
            ));
        }
        let current = record
            .and_then(|a| serde_json::from_str::<UserOptions>(&a.options).ok())
            .map(|o| o.backfill)
            .unwrap_or_default();
        let new_backfill = backfill_change(&req, current)?;
        mtproto::accounts::update(&s.store, id, req.name, req.rented, req.daily_limit)
            .await?
            .ok_or(ApiError::NotFound)?;
        if let Some(b) = new_backfill.filter(|b| *b != current) {
            if !mtproto::accounts::set_backfill(&s.store, id, b).await? {
                return Err(ApiError::NotFound);
            }
            // The backfill reads its settings when the connection starts.
            s.start_user(id);
        }
        return Ok(Json(one(&s, id).await?));
    }
    if req.backfill.is_some() || req.backfill_days.is_some() || req.backfill_pace_ms.is_some() {
        return Err(ApiError::invalid(
            "bad_backfill",
            "a bot has no history to backfill: Telegram gives bots none",
        ));
    }
    let changes = AccountChanges {
        name: req.name,
        rented: req.rented,
        daily_limit: req.daily_limit,
    };
    bots::update(&s.store, id, changes).await?;
    let receive = match (req.mode.as_deref(), req.webhook_base) {
        (None, None) => None,
        (Some("webhook"), Some(base)) => Some(Receive::Webhook {
            base,
            self_signed: req.webhook_self_signed,
        }),
        (Some("polling"), None) => Some(Receive::Polling),
        _ => {
            return Err(ApiError::invalid(
                "bad_mode",
                "mode is `polling`, or `webhook` with webhook_base",
            ));
        }
    };
    if let Some(how) = receive {
        s.set_receive(id, how).await?;
    }
    Ok(Json(one(&s, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Also delete what only this account received and destroy its key.
    #[serde(default)]
    release: bool,
}

#[derive(Serialize)]
pub struct Removed {
    id: u64,
    /// A release runs in the background (it may take minutes on a large account).
    release_started: bool,
}

pub async fn remove(
    State(s): State<Service>,
    _admin: Admin,
    Path(id): Path<u64>,
    Query(q): Query<RemoveQuery>,
) -> Result<(StatusCode, Json<Removed>), ApiError> {
    s.remove_account(id, q.release).await?;
    let status = if q.release {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Removed {
            id,
            release_started: q.release,
        }),
    ))
}
