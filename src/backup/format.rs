//! The backup file: a plaintext header, then the contents in encrypted chunks.
//!
//! ```text
//! header  "LANBOXBK" | version u16 | argon2id m_cost u32, t_cost u32, p_cost u32 | kdf salt [16]
//!         | file salt [16] | key check [16] | chunk size u32              (all big-endian)
//! chunk*  final flag (high bit) + ciphertext length u32 | ChaCha20-Poly1305(file key, nonce, plaintext, aad = header)
//! ```
//!
//! The backup key is argon2id(passphrase, kdf salt) (the box keeps it only wrapped by its master
//! key, see [`super::key`]). Each file gets its own key, a keyed BLAKE3 hash of the file salt
//! under the backup key, so chunk nonces can simply count: the nonce is the chunk number
//! (u64) followed by a final-chunk flag byte. A file cut short lacks the flagged chunk and is
//! refused as truncated; chunks moved, dropped or copied from another file fail authentication;
//! bytes after the final chunk are refused too. The key check (a keyed hash of the file salt
//! under the backup key) tells a wrong passphrase apart from a damaged file.
//!
//! ChaCha20-Poly1305, not AES-GCM: it is fast without AES instructions (the Pi 4 has none), and
//! a backup is read on whatever machine restores it.

use std::io::{Read, Write};

use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInOut, KeyInit};

use super::BackupError;
use crate::store::seal::SecretKey;

pub const MAGIC: &[u8; 8] = b"LANBOXBK";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 8 + 2 + 12 + 16 + 16 + 16 + 4;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 << 10;
const TAG: usize = 16;
/// High bit of a chunk's length word: this is the final chunk.
const LAST_FLAG: u32 = 1 << 31;

pub use crate::store::passkey::Kdf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub kdf: Kdf,
    pub file_salt: [u8; 16],
    pub check: [u8; 16],
}

fn file_key(key: &SecretKey, file_salt: &[u8; 16]) -> ChaCha20Poly1305 {
    let mut h = blake3::Hasher::new_keyed(key.expose());
    h.update(b"lanbox/backup/v1/file-key");
    h.update(file_salt);
    ChaCha20Poly1305::new(h.finalize().as_bytes().into())
}

fn key_check(key: &SecretKey, file_salt: &[u8; 16]) -> [u8; 16] {
    let mut h = blake3::Hasher::new_keyed(key.expose());
    h.update(b"lanbox/backup/v1/key-check");
    h.update(file_salt);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

fn nonce(counter: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&counter.to_be_bytes());
    n[8] = u8::from(last);
    n
}

impl Header {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        let mut w = &mut out[..];
        w.write_all(MAGIC).expect("fits");
        w.write_all(&VERSION.to_be_bytes()).expect("fits");
        w.write_all(&self.kdf.m_cost.to_be_bytes()).expect("fits");
        w.write_all(&self.kdf.t_cost.to_be_bytes()).expect("fits");
        w.write_all(&self.kdf.p_cost.to_be_bytes()).expect("fits");
        w.write_all(&self.kdf.salt).expect("fits");
        w.write_all(&self.file_salt).expect("fits");
        w.write_all(&self.check).expect("fits");
        w.write_all(&(CHUNK as u32).to_be_bytes()).expect("fits");
        out
    }

    fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, BackupError> {
        if &b[..8] != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let version = u16_at(8);
        if version != VERSION {
            return Err(BackupError::Damaged(format!(
                "format version {version}; this lanbox reads version {VERSION}"
            )));
        }
        if u32_at(HEADER_LEN - 4) as usize != CHUNK {
            return Err(BackupError::Damaged("unexpected chunk size in the header".into()));
        }
        let arr = |i: usize| -> [u8; 16] { b[i..i + 16].try_into().expect("16 bytes") };
        Ok(Header {
            kdf: Kdf {
                m_cost: u32_at(10),
                t_cost: u32_at(14),
                p_cost: u32_at(18),
                salt: arr(22),
            },
            file_salt: arr(38),
            check: arr(54),
        })
    }

    /// Reads the header of a backup (to learn its key derivation before asking for the key).
    pub fn read(r: &mut impl Read) -> Result<Header, BackupError> {
        let mut b = [0u8; HEADER_LEN];
        read_exact_or(r, &mut b, || {
            BackupError::Truncated("the header is incomplete".into())
        })?;
        Header::decode(&b)
    }
}

