//! The server's side of MTProto 2.0 message encryption
//! (<https://core.telegram.org/mtproto/description>), under an auth key both ends already hold.
//!
//! `x` is 0 for messages from the client and 8 for messages from the server:
//! - `msg_key = SHA256(auth_key[88+x..120+x] ++ plaintext ++ padding)[8..24]`;
//! - `a = SHA256(msg_key ++ auth_key[x..x+36])`, `b = SHA256(auth_key[40+x..76+x] ++ msg_key)`;
//! - `aes_key = a[0..8] ++ b[8..24] ++ a[24..32]`, `aes_iv = b[0..8] ++ a[8..24] ++ b[24..32]`;
//! - the packet is `auth_key_id ++ msg_key ++ AES-256-IGE(plaintext ++ padding)`, where
//!   `auth_key_id` is the low 64 bits of SHA1(auth_key) and the padding is 12 to 1024 random
//!   bytes that make the length a multiple of 16.
//!
//! grammers-crypto has the client's half (`encrypt_data_v2` with x = 0, `decrypt_data_v2` with
//! x = 8); the simulator needs the other half, written here from the specification, with AES-IGE
//! from grammers-crypto. The tests check each half against grammers' own.

use grammers_crypto::aes::{ige_decrypt, ige_encrypt};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Messages the client sends.
const X_CLIENT: usize = 0;
/// Messages the server sends.
const X_SERVER: usize = 8;

/// Why a packet from the client did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("packet too short or not a multiple of 16 bytes")]
    BadLength,
    #[error("the packet is under another auth key")]
    UnknownKey,
    #[error("msg_key does not match the decrypted message")]
    BadMsgKey,
}

/// An auth key with its ID, as the server keeps it.
#[derive(Clone)]
pub struct ServerKey {
    key: [u8; 256],
    id: [u8; 8],
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerKey(..)")
    }
}

impl ServerKey {
    pub fn new(key: [u8; 256]) -> ServerKey {
        let sha = Sha1::digest(key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&sha[12..20]);
        ServerKey { key, id }
    }

    pub fn id(&self) -> [u8; 8] {
        self.id
    }

    /// Opens a packet from the client; returns the plaintext (with its padding).
    pub fn open(&self, packet: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if packet.len() < 24 + 16 || !(packet.len() - 24).is_multiple_of(16) {
            return Err(CryptoError::BadLength);
        }
        if packet[..8] != self.id {
            return Err(CryptoError::UnknownKey);
        }
        let msg_key: [u8; 16] = packet[8..24].try_into().expect("16 bytes");
        let (key, iv) = derive(&self.key, &msg_key, X_CLIENT);
        let mut plain = packet[24..].to_vec();
        ige_decrypt(&mut plain, &key, &iv);
        if msg_key_of(&self.key, &plain, X_CLIENT) != msg_key {
            return Err(CryptoError::BadMsgKey);
        }
        Ok(plain)
    }

    /// Seals a plaintext for the client (padding added here).
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let pad = 16 + (16 - plain.len() % 16);
        let mut buf = Vec::with_capacity(24 + plain.len() + pad);
        buf.extend_from_slice(plain);
        let mut padding = [0u8; 32];
        getrandom::fill(&mut padding).expect("the OS random source");
        buf.extend_from_slice(&padding[..pad]);
        let msg_key = msg_key_of(&self.key, &buf, X_SERVER);
        let (key, iv) = derive(&self.key, &msg_key, X_SERVER);
        ige_encrypt(&mut buf, &key, &iv);
        let mut out = Vec::with_capacity(24 + buf.len());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&msg_key);
        out.extend_from_slice(&buf);
        out
    }
}

fn msg_key_of(auth_key: &[u8; 256], padded: &[u8], x: usize) -> [u8; 16] {
    let large = Sha256::new()
        .chain_update(&auth_key[88 + x..120 + x])
        .chain_update(padded)
        .finalize();
    large[8..24].try_into().expect("16 bytes")
}

fn derive(auth_key: &[u8; 256], msg_key: &[u8; 16], x: usize) -> ([u8; 32], [u8; 32]) {
    let a = Sha256::new()
        .chain_update(msg_key)
        .chain_update(&auth_key[x..x + 36])
        .finalize();
    let b = Sha256::new()
        .chain_update(&auth_key[40 + x..76 + x])
        .chain_update(msg_key)
        .finalize();
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&a[..8]);
    key[8..24].copy_from_slice(&b[8..24]);
    key[24..].copy_from_slice(&a[24..32]);
    let mut iv = [0u8; 32];
    iv[..8].copy_from_slice(&b[..8]);
    iv[8..24].copy_from_slice(&a[8..24]);
    iv[24..].copy_from_slice(&b[24..32]);
    (key, iv)
}

#[cfg(test)]
mod tests {
    use grammers_crypto::{AuthKey, DequeBuffer, decrypt_data_v2, encrypt_data_v2};

    use super::*;

    fn key() -> [u8; 256] {
        std::array::from_fn(|i| (i * 7 + 3) as u8)
    }

    #[test]
    fn opens_what_the_grammers_client_seals() {
        let mut buf = DequeBuffer::with_capacity(64, 32);
        buf.extend(b"sixteen byte msg and some more..".iter().copied());
        encrypt_data_v2(&mut buf, &AuthKey::from_bytes(key()));
        let plain = ServerKey::new(key()).open(&buf[..]).unwrap();
        assert_eq!(&plain[..32], b"sixteen byte msg and some more..");
    }

    #[test]
    fn the_grammers_client_opens_what_it_seals() {
        let mut packet = ServerKey::new(key()).seal(b"answer from the server, 48 bytes long, padded..");
        let plain = decrypt_data_v2(&mut packet, &AuthKey::from_bytes(key())).unwrap();
        assert_eq!(&plain[..47], b"answer from the server, 48 bytes long, padded..");
    }

    #[test]
    fn a_flipped_bit_or_another_key_is_refused() {
        let server = ServerKey::new(key());
        let mut buf = DequeBuffer::with_capacity(64, 32);
        buf.extend([1u8; 32]);
        encrypt_data_v2(&mut buf, &AuthKey::from_bytes(key()));
        let mut packet = buf[..].to_vec();
        packet[40] ^= 1;
        assert_eq!(server.open(&packet), Err(CryptoError::BadMsgKey));
        let other = ServerKey::new([9u8; 256]);
        assert_eq!(other.open(&buf[..]), Err(CryptoError::UnknownKey));
    }
}
