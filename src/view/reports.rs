//! Team reports over the conversations a caller may see: conversations by status, by account
//! and by channel, the workload of each assignee, and over a period the first response time,
//! the resolution time and messages in and out per day.
//!
//! The counts come from the conversation records (one pass over the chats). The period figures
//! read the stored messages' dates and directions (in the clear: nothing is opened) and the
//! activity trail, chat by chat, so their cost grows with the messages kept; they are computed
//! only when a period is asked for.

use std::collections::BTreeMap;

use redb::ReadableTable;
use serde::Serialize;

use super::conversation::{effective, record, user_ref};
use super::dto::SentByDto;
use super::visible;
use crate::auth::Grants;
use crate::model::{Activity, ConversationStatus, Direction};
use crate::store::tables::CHAT_ACTIVITY;
use crate::store::{ChatKey, Reader, StoreError};

/// Conversations by status.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct StatusCounts {
    pub open: u64,
    pub pending: u64,
    pub snoozed: u64,
    pub resolved: u64,
}

impl StatusCounts {
    fn add(&mut self, s: ConversationStatus) {
        match s {
            ConversationStatus::Open => self.open += 1,
            ConversationStatus::Pending => self.pending += 1,
            ConversationStatus::Snoozed => self.snoozed += 1,
            ConversationStatus::Resolved => self.resolved += 1,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AccountStatus {
    pub account: u64,
    pub name: String,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

#[derive(Debug, Serialize)]
pub struct ChannelStatus {
    pub channel: String,
    #[serde(flatten)]
    pub counts: StatusCounts,
}

/// Open and pending conversations of one assignee (`assignee: null`: nobody's).
#[derive(Debug, Serialize)]
pub struct Workload {
    pub assignee: Option<SentByDto>,
    pub open: u64,
    pub pending: u64,
}

#[derive(Debug, Serialize)]
pub struct Conversations {
    pub by_status: StatusCounts,
    pub by_account: Vec<AccountStatus>,
    pub by_channel: Vec<ChannelStatus>,
    /// Most loaded first.
    pub workload: Vec<Workload>,
}

pub fn conversations(r: &Reader, g: &Grants, now: i64) -> Result<Conversations, StoreError> {
    let accounts = visible::accounts(r, g)?;
    let mut by_status = StatusCounts::default();
    let mut by_account: Vec<AccountStatus> = accounts
        .iter()
        .map(|a| AccountStatus {
            account: a.id,
            name: a.name.clone(),
            counts: StatusCounts::default(),
        })
        .collect();
    let mut by_channel: BTreeMap<String, StatusCounts> = BTreeMap::new();
    let mut load: BTreeMap<Option<u64>, (u64, u64)> = BTreeMap::new();
    for (key, rec) in visible::chats(r, g)? {
        let c = record(r, key)?;
        let status = effective(&c, now);
        by_status.add(status);
        for a in by_account
            .iter_mut()
            .filter(|a| rec.accounts.contains(&a.account))
        {
            a.counts.add(status);
        }
        let mut channels: Vec<&str> = accounts
            .iter()
            .filter(|a| rec.accounts.contains(&a.id))
            .map(|a| a.channel.as_str())
            .collect();
        channels.dedup();
        for ch in channels {
            by_channel.entry(ch.to_string()).or_default().add(status);
        }
        let w = load.entry(c.assignee).or_default();
        match status {
            ConversationStatus::Open => w.0 += 1,
            ConversationStatus::Pending => w.1 += 1,
            _ => {}
        }
    }
    let mut workload = Vec::new();
    for (user, (open, pending)) in load {
        if open + pending > 0 {
            workload.push(Workload {
                assignee: user.map(|u| user_ref(r, u)).transpose()?,
                open,
                pending,
            });
        }
    }
    workload.sort_by_key(|w| std::cmp::Reverse(w.open + w.pending));
    Ok(Conversations {
        by_status,
        by_account,
        by_channel: by_channel
            .into_iter()
            .map(|(channel, counts)| ChannelStatus { channel, counts })
            .collect(),
        workload,
    })
}

/// Median and 90th percentile of a set of durations, in seconds.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Durations {
    pub count: u64,
    pub median_s: Option<i64>,
    pub p90_s: Option<i64>,
}

fn durations(mut v: Vec<i64>) -> Durations {
    v.sort_unstable();
    let pick =
        |q: f64| (!v.is_empty()).then(|| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]);
    Durations {
        count: v.len() as u64,
        median_s: pick(0.5),
        p90_s: pick(0.9),
    }
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Day {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub incoming: u64,
    pub outgoing: u64,
}

#[derive(Debug, Serialize)]
pub struct Period {
    pub from: i64,
    pub to: i64,
    /// From a conversation's first incoming message in the period to the first reply after it.
    pub first_response: Durations,
    /// From a conversation's (re)opening to its resolution, for resolutions in the period.
    pub resolution: Durations,
    /// Every day of the period, oldest first.
    pub messages_per_day: Vec<Day>,
}

/// The civil date (UTC) of a unix time.
fn day_of(t: i64) -> String {
    let days = t.div_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The period figures for `from..to` (unix seconds).
pub fn period(r: &Reader, g: &Grants, from: i64, to: i64) -> Result<Period, StoreError> {
    let mut per_day: BTreeMap<i64, (u64, u64)> = BTreeMap::new();
    let mut d = from.div_euclid(86_400);
    while d * 86_400 < to {
        per_day.insert(d, (0, 0));
        d += 1;
    }
    let mut first_response = Vec::new();
    let mut resolution = Vec::new();
    let activity = r.txn().open_table(CHAT_ACTIVITY)?;
    for (key, _) in visible::chats(r, g)? {
        let mut first_in: Option<i64> = None;
        let mut first_any_in: Option<i64> = None;
        let mut answered = false;
        for (_, m) in r.chat_stored(key, i64::MIN, i64::MAX, usize::MAX)? {
            let Some(m) = m.filter(|m| visible::stored(g, m)) else {
                continue;
            };
            if m.direction == Direction::Incoming && first_any_in.is_none_or(|t| m.date < t) {
                first_any_in = Some(m.date);
            }
            if m.date < from || m.date >= to {
                continue;
            }
            let slot = per_day.entry(m.date.div_euclid(86_400)).or_default();
            match m.direction {
                Direction::Incoming => {
                    slot.0 += 1;
                    if first_in.is_none() {
                        first_in = Some(m.date);
                    }
                }
                Direction::Outgoing => {
                    slot.1 += 1;
                    if let Some(t) = first_in
                        && !answered
                        && m.date >= t
                    {
                        first_response.push(m.date - t);
                        answered = true;
                    }
                }
            }
        }
        resolution.extend(resolutions(&activity, key, first_any_in, from, to)?);
    }
    Ok(Period {
        from,
        to,
        first_response: durations(first_response),
        resolution: durations(resolution),
        messages_per_day: per_day
            .into_iter()
            .map(|(d, (incoming, outgoing))| Day {
                day: day_of(d * 86_400),
                incoming,
                outgoing,
            })
            .collect(),
    })
}

/// Resolution times of one chat's resolutions in the period: each from the last opening before
/// it (a reopening, a status set back to open or pending, or else the first incoming message).
fn resolutions(
    activity: &impl ReadableTable<
        (u64, i64, u64),
        crate::store::codec::Rec<crate::store::records::ActivityRecord>,
    >,
    key: ChatKey,
    first_in: Option<i64>,
    from: i64,
    to: i64,
) -> Result<Vec<i64>, StoreError> {
    let mut out = Vec::new();
    let mut opened = first_in;
    for row in activity.range((key.scope, key.chat, 0)..=(key.scope, key.chat, u64::MAX))? {
        let a = row?.1.value().get()?;
        match a.what {
            Activity::Reopened
            | Activity::Status {
                status: ConversationStatus::Open | ConversationStatus::Pending,
                ..
            } if opened.is_none() => opened = Some(a.at),
            Activity::Reopened => opened = Some(a.at),
            Activity::Status {
                status: ConversationStatus::Resolved,
                ..
            } => {
                if let Some(t) = opened.take()
                    && a.at >= from
                    && a.at < to
                {
                    out.push(a.at - t);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(951_782_400), "2000-02-29");
        assert_eq!(day_of(1_796_428_799), "2026-12-04");
        assert_eq!(day_of(-1), "1969-12-31");
    }

    #[test]
    fn median_and_p90() {
        assert_eq!(
            durations(vec![]),
            Durations {
                count: 0,
                median_s: None,
                p90_s: None
            }
        );
        let d = durations((1..=10).rev().collect());
        assert_eq!((d.median_s, d.p90_s, d.count), (Some(5), Some(9), 10));
        assert_eq!(durations(vec![7]).p90_s, Some(7));
    }
}
