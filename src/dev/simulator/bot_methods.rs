//! Every Bot API method but `getUpdates`, run under the state lock, and file downloads. Errors
//! use Telegram's own descriptions ("Bad Request: message to edit not found", ...).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State as AxumState};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::media::{self, Input, MB};
use super::params::{Params, int, object, string, truthy};
use super::reply::{Reply, reply, unix_now};
use super::state::{BotState, Inner, SentRecord, Webhook};
use super::{Activity, SentMessage, State};

const TEXT_LIMIT: usize = 4096;
/// Bots can download files up to 20 MB.
const GET_FILE_LIMIT: usize = 20 * MB;

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

fn activity(method: &str, chat_id: Option<i64>, message_id: Option<i64>) -> Activity {
    Activity {
        seq: 0,
        method: method.to_owned(),
        chat_id,
        message_id,
        text: None,
        action: None,
        callback_query_id: None,
        message: None,
        unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

/// Every method but `getUpdates`. `input` is the resolved file of a media send; `certificate`
/// the file part of that name (setWebhook).
pub(super) fn method_call(
    state: &State,
    inner: &mut Inner,
    token: &str,
    method: &str,
    p: &Params,
    input: Option<Input>,
    certificate: Option<Bytes>,
) -> Result<Reply, Reply> {
    let required_chat = |p: &Params| int(p, "chat_id")?.ok_or_else(|| Reply::bad_request("chat_id is empty"));
    let required_message = |p: &Params| {
        int(p, "message_id")?.ok_or_else(|| Reply::bad_request("message identifier is not specified"))
    };
    let enforce = state.enforcing();
    // A send: over a limit (when enforced) it is refused, otherwise counted.
    let admit = |b: &mut BotState, chat_id: i64| {
        let now = Instant::now();
        if enforce && let Some(secs) = b.limits.check(chat_id, now) {
            return Err(Reply::retry_after(secs));
        }
        b.limits.record(chat_id, now);
        Ok(())
    };
    if let Some(input) = input {
        let chat_id = required_chat(p)?;
        let field = media::MEDIA
            .iter()
            .find(|(m, _)| *m == method)
            .map_or("document", |(_, f)| f);
        if enforce {
            let b = inner.bots.get_mut(token).expect("bot registered");
            if let Some(secs) = b.limits.check(chat_id, Instant::now()) {
                return Err(Reply::retry_after(secs));
            }
        }
        let (media, caption) = media::send(inner, token, state.config.file_bytes_cap, field, p, input)?;
        let chat = inner.chats.object(chat_id);
        let message_id = inner.next_message_id(token, chat_id);
        let b = inner.bots.get_mut(token).expect("bot registered");
        b.limits.record(chat_id, Instant::now());
        let mut m = message(b, chat, message_id, None, None);
        set_reply(&mut m, object(p, "reply_parameters")?.as_ref());
        m[field] = media;
        if let Some(c) = &caption {
            m["caption"] = json!(c);
        }
        b.messages.insert(
            (chat_id, message_id),
            SentRecord {
                text: None,
                message: m.clone(),
            },
        );
        let mut a = activity(method, Some(chat_id), Some(message_id));
        a.text = caption;
        a.message = Some(m.clone());
        b.log(a);
        return Ok(Reply::Ok(m));
    }
    // Disjoint borrows: the bot, and the chats (whose sequences number its sends).
    let Inner { bots, chats, .. } = &mut *inner;
    let b = bots.get_mut(token).expect("bot registered");
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
            if text.chars().count() > TEXT_LIMIT {
                return Err(Reply::bad_request("message is too long"));
            }
            let thread = int(p, "message_thread_id")?;
            let reply_parameters = object(p, "reply_parameters")?;
            admit(b, chat_id)?;
            let message_id = chats.next_message_id(&mut b.last_message_id, chat_id);
            b.sent.push(SentMessage {
                chat_id,
                message_id,
                text: text.clone(),
                reply_parameters,
                message_thread_id: thread,
            });
            let mut m = message(b, chats.object(chat_id), message_id, Some(&text), None);
            set_reply(&mut m, object(p, "reply_parameters")?.as_ref());
            b.messages.insert(
                (chat_id, message_id),
                SentRecord {
                    text: Some(text.clone()),
                    message: m.clone(),
                },
            );
            let mut a = activity(method, Some(chat_id), Some(message_id));
            a.text = Some(text);
            a.message = Some(m.clone());
            b.log(a);
            Reply::Ok(m)
        }
        "sendChatAction" => {
            let chat_id = required_chat(p)?;
            let action = string(p, "action").unwrap_or_default();
            if !CHAT_ACTIONS.contains(&action.as_str()) {
                return Err(Reply::bad_request("wrong parameter action in request"));
            }
            let mut a = activity(method, Some(chat_id), None);
            a.action = Some(action);
            b.log(a);
            Reply::Ok(json!(true))
        }
        "editMessageText" => {
            if string(p, "inline_message_id").is_some() {
                return Err(Reply::bad_request("MESSAGE_ID_INVALID"));
            }
            let (chat_id, message_id) = (required_chat(p)?, required_message(p)?);
            let text = string(p, "text").unwrap_or_default();
            if text.is_empty() {
                return Err(Reply::bad_request("message text is empty"));
            }
            if text.chars().count() > TEXT_LIMIT {
                return Err(Reply::bad_request("MESSAGE_TOO_LONG"));
            }
            let record = b
                .messages
                .get(&(chat_id, message_id))
                .ok_or_else(|| Reply::bad_request("message to edit not found"))?;
            match &record.text {
                None => return Err(Reply::bad_request("there is no text in the message to edit")),
                Some(t) if *t == text => {
                    return Err(Reply::bad_request(
                        "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                    ));
                }
                Some(_) => {}
            }
            let mut m = record.message.clone();
            m["text"] = json!(text);
            m["edit_date"] = json!(unix_now());
            b.messages.insert(
                (chat_id, message_id),
                SentRecord {
                    text: Some(text.clone()),
                    message: m.clone(),
                },
            );
            let mut a = activity(method, Some(chat_id), Some(message_id));
            a.text = Some(text);
            a.message = Some(m.clone());
            b.log(a);
            Reply::Ok(m)
        }
        "deleteMessage" => {
            let (chat_id, message_id) = (required_chat(p)?, required_message(p)?);
            if b.messages.remove(&(chat_id, message_id)).is_none() {
                return Err(Reply::bad_request(
                    if b.deleted.contains(&(chat_id, message_id)) {
                        "message to delete not found"
                    } else {
                        "message can't be deleted"
                    },
                ));
            }
            b.deleted.insert((chat_id, message_id));
            b.log(activity(method, Some(chat_id), Some(message_id)));
            Reply::Ok(json!(true))
        }
        "answerCallbackQuery" => {
            let id = string(p, "callback_query_id").unwrap_or_default();
            if id.is_empty() {
                return Err(Reply::bad_request("query_id is empty"));
            }
            if !b.callbacks.remove(&id) {
                return Err(Reply::bad_request(
                    "query is too old and response timeout expired or query ID is invalid",
                ));
            }
            let mut a = activity(method, None, None);
            a.callback_query_id = Some(id);
            a.text = string(p, "text").filter(|t| !t.is_empty());
            b.log(a);
            Reply::Ok(json!(true))
        }
        "getFile" => {
            let file_id = string(p, "file_id").unwrap_or_default();
            let f = b
                .files
                .get(&file_id)
                .ok_or_else(|| Reply::bad_request("invalid file_id"))?;
            if !state.config.local_api && f.bytes.len() > GET_FILE_LIMIT {
                return Err(Reply::bad_request("file is too big"));
            }
            Reply::Ok(json!({
                "file_id": file_id,
                "file_unique_id": f.unique_id,
                "file_size": f.bytes.len(),
                "file_path": f.path,
            }))
        }
        "setWebhook" => {
            let url = string(p, "url").unwrap_or_default();
            if url.is_empty() {
                b.webhook = None;
            } else {
                check_webhook_url(&url)?;
                let secret = string(p, "secret_token");
                let secret_ok = secret.as_deref().is_none_or(|s| {
                    (1..=256).contains(&s.len())
                        && s.bytes()
                            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                });
                if !secret_ok {
                    return Err(Reply::bad_request("secret token contains unallowed characters"));
                }
                let certificate = certificate.map(|c| parse_certificate(&c)).transpose()?;
                let max_connections = int(p, "max_connections")?.unwrap_or(40).clamp(1, 100) as u32;
                b.webhook_generation += 1;
                b.webhook = Some(Webhook {
                    url,
                    secret,
                    certificate,
                    max_connections,
                    generation: b.webhook_generation,
                });
                b.last_error = None;
                if let Some(a) = object(p, "allowed_updates")? {
                    b.allowed_updates = Some(a);
                }
            }
            if matches!(p.get("drop_pending_updates"), Some(v) if truthy(v)) {
                drop_pending(inner, token);
            }
            Reply::Ok(json!(true))
        }
        "deleteWebhook" => {
            b.webhook = None;
            if matches!(p.get("drop_pending_updates"), Some(v) if truthy(v)) {
                drop_pending(inner, token);
            }
            Reply::Ok(json!(true))
        }
        "getWebhookInfo" => Reply::Ok(webhook_info(b)),
        _ => Reply::err(404, "Not Found"),
    })
}

fn drop_pending(inner: &mut Inner, token: &str) {
    let b = inner.bots.get_mut(token).expect("bot registered");
    let freed: u64 = b
        .queue
        .drain(..)
        .filter(|q| q.counted)
        .map(|q| q.text.len() as u64)
        .sum();
    inner.pending_bytes = inner.pending_bytes.saturating_sub(freed);
}

/// Telegram wants HTTPS on port 443, 80, 88 or 8443. The simulator also takes plain HTTP and
/// any port on loopback, where test endpoints live.
fn check_webhook_url(url: &str) -> Result<(), Reply> {
    let bad = |what: &str| Reply::bad_request(&format!("bad webhook: {what}"));
    let parsed = reqwest::Url::parse(url).map_err(|_| bad("invalid URL"))?;
    let host = parsed.host_str().ok_or_else(|| bad("invalid URL"))?;
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback && matches!(parsed.scheme(), "http" | "https") {
        return Ok(());
    }
    if parsed.scheme() != "https" {
        return Err(bad("An HTTPS URL must be provided for webhook"));
    }
    if !matches!(parsed.port_or_known_default(), Some(443 | 80 | 88 | 8443)) {
        return Err(bad("Webhook can be set up only on ports 80, 88, 443 or 8443"));
    }
    Ok(())
}

/// The DER of an uploaded certificate (PEM or DER).
fn parse_certificate(bytes: &[u8]) -> Result<Vec<u8>, Reply> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    if bytes.starts_with(b"-----BEGIN") {
        return CertificateDer::from_pem_slice(bytes)
            .map(|c| c.to_vec())
            .map_err(|_| Reply::bad_request("bad webhook: Failed to parse the certificate"));
    }
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    Err(Reply::bad_request("bad webhook: Failed to parse the certificate"))
}

