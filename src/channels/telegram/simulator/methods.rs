//! The simulator's HTTP side: routing, parameters, faults, and the Bot API methods themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::params::{BadRequest, Params, int, object, params, string, truthy};
use super::{BotState, Call, Fault, SentMessage, State};

/// Method names the simulator knows (Telegram matches them case-insensitively).
const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "sendMessage",
    "sendChatAction",
    "editMessageText",
    "deleteMessage",
    "getFile",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
];

const CHAT_ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/file/{bot}/{*path}", get(download))
        .route("/{bot}/{method}", any(call))
        .fallback(|| async { reply(Reply::err(404, "Not Found")) })
        .with_state(state)
}

/// What a method answers.
enum Reply {
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
    fn err(code: u16, description: &str) -> Reply {
        Reply::Err {
            code,
            description: description.to_owned(),
            retry_after: None,
        }
    }

    fn bad_request(what: &str) -> Reply {
        Reply::from(BadRequest(what.to_owned()))
    }

    fn status(&self) -> u16 {
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

fn reply(r: Reply) -> Response {
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

async fn call(
    AxumState(state): AxumState<Arc<State>>,
    Path((bot, method)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return reply(Reply::err(404, "Not Found"));
    };
    let method = METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(&method))
        .map_or(method.clone(), |m| (*m).to_owned());
    let params = match params(&uri, &headers, &body) {
        Ok(p) => p,
        Err(e) => return reply(e.into()),
    };
    let (index, fault) = {
        let mut inner = state.lock();
        let Some(b) = inner.bots.get_mut(token) else {
            return reply(Reply::err(401, "Unauthorized"));
        };
        b.calls.push(Call {
            method: method.clone(),
            params: params.clone(),
            at: Instant::now(),
            status: None,
            delivered: Vec::new(),
        });
        let fault = if b.revoked {
            None
        } else {
            b.faults.get_mut(&method).and_then(|q| q.pop_front())
        };
        (b.calls.len() - 1, fault)
    };
    state.bump();
    let r = answer(&state, token, &method, &params, fault).await;
    state.with_bot(token, |b| {
        let call = &mut b.calls[index];
        call.status = Some(r.status());
        if let Reply::Updates(items) = &r {
            call.delivered = items.iter().map(|(id, _)| *id).collect();
        }
    });
    reply(r)
}

async fn answer(state: &State, token: &str, method: &str, params: &Params, fault: Option<Fault>) -> Reply {
    let mut stopped = state.stopped.clone();
    match fault {
        Some(Fault::RetryAfter(secs)) => {
            return Reply::Err {
                code: 429,
                description: format!("Too Many Requests: retry after {secs}"),
                retry_after: Some(secs),
            };
        }
        Some(Fault::Status(code @ 502..=504)) => return Reply::ProxyError(code),
        Some(Fault::Status(code)) => {
            let reason = StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error");
            return Reply::err(code, reason);
        }
        Some(Fault::Hang) => {
            // Ends when the client gives up (the server drops this future) or the server stops.
            let _ = stopped.wait_for(|v| *v).await;
            return Reply::ProxyError(502);
        }
        Some(Fault::Slow(delay)) => {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopped.wait_for(|v| *v) => return Reply::ProxyError(502),
            }
        }
        None => {}
    }
    if state.read_bot(token, |b| b.revoked) {
        return Reply::err(401, "Unauthorized");
    }
    if method == "getUpdates" {
        return get_updates(state, token, params).await.unwrap_or_else(|r| r);
    }
    state.with_bot(token, |b| method_call(b, method, params).unwrap_or_else(|r| r))
}

/// Long polling with Telegram's offset semantics (see the module documentation).
async fn get_updates(state: &State, token: &str, p: &Params) -> Result<Reply, Reply> {
    let offset = int(p, "offset")?.unwrap_or(0);
    let limit = int(p, "limit")?.unwrap_or(100).clamp(1, 100) as usize;
    let timeout = int(p, "timeout")?.unwrap_or(0).clamp(0, 3600) as u64;
    let allowed = object(p, "allowed_updates")?;
    let generation = state.with_bot(token, |b| {
        if b.webhook.is_some() {
            return Err(Reply::err(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ));
        }
        confirm(b, offset);
        if allowed.is_some() {
            b.allowed_updates = allowed;
        }
        b.poll_generation += 1;
        Ok(b.poll_generation)
    })?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mut changed = state.changed.subscribe();
    let mut stopped = state.stopped.clone();
    loop {
        changed.borrow_and_update();
        let ready = state.read_bot(token, |b| {
            if b.revoked {
                return Some(Reply::err(401, "Unauthorized"));
            }
            if b.poll_generation != generation {
                return Some(Reply::err(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
                ));
            }
            let items: Vec<_> = b
                .queue
                .iter()
                .filter(|(id, _)| *id >= offset)
                .take(limit)
                .cloned()
                .collect();
            let done = !items.is_empty() || tokio::time::Instant::now() >= deadline || *stopped.borrow();
            done.then_some(Reply::Updates(items))
        });
        if let Some(r) = ready {
            return Ok(r);
        }
        tokio::select! {
            _ = changed.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stopped.wait_for(|v| *v) => {}
        }
    }
}

/// Drops the updates an offset confirms: all below a positive offset; all but the last
/// `-offset` for a negative one.
fn confirm(b: &mut BotState, offset: i64) {
    if offset > 0 {
        while b.queue.front().is_some_and(|(id, _)| *id < offset) {
            b.queue.pop_front();
        }
    } else if offset < 0 {
        let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
        while b.queue.len() > keep {
            b.queue.pop_front();
        }
    }
}

/// Every method but `getUpdates`.
fn method_call(b: &mut BotState, method: &str, p: &Params) -> Result<Reply, Reply> {
    let required_chat = |p: &Params| int(p, "chat_id")?.ok_or_else(|| Reply::bad_request("chat_id is empty"));
    let required_message = |p: &Params| {
        int(p, "message_id")?.ok_or_else(|| Reply::bad_request("message identifier is not specified"))
    };
    Ok(match method {
        "getMe" => Reply::Ok(json!({
            "id": b.id,
            "is_bot": true,
            "first_name": b.username,
            "username": b.username,
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
        })),
        "sendMessage" => {
            let chat_id = required_chat(p)?;
            let text = string(p, "text").unwrap_or_default();
            if text.is_empty() {
                return Err(Reply::bad_request("message text is empty"));
            }
            let message_id = b.next_message_id;
            b.next_message_id += 1;
            let thread = int(p, "message_thread_id")?;
            b.sent.push(SentMessage {
                chat_id,
                message_id,
                text: text.clone(),
                reply_parameters: object(p, "reply_parameters")?,
                message_thread_id: thread,
            });
            Reply::Ok(message(b, chat_id, message_id, &text, None))
        }
        "sendChatAction" => {
            required_chat(p)?;
            let action = string(p, "action").unwrap_or_default();
            if !CHAT_ACTIONS.contains(&action.as_str()) {
                return Err(Reply::bad_request("wrong parameter action in request"));
            }
            Reply::Ok(json!(true))
        }
        "editMessageText" => {
            let (chat_id, message_id) = (required_chat(p)?, required_message(p)?);
            let text = string(p, "text").unwrap_or_default();
            if text.is_empty() {
                return Err(Reply::bad_request("message text is empty"));
            }
            Reply::Ok(message(b, chat_id, message_id, &text, Some(unix_now())))
        }
        "deleteMessage" => {
            required_chat(p)?;
            required_message(p)?;
            Reply::Ok(json!(true))
        }
        "getFile" => {
            let file_id = string(p, "file_id").unwrap_or_default();
            let (path, bytes) = b
                .files
                .get(&file_id)
                .ok_or_else(|| Reply::bad_request("invalid file_id"))?;
            Reply::Ok(json!({
                "file_id": file_id,
                "file_unique_id": format!("U{file_id}"),
                "file_size": bytes.len(),
                "file_path": path,
            }))
        }
        "setWebhook" => {
            let url = string(p, "url").unwrap_or_default();
            if url.is_empty() {
                b.webhook = None;
            } else if !url.starts_with("https://") {
                return Err(Reply::bad_request(
                    "bad webhook: An HTTPS URL must be provided for webhook",
                ));
            } else {
                let secret = string(p, "secret_token");
                let secret_ok = secret.as_deref().is_none_or(|s| {
                    (1..=256).contains(&s.len())
                        && s.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                });
                if !secret_ok {
                    return Err(Reply::bad_request("secret token contains unallowed characters"));
                }
                b.webhook = Some((url, secret));
                if let Some(a) = object(p, "allowed_updates")? {
                    b.allowed_updates = Some(a);
                }
            }
            if matches!(p.get("drop_pending_updates"), Some(v) if truthy(v)) {
                b.queue.clear();
            }
            Reply::Ok(json!(true))
        }
        "deleteWebhook" => {
            b.webhook = None;
            if matches!(p.get("drop_pending_updates"), Some(v) if truthy(v)) {
                b.queue.clear();
            }
            Reply::Ok(json!(true))
        }
        "getWebhookInfo" => Reply::Ok(json!({
            "url": b.webhook.as_ref().map_or("", |(u, _)| u.as_str()),
            "has_custom_certificate": false,
            "pending_update_count": b.queue.len(),
        })),
        _ => Reply::err(404, "Not Found"),
    })
}

/// A message the bot sent, as Telegram returns it.
fn message(b: &BotState, chat_id: i64, message_id: i64, text: &str, edit_date: Option<i64>) -> Value {
    let kind = match chat_id {
        id if id > 0 => "private",
        id if id < -1_000_000_000_000 => "supergroup",
        _ => "group",
    };
    let mut m = json!({
        "message_id": message_id,
        "from": { "id": b.id, "is_bot": true, "first_name": b.username, "username": b.username },
        "chat": { "id": chat_id, "type": kind },
        "date": unix_now(),
        "text": text,
    });
    if let Some(d) = edit_date {
        m["edit_date"] = json!(d);
    }
    m
}

async fn download(
    AxumState(state): AxumState<Arc<State>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    let found = bot.strip_prefix("bot").and_then(|token| {
        let inner = state.lock();
        let b = inner.bots.get(token).filter(|b| !b.revoked)?;
        b.files
            .values()
            .find(|(p, _)| *p == path)
            .map(|(_, bytes)| bytes.clone())
    });
    match found {
        Some(bytes) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            bytes,
        )
            .into_response(),
        None => reply(Reply::err(404, "Not Found")),
    }
}

fn unix_now() -> i64 {
    crate::store::ctx::unix_now()
}
