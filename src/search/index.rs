//! [`SearchIndex`]: the ingest pipeline's index hook. It changes the index tables inside the
//! transaction that stores, edits or deletes the message, so the index is never behind the
//! store and a removed message leaves no posting, dictionary entry or document behind.
//!
//! Documents are numbered per account in ingest order; an edited message keeps its number.
//! There is no message-to-document table: removing a message finds its document by
//! intersecting the postings of its own terms (the content being removed is at hand), which
//! narrows to the document in a few block reads and keeps the index smaller by a table as
//! large as the document rows.

use std::cell::Cell;
use std::sync::Mutex;

use redb::{ReadableTable, Table, WriteTransaction};

use super::docrow::{DocMeta, DocRow, ROW_BYTES, ROW_ENTRIES, RowView};
use super::postings::{self, Child, TermIter, intersect};
use super::tables::*;
use super::terms::{DocTerm, TermKey, doc_terms, sender_name_terms};
use super::{Budget, SearchError};
use crate::ingest::IndexHook;
use crate::model::MessageContent;
use crate::store::records::StoredMessage;
use crate::store::{MsgKey, StoreError, WriteCtx};

/// The full-text index, kept in the store's own redb file. All of it is in tables, so one value
/// can be shared by every pipeline (`Arc<SearchIndex>`).
#[derive(Debug, Default)]
pub struct SearchIndex {
    /// The document the last `remove` freed: an edit is a `remove` and a `put` of the same
    /// message, and giving the new text the old number keeps document numbers in date order
    /// (newest-first walks and date filters rely on that). Only a hint: `put` reuses the number
    /// only if that entry is free in its own transaction. A std Mutex: held for a swap, never
    /// across a call.
    freed: Mutex<Option<(MsgKey, u64, u32)>>,
}

struct WriteTables<'t> {
    postings: Table<'t, TermBlock, &'static [u8]>,
    dict: Table<'t, DictKey, ()>,
    docs: Table<'t, AccountDoc, &'static [u8]>,
    dates: Table<'t, AccountBlock, BlockDates>,
    names: Table<'t, NameSender, u32>,
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

