//! Canned replies: saved answers an agent inserts into the composer by their shortcut (`/` at
//! the start of the composer opens a picker, `/short` filters it).
//!
//! # Who sees and manages what
//! After Chatwoot: a reply is either the team's or one user's own ([`Scope`]). Everybody sees
//! the team's replies and their own personal ones, never another user's personal ones (not even
//! an admin). Admins create, change and delete team replies; every user creates, changes and
//! deletes their own personal replies. A shortcut is unique among the team's replies, and a
//! personal one also among its owner's replies and the team's (the picker never shows one
//! shortcut twice for the same person; a team reply added later may shadow a personal one, and
//! then the picker shows the personal one first).
//!
//! # Sealing
//! A reply's shortcut and text are team content, sealed like messages. They belong to no
//! account, so they are sealed under a box-level team key: 32 random bytes made on first use,
//! wrapped by the master key through the keyring under a reserved slot no account reaches (as
//! the URL signing key and the backup key are), and kept wrapped in [`tables::CANNED_KEY`].
//! The associated data binds each sealed value to its reply's ID and owner, so a sealed text
//! moved to another record (say, from a personal reply into a team one) does not open. What
//! stays in the clear is IDs, owners and times.
//!
//! # Variables
//! `{{contact.first_name}}`, `{{contact.last_name}}`, `{{contact.name}}`,
//! `{{contact.username}}` and `{{agent.name}}` are kept as written and filled in by the client
//! when it inserts the reply (it knows the conversation and the agent). A reply naming any other
//! variable is refused when saved, so a typo shows at once rather than reaching a customer.

pub mod tables;

use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::store::codec::{Record, Stored};
use crate::store::seal::{Sealed, Sealer};
use crate::store::{Reader, Store, StoreError, WriteCtx};
use tables::{CANNED_KEY, CANNED_REPLY};

/// Keyring slot of the team key (account IDs count up from 1 and never reach it; the URL
/// signing key has `u64::MAX`, the backup key `u64::MAX - 1`).
const TEAM_SLOT: u64 = u64::MAX - 2;
const TEAM_KEY: &str = "team";
/// The next reply ID, in the store's `meta` table: IDs are never given twice.
const META_NEXT_ID: &str = "next_canned_reply";

/// Replies the box keeps at most, team and personal together (each list reads them all).
pub const MAX_REPLIES: u64 = 1000;
/// Longest shortcut, in characters.
pub const MAX_SHORTCUT: usize = 32;
/// Longest text, in characters (Telegram's limit for one message).
pub const MAX_TEXT: usize = 4096;
/// The variables a reply may name, filled in when inserted.
pub const VARIABLES: [&str; 5] = [
    "contact.first_name",
    "contact.last_name",
    "contact.name",
    "contact.username",
    "agent.name",
];

/// Whose a reply is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Seen by everybody, managed by admins.
    Team,
    /// Seen and managed by its owner only.
    Personal,
}

/// Who is asking: a user and whether they are an admin (the API layer knows roles).
#[derive(Debug, Clone, Copy)]
pub struct Actor {
    pub user: u64,
    pub admin: bool,
}

/// A stored reply; the shortcut and text are in `sealed` ([`CannedContent`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CannedRecord {
    /// `None` for a team reply, the owner for a personal one.
    pub owner: Option<u64>,
    pub sealed: Sealed,
    pub created_by: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for CannedRecord {
    const NAME: &'static str = "canned reply";
    const VERSION: u8 = 1;
}

/// The sealed part of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CannedContent {
    pub shortcut: String,
    pub text: String,
}

impl Record for CannedContent {
    const NAME: &'static str = "canned reply content";
    const VERSION: u8 = 1;
}

