//! Running a query against a read transaction.
//!
//! For each account whose index may hold visible messages, the query's terms are hashed under
//! that account's key and intersected (leapfrog: every list seeks to the newest document all
//! lists could still share). Prefixes, single CJK characters and multi-valued filters are
//! unions. Each account's stream yields documents newest-numbered first; the streams are merged
//! by date, so the page fills with the right hits first. [`BlockDates`] bound the dates of each
//! block of 1024 documents, so a stream stops as soon as no older block can beat the page
//! (numbers follow ingestion, which mostly follows dates), and the page is exact in
//! (date, account, document) order even when it does not.
//!
//! Phrases: a candidate whose pair sketch lacks a pair of the phrase is dropped unread; the
//! others are decrypted and checked, newest first, only while they could still make the page.
//!
//! Visibility: an account's own documents are visible to it. A message stored once for several
//! accounts (a supergroup two bots are in) is indexed under its owner; a caller allowed only
//! the other account searches the owner's index restricted to the chats they share, and each
//! candidate's `seen_by` decides.
//!
//! Work is bounded by a [`Budget`]; a query that would exceed it fails with
//! [`SearchError::TooExpensive`] instead of running long.

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use redb::{ReadOnlyTable, ReadTransaction, TableError};

use super::postings::{Child, TermIter, intersect};
use super::query::{Atom, Cursor, Parsed, Query, parse};
use super::snippet::{satisfies, snippet};
use super::sketch::Sketch;
use super::tables::*;
use super::terms::{PREFIX_MAX, TermKey, searchable_parts};
use super::tokenize::is_emoji;
use super::{Hit, SearchError, SearchPage};
use crate::store::codec::decode;
use crate::store::records::StoredMessage;
use crate::store::tables::CHAT_MESSAGE;
use crate::store::{MsgKey, Reader};

/// Most terms one prefix or character may expand to.
pub const MAX_EXPANSION: usize = 4096;
const MAX_BLOCKS: u32 = 200_000;
const MAX_DOCS: u32 = 200_000;
const MAX_CHECKS: u32 = 2_000;

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

    fn spend(&self, c: &Cell<u32>, max: u32) -> Result<(), SearchError> {
        c.set(c.get().saturating_add(1));
        if c.get() > max && !self.unlimited {
            return Err(SearchError::TooExpensive);
        }
        Ok(())
    }

    pub fn block(&self) -> Result<(), SearchError> {
        self.spend(&self.blocks, MAX_BLOCKS)
    }

    fn doc(&self) -> Result<(), SearchError> {
        self.spend(&self.docs, MAX_DOCS)
    }

    fn check(&self) -> Result<(), SearchError> {
        self.spend(&self.checks, MAX_CHECKS)
    }
}

struct Tables {
    postings: ReadOnlyTable<TermBlock, &'static [u8]>,
    dict: ReadOnlyTable<DictKey, ()>,
    docs: ReadOnlyTable<AccountBlock, &'static [u8]>,
    dates: ReadOnlyTable<AccountBlock, BlockDates>,
    /// The store's messages, opened once per query (candidates to check, hits to cut).
    messages: ReadOnlyTable<MsgKey, &'static [u8]>,
}

