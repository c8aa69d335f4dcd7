//! The backup passphrase: turned into the backup key with argon2id when it is set, and kept only
//! as that key wrapped by the master key (in [`BACKUP_SETTING`]). The box can then make backups
//! unattended without knowing the passphrase; a restore needs the passphrase itself.

use super::BackupError;
use super::format::Kdf;
use super::tables::{BACKUP_SETTING, BackupKeyRecord, KEY_NAME};
use crate::store::codec::Stored;
use crate::store::seal::SecretKey;
use crate::store::{Reader, Store};

/// Keyring slot the backup key is wrapped under (account IDs never reach it; the URL signing
/// key has `u64::MAX`).
const BACKUP_SLOT: u64 = u64::MAX - 1;

/// Shortest passphrase accepted: it is all that protects a backup that leaves the box.
pub const MIN_PASSPHRASE: usize = 12;

pub fn check_passphrase(p: &str) -> Result<(), BackupError> {
    if p.chars().count() < MIN_PASSPHRASE {
        return Err(BackupError::WeakPassphrase);
    }
    Ok(())
}

/// Derives the backup key from `passphrase` (about a second, 64 MiB: call from a blocking
/// thread) and stores it wrapped, replacing any earlier one. Backups made before stay readable
/// with the passphrase they were made under.
pub async fn set_passphrase(store: &Store, passphrase: String) -> Result<(), BackupError> {
    check_passphrase(&passphrase)?;
    let kdf = Kdf::fresh()?;
    let key = tokio::task::spawn_blocking(move || kdf.derive(&passphrase))
        .await
        .map_err(|_| BackupError::Stopped)??;
    let wrapped = store.keyring().wrap_secret(BACKUP_SLOT, &key)?;
    let rec = BackupKeyRecord {
        kdf,
        wrapped,
        set_at: crate::store::ctx::unix_now(),
    };
    store
        .write(1, move |ctx| {
            let mut t = ctx.txn().open_table(BACKUP_SETTING)?;
            t.insert(KEY_NAME, Stored::new(&rec)?)?;
            Ok(())
        })
        .await?;
    Ok(())
}

/// The backup key and its derivation parameters, or [`BackupError::NoPassphrase`].
pub fn load(r: &Reader) -> Result<(SecretKey, Kdf), BackupError> {
    let rec = setting(r)?.ok_or(BackupError::NoPassphrase)?;
    let key = r.keyring().unwrap_secret(BACKUP_SLOT, &rec.wrapped)?;
    Ok((key, rec.kdf))
}

/// The stored record (without unwrapping), `None` before a passphrase is set.
pub fn setting(r: &Reader) -> Result<Option<BackupKeyRecord>, BackupError> {
    let t = match r.txn().open_table(BACKUP_SETTING) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(BackupError::Store(crate::store::StoreError::Db(e.into()))),
    };
    Ok(t.get(KEY_NAME)
        .map_err(|e| BackupError::Store(e.into()))?
        .map(|v| v.value().get())
        .transpose()?)
}
