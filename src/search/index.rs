//! [`SearchIndex`]: the ingest pipeline's index hook. It changes the index tables inside the
//! transaction that stores, edits or deletes the message, so the index is never behind the
//! store and a removed message leaves no posting, dictionary entry or document behind.
//!
//! Documents are numbered per account in ingest order (an edit is a remove and a new document,
//! so an edited message is renumbered). There is no message-to-document table: removing a
//! message finds its document by intersecting the postings of its own terms (the content being
//! removed is at hand), which narrows to the document in a few block reads and keeps the index
//! smaller by a table as large as the document rows.

use std::cell::Cell;
use std::collections::HashMap;

use redb::{ReadableTable, Table, WriteTransaction};

use super::postings::{self, Child, TermIter, intersect};
use super::tables::*;
use super::terms::{DocTerm, TermKey, doc_terms};
use super::{Budget, SearchError};
use crate::ingest::IndexHook;
use crate::model::MessageContent;
use crate::store::records::StoredMessage;
use crate::store::{MsgKey, StoreError, WriteCtx};

/// The full-text index, kept in the store's own redb file. Stateless: all of it is in tables,
/// so one value can be shared by every pipeline (`Arc<SearchIndex>`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SearchIndex;

struct WriteTables<'t> {
    postings: Table<'t, TermBlock, &'static [u8]>,
    dict: Table<'t, DictKey, ()>,
    docs: Table<'t, AccountBlock, &'static [u8]>,
    dates: Table<'t, AccountBlock, BlockDates>,
}

fn store_err(e: SearchError) -> StoreError {
    match e {
        SearchError::Store(s) => s,
        other => StoreError::Format {
            record: "search index",
            detail: other.to_string(),
        },
    }
}

const ROW_DOCS: usize = 1 << DOC_ROW_SHIFT;

