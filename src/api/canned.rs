//! Canned replies over REST: list, create, change, delete under `/api/v1/canned`.
//!
//! Everybody lists the team's replies and their own personal ones. Admins manage team
//! replies; every user manages their own personal replies (the rules are in
//! [`crate::canned`]). A reply the caller cannot see answers `404`; a team reply an agent
//! tries to change or delete answers `403`, as does an agent creating one.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::extract::{Json, Path};
use crate::auth::{Caller, Role};
use crate::canned::{self, Actor, Canned, CannedChange, Scope};
use crate::service::Service;

#[derive(Serialize)]
pub struct CannedDto {
    id: u64,
    scope: Scope,
    /// Without the leading `/`, lower case.
    shortcut: String,
    /// May contain the variables `{{contact.first_name}}`, `{{contact.last_name}}`,
    /// `{{contact.name}}`, `{{contact.username}}`, `{{agent.name}}`, filled in when inserted.
    text: String,
    created_by: u64,
    created_at: i64,
    updated_at: i64,
    /// Whether the caller may change or delete it.
    editable: bool,
}

fn actor(c: &Caller) -> Actor {
    Actor {
        user: c.user,
        admin: c.role == Role::Admin,
    }
}

fn dto(c: Canned, actor: Actor) -> CannedDto {
    CannedDto {
        id: c.id,
        editable: c.scope == Scope::Personal || actor.admin,
        scope: c.scope,
        shortcut: c.shortcut,
        text: c.text,
        created_by: c.created_by,
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

#[derive(Serialize)]
pub struct CannedList {
    /// By shortcut; the caller's personal reply first where a team reply has the same one.
    replies: Vec<CannedDto>,
    /// The variables a reply may use.
    variables: [&'static str; 5],
}

pub async fn list(State(s): State<Service>, caller: Caller) -> Result<Json<CannedList>, ApiError> {
    let a = actor(&caller);
    let all = s.store.read(move |r| canned::list(r, a.user)).await?;
    Ok(Json(CannedList {
        replies: all.into_iter().map(|c| dto(c, a)).collect(),
        variables: canned::VARIABLES,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCanned {
    shortcut: String,
    text: String,
    /// `personal` (the default) or `team` (admins only).
    #[serde(default)]
    scope: Option<Scope>,
}

pub async fn create(
    State(s): State<Service>,
    caller: Caller,
    Json(body): Json<NewCanned>,
) -> Result<Response, ApiError> {
    let a = actor(&caller);
    let scope = body.scope.unwrap_or(Scope::Personal);
    let made = canned::create(&s.store, a, scope, &body.shortcut, body.text).await?;
    Ok((StatusCode::CREATED, Json(dto(made, a))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchCanned {
    #[serde(default, deserialize_with = "super::extract::not_null")]
    shortcut: Option<String>,
    #[serde(default, deserialize_with = "super::extract::not_null")]
    text: Option<String>,
}

pub async fn update(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<u64>,
    Json(body): Json<PatchCanned>,
) -> Result<Json<CannedDto>, ApiError> {
    let a = actor(&caller);
    let change = CannedChange {
        shortcut: body.shortcut,
        text: body.text,
    };
    Ok(Json(dto(canned::update(&s.store, a, id, change).await?, a)))
}

pub async fn remove(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    canned::delete(&s.store, actor(&caller), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
