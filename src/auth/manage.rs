//! Managing users and API tokens after they exist: changing a role, disabling, resetting a
//! password, deleting; listing and revoking tokens. The admin API (`api::admin`)
//! reaches them through [`super::Auth`] ([`super::revoke`]), which also tells the live
//! WebSockets.
//!
//! One rule holds across all of it: the box always keeps at least one active admin. A change
//! that would leave none (demoting, disabling or deleting the last one) is refused with
//! [`AuthError::LastAdmin`], because nobody could manage users afterwards short of the command
//! line on the box itself.
//!
//! Tokens are identified by the first 8 bytes of their SHA-256 in hex ([`token_id`]): enough to
//! tell them apart and to name one to revoke, not the lookup key itself.

use redb::{ReadableTable, WriteTransaction};

use super::AuthError;
use super::records::{Role, SessionRecord, TokenRecord, UserRecord};
use super::secrets;
use super::tables::{SESSIONHASH_SESSION, TOKENHASH_TOKEN, USER_RECORD, USERNAME_USER};
use super::users::{open_or_none, validate_password};
use crate::store::codec::Stored;
use crate::store::{Reader, Store, StoreError};

/// What an admin may change on a user in one request; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
}

/// The public name of a token: hex of the first 8 bytes of its hash.
pub fn token_id(hash: &[u8; 32]) -> String {
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn load(txn: &WriteTransaction, id: u64) -> Result<Option<UserRecord>, StoreError> {
    txn.open_table(USER_RECORD)?
        .get(id)?
        .map(|v| v.value().get())
        .transpose()
}

fn save(txn: &WriteTransaction, rec: &UserRecord) -> Result<(), StoreError> {
    txn.open_table(USER_RECORD)?.insert(rec.id, Stored::new(rec)?)?;
    Ok(())
}

/// Active admins other than `except`.
fn other_active_admins(txn: &WriteTransaction, except: u64) -> Result<usize, StoreError> {
    let t = txn.open_table(USER_RECORD)?;
    let mut n = 0;
    for row in t.iter()? {
        let u: UserRecord = row?.1.value().get()?;
        if u.id != except && u.role == Role::Admin && !u.disabled {
            n += 1;
        }
    }
    Ok(n)
}

fn is_active_admin(u: &UserRecord) -> bool {
    u.role == Role::Admin && !u.disabled
}

/// Removes every session of `user` (after a password reset or deletion).
fn end_sessions(txn: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    let mut t = txn.open_table(SESSIONHASH_SESSION)?;
    let mut gone = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let s: SessionRecord = v.value().get()?;
        if s.user == user {
            gone.push(*k.value());
        }
    }
    for k in &gone {
        t.remove(k)?;
    }
    Ok(())
}

fn end_tokens(txn: &WriteTransaction, user: u64) -> Result<(), StoreError> {
    let mut t = txn.open_table(TOKENHASH_TOKEN)?;
    let mut gone = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let rec: TokenRecord = v.value().get()?;
        if rec.user == user {
            gone.push(*k.value());
        }
    }
    for k in &gone {
        t.remove(k)?;
    }
    Ok(())
}

/// Changes a user's role and/or disabled flag.
pub async fn update(store: &Store, id: u64, change: UserChange) -> Result<UserRecord, AuthError> {
    store
        .try_write(1, move |ctx| {
            let txn = ctx.txn();
            let Some(mut rec) = load(txn, id)? else {
                return Err(AuthError::UnknownUser);
            };
            let was_admin = is_active_admin(&rec);
            if let Some(r) = change.role {
                rec.role = r;
            }
            if let Some(d) = change.disabled {
                rec.disabled = d;
            }
            if was_admin && !is_active_admin(&rec) && other_active_admins(txn, id)? == 0 {
                return Err(AuthError::LastAdmin);
            }
            save(txn, &rec)?;
            Ok(rec)
        })
        .await
}

/// Replaces a user's grants (the accounts must exist).
pub async fn set_grants(store: &Store, id: u64, mut grants: Vec<u64>) -> Result<UserRecord, AuthError> {
    grants.sort_unstable();
    grants.dedup();
    store
        .try_write(1, move |ctx| {
            for &a in &grants {
                match ctx.account(a) {
                    Ok(_) => {}
                    Err(StoreError::UnknownAccount(a)) => return Err(AuthError::UnknownAccount(a)),
                    Err(e) => return Err(e.into()),
                }
            }
            let txn = ctx.txn();
            let Some(mut rec) = load(txn, id)? else {
                return Err(AuthError::UnknownUser);
            };
            rec.grants = grants.clone();
            save(txn, &rec)?;
            Ok(rec)
        })
        .await
}

/// Sets a new password (hashed on the blocking pool) and ends the user's browser sessions;
/// API tokens are separate credentials and keep working.
pub async fn set_password(store: &Store, id: u64, password: String) -> Result<(), AuthError> {
    validate_password(&password)?;
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))??;
    store
        .try_write(1, move |ctx| {
            let txn = ctx.txn();
            let Some(mut rec) = load(txn, id)? else {
                return Err(AuthError::UnknownUser);
            };
            rec.password_hash = hash.clone();
            save(txn, &rec)?;
            end_sessions(txn, id)?;
            Ok(())
        })
        .await
}

/// Deletes a user with its name, tokens and sessions.
pub async fn remove(store: &Store, id: u64) -> Result<(), AuthError> {
    store
        .try_write(1, move |ctx| {
            let txn = ctx.txn();
            let Some(rec) = load(txn, id)? else {
                return Err(AuthError::UnknownUser);
            };
            if is_active_admin(&rec) && other_active_admins(txn, id)? == 0 {
                return Err(AuthError::LastAdmin);
            }
            txn.open_table(USER_RECORD)?.remove(id)?;
            txn.open_table(USERNAME_USER)?.remove(rec.name.as_str())?;
            end_tokens(txn, id)?;
            end_sessions(txn, id)?;
            Ok(())
        })
        .await
}

/// The tokens of `user` with their ids, oldest first.
pub fn tokens(reader: &Reader, user: u64) -> Result<Vec<(String, TokenRecord)>, StoreError> {
    let t = open_or_none!(reader, TOKENHASH_TOKEN);
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let rec: TokenRecord = v.value().get()?;
        if rec.user == user {
            out.push((token_id(k.value()), rec));
        }
    }
    out.sort_by(|a, b| (a.1.created_at, &a.0).cmp(&(b.1.created_at, &b.0)));
    Ok(out)
}

/// The token whose hash this is (`None`: revoked, or never existed).
pub fn token(reader: &Reader, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
    let t = open_or_none!(reader, TOKENHASH_TOKEN);
    t.get(hash)?.map(|v| v.value().get()).transpose()
}

/// Revokes the token of `user` named `id` and returns its hash; [`AuthError::UnknownToken`]
/// when `user` has none by that id (another user's token is not revealed to exist).
pub async fn revoke_token(store: &Store, user: u64, id: String) -> Result<[u8; 32], AuthError> {
    store
        .try_write(1, move |ctx| {
            let mut t = ctx.txn().open_table(TOKENHASH_TOKEN)?;
            let mut found = None;
            for row in t.iter()? {
                let (k, v) = row?;
                if token_id(k.value()) == id && v.value().get()?.user == user {
                    found = Some(*k.value());
                    break;
                }
            }
            match found {
                Some(k) => {
                    t.remove(&k)?;
                    Ok(k)
                }
                None => Err(AuthError::UnknownToken),
            }
        })
        .await
}
