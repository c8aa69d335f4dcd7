//! Document rows: what the index keeps about each document (its message and the fields that
//! filters, ordering and phrase checks read), consecutive documents to a row of
//! [`super::tables::DOCROW_MESSAGES`], in a compact encoding that appends without decoding and
//! reads one entry without decoding the rest ([`RowView`]).
//!
//! A row is closed when it nears [`ROW_BYTES`]: the table only ever grows at its end, and
//! redb leaves pages half full when it splits them there, so rows about a page in size keep
//! each page nearly full (rows of a fixed 64 documents used 1.7 bytes of pages per byte).

use super::sketch::Sketch;
use crate::model::{BodyKind, Direction};
use crate::store::{MsgKey, StoreError};

/// What the index keeps about a document: its message key and the fields filters and ordering
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocMeta {
    pub scope: u64,
    pub chat: i64,
    pub msg: i64,
    pub date: i64,
    pub direction: Direction,
    pub kind: BodyKind,
    /// Which terms stand side by side (for phrase queries).
    pub pairs: Sketch,
}

impl DocMeta {
    pub fn key(&self) -> MsgKey {
        MsgKey {
            scope: self.scope,
            chat: self.chat,
            msg: self.msg,
        }
    }
}

/// Rows are closed once they would pass this many bytes (a redb page is 4096).
pub const ROW_BYTES: usize = 3900;
/// Entries in a row, at most (the count is one byte).
pub const ROW_ENTRIES: usize = 255;

/// One row of [`super::tables::DOCROW_MESSAGES`]: entry `i` is document `first + i`,
/// `None` once deleted (the row goes when every entry is).
///
/// Encoding: a version byte, the number of entries, the row's base date (zigzag varint), then
/// per entry either `0` (deleted) or a flags byte (bit 0 set, bit 1 outgoing, bits 2-3 scope:
/// the account, zero, or a varint that follows), the body kind code, zigzag varints of the
/// chat, the message key and the date minus the base, then the pair sketch (a length byte and
/// 4 to 128 bytes). Appending needs no decoding ([`DocRow::append`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocRow {
    pub entries: Vec<Option<DocMeta>>,
}

const DOC_ROW_VERSION: u8 = 1;

/// Every body kind, by code (`BodyKind::code`).
const KINDS: [BodyKind; 19] = BodyKind::ALL;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
}

impl DocRow {
    pub fn encode(&self, account: u64) -> Vec<u8> {
        let base = self.entries.iter().flatten().next().map_or(0, |m| m.date);
        let mut out = Vec::with_capacity(12 + self.entries.len() * 24);
        out.push(DOC_ROW_VERSION);
        out.push(self.entries.len() as u8);
        put_varint(&mut out, zigzag(base));
        for e in &self.entries {
            match e {
                Some(m) => encode_entry(&mut out, account, base, m),
                None => out.push(0),
            }
        }
        out
    }

    /// Number of entries of an encoded row, without decoding it.
    pub fn len_of(bytes: &[u8]) -> usize {
        bytes.get(1).copied().map_or(0, usize::from)
    }

    /// An encoded row with `meta` appended, without decoding the others.
    pub fn append(bytes: &[u8], account: u64, meta: &DocMeta) -> Result<Vec<u8>, StoreError> {
        let mut b = Bytes(bytes.get(2..).unwrap_or_default());
        let base = b
            .varint()
            .map(unzigzag)
            .ok_or_else(|| row_error("truncated header"))?;
        let mut out = Vec::with_capacity(bytes.len() + 24);
        out.extend_from_slice(bytes);
        out[1] = out[1].checked_add(1).ok_or_else(|| row_error("row is full"))?;
        encode_entry(&mut out, account, base, meta);
        Ok(out)
    }

