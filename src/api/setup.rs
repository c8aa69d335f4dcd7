//! First run: creating the first admin from the browser.
//!
//! While the box has no user, `POST /api/v1/setup` creates an admin, but only with the one-time
//! setup code the box printed on its console at start ([`SetupGate::code`]): a stranger on the
//! LAN who reaches the page first cannot take the box over, because the code is only on the
//! console of the box. The code is taken under a lock before the user is written, so two
//! racing requests cannot both succeed; a failed attempt (weak password, bad name) puts it back.
//! Once any user exists (made here, by the CLI, or by the admin API) the route answers `409`.
//!
//! `GET /api/v1/setup` tells the page whether set-up is needed and shows the certificate
//! fingerprint to compare with the console. Neither route needs a credential.

use std::sync::Mutex;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::extract::{Json, Origin, origin};
use super::{ApiError, AppState};
use crate::auth::records::Role;
use crate::auth::users::{self, NewUser};
use crate::store::{Store, StoreError};

/// Letters of a setup code: no 0/O, 1/I/L, so it reads unambiguously from a console.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// The one-time setup code, present while the box has no user.
#[derive(Debug, Default)]
pub struct SetupGate {
    // A std Mutex: nothing awaits while it is held.
    code: Mutex<Option<String>>,
}

fn new_code() -> Result<String, ApiError> {
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
    fn take(&self, guess: &str) -> Option<String> {
        let mut code = self.lock();
        if code.as_deref().is_some_and(|c| same(c, guess)) {
            code.take()
        } else {
            None
        }
    }

    fn put_back(&self, code: String) {
        *self.lock() = Some(code);
    }
}

#[derive(Serialize)]
pub struct SetupState {
    /// Whether the box still needs its first admin.
    needed: bool,
    certificate_sha256: String,
}

async fn has_users(s: &AppState) -> Result<bool, ApiError> {
    Ok(s.store.read(|r| Ok(!users::list(r)?.is_empty())).await?)
}

pub async fn state(State(s): State<AppState>) -> Result<Json<SetupState>, ApiError> {
    let needed = s.setup.code().is_some() && !has_users(&s).await?;
    Ok(Json(SetupState {
        needed,
        certificate_sha256: s.tls.fingerprint(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupBody {
    username: String,
    password: String,
    setup_code: String,
}

#[derive(Serialize)]
pub struct SetupDone {
    id: u64,
    name: String,
    role: &'static str,
}

pub async fn create(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Json(body): Json<SetupBody>,
) -> Result<Response, ApiError> {
    if origin(&headers, &uri) == Origin::Foreign {
        return Err(ApiError::Forbidden);
    }
    let done = || ApiError::Conflict("this box is already set up; sign in instead".into());
    if s.setup.code().is_none() || has_users(&s).await? {
        return Err(done());
    }
    let Some(code) = s.setup.take(&body.setup_code) else {
        if s.setup.code().is_none() {
            return Err(done());
        }
        tracing::warn!("first-run set-up tried with a wrong setup code");
        return Err(ApiError::Coded {
            status: StatusCode::FORBIDDEN,
            code: "bad_setup_code",
            message: "wrong setup code: use the one printed on the box's console".into(),
        });
    };
    let added = users::add(
        &s.store,
        NewUser {
            name: body.username,
            role: Role::Admin,
            password: body.password,
            grants: Vec::new(),
        },
    )
    .await;
    match added {
        Ok(u) => {
            tracing::info!(user = u.id, "first admin created from the browser");
            Ok((
                StatusCode::CREATED,
                Json(SetupDone {
                    id: u.id,
                    name: u.name,
                    role: u.role.as_str(),
                }),
            )
                .into_response())
        }
        Err(e) => {
            s.setup.put_back(code);
            Err(e.into())
        }
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
