//! Signed download URLs: `/api/v1/files/ID?exp=UNIX&u=USER&sig=HEX`, where `sig` is
//! HMAC-SHA256 over (ID, expiry, user) under a key only this box holds. The key is random,
//! created once and stored wrapped by the master key (through the keyring, under a reserved
//! account number no real account gets), so a copy of the database alone cannot mint URLs.
//! The user is part of the signature so the download route can apply that user's grants as
//! they are at download time.

use hmac::{Hmac, KeyInit, Mac};
use redb::ReadableTable;
use sha2::Sha256;

use super::AttachmentError;
use super::tables::ATTACHMENT_KEY;
use crate::store::Store;
use crate::store::codec::Stored;
use crate::store::seal::SecretKey;

/// Keyring slot of the URL signing key (account IDs count up from 1 and never reach it).
const SIGNING_SLOT: u64 = u64::MAX;
const KEY_NAME: &str = "url_signing";

#[derive(Clone)]
pub struct UrlSigner {
    key: SecretKey,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(..)")
    }
}

/// Why a signed URL was refused (all answered 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Expired,
    BadSignature,
}

impl UrlSigner {
    /// Loads the signing key, creating and storing it on first use.
    pub async fn load(store: &Store) -> Result<UrlSigner, AttachmentError> {
        let key = store
            .write(1, |ctx| {
                let mut t = ctx.txn().open_table(ATTACHMENT_KEY)?;
                let existing = t.get(KEY_NAME)?.map(|v| v.value().get()).transpose()?;
                let sealer = match existing {
                    Some(wrapped) => ctx.keyring().data_key(SIGNING_SLOT, &wrapped)?,
                    None => {
                        let (sealer, wrapped) = ctx.keyring().new_data_key(SIGNING_SLOT)?;
                        t.insert(KEY_NAME, Stored::new(&wrapped)?)?;
                        sealer
                    }
                };
                Ok(sealer.key().clone())
            })
            .await?;
        Ok(UrlSigner { key })
    }

    fn mac(&self, id: u64, exp: u64, user: u64) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.key.expose()).expect("any key length");
        mac.update(b"lanbox/file-url/v1");
        mac.update(&id.to_be_bytes());
        mac.update(&exp.to_be_bytes());
        mac.update(&user.to_be_bytes());
        mac
    }

    /// The query string (`exp=..&u=..&sig=..`) of a URL for `id`, for `user`, expiring at `exp`.
    pub fn query(&self, id: u64, exp: u64, user: u64) -> String {
        let sig = self.mac(id, exp, user).finalize().into_bytes();
        let hex: String = sig.iter().map(|b| format!("{b:02x}")).collect();
        format!("exp={exp}&u={user}&sig={hex}")
    }

    /// Checks a URL's signature (constant time) and expiry.
    pub fn verify(&self, id: u64, exp: u64, user: u64, sig_hex: &str, now: u64) -> Result<(), Refused> {
        let sig = decode_hex(sig_hex).ok_or(Refused::BadSignature)?;
        self.mac(id, exp, user)
            .verify_slice(&sig)
            .map_err(|_| Refused::BadSignature)?;
        if now >= exp {
            return Err(Refused::Expired);
        }
        Ok(())
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_binds_id_expiry_and_user() {
        let s = UrlSigner {
            key: SecretKey::generate().unwrap(),
        };
        let q = s.query(5, 1000, 7);
        let sig = q.rsplit_once("sig=").unwrap().1;
        assert_eq!(s.verify(5, 1000, 7, sig, 999), Ok(()));
        assert_eq!(s.verify(5, 1000, 7, sig, 1000), Err(Refused::Expired));
        assert_eq!(s.verify(6, 1000, 7, sig, 1), Err(Refused::BadSignature));
        assert_eq!(s.verify(5, 2000, 7, sig, 1), Err(Refused::BadSignature));
        assert_eq!(s.verify(5, 1000, 8, sig, 1), Err(Refused::BadSignature));
        assert_eq!(s.verify(5, 1000, 7, "zz", 1), Err(Refused::BadSignature));
    }
}