/// A reply as its readers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Canned {
    pub id: u64,
    pub scope: Scope,
    pub shortcut: String,
    pub text: String,
    pub created_by: u64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Why a change was refused. Messages never quote the shortcut or the text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CannedError {
    #[error("no such canned reply")]
    NotFound,
    #[error("only admins manage the team's canned replies")]
    Forbidden,
    #[error("{0}")]
    BadShortcut(&'static str),
    #[error("{0}")]
    BadText(String),
    #[error("a canned reply with this shortcut exists")]
    ShortcutTaken,
    #[error("the box keeps at most {MAX_REPLIES} canned replies")]
    TooMany,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<redb::Error> for CannedError {
    fn from(e: redb::Error) -> Self {
        CannedError::Store(e.into())
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for CannedError {
            fn from(e: $t) -> Self {
                CannedError::Store(e.into())
            }
        }
    )*};
}
from_redb!(redb::TableError, redb::StorageError);

/// A shortcut as stored: without a leading `/`, lower case; 1 to [`MAX_SHORTCUT`] letters,
/// digits, `_` or `-`.
pub fn normalise_shortcut(s: &str) -> Result<String, CannedError> {
    let s = s.trim();
    let s = s.strip_prefix('/').unwrap_or(s).to_lowercase();
    let n = s.chars().count();
    if n == 0 || n > MAX_SHORTCUT {
        return Err(CannedError::BadShortcut("a shortcut is 1 to 32 characters"));
    }
    if !s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-') {
        return Err(CannedError::BadShortcut(
            "a shortcut is letters, digits, `_` and `-` only",
        ));
    }
    Ok(s)
}

/// Checks a reply's text: not blank, at most [`MAX_TEXT`] characters, only known variables.
pub fn check_text(text: &str) -> Result<(), CannedError> {
    if text.trim().is_empty() {
        return Err(CannedError::BadText("the text is empty".into()));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(CannedError::BadText(format!(
            "the text is longer than {MAX_TEXT} characters"
        )));
    }
    for name in variables(text) {
        if !VARIABLES.contains(&name) {
            return Err(CannedError::BadText(format!(
                "unknown variable; use {}",
                VARIABLES.map(|v| format!("{{{{{v}}}}}")).join(", ")
            )));
        }
    }
    Ok(())
}

/// The variable names in `text` (`{{ name }}`, spaces inside allowed), in order.
pub fn variables(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim());
        rest = &after[end + 2..];
    }
    out
}

