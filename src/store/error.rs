//! The store's one error type. Messages name tables, records and operations, never content.

use super::seal::SealError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] redb::Error),
    #[error("i/o on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{record} record: {detail}")]
    Format { record: &'static str, detail: String },
    #[error("sealing: {0}")]
    Seal(#[from] SealError),
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("unknown account {0}")]
    UnknownAccount(u64),
    #[error("the data directory was written by a newer lanbox (schema {found}, this build knows {known})")]
    SchemaTooNew { found: u64, known: u64 },
    #[error("another write in the same batch failed; this one was rolled back with it")]
    BatchAborted,
    #[error("the store's writer has stopped")]
    WriterGone,
    #[error("the store's writer panicked during this write; nothing of it was stored")]
    WriterPanicked,
    #[error("the database is closed after a storage failure and not reopened yet")]
    Unavailable,
    /// The database is closed because the disk refused a write for want of space, and a
    /// retry waits for space: nothing of this request was stored.
    #[error("the disk is full; the database reopens once space is freed")]
    WaitingForSpace,
    /// The master key is sealed by a passphrase (sealed boot) and none was given.
    #[error(
        "the master key is sealed by a passphrase: unlock the box (its web page, or LANBOX_UNLOCK_PASSPHRASE for a command)"
    )]
    Sealed,
    #[error("wrong passphrase (or a damaged master.key.sealed)")]
    WrongPassphrase,
    /// A file of the data directory is damaged (or missing beside the others): the box refuses
    /// to open rather than start afresh or repair it. `detail` never quotes file contents.
    #[error("{path}: {detail}")]
    Damaged { path: String, detail: String },
}

impl StoreError {
    /// Whether the disk refused the write for want of space (a full partition, a quota, a
    /// file-size limit): nothing of it was stored, and writes work again once space returns.
    pub fn is_disk_full(&self) -> bool {
        super::writer::failure_of(self) == Some(super::WriteFailure::DiskFull)
    }

    /// Whether this is a failure of the storage under the database (the disk, or the database
    /// closed while the writer reopens it) rather than of the data or the caller.
    pub fn is_storage_failure(&self) -> bool {
        super::writer::failure_of(self).is_some()
    }

    /// Whether this is damage to stored data (a record that fails authentication or decoding,
    /// a corrupted page), as opposed to a failure of the disk or of the caller.
    pub fn is_damage(&self) -> bool {
        matches!(
            self,
            StoreError::Seal(SealError::Open)
                | StoreError::Format { .. }
                | StoreError::Damaged { .. }
                | StoreError::Db(redb::Error::Corrupted(_))
        )
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Db(e.into())
            }
        }
    )*};
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