impl<'t> WriteTables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<WriteTables<'t>, StoreError> {
        Ok(WriteTables {
            postings: txn.open_table(TERM_POSTINGS)?,
            dict: txn.open_table(PREFIX_TERM)?,
            docs: txn.open_table(DOCROW_MESSAGES)?,
            dates: txn.open_table(DOCBLOCK_DATES)?,
        })
    }

    fn row(&self, account: u64, block: u32) -> Result<Option<DocRow>, StoreError> {
        let id = AccountBlock { account, block };
        self.docs.get(id)?.map(|v| DocRow::decode(account, v.value())).transpose()
    }

    /// Gives `meta` the next document number of the account (after the last row's last entry).
    fn append_doc(&mut self, account: u64, meta: DocMeta) -> Result<u32, StoreError> {
        let lo = AccountBlock { account, block: 0 };
        let hi = AccountBlock {
            account,
            block: u32::MAX,
        };
        let last = match self.docs.range(lo..=hi)?.next_back() {
            Some(row) => {
                let (k, v) = row?;
                Some((k.value().block, v.value().to_vec()))
            }
            None => None,
        };
        let (block, row) = match last {
            Some((b, bytes)) if DocRow::len_of(&bytes) < ROW_DOCS => {
                let doc = (b << DOC_ROW_SHIFT) + DocRow::len_of(&bytes) as u32;
                (b, Some((doc, DocRow::append(&bytes, account, &meta)?)))
            }
            Some((b, _)) if b < u32::MAX >> DOC_ROW_SHIFT => (b + 1, None),
            Some(_) => {
                return Err(StoreError::Format {
                    record: "search index",
                    detail: "document numbers exhausted for this account".into(),
                });
            }
            None => (0, None),
        };
        let (doc, bytes) = row.unwrap_or_else(|| {
            let first = DocRow {
                entries: vec![Some(meta)],
            };
            (block << DOC_ROW_SHIFT, first.encode(account))
        });
        self.docs.insert(AccountBlock { account, block }, bytes.as_slice())?;
        Ok(doc)
    }

    fn dates_added(&mut self, account: u64, doc: u32, date: i64) -> Result<(), StoreError> {
        let id = AccountBlock {
            account,
            block: doc >> DOC_BLOCK_SHIFT,
        };
        let cur = self.dates.get(id)?.map(|v| v.value());
        let dates = match cur {
            Some(d) => BlockDates {
                upto: d.upto.max(date),
                min: d.min.min(date),
                max: d.max.max(date),
                live: d.live + 1,
            },
            None => {
                let lo = AccountBlock { account, block: 0 };
                let before = self.dates.range(lo..id)?.next_back().transpose()?;
                BlockDates {
                    upto: before.map_or(date, |(_, v)| v.value().upto.max(date)),
                    min: date,
                    max: date,
                    live: 1,
                }
            }
        };
        self.dates.insert(id, dates)?;
        Ok(())
    }

    fn dates_removed(&mut self, account: u64, doc: u32) -> Result<(), StoreError> {
        let id = AccountBlock {
            account,
            block: doc >> DOC_BLOCK_SHIFT,
        };
        let Some(mut d) = self.dates.get(id)?.map(|v| v.value()) else { return Ok(()) };
        d.live = d.live.saturating_sub(1);
        if d.live == 0 {
            self.dates.remove(id)?;
        } else {
            self.dates.insert(id, d)?;
        }
        Ok(())
    }

    /// The document of message `key`: the newest document that has every one of the message's
    /// terms, falls in a block whose dates cover the message's, and names the message.
    fn find_doc(&self, account: u64, key: MsgKey, date: i64, terms: &[DocTerm]) -> Result<Option<u32>, StoreError> {
        let budget = Budget::unlimited();
        let mut kids: Vec<_> = terms
            .iter()
            .map(|t| Child::Term(TermIter::new(&self.postings, account, t.hash, &budget)))
            .collect();
        let mut rows: HashMap<u32, Option<DocRow>> = HashMap::new();
        let mut target = u32::MAX;
        while let Some(doc) = intersect(&mut kids, target).map_err(store_err)? {
            let block = doc >> DOC_BLOCK_SHIFT;
            let covers = self
                .dates
                .get(AccountBlock { account, block })?
                .is_some_and(|d| d.value().min <= date && date <= d.value().max);
            if !covers {
                match (block << DOC_BLOCK_SHIFT).checked_sub(1) {
                    Some(t) => target = t,
                    None => return Ok(None),
                }
                continue;
            }
            let row_id = doc >> DOC_ROW_SHIFT;
            if let std::collections::hash_map::Entry::Vacant(v) = rows.entry(row_id) {
                v.insert(self.row(account, row_id)?);
            }
            let entry = rows[&row_id]
                .as_ref()
                .and_then(|r| r.entries.get((doc & (ROW_DOCS as u32 - 1)) as usize).copied().flatten());
            if entry.is_some_and(|m| m.key() == key) {
                return Ok(Some(doc));
            }
            match doc.checked_sub(1) {
                Some(t) => target = t,
                None => return Ok(None),
            }
        }
        Ok(None)
    }

    fn remove_doc(&mut self, account: u64, doc: u32) -> Result<(), StoreError> {
        let block = doc >> DOC_ROW_SHIFT;
        let Some(mut row) = self.row(account, block)? else { return Ok(()) };
        if let Some(e) = row.entries.get_mut((doc & (ROW_DOCS as u32 - 1)) as usize) {
            *e = None;
        }
        let id = AccountBlock { account, block };
        if row.entries.iter().all(Option::is_none) {
            self.docs.remove(id)?;
        } else {
            self.docs.insert(id, row.encode(account).as_slice())?;
        }
        self.dates_removed(account, doc)
    }

    fn add_terms(&mut self, key: &TermKey, account: u64, doc: u32, terms: &[DocTerm]) -> Result<(), StoreError> {
        for t in terms {
            let new = postings::insert(&mut self.postings, account, t.hash, doc)?;
            if let (true, Some((text, kind))) = (new, &t.text) {
                for k in key.dictionary_keys(text, *kind) {
                    self.dict.insert(DictKey { account, key: k, term: t.hash }, ())?;
                }
            }
        }
        Ok(())
    }

    fn remove_terms(&mut self, key: &TermKey, account: u64, doc: u32, terms: &[DocTerm]) -> Result<(), StoreError> {
        for t in terms {
            let gone = postings::remove(&mut self.postings, account, t.hash, doc)?;
            if let (true, Some((text, kind))) = (gone, &t.text) {
                for k in key.dictionary_keys(text, *kind) {
                    self.dict.remove(DictKey { account, key: k, term: t.hash })?;
                }
            }
        }
        Ok(())
    }
}

