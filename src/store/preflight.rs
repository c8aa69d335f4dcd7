//! Before the store opens its files for writing: are they what a box left behind?
//!
//! A damaged file must stop the box with a message naming it, never be "repaired" or taken for
//! a new box behind the operator's back (`docs/data-safety.md`). So [`Store::open`] first:
//! - refuses a missing or empty (0-byte) database beside an existing `master.key` (redb would
//!   start a brand-new database in it, and the box would ask for a new setup code), and a
//!   master key of the wrong length;
//! - verifies every page checksum of an existing database with redb's own integrity check,
//!   run over a [`Shadow`] of the file: reads come from the file, opened read-only, and
//!   whatever redb would write (the header on open, a crash recovery, a repair) stays in
//!   memory. A clean file passes unchanged; a damaged one (pages that fail their checksums,
//!   roots that do not verify, a truncated file) is refused without a byte written;
//! - checks, on the same shadow, that the master key opens every account's data key (a flipped
//!   byte in `master.key`, or another box's key, fails here rather than as errors on every
//!   read).
//!
//! Recovering after a power cut is not damage: redb's open repairs the allocator state from
//! the last verified commit, as it is meant to, and that still happens (in the real open
//! after this check passed).
//!
//! [`Store::open`]: super::Store::open

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Mutex;

use redb::backends::FileBackend;
use redb::{BackendError, Database, StorageBackend};

use super::StoreError;
use super::keyring::{Keyring, MASTER_KEY_FILE};

/// Blocks the shadow keeps redb's writes in.
const BLOCK: u64 = 4096;
/// At most this much of redb's writes is kept (a crash recovery rewrites allocator state, a few
/// pages per region; far below this).
const SHADOW_MAX: usize = 64 << 20;

/// The database file read through, with writes kept in memory: redb can open, recover and
/// check a file this way without changing it.
pub struct Shadow {
    file: FileBackend,
    /// Length of the underlying file when opened.
    base_len: u64,
    state: Mutex<ShadowState>,
}

#[derive(Default)]
struct ShadowState {
    /// The length redb set, once it set one.
    len: Option<u64>,
    blocks: BTreeMap<u64, Box<[u8]>>,
}

impl fmt::Debug for Shadow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shadow")
            .field("base_len", &self.base_len)
            .finish()
    }
}