impl<'t> WriteTables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<WriteTables<'t>, StoreError> {
        Ok(WriteTables {
            postings: txn.open_table(TERM_POSTINGS)?,
            dict: txn.open_table(PREFIX_TERM)?,
            docs: txn.open_table(DOCROW_MESSAGES)?,
            dates: txn.open_table(DOCBLOCK_DATES)?,
            names: txn.open_table(SENDERNAME_DOCS)?,
        })
    }

    /// The row holding `doc`, with its first document.
    fn row_of(&self, account: u64, doc: u32) -> Result<Option<(u32, RowView)>, StoreError> {
        let lo = AccountDoc { account, doc: 0 };
        let Some(row) = self.docs.range(lo..=AccountDoc { account, doc })?.next_back() else {
            return Ok(None);
        };
        let (k, v) = row?;
        let first = k.value().doc;
        let view = RowView::parse(account, v.value().to_vec())?;
        Ok(((doc - first) < view.len() as u32).then_some((first, view)))
    }

    /// Stores a row's new bytes, or removes it when nothing in it is left.
    fn put_row(&mut self, account: u64, first: u32, bytes: Vec<u8>) -> Result<(), StoreError> {
        let key = AccountDoc { account, doc: first };
        if RowView::parse(account, bytes.clone())?.all_deleted() {
            self.docs.remove(key)?;
        } else {
            self.docs.insert(key, bytes.as_slice())?;
        }
        Ok(())
    }

    /// Gives `meta` the next document number of the account (after the last row's last entry).
    fn append_doc(&mut self, account: u64, meta: DocMeta) -> Result<u32, StoreError> {
        let lo = AccountDoc { account, doc: 0 };
        let hi = AccountDoc {
            account,
            doc: u32::MAX,
        };
        let last = match self.docs.range(lo..=hi)?.next_back() {
            Some(row) => {
                let (k, v) = row?;
                Some((k.value().doc, v.value().to_vec()))
            }
            None => None,
        };
        let exhausted = || StoreError::Format {
            record: "search index",
            detail: "document numbers exhausted for this account".into(),
        };
        if let Some((first, bytes)) = &last {
            let count = DocRow::len_of(bytes);
            let doc = first.checked_add(count as u32).ok_or_else(exhausted)?;
            if count < ROW_ENTRIES {
                let appended = DocRow::append(bytes, account, &meta)?;
                if appended.len() <= ROW_BYTES {
                    let key = AccountDoc { account, doc: *first };
                    self.docs.insert(key, appended.as_slice())?;
                    return Ok(doc);
                }
            }
            let row = DocRow {
                entries: vec![Some(meta)],
            };
            self.put_row(account, doc, row.encode(account))?;
            return Ok(doc);
        }
        let row = DocRow {
            entries: vec![Some(meta)],
        };
        self.put_row(account, 0, row.encode(account))?;
        Ok(0)
    }

    /// Puts `meta` back under `doc` if that entry is free (a document removed in this
    /// transaction); false when it is not.
    fn refill_doc(&mut self, account: u64, doc: u32, meta: DocMeta) -> Result<bool, StoreError> {
        let bytes = match self.row_of(account, doc)? {
            Some((first, row)) => {
                let i = (doc - first) as usize;
                if row.get(i)?.is_some() {
                    return Ok(false);
                }
                self.put_row(account, first, row.with_entry(i, Some(&meta)))?;
                return Ok(true);
            }
            // Its row went with its last entry: a row of its own.
            None => DocRow {
                entries: vec![Some(meta)],
            }
            .encode(account),
        };
        self.put_row(account, doc, bytes)?;
        Ok(true)
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
        let Some(mut d) = self.dates.get(id)?.map(|v| v.value()) else {
            return Ok(());
        };
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
    fn find_doc(
        &self,
        account: u64,
        key: MsgKey,
        date: i64,
        terms: &[DocTerm],
    ) -> Result<Option<u32>, StoreError> {
        let budget = Budget::unlimited();
        let mut kids: Vec<_> = terms
            .iter()
            .filter(|t| t.core)
            .map(|t| Child::Term(TermIter::new(&self.postings, account, t.hash, &budget)))
            .collect();
        let mut row: Option<(u32, RowView)> = None;
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
            let cached = row
                .as_ref()
                .is_some_and(|(first, r)| doc >= *first && doc - first < r.len() as u32);
            if !cached {
                row = self.row_of(account, doc)?;
            }
            let entry = match &row {
                Some((first, r)) => r.get((doc - first) as usize)?,
                None => None,
            };
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
        let Some((first, row)) = self.row_of(account, doc)? else {
            return Ok(());
        };
        self.put_row(account, first, row.with_entry((doc - first) as usize, None))?;
        self.dates_removed(account, doc)
    }

    fn add_terms(
        &mut self,
        key: &TermKey,
        account: u64,
        doc: u32,
        terms: &[DocTerm],
    ) -> Result<(), StoreError> {
        for t in terms {
            let new = postings::insert(&mut self.postings, account, t.hash, doc)?;
            if let (true, Some((text, kind))) = (new, &t.text) {
                for k in key.dictionary_keys(text, *kind) {
                    self.dict.insert(
                        DictKey {
                            account,
                            key: k,
                            term: t.hash,
                        },
                        (),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Counts a document under each of its sender's name words (`delta` 1 or -1).
    fn count_names(&mut self, account: u64, sender: i64, names: &[u64], add: bool) -> Result<(), StoreError> {
        for &name in names {
            let k = NameSender {
                account,
                name,
                sender,
            };
            let n = self.names.get(k)?.map_or(0, |v| v.value());
            match (add, n) {
                (true, n) => {
                    self.names.insert(k, n.saturating_add(1))?;
                }
                (false, 0 | 1) => {
                    self.names.remove(k)?;
                }
                (false, n) => {
                    self.names.insert(k, n - 1)?;
                }
            }
        }
        Ok(())
    }

    fn remove_terms(
        &mut self,
        key: &TermKey,
        account: u64,
        doc: u32,
        terms: &[DocTerm],
    ) -> Result<(), StoreError> {
        for t in terms {
            let gone = postings::remove(&mut self.postings, account, t.hash, doc)?;
            if let (true, Some((text, kind))) = (gone, &t.text) {
                for k in key.dictionary_keys(text, *kind) {
                    self.dict.remove(DictKey {
                        account,
                        key: k,
                        term: t.hash,
                    })?;
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
        SearchIndex::default()
    }

    fn freed(&self) -> std::sync::MutexGuard<'_, Option<(MsgKey, u64, u32)>> {
        // Poisoning only means a panic elsewhere; the hint is checked before use anyway.
        self.freed.lock().unwrap_or_else(|p| p.into_inner())
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
        let d0 = AccountDoc { account, doc: 0 };
        let d1 = AccountDoc {
            account,
            doc: u32::MAX,
        };
        t.docs.retain_in(d0..=d1, |_, _| gone())?;
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
        let n_lo = NameSender {
            account,
            name: 0,
            sender: i64::MIN,
        };
        let n_hi = NameSender {
            account,
            name: u64::MAX,
            sender: i64::MAX,
        };
        t.names.retain_in(n_lo..=n_hi, |_, _| gone())?;
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
        let reuse = self.freed().take().filter(|(k, a, _)| *k == key && *a == account);
        let doc = match reuse {
            Some((_, _, doc)) if t.refill_doc(account, doc, meta)? => doc,
            _ => t.append_doc(account, meta)?,
        };
        t.dates_added(account, doc, msg.date)?;
        t.count_names(account, msg.sender_id, &sender_name_terms(&tk, content), true)?;
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
        let Some(doc) = t.find_doc(account, key, msg.date, &terms)? else {
            return Ok(());
        };
        t.remove_doc(account, doc)?;
        *self.freed() = Some((key, account, doc));
        t.count_names(account, msg.sender_id, &sender_name_terms(&tk, content), false)?;
        t.remove_terms(&tk, account, doc, &terms)
    }

    fn remove_account(&self, ctx: &mut WriteCtx<'_>, account: u64) -> Result<(), StoreError> {
        *self.freed() = None;
        SearchIndex::remove_account(self, ctx, account).map(|_| ())
    }
}