    pub fn decode(account: u64, bytes: &[u8]) -> Result<DocRow, StoreError> {
        let mut b = Bytes(bytes);
        if b.byte() != Some(DOC_ROW_VERSION) {
            return Err(row_error("unknown format version"));
        }
        let count = b.byte().ok_or_else(|| row_error("truncated header"))?;
        let base = b
            .varint()
            .map(unzigzag)
            .ok_or_else(|| row_error("truncated header"))?;
        let mut entries = Vec::with_capacity(usize::from(count));
        while !b.0.is_empty() {
            entries.push(decode_entry(&mut b, account, base)?);
        }
        if entries.len() != usize::from(count) {
            return Err(row_error("entry count does not match"));
        }
        Ok(DocRow { entries })
    }
}

fn decode_entry(b: &mut Bytes<'_>, account: u64, base: i64) -> Result<Option<DocMeta>, StoreError> {
    let bad = row_error;
    let flags = b.byte().ok_or_else(|| bad("truncated entry"))?;
    if flags == 0 {
        return Ok(None);
    }
    let kind = *KINDS
        .get(usize::from(b.byte().ok_or_else(|| bad("truncated entry"))?))
        .ok_or_else(|| bad("unknown kind"))?;
    let mut field = || b.varint().ok_or_else(|| bad("truncated entry"));
    let scope = match (flags >> 2) & 3 {
        0 => account,
        1 => 0,
        _ => field()?,
    };
    let chat = unzigzag(field()?);
    let msg = unzigzag(field()?);
    let date = base.wrapping_add(unzigzag(field()?));
    let (pairs, used) = Sketch::decode(b.0).ok_or_else(|| bad("truncated pair sketch"))?;
    b.0 = &b.0[used..];
    let direction = if flags & 2 != 0 {
        Direction::Outgoing
    } else {
        Direction::Incoming
    };
    Ok(Some(DocMeta {
        scope,
        chat,
        msg,
        date,
        direction,
        kind,
        pairs,
    }))
}

fn row_error(detail: &str) -> StoreError {
    StoreError::Format {
        record: "search document row",
        detail: detail.into(),
    }
}

fn encode_entry(out: &mut Vec<u8>, account: u64, base: i64, m: &DocMeta) {
    let scope_mode: u8 = match m.scope {
        s if s == account => 0,
        0 => 1,
        _ => 2,
    };
    let outgoing = u8::from(m.direction == Direction::Outgoing);
    out.push(1 | (outgoing << 1) | (scope_mode << 2));
    out.push(m.kind.code());
    if scope_mode == 2 {
        put_varint(out, m.scope);
    }
    put_varint(out, zigzag(m.chat));
    put_varint(out, zigzag(m.msg));
    put_varint(out, zigzag(m.date.wrapping_sub(base)));
    m.pairs.encode(out);
}

/// A row read for queries: entries are found by offset and decoded one at a time, so looking
/// at one candidate does not decode (and copy the sketches of) its 63 neighbours.
pub struct RowView {
    account: u64,
    base: i64,
    bytes: Vec<u8>,
    /// Offset of each entry in `bytes`.
    offsets: Vec<u32>,
}

impl RowView {
    pub fn parse(account: u64, bytes: Vec<u8>) -> Result<RowView, StoreError> {
        let mut b = Bytes(&bytes);
        if b.byte() != Some(DOC_ROW_VERSION) {
            return Err(row_error("unknown format version"));
        }
        let count = b.byte().ok_or_else(|| row_error("truncated header"))?;
        let base = b
            .varint()
            .map(unzigzag)
            .ok_or_else(|| row_error("truncated header"))?;
        let mut offsets = Vec::with_capacity(usize::from(count));
        while !b.0.is_empty() {
            offsets.push((bytes.len() - b.0.len()) as u32);
            skip_entry(&mut b).ok_or_else(|| row_error("truncated entry"))?;
        }
        if offsets.len() != usize::from(count) {
            return Err(row_error("entry count does not match"));
        }
        Ok(RowView {
            account,
            base,
            bytes,
            offsets,
        })
    }

    /// Number of entries (deleted ones included).
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Entry `i` (document `first + i`), `None` when deleted or absent.
    pub fn get(&self, i: usize) -> Result<Option<DocMeta>, StoreError> {
        let Some(&off) = self.offsets.get(i) else {
            return Ok(None);
        };
        let mut b = Bytes(&self.bytes[off as usize..]);
        decode_entry(&mut b, self.account, self.base)
    }

