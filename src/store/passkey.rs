//! Keys from passphrases: argon2id with its cost parameters and salt kept beside what the key
//! protects (a backup file's header, the sealed master key). Used by backups and by sealed boot.

use super::seal::SecretKey;

/// argon2id's cost parameters and salt: what turns a passphrase into a 32-byte key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Kdf {
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    pub salt: [u8; 16],
}

/// Why no key came out.
#[derive(Debug, thiserror::Error)]
pub enum KdfError {
    #[error("the system's random number generator failed")]
    Random,
    /// The stored parameters are out of bounds or refused (a damaged or hostile file).
    #[error("{0}")]
    Parameters(String),
}

impl Kdf {
    /// 64 MiB, 3 passes: about a second on a Pi 4, paid once when a passphrase is set and once
    /// per use of it (a restore, an unlock).
    pub fn fresh() -> Result<Kdf, KdfError> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|_| KdfError::Random)?;
        Ok(Kdf {
            m_cost: 64 << 10,
            t_cost: 3,
            p_cost: 1,
            salt,
        })
    }

    /// The key for `passphrase`. Blocking CPU and memory work.
    pub fn derive(&self, passphrase: &str) -> Result<SecretKey, KdfError> {
        use argon2::{Algorithm, Argon2, Params, Version};
        // Bounds stored parameters may ask for: a damaged or hostile file must not make the box
        // allocate gigabytes or run for hours.
        if self.m_cost > 1 << 20 || self.t_cost > 16 || self.p_cost == 0 || self.p_cost > 16 {
            return Err(KdfError::Parameters(
                "the key derivation costs asked for are out of bounds".into(),
            ));
        }
        let params = Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| KdfError::Parameters(format!("key derivation parameters: {e}")))?;
        let mut out = zeroize::Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), &self.salt, out.as_mut())
            .map_err(|e| KdfError::Parameters(format!("key derivation: {e}")))?;
        Ok(SecretKey::from_bytes(out.as_ref()).expect("32 bytes"))
    }

    /// The 28 bytes stored beside what the key protects: m, t, p (big-endian u32) and the salt.
    pub fn to_bytes(&self) -> [u8; 28] {
        let mut out = [0u8; 28];
        out[0..4].copy_from_slice(&self.m_cost.to_be_bytes());
        out[4..8].copy_from_slice(&self.t_cost.to_be_bytes());
        out[8..12].copy_from_slice(&self.p_cost.to_be_bytes());
        out[12..].copy_from_slice(&self.salt);
        out
    }

    pub fn from_bytes(b: &[u8; 28]) -> Kdf {
        let u = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        Kdf {
            m_cost: u(0),
            t_cost: u(4),
            p_cost: u(8),
            salt: b[12..].try_into().expect("16 bytes"),
        }
    }
}
