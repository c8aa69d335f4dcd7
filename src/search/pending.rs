//! The index writes of one transaction, gathered in memory and made once, just before the
//! transaction commits ([`Pending`], a store `Deferred`).
//!
//! Indexing a message touches the tail block of each of its ~35 terms, its document row and
//! its date block. Written through, a batch of a thousand messages rewrote a common term's
//! block a thousand times, and redb copied and re-sorted a page each time. Here each row the
//! transaction changes is read from its table once (on first use), changed in memory as
//! often as the batch needs, and written once, in key order, when the writer commits the
//! round. It is still the same transaction, so an edit or delete is exact and searchable the
//! moment it commits, and a rolled-back round leaves nothing behind.
//!
//! Until then the tables hold what the transaction started with: every read of the index
//! during the round goes through [`Rows`], which lays the pending rows over the table's.
//! Memory is bounded by the writer's round (at most `max_batch_weight` changes).

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::RangeInclusive;

use redb::{Key, ReadableTable, StorageError, Table, Value, WriteTransaction};

use super::tables::*;
use crate::store::ctx::Deferred;
use crate::store::{MsgKey, StoreError};

/// A table the overlay reads through and writes back to.
pub trait Source<K, V> {
    /// The key of the last row in `range` that `skip` does not reject.
    fn last_key_in(
        &self,
        range: RangeInclusive<K>,
        skip: &dyn Fn(&K) -> bool,
    ) -> Result<Option<K>, StorageError>;
    fn read(&self, key: K) -> Result<Option<V>, StorageError>;
    fn write(&mut self, key: K, value: Option<&V>) -> Result<(), StorageError>;
}

fn last_key<K, V>(
    t: &impl ReadableTable<K, V>,
    range: RangeInclusive<K>,
    skip: &dyn Fn(&K) -> bool,
) -> Result<Option<K>, StorageError>
where
    K: Key + Copy + 'static + for<'a> Value<SelfType<'a> = K>,
    V: Value + 'static,
{
    for row in t.range(range)?.rev() {
        let k = row?.0.value();
        if !skip(&k) {
            return Ok(Some(k));
        }
    }
    Ok(None)
}

impl<K> Source<K, Vec<u8>> for Table<'_, K, &'static [u8]>
where
    K: Key + Copy + 'static + for<'a> Value<SelfType<'a> = K>,
{
    fn last_key_in(
        &self,
        range: RangeInclusive<K>,
        skip: &dyn Fn(&K) -> bool,
    ) -> Result<Option<K>, StorageError> {
        last_key(self, range, skip)
    }

    fn read(&self, key: K) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.get(key)?.map(|v| v.value().to_vec()))
    }

    fn write(&mut self, key: K, value: Option<&Vec<u8>>) -> Result<(), StorageError> {
        match value {
            Some(v) => self.insert(key, v.as_slice()).map(drop),
            None => self.remove(key).map(drop),
        }
    }
}

impl Source<AccountBlock, BlockDates> for Table<'_, AccountBlock, BlockDates> {
    fn last_key_in(
        &self,
        range: RangeInclusive<AccountBlock>,
        skip: &dyn Fn(&AccountBlock) -> bool,
    ) -> Result<Option<AccountBlock>, StorageError> {
        last_key(self, range, skip)
    }

    fn read(&self, key: AccountBlock) -> Result<Option<BlockDates>, StorageError> {
        Ok(self.get(key)?.map(|v| v.value()))
    }

    fn write(&mut self, key: AccountBlock, value: Option<&BlockDates>) -> Result<(), StorageError> {
        match value {
            Some(v) => self.insert(key, *v).map(drop),
            None => self.remove(key).map(drop),
        }
    }
}

struct Slot<V> {
    /// `None`: the row is gone.
    value: Option<V>,
    /// Changed in this transaction (else a row read from the table, kept to read again).
    dirty: bool,
}

/// Rows of one table as this transaction sees them: the pending ones over the table's.
pub struct Rows<K, V> {
    map: BTreeMap<K, Slot<V>>,
}

impl<K, V> Default for Rows<K, V> {
    fn default() -> Self {
        Rows { map: BTreeMap::new() }
    }
}

impl<K: Ord + Copy, V> Rows<K, V> {
    /// The last row in `range`, and its value.
    pub fn last_in(
        &mut self,
        src: &impl Source<K, V>,
        range: RangeInclusive<K>,
    ) -> Result<Option<(K, &V)>, StorageError> {
        let mine = self
            .map
            .range(range.clone())
            .rev()
            .find(|(_, s)| s.value.is_some())
            .map(|(k, _)| *k);
        // The table's last row that this transaction has not read or changed.
        let theirs = src.last_key_in(range, &|k| self.map.contains_key(k))?;
        let key = match (mine, theirs) {
            (Some(m), Some(t)) if m >= t => m,
            (_, Some(t)) => {
                let value = src.read(t)?;
                self.map.insert(t, Slot { value, dirty: false });
                t
            }
            (Some(m), None) => m,
            (None, None) => return Ok(None),
        };
        Ok(self.map[&key].value.as_ref().map(|v| (key, v)))
    }