impl Shadow {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> Result<Shadow, StoreError> {
        let io = |source| StoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let base_len = file.metadata().map_err(io)?.len();
        Ok(Shadow {
            file: FileBackend::new(file)?,
            base_len,
            state: Mutex::new(ShadowState::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, ShadowState> {
        // Poisoned only by a panic inside redb during a check; the map itself is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One block as the shadow sees it: redb's write, else the file's bytes (zero past its end).
    fn read_block(&self, state: &ShadowState, index: u64, out: &mut [u8]) -> io::Result<()> {
        if let Some(b) = state.blocks.get(&index) {
            out.copy_from_slice(b);
            return Ok(());
        }
        out.fill(0);
        let start = index * BLOCK;
        let visible = state.len.unwrap_or(self.base_len).min(self.base_len);
        if start < visible {
            let n = (visible - start).min(BLOCK) as usize;
            self.file.read(start, &mut out[..n])?;
        }
        Ok(())
    }
}

impl StorageBackend for Shadow {
    fn len(&self) -> Result<u64, io::Error> {
        Ok(self.state().len.unwrap_or(self.base_len))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        let state = self.state();
        let len = state.len.unwrap_or(self.base_len);
        if offset + out.len() as u64 > len {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        let mut block = vec![0u8; BLOCK as usize];
        let mut done = 0usize;
        while done < out.len() {
            let pos = offset + done as u64;
            let (index, within) = (pos / BLOCK, (pos % BLOCK) as usize);
            let n = (BLOCK as usize - within).min(out.len() - done);
            if within == 0 && n == BLOCK as usize && !state.blocks.contains_key(&index) {
                // Whole blocks of the file straight into `out`.
                self.read_block(&state, index, &mut out[done..done + n])?;
            } else {
                self.read_block(&state, index, &mut block)?;
                out[done..done + n].copy_from_slice(&block[within..within + n]);
            }
            done += n;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut state = self.state();
        // Blocks beyond the new end read as zero when the file grows again.
        let keep = len.div_ceil(BLOCK);
        state.blocks.retain(|&i, _| i < keep);
        if let Some(last) = state.blocks.get_mut(&(len / BLOCK)) {
            last[(len % BLOCK) as usize..].fill(0);
        }
        state.len = Some(len);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let mut state = self.state();
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let (index, within) = (pos / BLOCK, (pos % BLOCK) as usize);
            let n = (BLOCK as usize - within).min(data.len() - done);
            if !state.blocks.contains_key(&index) {
                if state.blocks.len() * BLOCK as usize >= SHADOW_MAX {
                    return Err(io::Error::other(
                        "the check's in-memory copy of changed pages is full",
                    ));
                }
                let mut fresh = vec![0u8; BLOCK as usize].into_boxed_slice();
                self.read_block(&state, index, &mut fresh)?;
                state.blocks.insert(index, fresh);
            }
            let block = state.blocks.get_mut(&index).expect("inserted above");
            block[within..within + n].copy_from_slice(&data[done..done + n]);
            done += n;
        }
        Ok(())
    }

    fn close(&self) -> Result<(), io::Error> {
        self.file.close()
    }

    // Locks: the file is open read-only, and a check must not run beside a writer, so every lock
    // is taken shared. A running lanbox holds its locks exclusively, so the check then finds the
    // database in use, as a second writer would.
    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.query_lock_range(start, end)
    }
}

/// What the page check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCheck {
    /// The file was not closed cleanly (a power cut, a kill): redb recovers it on open.
    pub needed_recovery: bool,
}

/// A file refused, with why. Never quotes file contents.
fn damaged(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::Damaged {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Refuses what must not be taken for a new box: a missing or empty database beside an
/// existing master key file. Call before anything is created.
pub fn files(dir: &Path, db: &Path) -> Result<(), StoreError> {
    let mut key = dir.join(MASTER_KEY_FILE);
    if !key.exists() {
        // A sealed master key is an existing key just the same.
        key = dir.join(super::sealed_key::SEALED_MASTER_KEY_FILE);
        if !key.exists() {
            return Ok(());
        }
    }
    let db_len = match std::fs::metadata(db) {
        Ok(m) => Some(m.len()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(StoreError::Io {
                path: db.display().to_string(),
                source,
            });
        }
    };
    let what = match db_len {
        None => "is missing",
        Some(0) => "is empty (0 bytes)",
        Some(_) => return Ok(()),
    };
    Err(damaged(
        db,
        format!(
            "{what}, but {} exists: this box had data. Starting would make a new, empty box; \
             if that is really wanted, move {} away first",
            key.display(),
            key.display()
        ),
    ))
}

/// Verifies every page checksum of the existing database at `path`, then that the master key
/// opens every account's data key in it ([`keys`]), writing nothing to it.
pub fn pages(
    path: &Path,
    cache_bytes: usize,
    keyring: &Keyring,
    key_path: &Path,
) -> Result<PageCheck, StoreError> {
    let (db, clean, found) = shadow_check(path, cache_bytes)?;
    if !clean {
        return Err(damaged(
            path,
            "pages fail their checksums (opening it would roll back to an older commit or drop them)",
        ));
    }
    keys(&db, keyring, key_path, path)?;
    Ok(found)
}

/// `path` opened through a [`Shadow`] for reading only (no check): the store's reads while the
/// database cannot be opened for writing.
pub(super) fn read_only(path: &Path, cache_bytes: usize) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes.min(16 << 20));
    Ok(builder.create_with_backend(Shadow::open(path)?)?)
}

/// Opens `path` through a [`Shadow`] and runs redb's integrity check on it. Returns the shadow
/// database (repaired in memory when the check was not clean, so still readable) and whether
/// the check was clean; an unreadable file is [`StoreError::Damaged`].
pub(super) fn shadow_check(
    path: &Path,
    cache_bytes: usize,
) -> Result<(Database, bool, PageCheck), StoreError> {
    let shadow = Shadow::open(path)?;
    let recovery = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes.min(16 << 20));
    {
        let recovery = recovery.clone();
        builder.set_repair_callback(move |_| recovery.store(true, std::sync::atomic::Ordering::Relaxed));
    }
    // redb panicking on a malformed page is damage too, not a crash of the caller.
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut db = builder.create_with_backend(shadow)?;
        let clean = db.check_integrity()?;
        Ok::<_, redb::DatabaseError>((clean, db))
    }));
    let found = PageCheck {
        needed_recovery: recovery.load(std::sync::atomic::Ordering::Relaxed),
    };
    match checked {
        Ok(Ok((clean, db))) => Ok((db, clean, found)),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => {
            Err(redb::DatabaseError::DatabaseAlreadyOpen.into())
        }
        // Not a file that cannot be read (those are damage, below), but a disk or a permission
        // that does not let it be.
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))))
            if !matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData
            ) =>
        {
            Err(StoreError::Io {
                path: path.display().to_string(),
                source: e,
            })
        }
        Ok(Err(e)) => Err(damaged(path, format!("not a readable lanbox database ({e})"))),
        Err(_) => Err(damaged(
            path,
            "a page is malformed (the database engine gave up reading it)",
        )),
    }
}

/// Checks that the master key opens every account's data key in `db`.
pub fn keys(db: &Database, keyring: &Keyring, key_path: &Path, db_path: &Path) -> Result<(), StoreError> {
    use redb::{ReadableDatabase, ReadableTable};
    let txn = db.begin_read()?;
    let table = match txn.open_table(super::tables::ACCOUNT_RECORD) {
        Ok(t) => t,
        // A new database: no accounts yet.
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let (mut total, mut failed) = (0u32, Vec::new());
    for row in table.iter()? {
        let (id, rec) = row?;
        total += 1;
        let rec = match rec.value().get() {
            Ok(r) => r,
            Err(_) => {
                failed.push(id.value());
                continue;
            }
        };
        if keyring.data_key(rec.id, &rec.wrapped_key).is_err() {
            failed.push(id.value());
        }
    }
    for &id in &failed {
        keyring.forget(id);
    }
    match failed.len() {
        0 => Ok(()),
        n if n as u32 == total => Err(damaged(
            key_path,
            format!(
                "does not open the data key of any account in {} (the key is damaged, or it is another box's key)",
                db_path.display()
            ),
        )),
        _ => Err(damaged(
            db_path,
            format!(
                "the records of accounts {failed:?} are damaged: their data keys do not open with {}",
                key_path.display()
            ),
        )),
    }
}