/// Fills the variables of `text` from `value` (a name of [`VARIABLES`] to its value; a missing
/// value becomes empty). Clients do this themselves; it is here for tests and tools.
pub fn fill(text: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push_str(&rest[..start]);
        let name = after[..end].trim();
        if VARIABLES.contains(&name) {
            out.push_str(&value(name).unwrap_or_default());
        } else {
            out.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn aad(id: u64, owner: Option<u64>) -> [u8; 23] {
    let mut out = [0u8; 23];
    out[..6].copy_from_slice(b"canned");
    out[6] = u8::from(owner.is_some());
    out[7..15].copy_from_slice(&id.to_be_bytes());
    out[15..].copy_from_slice(&owner.unwrap_or(0).to_be_bytes());
    out
}

/// The team key, made and stored on first use.
fn team_key_for_write(ctx: &mut WriteCtx<'_>) -> Result<Arc<Sealer>, StoreError> {
    let keyring = ctx.keyring();
    let mut t = ctx.txn().open_table(CANNED_KEY)?;
    let existing = t.get(TEAM_KEY)?.map(|v| v.value().get()).transpose()?;
    match existing {
        Some(wrapped) => keyring.data_key(TEAM_SLOT, &wrapped),
        None => {
            let (sealer, wrapped) = keyring.new_data_key(TEAM_SLOT)?;
            t.insert(TEAM_KEY, Stored::new(&wrapped)?)?;
            Ok(sealer)
        }
    }
}

/// The team key, `None` before the first reply was saved.
fn team_key_for_read(r: &Reader) -> Result<Option<Arc<Sealer>>, StoreError> {
    let t = match r.txn().open_table(CANNED_KEY) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(wrapped) = t.get(TEAM_KEY)?.map(|v| v.value().get()).transpose()? else {
        return Ok(None);
    };
    Ok(Some(r.keyring().data_key(TEAM_SLOT, &wrapped)?))
}

fn visible_to(rec: &CannedRecord, user: u64) -> bool {
    rec.owner.is_none_or(|o| o == user)
}

fn may_manage(rec_owner: Option<u64>, actor: Actor) -> bool {
    match rec_owner {
        None => actor.admin,
        Some(o) => o == actor.user,
    }
}

fn open(sealer: &Sealer, id: u64, rec: &CannedRecord) -> Result<Canned, StoreError> {
    let c: CannedContent = sealer.open_record(&rec.sealed, &aad(id, rec.owner))?;
    Ok(Canned {
        id,
        scope: if rec.owner.is_some() {
            Scope::Personal
        } else {
            Scope::Team
        },
        shortcut: c.shortcut,
        text: c.text,
        created_by: rec.created_by,
        created_at: rec.created_at,
        updated_at: rec.updated_at,
    })
}

/// The replies `user` sees: the team's and their own, by shortcut (personal first on a tie).
/// A damaged reply is left out (and counted by the reader), the rest stay readable.
pub fn list(r: &Reader, user: u64) -> Result<Vec<Canned>, StoreError> {
    let Some(sealer) = team_key_for_read(r)? else {
        return Ok(Vec::new());
    };
    let t = match r.txn().open_table(CANNED_REPLY) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        let Some(rec) = r.skip_damaged(v.value().get())? else {
            continue;
        };
        if !visible_to(&rec, user) {
            continue;
        }
        if let Some(c) = r.skip_damaged(open(&sealer, k.value(), &rec))? {
            out.push(c);
        }
    }
    out.sort_by(|a, b| {
        (&a.shortcut, a.scope == Scope::Team, a.id).cmp(&(&b.shortcut, b.scope == Scope::Team, b.id))
    });
    Ok(out)
}

/// Refuses `shortcut` for a reply owned by `owner` when another reply (not `except`) has it
/// where the two would meet in one person's picker (see the module documentation).
fn check_unique(
    ctx: &mut WriteCtx<'_>,
    sealer: &Sealer,
    owner: Option<u64>,
    shortcut: &str,
    except: Option<u64>,
) -> Result<(), CannedError> {
    let t = ctx.txn().open_table(CANNED_REPLY)?;
    for row in t.iter()? {
        let (k, v) = row?;
        let id = k.value();
        if Some(id) == except {
            continue;
        }
        let rec = v.value().get()?;
        let meets = rec.owner.is_none() || rec.owner == owner;
        if meets && open(sealer, id, &rec)?.shortcut == shortcut {
            return Err(CannedError::ShortcutTaken);
        }
    }
    Ok(())
}

/// Saves a new reply of `scope` for `actor` (team replies: admins only).
pub async fn create(
    store: &Store,
    actor: Actor,
    scope: Scope,
    shortcut: &str,
    text: String,
) -> Result<Canned, CannedError> {
    let owner = match scope {
        Scope::Team if !actor.admin => return Err(CannedError::Forbidden),
        Scope::Team => None,
        Scope::Personal => Some(actor.user),
    };
    let shortcut = normalise_shortcut(shortcut)?;
    check_text(&text)?;
    store
        .try_write(1, move |ctx| {
            let sealer = team_key_for_write(ctx)?;
            check_unique(ctx, &sealer, owner, &shortcut, None)?;
            let mut t = ctx.txn().open_table(CANNED_REPLY)?;
            if t.len()? >= MAX_REPLIES {
                return Err(CannedError::TooMany);
            }
            let last = t.last()?.map_or(0, |(k, _)| k.value());
            let id = ctx.meta_flag(META_NEXT_ID)?.unwrap_or(1).max(last + 1);
            ctx.set_meta_flag(META_NEXT_ID, Some(id + 1))?;
            let content = CannedContent {
                shortcut: shortcut.clone(),
                text: text.clone(),
            };
            let rec = CannedRecord {
                owner,
                sealed: sealer.seal_record(&content, &aad(id, owner))?,
                created_by: actor.user,
                created_at: ctx.now,
                updated_at: ctx.now,
            };
            t.insert(id, Stored::new(&rec)?)?;
            Ok(open(&sealer, id, &rec)?)
        })
        .await
}

/// What to change in a reply (`None`: keep).
#[derive(Debug, Clone, Default)]
pub struct CannedChange {
    pub shortcut: Option<String>,
    pub text: Option<String>,
}

/// Changes a reply `actor` may manage. One they cannot see is [`CannedError::NotFound`]; a
/// team reply they see but may not manage is [`CannedError::Forbidden`].
pub async fn update(
    store: &Store,
    actor: Actor,
    id: u64,
    change: CannedChange,
) -> Result<Canned, CannedError> {
    let shortcut = change.shortcut.as_deref().map(normalise_shortcut).transpose()?;
    if let Some(t) = &change.text {
        check_text(t)?;
    }
    store
        .try_write(1, move |ctx| {
            let sealer = team_key_for_write(ctx)?;
            let rec = owned(ctx, actor, id)?;
            let mut content: CannedContent = sealer.open_record(&rec.sealed, &aad(id, rec.owner))?;
            if let Some(s) = &shortcut {
                if *s != content.shortcut {
                    check_unique(ctx, &sealer, rec.owner, s, Some(id))?;
                }
                content.shortcut = s.clone();
            }
            if let Some(t) = &change.text {
                content.text = t.clone();
            }
            let rec = CannedRecord {
                sealed: sealer.seal_record(&content, &aad(id, rec.owner))?,
                updated_at: ctx.now,
                ..rec
            };
            ctx.txn()
                .open_table(CANNED_REPLY)?
                .insert(id, Stored::new(&rec)?)?;
            Ok(open(&sealer, id, &rec)?)
        })
        .await
}

/// Deletes a reply `actor` may manage (errors as [`update`]).
pub async fn delete(store: &Store, actor: Actor, id: u64) -> Result<(), CannedError> {
    store
        .try_write(1, move |ctx| {
            owned(ctx, actor, id)?;
            ctx.txn().open_table(CANNED_REPLY)?.remove(id)?;
            Ok(())
        })
        .await
}

/// Deletes every personal reply of `user` (their account was deleted); how many went.
pub async fn drop_owner(store: &Store, user: u64) -> Result<u64, CannedError> {
    store
        .try_write(1, move |ctx| {
            let mut t = ctx.txn().open_table(CANNED_REPLY)?;
            let mut gone = 0;
            t.retain(|_, v| {
                let theirs = v.get().is_ok_and(|r| r.owner == Some(user));
                gone += u64::from(theirs);
                !theirs
            })?;
            Ok(gone)
        })
        .await
}

fn owned(ctx: &mut WriteCtx<'_>, actor: Actor, id: u64) -> Result<CannedRecord, CannedError> {
    let t = ctx.txn().open_table(CANNED_REPLY)?;
    let Some(rec) = t.get(id)?.map(|v| v.value().get()).transpose()? else {
        return Err(CannedError::NotFound);
    };
    if !visible_to(&rec, actor.user) {
        return Err(CannedError::NotFound);
    }
    if !may_manage(rec.owner, actor) {
        return Err(CannedError::Forbidden);
    }
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_are_normalised_and_checked() {
        assert_eq!(normalise_shortcut(" /Hello_1 ").unwrap(), "hello_1");
        assert_eq!(normalise_shortcut("привет").unwrap(), "привет");
        assert!(normalise_shortcut("/").is_err());
        assert!(normalise_shortcut("two words").is_err());
        assert!(normalise_shortcut(&"x".repeat(33)).is_err());
    }

    #[test]
    fn only_known_variables_pass_and_fill() {
        check_text("Hi {{contact.first_name}}, {{ agent.name }} here").unwrap();
        assert!(matches!(
            check_text("Hi {{contact.email}}"),
            Err(CannedError::BadText(_))
        ));
        assert!(check_text("  ").is_err());
        let filled = fill(
            "Hi {{contact.first_name}}, {{ agent.name }}{{x}} {{",
            |v| match v {
                "contact.first_name" => Some("Anna".into()),
                _ => None,
            },
        );
        assert_eq!(filled, "Hi Anna, {{x}} {{");
    }

    #[test]
    fn the_associated_data_binds_id_and_owner() {
        assert_ne!(aad(1, None), aad(1, Some(0)));
        assert_ne!(aad(1, Some(2)), aad(2, Some(2)));
    }
}
