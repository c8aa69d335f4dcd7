//! The master key and the per-account data keys.
//!
//! The master key is 32 random bytes created on first start in `DIR/master.key` (mode 0600), or
//! read from the systemd credential `master-key` (`$CREDENTIALS_DIRECTORY/master-key`) when the
//! unit supplies one; a credential always wins over the file. It only ever wraps data keys.
//!
//! Each account's data key is wrapped by the master key and stored in its account record.
//! Unwrapped keys are cached in memory for the life of the process; releasing an account drops
//! the cached key and deletes the wrapped one, after which nothing sealed under it can be read.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::StoreError;
use super::seal::{Cipher, Sealed, Sealer, SecretKey};

pub const MASTER_KEY_FILE: &str = "master.key";
pub const MASTER_KEY_CREDENTIAL: &str = "master-key";

/// Where the master key came from (shown at start, never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    Created(PathBuf),
    File(PathBuf),
    Credential(PathBuf),
    /// `DIR/master.key.sealed`, opened with the operator's passphrase (sealed boot).
    Unsealed(PathBuf),
}

impl MasterKeySource {
    /// The file the key came from.
    pub fn path(&self) -> &Path {
        match self {
            MasterKeySource::Created(p)
            | MasterKeySource::File(p)
            | MasterKeySource::Credential(p)
            | MasterKeySource::Unsealed(p) => p,
        }
    }
}

pub struct Keyring {
    master: Sealer,
    cipher: Cipher,
    /// A std Mutex, not a tokio one: it is held only to clone an `Arc` out or in, never across
    /// an await or a database call.
    data_keys: Mutex<HashMap<u64, Arc<Sealer>>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

fn wrap_aad(account: u64) -> [u8; 18] {
    let mut out = [0u8; 18];
    out[..10].copy_from_slice(b"lanbox/dk/");
    out[10..].copy_from_slice(&account.to_be_bytes());
    out
}

impl Keyring {
    /// Loads the master key from the credential directory or `dir`, creating it in `dir` when
    /// neither has one.
    pub fn load_or_create(
        dir: &Path,
        credentials_dir: Option<&Path>,
        cipher: Cipher,
    ) -> Result<(Keyring, MasterKeySource), StoreError> {
        let (key, source) = load_master(dir, credentials_dir)?;
        Ok((
            Keyring {
                master: Sealer::new(key, cipher),
                cipher,
                data_keys: Mutex::new(HashMap::new()),
            },
            source,
        ))
    }

    /// The keyring of a sealed box, from its unsealed master key.
    pub fn unsealed(key: SecretKey, sealed_file: PathBuf, cipher: Cipher) -> (Keyring, MasterKeySource) {
        (
            Keyring {
                master: Sealer::new(key, cipher),
                cipher,
                data_keys: Mutex::new(HashMap::new()),
            },
            MasterKeySource::Unsealed(sealed_file),
        )
    }

    /// Loads an existing master key (credential first, then `dir`); never creates one.
    pub fn load(
        dir: &Path,
        credentials_dir: Option<&Path>,
        cipher: Cipher,
    ) -> Result<(Keyring, MasterKeySource), StoreError> {
        let cred = credentials_dir.map(|d| d.join(MASTER_KEY_CREDENTIAL));
        let (path, key) = match cred.filter(|p| p.exists()) {
            Some(p) => {
                let key = read_key(&p)?;
                (MasterKeySource::Credential(p), key)
            }
            None => {
                let p = dir.join(MASTER_KEY_FILE);
                let key = read_key(&p)?;
                (MasterKeySource::File(p), key)
            }
        };
        Ok((
            Keyring {
                master: Sealer::new(key, cipher),
                cipher,
                data_keys: Mutex::new(HashMap::new()),
            },
            path,
        ))
    }

    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// A fresh data key for a new account, returned with its wrapped form to store.
    pub fn new_data_key(&self, account: u64) -> Result<(Arc<Sealer>, Sealed), StoreError> {
        let key = SecretKey::generate()?;
        let wrapped = self.master.seal(key.expose(), &wrap_aad(account))?;
        let sealer = Arc::new(Sealer::new(key, self.cipher));
        self.cache().insert(account, sealer.clone());
        Ok((sealer, wrapped))
    }

