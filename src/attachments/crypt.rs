//! The attachment file format: chunked AEAD, so a file is encrypted while it streams, never
//! sits in memory whole, and any byte range can be decrypted alone (video seeking).
//!
//! Layout: a 24-byte header (`LBA1`, cipher byte, 3 reserved bytes, 16-byte random salt), then
//! the plaintext in 64 KiB chunks, each sealed with its 16-byte tag appended; the last chunk
//! may be shorter (an empty file is one empty chunk).
//!
//! Keys and nonces: each file gets its own key, HMAC-SHA256(account data key, domain || salt),
//! so nonces never repeat across files and attachments never share a key with sealed records.
//! The nonce of chunk `i` is `0^3 || i (u64 BE) || last`, STREAM-style: a chunk only opens at
//! its own position, and only the real last chunk opens with the last flag, so reordering,
//! dropping or truncating chunks is detected. The associated data binds the header and the
//! attachment ID: a file copied under another attachment's name does not open.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInOut, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::store::seal::{Cipher, SecretKey};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Tag bytes after each chunk.
pub const TAG: usize = 16;
/// Header bytes at the start of the file.
pub const HEADER: usize = 24;
/// Ciphertext bytes of a full chunk.
pub const SEALED_CHUNK: usize = CHUNK + TAG;

const MAGIC: [u8; 4] = *b"LBA1";
const DOMAIN: &[u8] = b"lanbox/attachment/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("not an attachment file (bad header)")]
    Header,
    #[error("attachment ciphertext has an impossible length")]
    Length,
    #[error("attachment chunk {0} failed authentication (wrong key, tampered, reordered or truncated)")]
    Open(u64),
    #[error("chunk {0} is beyond the end of the file")]
    Range(u64),
    #[error("the operating system's random source failed")]
    Random,
}

/// Number of chunks a plaintext of `len` bytes is cut into (at least one).
pub fn chunk_count(len: u64) -> u64 {
    len.div_ceil(CHUNK as u64).max(1)
}

/// Size of the encrypted file for a plaintext of `len` bytes.
pub fn ciphertext_len(len: u64) -> u64 {
    HEADER as u64 + len + chunk_count(len) * TAG as u64
}

/// Plaintext size of an encrypted file of `len` bytes.
pub fn plaintext_len(len: u64) -> Result<u64, CryptError> {
    let body = len.checked_sub(HEADER as u64).ok_or(CryptError::Length)?;
    let n = body.div_ceil(SEALED_CHUNK as u64);
    let plain = body.checked_sub(n * TAG as u64).ok_or(CryptError::Length)?;
    if n == 0 || chunk_count(plain) != n {
        return Err(CryptError::Length);
    }
    Ok(plain)
}

enum Aead {
    Aes(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// The per-file cipher: key derived from the account's data key and the file's salt.
pub struct FileCipher {
    aead: Aead,
    aad: [u8; HEADER + 8],
}

fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

impl FileCipher {
    fn new(data_key: &SecretKey, header: &[u8; HEADER], id: u64) -> Result<FileCipher, CryptError> {
        if header[..4] != MAGIC || header[5..8] != [0, 0, 0] {
            return Err(CryptError::Header);
        }
        let cipher = match header[4] {
            1 => Cipher::Aes256Gcm,
            2 => Cipher::ChaCha20Poly1305,
            _ => return Err(CryptError::Header),
        };
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(data_key.expose()).expect("HMAC takes any key length");
        mac.update(DOMAIN);
        mac.update(&header[8..]);
        let mut key: [u8; 32] = mac.finalize().into_bytes().into();
        let aead = match cipher {
            Cipher::Aes256Gcm => Aead::Aes(Box::new(Aes256Gcm::new(&key.into()))),
            Cipher::ChaCha20Poly1305 => Aead::ChaCha(Box::new(ChaCha20Poly1305::new(&key.into()))),
        };
        key.zeroize();
        let mut aad = [0u8; HEADER + 8];
        aad[..HEADER].copy_from_slice(header);
        aad[HEADER..].copy_from_slice(&id.to_be_bytes());
        Ok(FileCipher { aead, aad })
    }

    /// Seals `buf` (one chunk of plaintext) in place and appends its tag.
    fn seal(&self, index: u64, last: bool, buf: &mut Vec<u8>) {
        let n = nonce(index, last);
        let tag = match &self.aead {
            Aead::Aes(a) => a.encrypt_inout_detached(&n.into(), &self.aad, buf.as_mut_slice().into()),
            Aead::ChaCha(a) => a.encrypt_inout_detached(&n.into(), &self.aad, buf.as_mut_slice().into()),
        }
        // Only inputs beyond the AEAD's length limit fail; a chunk is 64 KiB.
        .expect("chunk within AEAD limits");
        buf.extend_from_slice(tag.as_slice());
    }

    /// Opens a sealed chunk (ciphertext and tag) in place, leaving the plaintext.
    fn open(&self, index: u64, last: bool, buf: &mut Vec<u8>) -> Result<(), CryptError> {
        let body = buf.len().checked_sub(TAG).ok_or(CryptError::Open(index))?;
        let (msg, tag) = buf.split_at_mut(body);
        let n = nonce(index, last);
        let ok = match &self.aead {
            Aead::Aes(a) => {
                let tag = (&*tag).try_into().map_err(|_| CryptError::Open(index))?;
                a.decrypt_inout_detached(&n.into(), &self.aad, msg.into(), tag)
            }
            Aead::ChaCha(a) => {
                let tag = (&*tag).try_into().map_err(|_| CryptError::Open(index))?;
                a.decrypt_inout_detached(&n.into(), &self.aad, msg.into(), tag)
            }
        };
        ok.map_err(|_| CryptError::Open(index))?;
        buf.truncate(body);
        Ok(())
    }
}

/// Encrypts a stream: feed plaintext with [`Encryptor::update`], end with
/// [`Encryptor::finish`]; each call appends ready ciphertext (header first) to `out`. Holds at
/// most one chunk of plaintext.
pub struct Encryptor {
    cipher: FileCipher,
    header: [u8; HEADER],
    header_written: bool,
    pending: Vec<u8>,
    index: u64,
    plain_len: u64,
}

impl Encryptor {
    pub fn new(data_key: &SecretKey, cipher: Cipher, id: u64) -> Result<Encryptor, CryptError> {
        let mut header = [0u8; HEADER];
        header[..4].copy_from_slice(&MAGIC);
        header[4] = match cipher {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        };
        getrandom::fill(&mut header[8..]).map_err(|_| CryptError::Random)?;
        Ok(Encryptor {
            cipher: FileCipher::new(data_key, &header, id)?,
            header,
            header_written: false,
            pending: Vec::with_capacity(SEALED_CHUNK),
            index: 0,
            plain_len: 0,
        })
    }

    fn emit_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(&self.header);
            self.header_written = true;
        }
    }

