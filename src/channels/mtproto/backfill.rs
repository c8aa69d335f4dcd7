//! History backfill: on connect, each dialog's recent history is fetched into the inbox, newest
//! first, as far back as the account's [`BackfillOptions`] say (none, N days, everything).
//!
//! It runs as its own task beside the update stream, on the connector's client (grammers'
//! `Client` is a cheap handle; both share one connection), and never holds live messages back:
//! its pages go through the ingest pipeline as batches like any other, which the store's
//! writer interleaves with the live ones, and dedup makes a message that also arrives live (or
//! twice, after a crash) harmless.
//!
//! 1. `messages.getDialogs`, paged (100 a call), lists the dialogs; one whose newest message is
//!    older than the limit needs no call.
//! 2. `messages.getHistory` fetches 100 messages a call, newest first (`offset_id`: below the
//!    oldest fetched so far), one page of each unfinished dialog in turn (round-robin), so
//!    every chat gets its latest messages before any gets its oldest.
//! 3. Each page commits with the dialog's cursor ([`Cursor`]: the oldest message ID reached,
//!    how far back it is complete) and the account's progress ([`Progress`]), in the
//!    **same transaction** ([`Pipeline::submit_with`]): after a restart the backfill continues
//!    from the cursor, not from the newest message again.
//!
//! Pacing: every call waits [`BackfillOptions::pace_ms`] after the previous one (1 s by
//! default, so at most 100 messages a second), well under the rate at which Telegram starts
//! answering `FLOOD_WAIT`. A `FLOOD_WAIT_n` that reaches the backfill (grammers sleeps through
//! the first short one itself) is honoured: the progress says `paused` until then, the task
//! sleeps `n` s and resumes with the same call. Ordinary paced calls are used, not a takeout
//! session. Any other failure waits (doubling, up to 5 minutes) and starts the pass again from
//! the cursors; a dialog Telegram refuses (left, banned: a 400 or 403) is marked done.
//!
//! Message mapping is the live path's ([`super::map`]): each fetched message is mapped as the
//! `updateNewMessage` (or `updateNewChannelMessage`) it would have been; what that does not
//! store yet (media, service messages) is skipped, not counted as rejected a second time. Logs
//! carry counts and the account, never text.

use std::collections::HashMap;
use std::time::Duration;

use grammers_client::peer::{Peer, User};
use grammers_client::{Client, InvocationError};
use grammers_session::types::PeerId;
use grammers_tl_types as tl;
use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::map;
use super::message_chat::{self, Row};
use crate::ingest::{Batch, Change, Pipeline};
use crate::store::codec::{Rec, Record, Stored};
use crate::store::{Reader, StoreError, WriteCtx};

/// `(account, chat ID) -> Cursor` (the model's chat ID: a user's ID, `-id` of a basic group,
/// `-100…id` of a supergroup or channel).
pub const ACCOUNT_DIALOG_BACKFILL: TableDefinition<(u64, i64), Rec<Cursor>> =
    TableDefinition::new("mtproto_account_dialog_backfill");

/// `account -> Progress`.
pub const ACCOUNT_BACKFILL: TableDefinition<u64, Rec<Progress>> =
    TableDefinition::new("mtproto_account_backfill");

/// How far back history is fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum BackfillLimit {
    /// No history: only what arrives from now on.
    None,
    /// Messages of the last `days` days.
    Days { days: u32 },
    /// Every message of every dialog.
    All,
}

impl Default for BackfillLimit {
    fn default() -> BackfillLimit {
        BackfillLimit::Days { days: 30 }
    }
}

/// The account's backfill settings, kept in its options (`UserOptions`; changed with
/// `accounts::set_backfill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillOptions {
    #[serde(default)]
    pub limit: BackfillLimit,
    /// Milliseconds between two calls (0: no pacing; for tests and measurements).
    #[serde(default = "default_pace")]
    pub pace_ms: u32,
}

fn default_pace() -> u32 {
    DEFAULT_PACE_MS
}

/// One call a second by default.
pub const DEFAULT_PACE_MS: u32 = 1000;

