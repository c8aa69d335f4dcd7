//! Posting blocks: one term's documents, in rows of at most [`MAX_BLOCK_BYTES`].
//!
//! A row is keyed by its first document ([`TermBlock`]); the value holds the others, encoded
//! whichever way is smaller:
//! - empty: the block is just its first document (most terms of a real vocabulary);
//! - `0x00` + varint deltas (LEB128), for sparse terms;
//! - `0x01` + a bitmap of the documents after the first, for dense terms (`the`, emoji):
//!   one bit per document number instead of at least one byte.
//!
//! New documents have the highest number so far, so indexing appends to a term's last block;
//! a full block starts a new row and is never rewritten again unless a document in it is
//! deleted. Writes go to the transaction's pending blocks ([`super::pending`]), so a block is
//! written once per commit however many documents of the batch it takes. Reading walks blocks newest-first with seeks ([`TermIter`]), intersecting lists by
//! leapfrogging ([`intersect`]).

use std::collections::BinaryHeap;

use redb::ReadableTable;

use super::pending::{Blocks, Source, block_range};
use super::tables::TermBlock;
use super::{Budget, SearchError};

/// Upper bound of a block value: small enough that appending stays cheap, large enough that a
/// dense term needs few rows.
pub const MAX_BLOCK_BYTES: usize = 256;

const VARINT: u8 = 0;
const BITMAP: u8 = 1;

/// Decodes a block into `out` (ascending, starting with `first`).
pub fn decode(first: u32, value: &[u8], out: &mut Vec<u32>) {
    out.clear();
    out.push(first);
    let Some((&tag, body)) = value.split_first() else {
        return;
    };
    match tag {
        VARINT => {
            let mut cur = first;
            let mut acc: u32 = 0;
            let mut shift = 0;
            for &b in body {
                acc |= u32::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    cur = cur.wrapping_add(acc);
                    out.push(cur);
                    acc = 0;
                    shift = 0;
                } else {
                    shift = (shift + 7).min(28);
                }
            }
        }
        _ => {
            for (i, &byte) in body.iter().enumerate() {
                let mut bits = byte;
                while bits != 0 {
                    let bit = bits.trailing_zeros();
                    out.push(first + 1 + (i as u32) * 8 + bit);
                    bits &= bits - 1;
                }
            }
        }
    }
}

/// Encodes ascending, distinct `docs` (the first one is the key) the smaller way.
pub fn encode(docs: &[u32]) -> Vec<u8> {
    let Some((&first, rest)) = docs.split_first() else {
        return Vec::new();
    };
    if rest.is_empty() {
        return Vec::new();
    }
    let mut var = vec![VARINT];
    let mut prev = first;
    for &d in rest {
        let mut delta = d - prev;
        prev = d;
        while delta >= 0x80 {
            var.push((delta as u8 & 0x7f) | 0x80);
            delta >>= 7;
        }
        var.push(delta as u8);
    }
    let span = (prev - first) as usize;
    let bitmap_len = 1 + span.div_ceil(8);
    if bitmap_len >= var.len() {
        return var;
    }
    let mut bm = vec![0u8; bitmap_len];
    bm[0] = BITMAP;
    for &d in rest {
        let bit = (d - first - 1) as usize;
        bm[1 + bit / 8] |= 1 << (bit % 8);
    }
    bm
}

enum Appended {
    /// The document was added at the block's end.
    Done,
    /// The block is full: the document starts the next one.
    Full,
}