    /// Plaintext bytes fed so far.
    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        self.emit_header(out);
        self.plain_len += data.len() as u64;
        while !data.is_empty() {
            if self.pending.len() == CHUNK {
                // More data follows, so this full chunk is not the last.
                self.cipher.seal(self.index, false, &mut self.pending);
                out.extend_from_slice(&self.pending);
                self.pending.clear();
                self.index += 1;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
    }

    /// Seals what is pending as the last chunk. Returns the plaintext length.
    pub fn finish(mut self, out: &mut Vec<u8>) -> u64 {
        self.emit_header(out);
        self.cipher.seal(self.index, true, &mut self.pending);
        out.extend_from_slice(&self.pending);
        self.plain_len
    }
}

/// Random access to an encrypted file: which ciphertext bytes hold a chunk, and opening them.
pub struct Decryptor {
    cipher: FileCipher,
    chunks: u64,
    plain_len: u64,
}

impl Decryptor {
    /// `header` is the file's first [`HEADER`] bytes, `len` its total size.
    pub fn new(
        data_key: &SecretKey,
        header: &[u8; HEADER],
        id: u64,
        len: u64,
    ) -> Result<Decryptor, CryptError> {
        let plain_len = plaintext_len(len)?;
        Ok(Decryptor {
            cipher: FileCipher::new(data_key, header, id)?,
            chunks: chunk_count(plain_len),
            plain_len,
        })
    }

    pub fn plain_len(&self) -> u64 {
        self.plain_len
    }

    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Offset and length of chunk `index` in the file.
    pub fn chunk_span(&self, index: u64) -> Result<(u64, usize), CryptError> {
        if index >= self.chunks {
            return Err(CryptError::Range(index));
        }
        let start = HEADER as u64 + index * SEALED_CHUNK as u64;
        let plain = if index + 1 == self.chunks {
            (self.plain_len - index * CHUNK as u64) as usize
        } else {
            CHUNK
        };
        Ok((start, plain + TAG))
    }

