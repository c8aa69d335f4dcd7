//! The exports as streamed bytes: the PDF transcript job, a chat as JSON Lines, and an
//! account's archive as a tar (format in docs/export.md). Each job runs on a blocking thread
//! and sends its output over a bounded channel ([`Out`]); when the client goes away the send
//! fails and the job stops.

use crate::view::notes::NoteDto;
use bytes::Bytes;
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::fonts::Fonts;
use super::merge::Merger;
use super::pdf::{Entry, Header, Rendered, Renderer};
use super::source::{ChatHead, Messages, Period};
use super::{ExportError, ExportOptions, local_time};
use crate::attachments::Attachments;
use crate::attachments::tables::Role;
use crate::auth::Grants;
use crate::store::Store;
use crate::view::dto::chat_id;
use crate::view::visible;

/// Where a job's bytes go: the HTTP body's bounded channel.
pub type Out = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Pieces buffered between a job and the client.
pub const AHEAD: usize = 4;

/// Largest thumbnail (or small photo) drawn into a transcript.
const THUMB_MAX_BYTES: u64 = 1 << 20;

fn send(out: &Out, bytes: Vec<u8>) -> Result<(), ExportError> {
    out.blocking_send(Ok(Bytes::from(bytes)))
        .map_err(|_| ExportError::Closed)
}

/// A stored file's plaintext, decrypted in memory; `None` when it is not (yet) available or
/// larger than `max`.
fn read_file(rt: &Handle, att: &Attachments, id: u64, max: u64) -> Option<Vec<u8>> {
    rt.block_on(async {
        let o = att.open_plaintext(id).await.ok()?;
        if o.len() > max {
            return None;
        }
        let mut rx = o.range(0, o.len());
        let mut buf = Vec::with_capacity(o.len() as usize);
        while let Some(piece) = rx.recv().await {
            buf.extend_from_slice(&piece.ok()?);
        }
        Some(buf)
    })
}

/// Most notes one transcript draws.
const MAX_NOTES: usize = 10_000;

/// Everything a PDF export needs, gathered by the route before the response starts.
pub struct PdfJob {
    pub store: Store,
    pub attachments: Attachments,
    pub grants: Grants,
    pub chat: ChatHead,
    pub period: Period,
    pub thumbnails: bool,
    /// Draw the chat's private notes among the messages.
    pub notes: bool,
    pub exported_by: String,
    pub options: ExportOptions,
    pub rt: Handle,
}

/// Renders the transcript into `out`.
pub fn pdf(job: PdfJob, fonts: &Fonts, out: &Out) -> Result<Rendered, ExportError> {
    let zone = job.options.zone().map_err(ExportError::BadRequest)?;
    let when = |t: Option<i64>| t.map(|t| local_time(&zone, t));
    let period = match (when(job.period.from), when(job.period.to)) {
        (None, None) => "the whole conversation".to_string(),
        (f, t) => format!(
            "{} to {}",
            f.unwrap_or_else(|| "the beginning".into()),
            t.unwrap_or_else(|| "the end".into())
        ),
    };
    let now = jiff::Timestamp::now().as_second();
    let header = Header {
        box_name: job.options.box_name.clone(),
        account: job.chat.accounts.join(", "),
        chat_title: job.chat.title.clone(),
        chat_kind: job.chat.kind.to_string(),
        period,
        exported_by: job.exported_by.clone(),
        exported_at: local_time(&zone, now),
    };
    let mut sink = |b: Vec<u8>| send(out, b);
    let mut r = Renderer::new(fonts, Merger::new(&mut sink), &job.chat.title);
    r.header(&header);
    let mut msgs = Messages::new(
        job.store.clone(),
        job.grants.clone(),
        job.chat.key,
        job.period,
        true,
    );
    // Notes are few next to messages (people write them): read once, drawn in time order.
    let mut notes: std::collections::VecDeque<NoteDto> = if job.notes {
        let r = job.store.reader()?;
        let mut all = crate::view::notes::list(&r, job.chat.key, u64::MAX, MAX_NOTES)?;
        all.retain(|n| job.period.holds(n.at));
        all.reverse();
        all.into()
    } else {
        Default::default()
    };
    let mut draw_notes = |r: &mut Renderer<'_, '_>, before: Option<i64>| -> Result<(), ExportError> {
        while let Some(n) = notes.front() {
            if before.is_some_and(|t| n.at >= t) {
                break;
            }
            let n = notes.pop_front().expect("front exists");
            let by = n.by.name.clone().unwrap_or_else(|| format!("user {}", n.by.user));
            r.note(&by, &local_time(&zone, n.at), &n.text)?;
        }
        Ok(())
    };
    while let Some(batch) = msgs.next_batch()? {
        for row in batch {
            draw_notes(&mut r, Some(row.msg.date))?;
            let thumb = job
                .thumbnails
                .then(|| {
                    let id = row
                        .files
                        .iter()
                        .find(|f| f.0 == Role::Thumbnail)
                        .or_else(|| {
                            row.files
                                .iter()
                                .find(|f| f.0 == Role::Main && row.msg.kind == "photo")
                        })?
                        .1;
                    read_file(&job.rt, &job.attachments, id, THUMB_MAX_BYTES)
                })
                .flatten();
            r.entry(Entry {
                time: local_time(&zone, row.msg.date),
                msg: row.msg,
                reply_excerpt: row.reply_excerpt,
                thumbnail: thumb,
            })?;
        }
    }
    draw_notes(&mut r, None)?;
    r.finish()
}