fn varint_len(v: u32) -> usize {
    match v {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

/// The common case of indexing, in place and without decoding the block: `doc` is newer than
/// everything in it and the block keeps its encoding. `None` when that does not hold (the
/// block is left as it was; the caller re-encodes).
fn append(first: u32, value: &mut Vec<u8>, doc: u32) -> Option<Appended> {
    let (&tag, body) = value.split_first()?;
    match tag {
        VARINT => {
            let (mut last, mut acc, mut shift) = (first, 0u32, 0);
            for &b in body {
                acc |= u32::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    last = last.wrapping_add(acc);
                    (acc, shift) = (0, 0);
                } else {
                    shift = (shift + 7).min(28);
                }
            }
            let delta = doc.checked_sub(last).filter(|&d| d > 0)?;
            let len = value.len() + varint_len(delta);
            if 1 + ((doc - first) as usize).div_ceil(8) < len {
                return None; // A bitmap would be smaller now.
            }
            if len > MAX_BLOCK_BYTES {
                return Some(Appended::Full);
            }
            let mut d = delta;
            while d >= 0x80 {
                value.push((d as u8 & 0x7f) | 0x80);
                d >>= 7;
            }
            value.push(d as u8);
            Some(Appended::Done)
        }
        _ => {
            let last_byte = body.iter().rposition(|&b| b != 0)?;
            let last = first + 1 + (last_byte as u32) * 8 + (7 - body[last_byte].leading_zeros());
            let bit = doc.checked_sub(first + 1).filter(|_| doc > last)? as usize;
            let len = 1 + bit / 8 + 1;
            // Stretching a bitmap over a gap is fine while it stays small; else re-encode.
            if len > value.len() + 8 {
                return None;
            }
            if len > MAX_BLOCK_BYTES {
                return Some(Appended::Full);
            }
            let new_len = len.max(value.len());
            value.resize(new_len, 0);
            value[1 + bit / 8] |= 1 << (bit % 8);
            Some(Appended::Done)
        }
    }
}

/// Adds `doc` to a term, in the transaction's pending blocks. Returns true when the term had
/// no postings before (a new term of the account, which then needs its dictionary entries).
pub fn insert(
    b: &mut Blocks,
    src: &impl Source<TermBlock, Vec<u8>>,
    account: u64,
    term: u64,
    doc: u32,
) -> Result<bool, redb::StorageError> {
    let t = b.term(src, account, term)?;
    let tail = t.tail();
    // New documents have the highest number so far: the usual case appends to the last block,
    // in place.
    if let Some((first, value, dirty)) = t.tail_mut().filter(|(f, _, _)| *f <= doc) {
        match append(first, value, doc) {
            Some(Appended::Done) => {
                *dirty = true;
                return Ok(false);
            }
            Some(Appended::Full) => {
                t.put(doc, Vec::new());
                return Ok(false);
            }
            None => {}
        }
    }
    let Some((first, value)) = t.block_of(src, doc)? else {
        // Before every block (or the first posting): a block of its own.
        t.put(doc, Vec::new());
        return Ok(tail.is_none());
    };
    let mut docs = Vec::new();
    decode(first, value, &mut docs);
    match docs.binary_search(&doc) {
        Ok(_) => return Ok(false),
        Err(i) => docs.insert(i, doc),
    }
    let enc = encode(&docs);
    if enc.len() <= MAX_BLOCK_BYTES {
        t.put(first, enc);
    } else if docs.last() == Some(&doc) {
        // The usual case: the last block is full, the new document starts the next one.
        t.put(doc, Vec::new());
    } else {
        let (lo, hi) = docs.split_at(docs.len() / 2);
        t.put(first, encode(lo));
        t.put(hi[0], encode(hi));
    }
    Ok(false)
}

/// Removes `doc` from a term, in the transaction's pending blocks. Returns true when the term
/// has no postings left.
pub fn remove(
    b: &mut Blocks,
    src: &impl Source<TermBlock, Vec<u8>>,
    account: u64,
    term: u64,
    doc: u32,
) -> Result<bool, redb::StorageError> {
    let t = b.term(src, account, term)?;
    let Some((first, value)) = t.block_of(src, doc)? else {
        return Ok(false);
    };
    let mut docs = Vec::new();
    decode(first, value, &mut docs);
    let Ok(i) = docs.binary_search(&doc) else {
        return Ok(false);
    };
    docs.remove(i);
    t.remove(src, first)?;
    if let Some(&new_first) = docs.first() {
        t.put(new_first, encode(&docs));
        return Ok(false);
    }
    Ok(t.tail().is_none())
}

/// Walks one term's documents from the newest down, by seeks. Works on the write
/// transaction's tables too (to find a document being removed).
pub struct TermIter<'a, T> {
    table: &'a T,
    account: u64,
    term: u64,
    /// The loaded block, ascending.
    docs: Vec<u32>,
    cur: Option<u32>,
    budget: &'a Budget,
    started: bool,
}

