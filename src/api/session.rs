//! Logging in and out, who am I, and WebSocket tickets.
//!
//! A login sets the session cookie `HttpOnly; Secure; SameSite=Strict` (named `__Host-...`,
//! so it is bound to this host and path `/`). The cookie's value is shown to the browser only;
//! the store keeps its SHA-256.
//!
//! Logins are throttled per user name and, when the connection's peer address is in the
//! request's extensions (`ConnectInfo<SocketAddr>`, put there by the server loop), per client
//! address; a refusal is a 429 with `Retry-After` (see [`crate::auth::throttle`]).

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::extract::{Json, Origin, SESSION_COOKIE, origin};
use crate::auth::Caller;
use crate::service::Service;
use crate::view::visible;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub struct Me {
    id: u64,
    name: String,
    role: &'static str,
    /// Accounts this user may see.
    accounts: Vec<u64>,
}

async fn me_of(s: &Service, caller: Caller) -> Result<Me, ApiError> {
    let g = caller.grants.clone();
    let accounts = s.store.read(move |r| visible::account_ids(r, &g)).await?;
    Ok(Me {
        id: caller.user,
        name: caller.name,
        role: caller.role.as_str(),
        accounts,
    })
}

#[derive(Serialize)]
pub struct LoginReply {
    user: Me,
    expires_at: i64,
}

fn cookie_header(value: &str, max_age: u64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict"
    ))
    .map_err(|_| ApiError::Internal("cookie value".into()))
}

pub async fn login(
    State(s): State<Service>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<LoginBody>,
) -> Result<Response, ApiError> {
    // A login from another site's page would sign the browser into someone else's session.
    if origin(&headers, &uri) == Origin::Foreign {
        return Err(ApiError::Forbidden);
    }
    if body.username.len() > 256 || body.password.len() > crate::auth::users::MAX_PASSWORD_BYTES {
        return Err(ApiError::invalid(
            "invalid_credentials",
            "wrong user name or password",
        ));
    }
    let client = peer.map(|Extension(ConnectInfo(a))| a.ip());
    let login = s.auth.login(&body.username, &body.password, client).await?;
    let cookie = cookie_header(&login.cookie, s.auth.options().session_ttl.as_secs())?;
    let reply = LoginReply {
        user: me_of(&s, login.caller).await?,
        expires_at: login.expires_at,
    };
    let mut res = axum::Json(reply).into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(res)
}

pub async fn logout(State(s): State<Service>, caller: Caller) -> Result<Response, ApiError> {
    // Ends the session's WebSockets too, ticket-opened ones included.
    s.auth.logout(&caller).await?;
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", 0)?);
    Ok(res)
}

pub async fn me(State(s): State<Service>, caller: Caller) -> Result<Json<Me>, ApiError> {
    Ok(Json(me_of(&s, caller).await?))
}

#[derive(Serialize)]
pub struct Ticket {
    ticket: String,
    /// Seconds the ticket stays valid (it works once).
    expires_in: u64,
}

pub async fn ticket(State(s): State<Service>, caller: Caller) -> Result<Json<Ticket>, ApiError> {
    Ok(Json(Ticket {
        ticket: s.auth.issue_ticket(&caller)?,
        expires_in: crate::auth::tickets::TICKET_TTL.as_secs(),
    }))
}
