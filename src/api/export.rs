//! Export routes: a chat's PDF transcript and JSON Lines (anyone who may see the chat), an
//! account's archive (admins). Checks (grants, parameters, fonts) happen before the response
//! starts, so they answer with the error shape; the export itself then streams from a blocking
//! thread over a bounded channel (`crate::export`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::ApiError;
use super::admin::Admin;
use super::extract::{Path, Query};
use super::inbox::chat_key;
use crate::auth::Caller;
use crate::export::archive::{self, AHEAD, Out, PdfJob};
use crate::export::fonts::Fonts;
use crate::export::source::{self, ChatHead, Period};
use crate::export::{ExportError, ExportOptions};
use crate::service::Service;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdfQuery {
    from: Option<i64>,
    to: Option<i64>,
    notes: Option<String>,
    media: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonQuery {
    from: Option<i64>,
    to: Option<i64>,
}

fn period(from: Option<i64>, to: Option<i64>) -> Result<Period, ApiError> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::BadRequest("`from` is after `to`".into()));
    }
    Ok(Period { from, to })
}

async fn head(s: &Service, caller: &Caller, chat: &str) -> Result<ChatHead, ApiError> {
    let key = chat_key(chat)?;
    let (store, g) = (s.store.clone(), caller.grants.clone());
    tokio::task::spawn_blocking(move || source::chat_head(&store, &g, key))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??
        .ok_or(ApiError::NotFound)
}

/// A streamed response fed by `job` on a blocking thread. A failure after the first byte can
/// only cut the stream short (logged without content); the client sees an incomplete file.
fn stream(
    running: crate::export::Running,
    content_type: &'static str,
    file_name: String,
    what: &'static str,
    job: impl FnOnce(&Out) -> Result<(), ExportError> + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(AHEAD);
    tokio::task::spawn_blocking(move || {
        let _running = running;
        match job(&tx) {
            Ok(()) | Err(ExportError::Closed) => {}
            Err(e) => {
                tracing::warn!(export = what, error = %e, "export stopped midway");
                let _ = tx.blocking_send(Err(std::io::Error::other("export failed")));
            }
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    }));
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// A place among the running exports, or 429.
fn place(s: &Service) -> Result<crate::export::Running, ApiError> {
    s.exports.start().ok_or(ApiError::TooManyRequests)
}

fn file_stem(chat: &ChatHead) -> String {
    format!("lanbox-chat-{}_{}", chat.key.scope, chat.key.chat)
}

/// `GET /api/v1/chats/{chat}/export.pdf`
pub async fn pdf(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<PdfQuery>,
) -> Result<Response, ApiError> {
    let period = period(q.from, q.to)?;
    // Private notes stay out unless asked for: a transcript is often for someone outside.
    let notes = match q.notes.as_deref() {
        None | Some("exclude") => false,
        Some("include") => true,
        Some(_) => return Err(ApiError::BadRequest("notes is include or exclude".into())),
    };
    let thumbnails = match q.media.as_deref() {
        None | Some("thumbnails") => true,
        Some("none") => false,
        Some(_) => return Err(ApiError::BadRequest("media is thumbnails or none".into())),
    };
    let chat = head(&s, &caller, &id).await?;
    let running = place(&s)?;
    let options: ExportOptions = s.options.export.clone();
    options.zone().map_err(ApiError::Internal)?;
    let dir = options.fonts_dir.clone();
    let fonts = tokio::task::spawn_blocking(move || Fonts::load(&dir))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))??;
    s.pipeline
        .record_export(chat.key, caller.user, "pdf", (period.from, period.to))
        .await?;
    let name = format!("{}.pdf", file_stem(&chat));
    let job = PdfJob {
        store: s.store.clone(),
        attachments: s.attachments.clone(),
        grants: caller.grants.clone(),
        chat,
        period,
        thumbnails,
        notes,
        exported_by: caller.name.clone(),
        options,
        rt: tokio::runtime::Handle::current(),
    };
    Ok(stream(running, "application/pdf", name, "pdf", move |out| {
        let done = archive::pdf(job, &fonts, out)?;
        if done.layout.notdef > 0 || done.layout.replaced > 0 || done.overflow > 0 {
            tracing::warn!(
                notdef = done.layout.notdef,
                replaced = done.layout.replaced,
                overflow = done.overflow,
                "export: characters without a glyph in the installed fonts, or drawn off the page"
            );
        }
        Ok(())
    }))
}

/// `GET /api/v1/chats/{chat}/export.json`: JSON Lines.
pub async fn json(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<JsonQuery>,
) -> Result<Response, ApiError> {
    let period = period(q.from, q.to)?;
    let chat = head(&s, &caller, &id).await?;
    let running = place(&s)?;
    s.pipeline
        .record_export(chat.key, caller.user, "jsonl", (period.from, period.to))
        .await?;
    let name = format!("{}.jsonl", file_stem(&chat));
    let (store, g) = (s.store.clone(), caller.grants.clone());
    Ok(stream(running, "application/jsonl", name, "jsonl", move |out| {
        archive::jsonl(store, g, &chat, period, out).map(|_| ())
    }))
}

/// `GET /api/v1/accounts/{account}/export.tar` (admins): the account's whole archive.
pub async fn account(
    State(s): State<Service>,
    Admin(_caller): Admin,
    Path(account): Path<u64>,
) -> Result<Response, ApiError> {
    let store = s.store.clone();
    let rec = s
        .store
        .read(move |r| r.account(account))
        .await?
        .ok_or(ApiError::NotFound)?;
    let running = place(&s)?;
    let att = s.attachments.clone();
    let rt = tokio::runtime::Handle::current();
    let name = format!("lanbox-account-{account}.tar");
    Ok(stream(
        running,
        "application/x-tar",
        name,
        "account archive",
        move |out| archive::account_tar(store, att, account, &rec.name, rt, out),
    ))
}
