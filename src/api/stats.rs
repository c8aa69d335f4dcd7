//! Inbox statistics over what the caller may see: totals, unread, by account and by chat kind,
//! and the outbox backlog. Admins also get `system`: storage use of the box and the attachment
//! queues (S3 sync backlog and the like), box-wide figures agents never see.
//!
//! Team reports ([`crate::view::reports`]): `conversations` (by status, account and channel,
//! and each assignee's workload) always; with `from` (and `to`, default now), `period`: first
//! response and resolution times (median and p90) and messages in and out per day.
//!
//! Counts come from the chat records (the store keeps per-chat message and unread counters), so
//! this is one pass over the chats and never opens a message. A chat that several of the
//! caller's accounts have counts once in the totals and once under each account.

use axum::extract::State;
use serde::Serialize;

use super::ApiError;
use super::extract::{Json, Query};
use crate::attachments::stats::SystemStats;
use crate::auth::{Caller, Role};
use crate::model::ChatKind;
use crate::service::Service;
use crate::store::ctx::unix_now;
use crate::view::reports::{self, Conversations, Period};
use crate::view::visible;

#[derive(Serialize, Default)]
pub struct Counts {
    chats: u64,
    messages: u64,
    unread: u64,
    /// Chats with at least one unread message.
    unread_chats: u64,
}

impl Counts {
    fn add(&mut self, messages: u32, unread: u32) {
        self.chats += 1;
        self.messages += u64::from(messages);
        self.unread += u64::from(unread);
        self.unread_chats += u64::from(unread > 0);
    }
}

#[derive(Serialize)]
pub struct AccountCounts {
    account: u64,
    name: String,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
pub struct KindCounts {
    kind: &'static str,
    #[serde(flatten)]
    counts: Counts,
}

#[derive(Serialize)]
pub struct Outbox {
    /// Whether sending works (there is an outbox; accounts without a bot still cannot send).
    available: bool,
    /// Messages waiting to be sent (queued or in flight) through the caller's accounts.
    backlog: u64,
    /// Sends given up on, through the caller's accounts, ever.
    failed: u64,
}

#[derive(Serialize)]
pub struct Stats {
    totals: Counts,
    by_account: Vec<AccountCounts>,
    by_kind: Vec<KindCounts>,
    outbox: Outbox,
    /// Sequence number of the newest event (where a live client would start).
    last_seq: u64,
    /// Conversations by status, by account and by channel, and the assignees' workload.
    conversations: Conversations,
    /// With `from`: response and resolution times and messages per day in the period.
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<Period>,
    /// Admins only: storage use and attachment queues of the whole box.
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<SystemStats>,
}

const KINDS: [ChatKind; 4] = [
    ChatKind::Private,
    ChatKind::Group,
    ChatKind::Supergroup,
    ChatKind::Channel,
];

#[derive(serde::Deserialize)]
pub struct StatsQuery {
    /// Start of the report period (unix seconds).
    from: Option<i64>,
    /// End of the period (unix seconds, exclusive); now when absent.
    to: Option<i64>,
}

/// Longest report period: a year and a day.
const MAX_PERIOD: i64 = 366 * 86_400;

pub async fn stats(
    State(s): State<Service>,
    caller: Caller,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Stats>, ApiError> {
    let now = unix_now();
    let period = match (q.from, q.to) {
        (None, None) => None,
        (None, Some(_)) => return Err(ApiError::BadRequest("`to` goes with `from`".into())),
        (Some(from), to) => {
            let to = to.unwrap_or(now);
            if from >= to || to - from > MAX_PERIOD {
                return Err(ApiError::invalid(
                    "bad_period",
                    "the period is `from` before `to`, at most 366 days",
                ));
            }
            Some((from, to))
        }
    };
    let system = match caller.role {
        Role::Admin => Some(s.system_stats.system(&s.attachments).await?),
        Role::Agent => None,
    };
    let mut stats = s
        .store
        .read(move |r| {
            let g = &caller.grants;
            let mut by_account: Vec<AccountCounts> = visible::accounts(r, g)?
                .into_iter()
                .map(|a| AccountCounts {
                    account: a.id,
                    name: a.name,
                    counts: Counts::default(),
                })
                .collect();
            let mut by_kind: Vec<KindCounts> = KINDS
                .iter()
                .map(|k| KindCounts {
                    kind: k.as_str(),
                    counts: Counts::default(),
                })
                .collect();
            let ids: Vec<u64> = by_account.iter().map(|a| a.account).collect();
            let (backlog, failed) = crate::outbox::jobs::read_counts(r.txn(), &ids)?;
            let mut totals = Counts::default();
            for (_, rec) in visible::chats(r, g)? {
                totals.add(rec.messages, rec.unread);
                if let Some(k) = by_kind.iter_mut().find(|k| k.kind == rec.kind.as_str()) {
                    k.counts.add(rec.messages, rec.unread);
                }
                for a in by_account
                    .iter_mut()
                    .filter(|a| rec.accounts.contains(&a.account))
                {
                    a.counts.add(rec.messages, rec.unread);
                }
            }
            let conversations = reports::conversations(r, g, now)?;
            let period = period
                .map(|(from, to)| reports::period(r, g, from, to))
                .transpose()?;
            Ok(Stats {
                conversations,
                period,
                totals,
                by_account,
                by_kind,
                outbox: Outbox {
                    available: true,
                    backlog,
                    failed,
                },
                last_seq: r.last_seq()?,
                system: None,
            })
        })
        .await?;
    stats.system = system;
    Ok(Json(stats))
}
