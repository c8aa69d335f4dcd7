//! The S3 syncer: works through the durable `attachment_sync` (upload) and
//! `attachment_unsync` (delete) queues. Entries leave a queue only in the transaction that
//! records success, so a crash or an S3 outage loses nothing: failures are rescheduled with
//! exponential backoff (capped) and everything goes up when the server returns. Uploads run
//! one at a time: the board's uplink, not parallelism, is the limit, and memory stays bounded.
//!
//! Once a file is in the bucket, the local copy is a cache: when the local store grows past
//! `cache_bytes`, the oldest synced files are dropped from disk (downloads then read the
//! bucket).

use std::collections::HashMap;
use std::time::Duration;

use redb::ReadableTable;
use tokio::sync::watch;

use super::s3::S3;
use super::tables::{self, ATTACHMENT_RECORD, ATTACHMENT_SYNC, ATTACHMENT_UNSYNC, Tables};
use super::{AttachmentError, Attachments, now};

/// Queue entries taken per round.
const ROUND: usize = 32;

pub async fn run(a: Attachments, mut stop: watch::Receiver<bool>) {
    let Some(s3) = a.s3().cloned() else { return };
    let mut bucket_ok = false;
    let mut failures: HashMap<u64, u32> = HashMap::new();
    let mut outage = 0u32;
    loop {
        if *stop.borrow() {
            break;
        }
        let mut wait = Duration::from_secs(30);
        if !bucket_ok {
            match s3.ensure_bucket().await {
                Ok(()) => {
                    bucket_ok = true;
                    outage = 0;
                }
                Err(e) => {
                    outage += 1;
                    tracing::warn!(error = %e, "S3 bucket not reachable; attachments stay queued");
                    wait = a.backoff(outage);
                }
            }
        }
        if bucket_ok {
            match sync_round(&a, &s3, &mut failures).await {
                Ok(Some(next)) => wait = next,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "S3 sync round");
                    wait = a.backoff(1);
                }
            }
            if let Err(e) = evict(&a).await {
                tracing::warn!(error = %e, "evicting synced attachments from the local cache");
            }
        }
        tokio::select! {
            _ = super::stopped(&mut stop) => break,
            _ = a.inner.wake_sync.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass over what is due. Returns how long until the next entry is due, if any waits.
pub async fn sync_round(
    a: &Attachments,
    s3: &S3,
    failures: &mut HashMap<u64, u32>,
) -> Result<Option<Duration>, AttachmentError> {
    let now_s = now();
    let (ups, downs, next) = a
        .store()
        .read(move |r| {
            let ups = tables::read_due(r.txn(), ATTACHMENT_SYNC, now_s, ROUND)?;
            let downs = tables::read_due(r.txn(), ATTACHMENT_UNSYNC, now_s, ROUND)?;
            let mut next: Option<u64> = None;
            for q in [ATTACHMENT_SYNC, ATTACHMENT_UNSYNC] {
                let t = r.txn().open_table(q)?;
                // Bounded per round; entries further on are reached as earlier ones leave.
                for row in t.iter()?.take(4096) {
                    let at = row?.1.value();
                    if at > now_s {
                        next = Some(next.map_or(at, |n| n.min(at)));
                    }
                }
            }
            Ok((ups, downs, next))
        })
        .await?;
    let mut more = ups.len() == ROUND || downs.len() == ROUND;
    for id in ups {
        let path = a.local().path(id);
        let result = if path.exists() {
            s3.upload_file(&S3::object_key(id), &path).await
        } else {
            // Nothing to upload (deleted meanwhile): the record decides below.
            Ok(())
        };
        match result {
            Ok(()) => {
                failures.remove(&id);
                a.store()
                    .write(1, move |ctx| {
                        let mut t = Tables::open(ctx.txn())?;
                        t.sync.remove(id)?;
                        match t.get(id)? {
                            Some(mut rec) if rec.local => {
                                rec.synced = true;
                                t.put(&rec)?;
                            }
                            Some(_) => {}
                            // Deleted while uploading: the object must go too.
                            None => {
                                t.unsync.insert(id, 0)?;
                            }
                        }
                        Ok(())
                    })
                    .await?;
            }
            Err(e) => {
                let n = failures.entry(id).or_default();
                *n += 1;
                let at = now() + a.backoff(*n).as_secs().max(1);
                tracing::info!(attachment = id, error = %e, "S3 upload failed; will retry");
                a.store()
                    .write(1, move |ctx| {
                        let mut t = Tables::open(ctx.txn())?;
                        if t.sync.get(id)?.is_some() {
                            t.sync.insert(id, at)?;
                        }
                        Ok(())
                    })
                    .await?;
                more = false;
                if e.is_transient() {
                    // The server is probably down: stop this round, back off.
                    break;
                }
            }
        }
    }
    for id in downs {
        match s3.delete(&S3::object_key(id)).await {
            Ok(()) => {
                a.store()
                    .write(1, move |ctx| {
                        let mut t = Tables::open(ctx.txn())?;
                        t.unsync.remove(id)?;
                        Ok(())
                    })
                    .await?;
            }
            Err(e) => {
                let n = failures.entry(id).or_default();
                *n += 1;
                let at = now() + a.backoff(*n).as_secs().max(1);
                tracing::info!(attachment = id, error = %e, "S3 delete failed; will retry");
                a.store()
                    .write(1, move |ctx| {
                        let mut t = Tables::open(ctx.txn())?;
                        t.unsync.insert(id, at)?;
                        Ok(())
                    })
                    .await?;
                more = false;
                break;
            }
        }
    }
    if more {
        return Ok(Some(Duration::ZERO));
    }
    Ok(next.map(|at| Duration::from_secs(at.saturating_sub(now()).max(1))))
}

/// Drops local copies of synced files, oldest first, until the cache fits.
pub async fn evict(a: &Attachments) -> Result<(), AttachmentError> {
    let limit = a.options().cache_bytes;
    let local = a.local().clone();
    let usage = tokio::task::spawn_blocking(move || local.usage())
        .await
        .map_err(|_| AttachmentError::Stopped)??;
    if usage <= limit {
        return Ok(());
    }
    let mut excess = usage - limit;
    let candidates = a
        .store()
        .read(|r| {
            let t = r.txn().open_table(ATTACHMENT_RECORD)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let rec: tables::AttachmentRecord = row?.1.value().get()?;
                if rec.synced && rec.local {
                    out.push((rec.id, super::crypt::ciphertext_len(rec.size.unwrap_or(0))));
                }
            }
            Ok(out)
        })
        .await?;
    for (id, len) in candidates {
        if excess == 0 {
            break;
        }
        // Record first: a download that starts now goes to the bucket.
        a.store()
            .write(1, move |ctx| {
                let mut t = Tables::open(ctx.txn())?;
                if let Some(mut rec) = t.get(id)? {
                    rec.local = false;
                    t.put(&rec)?;
                }
                Ok(())
            })
            .await?;
        a.local().remove(id)?;
        excess = excess.saturating_sub(len);
    }
    Ok(())
}
