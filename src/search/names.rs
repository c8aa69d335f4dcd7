//! Who goes by a name: for each word of a sender's names (first and last name, a channel's
//! title, a post's signature), hashed, the senders of the account's messages that go by it, so
//! `from:ann` and a plain `ann` find every sender called Ann through the senders' filter terms.
//!
//! Stored like posting blocks: rows keyed by `(account, name hash, first sender)` holding the
//! other senders of the block as ascending varint deltas, at most [`MAX_BLOCK_BYTES`] a row.
//! A sender joins the lists of its name words when its first message is indexed (its filter
//! term gets its first posting) and leaves them with its last, so a name leads only to senders
//! with messages. A sender renamed later is found by the name it had then (and by the new
//! name once all its messages are gone and it writes again); usernames are not names here.

use std::ops::RangeInclusive;

use redb::{ReadableTable, StorageError};

use super::pending::{Rows, Source};
use super::tables::NameSender;

/// Upper bound of a block value.
pub const MAX_BLOCK_BYTES: usize = 256;

/// The rows of one name's senders that start at or before `upto`.
pub fn name_range(account: u64, name: u64, upto: i64) -> RangeInclusive<NameSender> {
    NameSender {
        account,
        name,
        sender: i64::MIN,
    }..=NameSender {
        account,
        name,
        sender: upto,
    }
}

/// The senders of a block, ascending, starting with `first`.
pub fn decode(first: i64, value: &[u8], out: &mut Vec<i64>) {
    out.push(first);
    let (mut cur, mut acc, mut shift) = (first, 0u64, 0);
    for &b in value {
        acc |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            cur = cur.wrapping_add(acc as i64);
            out.push(cur);
            (acc, shift) = (0, 0);
        } else {
            shift = (shift + 7).min(63);
        }
    }
}

/// Encodes ascending, distinct senders (the first is the key).
pub fn encode(senders: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    for w in senders.windows(2) {
        let mut d = w[1].wrapping_sub(w[0]) as u64;
        while d >= 0x80 {
            out.push((d as u8 & 0x7f) | 0x80);
            d >>= 7;
        }
        out.push(d as u8);
    }
    out
}

/// Adds `sender` to the name's senders.
pub fn add(
    rows: &mut Rows<NameSender, Vec<u8>>,
    src: &impl Source<NameSender, Vec<u8>>,
    account: u64,
    name: u64,
    sender: i64,
) -> Result<(), StorageError> {
    let key = |sender| NameSender {
        account,
        name,
        sender,
    };
    let Some((k, v)) = rows.last_in(src, name_range(account, name, sender))? else {
        rows.put(key(sender), Vec::new());
        return Ok(());
    };
    let mut senders = Vec::new();
    decode(k.sender, v, &mut senders);
    let Err(i) = senders.binary_search(&sender) else {
        return Ok(());
    };
    senders.insert(i, sender);
    let enc = encode(&senders);
    if enc.len() <= MAX_BLOCK_BYTES {
        rows.put(k, enc);
    } else {
        let (lo, hi) = senders.split_at(senders.len() / 2);
        rows.put(k, encode(lo));
        rows.put(key(hi[0]), encode(hi));
    }
    Ok(())
}

/// Removes `sender` from the name's senders.
pub fn remove(
    rows: &mut Rows<NameSender, Vec<u8>>,
    src: &impl Source<NameSender, Vec<u8>>,
    account: u64,
    name: u64,
    sender: i64,
) -> Result<(), StorageError> {
    let Some((k, v)) = rows.last_in(src, name_range(account, name, sender))? else {
        return Ok(());
    };
    let mut senders = Vec::new();
    decode(k.sender, v, &mut senders);
    let Ok(i) = senders.binary_search(&sender) else {
        return Ok(());
    };
    senders.remove(i);
    rows.remove(k);
    if let Some(&first) = senders.first() {
        rows.put(
            NameSender {
                account,
                name,
                sender: first,
            },
            encode(&senders),
        );
    }
    Ok(())
}

/// Every sender that goes by the name (a query), at most `max` (more is an error of the caller's
/// choosing: `None`).
pub fn senders(
    table: &impl ReadableTable<NameSender, &'static [u8]>,
    account: u64,
    name: u64,
    max: usize,
) -> Result<Option<Vec<i64>>, StorageError> {
    let mut out = Vec::new();
    for row in table.range(name_range(account, name, i64::MAX))? {
        let (k, v) = row?;
        decode(k.value().sender, v.value(), &mut out);
        if out.len() > max {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip() {
        let senders = [-1_001_234_567_890, -5, 0, 7, 6_000_000_000];
        let mut out = Vec::new();
        decode(senders[0], &encode(&senders), &mut out);
        assert_eq!(out, senders);
    }
}
