//! The tokenizer: turns chat text into the terms the index stores (as keyed hashes) and the
//! positions phrase checks and snippets use.
//!
//! - Words come from Unicode word segmentation (UAX #29), so Cyrillic, Greek, Arabic, Hebrew,
//!   Hangul and Latin words, numbers like `12,345.67` and names like `example.org` stay whole.
//! - Each word is folded: compatibility decomposition (NFKD: full-width forms, ligatures),
//!   diacritics dropped after Latin, Greek, Cyrillic, Arabic and Hebrew letters (`café` is
//!   `cafe`, `الأسبوع` is `الاسبوع`), lower case (`ß` is `ss`, final `ς` is `σ`), native digits
//!   as ASCII digits, recomposed (NFC). Marks of other scripts are kept: `が` stays `が`.
//! - Scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar, Yi) become
//!   overlapping character bigrams, `会议记录` is `会议 议记 记录`; a lone character stays a
//!   unigram.
//! - Emoji are words of their own, without variation selectors or skin tones (`👍🏽` is `👍`).
//! - [`extras`] adds hashtags, mentions, URLs, compound-word parts and phone numbers;
//!   [`clitics`] adds Arabic and Hebrew words without their attached article and prefixes.
//!
//! The same code tokenizes stored text and queries, so they always agree. [`scan`] is the
//! allocation-free core (phrase checks run it on every candidate); [`tokenize`] collects it.

pub mod clitics;
pub mod extras;

use super::segment::{is_plain_letter, segments};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Longest term, in bytes; longer words are cut at a character boundary.
pub const MAX_TERM_BYTES: usize = 128;
/// Positions kept per text (a Telegram message has at most 4096 characters; this bounds
/// anything).
pub const MAX_TOKENS: usize = 20_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A segmented word.
    Word,
    /// An emoji (sequence). Phrases of words look through emoji between them.
    Emoji,
    /// A character bigram (or lone character) of a script written without spaces.
    Gram,
    /// A hashtag, mention, URL, compound part or joined number, at its word's position.
    Extra,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The folded term.
    pub term: String,
    /// Byte range in the original text.
    pub start: u32,
    pub end: u32,
    /// Word position: consecutive words (and consecutive bigrams) have consecutive positions.
    pub pos: u32,
    pub kind: Kind,
}

/// Tokens of `text` in order of position (extras follow the word they come from).
pub fn tokenize(text: &str) -> Vec<Token> {
    tokenize_with(text, true)
}

/// Tokens without extras when `extras` is false.
pub fn tokenize_with(text: &str, extras: bool) -> Vec<Token> {
    let mut out = Vec::new();
    let mut pos = 0u32;
    scan(text, |term, start, end, kind| {
        out.push(Token {
            term: term.to_string(),
            start: start as u32,
            end: end as u32,
            pos,
            kind,
        });
        if extras && kind == Kind::Word {
            if let Some(stem) = clitics::clitic_stem(term) {
                out.push(Token {
                    term: stem.to_string(),
                    start: start as u32,
                    end: end as u32,
                    pos,
                    kind: Kind::Extra,
                });
            }
            for p in extras::compound_parts(term) {
                out.push(Token {
                    term: p,
                    start: start as u32,
                    end: end as u32,
                    pos,
                    kind: Kind::Extra,
                });
            }
        }
        pos += 1;
        true
    });
    if extras {
        extras::specials(text, &mut out);
    }
    out
}

/// Calls `f(term, start, end, kind)` for each word, emoji and bigram of `text`, in order, one
/// position each, until `f` returns false. `term` is folded and cut to [`MAX_TERM_BYTES`];
/// `start..end` is its byte range in `text`.
pub fn scan(text: &str, f: impl FnMut(&str, usize, usize, Kind) -> bool) {
    scan_with(text, true, f);
}

fn scan_with(text: &str, fast: bool, mut f: impl FnMut(&str, usize, usize, Kind) -> bool) {
    let mut s = Scanner {
        buf: String::new(),
        run_text: String::new(),
        run: Vec::new(),
        positions: 0,
    };
    let mut go = true;
    segments(text, fast, |off, seg| {
        go = s.segment(off, seg, &mut f);
        go
    });
    if go {
        s.flush_run(&mut f);
    }
}