    /// Whether every entry is deleted (the row can go).
    pub fn all_deleted(&self) -> bool {
        self.offsets.iter().all(|&o| self.bytes[o as usize] == 0)
    }

    /// The row re-encoded with entry `i` replaced (deleted for `None`), growing with deleted
    /// entries if `i` is past its end. Other entries are copied as they are.
    pub fn with_entry(&self, i: usize, meta: Option<&DocMeta>) -> Vec<u8> {
        let count = self.len().max(i + 1);
        let mut out = Vec::with_capacity(self.bytes.len() + 24);
        out.push(DOC_ROW_VERSION);
        out.push(count as u8);
        put_varint(&mut out, zigzag(self.base));
        for j in 0..count {
            if j == i {
                match meta {
                    Some(m) => encode_entry(&mut out, self.account, self.base, m),
                    None => out.push(0),
                }
                continue;
            }
            let Some(&from) = self.offsets.get(j) else {
                out.push(0);
                continue;
            };
            let to = self.offsets.get(j + 1).map_or(self.bytes.len(), |&o| o as usize);
            out.extend_from_slice(&self.bytes[from as usize..to]);
        }
        out
    }
}

/// Moves past one entry (tombstone or live) without decoding it.
fn skip_entry(b: &mut Bytes<'_>) -> Option<()> {
    let flags = b.byte()?;
    if flags == 0 {
        return Some(());
    }
    b.byte()?;
    let fields = if (flags >> 2) & 3 == 2 { 4 } else { 3 };
    for _ in 0..fields {
        b.varint()?;
    }
    let (_, used) = Sketch::decode(b.0)?;
    b.0 = &b.0[used..];
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_compactly_and_read_one_entry() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(usize::from(k.code()), i);
        }
        let meta = |scope, date, kind| DocMeta {
            scope,
            chat: -1_001_234_567_890,
            msg: 77_000,
            date,
            direction: Direction::Outgoing,
            kind,
            pairs: Sketch::build(&[date as u64]),
        };
        let row = DocRow {
            entries: vec![
                Some(meta(5, 1_700_000_000, BodyKind::Text)),
                None,
                Some(meta(0, 1_700_000_007, BodyKind::Unsupported)),
                Some(meta(9, 1_699_999_000, BodyKind::Image)),
            ],
        };
        let bytes = row.encode(5);
        assert_eq!(DocRow::decode(5, &bytes).unwrap(), row);
        let extra = meta(5, 1_700_000_100, BodyKind::Voice);
        let appended = DocRow::append(&bytes, 5, &extra).unwrap();
        let mut longer = row.clone();
        longer.entries.push(Some(extra));
        assert_eq!(DocRow::decode(5, &appended).unwrap(), longer);
        assert_eq!(DocRow::len_of(&appended), 5);
        let view = RowView::parse(5, appended).unwrap();
        for (i, e) in longer.entries.iter().enumerate() {
            assert_eq!(view.get(i).unwrap(), *e);
        }
        assert_eq!(view.get(99).unwrap(), None);
        let gone = RowView::parse(5, view.with_entry(0, None)).unwrap();
        assert_eq!(gone.get(0).unwrap(), None);
        assert_eq!(gone.get(2).unwrap(), longer.entries[2]);
        let grown = RowView::parse(5, gone.with_entry(7, Some(&extra))).unwrap();
        assert_eq!(
            (grown.len(), grown.get(6).unwrap(), grown.get(7).unwrap()),
            (8, None, Some(extra))
        );
        let none = RowView::parse(
            5,
            DocRow {
                entries: vec![None, None],
            }
            .encode(5),
        )
        .unwrap();
        assert!(none.all_deleted() && !grown.all_deleted());
        assert!(bytes.len() < 8 + 4 * 19, "{} bytes", bytes.len());
        assert!(DocRow::decode(5, &bytes[..bytes.len() - 1]).is_err());
        assert!(DocRow::decode(5, &[9]).is_err());
    }
}
