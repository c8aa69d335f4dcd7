//! Word segmentation with a fast path. Unicode word segmentation (UAX #29, from
//! `unicode-segmentation`) looks every character up in a large table; most chat text is plain
//! words between spaces, where the answer is known without it.
//!
//! The text is cut at ASCII whitespace, which UAX #29 always breaks around for the segments the
//! tokenizer uses. A piece made of letters and digits of Latin, Greek, Cyrillic, Hebrew and
//! Arabic (with Arabic and Hebrew points), with only ASCII punctuation before or after it, is
//! one word under UAX #29 (letters and digits join, WB5–WB10; punctuation at the edge of a
//! word joins nothing, WB6–WB12), and is yielded as such. Any other piece goes through
//! `unicode-segmentation`, together with the spaces before it (a mark at the start of a piece
//! belongs to the space, WB4). A test checks both paths give the tokenizer the same words.

use unicode_segmentation::UnicodeSegmentation;

/// Calls `f(offset, segment)` for the segments of `text` that can hold words, in order, with
/// a non-word segment (a space) between any two that UAX #29 separates by one, until `f`
/// returns false. With `fast` false it is plain UAX #29.
pub fn segments(text: &str, fast: bool, mut f: impl FnMut(usize, &str) -> bool) {
    if !fast {
        for (off, seg) in text.split_word_bound_indices() {
            if !f(off, seg) {
                return;
            }
        }
        return;
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let space_end = at + bytes[at..].iter().take_while(|b| b.is_ascii_whitespace()).count();
        let end = space_end
            + bytes[space_end..]
                .iter()
                .take_while(|b| !b.is_ascii_whitespace())
                .count();
        let piece = &text[space_end..end];
        match simple_word(piece) {
            Some(word) => {
                if space_end > at && !f(at, &text[at..space_end]) {
                    return;
                }
                if let Some((s, e)) = word
                    && !f(space_end + s, &piece[s..e])
                {
                    return;
                }
            }
            None => {
                // With the spaces before it: a mark or joiner at the start of the piece
                // belongs to the space before it (WB4).
                for (off, seg) in text[at..end].split_word_bound_indices() {
                    if !f(at + off, seg) {
                        return;
                    }
                }
            }
        }
        at = end;
    }
}

/// For a piece that is ASCII punctuation around one plain word: `Some(Some(range of the word))`,
/// or `Some(None)` when it is punctuation only. `None`: ask UAX #29.
fn simple_word(piece: &str) -> Option<Option<(usize, usize)>> {
    let edge = |c: char| c.is_ascii_punctuation() && c != '_';
    let start = piece.find(|c: char| !edge(c)).unwrap_or(piece.len());
    let end = piece
        .rfind(|c: char| !edge(c))
        .map_or(start, |i| i + piece[i..].chars().next().map_or(1, char::len_utf8));
    if start >= end {
        return Some(None);
    }
    let core = &piece[start..end];
    let mut chars = core.chars();
    let first = chars.next()?;
    if !matches!(class(first), Class::Letter) {
        return None;
    }
    let mut hebrew = is_hebrew(first);
    for c in chars {
        if matches!(class(c), Class::Other) {
            return None;
        }
        hebrew |= is_hebrew(c);
    }
    // A Hebrew letter keeps a following apostrophe or quote (WB7a–WB7c).
    if hebrew && piece[end..].starts_with(['\'', '"']) {
        return None;
    }
    Some(Some((start, end)))
}

enum Class {
    Letter,
    Mark,
    Other,
}

/// A letter or digit of the scripts the fast path knows (no table lookup).
pub fn is_plain_letter(c: char) -> bool {
    matches!(class(c), Class::Letter)
}

fn is_hebrew(c: char) -> bool {
    ('\u{05d0}'..='\u{05ea}').contains(&c)
}

/// Letters and digits that UAX #29 joins into one word, and the marks that extend them.
fn class(c: char) -> Class {
    match c as u32 {
        0x30..=0x39 | 0x41..=0x5a | 0x61..=0x7a => Class::Letter,
        0xc0..=0xd6 | 0xd8..=0xf6 | 0xf8..=0x17f => Class::Letter,
        0x386 | 0x388..=0x38a | 0x38c | 0x38e..=0x3a1 | 0x3a3..=0x3ce => Class::Letter,
        0x400..=0x481 | 0x48a..=0x4ff => Class::Letter,
        0x5d0..=0x5ea => Class::Letter,
        0x5b0..=0x5bd | 0x5bf | 0x5c1 | 0x5c2 | 0x5c4 | 0x5c5 | 0x5c7 => Class::Mark,
        0x620..=0x63f | 0x641..=0x64a | 0x66e | 0x66f | 0x671..=0x6d3 | 0x6d5 => Class::Letter,
        0x660..=0x669 | 0x6f0..=0x6f9 => Class::Letter,
        0x64b..=0x65f | 0x670 => Class::Mark,
        _ => Class::Other,
    }
}
