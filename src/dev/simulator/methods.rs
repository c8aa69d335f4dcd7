//! The simulator's HTTP side: routing, reading requests within Telegram's size limit, faults,
//! and `getUpdates`; the other methods are in [`super::bot_methods`], the control API in
//! [`super::control`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Request, State as AxumState};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get};

use super::bot_methods::method_call;
use super::media::{self, UPLOAD_LIMIT};
use super::params::{Params, int, object, params};
use super::reply::{ConnKill, Reply, read_body, reply};
use super::state::BotState;
use super::{Call, Fault, State};

pub(super) use super::bot_methods::webhook_info;

/// Method names the simulator knows (Telegram matches them case-insensitively).
const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "sendMessage",
    "sendPhoto",
    "sendDocument",
    "sendVideo",
    "sendVoice",
    "sendAudio",
    "sendChatAction",
    "editMessageText",
    "deleteMessage",
    "answerCallbackQuery",
    "getFile",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
];

/// Room for the multipart framing and the other fields around a maximal file.
const REQUEST_LIMIT: usize = UPLOAD_LIMIT + 64 * 1024;

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/file/{bot}/{*path}", get(super::bot_methods::download))
        .nest("/_sim", super::control::router())
        .route("/{bot}/{method}", any(call))
        .fallback(|| async { reply(Reply::err(404, "Not Found")) })
        .with_state(state)
}

async fn call(
    AxumState(state): AxumState<Arc<State>>,
    Path((bot, method)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(token) = bot.strip_prefix("bot") else {
        return reply(Reply::err(404, "Not Found"));
    };
    let method = METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(&method))
        .map_or(method.clone(), |m| (*m).to_owned());
    if !state.known(token) {
        return reply(Reply::err(401, "Unauthorized"));
    }
    let kill = req.extensions().get::<ConnKill>().cloned();
    let (params, uploads) = match read_body(req, REQUEST_LIMIT).await {
        Ok((parts, body)) => match params(&parts.uri, &parts.headers, &body) {
            Ok(p) => p,
            Err(e) => return reply(e.into()),
        },
        Err(r) => return reply(r),
    };
    let (index, fault) = state.with_bot(token, |b| {
        let index = b.push_call(Call {
            method: method.clone(),
            params: params.clone(),
            at: Instant::now(),
            status: None,
            delivered: Vec::new(),
        });
        let fault = if b.revoked { None } else { b.take_fault(&method) };
        (index, fault)
    });
    if fault == Some(Fault::Drop) {
        state.with_bot(token, |b| {
            if let Some(c) = b.call_mut(index) {
                c.status = Some(0);
            }
        });
        if let Some(kill) = kill {
            kill.0.notify_one();
        }
        // The connection task drops this future with the connection.
        std::future::pending::<()>().await;
    }
    let r = answer(&state, token, &method, &params, &uploads, fault).await;
    state.with_bot(token, |b| {
        if let Some(call) = b.call_mut(index) {
            call.status = Some(r.status());
            if let Reply::Updates(items) = &r {
                call.delivered = items.iter().map(|(id, _)| *id).collect();
            }
        }
    });
    reply(r)
}

async fn answer(
    state: &Arc<State>,
    token: &str,
    method: &str,
    params: &Params,
    uploads: &[super::multipart::Upload],
    fault: Option<Fault>,
) -> Reply {
    let mut stopped = state.stopped.clone();
    match fault {
        Some(Fault::RetryAfter(secs)) => return Reply::retry_after(secs),
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
        Some(Fault::Drop) | None => {}
    }
    if state.read_bot(token, |b| b.revoked) {
        return Reply::err(401, "Unauthorized");
    }
    if method == "getUpdates" {
        return get_updates(state, token, params).await.unwrap_or_else(|r| r);
    }
    let input = match media::MEDIA.iter().find(|(m, _)| *m == method) {
        Some((_, field)) => match media::input(state, field, params, uploads).await {
            Ok(i) => Some(i),
            Err(r) => return r,
        },
        None => None,
    };
    let certificate = uploads
        .iter()
        .find(|u| u.name == "certificate")
        .map(|u| u.bytes.clone());
    let r = state.with_inner(|inner| {
        method_call(state, inner, token, method, params, input, certificate).unwrap_or_else(|r| r)
    });
    if method == "setWebhook" && matches!(r, Reply::Ok(_)) {
        super::webhook::spawn(state, token);
    }
    r
}

/// Long polling with Telegram's offset semantics (see the module documentation).
async fn get_updates(state: &State, token: &str, p: &Params) -> Result<Reply, Reply> {
    let offset = int(p, "offset")?.unwrap_or(0);
    let limit = int(p, "limit")?.unwrap_or(100).clamp(1, 100) as usize;
    let timeout = int(p, "timeout")?.unwrap_or(0).clamp(0, 3600) as u64;
    let allowed = object(p, "allowed_updates")?;
    let generation = state.with_inner(|inner| {
        let b = inner.bots.get_mut(token).expect("bot registered");
        if b.webhook.is_some() {
            return Err(Reply::err(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ));
        }
        let freed = confirm(b, offset);
        if allowed.is_some() {
            b.allowed_updates = allowed;
        }
        b.poll_generation += 1;
        let generation = b.poll_generation;
        inner.pending_bytes = inner.pending_bytes.saturating_sub(freed);
        Ok(generation)
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
                .filter(|q| q.id >= offset)
                .take(limit)
                .map(|q| (q.id, q.text.clone()))
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
/// `-offset` for a negative one. Returns the bytes freed of control-API injections.
pub(super) fn confirm(b: &mut BotState, offset: i64) -> u64 {
    let mut freed = 0;
    let mut pop = |b: &mut BotState| {
        if let Some(q) = b.queue.pop_front()
            && q.counted
        {
            freed += q.text.len() as u64;
        }
    };
    if offset > 0 {
        while b.queue.front().is_some_and(|q| q.id < offset) {
            pop(b);
        }
    } else if offset < 0 {
        let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
        while b.queue.len() > keep {
            pop(b);
        }
    }
    freed
}