fn read_exact_or(
    r: &mut impl Read,
    buf: &mut [u8],
    short: impl FnOnce() -> BackupError,
) -> Result<(), BackupError> {
    match r.read_exact(buf) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(short()),
        Err(e) => Err(BackupError::Read(e.to_string())),
    }
}

/// Encrypts what is written into chunks. [`Encryptor::finish`] writes the final chunk; a writer
/// dropped without it leaves a file every reader refuses as truncated.
pub struct Encryptor<W: Write> {
    out: W,
    aead: ChaCha20Poly1305,
    aad: [u8; HEADER_LEN],
    buf: Vec<u8>,
    counter: u64,
    /// Bytes written to `out` so far (header included).
    written: u64,
}

impl<W: Write> Encryptor<W> {
    pub fn new(mut out: W, key: &SecretKey, kdf: Kdf) -> Result<Encryptor<W>, BackupError> {
        let mut file_salt = [0u8; 16];
        getrandom::fill(&mut file_salt).map_err(|_| BackupError::Random)?;
        let header = Header {
            kdf,
            file_salt,
            check: key_check(key, &file_salt),
        };
        let aad = header.encode();
        out.write_all(&aad).map_err(BackupError::write)?;
        Ok(Encryptor {
            out,
            aead: file_key(key, &file_salt),
            aad,
            buf: Vec::with_capacity(CHUNK + TAG),
            counter: 0,
            written: HEADER_LEN as u64,
        })
    }

    fn seal_chunk(&mut self, last: bool) -> Result<(), BackupError> {
        let n = nonce(self.counter, last);
        self.aead
            .encrypt_in_place(&n.into(), &self.aad, &mut self.buf)
            .map_err(|_| BackupError::Damaged("a chunk could not be sealed".into()))?;
        let len = self.buf.len() as u32;
        let word = if last { len | LAST_FLAG } else { len };
        self.out
            .write_all(&word.to_be_bytes())
            .map_err(BackupError::write)?;
        self.out.write_all(&self.buf).map_err(BackupError::write)?;
        self.written += 4 + u64::from(len);
        self.counter += 1;
        self.buf.clear();
        Ok(())
    }

    /// Seals the final chunk and hands back the output, flushed, and its length in bytes.
    pub fn finish(mut self) -> Result<(W, u64), BackupError> {
        self.seal_chunk(true)?;
        self.out.flush().map_err(BackupError::write)?;
        Ok((self.out, self.written))
    }
}

impl<W: Write> Write for Encryptor<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.seal_chunk(false).map_err(std::io::Error::other)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Decrypts and checks chunk by chunk. Reading past the end of the contents without having met
/// the final chunk, a chunk that fails authentication, or bytes after the final chunk are
/// errors (as `io::Error`s wrapping a [`BackupError`]; see [`BackupError::from_io`]).
pub struct Decryptor<R: Read> {
    input: R,
    aead: ChaCha20Poly1305,
    aad: [u8; HEADER_LEN],
    buf: Vec<u8>,
    pos: usize,
    counter: u64,
    done: bool,
}

impl<R: Read> Decryptor<R> {
    /// Checks `header` (already read from `input`) against `key`: a mismatch is a wrong
    /// passphrase (or a header damaged in just that place).
    pub fn new(input: R, header: &Header, key: &SecretKey) -> Result<Decryptor<R>, BackupError> {
        if key_check(key, &header.file_salt) != header.check {
            return Err(BackupError::WrongPassphrase);
        }
        Ok(Decryptor {
            input,
            aead: file_key(key, &header.file_salt),
            aad: header.encode(),
            buf: Vec::with_capacity(CHUNK + TAG),
            pos: 0,
            counter: 0,
            done: false,
        })
    }

