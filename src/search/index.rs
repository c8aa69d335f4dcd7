//! [`SearchIndex`]: the ingest pipeline's index hook. It changes the index inside the
//! transaction that stores, edits or deletes the message, so the index is never behind the
//! store and a removed message leaves no posting, dictionary entry or document behind.
//!
//! The changes are gathered in the transaction's [`Pending`] writes and made once, when the
//! writer commits the round: a posting block, document row or date block that a whole batch
//! of messages changes is written once, not once per message.
//!
//! Documents are numbered per account in ingest order; an edited message keeps its number.
//! There is no message-to-document table: removing a message finds its document by
//! intersecting the postings of its own terms (the content being removed is at hand), which
//! narrows to the document in a few block reads and keeps the index smaller by a table as
//! large as the document rows.

use std::cell::Cell;

use redb::{ReadableTable, Table, WriteTransaction};

use super::docrow::{DocMeta, DocRow, ROW_BYTES, ROW_ENTRIES, RowView};
use super::names;
use super::pending::Pending;
use super::postings::{self, Child, TermIter, intersect};
use super::tables::*;
use super::terms::{DocTerm, TermKey, doc_terms, sender_name_terms};
use super::{Budget, SearchError};
use crate::ingest::IndexHook;
use crate::model::MessageContent;
use crate::store::records::StoredMessage;
use crate::store::{MsgKey, StoreError, WriteCtx};

/// The full-text index, kept in the store's own redb file. All of it is in tables (and, until
/// a transaction commits, in that transaction's [`Pending`] writes), so one value can be
/// shared by every pipeline (`Arc<SearchIndex>`).
#[derive(Debug, Default)]
pub struct SearchIndex {}

/// The index as one job of a transaction sees it: the tables as the transaction began, under
/// the writes the transaction has gathered so far.
struct Batch<'a, 't> {
    p: &'a mut Pending,
    postings: Table<'t, TermBlock, &'static [u8]>,
    docs: Table<'t, AccountDoc, &'static [u8]>,
    dates: Table<'t, AccountBlock, BlockDates>,
    names: Table<'t, NameSender, &'static [u8]>,
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

impl<'a, 't> Batch<'a, 't> {
    fn open(txn: &'t WriteTransaction, p: &'a mut Pending) -> Result<Batch<'a, 't>, StoreError> {
        Ok(Batch {
            p,
            postings: txn.open_table(TERM_POSTINGS)?,
            docs: txn.open_table(DOCROW_MESSAGES)?,
            dates: txn.open_table(DOCBLOCK_DATES)?,
            names: txn.open_table(NAME_SENDERS)?,
        })
    }

    /// The row holding `doc`, with its first document.
    fn row_of(&mut self, account: u64, doc: u32) -> Result<Option<(u32, RowView)>, StoreError> {
        let lo = AccountDoc { account, doc: 0 };
        let Some((k, v)) = self
            .p
            .docs
            .rows
            .last_in(&self.docs, lo..=AccountDoc { account, doc })?
        else {
            return Ok(None);
        };
        let first = k.doc;
        let view = RowView::parse(account, v.clone())?;
        Ok(((doc - first) < view.len() as u32).then_some((first, view)))
    }

    /// Stores a row's new bytes, or removes it when nothing in it is left.
    fn put_row(&mut self, account: u64, first: u32, bytes: Vec<u8>) -> Result<(), StoreError> {
        let key = AccountDoc { account, doc: first };
        if RowView::parse(account, bytes.clone())?.all_deleted() {
            self.p.docs.remove(key);
        } else {
            self.p.docs.put(key, bytes);
        }
        Ok(())
    }

