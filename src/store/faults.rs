//! Storage faults on demand, for tests of what the store does when the disk fails under it.
//!
//! [`DiskFaults`] is a switch shared with a redb [`StorageBackend`] that wraps the real file
//! backend: while the switch is on, every write, resize and sync of the database file fails
//! with `ENOSPC`, exactly as a full filesystem answers; reads go through. redb then behaves as
//! it does on a real full disk (the failing commit, then "previous I/O error" until the
//! database is closed and reopened), so the store's recovery runs unmodified. Without the
//! option ([`super::StoreOptions::disk_faults`] is `None`) the store opens the file directly
//! and none of this code is on the path.

use std::fmt;
use std::io;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// A switch that makes the database file's writes fail with `ENOSPC` while it is on. Clones
/// share the switch.
#[derive(Clone, Default)]
pub struct DiskFaults {
    inner: Arc<Switch>,
}

#[derive(Default)]
struct Switch {
    full: AtomicBool,
    refused: AtomicU64,
}

impl fmt::Debug for DiskFaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskFaults")
            .field("full", &self.is_full())
            .finish()
    }
}

impl DiskFaults {
    pub fn new() -> DiskFaults {
        DiskFaults::default()
    }

    /// Turns the fault on (`true`: the disk is full) or off.
    pub fn set_full(&self, full: bool) {
        self.inner.full.store(full, Ordering::SeqCst);
    }

    pub fn is_full(&self) -> bool {
        self.inner.full.load(Ordering::SeqCst)
    }

    /// How many writes were refused so far.
    pub fn refused(&self) -> u64 {
        self.inner.refused.load(Ordering::SeqCst)
    }

    fn check(&self) -> io::Result<()> {
        if self.is_full() {
            self.inner.refused.fetch_add(1, Ordering::SeqCst);
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        } else {
            Ok(())
        }
    }
}

/// The real file backend with [`DiskFaults`] in front of its writes.
#[derive(Debug)]
pub(super) struct FaultyFile {
    pub file: FileBackend,
    pub faults: DiskFaults,
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> Result<u64, io::Error> {
        self.file.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.file.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        self.faults.check()?;
        self.file.set_len(len)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        self.faults.check()?;
        self.file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        self.faults.check()?;
        self.file.write(offset, data)
    }

    fn close(&self) -> Result<(), io::Error> {
        self.file.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.file.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.file.lock_range(start, end)
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
