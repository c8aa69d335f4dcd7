//! The index's redb tables, declared once, with the key and value types that own their byte
//! encoding (fixed-width big-endian keys, as in [`crate::store::tables`], so byte order is
//! numeric order and one account's rows form one contiguous range).
//!
//! Nothing here holds plaintext: terms are 64-bit keyed hashes under the owner account's data
//! key (see [`super::terms`]); documents are small per-account numbers; the rest is identifiers
//! and dates the store already keeps in the clear.
//!
//! The two byte-string values, posting blocks and document rows, are not records: each is a
//! compact format owned by one module ([`super::postings`], [`super::docrow`]) that is read
//! relative to its key (a block's documents are deltas from the key's first document, a row's
//! entries need the key's account) and appended to in place without decoding. So they stay
//! `&[u8]`, and only those two modules make sense of their bytes.
//!
//! Names follow `key_value`, prefixed `search_`.

use std::cmp::Ordering;

use redb::{Key, TableDefinition, TypeName, Value};

/// `(account, term hash, first doc) -> posting block` (see [`super::postings`]).
pub const TERM_POSTINGS: TableDefinition<TermBlock, &[u8]> = TableDefinition::new("search_term_postings");
/// `(account, prefix or character hash, term hash) -> ()`: which terms a prefix query expands to.
pub const PREFIX_TERM: TableDefinition<DictKey, ()> = TableDefinition::new("search_prefix_term");
/// `(account, first doc) -> `[`super::docrow::DocRow`]: which message each document is, and
/// the fields filters, ordering and phrase checks read, for consecutive documents from the
/// first. The last row also says which document number comes next.
pub const DOCROW_MESSAGES: TableDefinition<AccountDoc, &[u8]> =
    TableDefinition::new("search_docrow_messages");
/// `(account, doc >> DOC_BLOCK_SHIFT) -> BlockDates`: date bounds for newest-first early exit.
pub const DOCBLOCK_DATES: TableDefinition<AccountBlock, BlockDates> =
    TableDefinition::new("search_docblock_dates");

/// `(account, sender-name word hash, first sender) -> block of senders` (see [`super::names`]):
/// who goes by a name word, so `from:ann` and a plain `ann` find every sender called Ann.
pub const NAME_SENDERS: TableDefinition<NameSender, &[u8]> = TableDefinition::new("search_name_senders");

/// Every table above, by name, for size reports.
pub const TABLE_NAMES: [&str; 5] = [
    "search_term_postings",
    "search_prefix_term",
    "search_docrow_messages",
    "search_docblock_dates",
    "search_name_senders",
];

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

/// A block of the senders who go by a name word (hashed), keyed by its first sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NameSender {
    pub account: u64,
    pub name: u64,
    pub sender: i64,
}

/// A document of one account (the first of a row of documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountDoc {
    pub account: u64,
    pub doc: u32,
}

/// A block of documents of one account: documents `block << DOC_BLOCK_SHIFT ..`.
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
    NameSender,
    24,
    "lanbox::search::NameSender",
    key: true,
    |v| {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&v.account.to_be_bytes());
        out[8..16].copy_from_slice(&v.name.to_be_bytes());
        out[16..].copy_from_slice(&flip(v.sender));
        out
    },
    |b| NameSender {
        account: be_u64(&b[..8]),
        name: be_u64(&b[8..16]),
        sender: unflip(&b[16..24]),
    }
);

fixed!(
    AccountDoc,
    12,
    "lanbox::search::AccountDoc",
    key: true,
    |v| {
        let mut out = [0u8; 12];
        out[..8].copy_from_slice(&v.account.to_be_bytes());
        out[8..].copy_from_slice(&v.doc.to_be_bytes());
        out
    },
    |b| AccountDoc {
        account: be_u64(&b[..8]),
        doc: be_u32(&b[8..12]),
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
}
