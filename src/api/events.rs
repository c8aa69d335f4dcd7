//! `GET /api/v1/events`: the event log after a sequence number, as the caller sees it, for
//! clients that poll instead of holding a WebSocket (same events, same shapes, same resume
//! rule: `410 resync_required` when the log no longer reaches back).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ApiError;
use super::extract::{Json, Query};
use crate::auth::Caller;
use crate::live::protocol::{FilterSpec, Subscription, View};
use crate::live::replay::{self, Reach};
use crate::service::Service;

#[derive(Deserialize)]
pub struct EventsQuery {
    after: u64,
    limit: Option<u32>,
    /// Comma-separated account IDs.
    account: Option<String>,
    /// Comma-separated chat ids.
    chat: Option<String>,
}

#[derive(Serialize)]
pub struct EventsPage {
    events: Vec<Value>,
    /// Pass as `after` next time.
    last_seq: u64,
    /// More events follow right away.
    more: bool,
}

pub async fn events(
    State(s): State<Service>,
    caller: Caller,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    // Checked before anything else, so an out-of-range limit is a 400 whatever `after` says.
    let limit = match q.limit {
        None => 100,
        Some(l @ 1..=1000) => l as usize,
        Some(_) => return Err(ApiError::BadRequest("limit is 1 to 1000".into())),
    };
    let split = |v: Option<String>| v.map(|v| v.split(',').map(|p| p.trim().to_string()).collect::<Vec<_>>());
    let accounts = split(q.account)
        .map(|a| a.iter().map(|p| p.parse()).collect::<Result<Vec<u64>, _>>())
        .transpose()
        .map_err(|_| ApiError::BadRequest("account is a comma-separated list of account IDs".into()))?;
    let sub = Subscription::parse(FilterSpec {
        accounts,
        chats: split(q.chat),
    })
    .map_err(ApiError::BadRequest)?;
    let view = View {
        grants: caller.grants,
        sub,
    };
    let after = q.after;
    let page = s
        .store
        .read(move |r| match replay::reach(r, after)? {
            Reach::Resync { .. } => Ok(None),
            Reach::Complete => Ok(Some(replay::page(r, &view, after, limit)?)),
        })
        .await?
        .ok_or(ApiError::ResyncRequired)?;
    Ok(Json(EventsPage {
        more: page.read == limit,
        events: page.events,
        last_seq: page.last,
    }))
}
