//! The attachment store as the outbox's [`AttachmentSource`]: a file uploaded with
//! `POST /api/v1/attachments` is sent by streaming its plaintext, decrypted chunk by chunk,
//! into the Bot API's multipart upload. Only the account that owns an upload may send it.

use std::future::Future;
use std::pin::Pin;

use futures_util::StreamExt;

use super::Attachments;
use crate::outbox::attach::{AttachmentSource, ByteStream, MAX_UPLOAD_BYTES};
use crate::outbox::record::AttachmentRef;

/// Wraps the store for [`crate::outbox::Outbox::set_attachments`].
pub struct ForOutbox(pub Attachments);

fn parse(a: &AttachmentRef) -> Result<u64, String> {
    a.id.parse().map_err(|_| "not an attachment id".to_owned())
}

impl AttachmentSource for ForOutbox {
    fn check<'a>(
        &'a self,
        account: u64,
        attachment: &'a AttachmentRef,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            let id = parse(attachment)?;
            let rec = self
                .0
                .record(id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no such attachment".to_owned())?;
            if rec.owner != account {
                return Err("the attachment was uploaded for another account".into());
            }
            if rec.size.unwrap_or(0) > MAX_UPLOAD_BYTES {
                return Err("the file is larger than the Bot API's 50 MB upload limit".into());
            }
            Ok(())
        })
    }

    fn open<'a>(
        &'a self,
        account: u64,
        attachment: &'a AttachmentRef,
    ) -> Pin<Box<dyn Future<Output = Result<ByteStream, String>> + Send + 'a>> {
        Box::pin(async move {
            let id = parse(attachment)?;
            let opened = self.0.open_plaintext(id).await.map_err(|e| e.to_string())?;
            if opened.record.owner != account {
                return Err("the attachment was uploaded for another account".into());
            }
            let rx = opened.range(0, opened.len());
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                let item = rx.recv().await?;
                Some((item.map_err(|e| std::io::Error::other(e.to_string())), rx))
            });
            Ok(stream.boxed())
        })
    }
}
