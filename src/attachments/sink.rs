//! The encrypting writer: a blocking thread that takes plaintext chunks off a bounded
//! channel, encrypts them ([`super::crypt::Encryptor`]), writes the ciphertext to the local
//! store and optionally tees it into a streaming S3 upload. Used by the fetcher and by uploads.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::crypt::Encryptor;
use super::{AttachmentError, Attachments};
use crate::store::seal::Sealer;

/// Chunks buffered between the download and the encrypting writer.
pub(crate) const PIPE_CHUNKS: usize = 8;
/// Ciphertext gathered before it is written and teed: fewer, larger writes and request-body
/// frames, still a bounded buffer.
const FLUSH_BYTES: usize = 256 << 10;

/// Encrypts and writes what arrives on `rx` (`None` ends the file) on a blocking thread.
/// Returns the plaintext size; a channel closed without `None` aborts the file.
pub(crate) fn spawn_writer(
    a: &Attachments,
    id: u64,
    sealer: Arc<Sealer>,
    mut rx: mpsc::Receiver<Option<bytes::Bytes>>,
    mut tee: Option<mpsc::Sender<bytes::Bytes>>,
) -> tokio::task::JoinHandle<Result<u64, AttachmentError>> {
    let local = a.local().clone();
    let cipher = a.store().cipher();
    tokio::task::spawn_blocking(move || {
        let mut part = local.create(id)?;
        let mut enc = Encryptor::new(sealer.key(), cipher, id)?;
        let mut out = Vec::with_capacity(FLUSH_BYTES + super::crypt::SEALED_CHUNK * 2);
        loop {
            match rx.blocking_recv() {
                Some(Some(chunk)) => {
                    enc.update(&chunk, &mut out);
                    if out.len() < FLUSH_BYTES {
                        continue;
                    }
                    if let Err(e) = part.write(&out) {
                        part.abort();
                        return Err(e);
                    }
                    tee_out(&mut tee, &out);
                    out.clear();
                }
                Some(None) => break,
                None => {
                    part.abort();
                    return Err(AttachmentError::Stopped);
                }
            }
        }
        let size = enc.finish(&mut out);
        part.write(&out)?;
        tee_out(&mut tee, &out);
        part.commit()?;
        Ok(size)
    })
}

/// Hands ciphertext to the streaming upload; a failed upload stops the tee, not the fetch.
fn tee_out(tee: &mut Option<mpsc::Sender<bytes::Bytes>>, out: &[u8]) {
    if out.is_empty() {
        return;
    }
    if let Some(t) = tee
        && t.blocking_send(bytes::Bytes::copy_from_slice(out)).is_err()
    {
        *tee = None;
    }
}
