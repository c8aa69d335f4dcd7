//! The control API under `/_sim/`, JSON in and out, for tests in any language and for people
//! with curl (documented in the README):
//!
//! - `POST /_sim/bot{token}/updates`: one Update object or an array; a missing `update_id` is
//!   assigned (so is a 0). Answers the update IDs.
//! - `POST /_sim/bot{token}/files?kind=photo&file_name=a.jpg`: the body's bytes become a file;
//!   answers its `file_id` (and `file_path`) to put into updates.
//! - `GET /_sim/bot{token}/sent[?since=SEQ]`: everything the bot did (sends, edits, deletes, chat
//!   actions, callback answers), in order.
//! - `GET /_sim/bot{token}/stats`: send counts in sliding windows against Telegram's limits.
//! - `POST /_sim/faults`: `{"token", "method" ("*": any), "fault", "count"}` and/or
//!   `{"enforce_limits": bool}`; faults are `{"retry_after":S}`, `{"status":N}`, `"hang"` (or
//!   `"timeout"`), `{"slow_ms":N}`, `"drop"`.
//! - `GET /_sim/bots`: the registered tokens.
//! - `POST /_sim/chats`: `{"chat": Chat, "bots": [token, ...]}` records a chat (its `type`
//!   decides how its messages are numbered: see `chats.rs`) with those bots in it.
//! - `POST /_sim/chats/{chat_id}/messages`: a Message without `message_id` and `chat`, posted
//!   by someone in a recorded chat and delivered to every bot in it; answers, per bot, its
//!   `bot_id`, the `update_id` and the `message_id` it got.
//!
//! Errors have the Bot API's shape. Unknown well-formed tokens are registered, as on the Bot
//! API side (not in strict mode).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State as AxumState};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::media::{UPLOAD_LIMIT, image_size};
use super::reply::{Reply, read_body, reply};
use super::{Fault, State};

const UPDATES_REQUEST_LIMIT: usize = 16 << 20;

pub(super) fn router() -> Router<Arc<State>> {
    Router::new()
        .route("/faults", post(faults))
        .route("/bots", get(bots))
        .route("/chats", post(add_chat))
        .route("/chats/{chat}/messages", post(chat_message))
        .route("/{bot}/updates", post(updates))
        .route("/{bot}/files", post(files))
        .route("/{bot}/sent", get(sent))
        .route("/{bot}/stats", get(stats))
}

/// The token of a `bot<token>` segment, if that bot exists (or was just registered).
fn bot<'a>(state: &State, segment: &'a str) -> Result<&'a str, Reply> {
    let token = segment
        .strip_prefix("bot")
        .ok_or_else(|| Reply::err(404, "Not Found"))?;
    if state.known(token) {
        Ok(token)
    } else {
        Err(Reply::err(401, "Unauthorized"))
    }
}

fn done(r: Result<Reply, Reply>) -> Response {
    reply(r.unwrap_or_else(|e| e))
}

async fn bots(AxumState(state): AxumState<Arc<State>>) -> Response {
    let mut tokens: Vec<String> = state.lock().bots.keys().cloned().collect();
    tokens.sort();
    reply(Reply::Ok(json!(tokens)))
}

async fn updates(
    AxumState(state): AxumState<Arc<State>>,
    Path(segment): Path<String>,
    req: Request,
) -> Response {
    done(async {
        let token = bot(&state, &segment)?;
        let (_, body) = read_body(req, UPDATES_REQUEST_LIMIT).await?;
        let value: Value =
            serde_json::from_slice(&body).map_err(|_| Reply::bad_request("can't parse JSON object"))?;
        let list = match value {
            Value::Array(items) => items,
            other => vec![other],
        };
        let mut batch = Vec::with_capacity(list.len());
        for u in list {
            if !u.is_object() {
                return Err(Reply::bad_request("an update must be a JSON object"));
            }
            // 0 counts as missing: Telegram's IDs are positive, and a template may carry it.
            let id = match u.get("update_id") {
                None | Some(Value::Null) => None,
                Some(v) if v.as_i64() == Some(0) => None,
                Some(v) => Some(
                    v.as_i64()
                        .filter(|id| *id >= 0)
                        .ok_or_else(|| Reply::bad_request("update_id must be a non-negative integer"))?,
                ),
            };
            batch.push((u, id));
        }
        let cap = state.config.pending_bytes_cap;
        state.with_inner(|inner| {
            let size: u64 = batch.iter().map(|(u, _)| u.to_string().len() as u64 + 24).sum();
            if inner.pending_bytes + size > cap {
                return Err(Reply::err(
                    413,
                    &format!(
                        "Request Entity Too Large: simulator update queue full ({} of {cap} bytes waiting); confirm updates first",
                        inner.pending_bytes
                    ),
                ));
            }
            let mut ids = Vec::with_capacity(batch.len());
            let mut added = 0;
            for (u, id) in batch {
                let (id, len) = inner.enqueue(token, u, id, true);
                added += len as u64;
                ids.push(id);
            }
            inner.pending_bytes += added;
            Ok(Reply::Ok(json!(ids)))
        })
    }
    .await)
}