/// The chat as JSON Lines: one message a line, in the API's message shape, oldest first.
pub fn jsonl(
    store: Store,
    grants: Grants,
    chat: &ChatHead,
    period: Period,
    out: &Out,
) -> Result<u64, ExportError> {
    let mut msgs = Messages::new(store, grants, chat.key, period, false);
    let mut n = 0;
    while let Some(batch) = msgs.next_batch()? {
        let mut buf = Vec::new();
        for row in batch {
            serde_json::to_writer(&mut buf, &row.msg).map_err(|e| ExportError::Pdf(e.to_string()))?;
            buf.push(b'\n');
            n += 1;
        }
        send(out, buf)?;
    }
    Ok(n)
}

/// One tar (ustar) header block.
fn tar_header(name: &str, size: u64, mtime: i64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = name.as_bytes();
    let n = name.len().min(99);
    h[..n].copy_from_slice(&name[..n]);
    let put = |h: &mut [u8; 512], at: usize, len: usize, v: String| {
        let b = v.as_bytes();
        h[at..at + b.len().min(len)].copy_from_slice(&b[..b.len().min(len)]);
    };
    put(&mut h, 100, 8, "0000644\0".into());
    put(&mut h, 108, 8, "0000000\0".into());
    put(&mut h, 116, 8, "0000000\0".into());
    put(&mut h, 124, 12, format!("{size:011o}\0"));
    put(&mut h, 136, 12, format!("{:011o}\0", mtime.max(0)));
    h[156] = b'0';
    put(&mut h, 257, 8, "ustar\u{0}00".into());
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, 8, format!("{sum:06o}\0 "));
    h
}

fn tar_file(out: &Out, name: &str, data: Vec<u8>, mtime: i64) -> Result<(), ExportError> {
    let mut block = tar_header(name, data.len() as u64, mtime).to_vec();
    let pad = (512 - data.len() % 512) % 512;
    block.extend_from_slice(&data);
    block.resize(block.len() + pad, 0);
    send(out, block)
}

/// A file name safe inside the archive (no separators, at most 40 bytes).
fn safe_name(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        let c = if c.is_alphanumeric() || ".-_".contains(c) {
            c
        } else {
            '_'
        };
        if out.len() + c.len_utf8() > 40 {
            break;
        }
        out.push(c);
    }
    out
}

#[derive(Serialize)]
struct ChatLine<'a> {
    id: &'a str,
    kind: &'a str,
    title: &'a str,
    messages_file_prefix: String,
}

#[derive(Serialize)]
struct Skipped {
    chat: String,
    message: i64,
    attachment: u64,
    reason: &'static str,
}

/// Messages per `messages-NNNNNN.jsonl` part of the account archive.
const PART: usize = 1000;

