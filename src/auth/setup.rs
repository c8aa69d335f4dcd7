//! First run's gate: the one-time setup code that lets the first admin be created from the
//! browser while the box has no user. The code is printed only on the box's console, so a
//! stranger on the LAN who reaches the page first cannot take the box over. It is taken under a
//! lock before the user is written, so two racing requests cannot both succeed; a failed
//! attempt puts it back. The HTTP side is `api::setup`.

use std::sync::Mutex;

use super::AuthError;
use super::users;
use crate::store::{Store, StoreError};

/// Letters of a setup code: no 0/O, 1/I/L, so it reads unambiguously from a console.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// The one-time setup code, present while the box has no user.
#[derive(Debug, Default)]
pub struct SetupGate {
    // A std Mutex: nothing awaits while it is held.
    code: Mutex<Option<String>>,
}

fn new_code() -> Result<String, AuthError> {
    let bytes = crate::auth::secrets::random_bytes()?;
    // 15 letters of a 31-letter alphabet: about 74 bits; grouped for reading aloud.
    let letters: Vec<char> = bytes[..15]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    Ok(letters
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Compares without an early exit, so timing says nothing about how much of a guess was right.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (normalise(a), normalise(b));
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SetupGate {
    /// A gate with a fresh code when the store has no user, else a closed one.
    pub async fn open(store: &Store) -> Result<SetupGate, StoreError> {
        let empty = store.read(|r| Ok(users::list(r)?.is_empty())).await?;
        let code = if empty {
            Some(new_code().map_err(|_| StoreError::Io {
                path: "setup code".into(),
                source: std::io::Error::other("no randomness"),
            })?)
        } else {
            None
        };
        Ok(SetupGate {
            code: Mutex::new(code),
        })
    }

    /// The code to print on the console, while set-up is possible.
    pub fn code(&self) -> Option<String> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.code.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the code if `guess` is it.
    pub fn take(&self, guess: &str) -> Option<String> {
        let mut code = self.lock();
        if code.as_deref().is_some_and(|c| same(c, guess)) {
            code.take()
        } else {
            None
        }
    }

    pub fn put_back(&self, code: String) {
        *self.lock() = Some(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_well_and_compare_loosely() {
        let c = new_code().unwrap();
        assert_eq!(c.len(), 17, "{c}");
        assert!(c.chars().all(|x| x == '-' || ALPHABET.contains(&(x as u8))));
        assert!(same(&c, &c.to_lowercase().replace('-', " ")));
        assert!(!same(&c, "AAAAA-AAAAA-AAAAA"));
        assert!(!same(&c, ""));
    }

    #[test]
    fn a_code_is_taken_once() {
        let g = SetupGate {
            code: Mutex::new(Some("ABCDE-FGHJK-MNPQR".into())),
        };
        assert!(g.take("wrong").is_none());
        assert!(g.take("abcdefghjkmnpqr").is_some());
        assert!(g.take("ABCDE-FGHJK-MNPQR").is_none());
    }
}
