//! Overwriting the database file's free pages, so that what was deleted cannot be read back
//! from the raw file.
//!
//! redb never zeroes a page it frees: after an account is released, old copies of its sealed
//! records (and of its wrapped data key) stay in free pages until they happen to be reused, and
//! the master key could still unwrap a key found there. [`Store::scrub_free_pages`] closes that:
//! it lets redb's pending frees settle (two small commits), then fills the free pages with a
//! scratch table of zeros, a few MiB per transaction (bounded memory on a 2 GB board), until
//! the file has to grow because no free page is left; then it drops the table. The freed pages
//! now hold zeros, and the file is at most one chunk larger than before. New pages start zeroed
//! (redb allocates them over a zero-filled buffer), so the zeros fill whole pages.
//!
//! It costs a write of the file's free space: after a release that is about the size of what
//! was released. Everything goes through the single writer, between other jobs.

use std::path::PathBuf;

use super::tables::{META, SCRUB_FILL};
use super::{DB_FILE, Store, StoreError};

/// A meta flag set and cleared again: two small commits that let pending frees settle.
const SETTLE: &str = "scrub_settle";
/// A meta flag present while a scrub is owed (see [`Store::mark_scrub_pending`]).
const PENDING: &str = "scrub_pending";
/// Bytes of zeros written per transaction.
const CHUNK: u64 = 4 << 20;
/// Bytes per scratch value: small, so leaves are packed and each takes a free page of its own.
const VALUE: usize = 512;
/// Weight of one fill job (a round holds about this much of other work beside it).
const WEIGHT: usize = 1_000;

/// What a scrub did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// Bytes of zeros written over free pages (and, in the last chunk, past the old end).
    pub bytes_written: u64,
    /// The file's length before and after.
    pub file_before: u64,
    pub file_after: u64,
}

impl Store {
    /// Records that a scrub is owed (before the deletes it is to follow), so that a crash before
    /// it ends leaves [`Store::scrub_pending`] true and the next start runs it.
    pub async fn mark_scrub_pending(&self) -> Result<(), StoreError> {
        self.write(1, |ctx| ctx.set_meta_flag(PENDING, Some(ctx.now as u64)))
            .await
    }

    /// Whether a scrub was owed and has not ended.
    pub fn scrub_pending(&self) -> Result<bool, StoreError> {
        let r = self.reader()?;
        let meta = r.txn().open_table(META)?;
        Ok(redb::ReadableTable::get(&meta, PENDING)?.is_some())
    }

    /// Overwrites every free page of the database file with zeros; see the module documentation.
    pub async fn scrub_free_pages(&self) -> Result<Scrubbed, StoreError> {
        let path = self.dir().join(DB_FILE);
        // Pages freed by the last commits become reusable only after later commits.
        for value in [Some(1), None] {
            self.write(1, move |ctx| ctx.set_meta_flag(SETTLE, value)).await?;
        }
        let file_before = file_len(&path)?;
        let mut done = Scrubbed {
            file_before,
            ..Scrubbed::default()
        };
        let mut next_key = 0u64;
        // A bound for the loop: the file cannot have more free bytes than its length.
        while done.bytes_written <= file_before + CHUNK {
            let from = next_key;
            let values = (CHUNK as usize).div_ceil(VALUE) as u64;
            self.write(WEIGHT, move |ctx| {
                let mut t = ctx.txn().open_table(SCRUB_FILL)?;
                let zeros = [0u8; VALUE];
                for k in from..from + values {
                    t.insert(k, zeros.as_slice())?;
                }
                Ok(())
            })
            .await?;
            next_key += values;
            done.bytes_written += CHUNK;
            if file_len(&path)? > file_before {
                break;
            }
        }
        self.write(1, |ctx| {
            ctx.txn().delete_table(SCRUB_FILL)?;
            ctx.set_meta_flag(PENDING, None)
        })
        .await?;
        done.file_after = file_len(&path)?;
        tracing::info!(
            written = done.bytes_written,
            before = done.file_before,
            after = done.file_after,
            "free pages overwritten"
        );
        Ok(done)
    }
}

fn file_len(path: &PathBuf) -> Result<u64, StoreError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })
}
