//! The index's redb tables, declared once, with the key and value types that own their byte
//! encoding (fixed-width big-endian keys, as in [`crate::store::tables`], so byte order is
//! numeric order and one account's rows form one contiguous range).
//!
//! Nothing here holds plaintext: terms are 64-bit keyed hashes under the owner account's data
//! key (see [`super::terms`]); documents are small per-account numbers; the rest is identifiers
//! and dates the store already keeps in the clear.
//!
//! Names follow `key_value`, prefixed `search_`.

use std::cmp::Ordering;

use redb::{Key, TableDefinition, TypeName, Value};

use super::sketch::Sketch;
use crate::model::{BodyKind, Direction};
use crate::store::{MsgKey, StoreError};

/// `(account, term hash, first doc) -> posting block` (see [`super::postings`]).
pub const TERM_POSTINGS: TableDefinition<TermBlock, &[u8]> = TableDefinition::new("search_term_postings");
/// `(account, prefix or character hash, term hash) -> ()`: which terms a prefix query expands to.
pub const PREFIX_TERM: TableDefinition<DictKey, ()> = TableDefinition::new("search_prefix_term");
/// `(account, doc >> DOC_ROW_SHIFT) -> DocRow`: which message each document is, and the fields
/// filters and ordering read, 64 documents to a row. The last row also says which document
/// number comes next.
pub const DOCROW_MESSAGES: TableDefinition<AccountBlock, &[u8]> = TableDefinition::new("search_docrow_messages");
/// `(account, doc >> DOC_BLOCK_SHIFT) -> BlockDates`: date bounds for newest-first early exit.
pub const DOCBLOCK_DATES: TableDefinition<AccountBlock, BlockDates> = TableDefinition::new("search_docblock_dates");

/// Every table above, by name, for size reports.
pub const TABLE_NAMES: [&str; 4] = [
    "search_term_postings",
    "search_prefix_term",
    "search_docrow_messages",
    "search_docblock_dates",
];

/// Documents per row of [`DOCROW_MESSAGES`] (as a shift: 64).
pub const DOC_ROW_SHIFT: u32 = 6;
/// Documents per row of [`DOCBLOCK_DATES`] (as a shift: 1024).
pub const DOC_BLOCK_SHIFT: u32 = 10;

/// A block of one term's postings, keyed by the first document in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TermBlock {
    pub account: u64,
    pub term: u64,
    pub first: u32,
}

/// A dictionary entry: `term` has the prefix (or contains the character) hashed as `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DictKey {
    pub account: u64,
    pub key: u64,
    pub term: u64,
}

/// A row of documents of one account: documents `block << shift ..` for the table's shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountBlock {
    pub account: u64,
    pub block: u32,
}

/// Dates of a block of documents. `upto` is the newest date of any document ever indexed in
/// this block or an earlier one: a scan walking documents newest-first stops at a block whose
/// `upto` is older than what it still needs. Bounds stay bounds after deletes (never tightened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockDates {
    pub upto: i64,
    pub min: i64,
    pub max: i64,
    /// Documents currently in the block; the row goes when it reaches zero.
    pub live: u32,
}

impl BlockDates {
    /// What to assume about a block that has no row (never happens in a consistent index).
    pub const UNKNOWN: BlockDates = BlockDates {
        upto: i64::MAX,
        min: i64::MIN,
        max: i64::MAX,
        live: 0,
    };
}

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