fn term_key(ctx: &mut WriteCtx<'_>, account: u64) -> Result<TermKey, StoreError> {
    Ok(TermKey::derive(ctx.sealer(account)?.key().expose()))
}

impl SearchIndex {
    pub fn new() -> SearchIndex {
        SearchIndex
    }

    /// Removes every trace of `account` from the index (postings, dictionary, documents, date
    /// blocks), inside the caller's transaction. Call it when the account is released, before
    /// its data key goes. Returns the number of rows removed.
    pub fn remove_account(&self, ctx: &mut WriteCtx<'_>, account: u64) -> Result<u64, StoreError> {
        let mut t = WriteTables::open(ctx.txn())?;
        // A Cell, so each `retain_in` predicate below can count without a mutable capture.
        let removed = Cell::new(0u64);
        let gone = || {
            removed.set(removed.get() + 1);
            false
        };
        let b_lo = AccountBlock { account, block: 0 };
        let b_hi = AccountBlock {
            account,
            block: u32::MAX,
        };
        t.docs.retain_in(b_lo..=b_hi, |_, _| gone())?;
        t.dates.retain_in(b_lo..=b_hi, |_, _| gone())?;
        let p_lo = TermBlock {
            account,
            term: 0,
            first: 0,
        };
        let p_hi = TermBlock {
            account,
            term: u64::MAX,
            first: u32::MAX,
        };
        t.postings.retain_in(p_lo..=p_hi, |_, _| gone())?;
        let d_lo = DictKey {
            account,
            key: 0,
            term: 0,
        };
        let d_hi = DictKey {
            account,
            key: u64::MAX,
            term: u64::MAX,
        };
        t.dict.retain_in(d_lo..=d_hi, |_, _| gone())?;
        Ok(removed.get())
    }
}

impl IndexHook for SearchIndex {
    fn put(
        &self,
        ctx: &mut WriteCtx<'_>,
        key: MsgKey,
        msg: &StoredMessage,
        content: &MessageContent,
    ) -> Result<(), StoreError> {
        let account = msg.owner;
        let tk = term_key(ctx, account)?;
        let mut t = WriteTables::open(ctx.txn())?;
        let terms = doc_terms(&tk, content, key.chat, msg.sender_id, msg.body_kind);
        let meta = DocMeta {
            scope: key.scope,
            chat: key.chat,
            msg: key.msg,
            date: msg.date,
            direction: msg.direction,
            kind: msg.body_kind,
            pairs: terms.pairs,
        };
        let doc = t.append_doc(account, meta)?;
        t.dates_added(account, doc, msg.date)?;
        t.add_terms(&tk, account, doc, &terms.terms)
    }

    fn remove(
        &self,
        ctx: &mut WriteCtx<'_>,
        key: MsgKey,
        msg: &StoredMessage,
        content: &MessageContent,
    ) -> Result<(), StoreError> {
        let account = msg.owner;
        let tk = term_key(ctx, account)?;
        let mut t = WriteTables::open(ctx.txn())?;
        let terms = doc_terms(&tk, content, key.chat, msg.sender_id, msg.body_kind).terms;
        let Some(doc) = t.find_doc(account, key, msg.date, &terms)? else { return Ok(()) };
        t.remove_doc(account, doc)?;
        t.remove_terms(&tk, account, doc, &terms)
    }
}