struct Scanner {
    buf: String,
    /// Folded units of the pending run of a spaceless script, back to back.
    run_text: String,
    /// Per unit: its range in `run_text`, and in the original text.
    run: Vec<(usize, usize, usize, usize)>,
    positions: usize,
}

impl Scanner {
    /// Handles one segment; false when `f` asked to stop or enough positions were seen.
    fn segment(
        &mut self,
        off: usize,
        seg: &str,
        f: &mut impl FnMut(&str, usize, usize, Kind) -> bool,
    ) -> bool {
        if self.positions >= MAX_TOKENS {
            return false;
        }
        let Some(first) = seg.chars().next() else {
            return true;
        };
        if is_gram_char(first) {
            self.push_gram_units(off, seg);
            return true;
        }
        if !self.flush_run(f) {
            return false;
        }
        // A segment starting with ASCII is a word when that is a letter or digit, and space or
        // punctuation otherwise: the Unicode property lookup is only needed past ASCII.
        let emoji = !first.is_ascii() && is_emoji(first);
        let wordy = if first.is_ascii() {
            first.is_ascii_alphanumeric()
        } else {
            !emoji
                && (is_plain_letter(first)
                    || first.is_alphanumeric()
                    || seg.chars().any(char::is_alphanumeric))
        };
        if emoji {
            self.buf.clear();
            self.buf.extend(emoji_chars(seg));
        } else if wordy {
            fold_into(&mut self.buf, seg);
        } else {
            return true;
        }
        if self.buf.is_empty() {
            return true;
        }
        let kind = if emoji { Kind::Emoji } else { Kind::Word };
        self.positions += 1;
        f(cut(&self.buf), off, off + seg.len(), kind)
    }

    /// Splits a segment of a spaceless script into units (a character with the marks that
    /// follow it) and queues them.
    fn push_gram_units(&mut self, off: usize, seg: &str) {
        let mut unit_start = None;
        for (i, c) in seg.char_indices() {
            let attaches = is_combining_mark(c) || matches!(c, '\u{ff9e}' | '\u{ff9f}');
            if let (Some(s), false) = (unit_start, attaches) {
                self.unit(off, &seg[s..i], s);
                unit_start = None;
            }
            unit_start.get_or_insert(i);
        }
        if let Some(s) = unit_start {
            self.unit(off, &seg[s..], s);
        }
    }

    fn unit(&mut self, off: usize, unit: &str, s: usize) {
        let from = self.run_text.len();
        if unit.len() == 3 && unit.chars().all(|c| (0x4e00..=0x9fff).contains(&(c as u32))) {
            // A common Han character: NFKC and lower case leave it as it is.
            self.run_text.push_str(unit);
        } else {
            self.run_text.extend(unit.nfkc().flat_map(char::to_lowercase));
        }
        self.run
            .push((from, self.run_text.len(), off + s, off + s + unit.len()));
    }

    /// Emits the queued run as bigrams (or one unigram). False when `f` asked to stop.
    fn flush_run(&mut self, f: &mut impl FnMut(&str, usize, usize, Kind) -> bool) -> bool {
        let mut go = true;
        if self.run.len() == 1 {
            let (a, b, s, e) = self.run[0];
            self.positions += 1;
            go = f(cut(&self.run_text[a..b]), s, e, Kind::Gram);
        }
        for w in self.run.windows(2) {
            if !go || self.positions >= MAX_TOKENS {
                break;
            }
            self.positions += 1;
            go = f(cut(&self.run_text[w[0].0..w[1].1]), w[0].2, w[1].3, Kind::Gram);
        }
        self.run.clear();
        self.run_text.clear();
        go
    }
}

/// `term` cut to at most [`MAX_TERM_BYTES`], at a character boundary.
fn cut(term: &str) -> &str {
    if term.len() <= MAX_TERM_BYTES {
        return term;
    }
    let mut at = MAX_TERM_BYTES;
    while !term.is_char_boundary(at) {
        at -= 1;
    }
    &term[..at]
}

/// Folds a word: NFKD, diacritics off where they are accents, lower case, NFC.
pub fn fold(s: &str) -> String {
    let mut out = String::new();
    fold_into(&mut out, s);
    out
}