    fn next_chunk(&mut self) -> Result<(), BackupError> {
        let chunk = self.counter;
        let mut len = [0u8; 4];
        read_exact_or(&mut self.input, &mut len, || {
            BackupError::Truncated(format!(
                "the file ends before its final chunk (after chunk {chunk})"
            ))
        })?;
        let word = u32::from_be_bytes(len);
        let last = word & LAST_FLAG != 0;
        let len = (word & !LAST_FLAG) as usize;
        if !(TAG..=CHUNK + TAG).contains(&len) {
            return Err(BackupError::Damaged(format!(
                "chunk {chunk} has an impossible length"
            )));
        }
        self.buf.resize(len, 0);
        read_exact_or(&mut self.input, &mut self.buf, || {
            BackupError::Truncated(format!("the file ends inside chunk {chunk}"))
        })?;
        // The flag is part of the nonce: flipping it in the length word fails authentication.
        self.aead
            .decrypt_in_place(&nonce(chunk, last).into(), &self.aad, &mut self.buf)
            .map_err(|_| BackupError::Damaged(format!("chunk {chunk} fails authentication")))?;
        if last {
            let mut probe = [0u8; 1];
            match self.input.read(&mut probe) {
                Ok(0) => {}
                Ok(_) => return Err(BackupError::Damaged("bytes follow the final chunk".into())),
                Err(e) => return Err(BackupError::Read(e.to_string())),
            }
            self.done = true;
        }
        self.pos = 0;
        self.counter += 1;
        Ok(())
    }

    /// Whether the final chunk has been read and checked.
    pub fn finished(&self) -> bool {
        self.done && self.pos == self.buf.len()
    }
}

impl<R: Read> Read for Decryptor<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk().map_err(std::io::Error::other)?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Kdf {
        Kdf {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
            salt: [3; 16],
        }
    }

    fn sealed(len: usize, key: &SecretKey) -> (Vec<u8>, Vec<u8>) {
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = Encryptor::new(Vec::new(), key, cheap()).unwrap();
        // Odd-sized writes, so chunk boundaries fall inside them.
        for part in plain.chunks(10_007) {
            enc.write_all(part).unwrap();
        }
        let (out, n) = enc.finish().unwrap();
        assert_eq!(n as usize, out.len());
        (plain, out)
    }

    fn open(file: &[u8], key: &SecretKey) -> Result<Vec<u8>, BackupError> {
        let mut input = file;
        let header = Header::read(&mut input)?;
        let mut dec = Decryptor::new(input, &header, key)?;
        let mut out = Vec::new();
        dec.read_to_end(&mut out)
            .map_err(|e| BackupError::from_io(e, false))?;
        assert!(dec.finished());
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_size_around_a_chunk() {
        let key = SecretKey::generate().unwrap();
        for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5] {
            let (plain, file) = sealed(len, &key);
            assert_eq!(open(&file, &key).unwrap(), plain, "{len}");
        }
    }

    #[test]
    fn wrong_key_truncation_damage_and_trailing_bytes_are_refused() {
        let key = SecretKey::generate().unwrap();
        let (_, file) = sealed(3 * CHUNK + 5, &key);
        let other = SecretKey::generate().unwrap();
        assert!(matches!(open(&file, &other), Err(BackupError::WrongPassphrase)));
        // Cut at every chunk boundary and inside chunks: never accepted.
        let step = CHUNK + 16 + 4;
        for cut in [
            0,
            10,
            HEADER_LEN,
            HEADER_LEN + 3,
            HEADER_LEN + step,
            HEADER_LEN + 3 * step,
            file.len() - 1,
        ] {
            let e = open(&file[..cut], &key).unwrap_err();
            assert!(
                matches!(e, BackupError::Truncated(_) | BackupError::NotABackup),
                "cut at {cut}: {e}"
            );
        }
        // Dropping whole chunks from the end (the final one included) is truncation too.
        let e = open(&file[..HEADER_LEN + 2 * step], &key).unwrap_err();
        assert!(matches!(e, BackupError::Truncated(_)), "{e}");
        for at in [HEADER_LEN + 100, HEADER_LEN + step + 5, file.len() - 3] {
            let mut bad = file.clone();
            bad[at] ^= 0x40;
            let e = open(&bad, &key).unwrap_err();
            assert!(matches!(e, BackupError::Damaged(_)), "flip at {at}: {e}");
        }
        // A chunk's final flag set on a middle chunk fails authentication.
        let mut bad = file.clone();
        bad[HEADER_LEN] |= 0x80;
        assert!(matches!(open(&bad, &key), Err(BackupError::Damaged(_))));
        let mut longer = file.clone();
        longer.push(0);
        assert!(matches!(open(&longer, &key), Err(BackupError::Damaged(_))));
        let mut zeroed = file.clone();
        zeroed[HEADER_LEN..].fill(0);
        assert!(open(&zeroed, &key).is_err());
        assert!(matches!(open(&[0; 200], &key), Err(BackupError::NotABackup)));
    }
}