    /// Gives `meta` the next document number of the account (after the last row's last entry).
    fn append_doc(&mut self, account: u64, meta: DocMeta) -> Result<u32, StoreError> {
        let exhausted = || StoreError::Format {
            record: "search index",
            detail: "document numbers exhausted for this account".into(),
        };
        if let Some((k, bytes)) = self.p.docs.last(&self.docs, account)? {
            let first = k.doc;
            let count = DocRow::len_of(bytes);
            let doc = first.checked_add(count as u32).ok_or_else(exhausted)?;
            if count < ROW_ENTRIES {
                let appended = DocRow::append(bytes, account, &meta)?;
                if appended.len() <= ROW_BYTES {
                    self.p.docs.put(k, appended);
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
        let cur = self.p.dates.get(&self.dates, id)?.copied();
        let dates = match cur {
            Some(d) => BlockDates {
                upto: d.upto.max(date),
                min: d.min.min(date),
                max: d.max.max(date),
                live: d.live + 1,
            },
            None => {
                let before = match id.block.checked_sub(1) {
                    Some(prev) => {
                        let lo = AccountBlock { account, block: 0 };
                        let hi = AccountBlock { account, block: prev };
                        self.p.dates.last_in(&self.dates, lo..=hi)?.map(|(_, d)| *d)
                    }
                    None => None,
                };
                BlockDates {
                    upto: before.map_or(date, |d| d.upto.max(date)),
                    min: date,
                    max: date,
                    live: 1,
                }
            }
        };
        self.p.dates.put(id, dates);
        Ok(())
    }

    fn dates_removed(&mut self, account: u64, doc: u32) -> Result<(), StoreError> {
        let id = AccountBlock {
            account,
            block: doc >> DOC_BLOCK_SHIFT,
        };
        let Some(mut d) = self.p.dates.get(&self.dates, id)?.copied() else {
            return Ok(());
        };
        d.live = d.live.saturating_sub(1);
        if d.live == 0 {
            self.p.dates.remove(id);
        } else {
            self.p.dates.put(id, d);
        }
        Ok(())
    }

    /// The document of message `key`: one given in this transaction, or else the newest
    /// document that has every one of the message's terms (in the tables, which hold what was
    /// committed before), falls in a block whose dates cover the message's, and, as this
    /// transaction sees it, still names the message.
    fn find_doc(
        &mut self,
        account: u64,
        key: MsgKey,
        date: i64,
        terms: &[DocTerm],
    ) -> Result<Option<u32>, StoreError> {
        if let Some(&doc) = self.p.placed.get(&(account, key)) {
            return Ok(Some(doc));
        }
        let budget = Budget::unlimited();
        let postings = &self.postings;
        let mut kids: Vec<_> = terms
            .iter()
            .filter(|t| t.core)
            .map(|t| Child::Term(TermIter::new(postings, account, t.hash, &budget)))
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
                row = row_in(self.p, &self.docs, account, doc)?;
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

    /// Adds the document to its terms; true when `watch` (the sender's filter term) got its
    /// first posting.
    fn add_terms(
        &mut self,
        key: &TermKey,
        account: u64,
        doc: u32,
        terms: &[DocTerm],
        watch: u64,
    ) -> Result<bool, StoreError> {
        let mut watched = false;
        for t in terms {
            let new = postings::insert(&mut self.p.blocks, &self.postings, account, t.hash, doc)?;
            watched |= new && t.hash == watch;
            if let (true, Some((text, kind))) = (new, &t.text) {
                for k in key.dictionary_keys(text, *kind) {
                    let dk = DictKey {
                        account,
                        key: k,
                        term: t.hash,
                    };
                    self.p.dict.insert(dk, true);
                }
            }
        }
        Ok(watched)
    }

    /// Removes the document from its terms; true when `watch` (the sender's filter term) lost
    /// its last posting.
    fn remove_terms(
        &mut self,
        key: &TermKey,
        account: u64,
        doc: u32,
        terms: &[DocTerm],
        watch: u64,
    ) -> Result<bool, StoreError> {
        let mut watched = false;
        for t in terms {
            let gone = postings::remove(&mut self.p.blocks, &self.postings, account, t.hash, doc)?;
            watched |= gone && t.hash == watch;
            if let (true, Some((text, kind))) = (gone, &t.text) {
                for k in key.dictionary_keys(text, *kind) {
                    let dk = DictKey {
                        account,
                        key: k,
                        term: t.hash,
                    };
                    self.p.dict.insert(dk, false);
                }
            }
        }
        Ok(watched)
    }

    /// Puts the sender in (or takes it out of) the senders of each of its name words.
    fn sender_names(
        &mut self,
        account: u64,
        sender: i64,
        names: &[u64],
        add: bool,
    ) -> Result<(), StoreError> {
        for &name in names {
            if add {
                names::add(&mut self.p.names, &self.names, account, name, sender)?;
            } else {
                names::remove(&mut self.p.names, &self.names, account, name, sender)?;
            }
        }
        Ok(())
    }
}

/// [`Batch::row_of`] with the fields apart, for a caller that holds the postings table.
fn row_in(
    p: &mut Pending,
    docs: &Table<'_, AccountDoc, &'static [u8]>,
    account: u64,
    doc: u32,
) -> Result<Option<(u32, RowView)>, StoreError> {
    let lo = AccountDoc { account, doc: 0 };
    let Some((k, v)) = p.docs.rows.last_in(docs, lo..=AccountDoc { account, doc })? else {
        return Ok(None);
    };
    let view = RowView::parse(account, v.clone())?;
    Ok(((doc - k.doc) < view.len() as u32).then_some((k.doc, view)))
}

fn term_key(ctx: &mut WriteCtx<'_>, account: u64) -> Result<TermKey, StoreError> {
    Ok(TermKey::derive(ctx.sealer(account)?.key().expose()))
}

impl SearchIndex {
    pub fn new() -> SearchIndex {
        SearchIndex::default()
    }

    /// Removes every trace of `account` from the index (postings, dictionary, documents, date
    /// blocks), inside the caller's transaction. Call it when the account is released, before
    /// its data key goes. Returns the number of rows removed.
    pub fn remove_account(&self, ctx: &mut WriteCtx<'_>, account: u64) -> Result<u64, StoreError> {
        // What this transaction gathered goes to the tables first, to be removed with the rest.
        ctx.flush_deferred::<Pending>()?;
        let txn = ctx.txn();
        let mut t = AccountTables {
            postings: txn.open_table(TERM_POSTINGS)?,
            dict: txn.open_table(PREFIX_TERM)?,
            docs: txn.open_table(DOCROW_MESSAGES)?,
            dates: txn.open_table(DOCBLOCK_DATES)?,
            names: txn.open_table(NAME_SENDERS)?,
        };
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
        let txn = ctx.txn();
        let mut t = Batch::open(txn, ctx.deferred::<Pending>())?;
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
        let reuse = t.p.freed.take().filter(|(k, a, _)| *k == key && *a == account);
        let doc = match reuse {
            Some((_, _, doc)) if t.refill_doc(account, doc, meta)? => doc,
            _ => t.append_doc(account, meta)?,
        };
        t.p.placed.insert((account, key), doc);
        t.dates_added(account, doc, msg.date)?;
        // A sender joins its names' lists with its first message (and leaves with its last).
        if t.add_terms(&tk, account, doc, &terms.terms, tk.sender(msg.sender_id))? {
            t.sender_names(account, msg.sender_id, &sender_name_terms(&tk, content), true)?;
        }
        Ok(())
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
        let txn = ctx.txn();
        let mut t = Batch::open(txn, ctx.deferred::<Pending>())?;
        let terms = doc_terms(&tk, content, key.chat, msg.sender_id, msg.body_kind).terms;
        let Some(doc) = t.find_doc(account, key, msg.date, &terms)? else {
            return Ok(());
        };
        t.p.placed.remove(&(account, key));
        t.remove_doc(account, doc)?;
        t.p.freed = Some((key, account, doc));
        if t.remove_terms(&tk, account, doc, &terms, tk.sender(msg.sender_id))? {
            t.sender_names(account, msg.sender_id, &sender_name_terms(&tk, content), false)?;
        }
        Ok(())
    }

    fn remove_account(&self, ctx: &mut WriteCtx<'_>, account: u64) -> Result<(), StoreError> {
        SearchIndex::remove_account(self, ctx, account).map(|_| ())
    }
}

/// Every index table, to remove an account's rows.
struct AccountTables<'t> {
    postings: Table<'t, TermBlock, &'static [u8]>,
    dict: Table<'t, DictKey, ()>,
    docs: Table<'t, AccountDoc, &'static [u8]>,
    dates: Table<'t, AccountBlock, BlockDates>,
    names: Table<'t, NameSender, &'static [u8]>,
}