/// [`fold`] into a reused buffer (cleared first).
pub fn fold_into(out: &mut String, s: &str) {
    out.clear();
    if s.is_ascii() {
        out.push_str(s);
        out.make_ascii_lowercase();
        return;
    }
    if fold_quick(out, s) {
        return;
    }
    out.clear();
    let mut tmp = String::with_capacity(s.len());
    let mut strip = false;
    for c in s.nfkd() {
        if is_combining_mark(c) {
            if !strip {
                tmp.push(c);
            }
            continue;
        }
        strip = strips_marks(c);
        match c {
            'ß' | 'ẞ' => tmp.push_str("ss"),
            'ς' => tmp.push('σ'),
            // Arabic tatweel, zero-width (non-)joiners, soft hyphen: never part of the word.
            '\u{0640}' | '\u{200c}' | '\u{200d}' | '\u{00ad}' => {}
            _ => match native_digit(c) {
                Some(d) => tmp.push(d),
                None => tmp.extend(c.to_lowercase()),
            },
        }
    }
    out.extend(tmp.nfc());
}

/// `fold` for words made only of ASCII and the common letters of Cyrillic, Greek, Hebrew and
/// Arabic, whose folding needs no normalisation tables (same result, several times faster);
/// `false` sends anything else through the full path.
fn fold_quick(out: &mut String, s: &str) -> bool {
    for c in s.chars() {
        let shift = |c: char| char::from_u32(c as u32 + 0x20).unwrap_or(c);
        let f = match c as u32 {
            0x00..=0x7f => c.to_ascii_lowercase(),
            // Cyrillic А-я without Й/й (which decompose); Ё/ё fold to е.
            0x0410..=0x0418 | 0x041a..=0x042f => shift(c),
            0x0430..=0x0438 | 0x043a..=0x044f => c,
            0x0401 | 0x0451 => 'е',
            // Greek without tonos; final sigma is sigma.
            0x0391..=0x03a1 | 0x03a3..=0x03a9 => shift(c),
            0x03c2 => 'σ',
            0x03b1..=0x03c1 | 0x03c3..=0x03c9 => c,
            0x05d0..=0x05ea => c,
            // Arabic letters; hamza carriers fold to their base letter, as NFKD and mark
            // removal do.
            0x0622 | 0x0623 | 0x0625 => 'ا',
            0x0624 => 'و',
            0x0626 => 'ي',
            0x0621 | 0x0627..=0x063a | 0x0641..=0x064a => c,
            0x0640 | 0x064b..=0x065f => continue,
            0x0660..=0x0669 | 0x06f0..=0x06f9 => native_digit(c).unwrap_or(c),
            _ => return false,
        };
        out.push(f);
    }
    true
}

/// Scripts whose combining marks are accents or vowel points, safe to fold away: Latin, IPA,
/// Greek, Cyrillic, Armenian, Hebrew, Arabic (and their extended blocks).
fn strips_marks(base: char) -> bool {
    matches!(base as u32,
        0..=0x06ff | 0x0750..=0x077f | 0x08a0..=0x08ff | 0x1c80..=0x1c8f | 0x1e00..=0x1fff
        | 0x2c60..=0x2c7f | 0x2de0..=0x2dff | 0xa640..=0xa69f | 0xa720..=0xa7ff
        | 0xab30..=0xab6f | 0xfb00..=0xfdff | 0xfe70..=0xfeff)
}

/// Arabic-Indic, Persian and Devanagari digits as ASCII (full-width digits NFKD handles).
fn native_digit(c: char) -> Option<char> {
    let base = match c as u32 {
        0x0660..=0x0669 => 0x0660,
        0x06f0..=0x06f9 => 0x06f0,
        0x0966..=0x096f => 0x0966,
        _ => return None,
    };
    char::from_digit(c as u32 - base, 10)
}

/// Letters of scripts written without spaces between words.
pub fn is_gram_char(c: char) -> bool {
    match c as u32 {
        // Han, kana, bopomofo: letters throughout, but for the kana punctuation.
        0x3005..=0x3007
        | 0x3041..=0x309a
        | 0x309d..=0x309f
        | 0x30a1..=0x30fa
        | 0x30fc..=0x30ff
        | 0x3100..=0x312f
        | 0x31f0..=0x31ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xf900..=0xfaff
        | 0xff66..=0xff9d
        | 0x20000..=0x3134f => true,
        // Thai, Lao, Myanmar, Khmer, Yi: ask the Unicode tables (they mix in punctuation).
        0x0e00..=0x0eff | 0x1000..=0x109f | 0x1780..=0x17ff | 0xa000..=0xa48f => c.is_alphanumeric(),
        _ => false,
    }
}

