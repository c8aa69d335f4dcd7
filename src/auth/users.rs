//! Users and their grants in the store: adding, looking up, listing, changing grants.
//!
//! Writes go through [`Store::write`] (one transaction each, the name index kept with the
//! record); reads take a [`Reader`] and treat a missing table as "no users yet", because the
//! auth tables are created on first use rather than by the store's schema set-up.

use redb::ReadableTable;

use super::AuthError;
use super::records::{Role, UserRecord};
use super::secrets;
use super::tables::{USER_RECORD, USERNAME_USER};
use crate::store::codec::Stored;
use crate::store::tables::META_NEXT_USER;
use crate::store::{Reader, Store, StoreError};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted, in bytes (argon2 takes any length; this bounds the work).
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_NAME_CHARS: usize = 64;

/// What the operator supplies for a new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub password: String,
    /// Accounts an agent may see; they must exist.
    pub grants: Vec<u64>,
}

/// Checks a login name: 1 to 64 of `a-z 0-9 . - _`, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(AuthError::BadName(format!(
            "user names are 1 to {MAX_NAME_CHARS} of a-z, 0-9, `.`, `-`, `_`, starting with a letter or digit"
        )))
    }
}

pub fn validate_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::WeakPassword(format!(
            "passwords need at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::WeakPassword(format!(
            "passwords are at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Creates every auth table, so later read transactions find them.
pub async fn ensure_tables(store: &Store) -> Result<(), StoreError> {
    store
        .write(1, |ctx| {
            let txn = ctx.txn();
            txn.open_table(USER_RECORD)?;
            txn.open_table(USERNAME_USER)?;
            txn.open_table(super::tables::TOKENHASH_TOKEN)?;
            txn.open_table(super::tables::SESSIONHASH_SESSION)?;
            Ok(())
        })
        .await
}

fn normalise_grants(mut grants: Vec<u64>) -> Vec<u64> {
    grants.sort_unstable();
    grants.dedup();
    grants
}

/// Adds a user. The password is hashed on the blocking pool before the write.
pub async fn add(store: &Store, spec: NewUser) -> Result<UserRecord, AuthError> {
    validate_name(&spec.name)?;
    validate_password(&spec.password)?;
    let password = spec.password;
    let hash = tokio::task::spawn_blocking(move || secrets::hash_password(&password))
        .await
        .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))??;
    let (name, role, grants) = (spec.name, spec.role, normalise_grants(spec.grants));
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
            let mut names = txn.open_table(USERNAME_USER)?;
            if names.get(name.as_str())?.is_some() {
                return Err(AuthError::NameTaken);
            }
            let mut users = txn.open_table(USER_RECORD)?;
            // IDs are never reused: a deleted user's signed URLs (and anything else naming the
            // ID) must not pass to the next user. The counter remembers the highest ever
            // given; on a box from before it, the highest existing ID stands in.
            let after_last = users.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
            let id = after_last.max(ctx.meta_flag(META_NEXT_USER)?.unwrap_or(1));
            ctx.set_meta_flag(META_NEXT_USER, Some(id + 1))?;
            let rec = UserRecord {
                id,
                name: name.clone(),
                role,
                password_hash: hash.clone(),
                grants: grants.clone(),
                disabled: false,
                created_at: ctx.now,
            };
            users.insert(id, Stored::new(&rec)?)?;
            names.insert(name.as_str(), id)?;
            Ok(rec)
        })
        .await
}

/// Replaces a user's grants (the accounts must exist).
pub async fn set_grants(store: &Store, name: &str, grants: Vec<u64>) -> Result<UserRecord, AuthError> {
    let (name, grants) = (name.to_string(), normalise_grants(grants));
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
            let Some(id) = txn
                .open_table(USERNAME_USER)?
                .get(name.as_str())?
                .map(|v| v.value())
            else {
                return Err(AuthError::UnknownUser);
            };
            let mut users = txn.open_table(USER_RECORD)?;
            let Some(mut rec) = users.get(id)?.map(|v| v.value().get()).transpose()? else {
                return Err(AuthError::UnknownUser);
            };
            rec.grants = grants.clone();
            users.insert(id, Stored::new(&rec)?)?;
            Ok(rec)
        })
        .await
}

/// `Ok(None)` for a table that does not exist yet.
macro_rules! open_or_none {
    ($reader:expr, $def:expr) => {
        match $reader.txn().open_table($def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Default::default()),
            Err(e) => return Err($crate::store::StoreError::from(e)),
        }
    };
}
pub(crate) use open_or_none;

pub fn by_id(reader: &Reader, id: u64) -> Result<Option<UserRecord>, StoreError> {
    let t = open_or_none!(reader, USER_RECORD);
    t.get(id)?.map(|v| v.value().get()).transpose()
}

pub fn by_name(reader: &Reader, name: &str) -> Result<Option<UserRecord>, StoreError> {
    let id = {
        let t = open_or_none!(reader, USERNAME_USER);
        t.get(name)?.map(|v| v.value())
    };
    match id {
        Some(id) => by_id(reader, id),
        None => Ok(None),
    }
}

pub fn list(reader: &Reader) -> Result<Vec<UserRecord>, StoreError> {
    let t = open_or_none!(reader, USER_RECORD);
    let mut out = Vec::new();
    for row in t.iter()? {
        out.push(row?.1.value().get()?);
    }
    Ok(out)
}

/// A plain table of users for the command line (never shows password hashes).
pub fn table(users: &[UserRecord]) -> String {
    let mut out = format!("{:>4}  {:<20} {:<6} {:<8} grants", "id", "name", "role", "status");
    for u in users {
        let grants = match u.role {
            Role::Admin => "all".to_string(),
            Role::Agent if u.grants.is_empty() => "none".to_string(),
            Role::Agent => u.grants.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        };
        let status = if u.disabled { "disabled" } else { "active" };
        out.push_str(&format!(
            "\n{:>4}  {:<20} {:<6} {:<8} {grants}",
            u.id,
            u.name,
            u.role.as_str(),
            status
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    fn agent(name: &str) -> NewUser {
        NewUser {
            name: name.into(),
            role: Role::Agent,
            password: "correct horse battery".into(),
            grants: vec![],
        }
    }

    // Bug guarded: a new user got the highest existing ID plus one, so deleting the newest user
    // handed its ID (and with it its signed download URLs) to the next user created.
    #[tokio::test]
    async fn ids_are_never_reused_and_a_box_without_the_counter_starts_above_its_users() {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions {
            credentials_dir: None,
            ..StoreOptions::default()
        };
        let store = Store::open(dir.path(), &opts).unwrap();
        assert_eq!(add(&store, agent("a")).await.unwrap().id, 1);
        let b = add(&store, agent("b")).await.unwrap().id;
        // Deleting the user, as the admin API does, from these two tables.
        store
            .write(1, move |ctx| {
                ctx.txn().open_table(USER_RECORD)?.remove(b)?;
                ctx.txn().open_table(USERNAME_USER)?.remove("b")?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(
            add(&store, agent("c")).await.unwrap().id,
            b + 1,
            "b's ID is not reused"
        );

        // A box from before the counter: the highest existing ID stands in for it.
        store
            .write(1, |ctx| ctx.set_meta_flag(META_NEXT_USER, None))
            .await
            .unwrap();
        assert_eq!(add(&store, agent("d")).await.unwrap().id, b + 2);
    }
}
