//! Managing who may use the box: users (list, create as admin or agent, change role, disable,
//! reset password, delete), their account grants, and API tokens.
//!
//! Users and grants are for admins only: the [`Admin`] extractor answers `403` to anyone else
//! before a body is even read. Tokens are per caller: everybody lists, creates and revokes
//! their own, and a new token's value is in the creation reply only (the store keeps its hash).
//! Store-side rules (names, password strength, at least one active admin) live in
//! [`crate::auth`]; this module maps HTTP onto them. Changes that end or narrow a credential go
//! through [`crate::auth::Auth`], which ends the WebSockets they concern at once.

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::extract::{Json, Path};
use crate::auth::manage::{self, UserChange};
use crate::auth::records::TokenRecord;
use crate::auth::{Caller, NewUser, Role, UserRecord, credentials, secrets, users};
use crate::service::Service;

/// A caller with the admin role. Any other caller gets `403`.
pub struct Admin(pub Caller);

impl FromRequestParts<Service> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Service) -> Result<Admin, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match caller.role {
            Role::Admin => Ok(Admin(caller)),
            Role::Agent => Err(ApiError::Forbidden),
        }
    }
}

/// A user as the API shows it (never the password hash).
#[derive(Serialize)]
pub struct UserDto {
    id: u64,
    name: String,
    role: &'static str,
    disabled: bool,
    /// Accounts granted (agents; admins see every account whatever this says).
    accounts: Vec<u64>,
    created_at: i64,
}

impl From<UserRecord> for UserDto {
    fn from(u: UserRecord) -> UserDto {
        UserDto {
            id: u.id,
            name: u.name,
            role: u.role.as_str(),
            disabled: u.disabled,
            accounts: u.grants,
            created_at: u.created_at,
        }
    }
}

fn role(s: &str) -> Result<Role, ApiError> {
    s.parse::<Role>()
        .map_err(|_| ApiError::BadRequest("role is `admin` or `agent`".into()))
}

pub async fn list_users(State(s): State<Service>, _: Admin) -> Result<Json<Vec<UserDto>>, ApiError> {
    let all = s.store.read(users::list).await?;
    Ok(Json(all.into_iter().map(UserDto::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    name: String,
    role: String,
    password: String,
    #[serde(default)]
    accounts: Vec<u64>,
}

pub async fn create_user(
    State(s): State<Service>,
    _: Admin,
    Json(body): Json<CreateUser>,
) -> Result<Response, ApiError> {
    let rec = users::add(
        &s.store,
        NewUser {
            name: body.name,
            role: role(&body.role)?,
            password: body.password,
            grants: body.accounts,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(UserDto::from(rec))).into_response())
}

async fn user_by_id(s: &Service, id: u64) -> Result<UserRecord, ApiError> {
    s.store
        .read(move |r| users::by_id(r, id))
        .await?
        .ok_or(ApiError::NotFound)
}

pub async fn get_user(
    State(s): State<Service>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<UserDto>, ApiError> {
    Ok(Json(user_by_id(&s, id).await?.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    #[serde(default, deserialize_with = "super::extract::not_null")]
    role: Option<String>,
    #[serde(default, deserialize_with = "super::extract::not_null")]
    disabled: Option<bool>,
}

pub async fn update_user(
    State(s): State<Service>,
    _: Admin,
    Path(id): Path<u64>,
    Json(body): Json<PatchUser>,
) -> Result<Json<UserDto>, ApiError> {
    let change = UserChange {
        role: body.role.as_deref().map(role).transpose()?,
        disabled: body.disabled,
    };
    Ok(Json(s.auth.update_user(id, change).await?.into()))
}

pub async fn delete_user(
    State(s): State<Service>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    s.auth.remove_user(id).await?;
    // Their personal canned replies go with them (nobody else may ever see them).
    crate::canned::drop_owner(&s.store, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    password: String,
}

pub async fn reset_password(
    State(s): State<Service>,
    _: Admin,
    Path(id): Path<u64>,
    Json(body): Json<NewPassword>,
) -> Result<StatusCode, ApiError> {
    s.auth.set_password(id, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantsDto {
    accounts: Vec<u64>,
}

pub async fn get_grants(
    State(s): State<Service>,
    _: Admin,
    Path(id): Path<u64>,
) -> Result<Json<GrantsDto>, ApiError> {
    Ok(Json(GrantsDto {
        accounts: user_by_id(&s, id).await?.grants,
    }))
}

pub async fn set_grants(
    State(s): State<Service>,
    _: Admin,
    Path(id): Path<u64>,
    Json(body): Json<GrantsDto>,
) -> Result<Json<GrantsDto>, ApiError> {
    let rec = s.auth.set_grants(id, body.accounts).await?;
    Ok(Json(GrantsDto { accounts: rec.grants }))
}

/// A token as listed (the value itself is never stored, so never listed).
#[derive(Serialize)]
pub struct TokenDto {
    id: String,
    label: String,
    /// First characters of the token, to tell it apart.
    prefix: String,
    created_at: i64,
    expires_at: Option<i64>,
}

impl TokenDto {
    fn new(id: String, t: TokenRecord) -> TokenDto {
        TokenDto {
            id,
            label: t.label,
            prefix: t.prefix,
            created_at: t.created_at,
            expires_at: t.expires_at,
        }
    }
}

pub async fn list_tokens(State(s): State<Service>, caller: Caller) -> Result<Json<Vec<TokenDto>>, ApiError> {
    let user = caller.user;
    let all = s.store.read(move |r| manage::tokens(r, user)).await?;
    Ok(Json(
        all.into_iter().map(|(id, t)| TokenDto::new(id, t)).collect(),
    ))
}

/// Longest token lifetime that can be asked for (ten years).
pub const MAX_TOKEN_DAYS: u32 = 3650;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[serde(default)]
    label: String,
    /// Days until the token stops working; absent: never.
    expires_in_days: Option<u32>,
}

#[derive(Serialize)]
pub struct CreatedToken {
    /// The token. Shown this once: only its hash is kept.
    token: String,
    #[serde(flatten)]
    info: TokenDto,
}

pub async fn create_token(
    State(s): State<Service>,
    caller: Caller,
    Json(body): Json<CreateToken>,
) -> Result<Response, ApiError> {
    let expires_at = match body.expires_in_days {
        None => None,
        Some(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => {
            Some(crate::store::ctx::unix_now() + i64::from(d) * 86_400)
        }
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "expires_in_days is 1 to {MAX_TOKEN_DAYS}"
            )));
        }
    };
    let (token, rec) = credentials::create_token(&s.store, &caller.name, &body.label, expires_at).await?;
    let id = manage::token_id(&secrets::digest(&token));
    let reply = CreatedToken {
        token,
        info: TokenDto::new(id, rec),
    };
    Ok((StatusCode::CREATED, Json(reply)).into_response())
}

pub async fn revoke_token(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound);
    }
    s.auth.revoke_token(caller.user, id.to_ascii_lowercase()).await?;
    Ok(StatusCode::NO_CONTENT)
}
