//! Files the team sends: an upload streams into the spool encrypted under the account's key
//! while it arrives (bounded memory for up to 2 GB), then becomes an attachment record the
//! outbox can send, queued for S3 when a bucket is configured.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::tables::{self, AttachmentRecord, Role, State, Tables, UploadMeta};
use super::{AttachmentError, Attachments};

/// Why an upload was not stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error("the upload is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the upload was interrupted")]
    Interrupted,
    #[error(transparent)]
    Attachment(#[from] AttachmentError),
}

impl From<crate::store::StoreError> for UploadError {
    fn from(e: crate::store::StoreError) -> Self {
        UploadError::Attachment(e.into())
    }
}

impl Attachments {
    /// Stores the bytes of `body` as a file `account` can send; returns its ID and size. At
    /// most `upload_limit` bytes are accepted; nothing is recorded when the body fails.
    pub async fn upload<E>(
        &self,
        account: u64,
        meta: UploadMeta,
        body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    ) -> Result<(u64, u64), UploadError> {
        let limit = self.options().upload_limit;
        let (id, sealer) = self
            .store()
            .write(1, move |ctx| {
                let sealer = ctx.sealer(account)?;
                let mut t = Tables::open(ctx.txn())?;
                let id = t.next_id()?;
                Ok((id, sealer))
            })
            .await?;
        let (tx, rx) = mpsc::channel(8);
        let writer = super::sink::spawn_writer(self, id, sealer, rx, None);
        let mut body = body;
        let mut got = 0u64;
        let mut failed = None;
        while let Some(piece) = body.next().await {
            match piece {
                Ok(p) => {
                    got += p.len() as u64;
                    if got > limit {
                        failed = Some(UploadError::TooLarge(limit));
                        break;
                    }
                    if tx.send(Some(p)).await.is_err() {
                        break;
                    }
                }
                Err(_) => {
                    failed = Some(UploadError::Interrupted);
                    break;
                }
            }
        }
        if failed.is_none() {
            let _ = tx.send(None).await;
        }
        drop(tx);
        let written = writer.await.map_err(|_| AttachmentError::Stopped)?;
        if let Some(e) = failed {
            return Err(e);
        }
        let size = written?;
        let s3 = self.s3().is_some();
        self.store()
            .write(1, move |ctx| {
                let mut t = Tables::open(ctx.txn())?;
                t.put(&AttachmentRecord {
                    id,
                    owner: account,
                    accounts: vec![account],
                    msg: None,
                    role: Role::Upload,
                    kind: None,
                    state: State::Ready,
                    size: Some(size),
                    announced: None,
                    synced: false,
                    local: true,
                    attempts: 0,
                    created_at: ctx.now,
                    meta: Some(ctx.sealer(account)?.seal_record(&meta, &tables::meta_aad(id))?),
                })?;
                if s3 {
                    t.sync.insert(id, 0)?;
                }
                Ok(())
            })
            .await?;
        if s3 {
            self.inner.wake_sync.notify_one();
        }
        Ok((id, size))
    }
}
