//! A per-document sketch of which words stand next to each other, so phrase queries skip most
//! candidates without decrypting them.
//!
//! The index keeps no positions (they would cost more than the rest of the postings). A phrase
//! candidate has every word of the phrase but maybe not side by side; checking means
//! decrypting the message. The sketch is a small Bloom filter over the document's adjacent
//! pairs of terms: a phrase whose pairs are not all in it cannot be there. Short texts (up to
//! 32 pairs) get 4 bits of filter per pair and 2 bits set per pair, so about one candidate in
//! seven without the phrase still passes and is checked against the text; longer ones, which
//! are both likelier candidates and dearer to check, get 6 bits per pair and 3 bits set (one
//! in sixteen passes). 4 to 254 bytes. Pairs are made of the terms' keyed hashes, so the
//! sketch tells nothing without the account's key.

/// Largest sketch, in bytes: about 338 pairs (the longest messages saturate a little).
const MAX_BYTES: usize = 254;
/// Sketches longer than this many bytes set three bits per pair, shorter ones two.
const SHORT_BYTES: u8 = 16;

/// Pair filter of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sketch {
    /// Bytes used in `bits`; [`Sketch::UNKNOWN_LEN`] when the document was too long to sketch.
    len: u8,
    bits: [u8; MAX_BYTES],
}

impl Sketch {
    const UNKNOWN_LEN: u8 = 0xff;
    /// Admits every pair (a text too long to sketch, or an index written before sketches).
    pub const UNKNOWN: Sketch = Sketch {
        len: Self::UNKNOWN_LEN,
        bits: [0; MAX_BYTES],
    };

    /// The pair hash of two adjacent terms (by their keyed hashes), order-sensitive.
    pub fn pair(first: u64, second: u64) -> u64 {
        let mut z = first.rotate_left(29) ^ second.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A sketch of these pair hashes (an empty one admits no pair: a one-word text).
    pub fn build(pairs: &[u64]) -> Sketch {
        let mut s = Sketch {
            len: 0,
            bits: [0; MAX_BYTES],
        };
        if pairs.is_empty() {
            return s;
        }
        let n = pairs.len();
        let bytes = if n <= 32 {
            n.div_ceil(2)
        } else {
            (n * 6).div_ceil(8)
        };
        s.len = bytes.clamp(4, MAX_BYTES) as u8;
        for &p in pairs {
            for bit in s.bits_of(p).into_iter().flatten() {
                s.bits[bit / 8] |= 1 << (bit % 8);
            }
        }
        s
    }

    /// The bits a pair sets: two, or three in a long sketch (from one 64-bit hash, re-mixed
    /// for the third).
    fn bits_of(&self, pair: u64) -> [Option<usize>; 3] {
        let m = u64::from(self.len) * 8;
        let third = (self.len > SHORT_BYTES).then(|| (Self::pair(pair, m) % m) as usize);
        [
            Some((pair % m) as usize),
            Some(((pair >> 32) % m) as usize),
            third,
        ]
    }

    /// False only when the pair is certainly not in the document.
    pub fn may_contain(&self, pair: u64) -> bool {
        match self.len {
            Self::UNKNOWN_LEN => true,
            0 => false,
            _ => self
                .bits_of(pair)
                .into_iter()
                .flatten()
                .all(|b| self.bits[b / 8] & (1 << (b % 8)) != 0),
        }
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        if self.len != Self::UNKNOWN_LEN {
            out.extend_from_slice(&self.bits[..usize::from(self.len)]);
        }
    }

    /// Reads a sketch written by [`Sketch::encode`] from the front of `bytes`; returns it and
    /// the bytes it took.
    pub fn decode(bytes: &[u8]) -> Option<(Sketch, usize)> {
        let (&len, rest) = bytes.split_first()?;
        if len == Self::UNKNOWN_LEN {
            return Some((Sketch::UNKNOWN, 1));
        }
        let n = usize::from(len);
        if n > MAX_BYTES || rest.len() < n {
            return None;
        }
        let mut bits = [0u8; MAX_BYTES];
        bits[..n].copy_from_slice(&rest[..n]);
        Some((Sketch { len, bits }, 1 + n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_pairs_always_pass_and_most_absent_ones_fail() {
        let pairs: Vec<u64> = (0..30u64).map(|i| Sketch::pair(i, i + 1)).collect();
        let s = Sketch::build(&pairs);
        assert!(pairs.iter().all(|&p| s.may_contain(p)));
        assert!(
            !s.may_contain(Sketch::pair(1, 0)) || !s.may_contain(Sketch::pair(2, 1)),
            "order matters"
        );
        let false_hits = (100..10_100u64)
            .filter(|&i| s.may_contain(Sketch::pair(i, i * 7)))
            .count();
        assert!(false_hits < 2_500, "{false_hits} of 10000 absent pairs pass");
        let mut buf = Vec::new();
        s.encode(&mut buf);
        assert_eq!(buf.len(), 16);
        assert_eq!(Sketch::decode(&buf), Some((s, 16)));
        assert!(!Sketch::build(&[]).may_contain(1));
        assert!(Sketch::UNKNOWN.may_contain(1));
        assert!(Sketch::decode(&[9, 1]).is_none());
        let long: Vec<u64> = (0..200u64).map(|i| Sketch::pair(i, i + 1)).collect();
        let s = Sketch::build(&long);
        assert!(long.iter().all(|&p| s.may_contain(p)));
        let false_hits = (1000..11_000u64)
            .filter(|&i| s.may_contain(Sketch::pair(i, i * 7)))
            .count();
        assert!(
            false_hits < 1_000,
            "{false_hits} of 10000 absent pairs pass a long sketch"
        );
    }
}