impl Tables {
    /// `None` when nothing was ever indexed (the tables do not exist yet).
    fn open(txn: &ReadTransaction) -> Result<Option<Tables>, SearchError> {
        let open = || -> Result<Tables, TableError> {
            Ok(Tables {
                postings: txn.open_table(TERM_POSTINGS)?,
                dict: txn.open_table(PREFIX_TERM)?,
                docs: txn.open_table(DOCROW_MESSAGES)?,
                dates: txn.open_table(DOCBLOCK_DATES)?,
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

type Postings = ReadOnlyTable<TermBlock, &'static [u8]>;

impl Tables {
    fn stored(&self, key: MsgKey) -> Result<Option<StoredMessage>, SearchError> {
        Ok(self.messages.get(key)?.map(|v| decode(v.value())).transpose()?)
    }
}

/// The best `limit` documents seen so far, by (date, account, document).
struct TopK {
    limit: usize,
    heap: BinaryHeap<Reverse<(Cursor, usize)>>,
    metas: Vec<DocMeta>,
}

impl TopK {
    fn accepts(&self, key: &Cursor) -> bool {
        self.heap.len() < self.limit || self.heap.peek().is_some_and(|Reverse((min, _))| key > min)
    }

    /// The date a document must reach to still get in (when the page is full).
    fn floor(&self) -> Option<i64> {
        if self.heap.len() < self.limit {
            return None;
        }
        self.heap.peek().map(|Reverse((k, _))| k.date)
    }

    fn push(&mut self, key: Cursor, meta: DocMeta) {
        self.metas.push(meta);
        self.heap.push(Reverse((key, self.metas.len() - 1)));
        if self.heap.len() > self.limit {
            self.heap.pop();
        }
    }
}

/// Runs a query. See the module documentation for what it guarantees.
pub fn search(reader: &Reader, q: &Query) -> Result<SearchPage, SearchError> {
    let parsed = parse(&q.text)?;
    let mut visible = q.allowed_accounts.clone();
    if !q.filter.accounts.is_empty() {
        visible.retain(|a| q.filter.accounts.contains(a));
    }
    visible.sort_unstable();
    visible.dedup();
    if visible.is_empty() {
        return Ok(SearchPage::default());
    }
    let Some(tables) = Tables::open(reader.txn())? else { return Ok(SearchPage::default()) };
    let budget = Budget::default();
    let ctx = Ctx {
        reader,
        tables: &tables,
        parsed: &parsed,
        q,
        visible: &visible,
        budget: &budget,
    };
    let mut shared: Option<Vec<(i64, Vec<u64>)>> = None;
    let mut streams = Vec::new();
    for account in reader.accounts()?.iter().map(|a| a.id) {
        let restrict = if visible.binary_search(&account).is_ok() {
            None
        } else {
            let shared = match &mut shared {
                Some(s) => s,
                None => shared.insert(shared_chats(reader, q, &visible)?),
            };
            let chats: Vec<i64> = shared
                .iter()
                .filter(|(_, accounts)| accounts.contains(&account))
                .map(|(c, _)| *c)
                .collect();
            if chats.is_empty() {
                continue;
            }
            Some(chats)
        };
        if let Some(mut s) = Stream::new(&ctx, account, restrict)? {
            s.load_eligible(&ctx)?;
            streams.push(s);
        }
    }
    let mut top = TopK {
        limit: q.limit(),
        heap: BinaryHeap::new(),
        metas: Vec::new(),
    };
    // Merge the accounts' streams by date: the newest candidate of any account is checked
    // first, so the page fills with the right hits early and every stream can stop early.
    let mut heads = Vec::with_capacity(streams.len());
    for s in &mut streams {
        heads.push(s.next(&ctx, &top)?);
    }
    loop {
        let best = heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|(k, _)| (*k, i)))
            .max();
        let Some((key, i)) = best else { break };
        let (_, meta) = heads[i].take().expect("picked a present head");
        if top.accepts(&key) && streams[i].confirm(&ctx, &meta)? {
            top.push(key, meta);
        }
        heads[i] = streams[i].next(&ctx, &top)?;
    }
    finish(reader, &tables, &parsed, top)
}

/// Supergroups and channels (message IDs shared by accounts) that a visible account is in,
/// with every account that is in them.
fn shared_chats(reader: &Reader, q: &Query, visible: &[u64]) -> Result<Vec<(i64, Vec<u64>)>, SearchError> {
    Ok(reader
        .chat_records()?
        .into_iter()
        .filter(|(k, r)| {
            k.scope == 0
                && r.accounts.iter().any(|a| visible.contains(a))
                && (q.filter.chats.is_empty() || q.filter.chats.contains(&k.chat))
        })
        .map(|(k, r)| (k.chat, r.accounts))
        .collect())
}

/// What every stream of one query shares.
struct Ctx<'a> {
    reader: &'a Reader,
    tables: &'a Tables,
    parsed: &'a Parsed,
    q: &'a Query,
    visible: &'a [u64],
    budget: &'a Budget,
}

/// One account's candidates, newest-numbered first.
struct Stream<'a> {
    account: u64,
    kids: Vec<Child<'a, Postings>>,
    /// Pair hashes of the query's phrases.
    pairs: Vec<u64>,
    /// Only messages whose `seen_by` meets the visible accounts (another owner's index).
    restricted: bool,
    target: Option<u32>,
    dates: HashMap<u32, BlockDates>,
    /// With a date filter or a cursor: the blocks that can hold a hit, ascending, so the walk
    /// jumps from one to the next instead of stepping through every block in between.
    eligible: Option<Vec<u32>>,
    row: Option<(u32, DocRow)>,
}

impl<'a> Stream<'a> {
    /// `None` when some atom matches nothing in this account.
    fn new(ctx: &Ctx<'a>, account: u64, restrict: Option<Vec<i64>>) -> Result<Option<Stream<'a>>, SearchError> {
        let key = TermKey::derive(ctx.reader.sealer(account)?.key().expose());
        let term = |hash| TermIter::new(&ctx.tables.postings, account, hash, ctx.budget);
        let union = |hashes: &mut dyn Iterator<Item = u64>| {
            let mut hashes: Vec<u64> = hashes.collect();
            hashes.sort_unstable();
            hashes.dedup();
            match hashes[..] {
                [one] => Child::Term(term(one)),
                _ => Child::union(hashes.into_iter().map(term).collect()),
            }
        };
        let expand = |dict_key: u64| -> Result<Vec<u64>, SearchError> {
            let lo = DictKey { account, key: dict_key, term: 0 };
            let hi = DictKey { account, key: dict_key, term: u64::MAX };
            let mut out = Vec::new();
            for row in ctx.tables.dict.range(lo..=hi)? {
                out.push(row?.0.value().term);
                if out.len() > MAX_EXPANSION {
                    return Err(SearchError::PrefixTooBroad { max: MAX_EXPANSION });
                }
            }
            Ok(out)
        };
        let mut kids = Vec::new();
        for atom in ctx.parsed.atoms() {
            let expansion = match atom {
                Atom::Term(t) => {
                    kids.push(Child::Term(term(key.text(t))));
                    continue;
                }
                Atom::Prefix(p) => {
                    let cut = p.char_indices().nth(PREFIX_MAX).map_or(p.len(), |(i, _)| i);
                    expand(key.prefix(&p[..cut]))?
                }
                Atom::GramChar(c) => expand(key.gram_char(*c))?,
            };
            if expansion.is_empty() {
                return Ok(None);
            }
            kids.push(union(&mut expansion.into_iter()));
        }
        // Adjacent pairs every candidate's sketch must hold (phrases of whole words, no emoji).
        let mut pairs = Vec::new();
        for clause in ctx.parsed.clauses.iter().filter(|c| c.adjacent) {
            let terms: Option<Vec<&str>> = clause
                .atoms
                .iter()
                .map(|a| match a {
                    Atom::Term(t) if !t.chars().next().is_some_and(is_emoji) => Some(t.as_str()),
                    _ => None,
                })
                .collect();
            for w in terms.unwrap_or_default().windows(2) {
                pairs.push(Sketch::pair(key.text(w[0]), key.text(w[1])));
            }
        }
        let f = &ctx.q.filter;
        let chats = restrict.as_deref().unwrap_or(&f.chats);
        if !chats.is_empty() {
            kids.push(union(&mut chats.iter().map(|&c| key.chat(c))));
        }
        if !f.senders.is_empty() {
            kids.push(union(&mut f.senders.iter().map(|&s| key.sender(s))));
        }
        if !f.kinds.is_empty() {
            kids.push(union(&mut f.kinds.iter().map(|&k| key.kind(k))));
        }
        Ok(Some(Stream {
            account,
            kids,
            pairs,
            restricted: restrict.is_some(),
            target: Some(u32::MAX),
            dates: HashMap::new(),
            eligible: None,
            row: None,
        }))
    }

    /// Reads the account's block dates once and keeps the blocks whose dates can meet the
    /// filter and the cursor (a few hundred small rows at a million messages).
    fn load_eligible(&mut self, ctx: &Ctx<'_>) -> Result<(), SearchError> {
        let f = &ctx.q.filter;
        if f.since.is_none() && f.until.is_none() && ctx.q.cursor.is_none() {
            return Ok(());
        }
        let (since, until) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        let until = ctx.q.cursor.map_or(until, |c| until.min(c.date));
        let lo = AccountBlock { account: self.account, block: 0 };
        let hi = AccountBlock { account: self.account, block: u32::MAX };
        let mut eligible = Vec::new();
        for row in ctx.tables.dates.range(lo..=hi)? {
            let (k, v) = row?;
            let (block, d) = (k.value().block, v.value());
            self.dates.insert(block, d);
            if d.max >= since && d.min <= until {
                eligible.push(block);
            }
        }
        self.eligible = Some(eligible);
        Ok(())
    }

    /// `target`, or the last document of the nearest eligible block below it; `None` when no
    /// eligible block is left.
    fn clamp(&self, target: u32) -> Option<u32> {
        let Some(eligible) = &self.eligible else { return Some(target) };
        let block = target >> DOC_BLOCK_SHIFT;
        let i = eligible.partition_point(|&b| b <= block);
        let below = *eligible.get(i.checked_sub(1)?)?;
        if below == block {
            Some(target)
        } else {
            Some(((below + 1) << DOC_BLOCK_SHIFT) - 1)
        }
    }

    fn block_dates(&mut self, ctx: &Ctx<'_>, block: u32) -> Result<BlockDates, SearchError> {
        if let Some(d) = self.dates.get(&block) {
            return Ok(*d);
        }
        let id = AccountBlock { account: self.account, block };
        let d = ctx.tables.dates.get(id)?.map_or(BlockDates::UNKNOWN, |v| v.value());
        self.dates.insert(block, d);
        Ok(d)
    }

    fn meta(&mut self, ctx: &Ctx<'_>, doc: u32) -> Result<Option<DocMeta>, SearchError> {
        let row_id = doc >> DOC_ROW_SHIFT;
        if self.row.as_ref().is_none_or(|(id, _)| *id != row_id) {
            let id = AccountBlock { account: self.account, block: row_id };
            let row = match ctx.tables.docs.get(id)? {
                Some(v) => DocRow::decode(self.account, v.value())?,
                None => DocRow::default(),
            };
            self.row = Some((row_id, row));
        }
        let (_, row) = self.row.as_ref().expect("loaded above");
        Ok(row.entries.get((doc & ((1 << DOC_ROW_SHIFT) - 1)) as usize).copied().flatten())
    }

    /// The next candidate that passes the cheap filters and could still make the page.
    fn next(&mut self, ctx: &Ctx<'_>, top: &TopK) -> Result<Option<(Cursor, DocMeta)>, SearchError> {
        let f = &ctx.q.filter;
        let (since, until) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        while let Some(target) = self.target.and_then(|t| self.clamp(t)) {
            let Some(doc) = intersect(&mut self.kids, target)? else { break };
            let block = doc >> DOC_BLOCK_SHIFT;
            if self.clamp(doc) != Some(doc) {
                self.target = Some(doc); // Not eligible: the next round jumps below it.
                continue;
            }
            self.target = doc.checked_sub(1);
            let d = self.block_dates(ctx, block)?;
            if d.upto < since.max(top.floor().unwrap_or(i64::MIN)) {
                break; // Nothing at or below this block can still make the page.
            }
            if d.max < since || d.min > until || ctx.q.cursor.is_some_and(|c| d.min > c.date) {
                self.target = (block << DOC_BLOCK_SHIFT).checked_sub(1);
                continue;
            }
            ctx.budget.doc()?;
            let Some(meta) = self.meta(ctx, doc)? else { continue };
            let key = Cursor {
                date: meta.date,
                account: self.account,
                doc,
            };
            if meta.date < since
                || meta.date > until
                || !self.pairs.iter().all(|&p| meta.pairs.may_contain(p))
                || f.direction.is_some_and(|d| d != meta.direction)
                || ctx.q.cursor.is_some_and(|c| key >= c)
                || !top.accepts(&key)
            {
                continue;
            }
            return Ok(Some((key, meta)));
        }
        self.target = None;
        Ok(None)
    }

    /// The checks that need the message itself: who received it, and phrases.
    fn confirm(&self, ctx: &Ctx<'_>, meta: &DocMeta) -> Result<bool, SearchError> {
        let check = ctx.parsed.needs_check();
        if !self.restricted && !check {
            return Ok(true);
        }
        let Some(stored) = ctx.tables.stored(meta.key())? else { return Ok(false) };
        if self.restricted && !stored.seen_by.iter().any(|a| ctx.visible.binary_search(a).is_ok()) {
            return Ok(false);
        }
        if check {
            ctx.budget.check()?;
            let content = ctx.reader.open_content(meta.key(), &stored)?;
            return Ok(satisfies(ctx.parsed, &searchable_parts(&content)));
        }
        Ok(true)
    }
}

/// Orders the page and reads each hit's snippet.
fn finish(reader: &Reader, tables: &Tables, parsed: &Parsed, top: TopK) -> Result<SearchPage, SearchError> {
    let full = top.heap.len() >= top.limit;
    let mut entries: Vec<(Cursor, usize)> = top.heap.into_iter().map(|Reverse(e)| e).collect();
    entries.sort_unstable_by_key(|e| Reverse(e.0));
    let next = if full { entries.last().map(|e| e.0) } else { None };
    let mut hits = Vec::with_capacity(entries.len());
    for (key, i) in entries {
        let meta = &top.metas[i];
        let Some(stored) = tables.stored(meta.key())? else { continue };
        let content = reader.open_content(meta.key(), &stored)?;
        hits.push(Hit {
            key: meta.key(),
            account: key.account,
            chat_id: meta.chat,
            message_id: stored.message_id,
            date: meta.date,
            direction: meta.direction,
            kind: meta.kind,
            sender_id: stored.sender_id,
            snippet: snippet(parsed, &searchable_parts(&content)),
        });
    }
    Ok(SearchPage { hits, next })
}