pub(in crate::dev::simulator) fn webhook_info(b: &BotState) -> Value {
    let mut info = json!({
        "url": b.webhook.as_ref().map_or("", |w| w.url.as_str()),
        "has_custom_certificate": b.webhook.as_ref().is_some_and(|w| w.certificate.is_some()),
        "pending_update_count": b.queue.len(),
    });
    if let Some(w) = &b.webhook {
        info["max_connections"] = json!(w.max_connections);
        if let Some(a) = &b.allowed_updates {
            info["allowed_updates"] = a.clone();
        }
        if let Some((date, message)) = &b.last_error {
            info["last_error_date"] = json!(date);
            info["last_error_message"] = json!(message);
        }
    }
    info
}

/// A message the bot sent, as Telegram returns it (text, if any, included).
/// Telegram returns the answered message inside a reply (`reply_to_message`); the simulator
/// knows its ID and chat, which is what a client reads back.
fn set_reply(m: &mut Value, reply_parameters: Option<&Value>) {
    let Some(id) = reply_parameters
        .and_then(|r| r.get("message_id"))
        .and_then(Value::as_i64)
    else {
        return;
    };
    m["reply_to_message"] = json!({
        "message_id": id,
        "chat": m["chat"].clone(),
        "date": m["date"].clone(),
    });
}

/// `chat` is the Chat object as the simulator knows it (its type recorded, see `chats.rs`).
fn message(b: &BotState, chat: Value, message_id: i64, text: Option<&str>, edit_date: Option<i64>) -> Value {
    let mut m = json!({
        "message_id": message_id,
        "from": { "id": b.id, "is_bot": true, "first_name": b.username, "username": b.username },
        "chat": chat,
        "date": unix_now(),
    });
    if let Some(t) = text {
        m["text"] = json!(t);
    }
    if let Some(d) = edit_date {
        m["edit_date"] = json!(d);
    }
    m
}

pub(super) async fn download(
    AxumState(state): AxumState<Arc<State>>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    let found = bot.strip_prefix("bot").and_then(|token| {
        let inner = state.lock();
        let b = inner.bots.get(token).filter(|b| !b.revoked)?;
        let id = b.paths.get(&path)?;
        b.files.get(id).map(|f| f.bytes.clone())
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
