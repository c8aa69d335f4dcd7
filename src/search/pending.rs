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
use std::ops::RangeInclusive;

use redb::{Key, ReadableTable, StorageError, Table, Value, WriteTransaction};

use super::postings::block_range;
use super::tables::*;
use crate::store::ctx::Deferred;
use crate::store::{MsgKey, StoreError};

/// A table the overlay reads through and writes back to.
pub trait Source<K, V> {
    /// The last row in `range` whose key `skip` does not reject.
    fn last_in(
        &self,
        range: RangeInclusive<K>,
        skip: &dyn Fn(&K) -> bool,
    ) -> Result<Option<(K, V)>, StorageError>;
    fn write(&mut self, key: K, value: Option<&V>) -> Result<(), StorageError>;
}

impl<K> Source<K, Vec<u8>> for Table<'_, K, &'static [u8]>
where
    K: Key + Copy + 'static + for<'a> Value<SelfType<'a> = K>,
{
    fn last_in(
        &self,
        range: RangeInclusive<K>,
        skip: &dyn Fn(&K) -> bool,
    ) -> Result<Option<(K, Vec<u8>)>, StorageError> {
        for row in self.range(range)?.rev() {
            let (k, v) = row?;
            let k = k.value();
            if !skip(&k) {
                return Ok(Some((k, v.value().to_vec())));
            }
        }
        Ok(None)
    }

    fn write(&mut self, key: K, value: Option<&Vec<u8>>) -> Result<(), StorageError> {
        match value {
            Some(v) => self.insert(key, v.as_slice()).map(drop),
            None => self.remove(key).map(drop),
        }
    }
}

impl Source<AccountBlock, BlockDates> for Table<'_, AccountBlock, BlockDates> {
    fn last_in(
        &self,
        range: RangeInclusive<AccountBlock>,
        skip: &dyn Fn(&AccountBlock) -> bool,
    ) -> Result<Option<(AccountBlock, BlockDates)>, StorageError> {
        for row in self.range(range)?.rev() {
            let (k, v) = row?;
            let k = k.value();
            if !skip(&k) {
                return Ok(Some((k, v.value())));
            }
        }
        Ok(None)
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
        let theirs = src.last_in(range, &|k| self.map.contains_key(k))?;
        let key = match (mine, theirs) {
            (Some(m), Some((t, _))) if m >= t => m,
            (_, Some((t, v))) => {
                self.map.insert(
                    t,
                    Slot {
                        value: Some(v),
                        dirty: false,
                    },
                );
                t
            }
            (Some(m), None) => m,
            (None, None) => return Ok(None),
        };
        let v = self.map[&key].value.as_ref().expect("a live row");
        Ok(Some((key, v)))
    }

    /// One row.
    pub fn get(&mut self, src: &impl Source<K, V>, key: K) -> Result<Option<&V>, StorageError> {
        if !self.map.contains_key(&key) {
            let v = src.last_in(key..=key, &|_| false)?.map(|(_, v)| v);
            self.map.insert(
                key,
                Slot {
                    value: v,
                    dirty: false,
                },
            );
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

    /// Forgets every row of `range` (an account being removed), changed or not.
    pub fn forget(&mut self, range: RangeInclusive<K>) {
        let keys: Vec<K> = self.map.range(range).map(|(k, _)| *k).collect();
        for k in keys {
            self.map.remove(&k);
        }
    }
}

/// Posting blocks, and for each term touched the first document of its last block (`None`:
/// the term has none), so appending a new document finds its block without a table lookup.
#[derive(Default)]
pub struct Blocks {
    pub rows: Rows<TermBlock, Vec<u8>>,
    tails: HashMap<(u64, u64), Option<u32>>,
}

impl Blocks {
    /// The first document of the term's last block.
    pub fn tail(
        &mut self,
        src: &impl Source<TermBlock, Vec<u8>>,
        account: u64,
        term: u64,
    ) -> Result<Option<u32>, StorageError> {
        if let Some(&t) = self.tails.get(&(account, term)) {
            return Ok(t);
        }
        let t = self
            .rows
            .last_in(src, block_range(account, term, u32::MAX))?
            .map(|(k, _)| k.first);
        self.tails.insert((account, term), t);
        Ok(t)
    }

    /// The term's block that holds (or would hold) `doc`: the last one starting at or before it.
    pub fn block_of(
        &mut self,
        src: &impl Source<TermBlock, Vec<u8>>,
        account: u64,
        term: u64,
        doc: u32,
    ) -> Result<Option<(u32, &Vec<u8>)>, StorageError> {
        Ok(self
            .rows
            .last_in(src, block_range(account, term, doc))?
            .map(|(k, v)| (k.first, v)))
    }

    pub fn put(&mut self, key: TermBlock, value: Vec<u8>) {
        if let Some(t) = self.tails.get_mut(&(key.account, key.term))
            && t.is_none_or(|f| f < key.first)
        {
            *t = Some(key.first);
        }
        self.rows.put(key, value);
    }

    pub fn remove(&mut self, key: TermBlock) {
        if self.tails.get(&(key.account, key.term)) == Some(&Some(key.first)) {
            self.tails.remove(&(key.account, key.term));
        }
        self.rows.remove(key);
    }
}

/// Everything one transaction changes in the index.
#[derive(Default)]
pub struct Pending {
    pub blocks: Blocks,
    pub docs: Rows<AccountDoc, Vec<u8>>,
    pub dates: Rows<AccountBlock, BlockDates>,
    /// Dictionary entries to add (true) or remove (false).
    pub dict: BTreeMap<DictKey, bool>,
    /// Changes to the counts of sender names.
    pub names: BTreeMap<NameSender, i64>,
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
        p.blocks.rows.flush(&mut txn.open_table(TERM_POSTINGS)?)?;
        p.docs.flush(&mut txn.open_table(DOCROW_MESSAGES)?)?;
        p.dates.flush(&mut txn.open_table(DOCBLOCK_DATES)?)?;
        let mut dict = txn.open_table(PREFIX_TERM)?;
        for (k, add) in p.dict {
            if add {
                dict.insert(k, ())?;
            } else {
                dict.remove(k)?;
            }
        }
        let mut names = txn.open_table(SENDERNAME_DOCS)?;
        for (k, delta) in p.names {
            if delta == 0 {
                continue;
            }
            let n = i64::from(names.get(k)?.map_or(0, |v| v.value())) + delta;
            if n <= 0 {
                names.remove(k)?;
            } else {
                names.insert(k, u32::try_from(n).unwrap_or(u32::MAX))?;
            }
        }
        Ok(())
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
