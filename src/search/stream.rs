//! One account's share of a query: its terms hashed under the account's key, intersected,
//! walked newest-numbered first with the cheap filters (dates, direction, cursor, phrase
//! sketches) applied on the way, and the costly checks (decrypting for phrases, `seen_by` for
//! another owner's messages) only for candidates that could make the page.

use std::cell::Cell;
use std::collections::HashMap;

use super::budget::{MAX_EXPANSION, Postings, Tables, TopK};
use super::docrow::{DocMeta, RowView};
use super::names;
use super::postings::{Child, TermIter, intersect};
use super::query::{Atom, Cursor, Parsed, Query};
use super::sketch::Sketch;
use super::snippet::satisfies;
use super::tables::*;
use super::terms::{PREFIX_MAX, TermKey, searchable_parts, sender_names};
use super::tokenize::is_emoji;
use super::{Budget, SearchError};
use crate::store::Reader;

/// What every stream of one query shares.
pub(super) struct Ctx<'a> {
    pub reader: &'a Reader,
    pub tables: &'a Tables,
    pub parsed: &'a Parsed,
    pub q: &'a Query,
    pub visible: &'a [u64],
    pub budget: &'a Budget,
    /// Set when an implied prefix expanded to too many terms in some account and its word was
    /// matched whole there.
    pub whole: &'a Cell<bool>,
}

/// One account's candidates, newest-numbered first.
pub(super) struct Stream<'a> {
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
    row: Option<(u32, RowView)>,
}

impl<'a> Stream<'a> {
    /// `None` when some atom matches nothing in this account.
    pub fn new(
        ctx: &Ctx<'a>,
        account: u64,
        restrict: Option<Vec<i64>>,
    ) -> Result<Option<Stream<'a>>, SearchError> {
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
            let lo = DictKey {
                account,
                key: dict_key,
                term: 0,
            };
            let hi = DictKey {
                account,
                key: dict_key,
                term: u64::MAX,
            };
            let mut out = Vec::new();
            for row in ctx.tables.dict.range(lo..=hi)? {
                out.push(row?.0.value().term);
                if out.len() > MAX_EXPANSION {
                    return Err(SearchError::PrefixTooBroad { max: MAX_EXPANSION });
                }
            }
            Ok(out)
        };
        // The filter terms of the senders who go by a name word.
        let named = |word: &str| -> Result<Vec<u64>, SearchError> {
            let Some(names) = &ctx.tables.names else {
                return Ok(Vec::new());
            };
            let found = names::senders(names, account, key.sender_name(word), MAX_EXPANSION)?;
            let senders = found.ok_or(SearchError::PrefixTooBroad { max: MAX_EXPANSION })?;
            Ok(senders.into_iter().map(|s| key.sender(s)).collect())
        };
        let mut kids = Vec::new();
        for atom in ctx.parsed.atoms() {
            let mut expansion = match atom {
                Atom::Term(t) => vec![key.text(t)],
                Atom::Prefix(p) => {
                    let cut = p.char_indices().nth(PREFIX_MAX).map_or(p.len(), |(i, _)| i);
                    match expand(key.prefix(&p[..cut])) {
                        Err(SearchError::PrefixTooBroad { .. }) if ctx.parsed.implied => {
                            ctx.whole.set(true);
                            vec![key.text(p)]
                        }
                        other => other?,
                    }
                }
                Atom::GramChar(c) => expand(key.gram_char(*c))?,
                Atom::Name(_) => Vec::new(),
            };
            if let Atom::Term(w) | Atom::Prefix(w) | Atom::Name(w) = atom {
                expansion.extend(named(w)?);
            }
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
    pub fn load_eligible(&mut self, ctx: &Ctx<'_>) -> Result<(), SearchError> {
        let f = &ctx.q.filter;
        if f.since.is_none() && f.until.is_none() && ctx.q.cursor.is_none() {
            return Ok(());
        }
        let (since, until) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        let until = ctx.q.cursor.map_or(until, |c| until.min(c.date));
        let lo = AccountBlock {
            account: self.account,
            block: 0,
        };
        let hi = AccountBlock {
            account: self.account,
            block: u32::MAX,
        };
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
        let Some(eligible) = &self.eligible else {
            return Some(target);
        };
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
        let id = AccountBlock {
            account: self.account,
            block,
        };
        let d = ctx
            .tables
            .dates
            .get(id)?
            .map_or(BlockDates::UNKNOWN, |v| v.value());
        self.dates.insert(block, d);
        Ok(d)
    }

    fn meta(&mut self, ctx: &Ctx<'_>, doc: u32) -> Result<Option<DocMeta>, SearchError> {
        let holds = |(first, row): &(u32, RowView)| doc >= *first && doc - first < row.len() as u32;
        if !self.row.as_ref().is_some_and(holds) {
            let lo = AccountDoc {
                account: self.account,
                doc: 0,
            };
            let hi = AccountDoc {
                account: self.account,
                doc,
            };
            self.row = None;
            if let Some(row) = ctx.tables.docs.range(lo..=hi)?.next_back() {
                let (k, v) = row?;
                let view = RowView::parse(self.account, v.value().to_vec())?;
                self.row = Some((k.value().doc, view));
            }
        }
        match &self.row {
            Some((first, row)) if doc >= *first => Ok(row.get((doc - first) as usize)?),
            _ => Ok(None),
        }
    }

    /// The next candidate that passes the cheap filters and could still make the page.
    pub fn next(&mut self, ctx: &Ctx<'_>, top: &TopK) -> Result<Option<(Cursor, DocMeta)>, SearchError> {
        let f = &ctx.q.filter;
        let (since, until) = (f.since.unwrap_or(i64::MIN), f.until.unwrap_or(i64::MAX));
        while let Some(target) = self.target.and_then(|t| self.clamp(t)) {
            let Some(doc) = intersect(&mut self.kids, target)? else {
                break;
            };
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
            let Some(meta) = self.meta(ctx, doc)? else {
                continue;
            };
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

    /// The checks that need the message itself: who received it, and phrases (a long prefix
    /// may also match a sender's name).
    pub fn confirm(&self, ctx: &Ctx<'_>, meta: &DocMeta) -> Result<bool, SearchError> {
        let check = ctx.parsed.needs_check();
        if !self.restricted && !check {
            return Ok(true);
        }
        let Some(stored) = ctx.tables.stored(meta.key())? else {
            return Ok(false);
        };
        if self.restricted
            && !stored
                .seen_by
                .iter()
                .any(|a| ctx.visible.binary_search(a).is_ok())
        {
            return Ok(false);
        }
        if check {
            ctx.budget.check()?;
            let content = ctx.reader.open_content(meta.key(), &stored)?;
            let mut texts = searchable_parts(&content);
            texts.extend(sender_names(&content));
            return Ok(satisfies(ctx.parsed, &texts));
        }
        Ok(true)
    }
}