impl<'a, T: ReadableTable<TermBlock, &'static [u8]>> TermIter<'a, T> {
    pub fn new(table: &'a T, account: u64, term: u64, budget: &'a Budget) -> TermIter<'a, T> {
        TermIter {
            table,
            account,
            term,
            docs: Vec::new(),
            cur: None,
            budget,
            started: false,
        }
    }

    pub fn current(&self) -> Option<u32> {
        self.cur
    }

    /// Moves to the newest document at or below `target`.
    pub fn seek(&mut self, target: u32) -> Result<(), SearchError> {
        if self.started && self.cur.is_none_or(|c| c <= target) {
            return Ok(());
        }
        self.started = true;
        if self.docs.first().is_none_or(|&f| f > target) {
            self.budget.block()?;
            let row = self
                .table
                .range(block_range(self.account, self.term, target))?
                .next_back();
            match row {
                None => {
                    self.docs.clear();
                    self.cur = None;
                    return Ok(());
                }
                Some(row) => {
                    let (k, v) = row?;
                    decode(k.value().first, v.value(), &mut self.docs);
                }
            }
        }
        let i = self.docs.partition_point(|&d| d <= target);
        self.cur = Some(self.docs[i - 1]);
        Ok(())
    }
}

/// One input of an intersection: a term, or a union of terms (a prefix, a character, a filter
/// with several values).
pub enum Child<'a, T> {
    Term(TermIter<'a, T>),
    Or {
        kids: Vec<TermIter<'a, T>>,
        heap: BinaryHeap<(u32, usize)>,
        started: bool,
    },
}

impl<'a, T: ReadableTable<TermBlock, &'static [u8]>> Child<'a, T> {
    pub fn union(kids: Vec<TermIter<'a, T>>) -> Child<'a, T> {
        Child::Or {
            kids,
            heap: BinaryHeap::new(),
            started: false,
        }
    }

    pub fn current(&self) -> Option<u32> {
        match self {
            Child::Term(t) => t.current(),
            Child::Or { heap, .. } => heap.peek().map(|&(d, _)| d),
        }
    }

    pub fn seek(&mut self, target: u32) -> Result<(), SearchError> {
        match self {
            Child::Term(t) => t.seek(target),
            Child::Or { kids, heap, started } => {
                if !*started {
                    *started = true;
                    for (i, k) in kids.iter_mut().enumerate() {
                        k.seek(target)?;
                        if let Some(d) = k.current() {
                            heap.push((d, i));
                        }
                    }
                    return Ok(());
                }
                while let Some(&(d, i)) = heap.peek() {
                    if d <= target {
                        break;
                    }
                    heap.pop();
                    kids[i].seek(target)?;
                    if let Some(nd) = kids[i].current() {
                        heap.push((nd, i));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Leapfrog intersection: the newest document at or below `target` that every child has.
pub fn intersect<T: ReadableTable<TermBlock, &'static [u8]>>(
    kids: &mut [Child<'_, T>],
    target: u32,
) -> Result<Option<u32>, SearchError> {
    let mut t = target;
    'again: loop {
        for k in kids.iter_mut() {
            k.seek(t)?;
            match k.current() {
                None => return Ok(None),
                Some(d) if d < t => {
                    t = d;
                    continue 'again;
                }
                Some(_) => {}
            }
        }
        return Ok(Some(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(docs: &[u32]) -> usize {
        let enc = encode(docs);
        let mut out = Vec::new();
        decode(docs[0], &enc, &mut out);
        assert_eq!(out, docs);
        enc.len()
    }

    #[test]
    fn appending_keeps_what_a_full_encode_would_decode() {
        let mut seed = 7u64;
        for _ in 0..2_000 {
            let mut docs = vec![(seed % 1000) as u32];
            let mut value = Vec::new();
            for _ in 0..200 {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let gap = if seed >> 60 == 0 {
                    (seed >> 20) % 5000
                } else {
                    (seed >> 20) % 9
                } as u32
                    + 1;
                let doc = docs.last().unwrap() + gap;
                match append(docs[0], &mut value, doc) {
                    Some(Appended::Done) => {}
                    Some(Appended::Full) => break,
                    None => value = encode(&[docs.clone(), vec![doc]].concat()),
                }
                docs.push(doc);
                let mut out = Vec::new();
                decode(docs[0], &value, &mut out);
                assert_eq!(out, docs);
                assert!(value.len() <= MAX_BLOCK_BYTES);
            }
        }
    }

    #[test]
    fn sparse_blocks_use_varints_and_dense_ones_bitmaps() {
        assert_eq!(roundtrip(&[7]), 0);
        assert_eq!(roundtrip(&[1, 1000, 300_000, u32::MAX]), 1 + 2 + 3 + 5);
        let dense: Vec<u32> = (100..1100).filter(|d| d % 3 != 0).collect();
        let len = roundtrip(&dense);
        assert_eq!(encode(&dense)[0], BITMAP);
        assert!(len < dense.len() / 4, "{len} bytes for {} docs", dense.len());
        assert_eq!(encode(&[5, 6])[0], VARINT);
    }
}
