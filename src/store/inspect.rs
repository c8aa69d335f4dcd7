//! A read-only look at a stopped box's store, for `lanbox check`: the database opened through
//! the preflight's [`Shadow`](super::preflight::Shadow) (nothing is written to the file, not
//! even redb's open flag), the existing master key loaded (never created), and every sealed
//! record of the store's tables decoded and opened, counted good or damaged.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::keyring::{Keyring, MasterKeySource};
use super::new_account::secret_aad;
use super::preflight::{self, PageCheck};
use super::seal::Cipher;
use super::tables::*;
use super::{DB_FILE, Reader, StoreError};

/// Records that opened, and records that did not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub good: u64,
    pub damaged: u64,
}

impl Counts {
    fn add<T, E>(&mut self, r: Result<T, E>) -> Option<T> {
        match r {
            Ok(v) => {
                self.good += 1;
                Some(v)
            }
            Err(_) => {
                self.damaged += 1;
                None
            }
        }
    }
}

/// The store's sealed records, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealedCounts {
    /// Account records: decoded, data key unwrapped, bot token opened.
    pub accounts: Counts,
    /// Chat records: decoded, title opened.
    pub chats: Counts,
    /// Messages: decoded, content opened.
    pub messages: Counts,
    /// Reactions: decoded, opened under their message's owner.
    pub reactions: Counts,
    /// Event log entries: decoded.
    pub events: Counts,
}

impl SealedCounts {
    pub fn damaged(&self) -> u64 {
        [
            self.accounts,
            self.chats,
            self.messages,
            self.reactions,
            self.events,
        ]
        .iter()
        .map(|c| c.damaged)
        .sum()
    }
}

pub struct Inspection {
    db: Database,
    keyring: Arc<Keyring>,
    pub master_source: MasterKeySource,
    /// Whether every page checksum verified. When not, the database is read as redb would
    /// recover it (an older commit, in memory only).
    pub pages_clean: bool,
    pub pages: PageCheck,
}

impl Inspection {
    /// Opens the store in `dir` read-only. Fails (naming the file) when the master key or the
    /// database is missing, empty or unreadable, or when another process has it open.
    pub fn open(dir: &Path, credentials_dir: Option<&Path>) -> Result<Inspection, StoreError> {
        let db_path = dir.join(DB_FILE);
        preflight::files(dir, &db_path)?;
        match std::fs::metadata(&db_path) {
            Ok(m) if m.len() > 0 => {}
            _ => {
                return Err(StoreError::Damaged {
                    path: db_path.display().to_string(),
                    detail: "there is no database to check".into(),
                });
            }
        }
        let (keyring, master_source) = Keyring::load(dir, credentials_dir, Cipher::for_this_cpu())?;
        let (db, pages_clean, pages) = preflight::shadow_check(&db_path, 16 << 20)?;
        Ok(Inspection {
            db,
            keyring: Arc::new(keyring),
            master_source,
            pages_clean,
            pages,
        })
    }

    /// A read transaction on the inspected database (damage met is not counted anywhere).
    pub fn reader(&self) -> Result<Reader, StoreError> {
        Ok(Reader::new(self.db.begin_read()?, self.keyring.clone(), None))
    }

    /// Decodes and opens every sealed record of the store's tables.
    pub fn sealed(&self) -> Result<SealedCounts, StoreError> {
        let txn = self.db.begin_read()?;
        let mut c = SealedCounts::default();
        let keys = &self.keyring;
        for row in txn.open_table(ACCOUNT_RECORD)?.iter()? {
            let (id, rec) = row?;
            let id = id.value();
            c.accounts.add(rec.value().get().and_then(|rec| {
                let sealer = keys.data_key(id, &rec.wrapped_key)?;
                if let Some(secret) = &rec.secret {
                    sealer.open(secret, &secret_aad(id))?;
                }
                Ok(())
            }));
        }
        for row in txn.open_table(CHAT_RECORD)?.iter()? {
            let (key, rec) = row?;
            let key = key.value();
            c.chats.add(rec.value().get().and_then(|rec| {
                let sealer = self.sealer(&txn, rec.owner)?;
                sealer.open(&rec.meta, &key.aad())?;
                Ok(())
            }));
        }
        let messages = txn.open_table(CHAT_MESSAGE)?;
        for row in messages.iter()? {
            let (key, rec) = row?;
            let key = key.value();
            c.messages.add(rec.value().get().and_then(|m| {
                let sealer = self.sealer(&txn, m.owner)?;
                sealer.open(&m.content, &key.aad())?;
                Ok(())
            }));
        }
        for row in txn.open_table(MESSAGE_REACTIONS)?.iter()? {
            let (key, rec) = row?;
            let key = key.value();
            c.reactions.add(rec.value().get().and_then(|sealed| {
                let owner = messages
                    .get(key)?
                    .ok_or(StoreError::Format {
                        record: "reactions",
                        detail: "no message for these reactions".into(),
                    })?
                    .value()
                    .get()?
                    .owner;
                self.sealer(&txn, owner)?.open(&sealed, &key.reactions_aad())?;
                Ok(())
            }));
        }
        for row in txn.open_table(SEQ_EVENT)?.iter()? {
            let (_, rec) = row?;
            c.events.add(rec.value().get());
        }
        Ok(c)
    }

    fn sealer(
        &self,
        txn: &redb::ReadTransaction,
        account: u64,
    ) -> Result<Arc<super::seal::Sealer>, StoreError> {
        if let Some(s) = self.keyring.cached(account) {
            return Ok(s);
        }
        let rec = txn
            .open_table(ACCOUNT_RECORD)?
            .get(account)?
            .ok_or(StoreError::UnknownAccount(account))?
            .value()
            .get()?;
        self.keyring.data_key(account, &rec.wrapped_key)
    }
}