async fn add_chat(AxumState(state): AxumState<Arc<State>>, req: Request) -> Response {
    done(
        async {
            let (_, body) = read_body(req, 64 * 1024).await?;
            let v: Value =
                serde_json::from_slice(&body).map_err(|_| Reply::bad_request("can't parse JSON object"))?;
            let chat = v.get("chat").cloned().unwrap_or(Value::Null);
            let tokens: Vec<String> = match v.get("bots") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|t| t.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| Reply::bad_request("bots must be an array of tokens"))?,
                Some(_) => return Err(Reply::bad_request("bots must be an array of tokens")),
            };
            for t in &tokens {
                bot(&state, &format!("bot{t}"))?;
            }
            state.with_inner(|inner| {
                let id = inner.chats.put(&chat).ok_or_else(|| {
                    Reply::bad_request(
                        "chat must have an integer id and a type (private, group, supergroup or channel)",
                    )
                })?;
                for t in &tokens {
                    let b = inner.bots.get(t).expect("checked above");
                    inner.chats.record(&b.last_message_id, t, &chat);
                }
                let members = inner.chats.get(id).map_or(0, |c| c.members.len());
                Ok(Reply::Ok(json!({"chat": chat, "bots": members})))
            })
        }
        .await,
    )
}

async fn chat_message(
    AxumState(state): AxumState<Arc<State>>,
    Path(chat): Path<i64>,
    req: Request,
) -> Response {
    done(
        async {
            let (_, body) = read_body(req, UPDATES_REQUEST_LIMIT).await?;
            let v: Value =
                serde_json::from_slice(&body).map_err(|_| Reply::bad_request("can't parse JSON object"))?;
            let Value::Object(fields) = v else {
                return Err(Reply::bad_request("a message must be a JSON object"));
            };
            let cap = state.config.pending_bytes_cap;
            state.with_inner(|inner| {
                let members = inner.chats.get(chat).map_or(0, |c| c.members.len() as u64);
                let size = (Value::Object(fields.clone()).to_string().len() as u64 + 256) * members;
                if inner.pending_bytes + size > cap {
                    return Err(Reply::err(
                        413,
                        "Request Entity Too Large: simulator update queue full; confirm updates first",
                    ));
                }
                let delivered = inner
                    .post_to_chat(chat, &fields)
                    .ok_or_else(|| Reply::bad_request("chat not found"))?;
                let out: Vec<Value> = delivered
                .into_iter()
                .map(|(bot_id, update_id, message_id)| {
                    json!({"bot_id": bot_id, "update_id": update_id, "message_id": message_id})
                })
                .collect();
                Ok(Reply::Ok(json!(out)))
            })
        }
        .await,
    )
}

#[derive(serde::Deserialize)]
struct FileQuery {
    kind: Option<String>,
    file_name: Option<String>,
}

async fn files(
    AxumState(state): AxumState<Arc<State>>,
    Path(segment): Path<String>,
    Query(q): Query<FileQuery>,
    req: Request,
) -> Response {
    done(
        async {
            let token = bot(&state, &segment)?;
            let (_, body) = read_body(req, UPLOAD_LIMIT).await?;
            if body.is_empty() {
                return Err(Reply::bad_request("file must be non-empty"));
            }
            let kind = q.kind.as_deref().unwrap_or("document");
            let (dir, default_ext) = match kind {
                "photo" => ("photos", "jpg"),
                "video" => ("videos", "mp4"),
                "voice" => ("voice", "oga"),
                "audio" => ("music", "mp3"),
                "video_note" => ("video_notes", "mp4"),
                "sticker" => ("stickers", "webp"),
                "animation" => ("animations", "mp4"),
                "document" => ("documents", "bin"),
                _ => {
                    return Err(Reply::bad_request(
                        "unknown kind (photo, video, voice, audio, video_note, sticker, animation, document)",
                    ));
                }
            };
            let ext = q
                .file_name
                .as_deref()
                .and_then(|n| n.rsplit_once('.'))
                .map(|(_, e)| e.to_ascii_lowercase())
                .filter(|e| !e.is_empty() && e.len() <= 5 && e.bytes().all(|c| c.is_ascii_alphanumeric()))
                .unwrap_or_else(|| default_ext.to_owned());
            let size = body.len();
            let dims = image_size(&body);
            let cap = state.config.file_bytes_cap;
            let (file_id, path) = state
                .with_inner(|inner| inner.store_file(token, cap, dir, &ext, body))
                .map_err(|e| Reply::err(413, &format!("Request Entity Too Large: {e}")))?;
            let unique = state.read_bot(token, |b| b.files.get(&file_id).map(|f| f.unique_id.clone()));
            let mut result = json!({
                "file_id": file_id,
                "file_unique_id": unique,
                "file_size": size,
                "file_path": path,
            });
            if let Some((w, h)) = dims {
                result["width"] = json!(w);
                result["height"] = json!(h);
            }
            Ok(Reply::Ok(result))
        }
        .await,
    )
}