    /// One row.
    pub fn get(&mut self, src: &impl Source<K, V>, key: K) -> Result<Option<&V>, StorageError> {
        if let std::collections::btree_map::Entry::Vacant(e) = self.map.entry(key) {
            let value = src.read(key)?;
            e.insert(Slot { value, dirty: false });
        }
        Ok(self.map[&key].value.as_ref())
    }

    pub fn put(&mut self, key: K, value: V) {
        self.map.insert(
            key,
            Slot {
                value: Some(value),
                dirty: true,
            },
        );
    }

    pub fn remove(&mut self, key: K) {
        self.map.insert(
            key,
            Slot {
                value: None,
                dirty: true,
            },
        );
    }

    /// Writes the changed rows, in key order. Returns how many.
    pub fn flush(self, src: &mut impl Source<K, V>) -> Result<u64, StorageError> {
        let mut n = 0;
        for (k, s) in self.map {
            if s.dirty {
                src.write(k, s.value.as_ref())?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// A hasher for keys that are already uniform hashes (term hashes under a secret key) and
/// small numbers: a multiply per word instead of SipHash.
#[derive(Default)]
pub struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(26) ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<Mix>>;

/// One term's pending blocks, by first document, and the first document of its last block
/// (`None`: the term has none). The last block is always among `rows`, so appending a new
/// document (the usual case: it has the highest number so far) needs no table lookup.
pub struct Term {
    account: u64,
    term: u64,
    tail: Option<u32>,
    rows: BTreeMap<u32, Slot<Vec<u8>>>,
}

impl Term {
    fn key(&self, first: u32) -> TermBlock {
        TermBlock {
            account: self.account,
            term: self.term,
            first,
        }
    }

    /// The last block (merged view), read into `rows`.
    fn find_tail(&mut self, src: &impl Source<TermBlock, Vec<u8>>) -> Result<Option<u32>, StorageError> {
        let mine = self
            .rows
            .iter()
            .rev()
            .find(|(_, s)| s.value.is_some())
            .map(|(f, _)| *f);
        let rows = &self.rows;
        let theirs = src
            .last_key_in(block_range(self.account, self.term, u32::MAX), &|k| {
                rows.contains_key(&k.first)
            })?
            .map(|k| k.first);
        Ok(match (mine, theirs) {
            (Some(m), Some(t)) if m >= t => Some(m),
            (_, Some(t)) => {
                let value = src.read(self.key(t))?;
                self.rows.insert(t, Slot { value, dirty: false });
                Some(t)
            }
            (m, None) => m,
        })
    }

    pub fn tail(&self) -> Option<u32> {
        self.tail
    }

    /// The last block, to change in place: its first document, its value, and its dirty flag
    /// (the caller sets it when it changes the value).
    pub fn tail_mut(&mut self) -> Option<(u32, &mut Vec<u8>, &mut bool)> {
        let first = self.tail?;
        let slot = self.rows.get_mut(&first)?;
        let value = slot.value.as_mut()?;
        Some((first, value, &mut slot.dirty))
    }

    /// The block that holds (or would hold) `doc`: the last one starting at or before it.
    pub fn block_of(
        &mut self,
        src: &impl Source<TermBlock, Vec<u8>>,
        doc: u32,
    ) -> Result<Option<(u32, &Vec<u8>)>, StorageError> {
        if self.tail.is_some_and(|t| t <= doc) {
            let t = self.tail.expect("checked");
            return Ok(self.rows[&t].value.as_ref().map(|v| (t, v)));
        }
        let mine = self
            .rows
            .range(..=doc)
            .rev()
            .find(|(_, s)| s.value.is_some())
            .map(|(f, _)| *f);
        let rows = &self.rows;
        let theirs = src
            .last_key_in(block_range(self.account, self.term, doc), &|k| {
                rows.contains_key(&k.first)
            })?
            .map(|k| k.first);
        let first = match (mine, theirs) {
            (Some(m), Some(t)) if m >= t => m,
            (_, Some(t)) => {
                let value = src.read(self.key(t))?;
                self.rows.insert(t, Slot { value, dirty: false });
                t
            }
            (Some(m), None) => m,
            (None, None) => return Ok(None),
        };
        Ok(self.rows[&first].value.as_ref().map(|v| (first, v)))
    }

    pub fn put(&mut self, first: u32, value: Vec<u8>) {
        if self.tail.is_none_or(|t| t < first) {
            self.tail = Some(first);
        }
        self.rows.insert(
            first,
            Slot {
                value: Some(value),
                dirty: true,
            },
        );
    }

    pub fn remove(&mut self, src: &impl Source<TermBlock, Vec<u8>>, first: u32) -> Result<(), StorageError> {
        self.rows.insert(
            first,
            Slot {
                value: None,
                dirty: true,
            },
        );
        if self.tail == Some(first) {
            self.tail = self.find_tail(src)?;
        }
        Ok(())
    }
}

/// Posting blocks of the terms a transaction touched.
#[derive(Default)]
pub struct Blocks {
    terms: MixMap<(u64, u64), Term>,
}

impl Blocks {
    /// A term's pending blocks, with its last block read on first use.
    pub fn term(
        &mut self,
        src: &impl Source<TermBlock, Vec<u8>>,
        account: u64,
        term: u64,
    ) -> Result<&mut Term, StorageError> {
        use std::collections::hash_map::Entry;
        match self.terms.entry((account, term)) {
            Entry::Occupied(e) => Ok(e.into_mut()),
            Entry::Vacant(e) => {
                let mut t = Term {
                    account,
                    term,
                    tail: None,
                    rows: BTreeMap::new(),
                };
                t.tail = t.find_tail(src)?;
                Ok(e.insert(t))
            }
        }
    }

    /// Writes the changed blocks, in key order.
    fn flush(self, src: &mut impl Source<TermBlock, Vec<u8>>) -> Result<(), StorageError> {
        let mut terms: Vec<Term> = self.terms.into_values().collect();
        terms.sort_unstable_by_key(|t| (t.account, t.term));
        for t in terms {
            for (first, s) in &t.rows {
                if s.dirty {
                    src.write(t.key(*first), s.value.as_ref())?;
                }
            }
        }
        Ok(())
    }
}

/// Document rows, and for each account touched the first document of its last row.
#[derive(Default)]
pub struct DocRows {
    pub rows: Rows<AccountDoc, Vec<u8>>,
    last: HashMap<u64, Option<u32>>,
}

impl DocRows {
    /// The account's last row.
    pub fn last(
        &mut self,
        src: &impl Source<AccountDoc, Vec<u8>>,
        account: u64,
    ) -> Result<Option<(AccountDoc, &Vec<u8>)>, StorageError> {
        let known = self.last.get(&account).copied();
        let first = match known {
            Some(f) => f,
            None => {
                let lo = AccountDoc { account, doc: 0 };
                let hi = AccountDoc {
                    account,
                    doc: u32::MAX,
                };
                let f = self.rows.last_in(src, lo..=hi)?.map(|(k, _)| k.doc);
                self.last.insert(account, f);
                f
            }
        };
        match first {
            Some(doc) => {
                let key = AccountDoc { account, doc };
                Ok(self.rows.get(src, key)?.map(|v| (key, v)))
            }
            None => Ok(None),
        }
    }

    pub fn put(&mut self, key: AccountDoc, value: Vec<u8>) {
        if let Some(l) = self.last.get_mut(&key.account)
            && l.is_none_or(|f| f < key.doc)
        {
            *l = Some(key.doc);
        }
        self.rows.put(key, value);
    }

    pub fn remove(&mut self, key: AccountDoc) {
        if self.last.get(&key.account) == Some(&Some(key.doc)) {
            self.last.remove(&key.account);
        }
        self.rows.remove(key);
    }
}

/// The rows of one term's blocks that start at or before `upto`.
pub fn block_range(account: u64, term: u64, upto: u32) -> std::ops::RangeInclusive<TermBlock> {
    TermBlock {
        account,
        term,
        first: 0,
    }..=TermBlock {
        account,
        term,
        first: upto,
    }
}

/// Everything one transaction changes in the index.
#[derive(Default)]
pub struct Pending {
    pub blocks: Blocks,
    pub docs: DocRows,
    pub dates: Rows<AccountBlock, BlockDates>,
    /// Dictionary entries to add (true) or remove (false).
    pub dict: BTreeMap<DictKey, bool>,
    /// Blocks of the senders who go by a name word.
    pub names: Rows<NameSender, Vec<u8>>,
    /// Documents given to messages in this transaction (the tables do not list them yet).
    pub placed: HashMap<(u64, MsgKey), u32>,
    /// The document the last remove freed: an edit is a remove and a put of the same message,
    /// and giving the new text the old number keeps document numbers in date order
    /// (newest-first walks and date filters rely on that).
    pub freed: Option<(MsgKey, u64, u32)>,
}

impl Deferred for Pending {
    fn flush(self: Box<Self>, txn: &WriteTransaction) -> Result<(), StoreError> {
        let p = *self;
        p.blocks.flush(&mut txn.open_table(TERM_POSTINGS)?)?;
        p.docs.rows.flush(&mut txn.open_table(DOCROW_MESSAGES)?)?;
        p.dates.flush(&mut txn.open_table(DOCBLOCK_DATES)?)?;
        let mut dict = txn.open_table(PREFIX_TERM)?;
        for (k, add) in p.dict {
            if add {
                dict.insert(k, ())?;
            } else {
                dict.remove(k)?;
            }
        }
        p.names.flush(&mut txn.open_table(NAME_SENDERS)?)?;
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