/// An account's archive: `account.json`, `chats.jsonl`, each chat's messages as JSON Lines
/// parts, and every stored attachment decrypted under `chats/<chat>/files/`.
pub fn account_tar(
    store: Store,
    attachments: Attachments,
    account: u64,
    name: &str,
    rt: Handle,
    out: &Out,
) -> Result<(), ExportError> {
    let now = jiff::Timestamp::now().as_second();
    let meta = serde_json::json!({"format": "lanbox-archive-1", "account": account, "name": name, "exported_at": now});
    tar_file(out, "account.json", meta.to_string().into_bytes(), now)?;
    let g = Grants::Only(vec![account]);
    let chats: Vec<ChatHead> = {
        let r = store.reader()?;
        let keys: Vec<_> = visible::chats(&r, &g)?.into_iter().map(|(k, _)| k).collect();
        drop(r);
        let mut v = Vec::new();
        for k in keys {
            if let Some(h) = super::source::chat_head(&store, &g, k)? {
                v.push(h);
            }
        }
        v
    };
    let mut lines = Vec::new();
    for c in &chats {
        let line = ChatLine {
            id: &c.id,
            kind: c.kind,
            title: &c.title,
            messages_file_prefix: format!("chats/{}_{}/", c.key.scope, c.key.chat),
        };
        serde_json::to_writer(&mut lines, &line).map_err(|e| ExportError::Pdf(e.to_string()))?;
        lines.push(b'\n');
    }
    tar_file(out, "chats.jsonl", lines, now)?;
    let mut skipped = Vec::new();
    for c in &chats {
        let dir = format!("chats/{}_{}", c.key.scope, c.key.chat);
        let mut msgs = Messages::new(store.clone(), g.clone(), c.key, Period::default(), false);
        let (mut part, mut in_part, mut n) = (Vec::new(), 0usize, 0u32);
        while let Some(batch) = msgs.next_batch()? {
            for row in batch {
                serde_json::to_writer(&mut part, &row.msg).map_err(|e| ExportError::Pdf(e.to_string()))?;
                part.push(b'\n');
                in_part += 1;
                for (role, id) in &row.files {
                    let Ok(o) = rt.block_on(attachments.open_plaintext(*id)) else {
                        skipped.push(Skipped {
                            chat: chat_id(c.key),
                            message: row.msg.id,
                            attachment: *id,
                            reason: "not stored",
                        });
                        continue;
                    };
                    let label = match role {
                        Role::Main => "file",
                        Role::Thumbnail => "thumb",
                        Role::Upload => "upload",
                    };
                    let fname = safe_name(o.info.file_name.as_deref().unwrap_or(""));
                    let path = format!("{dir}/files/{}-{label}-{id}-{fname}", row.msg.id);
                    stream_file(&rt, out, &path, &o, row.msg.date)?;
                }
                if in_part == PART {
                    n += 1;
                    tar_file(
                        out,
                        &format!("{dir}/messages-{n:06}.jsonl"),
                        std::mem::take(&mut part),
                        now,
                    )?;
                    in_part = 0;
                }
            }
        }
        if in_part > 0 {
            n += 1;
            tar_file(out, &format!("{dir}/messages-{n:06}.jsonl"), part, now)?;
        }
    }
    let mut sk = Vec::new();
    for s in &skipped {
        serde_json::to_writer(&mut sk, s).map_err(|e| ExportError::Pdf(e.to_string()))?;
        sk.push(b'\n');
    }
    tar_file(out, "skipped.jsonl", sk, now)?;
    send(out, vec![0u8; 1024])
}

/// One attachment into the tar, decrypted piece by piece (a 2 GB video never sits in memory).
fn stream_file(
    rt: &Handle,
    out: &Out,
    path: &str,
    o: &crate::attachments::read::Opened,
    mtime: i64,
) -> Result<(), ExportError> {
    let len = o.len();
    send(out, tar_header(path, len, mtime).to_vec())?;
    rt.block_on(async {
        let mut rx = o.range(0, len);
        let mut sent = 0u64;
        while let Some(piece) = rx.recv().await {
            // A file that fails midway cannot be taken back from a stream: the archive ends
            // with an error (the client sees a broken download, never wrong bytes).
            let piece = piece.map_err(|e| ExportError::Attachment(e.to_string()))?;
            sent += piece.len() as u64;
            out.send(Ok(piece)).await.map_err(|_| ExportError::Closed)?;
        }
        if sent != len {
            return Err(ExportError::Attachment("file shorter than recorded".into()));
        }
        Ok(())
    })?;
    let pad = ((512 - len % 512) % 512) as usize;
    send(out, vec![0u8; pad])
}