#[derive(serde::Deserialize)]
struct SentQuery {
    since: Option<u64>,
}

async fn sent(
    AxumState(state): AxumState<Arc<State>>,
    Path(segment): Path<String>,
    Query(q): Query<SentQuery>,
) -> Response {
    done(bot(&state, &segment).map(|token| {
        let since = q.since.unwrap_or(0);
        let items: Vec<Value> = state.read_bot(token, |b| {
            b.activity
                .iter()
                .filter(|a| a.seq > since)
                .map(|a| serde_json::to_value(a).unwrap_or(Value::Null))
                .collect()
        });
        Reply::Ok(json!(items))
    }))
}

async fn stats(AxumState(state): AxumState<Arc<State>>, Path(segment): Path<String>) -> Response {
    done(bot(&state, &segment).map(|token| {
        let mut s = state.read_bot(token, |b| {
            let mut s = b.limits.stats();
            let mut methods = serde_json::Map::new();
            for a in &b.activity {
                let n = methods.entry(a.method.clone()).or_insert(json!(0));
                *n = json!(n.as_u64().unwrap_or(0) + 1);
            }
            s["methods"] = Value::Object(methods);
            s
        });
        s["enforce_limits"] = json!(state.enforcing());
        Reply::Ok(s)
    }))
}

/// A fault as the control API spells it.
fn parse_fault(v: &Value) -> Option<Fault> {
    match v {
        Value::String(s) => match s.as_str() {
            "hang" | "timeout" => Some(Fault::Hang),
            "drop" => Some(Fault::Drop),
            _ => None,
        },
        Value::Object(o) => {
            if let Some(s) = o.get("retry_after") {
                return Some(Fault::RetryAfter(u32::try_from(s.as_u64()?).ok()?));
            }
            if let Some(s) = o.get("status") {
                let code = u16::try_from(s.as_u64()?)
                    .ok()
                    .filter(|c| (400..600).contains(c))?;
                return Some(Fault::Status(code));
            }
            if let Some(ms) = o.get("slow_ms") {
                return Some(Fault::Slow(Duration::from_millis(ms.as_u64()?)));
            }
            None
        }
        _ => None,
    }
}

async fn faults(AxumState(state): AxumState<Arc<State>>, req: Request) -> Response {
    done(async {
        let (_, body) = read_body(req, 64 * 1024).await?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| Reply::bad_request("can't parse JSON object"))?;
        let mut result = json!({});
        if let Some(on) = v.get("enforce_limits") {
            let on = on
                .as_bool()
                .ok_or_else(|| Reply::bad_request("enforce_limits must be true or false"))?;
            state.enforce_limits.store(on, Ordering::Relaxed);
            result["enforce_limits"] = json!(on);
        }
        if let Some(f) = v.get("fault") {
            let fault = parse_fault(f).ok_or_else(|| {
                Reply::bad_request(
                    r#"fault must be {"retry_after":S}, {"status":N}, "hang", "timeout", {"slow_ms":N} or "drop""#,
                )
            })?;
            let token = v
                .get("token")
                .and_then(Value::as_str)
                .ok_or_else(|| Reply::bad_request("token is empty"))?;
            let token = bot(&state, &format!("bot{token}"))?.to_owned();
            let method = v.get("method").and_then(Value::as_str).unwrap_or("*").to_owned();
            let count = v.get("count").map_or(Some(1), Value::as_u64).ok_or_else(|| Reply::bad_request("count must be a number"))?;
            let count = usize::try_from(count.min(1_000_000)).unwrap_or(1);
            state.with_bot(&token, |b| {
                b.faults
                    .entry(method)
                    .or_default()
                    .extend(std::iter::repeat_n(fault, count));
            });
            result["scheduled"] = json!(count);
        }
        if result.as_object().is_some_and(|o| o.is_empty()) {
            return Err(Reply::bad_request("nothing to do: give fault (with token) or enforce_limits"));
        }
        Ok(Reply::Ok(result))
    }
    .await)
}