impl Default for BackfillOptions {
    fn default() -> BackfillOptions {
        BackfillOptions {
            limit: BackfillLimit::default(),
            pace_ms: DEFAULT_PACE_MS,
        }
    }
}

impl BackfillLimit {
    /// The oldest date (Unix seconds) fetched, at `now`; `None`: no backfill.
    fn cutoff(self, now: i64) -> Option<i64> {
        match self {
            BackfillLimit::None => None,
            BackfillLimit::Days { days } => Some(now - i64::from(days) * 86_400),
            BackfillLimit::All => Some(i64::MIN),
        }
    }
}

/// Where one dialog's backfill stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The oldest message ID fetched (the next page asks below it); 0: none yet.
    pub oldest_id: i32,
    /// Every message dated at or after this is fetched (`i64::MAX`: nothing yet).
    pub covered_since: i64,
    /// The dialog's first message was reached.
    pub complete: bool,
    /// Messages fetched in this dialog.
    pub fetched: u64,
}

impl Record for Cursor {
    const NAME: &'static str = "backfill cursor";
    const VERSION: u8 = 1;
}

impl Default for Cursor {
    fn default() -> Cursor {
        Cursor {
            oldest_id: 0,
            covered_since: i64::MAX,
            complete: false,
            fetched: 0,
        }
    }
}

impl Cursor {
    /// Nothing is left to fetch back to `cutoff`.
    pub fn done(&self, cutoff: i64) -> bool {
        self.complete || self.covered_since <= cutoff
    }
}

/// What the backfill is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    /// Listing the dialogs.
    Listing,
    Running,
    /// Waiting out a `FLOOD_WAIT` until [`Progress::flood_until`].
    Paused,
    Done,
    /// The account's limit is "none".
    Off,
}

/// An account's backfill progress, as Settings shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub state: BackfillState,
    pub dialogs_done: u32,
    pub dialogs_total: u32,
    /// Messages fetched (since the account was added).
    pub messages: u64,
    /// When a `FLOOD_WAIT` ends (Unix seconds), while paused.
    pub flood_until: Option<i64>,
}

impl Record for Progress {
    const NAME: &'static str = "backfill progress";
    const VERSION: u8 = 1;
}

/// The account's backfill progress, if a backfill ever started.
pub fn progress(r: &Reader, account: u64) -> Result<Option<Progress>, StoreError> {
    let t = match r.txn().open_table(ACCOUNT_BACKFILL) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    t.get(account)?.map(|v| v.value().get()).transpose()
}

/// Every dialog cursor of `account`, by chat ID.
pub fn cursors(r: &Reader, account: u64) -> Result<HashMap<i64, Cursor>, StoreError> {
    let t = match r.txn().open_table(ACCOUNT_DIALOG_BACKFILL) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = HashMap::new();
    for row in t.range((account, i64::MIN)..=(account, i64::MAX))? {
        let (k, v) = row?;
        out.insert(k.value().1, v.value().get()?);
    }
    Ok(out)
}

/// Inside a write job: drops `account`'s cursors and progress (logout, release).
pub fn forget(ctx: &mut WriteCtx<'_>, account: u64) -> Result<(), StoreError> {
    ctx.txn()
        .open_table(ACCOUNT_DIALOG_BACKFILL)?
        .retain_in((account, i64::MIN)..=(account, i64::MAX), |_, _| false)?;
    ctx.txn().open_table(ACCOUNT_BACKFILL)?.remove(account)?;
    Ok(())
}

fn put_progress(ctx: &mut WriteCtx<'_>, account: u64, p: &Progress) -> Result<(), StoreError> {
    ctx.txn()
        .open_table(ACCOUNT_BACKFILL)?
        .insert(account, Stored::new(p)?)?;
    Ok(())
}

fn get_progress(ctx: &mut WriteCtx<'_>, account: u64) -> Result<Option<Progress>, StoreError> {
    let t = ctx.txn().open_table(ACCOUNT_BACKFILL)?;
    t.get(account)?.map(|v| v.value().get()).transpose()
}

