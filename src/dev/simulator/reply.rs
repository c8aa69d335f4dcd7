//! What every simulated method and control route answers with: [`Reply`] in the Bot API's
//! JSON shapes (or a proxy's HTML error page), bounded body reading, the per-connection kill
//! switch, the clock.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::params::BadRequest;

/// Inserted into every request: notifying it closes the request's connection.
#[derive(Clone)]
pub(super) struct ConnKill(pub Arc<Notify>);

/// What a method answers.
pub(super) enum Reply {
    Ok(Value),
    /// `getUpdates`: the updates' JSON text, joined as they are (an injected malformed update
    /// stays malformed).
    Updates(Vec<(i64, String)>),
    Err {
        code: u16,
        description: String,
        retry_after: Option<u32>,
    },
    /// The HTML error page of the proxy in front of the Bot API.
    ProxyError(u16),
}

impl Reply {
    pub fn err(code: u16, description: &str) -> Reply {
        Reply::Err {
            code,
            description: description.to_owned(),
            retry_after: None,
        }
    }

    pub fn bad_request(what: &str) -> Reply {
        Reply::from(BadRequest(what.to_owned()))
    }

    pub fn retry_after(secs: u32) -> Reply {
        Reply::Err {
            code: 429,
            description: format!("Too Many Requests: retry after {secs}"),
            retry_after: Some(secs),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Reply::Ok(_) | Reply::Updates(_) => 200,
            Reply::Err { code, .. } | Reply::ProxyError(code) => *code,
        }
    }
}

impl From<BadRequest> for Reply {
    fn from(e: BadRequest) -> Reply {
        Reply::err(400, &format!("Bad Request: {}", e.0))
    }
}

pub(super) fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let json = |body: String| (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    match r {
        Reply::Ok(v) => json(json!({ "ok": true, "result": v }).to_string()),
        Reply::Updates(items) => {
            let texts: Vec<&str> = items.iter().map(|(_, t)| t.as_str()).collect();
            json(format!("{{\"ok\":true,\"result\":[{}]}}", texts.join(",")))
        }
        Reply::Err {
            code,
            description,
            retry_after,
        } => {
            let mut body = json!({ "ok": false, "error_code": code, "description": description });
            if let Some(s) = retry_after {
                body["parameters"] = json!({ "retry_after": s });
            }
            json(body.to_string())
        }
        Reply::ProxyError(code) => {
            let reason = status.canonical_reason().unwrap_or("Error");
            let page = format!(
                "<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
            );
            (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
        }
    }
}

/// Reads a request body, refusing more than `limit` bytes with Telegram's 413.
pub(super) async fn read_body(
    req: Request,
    limit: usize,
) -> Result<(axum::http::request::Parts, bytes::Bytes), Reply> {
    let (parts, body): (_, Body) = req.into_parts();
    let too_large = || Reply::err(413, "Request Entity Too Large");
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| too_large())?;
    Ok((parts, bytes))
}

/// Unix seconds now.
pub(super) fn unix_now() -> i64 {
    crate::store::ctx::unix_now()
}
