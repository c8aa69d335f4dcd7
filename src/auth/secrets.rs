//! The secrets of auth and how they are kept: random bearer values (API tokens, session
//! cookies, WebSocket tickets) that are stored only as SHA-256 hashes, and argon2id password
//! hashes.
//!
//! A bearer value is 32 random bytes, so a plain SHA-256 is enough to store it: nothing can be
//! guessed from the hash, and lookups stay one table get. Passwords are low-entropy and get
//! argon2id with parameters for a Raspberry Pi 4 (19 MiB, 2 passes, 1 lane: about 0.1 s there),
//! which is CPU work the caller must run on the blocking pool.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::AuthError;

/// Every API token starts with this, so leaked tokens are easy to recognise (and scan for).
pub const TOKEN_PREFIX: &str = "lbx_";

/// argon2id memory cost in KiB (19 MiB, OWASP's minimum for argon2id).
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// argon2id passes.
pub const ARGON2_T: u32 = 2;
/// argon2id lanes: one, because the board has four cores and several logins may run at once.
pub const ARGON2_P: u32 = 1;

fn argon2() -> Result<Argon2<'static>, AuthError> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None)
        .map_err(|e| AuthError::Internal(format!("argon2 parameters: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// 32 bytes from the operating system's random source.
pub fn random_bytes() -> Result<[u8; 32], AuthError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| AuthError::Internal(format!("random source: {e}")))?;
    Ok(b)
}

/// A fresh random value as unpadded base64url (43 characters): session cookies and tickets.
pub fn random_value() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes()?))
}

/// A fresh API token, `lbx_` plus 43 base64url characters. Shown once, then only its hash is kept.
pub fn new_token() -> Result<String, AuthError> {
    Ok(format!("{TOKEN_PREFIX}{}", random_value()?))
}

/// True when `s` has the shape of an API token (so it can be told apart from other credentials
/// without a lookup, and never logged by accident as something else).
pub fn looks_like_token(s: &str) -> bool {
    s.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The key a bearer value is stored under.
pub fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

/// Hashes a password with argon2id under a fresh salt. Blocking CPU work (about 0.1 s on a
/// Pi 4): call from `spawn_blocking`.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Internal(format!("random source: {e}")))?;
    let hash = argon2()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| AuthError::Internal(format!("argon2: {e}")))?;
    Ok(hash.to_string())
}

/// Checks a password against a stored PHC string (its own parameters are used, so hashes made
/// with older parameters keep working). Blocking, like [`hash_password`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    match argon2() {
        Ok(a) => a.verify_password(password.as_bytes(), phc).is_ok(),
        Err(_) => false,
    }
}

/// A hash of a password nobody knows, verified when a login names an unknown user so that the
/// answer takes as long as for a known one.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw = random_value().unwrap_or_else(|_| "lanbox-dummy".into());
        hash_password(&pw).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip_and_phc_shape() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horse.", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens_have_their_shape_and_differ() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert!(looks_like_token(&a) && looks_like_token(&b), "{a}");
        assert_ne!(a, b);
        assert_ne!(digest(&a), digest(&b));
        assert!(!looks_like_token("lbx_short"));
        assert!(!looks_like_token(&a.replace("lbx_", "xyz_")));
    }
}
