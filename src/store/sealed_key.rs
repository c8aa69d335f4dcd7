//! Sealed boot: the master key wrapped by an operator's passphrase, so that whoever takes the
//! box (or its SD card) takes only ciphertext.
//!
//! `lanbox key seal` turns `DIR/master.key` into `DIR/master.key.sealed` and removes the plain
//! file (overwritten with zeros first); `lanbox key unseal` turns it back. A sealed box's
//! `serve` opens nothing until an admin enters the passphrase on its unlock page; the key then
//! lives only in memory. The file, 96 bytes:
//!
//! ```text
//! "LBXMKEY1" | argon2id m, t, p (u32 BE) | salt [16] | nonce [12]
//!   | ChaCha20-Poly1305(argon2id(passphrase), nonce, master key [32], aad = all before the nonce)
//! ```
//!
//! A wrong passphrase and a damaged file are told apart only as far as the format allows: a
//! file of the wrong size or magic is damaged; one that fails authentication is "a wrong
//! passphrase, or a damaged file" (the tag cannot say which).

use std::io::Write;
use std::path::Path;

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};

use super::StoreError;
use super::keyring::MASTER_KEY_FILE;
use super::passkey::{Kdf, KdfError};
use super::seal::SecretKey;

pub const SEALED_MASTER_KEY_FILE: &str = "master.key.sealed";
const MAGIC: &[u8; 8] = b"LBXMKEY1";
const HEAD: usize = 8 + 28;
const LEN: usize = HEAD + 12 + 32 + 16;
/// The shortest passphrase `seal` accepts.
pub const MIN_PASSPHRASE: usize = 12;

/// Whether `dir`'s master key is sealed (and not also present in the clear).
pub fn is_sealed(dir: &Path) -> bool {
    dir.join(SEALED_MASTER_KEY_FILE).exists() && !dir.join(MASTER_KEY_FILE).exists()
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn kdf_err(e: KdfError) -> StoreError {
    StoreError::MasterKey(e.to_string())
}

/// Seals `dir/master.key` under `passphrase`: writes the sealed file (synced), then overwrites
/// the plain one with zeros and removes it. Blocking (argon2id takes about a second).
pub fn seal(dir: &Path, passphrase: &str) -> Result<(), StoreError> {
    if passphrase.chars().count() < MIN_PASSPHRASE {
        return Err(StoreError::MasterKey(format!(
            "the passphrase must have at least {MIN_PASSPHRASE} characters"
        )));
    }
    let plain = dir.join(MASTER_KEY_FILE);
    let sealed = dir.join(SEALED_MASTER_KEY_FILE);
    if !plain.exists() {
        return Err(StoreError::MasterKey(format!(
            "{} does not exist (already sealed, or the key comes from a systemd credential)",
            plain.display()
        )));
    }
    let bytes = zeroize::Zeroizing::new(std::fs::read(&plain).map_err(io_err(&plain))?);
    let key = SecretKey::from_bytes(&bytes).ok_or_else(|| StoreError::Damaged {
        path: plain.display().to_string(),
        detail: format!("the master key holds {} bytes, not 32", bytes.len()),
    })?;
    let kdf = Kdf::fresh().map_err(kdf_err)?;
    let wrap = kdf.derive(passphrase).map_err(kdf_err)?;
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|_| kdf_err(KdfError::Random))?;
    let mut out = Vec::with_capacity(LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&kdf.to_bytes());
    let ct = ChaCha20Poly1305::new(wrap.expose().into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: key.expose(),
                aad: &out,
            },
        )
        .map_err(|_| StoreError::MasterKey("sealing the master key failed".into()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    debug_assert_eq!(out.len(), LEN);
    write_synced(dir, &sealed, &out)?;
    // The sealed copy is on disk: now the plain one goes, its bytes overwritten first.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&plain)
        .map_err(io_err(&plain))?;
    f.write_all(&[0u8; 32]).map_err(io_err(&plain))?;
    f.sync_all().map_err(io_err(&plain))?;
    drop(f);
    std::fs::remove_file(&plain).map_err(io_err(&plain))?;
    sync_dir(dir)
}

/// The master key in `dir`'s sealed file, opened with `passphrase`. Blocking.
pub fn unseal(dir: &Path, passphrase: &str) -> Result<SecretKey, StoreError> {
    let path = dir.join(SEALED_MASTER_KEY_FILE);
    let bytes = std::fs::read(&path).map_err(io_err(&path))?;
    let damaged = |detail: String| StoreError::Damaged {
        path: path.display().to_string(),
        detail,
    };
    if bytes.len() != LEN || &bytes[..8] != MAGIC {
        return Err(damaged(format!(
            "not a sealed master key ({} bytes, expected {LEN} starting with {})",
            bytes.len(),
            String::from_utf8_lossy(MAGIC)
        )));
    }
    let kdf = Kdf::from_bytes(bytes[8..HEAD].try_into().expect("28 bytes"));
    let wrap = kdf.derive(passphrase).map_err(|e| damaged(e.to_string()))?;
    let nonce: [u8; 12] = bytes[HEAD..HEAD + 12].try_into().expect("12 bytes");
    let plain = zeroize::Zeroizing::new(
        ChaCha20Poly1305::new(wrap.expose().into())
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: &bytes[HEAD + 12..],
                    aad: &bytes[..HEAD],
                },
            )
            .map_err(|_| StoreError::WrongPassphrase)?,
    );
    SecretKey::from_bytes(&plain).ok_or_else(|| damaged("the sealed key is not 32 bytes".into()))
}

/// Undoes [`seal`]: writes `master.key` again (mode 0600, synced) and removes the sealed file.
pub fn unseal_to_file(dir: &Path, passphrase: &str) -> Result<(), StoreError> {
    let key = unseal(dir, passphrase)?;
    let plain = dir.join(MASTER_KEY_FILE);
    write_synced(dir, &plain, key.expose())?;
    let sealed = dir.join(SEALED_MASTER_KEY_FILE);
    std::fs::remove_file(&sealed).map_err(io_err(&sealed))?;
    sync_dir(dir)
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600), syncs it, renames it into place.
fn write_synced(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_unseal_round_trips_and_a_wrong_passphrase_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = [7u8; 32];
        std::fs::write(dir.path().join(MASTER_KEY_FILE), key).unwrap();
        assert!(seal(dir.path(), "too short").is_err(), "a short passphrase");
        seal(dir.path(), "correct horse battery").unwrap();
        assert!(is_sealed(dir.path()));
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());
        let sealed = std::fs::read(dir.path().join(SEALED_MASTER_KEY_FILE)).unwrap();
        assert_eq!(sealed.len(), LEN);
        assert!(
            !sealed.windows(32).any(|w| w == key),
            "the key is not in the sealed file"
        );
        assert!(matches!(
            unseal(dir.path(), "wrong horse battery"),
            Err(StoreError::WrongPassphrase)
        ));
        assert_eq!(
            unseal(dir.path(), "correct horse battery").unwrap().expose(),
            &key
        );
        unseal_to_file(dir.path(), "correct horse battery").unwrap();
        assert!(!is_sealed(dir.path()));
        assert_eq!(std::fs::read(dir.path().join(MASTER_KEY_FILE)).unwrap(), key);
    }

    #[test]
    fn a_damaged_sealed_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SEALED_MASTER_KEY_FILE), b"LBXMKEY1 too short").unwrap();
        let e = unseal(dir.path(), "correct horse battery").unwrap_err();
        assert!(matches!(e, StoreError::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("master.key.sealed"), "{e}");
    }
}
