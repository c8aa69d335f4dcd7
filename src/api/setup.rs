//! First run: creating the first admin from the browser.
//!
//! While the box has no user, `POST /api/v1/setup` creates an admin, but only with the one-time
//! setup code the box printed on its console at start (`crate::auth::setup::SetupGate`): a stranger on the
//! LAN who reaches the page first cannot take the box over, because the code is only on the
//! console of the box. The code is taken under a lock before the user is written, so two
//! racing requests cannot both succeed; a failed attempt (weak password, bad name) puts it back.
//! Once any user exists (made here, by the CLI, or by the admin API) the route answers `409`.
//!
//! `GET /api/v1/setup` tells the page whether set-up is needed and shows the certificate
//! fingerprint to compare with the console. Neither route needs a credential.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::extract::{Json, Origin, origin};
use crate::auth::records::Role;
use crate::auth::users::{self, NewUser};
use crate::service::Service;

#[derive(Serialize)]
pub struct SetupState {
    /// Whether the box still needs its first admin.
    needed: bool,
    /// Whether the box waits for its unlock passphrase (sealed boot; never here: a sealed box
    /// answers this route from its unlock page, `super::unlock`).
    sealed: bool,
    certificate_sha256: String,
}

async fn has_users(s: &Service) -> Result<bool, ApiError> {
    Ok(s.store.read(|r| Ok(!users::list(r)?.is_empty())).await?)
}

pub async fn state(State(s): State<Service>) -> Result<Json<SetupState>, ApiError> {
    let needed = s.setup.code().is_some() && !has_users(&s).await?;
    Ok(Json(SetupState {
        needed,
        sealed: false,
        certificate_sha256: s.tls.fingerprint(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    username: String,
    password: String,
    setup_code: String,
}

#[derive(Serialize)]
pub struct SetupDone {
    id: u64,
    name: String,
    role: &'static str,
}

pub async fn create(
    State(s): State<Service>,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<SetupBody>,
) -> Result<Response, ApiError> {
    if origin(&headers, &uri) == Origin::Foreign {
        return Err(ApiError::Forbidden);
    }
    let done = || ApiError::Conflict("this box is already set up; sign in instead".into());
    if s.setup.code().is_none() || has_users(&s).await? {
        return Err(done());
    }
    let Some(code) = s.setup.take(&body.setup_code) else {
        if s.setup.code().is_none() {
            return Err(done());
        }
        tracing::warn!("first-run set-up tried with a wrong setup code");
        return Err(ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "bad_setup_code",
            message: "wrong setup code: use the one printed on the box's console".into(),
        });
    };
    let added = users::add(
        &s.store,
        NewUser {
            name: body.username,
            role: Role::Admin,
            password: body.password,
            grants: Vec::new(),
        },
    )
    .await;
    match added {
        Ok(u) => {
            tracing::info!(user = u.id, "first admin created from the browser");
            Ok((
                StatusCode::CREATED,
                Json(SetupDone {
                    id: u.id,
                    name: u.name,
                    role: u.role.as_str(),
                }),
            )
                .into_response())
        }
        Err(e) => {
            s.setup.put_back(code);
            Err(e.into())
        }
    }
}
