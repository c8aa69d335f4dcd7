//! The team's work on conversations: assign, status (open, pending, snoozed, resolved), labels,
//! the activity trail, and the box's labels. REST here; the WebSocket's `assign`,
//! `set_status` and `set_labels` actions call [`change_for`] too, so both check the same
//! things. Every change is a `conversation.*` event on the live feed.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::admin::Admin;
use super::extract::{Json, Path, Query};
use super::inbox::chat_key;
use crate::auth::Caller;
use crate::ingest::TeamChange;
use crate::model::ConversationStatus;
use crate::service::Service;
use crate::store::ChatKey;
use crate::store::ctx::unix_now;
use crate::store::records::LabelRecord;
use crate::view::conversation::{self as conv, ConversationDto};
use crate::view::dto::SentByDto;
use crate::view::visible;

/// Longest snooze: a year. Longer is "resolved".
const MAX_SNOOZE_SECS: i64 = 366 * 24 * 3600;

/// Checks and applies a team change by `caller`; the conversation as it is afterwards.
pub async fn change_for(
    s: &Service,
    caller: &Caller,
    key: ChatKey,
    change: TeamChange,
) -> Result<ConversationDto, ApiError> {
    let g = caller.grants.clone();
    let check = change.clone();
    s.store
        .read(move |r| {
            let Some(view) = visible::chat(r, &g, key)? else {
                return Ok(Err(ApiError::NotFound));
            };
            Ok(match check {
                TeamChange::Assign(Some(u)) if !conv::may_handle(r, u, &view.record)? => {
                    Err(ApiError::invalid(
                        "assignee_not_granted",
                        "the assignee must be an enabled user granted one of this chat's accounts",
                    ))
                }
                TeamChange::Labels(ls) => {
                    let known: Vec<u64> = conv::labels(r)?.into_iter().map(|l| l.id).collect();
                    match ls.iter().find(|l| !known.contains(l)) {
                        Some(l) => Err(ApiError::invalid(
                            "unknown_label",
                            format!("there is no label {l}"),
                        )),
                        None => Ok(()),
                    }
                }
                _ => Ok(()),
            })
        })
        .await??;
    let changed = s
        .pipeline
        .change_conversation(key, caller.user, change)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(s.store
        .read(move |r| conv::dto(r, &changed.conversation, unix_now()))
        .await?)
}

/// Parses a status change as the API spells it.
pub fn status_change(status: &str, snoozed_until: Option<i64>) -> Result<TeamChange, ApiError> {
    let status = ConversationStatus::parse(status)
        .ok_or_else(|| ApiError::BadRequest("status is one of open, pending, snoozed, resolved".into()))?;
    let until = match (status, snoozed_until) {
        (ConversationStatus::Snoozed, Some(t)) => {
            let now = unix_now();
            if t <= now || t - now > MAX_SNOOZE_SECS {
                return Err(ApiError::invalid(
                    "bad_snooze",
                    "snoozed_until is a unix time in the future, at most a year ahead",
                ));
            }
            Some(t)
        }
        (ConversationStatus::Snoozed, None) => {
            return Err(ApiError::invalid("bad_snooze", "snoozing needs snoozed_until"));
        }
        (_, Some(_)) => {
            return Err(ApiError::BadRequest(
                "snoozed_until goes only with status snoozed".into(),
            ));
        }
        (_, None) => None,
    };
    Ok(TeamChange::Status { status, until })
}

/// A field that must be present but may be `null` (serde takes a missing `Option` for `None`
/// unless the field has a deserializer of its own).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// A user ID, or `null` to unassign.
    #[serde(deserialize_with = "present")]
    assignee: Option<u64>,
}