/// Pictographs, dingbats, flags and the few symbols Telegram users type as emoji.
pub fn is_emoji(c: char) -> bool {
    matches!(c as u32,
        0x00a9 | 0x00ae | 0x203c | 0x2049 | 0x2122 | 0x2139 | 0x2194..=0x21ff | 0x2300..=0x23ff
        | 0x24c2 | 0x25a0..=0x25ff | 0x2600..=0x27bf | 0x2934..=0x2935 | 0x2b00..=0x2bff
        | 0x3030 | 0x303d | 0x3297 | 0x3299 | 0x1f000..=0x1faff)
}

/// An emoji sequence without variation selectors and skin-tone modifiers (ZWJ sequences and
/// flags stay whole).
pub fn emoji_chars(seg: &str) -> impl Iterator<Item = char> + '_ {
    seg.chars()
        .filter(|&c| !matches!(c as u32, 0xfe0e | 0xfe0f | 0x1f3fb..=0x1f3ff))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.term).collect()
    }

    #[test]
    fn folds_case_diacritics_and_compatibility_forms() {
        assert_eq!(
            terms("Café DÉJÀ Straße ＡＢＣ ﬁne"),
            ["cafe", "deja", "strasse", "abc", "fine"]
        );
        assert_eq!(terms("Ёлка ΟΔΟΣ"), ["елка", "οδοσ"]);
        // With the stems (`clitics`) as extras.
        assert_eq!(
            terms("الأسبوع שָׁלוֹם ٢٠٢٤"),
            ["الاسبوع", "اسبوع", "שלום", "לום", "2024"]
        );
        assert_eq!(terms("が ｶﾞ"), ["が", "ガ"]);
    }

    #[test]
    fn spaceless_scripts_become_bigrams_with_positions() {
        let t = tokenize("你好明天 ok 好");
        let got: Vec<(&str, u32)> = t.iter().map(|t| (t.term.as_str(), t.pos)).collect();
        assert_eq!(got, [("你好", 0), ("好明", 1), ("明天", 2), ("ok", 3), ("好", 4)]);
        assert_eq!(&"你好明天"[t[1].start as usize..t[1].end as usize], "好明");
        assert_eq!(terms("バージョン"), ["バー", "ージ", "ジョ", "ョン"]);
    }

    /// The fast segmentation path must give the tokenizer exactly what UAX #29 gives it.
    #[test]
    fn fast_segmentation_agrees_with_uax29() {
        const ALPHABET: &[&str] = &[
            "a", "Z", "7", " ", "  ", "\n", "\t", ".", ",", ":", "'", "\"", "_", "-", "(", "#", "@", "é",
            "ß", "ж", "Ё", "й", "α", "ά", "·", "ש", "\u{5b8}", "ب", "أ", "\u{64e}", "\u{640}", "٣", "明",
            "天", "バ", "ー", "が", "ก", "\u{e31}", "👍", "🏽", "\u{200d}", "❤", "\u{fe0f}", "\u{301}",
            "\u{a0}", "…", "«", "１", "ﬁ", "İ",
        ];
        let collect = |text: &str, fast: bool| {
            let mut out = Vec::new();
            scan_with(text, fast, |t, s, e, k| {
                out.push((t.to_string(), s, e, k));
                true
            });
            out
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut text = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = seed % 12;
            let mut r = seed;
            for _ in 0..len {
                r = r
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                text.push_str(ALPHABET[(r >> 33) as usize % ALPHABET.len()]);
            }
            assert_eq!(collect(&text, true), collect(&text, false), "text {text:?}");
        }
    }

    #[test]
    fn long_words_are_cut_and_token_count_is_bounded() {
        let long = "x".repeat(1000);
        assert_eq!(terms(&long)[0].len(), MAX_TERM_BYTES);
        let many = "a ".repeat(MAX_TOKENS * 2);
        assert_eq!(tokenize(&many).len(), MAX_TOKENS);
    }
}
