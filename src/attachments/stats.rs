//! Read-only figures of the box's storage and of the attachment queues, for the admin system
//! page (`GET /api/v1/stats`, admins only): the database file's size, free space on the data
//! directory's filesystem, the local attachment store, and the fetch, S3 upload and S3 delete
//! backlogs.
//!
//! Most figures are cheap: two `stat`-like syscalls and redb table lengths (kept in each
//! table's root, O(1)). Two are not: the local store's bytes and file count need a directory
//! listing, and failed fetches have no queue of their own, so counting them reads every
//! attachment record. Those are counted at most once per [`StatsCache`] period (concurrent
//! callers wait for the one count in flight) and reported with the time they were counted.
//! Nothing here reads file contents or names.

use std::path::Path;
use std::time::{Duration, Instant};

use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;

use super::tables::{
    ATTACHMENT_FETCH, ATTACHMENT_RECORD, ATTACHMENT_SYNC, ATTACHMENT_UNSYNC, AttachmentRecord, State,
};
use super::{AttachmentError, Attachments};
use crate::store::StoreError;

/// How long the counted figures are reused by default.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30);

/// Storage use of the box.
#[derive(Debug, Clone, Serialize)]
pub struct Storage {
    /// Size of the database file (`lanbox.redb`) on disk.
    pub database_bytes: u64,
    /// Space an unprivileged process may still use on the data directory's filesystem.
    pub disk_free_bytes: u64,
    /// Size of the data directory's filesystem.
    pub disk_total_bytes: u64,
    /// Encrypted attachment files on local disk, and their bytes (counted, see `counted_at`).
    pub attachment_files: u64,
    pub attachment_bytes: u64,
    /// With S3: local bytes kept as a cache of synced files. Without S3 the local store is the
    /// only copy and has no limit: `None`.
    pub cache_limit_bytes: Option<u64>,
}

/// The attachment subsystem's queues.
#[derive(Debug, Clone, Serialize)]
pub struct Queues {
    /// Whether an S3-compatible bucket is configured.
    pub s3_configured: bool,
    /// Files stored locally and waiting to be uploaded to the bucket.
    pub sync_backlog: u64,
    /// Objects waiting to be deleted from the bucket.
    pub delete_backlog: u64,
    /// Files waiting to be fetched from Telegram (including retries after a failure).
    pub fetch_backlog: u64,
    /// Files whose fetch was given up on (counted, see `counted_at`).
    pub failed: u64,
    /// Attachments known (fetched, pending, failed, uploads).
    pub attachments: u64,
}

/// What `GET /api/v1/stats` reports to admins as `system`.
#[derive(Debug, Clone, Serialize)]
pub struct SystemStats {
    pub storage: Storage,
    pub attachments: Queues,
    /// Unix seconds when the counted figures (local files and bytes, failed fetches) were
    /// counted; they are reused for a short period.
    pub counted_at: i64,
}

/// The figures that need a listing or a scan.
#[derive(Debug, Clone, Copy)]
struct Counted {
    at: Instant,
    at_unix: i64,
    files: u64,
    bytes: u64,
    failed: u64,
}

/// Keeps the expensive figures for `period`. One per API state.
#[derive(Debug)]
pub struct StatsCache {
    period: Duration,
    counted: tokio::sync::Mutex<Option<Counted>>,
}

impl Default for StatsCache {
    fn default() -> Self {
        StatsCache::new(DEFAULT_PERIOD)
    }
}

impl StatsCache {
    pub fn new(period: Duration) -> StatsCache {
        StatsCache {
            period,
            counted: tokio::sync::Mutex::new(None),
        }
    }

    /// The current figures of `a`'s box.
    pub async fn system(&self, a: &Attachments) -> Result<SystemStats, AttachmentError> {
        let counted = self.counted(a).await?;
        let dir = a.store().dir().to_path_buf();
        let (database_bytes, (disk_free_bytes, disk_total_bytes)) = tokio::task::spawn_blocking(move || {
            let db = dir.join(crate::store::DB_FILE);
            let size = std::fs::metadata(&db).map_err(io(&db))?.len();
            let space = crate::system::disk::space(&dir).map_err(io(&dir))?;
            Ok::<_, AttachmentError>((size, (space.available, space.total)))
        })
        .await
        .map_err(|_| AttachmentError::Stopped)??;
        let (fetch_backlog, sync_backlog, delete_backlog, attachments) = a
            .store()
            .read(|r| {
                let t = r.txn();
                Ok((
                    t.open_table(ATTACHMENT_FETCH)?.len()?,
                    t.open_table(ATTACHMENT_SYNC)?.len()?,
                    t.open_table(ATTACHMENT_UNSYNC)?.len()?,
                    t.open_table(ATTACHMENT_RECORD)?.len()?,
                ))
            })
            .await?;
        let s3 = a.s3().is_some();
        Ok(SystemStats {
            storage: Storage {
                database_bytes,
                disk_free_bytes,
                disk_total_bytes,
                attachment_files: counted.files,
                attachment_bytes: counted.bytes,
                cache_limit_bytes: s3.then_some(a.options().cache_bytes),
            },
            attachments: Queues {
                s3_configured: s3,
                sync_backlog,
                delete_backlog,
                fetch_backlog,
                failed: counted.failed,
                attachments,
            },
            counted_at: counted.at_unix,
        })
    }

    async fn counted(&self, a: &Attachments) -> Result<Counted, AttachmentError> {
        let mut slot = self.counted.lock().await;
        if let Some(c) = *slot
            && c.at.elapsed() < self.period
        {
            return Ok(c);
        }
        let dir = a.local().dir().to_path_buf();
        let (files, bytes) = tokio::task::spawn_blocking(move || local_files(&dir))
            .await
            .map_err(|_| AttachmentError::Stopped)??;
        let failed = a.store().read(|r| count_failed(r.txn())).await?;
        let c = Counted {
            at: Instant::now(),
            at_unix: crate::store::ctx::unix_now(),
            files,
            bytes,
            failed,
        };
        *slot = Some(c);
        Ok(c)
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AttachmentError + '_ {
    move |source| AttachmentError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Encrypted files (`*.lba`) in the local store and their bytes; `.part` files being written
/// are not counted.
fn local_files(dir: &Path) -> Result<(u64, u64), AttachmentError> {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        if entry.path().extension().is_some_and(|e| e == "lba") {
            // A file removed between listing and stat is simply not counted.
            if let Ok(m) = entry.metadata() {
                files += 1;
                bytes += m.len();
            }
        }
    }
    Ok((files, bytes))
}

/// Attachment records whose fetch was given up on.
fn count_failed(txn: &redb::ReadTransaction) -> Result<u64, StoreError> {
    let t = txn.open_table(ATTACHMENT_RECORD)?;
    let mut n = 0;
    for row in t.iter()? {
        let (_, v) = row?;
        let rec: AttachmentRecord = v.value().get()?;
        n += u64::from(matches!(rec.state, State::Failed(_)));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_files_counts_only_finished_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0000000000000001.lba"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("0000000000000002.lba"), [0u8; 50]).unwrap();
        std::fs::write(dir.path().join("0000000000000003.part"), [0u8; 70]).unwrap();
        assert_eq!(local_files(dir.path()).unwrap(), (2, 150));
    }
}
