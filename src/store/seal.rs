//! Sealing: authenticated encryption of everything that could reveal what a message says.
//!
//! Each account has a 256-bit data key; the data keys are wrapped by the box's master key (see
//! [`super::keyring`]). A [`Sealed`] value records which cipher made it, so a store written on a
//! CPU with AES instructions (AES-256-GCM) stays readable on one without (ChaCha20-Poly1305, the
//! Pi 4's case) and the other way round. Nonces are 96 random bits from the OS; the associated
//! data binds a ciphertext to the table and key it is stored under, so a sealed value copied to
//! another record does not open.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, AeadInOut, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::StoreError;
use super::codec::{Record, decode, encode};

/// Which AEAD sealed a value. Stored per record as one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cipher {
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl Cipher {
    /// AES-256-GCM where the CPU has AES instructions, ChaCha20-Poly1305 otherwise (software
    /// AES is slower and not constant-time).
    pub fn for_this_cpu() -> Cipher {
        if cpu_has_aes() {
            Cipher::Aes256Gcm
        } else {
            Cipher::ChaCha20Poly1305
        }
    }

    pub fn parse(s: &str) -> Option<Option<Cipher>> {
        match s {
            "auto" => Some(None),
            "aes-256-gcm" => Some(Some(Cipher::Aes256Gcm)),
            "chacha20-poly1305" => Some(Some(Cipher::ChaCha20Poly1305)),
            _ => None,
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn cpu_has_aes() -> bool {
    std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn cpu_has_aes() -> bool {
    false
}

/// A 256-bit key, wiped from memory when dropped. `Debug` never prints it.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    pub fn generate() -> Result<SecretKey, SealError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|_| SealError::Random)?;
        Ok(SecretKey(k))
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<SecretKey> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(SecretKey(arr))
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// An encrypted value with the cipher and nonce needed to open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub cipher: Cipher,
    pub nonce: [u8; 12],
    /// As one byte string (postcard writes a `Vec<u8>` the same way, so this only makes
    /// decoding a single copy instead of a byte-by-byte loop).
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("the operating system's random source failed")]
    Random,
    #[error("sealed value failed authentication (wrong key or tampered record)")]
    Open,
}

/// A key plus the cipher new values are sealed with.
#[derive(Debug, Clone)]
pub struct Sealer {
    key: SecretKey,
    cipher: Cipher,
}

impl Sealer {
    pub fn new(key: SecretKey, cipher: Cipher) -> Sealer {
        Sealer { key, cipher }
    }

    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Sealed, SealError> {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let payload = Payload { msg: plaintext, aad };
        let ciphertext = match self.cipher {
            Cipher::Aes256Gcm => Aes256Gcm::new(self.key.expose().into()).encrypt(&nonce.into(), payload),
            Cipher::ChaCha20Poly1305 => {
                ChaCha20Poly1305::new(self.key.expose().into()).encrypt(&nonce.into(), payload)
            }
        }
        // Encryption only fails for inputs beyond the AEAD's length limit (64 GiB).
        .map_err(|_| SealError::Open)?;
        Ok(Sealed {
            cipher: self.cipher,
            nonce,
            ciphertext,
        })
    }

    /// Opens a value whatever cipher sealed it.
    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad,
        };
        let nonce = sealed.nonce.into();
        match sealed.cipher {
            Cipher::Aes256Gcm => Aes256Gcm::new(self.key.expose().into()).decrypt(&nonce, payload),
            Cipher::ChaCha20Poly1305 => {
                ChaCha20Poly1305::new(self.key.expose().into()).decrypt(&nonce, payload)
            }
        }
        .map_err(|_| SealError::Open)
    }

    /// [`Sealer::open`] for a sealed value the caller gives up: decrypted in the ciphertext's
    /// own buffer, not a copy of it.
    pub fn open_owned(&self, sealed: Sealed, aad: &[u8]) -> Result<Vec<u8>, SealError> {
        let nonce = sealed.nonce.into();
        // Wiped if it does not open: the cipher may have decrypted it before the tag failed.
        let mut buffer = zeroize::Zeroizing::new(sealed.ciphertext);
        let b: &mut Vec<u8> = &mut buffer;
        match sealed.cipher {
            Cipher::Aes256Gcm => Aes256Gcm::new(self.key.expose().into()).decrypt_in_place(&nonce, aad, b),
            Cipher::ChaCha20Poly1305 => {
                ChaCha20Poly1305::new(self.key.expose().into()).decrypt_in_place(&nonce, aad, b)
            }
        }
        .map_err(|_| SealError::Open)?;
        Ok(std::mem::take(&mut *buffer))
    }

    /// Seals a record (versioned postcard, see [`super::codec`]) under `aad`.
    pub fn seal_record<T: Record>(&self, value: &T, aad: &[u8]) -> Result<Sealed, StoreError> {
        // The encoded plaintext is wiped once sealed.
        let plain = zeroize::Zeroizing::new(encode(value)?);
        Ok(self.seal(&plain, aad)?)
    }

    /// Opens a record sealed with [`Sealer::seal_record`].
    pub fn open_record<T: Record>(&self, sealed: &Sealed, aad: &[u8]) -> Result<T, StoreError> {
        let plain = zeroize::Zeroizing::new(self.open(sealed, aad)?);
        decode(&plain)
    }

    /// [`Sealer::open_record`] of a sealed value the caller gives up (no copy).
    pub fn open_record_owned<T: Record>(&self, sealed: Sealed, aad: &[u8]) -> Result<T, StoreError> {
        let plain = zeroize::Zeroizing::new(self.open_owned(sealed, aad)?);
        decode(&plain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The byte-string encoding of `ciphertext` is the same postcard as the plain `Vec<u8>` it
    /// replaced, so stores written before still open.
    #[test]
    fn ciphertext_encoding_is_unchanged() {
        #[derive(Serialize)]
        struct Before {
            cipher: Cipher,
            nonce: [u8; 12],
            ciphertext: Vec<u8>,
        }
        let ciphertext: Vec<u8> = (0..=255u8).chain(0..=44).collect();
        let before = Before {
            cipher: Cipher::ChaCha20Poly1305,
            nonce: [7; 12],
            ciphertext: ciphertext.clone(),
        };
        let now = Sealed {
            cipher: Cipher::ChaCha20Poly1305,
            nonce: [7; 12],
            ciphertext,
        };
        let a = postcard::to_allocvec(&before).unwrap();
        assert_eq!(a, postcard::to_allocvec(&now).unwrap());
        assert_eq!(postcard::from_bytes::<Sealed>(&a).unwrap(), now);
    }

    #[test]
    fn both_ciphers_round_trip_and_open_each_other() {
        let key = SecretKey::generate().unwrap();
        let aes = Sealer::new(key.clone(), Cipher::Aes256Gcm);
        let cha = Sealer::new(key, Cipher::ChaCha20Poly1305);
        let a = aes.seal(b"hello", b"ctx").unwrap();
        let c = cha.seal(b"hello", b"ctx").unwrap();
        assert_eq!(a.cipher, Cipher::Aes256Gcm);
        assert_eq!(c.cipher, Cipher::ChaCha20Poly1305);
        assert_eq!(cha.open(&a, b"ctx").unwrap(), b"hello");
        assert_eq!(aes.open(&c, b"ctx").unwrap(), b"hello");
        assert!(!a.ciphertext.windows(5).any(|w| w == b"hello"));
    }

    #[test]
    fn wrong_context_or_key_fails() {
        let s = Sealer::new(SecretKey::generate().unwrap(), Cipher::ChaCha20Poly1305);
        let v = s.seal(b"x", b"a").unwrap();
        assert_eq!(s.open(&v, b"b"), Err(SealError::Open));
        let other = Sealer::new(SecretKey::generate().unwrap(), Cipher::ChaCha20Poly1305);
        assert_eq!(other.open(&v, b"a"), Err(SealError::Open));
    }

    /// Opening in place answers as opening a copy does, with either cipher.
    #[test]
    fn opening_in_place_is_opening() {
        let key = SecretKey::generate().unwrap();
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let s = Sealer::new(key.clone(), cipher);
            let v = s.seal(b"hello in place", b"ctx").unwrap();
            assert_eq!(
                s.open_owned(v.clone(), b"ctx").unwrap(),
                s.open(&v, b"ctx").unwrap()
            );
            assert_eq!(s.open_owned(v.clone(), b"other"), Err(SealError::Open));
            let mut bad = v;
            bad.ciphertext[0] ^= 1;
            assert_eq!(s.open_owned(bad, b"ctx"), Err(SealError::Open));
        }
    }
}
