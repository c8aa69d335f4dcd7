//! Adding a Telegram user account (admins only), one step per request:
//!
//! 1. `POST /api/v1/account-logins` `{phone, name?, rented?}`: Telegram sends a code to the
//!    person's Telegram app (or SMS); the reply names the login and how long it waits.
//! 2. `POST /api/v1/account-logins/{login}/code` `{code}`: `201` with the new account, or
//!    `200` `{"status": "password_required"}` when the account has a 2FA password, then
//! 3. `POST /api/v1/account-logins/{login}/password` `{password}`: `201` with the new account.
//!
//! `DELETE /api/v1/account-logins/{login}` cancels. A wrong code or password may be sent again
//! on the same login; an expired code, a banned number or an expired login end it (the errors
//! are mapped in `api::error`). The new account lists at once in `GET /api/v1/accounts`
//! (`kind: user`) and receives at once. No reply, error or log line carries the phone number,
//! the code or the password.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::accounts::{AccountDto, one};
use super::admin::Admin;
use super::extract::{Json, Path};
use crate::service::Service;
use crate::service::logins::LoginStep;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLogin {
    /// With the country code; spaces, dashes and a leading `+` are fine.
    phone: String,
    /// The account's label (default: the person's first name).
    name: Option<String>,
    /// Redact login codes (chat 777000) of this account.
    #[serde(default)]
    rented: bool,
}

#[derive(Serialize)]
pub struct LoginDto {
    login: String,
    /// Seconds until the login is forgotten.
    expires_in: u64,
    /// What comes next: `code`.
    next: &'static str,
}

pub async fn begin(
    State(s): State<Service>,
    _admin: Admin,
    Json(req): Json<NewLogin>,
) -> Result<(StatusCode, Json<LoginDto>), ApiError> {
    if req
        .name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 200)
    {
        return Err(ApiError::invalid("bad_name", "a name is 1 to 200 bytes"));
    }
    let started = s.begin_user_login(&req.phone, req.name, req.rented).await?;
    Ok((
        StatusCode::CREATED,
        Json(LoginDto {
            login: started.id,
            expires_in: started.expires_in,
            next: "code",
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    code: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Password {
    password: String,
}

#[derive(Serialize)]
pub struct StepDto {
    /// `signed_in` (with `account`) or `password_required`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<AccountDto>,
}

async fn signed_in(s: &Service, account: u64) -> Result<(StatusCode, Json<StepDto>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(StepDto {
            status: "signed_in",
            account: Some(one(s, account).await?),
        }),
    ))
}

pub async fn code(
    State(s): State<Service>,
    _admin: Admin,
    Path(login): Path<String>,
    Json(req): Json<Code>,
) -> Result<(StatusCode, Json<StepDto>), ApiError> {
    if req.code.trim().is_empty() || req.code.len() > 64 {
        return Err(ApiError::invalid(
            "code_invalid",
            "the code is what Telegram sent: a few digits",
        ));
    }
    match s.submit_login_code(&login, &req.code).await? {
        LoginStep::SignedIn(account) => signed_in(&s, account).await,
        LoginStep::PasswordRequired => Ok((
            StatusCode::OK,
            Json(StepDto {
                status: "password_required",
                account: None,
            }),
        )),
    }
}

pub async fn password(
    State(s): State<Service>,
    _admin: Admin,
    Path(login): Path<String>,
    Json(req): Json<Password>,
) -> Result<(StatusCode, Json<StepDto>), ApiError> {
    if req.password.is_empty() || req.password.len() > 1024 {
        return Err(ApiError::invalid(
            "password_invalid",
            "the 2FA password is 1 to 1024 bytes",
        ));
    }
    let account = s.submit_login_password(&login, &req.password).await?;
    signed_in(&s, account).await
}

pub async fn cancel(
    State(s): State<Service>,
    _admin: Admin,
    Path(login): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.cancel_user_login(&login) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(crate::service::lifecycle::LifecycleError::LoginNotFound.into())
    }
}
