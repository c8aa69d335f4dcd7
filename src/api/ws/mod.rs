//! `GET /api/v1/ws`: authentication of a WebSocket, then the upgrade into a live session.
//!
//! Three ways in, tried in this order:
//! 1. an API token as a subprotocol: `Sec-WebSocket-Protocol: lanbox.v1, lbx_...` (the server
//!    selects `lanbox.v1` and never echoes the token);
//! 2. a single-use ticket from `POST /api/v1/ws/ticket`: `/api/v1/ws?ticket=...`;
//! 3. the session cookie, which also requires `Origin` to be the box's own.
//!
//! Whatever the credential, a request with a foreign `Origin` is refused: unlike cloud inboxes
//! that accept any origin by default, lanbox never lets another site's page open its feed.
//!
//! The connection then lives as long as its credential (a ticket's being the token or session
//! that minted it): revoking it, logging out, disabling or deleting the user closes the socket
//! at once with 4001 `unauthorized` ([`socket`]).

pub mod socket;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;
use serde::Deserialize;

use crate::api::ApiError;
use crate::api::extract::{Origin, Query, origin, session_cookie};
use crate::auth::secrets::looks_like_token;
use crate::live::protocol::PROTOCOL;
use crate::service::Service;

/// Read buffer of a WebSocket, bytes. tungstenite's default is 128 KiB, which it zero-fills on
/// a read (a bare tokio-tungstenite server measured 147 KiB per idle connection with it, 22 KiB
/// with this: docs/benchmarks.md). Clients send small JSON messages; a larger one still
/// arrives, the buffer grows for it (up to `max_message`).
pub const READ_BUFFER: usize = 4 << 10;

/// Write buffer of a WebSocket, bytes: frames queued for a client that has fallen behind are
/// written into it and go out together (one TLS record holds up to 16 KiB). tungstenite's
/// default is 128 KiB, and a buffer keeps its largest size: with 500 clients batching, the
/// default held about 70 MiB more than this (`cargo bench --bench soak`, docs/benchmarks.md).
pub const WRITE_BUFFER: usize = 16 << 10;

#[derive(Deserialize)]
pub struct WsQuery {
    ticket: Option<String>,
}

/// Subprotocols the client offered.
fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

pub async fn upgrade(
    State(s): State<Service>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<WsQuery>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let from = origin(&headers, &uri);
    if from == Origin::Foreign {
        return Err(ApiError::Forbidden);
    }
    // Listening before the credential is checked: a revocation committed after the check is
    // then announced to this connection (one committed before fails the check).
    let revoked = s.auth.revocations();
    let protocols = offered(&headers);
    let wants_v1 = protocols.iter().any(|p| p == PROTOCOL);
    let caller = if let Some(token) = protocols.iter().find(|p| looks_like_token(p)) {
        if !wants_v1 {
            return Err(ApiError::BadRequest(format!(
                "offer the `{PROTOCOL}` subprotocol with the token"
            )));
        }
        s.auth.by_token(token).await?
    } else if let Some(ticket) = q.ticket.as_deref() {
        s.auth.redeem_ticket(ticket).await?
    } else if let Some(cookie) = session_cookie(&headers) {
        if from != Origin::Same {
            return Err(ApiError::Forbidden);
        }
        s.auth.by_session(&cookie).await?
    } else {
        return Err(ApiError::Unauthorized);
    };
    let ws = ws.map_err(|_| ApiError::BadRequest("this route only answers WebSocket upgrades".into()))?;
    let ws = if wants_v1 { ws.protocols([PROTOCOL]) } else { ws };
    let max = s.options.live.max_message;
    Ok(ws
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| socket::run(socket, s, caller, revoked)))
}