/// One row of [`DOCROW_MESSAGES`]: entry `i` is document `(block << DOC_ROW_SHIFT) + i`,
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
const KINDS: [BodyKind; 19] = [
    BodyKind::Text,
    BodyKind::Image,
    BodyKind::File,
    BodyKind::Video,
    BodyKind::Audio,
    BodyKind::Voice,
    BodyKind::VideoNote,
    BodyKind::Sticker,
    BodyKind::Animation,
    BodyKind::Location,
    BodyKind::Venue,
    BodyKind::Contact,
    BodyKind::Poll,
    BodyKind::Dice,
    BodyKind::InteractiveReply,
    BodyKind::Postback,
    BodyKind::Service,
    BodyKind::Redacted,
    BodyKind::Unsupported,
];

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
        let base = b.varint().map(unzigzag).ok_or_else(|| row_error("truncated header"))?;
        let mut out = Vec::with_capacity(bytes.len() + 24);
        out.extend_from_slice(bytes);
        out[1] += 1;
        encode_entry(&mut out, account, base, meta);
        Ok(out)
    }

    pub fn decode(account: u64, bytes: &[u8]) -> Result<DocRow, StoreError> {
        let bad = row_error;
        let mut b = Bytes(bytes);
        if b.byte() != Some(DOC_ROW_VERSION) {
            return Err(bad("unknown format version"));
        }
        let count = b.byte().ok_or_else(|| bad("truncated header"))?;
        let base = b.varint().map(unzigzag).ok_or_else(|| bad("truncated header"))?;
        let mut entries = Vec::with_capacity(usize::from(count));
        while let Some(flags) = b.byte() {
            if flags == 0 {
                entries.push(None);
                continue;
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
            let direction = if flags & 2 != 0 { Direction::Outgoing } else { Direction::Incoming };
            entries.push(Some(DocMeta {
                scope,
                chat,
                msg,
                date,
                direction,
                kind,
                pairs,
            }));
        }
        if entries.len() != usize::from(count) {
            return Err(bad("entry count does not match"));
        }
        Ok(DocRow { entries })
    }
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

fn flip(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

fn unflip(b: &[u8]) -> i64 {
    (u64::from_be_bytes(b.try_into().expect("8 bytes")) ^ (1 << 63)) as i64
}

fn be_u64(b: &[u8]) -> u64 {
    u64::from_be_bytes(b.try_into().expect("8 bytes"))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes(b.try_into().expect("4 bytes"))
}

macro_rules! fixed {
    ($ty:ident, $width:expr, $name:expr, key: $is_key:tt, |$v:ident| $enc:expr, |$b:ident| $dec:expr) => {
        impl Value for $ty {
            type SelfType<'a> = $ty;
            type AsBytes<'a> = [u8; $width];

            fn fixed_width() -> Option<usize> {
                Some($width)
            }

            fn from_bytes<'a>($b: &'a [u8]) -> $ty
            where
                Self: 'a,
            {
                $dec
            }

            fn as_bytes<'a, 'b: 'a>($v: &'a $ty) -> [u8; $width]
            where
                Self: 'b,
            {
                $enc
            }

            fn type_name() -> TypeName {
                TypeName::new($name)
            }
        }
        fixed!(@key $is_key $ty);
    };
    (@key true $ty:ident) => {
        impl Key for $ty {
            fn compare(a: &[u8], b: &[u8]) -> Ordering {
                a.cmp(b)
            }
        }
    };
    (@key false $ty:ident) => {};
}

fixed!(
    TermBlock,
    20,
    "lanbox::search::TermBlock",
    key: true,
    |v| {
        let mut out = [0u8; 20];
        out[..8].copy_from_slice(&v.account.to_be_bytes());
        out[8..16].copy_from_slice(&v.term.to_be_bytes());
        out[16..].copy_from_slice(&v.first.to_be_bytes());
        out
    },
    |b| TermBlock {
        account: be_u64(&b[..8]),
        term: be_u64(&b[8..16]),
        first: be_u32(&b[16..20]),
    }
);

fixed!(
    DictKey,
    24,
    "lanbox::search::DictKey",
    key: true,
    |v| {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&v.account.to_be_bytes());
        out[8..16].copy_from_slice(&v.key.to_be_bytes());
        out[16..].copy_from_slice(&v.term.to_be_bytes());
        out
    },
    |b| DictKey {
        account: be_u64(&b[..8]),
        key: be_u64(&b[8..16]),
        term: be_u64(&b[16..24]),
    }
);

fixed!(
    AccountBlock,
    12,
    "lanbox::search::AccountBlock",
    key: true,
    |v| {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&v.account.to_be_bytes());
        out[8..].copy_from_slice(&v.block.to_be_bytes());
        out
    },
    |b| AccountBlock {
        account: be_u64(&b[..8]),
        block: be_u32(&b[8..12]),
    }
);

fixed!(
    BlockDates,
    28,
    "lanbox::search::BlockDates",
    key: false,
    |v| {
        let mut out = [0u8; 28];
        out[..8].copy_from_slice(&flip(v.upto));
        out[8..16].copy_from_slice(&flip(v.min));
        out[16..24].copy_from_slice(&flip(v.max));
        out[24..].copy_from_slice(&v.live.to_be_bytes());
        out
    },
    |b| BlockDates {
        upto: unflip(&b[..8]),
        min: unflip(&b[8..16]),
        max: unflip(&b[16..24]),
        live: be_u32(&b[24..28]),
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_account_then_numerically() {
        let a = TermBlock {
            account: 1,
            term: u64::MAX,
            first: u32::MAX,
        };
        let b = TermBlock {
            account: 2,
            term: 0,
            first: 0,
        };
        let c = TermBlock {
            account: 2,
            term: 0,
            first: 256,
        };
        assert!(TermBlock::as_bytes(&a) < TermBlock::as_bytes(&b));
        assert!(TermBlock::as_bytes(&b) < TermBlock::as_bytes(&c));
        assert_eq!(TermBlock::from_bytes(&TermBlock::as_bytes(&c)), c);
        let d = BlockDates {
            upto: -5,
            min: i64::MIN,
            max: 7,
            live: 3,
        };
        assert_eq!(BlockDates::from_bytes(&BlockDates::as_bytes(&d)), d);
        let k = DictKey {
            account: 3,
            key: 9,
            term: 1,
        };
        assert_eq!(DictKey::from_bytes(&DictKey::as_bytes(&k)), k);
    }

    #[test]
    fn doc_rows_round_trip_compactly() {
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
        assert!(bytes.len() < 8 + 4 * 19, "{} bytes", bytes.len());
        assert!(DocRow::decode(5, &bytes[..bytes.len() - 1]).is_err());
        assert!(DocRow::decode(5, &[9]).is_err());
    }
}