/// One dialog to backfill.
#[derive(Debug, Clone)]
struct Dialog {
    /// The model's chat ID (the cursor's key).
    chat: i64,
    input: tl::enums::InputPeer,
    channel: bool,
    /// Date of its newest message.
    top_date: i64,
}

#[derive(Debug, thiserror::Error)]
enum BackfillError {
    #[error("Telegram: {0}")]
    Telegram(#[from] InvocationError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// One account's backfill task.
pub struct Backfill {
    pub account: u64,
    pub pipeline: Pipeline,
    pub client: Client,
    /// The account's own Telegram user ID.
    pub me: i64,
    pub options: BackfillOptions,
}

/// Most dialogs or messages per call (Telegram's maximum).
const PAGE: i32 = 100;
/// Longest wait after a failure.
const MAX_RETRY: Duration = Duration::from_secs(300);

impl Backfill {
    /// Runs until every dialog is done (or the task is aborted with its connection).
    pub async fn run(self) {
        let account = self.account;
        let mut pacer = Pacer {
            pace: Duration::from_millis(u64::from(self.options.pace_ms)),
            next: Instant::now(),
        };
        let mut failures = 0u32;
        loop {
            match self.pass(&mut pacer).await {
                Ok(()) => return,
                Err(BackfillError::Store(StoreError::WriterGone)) => return,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let delay = Duration::from_secs(5)
                        .saturating_mul(1 << failures.min(6))
                        .min(MAX_RETRY);
                    tracing::warn!(account, failures, ?delay, error = %e, "history backfill failed; retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Lists the dialogs, then fetches pages until every dialog is done.
    async fn pass(&self, pacer: &mut Pacer) -> Result<(), BackfillError> {
        let account = self.account;
        let store = self.pipeline.store().clone();
        let now = unix_now();
        let Some(cutoff) = self.options.limit.cutoff(now) else {
            let messages = store
                .read(move |r| progress(r, account))
                .await?
                .map_or(0, |p| p.messages);
            self.set_state(BackfillState::Off, None, Some((0, 0)), messages)
                .await?;
            return Ok(());
        };
        let mut cursors = store.read(move |r| cursors(r, account)).await?;
        let previous = store.read(move |r| progress(r, account)).await?;
        let messages = previous.map_or(0, |p| p.messages);
        self.set_state(
            BackfillState::Listing,
            None,
            previous.map(|p| (p.dialogs_done, p.dialogs_total)),
            messages,
        )
        .await?;
        let dialogs = self.list(pacer).await?;
        let total = dialogs.len() as u32;
        let mut pending: Vec<Dialog> = dialogs
            .into_iter()
            .filter(|d| d.top_date >= cutoff && !cursors.get(&d.chat).is_some_and(|c| c.done(cutoff)))
            .collect();
        let done = total - pending.len() as u32;
        tracing::info!(
            account,
            dialogs = total,
            to_fetch = pending.len(),
            "history backfill started"
        );
        self.set_state(BackfillState::Running, None, Some((done, total)), messages)
            .await?;
        while !pending.is_empty() {
            let mut next = Vec::with_capacity(pending.len());
            for d in pending {
                let cursor = cursors.get(&d.chat).copied().unwrap_or_default();
                let cursor = self.page(pacer, &d, cursor, cutoff).await?;
                if !cursor.done(cutoff) {
                    next.push(d.clone());
                }
                cursors.insert(d.chat, cursor);
            }
            pending = next;
        }
        let p = store.read(move |r| progress(r, account)).await?;
        self.set_state(
            BackfillState::Done,
            None,
            Some((total, total)),
            p.map_or(messages, |p| p.messages),
        )
        .await?;
        tracing::info!(account, dialogs = total, "history backfill done");
        Ok(())
    }

    /// Writes the progress's state (and counts, when given).
    async fn set_state(
        &self,
        state: BackfillState,
        flood_until: Option<i64>,
        dialogs: Option<(u32, u32)>,
        messages: u64,
    ) -> Result<(), StoreError> {
        let account = self.account;
        self.pipeline
            .store()
            .write(1, move |ctx| {
                let old = get_progress(ctx, account)?;
                let (dialogs_done, dialogs_total) =
                    dialogs.unwrap_or_else(|| old.map_or((0, 0), |p| (p.dialogs_done, p.dialogs_total)));
                put_progress(
                    ctx,
                    account,
                    &Progress {
                        state,
                        dialogs_done,
                        dialogs_total,
                        messages: old.map_or(messages, |p| p.messages.max(messages)),
                        flood_until,
                    },
                )
            })
            .await
    }

    /// Calls `req` at the pace, waiting out a FLOOD_WAIT (with the progress `paused`).
    async fn call<R: tl::RemoteCall>(&self, pacer: &mut Pacer, req: &R) -> Result<R::Return, BackfillError> {
        loop {
            tokio::time::sleep_until(pacer.next).await;
            let r = self.client.invoke(req).await;
            pacer.next = Instant::now() + pacer.pace;
            match r {
                Err(InvocationError::Rpc(e)) if e.code == 420 => {
                    let secs = e.value.unwrap_or(1).max(1);
                    tracing::warn!(
                        account = self.account,
                        seconds = secs,
                        "history backfill paused: FLOOD_WAIT"
                    );
                    self.set_state(BackfillState::Paused, Some(unix_now() + i64::from(secs)), None, 0)
                        .await?;
                    tokio::time::sleep(Duration::from_secs(u64::from(secs))).await;
                    self.set_state(BackfillState::Running, None, None, 0).await?;
                }
                other => return Ok(other?),
            }
        }
    }

    /// Every dialog of the account (`messages.getDialogs`, paged), most recent first.
    async fn list(&self, pacer: &mut Pacer) -> Result<Vec<Dialog>, BackfillError> {
        let mut out: Vec<Dialog> = Vec::new();
        let mut req = tl::functions::messages::GetDialogs {
            exclude_pinned: false,
            folder_id: None,
            offset_date: 0,
            offset_id: 0,
            offset_peer: tl::enums::InputPeer::Empty,
            limit: PAGE,
            hash: 0,
        };
        loop {
            use tl::enums::messages::Dialogs as D;
            let (dialogs, messages, chats, users, count) = match self.call(pacer, &req).await? {
                D::Dialogs(d) => (d.dialogs, d.messages, d.chats, d.users, None),
                D::Slice(d) => (d.dialogs, d.messages, d.chats, d.users, Some(d.count)),
                D::NotModified(_) => break,
            };
            let got = dialogs.len();
            let users: HashMap<i64, i64> = users
                .iter()
                .filter_map(|u| match u {
                    tl::enums::User::User(u) => Some((u.id, u.access_hash.unwrap_or(0))),
                    tl::enums::User::Empty(_) => None,
                })
                .collect();
            let channels: HashMap<i64, i64> = chats
                .iter()
                .filter_map(|c| match c {
                    tl::enums::Chat::Channel(c) => Some((c.id, c.access_hash.unwrap_or(0))),
                    _ => None,
                })
                .collect();
            let mut last = None;
            let known = out.len();
            for d in dialogs {
                let tl::enums::Dialog::Dialog(d) = d else {
                    continue;
                };
                let top = messages.iter().find_map(|m| match m {
                    tl::enums::Message::Message(m) if m.id == d.top_message && m.peer_id == d.peer => {
                        Some((m.id, m.date))
                    }
                    tl::enums::Message::Service(m) if m.id == d.top_message && m.peer_id == d.peer => {
                        Some((m.id, m.date))
                    }
                    _ => None,
                });
                let (id, input, channel) = match d.peer {
                    tl::enums::Peer::User(p) if p.user_id == self.me => (
                        PeerId::user_unchecked(p.user_id),
                        tl::enums::InputPeer::PeerSelf,
                        false,
                    ),
                    tl::enums::Peer::User(p) => (
                        PeerId::user_unchecked(p.user_id),
                        tl::types::InputPeerUser {
                            user_id: p.user_id,
                            access_hash: users.get(&p.user_id).copied().unwrap_or(0),
                        }
                        .into(),
                        false,
                    ),
                    tl::enums::Peer::Chat(p) => (
                        PeerId::chat_unchecked(p.chat_id),
                        tl::types::InputPeerChat { chat_id: p.chat_id }.into(),
                        false,
                    ),
                    tl::enums::Peer::Channel(p) => (
                        PeerId::channel_unchecked(p.channel_id),
                        tl::types::InputPeerChannel {
                            channel_id: p.channel_id,
                            access_hash: channels.get(&p.channel_id).copied().unwrap_or(0),
                        }
                        .into(),
                        true,
                    ),
                };
                let (top_id, top_date) = top.unwrap_or((d.top_message, 0));
                let dialog = Dialog {
                    chat: id.bot_api_dialog_id_unchecked(),
                    input,
                    channel,
                    // A top message the answer did not include: assume it recent.
                    top_date: if top.is_some() {
                        i64::from(top_date)
                    } else {
                        i64::MAX
                    },
                };
                last = Some((top_id, top_date, dialog.input.clone()));
                if !out.iter().any(|o| o.chat == dialog.chat) {
                    out.push(dialog);
                }
            }
            // A page that adds no dialog ends the listing too, whatever `count` says.
            let finished = match count {
                None => true,
                Some(count) => {
                    got == 0 || out.len() == known || out.len() >= usize::try_from(count).unwrap_or(0)
                }
            };
            match last {
                Some((id, date, peer)) if !finished => {
                    req.exclude_pinned = true;
                    req.offset_id = id;
                    req.offset_date = date;
                    req.offset_peer = peer;
                }
                _ => break,
            }
        }
        Ok(out)
    }

    /// Fetches and commits one page of `d` below `cursor`; returns the new cursor.
    async fn page(
        &self,
        pacer: &mut Pacer,
        d: &Dialog,
        cursor: Cursor,
        cutoff: i64,
    ) -> Result<Cursor, BackfillError> {
        let account = self.account;
        let req = tl::functions::messages::GetHistory {
            peer: d.input.clone(),
            offset_id: cursor.oldest_id,
            offset_date: 0,
            add_offset: 0,
            limit: PAGE,
            max_id: 0,
            min_id: 0,
            hash: 0,
        };
        use tl::enums::messages::Messages as M;
        let (messages, users, chats) = match self.call(pacer, &req).await {
            Ok(M::Messages(m)) => (m.messages, m.users, m.chats),
            Ok(M::Slice(m)) => (m.messages, m.users, m.chats),
            Ok(M::ChannelMessages(m)) => (m.messages, m.users, m.chats),
            Ok(M::NotModified(_)) => (Vec::new(), Vec::new(), Vec::new()),
            // A dialog Telegram will not show (left, banned, gone): nothing to fetch.
            Err(BackfillError::Telegram(InvocationError::Rpc(e))) if e.code == 400 || e.code == 403 => {
                tracing::info!(account, code = e.code, error = %e.name, "history backfill skips a dialog Telegram refuses");
                let next = Cursor {
                    complete: true,
                    ..cursor
                };
                self.commit(d, Vec::new(), Vec::new(), next, cursor, cutoff)
                    .await?;
                return Ok(next);
            }
            Err(e) => return Err(e),
        };
        let got = messages.len();
        let peers: HashMap<PeerId, Peer> = users
            .into_iter()
            .map(|u| Peer::User(User::from_raw(&self.client, u)))
            .chain(chats.into_iter().map(|c| Peer::from_raw(&self.client, c)))
            .map(|p| (p.id(), p))
            .collect();
        let mut next = cursor;
        let mut changes = Vec::new();
        let mut rows = Vec::new();
        let mut reached = false;
        let mut oldest_kept: Option<i64> = None;
        for message in messages {
            let (id, date) = match &message {
                tl::enums::Message::Message(m) => (m.id, m.date),
                tl::enums::Message::Service(m) => (m.id, m.date),
                tl::enums::Message::Empty(m) => (m.id, 0),
            };
            if i64::from(date) < cutoff {
                // Not fetched: a longer limit later continues from the last kept message, so
                // the cursor does not move past this one.
                reached = true;
                continue;
            }
            if next.oldest_id == 0 || id < next.oldest_id {
                next.oldest_id = id;
            }
            if matches!(message, tl::enums::Message::Empty(_)) {
                continue;
            }
            oldest_kept = Some(oldest_kept.map_or(i64::from(date), |o| o.min(i64::from(date))));
            let update = if d.channel {
                tl::enums::Update::NewChannelMessage(tl::types::UpdateNewChannelMessage {
                    message,
                    pts: 0,
                    pts_count: 0,
                })
            } else {
                tl::enums::Update::NewMessage(tl::types::UpdateNewMessage {
                    message,
                    pts: 0,
                    pts_count: 0,
                })
            };
            for c in map::map_update(account, &update, &peers, self.me) {
                // A kind lanbox cannot store is counted as rejected when it arrives live;
                // history does not count it again.
                if matches!(c, Change::Rejected { .. }) {
                    continue;
                }
                rows.extend(message_chat::row_for(&c));
                changes.push(c);
            }
            next.fetched += 1;
        }
        if reached {
            next.covered_since = cutoff;
        } else if got < PAGE as usize {
            next.complete = true;
        } else if let Some(o) = oldest_kept {
            next.covered_since = next.covered_since.min(o);
        }
        self.commit(d, changes, rows, next, cursor, cutoff).await?;
        Ok(next)
    }

    /// Commits a page's changes with the dialog's new cursor and the account's progress, in
    /// one transaction.
    async fn commit(
        &self,
        d: &Dialog,
        changes: Vec<Change>,
        rows: Vec<Row>,
        next: Cursor,
        before: Cursor,
        cutoff: i64,
    ) -> Result<(), StoreError> {
        let account = self.account;
        let chat = d.chat;
        let fetched = next.fetched - before.fetched;
        let finished = next.done(cutoff) && !before.done(cutoff);
        let batch = Batch {
            account,
            changes,
            position: None,
        };
        self.pipeline
            .submit_with(batch, move |ctx| {
                message_chat::apply(ctx, account, &rows)?;
                ctx.txn()
                    .open_table(ACCOUNT_DIALOG_BACKFILL)?
                    .insert((account, chat), Stored::new(&next)?)?;
                let mut p = get_progress(ctx, account)?.unwrap_or(Progress {
                    state: BackfillState::Running,
                    dialogs_done: 0,
                    dialogs_total: 0,
                    messages: 0,
                    flood_until: None,
                });
                p.messages += fetched;
                if finished {
                    p.dialogs_done = p.dialogs_done.saturating_add(1);
                }
                put_progress(ctx, account, &p)
            })
            .await?;
        Ok(())
    }
}

/// When the next call may go.
struct Pacer {
    pace: Duration,
    next: Instant,
}

/// The clock, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_done_once_complete_or_past_the_cutoff() {
        let mut c = Cursor::default();
        assert!(!c.done(0));
        assert!(!c.done(i64::MIN), "nothing fetched yet");
        c.covered_since = 100;
        assert!(c.done(100) && c.done(150));
        assert!(!c.done(99), "a longer limit continues it");
        c.complete = true;
        assert!(c.done(i64::MIN));
    }

    #[test]
    fn options_default_to_thirty_days_at_one_call_a_second() {
        let o: BackfillOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(o, BackfillOptions::default());
        assert_eq!(o.limit, BackfillLimit::Days { days: 30 });
        assert_eq!(o.pace_ms, 1000);
        let all: BackfillLimit = serde_json::from_str(r#"{"mode":"all"}"#).unwrap();
        assert_eq!(all, BackfillLimit::All);
        assert_eq!(BackfillLimit::None.cutoff(1000), None);
        assert_eq!(BackfillLimit::Days { days: 1 }.cutoff(100_000), Some(13_600));
    }
}
