//! The secrets of auth and how they are kept: random bearer values (API tokens, session
//! cookies, WebSocket tickets) that are stored only as SHA-256 hashes, and argon2id password
//! hashes.
//!
//! A bearer value is 32 random bytes, so a plain SHA-256 is enough to store it: nothing can be
//! guessed from the hash, and lookups stay one table get. Passwords are low-entropy and get
//! argon2id with parameters for a Raspberry Pi 4 (19 MiB, 2 passes, 1 lane: about 0.1 s there),
//! which is CPU work the caller must run on the blocking pool. Its working memory is always
//! given by the caller (logins use [`super::hashing`]'s pool) or mapped for the one computation
//! and unmapped after; argon2 never takes it from the allocator, whose heap would keep it.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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

/// Output length of new hashes.
const OUTPUT_LEN: usize = 32;
/// The most working memory a stored hash may ask for (in KiB) before it is refused unchecked:
/// a hash is data, and data must not make the box map gigabytes.
const MAX_M_KIB: u32 = 256 * 1024;

fn params() -> Result<Params, AuthError> {
    Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, Some(OUTPUT_LEN))
        .map_err(|e| AuthError::Internal(format!("argon2 parameters: {e}")))
}

/// Blocks of working memory (1 KiB each) a hash with today's parameters needs.
pub fn hash_blocks() -> usize {
    params().map_or(ARGON2_M_KIB as usize, |p| p.block_count())
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
    let params = params()?;
    let mut memory = super::hashing::Memory::new(params.block_count())?;
    let mut out = [0u8; OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, memory.blocks())
        .map_err(|e| AuthError::Internal(format!("argon2: {e}")))?;
    phc_string(&params, &salt, &out)
}

fn phc_string(params: &Params, salt: &[u8], out: &[u8]) -> Result<String, AuthError> {
    let bad = |e: argon2::password_hash::phc::Error| AuthError::Internal(format!("phc: {e}"));
    Ok(PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| AuthError::Internal(format!("phc: {e}")))?,
        salt: Some(Salt::new(salt).map_err(bad)?),
        hash: Some(Output::new(out).map_err(bad)?),
    }
    .to_string())
}

/// Checks a password against a stored PHC string (its own parameters are used, so hashes made
/// with other parameters keep working), with `memory` as argon2's working memory; a hash that
/// needs more than `memory` gets a mapping of its own for this check. The outputs are compared
/// in constant time. Blocking, like [`hash_password`].
pub fn verify_password_in(password: &str, phc: &str, memory: &mut [Block]) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_KIB {
        return false;
    }
    let need = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut buf = [0u8; Output::MAX_LENGTH];
    let Some(out) = buf.get_mut(..expected.len()) else {
        return false;
    };
    let done = match memory.get_mut(..need) {
        Some(m) => argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, m),
        None => match super::hashing::Memory::new(need) {
            Ok(mut own) => {
                argon2.hash_password_into_with_memory(password.as_bytes(), salt, out, own.blocks())
            }
            Err(_) => return false,
        },
    };
    // `Output`'s equality is constant-time.
    done.is_ok() && Output::new(out).is_ok_and(|o| &o == expected)
}

/// [`verify_password_in`] with working memory mapped for this one check (the CLI and tests;
/// logins use the pool).
pub fn verify_password(password: &str, phc: &str) -> bool {
    match super::hashing::Memory::new(hash_blocks()) {
        Ok(mut m) => verify_password_in(password, phc, m.blocks()),
        Err(_) => false,
    }
}

/// A PHC string with today's parameters, a random salt and a random output: no password has
/// it. Checked when a login names an unknown or disabled user, so that the answer costs what
/// a real check costs (the same parameters, the same work) and tells nothing.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let (salt, out) = match (random_bytes(), random_bytes()) {
            (Ok(s), Ok(o)) => (s, o),
            // Without a random source no login succeeds anyway; keep the cost the same.
            _ => ([7u8; 32], [0u8; 32]),
        };
        params()
            .and_then(|p| phc_string(&p, &salt[..16], &out[..OUTPUT_LEN]))
            .unwrap_or_default()
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

    /// Hashes stored before the pool (made by the argon2 crate's own PHC hasher) still verify,
    /// and the crate's verifier accepts ours.
    #[test]
    fn hashes_agree_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let crate_own = Argon2::new(Algorithm::Argon2id, Version::V0x13, params().unwrap());
        let old = crate_own
            .hash_password_with_salt(b"correct horse", b"somesaltsomesalt")
            .unwrap()
            .to_string();
        let mut m = crate::auth::hashing::Memory::new(hash_blocks()).unwrap();
        assert!(verify_password_in("correct horse", &old, m.blocks()));
        assert!(!verify_password_in("correct horse!", &old, m.blocks()));
        let ours = hash_password("battery staple").unwrap();
        assert!(
            crate_own
                .verify_password(b"battery staple", ours.as_str())
                .is_ok()
        );
    }

    #[test]
    fn dummy_hash_has_todays_parameters_and_matches_nothing() {
        let d = dummy_hash();
        assert!(d.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{d}");
        assert_eq!(d, dummy_hash(), "made once");
        let mut m = crate::auth::hashing::Memory::new(hash_blocks()).unwrap();
        assert!(!verify_password_in("", d, m.blocks()));
        assert!(!verify_password_in("lanbox-dummy", d, m.blocks()));
    }

    #[test]
    fn a_hash_asking_for_huge_memory_is_refused_unchecked() {
        let huge = "$argon2id$v=19$m=4194304,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$JrzuZoOUsrQt0LD+O8YWbIRsR+Pgyj/+HfahsEtsNu4";
        assert!(!verify_password("x", huge));
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
