//! Reading a stored attachment's plaintext, by range, from the local file or (once evicted)
//! from the bucket. Only the chunks covering the range are read and opened, so seeking in a
//! 2 GB video costs a chunk or two; a producer task hands decrypted pieces over a bounded
//! channel, so memory stays at a few chunks.
//!
//! [`Attachments::open_plaintext`] is also what the outbox uses to send a stored file.

use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

use super::crypt::{CHUNK, Decryptor, HEADER, chunks_for};
use super::s3::S3;
use super::tables::{self, AttachmentRecord, Role, State};
use super::{AttachmentError, Attachments};
use crate::model::{Attachment, Body, MediaKind};

/// Decrypted pieces buffered ahead of the consumer.
const AHEAD: usize = 4;

/// What a download shows about a file (from the sealed message content).
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub kind: Option<MediaKind>,
    pub role: Role,
}

enum Source {
    Local(PathBuf),
    Bucket(S3, String),
}

/// An attachment opened for reading.
pub struct Opened {
    pub record: AttachmentRecord,
    pub info: FileInfo,
    dec: std::sync::Arc<Decryptor>,
    source: std::sync::Arc<Source>,
}

impl Opened {
    pub fn len(&self) -> u64 {
        self.dec.plain_len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole plaintext as a streaming request body, for sending the file on: e.g.
    /// `reqwest::multipart::Part::stream_with_length(opened.body(), opened.len())`. A read or
    /// authentication failure midway ends the body with an error (never with wrong bytes).
    pub fn body(&self) -> reqwest::Body {
        use futures_util::StreamExt;
        let rx = self.range(0, self.len());
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            let item = rx.recv().await?;
            Some((item.map_err(|e| std::io::Error::other(e.to_string())), rx))
        });
        reqwest::Body::wrap_stream(stream.boxed())
    }

    /// Plaintext bytes `start..end` (end exclusive, within the file), as a bounded stream.
    pub fn range(&self, start: u64, end: u64) -> mpsc::Receiver<Result<Bytes, AttachmentError>> {
        let (tx, rx) = mpsc::channel(AHEAD);
        let dec = self.dec.clone();
        let source = self.source.clone();
        let id = self.record.id;
        tokio::spawn(async move {
            if start >= end {
                return;
            }
            if let Err(e) = produce(&source, &dec, id, start, end, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }
}

async fn produce(
    source: &Source,
    dec: &Decryptor,
    id: u64,
    start: u64,
    end: u64,
    tx: &mpsc::Sender<Result<Bytes, AttachmentError>>,
) -> Result<(), AttachmentError> {
    let chunks = chunks_for(start, end);
    let (first_off, _) = dec.chunk_span(*chunks.start())?;
    let (last_off, last_len) = dec.chunk_span(*chunks.end())?;
    let span = last_off + last_len as u64 - first_off;
    let io = |path: &PathBuf| {
        let p = path.display().to_string();
        move |source| AttachmentError::Io { path: p, source }
    };
    enum Reader {
        File(tokio::io::BufReader<tokio::fs::File>),
        Http(reqwest::Response, Vec<u8>),
    }
    let mut reader = match source {
        Source::Local(path) => {
            let mut f = tokio::fs::File::open(path).await.map_err(io(path))?;
            f.seek(std::io::SeekFrom::Start(first_off))
                .await
                .map_err(io(path))?;
            Reader::File(tokio::io::BufReader::with_capacity(128 << 10, f))
        }
        Source::Bucket(s3, key) => Reader::Http(s3.get_range(key, first_off, span).await?, Vec::new()),
    };
    for i in chunks {
        let (_, len) = dec.chunk_span(i)?;
        let mut buf = Vec::with_capacity(len);
        match &mut reader {
            Reader::File(f) => {
                buf.resize(len, 0);
                f.read_exact(&mut buf)
                    .await
                    .map_err(|source| AttachmentError::Io {
                        path: format!("attachment {id}"),
                        source,
                    })?;
            }
            Reader::Http(resp, carry) => {
                buf.append(carry);
                while buf.len() < len {
                    let piece = resp
                        .chunk()
                        .await
                        .map_err(|e| super::S3Error::Network(e.without_url().to_string()))?
                        .ok_or(super::S3Error::BadResponse("object shorter than recorded"))?;
                    buf.extend_from_slice(&piece);
                }
                *carry = buf.split_off(len);
            }
        }
        dec.open_chunk(i, &mut buf)?;
        let base = i * CHUNK as u64;
        let from = start.saturating_sub(base) as usize;
        let to = ((end - base) as usize).min(buf.len());
        let piece = Bytes::from(buf).slice(from..to);
        if tx.send(Ok(piece)).await.is_err() {
            return Ok(());
        }
    }
    Ok(())
}

impl Attachments {
    /// Opens a stored attachment for reading its plaintext (downloads, and the outbox when it
    /// sends a file: `open_plaintext(id)?.range(0, len)` streams the whole file).
    pub async fn open_plaintext(&self, id: u64) -> Result<Opened, AttachmentError> {
        let (record, info, sealer) = self
            .store()
            .read(move |r| {
                let Some(rec) = tables::read_record(r.txn(), id)? else {
                    return Ok(None);
                };
                let mut info = FileInfo {
                    mime_type: None,
                    file_name: None,
                    kind: rec.kind,
                    role: rec.role,
                };
                if let Some(key) = rec.message()
                    && let Some(stored) = r.stored_message(key)?
                    && let Body::Media(m) = r.open_content(key, &stored)?.body
                {
                    let att: Option<Attachment> = match rec.role {
                        Role::Main => Some(m.file),
                        Role::Thumbnail => m.thumbnail,
                        Role::Upload => None,
                    };
                    if let Some(att) = att {
                        info.mime_type = att.mime_type;
                        info.file_name = att.file_name;
                    }
                }
                let sealer = r.sealer(rec.owner)?;
                if let Some(sealed) = &rec.meta {
                    let meta: tables::UploadMeta = sealer.open_record(sealed, &tables::meta_aad(rec.id))?;
                    info.file_name = meta.file_name;
                    info.mime_type = meta.mime_type;
                }
                Ok(Some((rec, info, sealer)))
            })
            .await?
            .ok_or(AttachmentError::NotFound(id))?;
        if record.state != State::Ready {
            return Err(AttachmentError::NotReady(id));
        }
        let path = self.local().path(id);
        let local = tokio::fs::metadata(&path).await.ok().map(|m| m.len());
        let (source, len, header) = match (local, self.s3()) {
            (Some(len), _) => {
                let mut f = tokio::fs::File::open(&path)
                    .await
                    .map_err(|source| AttachmentError::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                let mut header = [0u8; HEADER];
                f.read_exact(&mut header)
                    .await
                    .map_err(|source| AttachmentError::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                (Source::Local(path), len, header)
            }
            (None, Some(s3)) if record.synced => {
                let key = S3::object_key(id);
                let len = s3.head(&key).await?.ok_or(AttachmentError::NotReady(id))?;
                let header: [u8; HEADER] = s3
                    .get_range(&key, 0, HEADER as u64)
                    .await?
                    .bytes()
                    .await
                    .map_err(|e| super::S3Error::Network(e.without_url().to_string()))?
                    .as_ref()
                    .try_into()
                    .map_err(|_| super::S3Error::BadResponse("short header"))?;
                (Source::Bucket(s3.clone(), key), len, header)
            }
            _ => return Err(AttachmentError::NotReady(id)),
        };
        let dec = Decryptor::new(sealer.key(), &header, id, len)?;
        Ok(Opened {
            record,
            info,
            dec: std::sync::Arc::new(dec),
            source: std::sync::Arc::new(source),
        })
    }
}
