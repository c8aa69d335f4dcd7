//! What one query may spend and what it holds while it runs: its [`Budget`] (hard limits on
//! blocks, documents and checks), the index tables it opened, and the top-k heap of hits.
//! Shared by the executor ([`super::exec`]) and the posting streams ([`super::stream`]).

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

use redb::{ReadOnlyTable, ReadTransaction, TableError};

use super::SearchError;
use super::docrow::DocMeta;
use super::query::Cursor;
use super::tables::*;
use crate::store::MsgKey;
use crate::store::codec::Rec;
use crate::store::records::StoredMessage;
use crate::store::tables::CHAT_MESSAGE;

/// Most terms one prefix or character may expand to.
pub const MAX_EXPANSION: usize = 4096;
pub(super) const MAX_BLOCKS: u32 = 200_000;
pub(super) const MAX_DOCS: u32 = 200_000;
pub(super) const MAX_CHECKS: u32 = 2_000;

/// Work done by one query, with hard limits (posting blocks read, documents looked at,
/// candidates decrypted to check a phrase). A `Cell` each: the iterators that spend it share
/// it by reference within one thread.
#[derive(Debug, Default)]
pub struct Budget {
    blocks: Cell<u32>,
    docs: Cell<u32>,
    checks: Cell<u32>,
    unlimited: bool,
}

impl Budget {
    /// No limits (the write path, which must finish what it started).
    pub fn unlimited() -> Budget {
        Budget {
            unlimited: true,
            ..Budget::default()
        }
    }

    pub(super) fn spend(&self, c: &Cell<u32>, max: u32) -> Result<(), SearchError> {
        c.set(c.get().saturating_add(1));
        if c.get() > max && !self.unlimited {
            return Err(SearchError::TooExpensive);
        }
        Ok(())
    }

    pub fn block(&self) -> Result<(), SearchError> {
        self.spend(&self.blocks, MAX_BLOCKS)
    }

    pub fn doc(&self) -> Result<(), SearchError> {
        self.spend(&self.docs, MAX_DOCS)
    }

    pub fn check(&self) -> Result<(), SearchError> {
        self.spend(&self.checks, MAX_CHECKS)
    }
}

pub(super) struct Tables {
    pub postings: ReadOnlyTable<TermBlock, &'static [u8]>,
    pub dict: ReadOnlyTable<DictKey, ()>,
    pub docs: ReadOnlyTable<AccountDoc, &'static [u8]>,
    pub dates: ReadOnlyTable<AccountBlock, BlockDates>,
    /// `None` in an index built before sender names were (until the next write creates it).
    pub names: Option<ReadOnlyTable<NameSender, &'static [u8]>>,
    /// The store's messages, opened once per query (candidates to check, hits to cut).
    pub messages: ReadOnlyTable<MsgKey, Rec<StoredMessage>>,
}

impl Tables {
    /// `None` when nothing was ever indexed (the tables do not exist yet).
    pub(super) fn open(txn: &ReadTransaction) -> Result<Option<Tables>, SearchError> {
        let open = || -> Result<Tables, TableError> {
            Ok(Tables {
                postings: txn.open_table(TERM_POSTINGS)?,
                dict: txn.open_table(PREFIX_TERM)?,
                docs: txn.open_table(DOCROW_MESSAGES)?,
                dates: txn.open_table(DOCBLOCK_DATES)?,
                names: match txn.open_table(NAME_SENDERS) {
                    Ok(t) => Some(t),
                    Err(TableError::TableDoesNotExist(_)) => None,
                    Err(e) => return Err(e),
                },
                messages: txn.open_table(CHAT_MESSAGE)?,
            })
        };
        match open() {
            Ok(t) => Ok(Some(t)),
            Err(TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

pub(super) type Postings = ReadOnlyTable<TermBlock, &'static [u8]>;

impl Tables {
    pub fn stored(&self, key: MsgKey) -> Result<Option<StoredMessage>, SearchError> {
        Ok(self.messages.get(key)?.map(|v| v.value().get()).transpose()?)
    }
}

/// The best `limit` documents seen so far, by (date, account, document).
pub(super) struct TopK {
    pub(super) limit: usize,
    pub(super) heap: BinaryHeap<Reverse<(Cursor, usize)>>,
    pub(super) metas: Vec<DocMeta>,
}

impl TopK {
    pub fn accepts(&self, key: &Cursor) -> bool {
        self.heap.len() < self.limit || self.heap.peek().is_some_and(|Reverse((min, _))| key > min)
    }

    /// The date a document must reach to still get in (when the page is full).
    pub fn floor(&self) -> Option<i64> {
        if self.heap.len() < self.limit {
            return None;
        }
        self.heap.peek().map(|Reverse((k, _))| k.date)
    }

    pub(super) fn push(&mut self, key: Cursor, meta: DocMeta) {
        self.metas.push(meta);
        self.heap.push(Reverse((key, self.metas.len() - 1)));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }
}
