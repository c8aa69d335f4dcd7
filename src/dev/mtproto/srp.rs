//! The server's side of Telegram's 2FA check (SRP, <https://core.telegram.org/api/srp>), so the
//! simulator verifies a password proof for real instead of comparing strings it never sees.
//!
//! With `H` = SHA-256, `pad` = 256-byte big-endian, `g` = 3 and `p` Telegram's 2048-bit safe
//! prime:
//! - `x = PH2(password, salt1, salt2)`, `v = g^x mod p` (all the server keeps of the password);
//! - `k = H(p | pad(g))`, a challenge `B = (k*v + g^b) mod p` for a fresh random `b`;
//! - given the client's `A` and `M1`: `u = H(pad(A) | pad(B))`, `S = (A * v^u)^b mod p`,
//!   `K = H(pad(S))`, and `M1` must equal
//!   `H(H(p) xor H(pad(g)) | H(salt1) | H(salt2) | pad(A) | pad(B) | K)`.

use hmac::Hmac;
use num_bigint::BigUint;
use sha2::{Digest, Sha256, Sha512};

/// Telegram's 2048-bit prime (the one official clients accept without further checks).
const P_HEX: &str = "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b";
pub const G: i32 = 3;

/// A password as the server keeps it: salts and verifier.
#[derive(Clone)]
pub struct Verifier {
    pub salt1: Vec<u8>,
    pub salt2: Vec<u8>,
    v: BigUint,
}

/// One `account.getPassword` challenge, kept until the client answers it.
#[derive(Clone)]
pub struct Challenge {
    pub srp_id: i64,
    b: BigUint,
    pub g_b: [u8; 256],
}

pub fn p_bytes() -> Vec<u8> {
    (0..P_HEX.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&P_HEX[i..i + 2], 16).expect("hex constant"))
        .collect()
}

fn p() -> BigUint {
    BigUint::from_bytes_be(&p_bytes())
}

fn pad(n: &BigUint) -> [u8; 256] {
    let b = n.to_bytes_be();
    let mut out = [0u8; 256];
    out[256 - b.len()..].copy_from_slice(&b);
    out
}

fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut d = Sha256::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().into()
}

fn sh(data: &[u8], salt: &[u8]) -> [u8; 32] {
    h(&[salt, data, salt])
}

fn ph2(password: &[u8], salt1: &[u8], salt2: &[u8]) -> [u8; 32] {
    let ph1 = sh(&sh(password, salt1), salt2);
    let mut dk = [0u8; 64];
    pbkdf2::pbkdf2::<Hmac<Sha512>>(&ph1, salt1, 100_000, &mut dk).expect("any output length works");
    sh(&dk, salt2)
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source");
    b
}

fn k() -> BigUint {
    let g = pad(&BigUint::from(G as u32));
    BigUint::from_bytes_be(&h(&[&p_bytes(), &g]))
}

impl Verifier {
    pub fn new(password: &str) -> Verifier {
        let salt1 = random::<32>().to_vec();
        let salt2 = random::<16>().to_vec();
        let x = BigUint::from_bytes_be(&ph2(password.as_bytes(), &salt1, &salt2));
        let v = BigUint::from(G as u32).modpow(&x, &p());
        Verifier { salt1, salt2, v }
    }

    pub fn challenge(&self, srp_id: i64) -> Challenge {
        let p = p();
        let b = BigUint::from_bytes_be(&random::<256>()) % &p;
        let g_b = (k() * &self.v + BigUint::from(G as u32).modpow(&b, &p)) % &p;
        Challenge {
            srp_id,
            b,
            g_b: pad(&g_b),
        }
    }

    /// Whether `m1` proves the password for `challenge`, given the client's `g_a`.
    pub fn check(&self, challenge: &Challenge, g_a: &[u8], m1: &[u8]) -> bool {
        let p = p();
        let a = BigUint::from_bytes_be(g_a);
        if g_a.len() > 256 || a <= BigUint::from(1u8) || a >= p {
            return false;
        }
        let a_pad = pad(&a);
        let u = BigUint::from_bytes_be(&h(&[&a_pad, &challenge.g_b]));
        let s = (a * self.v.modpow(&u, &p)).modpow(&challenge.b, &p);
        let k_s = h(&[&pad(&s)]);
        let g_pad = pad(&BigUint::from(G as u32));
        let hp = h(&[&p_bytes()]);
        let hg = h(&[&g_pad]);
        let xor: Vec<u8> = hp.iter().zip(hg.iter()).map(|(a, b)| a ^ b).collect();
        let expected = h(&[
            &xor,
            &h(&[&self.salt1]),
            &h(&[&self.salt2]),
            &a_pad,
            &challenge.g_b,
            &k_s,
        ]);
        // Constant time is not needed in a simulator, but costs nothing here.
        m1.len() == 32 && expected.iter().zip(m1).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

#[cfg(test)]
mod tests {
    use grammers_crypto::two_factor_auth::{calculate_2fa, check_p_and_g};

    use super::*;

    #[test]
    fn the_grammers_proof_passes_for_the_right_password_only() {
        let v = Verifier::new("correct horse");
        let c = v.challenge(7);
        let a = random::<256>().to_vec();
        let (m1, g_a) = calculate_2fa(
            &v.salt1,
            &v.salt2,
            &p_bytes(),
            &G,
            c.g_b.to_vec(),
            a.clone(),
            "correct horse",
        );
        assert!(v.check(&c, &g_a, &m1));
        let (m1, g_a) = calculate_2fa(
            &v.salt1,
            &v.salt2,
            &p_bytes(),
            &G,
            c.g_b.to_vec(),
            a,
            "wrong horse",
        );
        assert!(!v.check(&c, &g_a, &m1));
        assert!(
            check_p_and_g(&p_bytes(), &G),
            "the prime passes grammers' own check"
        );
    }
}
