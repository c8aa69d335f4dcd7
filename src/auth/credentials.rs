//! API tokens and browser sessions in the store. Both are bearer secrets the client holds; the
//! store keeps only their SHA-256 ([`super::secrets::digest`]), so a copy of the database lets
//! nobody in.

use redb::ReadableTable;

use super::AuthError;
use super::records::{SessionRecord, TokenRecord, UserRecord};
use super::secrets;
use super::tables::{SESSIONHASH_SESSION, TOKENHASH_TOKEN, USER_RECORD, USERNAME_USER};
use super::users::open_or_none;
use crate::store::codec::Stored;
use crate::store::{Reader, Store, StoreError};

/// Creates an API token for the user named `user`. Returns the token (shown once) and its record.
pub async fn create_token(
    store: &Store,
    user: &str,
    label: &str,
    expires_at: Option<i64>,
) -> Result<(String, TokenRecord), AuthError> {
    let token = secrets::new_token()?;
    let hash = secrets::digest(&token);
    let prefix: String = token.chars().take(secrets::TOKEN_PREFIX.len() + 4).collect();
    let (user, label) = (user.to_string(), label.trim().to_string());
    if label.chars().count() > 100 {
        return Err(AuthError::BadName(
            "token labels are at most 100 characters".into(),
        ));
    }
    let rec = store
        .try_write(1, move |ctx| {
            let txn = ctx.txn();
            let Some(id) = txn
                .open_table(USERNAME_USER)?
                .get(user.as_str())?
                .map(|v| v.value())
            else {
                return Err(AuthError::UnknownUser);
            };
            let rec = TokenRecord {
                user: id,
                label: label.clone(),
                prefix: prefix.clone(),
                created_at: ctx.now,
                expires_at,
            };
            txn.open_table(TOKENHASH_TOKEN)?
                .insert(&hash, Stored::new(&rec)?)?;
            Ok(rec)
        })
        .await?;
    Ok((token, rec))
}

pub fn token(reader: &Reader, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
    let t = open_or_none!(reader, TOKENHASH_TOKEN);
    t.get(hash)?.map(|v| v.value().get()).transpose()
}

/// Starts a session for `user`, valid until `expires_at`; returns the cookie value. Expired
/// sessions of anyone are purged in the same transaction.
pub async fn create_session(
    store: &Store,
    user: u64,
    ttl_s: i64,
) -> Result<(String, SessionRecord), AuthError> {
    let cookie = secrets::random_value()?;
    let hash = secrets::digest(&cookie);
    let rec = store
        .write(1, move |ctx| {
            let now = ctx.now;
            let mut t = ctx.txn().open_table(SESSIONHASH_SESSION)?;
            let mut expired = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                let s: SessionRecord = v.value().get()?;
                if s.expires_at <= now {
                    expired.push(*k.value());
                }
            }
            for k in &expired {
                t.remove(k)?;
            }
            let rec = SessionRecord {
                user,
                created_at: now,
                expires_at: now + ttl_s,
            };
            t.insert(&hash, Stored::new(&rec)?)?;
            Ok(rec)
        })
        .await?;
    Ok((cookie, rec))
}

pub fn session(reader: &Reader, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
    let t = open_or_none!(reader, SESSIONHASH_SESSION);
    t.get(hash)?.map(|v| v.value().get()).transpose()
}

pub async fn end_session(store: &Store, hash: [u8; 32]) -> Result<(), StoreError> {
    store
        .write(1, move |ctx| {
            ctx.txn().open_table(SESSIONHASH_SESSION)?.remove(&hash)?;
            Ok(())
        })
        .await
}

/// The user a credential belongs to, if it is still active.
pub fn active_user(reader: &Reader, id: u64) -> Result<Option<UserRecord>, StoreError> {
    let t = open_or_none!(reader, USER_RECORD);
    let user: Option<UserRecord> = t.get(id)?.map(|v| v.value().get()).transpose()?;
    Ok(user.filter(|u| !u.disabled))
}