pub async fn assign(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<AssignBody>,
) -> Result<Json<ConversationDto>, ApiError> {
    let key = chat_key(&id)?;
    Ok(Json(
        change_for(&s, &caller, key, TeamChange::Assign(body.assignee)).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    status: String,
    snoozed_until: Option<i64>,
}

pub async fn set_status(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<Json<ConversationDto>, ApiError> {
    let key = chat_key(&id)?;
    let change = status_change(&body.status, body.snoozed_until)?;
    Ok(Json(change_for(&s, &caller, key, change).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelsBody {
    labels: Vec<u64>,
}

pub async fn set_labels(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<LabelsBody>,
) -> Result<Json<ConversationDto>, ApiError> {
    let key = chat_key(&id)?;
    if body.labels.len() > conv::MAX_ON_CONVERSATION {
        return Err(ApiError::BadRequest(format!(
            "at most {} labels on a conversation",
            conv::MAX_ON_CONVERSATION
        )));
    }
    Ok(Json(
        change_for(&s, &caller, key, TeamChange::Labels(body.labels)).await?,
    ))
}

#[derive(Deserialize)]
pub struct ActivityQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct ActivityPage {
    /// Newest first.
    activity: Vec<serde_json::Value>,
    /// Pass as `before` for older entries; `null` at the start of the trail.
    older: Option<u64>,
}

pub async fn activity(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<ActivityQuery>,
) -> Result<Json<ActivityPage>, ApiError> {
    let key = chat_key(&id)?;
    let limit = match q.limit.unwrap_or(50) {
        n @ 1..=200 => n as usize,
        _ => return Err(ApiError::BadRequest("limit is 1 to 200".into())),
    };
    let before = q.before.unwrap_or(u64::MAX);
    let page = s
        .store
        .read(move |r| {
            if visible::chat(r, &caller.grants, key)?.is_none() {
                return Ok(None);
            }
            let mut rows = conv::activity(r, key, before, limit + 1)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let older = more
                .then(|| rows.last().and_then(|v| v["seq"].as_u64()))
                .flatten();
            Ok(Some(ActivityPage {
                activity: rows,
                older,
            }))
        })
        .await?;
    page.map(Json).ok_or(ApiError::NotFound)
}

/// Users a conversation can be given to (enabled, granted one of its accounts), by name.
pub async fn assignees(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<SentByDto>>, ApiError> {
    let key = chat_key(&id)?;
    let out = s
        .store
        .read(move |r| {
            let Some(view) = visible::chat(r, &caller.grants, key)? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for u in crate::auth::users::list(r)? {
                if conv::may_handle(r, u.id, &view.record)? {
                    out.push(SentByDto {
                        user: u.id,
                        name: Some(u.name),
                        token: None,
                    });
                }
            }
            Ok(Some(out))
        })
        .await?;
    out.map(Json).ok_or(ApiError::NotFound)
}

#[derive(Serialize)]
pub struct LabelDto {
    id: u64,
    name: String,
    color: String,
}

fn label_dto(l: LabelRecord) -> LabelDto {
    LabelDto {
        id: l.id,
        name: l.name,
        color: l.color,
    }
}

pub async fn labels(State(s): State<Service>, _caller: Caller) -> Result<Json<Vec<LabelDto>>, ApiError> {
    let out = s.store.read(conv::labels).await?;
    Ok(Json(out.into_iter().map(label_dto).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLabel {
    name: String,
    /// `#rrggbb`; a grey when absent.
    #[serde(default, deserialize_with = "super::extract::not_null")]
    color: Option<String>,
}

pub async fn create_label(
    State(s): State<Service>,
    Admin(_): Admin,
    Json(body): Json<NewLabel>,
) -> Result<(axum::http::StatusCode, Json<LabelDto>), ApiError> {
    let name = body.name.trim().to_string();
    // The limit holds for the name as sent (the API document's maxLength), spaces included.
    if name.is_empty() || body.name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "bad_label",
            "a label name is 1 to 40 characters",
        ));
    }
    let color = body.color.unwrap_or_else(|| "#6b7280".into());
    let hex = color.strip_prefix('#').unwrap_or("");
    if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::invalid("bad_label", "color is #rrggbb"));
    }
    let wanted = name.to_lowercase();
    if s.store
        .read(move |r| Ok(conv::labels(r)?.iter().any(|l| l.name.to_lowercase() == wanted)))
        .await?
    {
        return Err(ApiError::Conflict("a label with that name exists".into()));
    }
    let rec = s
        .pipeline
        .create_label(name, color.to_lowercase())
        .await?
        .ok_or_else(|| ApiError::Conflict("the box keeps at most 200 labels".into()))?;
    Ok((axum::http::StatusCode::CREATED, Json(label_dto(rec))))
}

pub async fn delete_label(
    State(s): State<Service>,
    Admin(_): Admin,
    Path(id): Path<u64>,
) -> Result<axum::http::StatusCode, ApiError> {
    if s.pipeline.delete_label(id).await? {
        Ok(axum::http::StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
