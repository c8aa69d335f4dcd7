//! A restore staged by a new box's first-run page, put in place at the next start.
//!
//! The first-run page ("restore from backup") cannot restore over the database the running
//! service has open, so it restores into `DIR/restore-staged` (the same checked restore as
//! `lanbox restore`: nothing is written there unless the whole backup decrypts and checks) and
//! asks the box to restart. Before anything is opened, [`apply`] moves the new box's own files
//! aside into `DIR/replaced-UNIXTIME/` (kept, never deleted: it is a box without users, but
//! evidence is not destroyed silently) and moves the restored files into `DIR`.

use std::path::{Path, PathBuf};

use super::BackupError;

/// Where the first-run page restores to.
pub const STAGED: &str = "restore-staged";
/// Where the uploaded backup waits until its passphrase is given.
pub const UPLOAD: &str = "restore-upload.lbk";

/// The staging directory of `data`.
pub fn staged_dir(data: &Path) -> PathBuf {
    data.join(STAGED)
}

/// Puts a staged restore in place; `Ok(false)` when there is none. Call before the store,
/// keys or configuration are read.
pub fn apply(data: &Path) -> Result<bool, BackupError> {
    let staged = staged_dir(data);
    if !staged.is_dir() {
        return Ok(false);
    }
    let aside = data.join(format!("replaced-{}", crate::store::ctx::unix_now()));
    std::fs::create_dir_all(&aside).map_err(|e| BackupError::file(&aside, e))?;
    let entries: Vec<std::fs::DirEntry> = std::fs::read_dir(&staged)
        .map_err(|e| BackupError::file(&staged, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| BackupError::file(&staged, e))?;
    for e in &entries {
        let name = e.file_name();
        let current = data.join(&name);
        if current.exists() {
            std::fs::rename(&current, aside.join(&name)).map_err(|e| BackupError::file(&current, e))?;
        }
    }
    // The box's own key beside a restored one would be ambiguous: it goes aside too.
    for name in [
        crate::store::keyring::MASTER_KEY_FILE,
        crate::store::sealed_key::SEALED_MASTER_KEY_FILE,
        crate::store::DB_FILE,
    ] {
        let current = data.join(name);
        if current.exists() {
            std::fs::rename(&current, aside.join(name)).map_err(|e| BackupError::file(&current, e))?;
        }
    }
    for e in &entries {
        let from = e.path();
        let to = data.join(e.file_name());
        std::fs::rename(&from, &to).map_err(|e| BackupError::file(&from, e))?;
    }
    std::fs::remove_dir(&staged).map_err(|e| BackupError::file(&staged, e))?;
    tracing::info!(aside = %aside.display(), "a restored backup was put in place; the new box's own files were moved aside");
    Ok(true)
}