    /// The data key of `account`, unwrapping `wrapped` on first use.
    pub fn data_key(&self, account: u64, wrapped: &Sealed) -> Result<Arc<Sealer>, StoreError> {
        if let Some(k) = self.cached(account) {
            return Ok(k);
        }
        let raw = self.master.open(wrapped, &wrap_aad(account))?;
        let key = SecretKey::from_bytes(&raw).ok_or(StoreError::MasterKey(
            "wrapped data key has the wrong length".into(),
        ))?;
        let sealer = Arc::new(Sealer::new(key, self.cipher));
        self.cache().insert(account, sealer.clone());
        Ok(sealer)
    }

    /// Wraps a key that is not an account's (the backup key) under the master key, bound to
    /// `slot`, a reserved number no account gets. Nothing is cached.
    pub fn wrap_secret(&self, slot: u64, key: &SecretKey) -> Result<Sealed, StoreError> {
        Ok(self.master.seal(key.expose(), &wrap_aad(slot))?)
    }

    /// Unwraps what [`Keyring::wrap_secret`] wrapped for `slot`.
    pub fn unwrap_secret(&self, slot: u64, wrapped: &Sealed) -> Result<SecretKey, StoreError> {
        let raw = zeroize::Zeroizing::new(self.master.open(wrapped, &wrap_aad(slot))?);
        SecretKey::from_bytes(&raw).ok_or(StoreError::MasterKey("wrapped key has the wrong length".into()))
    }

    pub fn cached(&self, account: u64) -> Option<Arc<Sealer>> {
        self.cache().get(&account).cloned()
    }

    /// Forgets an account's key (on release).
    pub fn forget(&self, account: u64) {
        self.cache().remove(&account);
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Sealer>>> {
        // A poisoned lock only means another thread panicked while holding a map of Arcs; the
        // map itself is still consistent.
        self.data_keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn load_master(
    dir: &Path,
    credentials_dir: Option<&Path>,
) -> Result<(SecretKey, MasterKeySource), StoreError> {
    if let Some(cred_dir) = credentials_dir {
        let path = cred_dir.join(MASTER_KEY_CREDENTIAL);
        if path.exists() {
            let key = read_key(&path)?;
            return Ok((key, MasterKeySource::Credential(path)));
        }
    }
    let path = dir.join(MASTER_KEY_FILE);
    if path.exists() {
        return Ok((read_key(&path)?, MasterKeySource::File(path)));
    }
    let key = SecretKey::generate()?;
    write_new_key(&path, &key)?;
    Ok((key, MasterKeySource::Created(path)))
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read_key(path: &Path) -> Result<SecretKey, StoreError> {
    let bytes = zeroize::Zeroizing::new(std::fs::read(path).map_err(io_err(path))?);
    SecretKey::from_bytes(&bytes).ok_or_else(|| StoreError::Damaged {
        path: path.display().to_string(),
        detail: format!(
            "the master key holds {} bytes, not 32 (truncated or damaged)",
            bytes.len()
        ),
    })
}

fn write_new_key(path: &Path, key: &SecretKey) -> Result<(), StoreError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io_err(path))?;
    f.write_all(key.expose()).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    // And its name: a power cut must not keep the database and lose the key beside it.
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_created_0600_then_reused_and_credential_wins() {
        let dir = tempfile::tempdir().unwrap();
        let (k1, src) = Keyring::load_or_create(dir.path(), None, Cipher::ChaCha20Poly1305).unwrap();
        assert!(matches!(src, MasterKeySource::Created(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(MASTER_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (_dk, wrapped) = k1.new_data_key(7).unwrap();
        let (k2, src) = Keyring::load_or_create(dir.path(), None, Cipher::Aes256Gcm).unwrap();
        assert!(matches!(src, MasterKeySource::File(_)));
        assert!(k2.data_key(7, &wrapped).is_ok());
        assert!(k2.data_key(8, &wrapped).is_err() || k2.cached(8).is_none());

        let cred = tempfile::tempdir().unwrap();
        std::fs::write(cred.path().join(MASTER_KEY_CREDENTIAL), [9u8; 32]).unwrap();
        let (k3, src) = Keyring::load_or_create(dir.path(), Some(cred.path()), Cipher::Aes256Gcm).unwrap();
        assert!(matches!(src, MasterKeySource::Credential(_)));
        assert!(
            k3.data_key(7, &wrapped).is_err(),
            "a different master key cannot unwrap"
        );
    }
}
