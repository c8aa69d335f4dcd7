//! Files sent with a message: what the outbox needs from the attachment store.
//!
//! An item carries an [`AttachmentRef`](super::record::AttachmentRef) (the store's opaque id
//! plus name, type and size); at send time the worker asks an [`AttachmentSource`] for the
//! bytes as a stream and uploads them as multipart form data, so a 50 MB file never sits in
//! memory. Until a source is configured ([`super::Outbox::set_attachments`]), file sends are
//! refused with [`super::OutboxError::FilesUnavailable`].

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use super::record::AttachmentRef;

/// An attachment's plaintext bytes, in chunks, for one upload.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Largest file the Bot API accepts in an upload (`sendDocument` and friends): 50 MB.
pub const MAX_UPLOAD_BYTES: u64 = 50 * 1000 * 1000;

/// Implemented by the attachment store.
pub trait AttachmentSource: Send + Sync + 'static {
    /// Whether `attachment` exists and `account` may send it (checked when the send is queued).
    fn check<'a>(
        &'a self,
        account: u64,
        attachment: &'a AttachmentRef,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

    /// Opens the bytes for upload. The error text must not contain file content.
    fn open<'a>(
        &'a self,
        account: u64,
        attachment: &'a AttachmentRef,
    ) -> Pin<Box<dyn Future<Output = Result<ByteStream, String>> + Send + 'a>>;
}
