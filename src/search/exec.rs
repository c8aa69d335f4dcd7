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
use std::collections::BinaryHeap;

use super::budget::{Budget, Tables, TopK};
use super::query::{Cursor, Parsed, Query, parse};
use super::snippet::snippet;
use super::stream::{Ctx, Stream};
use super::terms::searchable_parts;
use super::{Hit, SearchError, SearchPage};
use crate::store::Reader;

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
        return Ok(SearchPage {
            prefix: parsed.prefix,
            ..SearchPage::default()
        });
    }
    let Some(tables) = Tables::open(reader.txn())? else {
        return Ok(SearchPage {
            prefix: parsed.prefix,
            ..SearchPage::default()
        });
    };
    let budget = Budget::default();
    let whole = Cell::new(false);
    let ctx = Ctx {
        reader,
        tables: &tables,
        parsed: &parsed,
        q,
        visible: &visible,
        budget: &budget,
        whole: &whole,
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
    let mut page = finish(reader, &tables, &parsed, top)?;
    page.prefix = parsed.prefix && !whole.get();
    Ok(page)
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

/// Orders the page and reads each hit's snippet.
fn finish(reader: &Reader, tables: &Tables, parsed: &Parsed, top: TopK) -> Result<SearchPage, SearchError> {
    let full = top.heap.len() >= top.limit;
    let mut entries: Vec<(Cursor, usize)> = top.heap.into_iter().map(|Reverse(e)| e).collect();
    entries.sort_unstable_by_key(|e| Reverse(e.0));
    let next = if full { entries.last().map(|e| e.0) } else { None };
    let mut hits = Vec::with_capacity(entries.len());
    for (key, i) in entries {
        let meta = &top.metas[i];
        let Some(stored) = tables.stored(meta.key())? else {
            continue;
        };
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
    Ok(SearchPage {
        hits,
        next,
        prefix: false,
    })
}