    /// Opens chunk `index`, given exactly the bytes of [`Decryptor::chunk_span`], in place.
    pub fn open_chunk(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), CryptError> {
        let (_, len) = self.chunk_span(index)?;
        if buf.len() != len {
            return Err(CryptError::Open(index));
        }
        self.cipher.open(index, index + 1 == self.chunks, buf)
    }
}

/// The chunks covering plaintext bytes `start..end` (end exclusive, non-empty range).
pub fn chunks_for(start: u64, end: u64) -> std::ops::RangeInclusive<u64> {
    (start / CHUNK as u64)..=((end - 1) / CHUNK as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encrypt(key: &SecretKey, cipher: Cipher, id: u64, data: &[u8], step: usize) -> Vec<u8> {
        let mut e = Encryptor::new(key, cipher, id).unwrap();
        let mut out = Vec::new();
        for part in data.chunks(step.max(1)) {
            e.update(part, &mut out);
        }
        e.finish(&mut out);
        out
    }

    fn decrypt_range(
        key: &SecretKey,
        id: u64,
        file: &[u8],
        start: u64,
        end: u64,
    ) -> Result<Vec<u8>, CryptError> {
        let header: [u8; HEADER] = file[..HEADER].try_into().unwrap();
        let d = Decryptor::new(key, &header, id, file.len() as u64)?;
        let mut out = Vec::new();
        if start == end {
            return Ok(out);
        }
        for i in chunks_for(start, end) {
            let (off, len) = d.chunk_span(i)?;
            let mut buf = file[off as usize..off as usize + len].to_vec();
            d.open_chunk(i, &mut buf)?;
            let base = i * CHUNK as u64;
            let from = start.saturating_sub(base) as usize;
            let to = ((end - base) as usize).min(buf.len());
            out.extend_from_slice(&buf[from..to]);
        }
        Ok(out)
    }

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trip_sizes_and_both_ciphers() {
        let key = SecretKey::generate().unwrap();
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
                let d = data(n);
                for step in [1000, CHUNK, 7 * CHUNK] {
                    let f = encrypt(&key, cipher, 9, &d, step);
                    assert_eq!(f.len() as u64, ciphertext_len(n as u64), "n={n}");
                    assert_eq!(plaintext_len(f.len() as u64).unwrap(), n as u64);
                    assert_eq!(decrypt_range(&key, 9, &f, 0, n as u64).unwrap(), d, "n={n}");
                }
            }
        }
    }

    #[test]
    fn any_range_decrypts_alone() {
        let key = SecretKey::generate().unwrap();
        let d = data(5 * CHUNK + 123);
        let f = encrypt(&key, Cipher::ChaCha20Poly1305, 1, &d, 4096);
        for (s, e) in [
            (0, 1),
            (CHUNK as u64 - 1, CHUNK as u64 + 1),
            (200_000, 200_001),
            (3, 5 * CHUNK as u64 + 123),
        ] {
            assert_eq!(
                decrypt_range(&key, 1, &f, s, e).unwrap(),
                d[s as usize..e as usize]
            );
        }
    }

    #[test]
    fn plaintext_does_not_appear() {
        let key = SecretKey::generate().unwrap();
        let d = b"CANARY-attachment-bytes ".repeat(10_000);
        let f = encrypt(&key, Cipher::Aes256Gcm, 1, &d, 9999);
        assert!(!f.windows(12).any(|w| w == b"CANARY-attac"));
    }

    #[test]
    fn truncation_is_detected() {
        let key = SecretKey::generate().unwrap();
        let d = data(3 * CHUNK);
        let f = encrypt(&key, Cipher::ChaCha20Poly1305, 1, &d, CHUNK);
        // Cut at a chunk boundary: the length is plausible, but the new last chunk was not
        // sealed as the last.
        let cut = &f[..HEADER + 2 * SEALED_CHUNK];
        assert_eq!(
            decrypt_range(&key, 1, cut, 0, 2 * CHUNK as u64),
            Err(CryptError::Open(1))
        );
        // Cut inside a chunk.
        let cut = &f[..f.len() - 5];
        assert!(decrypt_range(&key, 1, cut, 0, 3 * CHUNK as u64 - 5).is_err());
        assert_eq!(plaintext_len(HEADER as u64 + 3), Err(CryptError::Length));
    }

    #[test]
    fn reordering_tampering_wrong_id_or_key_fail() {
        let key = SecretKey::generate().unwrap();
        let d = data(3 * CHUNK);
        let f = encrypt(&key, Cipher::Aes256Gcm, 1, &d, CHUNK);
        let mut swapped = f.clone();
        let (a, b) = (HEADER, HEADER + SEALED_CHUNK);
        let first = f[a..b].to_vec();
        swapped.copy_within(b..b + SEALED_CHUNK, a);
        swapped[b..b + SEALED_CHUNK].copy_from_slice(&first);
        assert_eq!(decrypt_range(&key, 1, &swapped, 0, 10), Err(CryptError::Open(0)));
        let mut flipped = f.clone();
        flipped[HEADER + 5] ^= 1;
        assert_eq!(decrypt_range(&key, 1, &flipped, 0, 10), Err(CryptError::Open(0)));
        let mut salt = f.clone();
        salt[10] ^= 1;
        assert!(decrypt_range(&key, 1, &salt, 0, 10).is_err());
        assert_eq!(decrypt_range(&key, 2, &f, 0, 10), Err(CryptError::Open(0)));
        let other = SecretKey::generate().unwrap();
        assert_eq!(decrypt_range(&other, 1, &f, 0, 10), Err(CryptError::Open(0)));
        let mut bad = f.clone();
        bad[0] = b'X';
        assert_eq!(decrypt_range(&key, 1, &bad, 0, 10), Err(CryptError::Header));
    }
}
