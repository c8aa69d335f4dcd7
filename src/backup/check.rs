//! `lanbox check`: reads a stopped box's whole store without writing a byte, and says what is
//! damaged. Every page checksum is verified (redb's integrity check, through the store's
//! read-only shadow of the file), every record of every table is read ([`super::tables::ALL`]),
//! and every sealed record of the store's tables is decoded and opened with its key. The
//! report gives counts only: never a record's contents.

use std::path::{Path, PathBuf};

use super::BackupError;
use super::tables::{ALL, unknown};
use crate::store::inspect::{Inspection, SealedCounts};

/// One table: how many records read, and the error that stopped the reading, if one did.
#[derive(Debug, Clone)]
pub struct TableCount {
    pub name: String,
    pub records: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CheckReport {
    pub database: PathBuf,
    pub master_key: PathBuf,
    /// Every page checksum verified.
    pub pages_clean: bool,
    /// The file was not closed cleanly (a power cut): redb recovers it on the next open.
    pub needed_recovery: bool,
    pub tables: Vec<TableCount>,
    /// Tables in the file that this lanbox does not know.
    pub unknown_tables: Vec<String>,
    pub sealed: SealedCounts,
}

impl CheckReport {
    /// Whether anything is damaged.
    pub fn damaged(&self) -> bool {
        !self.pages_clean || self.tables.iter().any(|t| t.error.is_some()) || self.sealed.damaged() > 0
    }
}

/// Checks the store in `dir` (master key from `credentials_dir` when it has one).
pub fn check(dir: &Path, credentials_dir: Option<&Path>) -> Result<CheckReport, BackupError> {
    let ins = Inspection::open(dir, credentials_dir)?;
    let reader = ins.reader()?;
    let txn = reader.txn();
    let mut tables = Vec::with_capacity(ALL.len());
    for t in ALL {
        let mut records = 0u64;
        // redb giving up on a malformed page (a panic) is damage of that table, not the end.
        let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            t.dump(txn, &mut |_, _| {
                records += 1;
                Ok(())
            })
        }));
        let error = match read {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("a page is malformed (the database engine gave up reading it)".into()),
        };
        tables.push(TableCount {
            name: t.name().to_string(),
            records,
            error,
        });
    }
    let unknown_tables = unknown(txn)?;
    let sealed = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ins.sealed())) {
        Ok(r) => r?,
        Err(_) => {
            return Err(BackupError::Damaged(
                "a page is malformed (the database engine gave up reading it)".into(),
            ));
        }
    };
    Ok(CheckReport {
        database: dir.join(crate::store::DB_FILE),
        master_key: ins.master_source.path().to_path_buf(),
        pages_clean: ins.pages_clean,
        needed_recovery: ins.pages.needed_recovery,
        tables,
        unknown_tables,
        sealed,
    })
}
