//! Extra terms, at the position of the word they come from: `#hashtag`, `@mention`, URLs
//! without scheme and `www.` (and their host), the parts of compound words (`ord10023` also
//! gives `ord` and `10023`, `report_q3` gives `report` and `q3`), and the digits of a phone
//! number written in groups (`+1 555-010-0123` also gives `15550100123` and `5550100123`).

use super::{Kind, MAX_TERM_BYTES, MAX_TOKENS, Token, fold};

fn truncate(term: &mut String) {
    if term.len() > MAX_TERM_BYTES {
        let mut cut = MAX_TERM_BYTES;
        while !term.is_char_boundary(cut) {
            cut -= 1;
        }
        term.truncate(cut);
    }
}

/// Parts of a compound word: pieces between non-alphanumeric characters, and letter and digit
/// runs of mixed pieces. Only pieces of two or more characters, or numbers, other than the word.
pub fn compound_parts(term: &str) -> Vec<String> {
    let digits = term.bytes().filter(u8::is_ascii_digit).count();
    if !term.chars().any(is_word_sep) && (digits == 0 || digits == term.len()) {
        return Vec::new();
    }
    let mut out: Vec<String> = Vec::new();
    let mut add = |p: &str| {
        let keep = p.chars().count() >= 2 || p.chars().all(|c| c.is_ascii_digit());
        if !p.is_empty() && keep && p != term && !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    };
    let pieces: Vec<&str> = term.split(is_word_sep).collect();
    for piece in &pieces {
        add(piece);
        let mut start = 0;
        let mut prev_digit = None;
        for (i, c) in piece.char_indices() {
            let d = c.is_ascii_digit();
            if prev_digit.is_some_and(|p| p != d) {
                add(&piece[start..i]);
                start = i;
            }
            prev_digit = Some(d);
        }
        if start > 0 {
            add(&piece[start..]);
        }
    }
    // A number with separators (`555.010.0123`, `12,345.67`) also as its digits.
    if pieces.len() > 1 && pieces.iter().all(|p| p.chars().all(|c| c.is_ascii_digit())) {
        let digits: String = pieces.concat();
        if digits.len() >= 6 {
            add(&digits);
        }
    }
    out
}

/// Characters that UAX #29 keeps inside a word but that separate its parts: `.` `,` `:` `'` `_`
/// and their typographic and full-width forms.
fn is_word_sep(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32,
            0x00b7 | 0x0387 | 0x055f | 0x05f3 | 0x05f4 | 0x060c | 0x060d | 0x066b | 0x066c
            | 0x2018 | 0x2019 | 0x2024 | 0x2027 | 0x203f | 0x2040 | 0x2054 | 0xfe10..=0xfe19
            | 0xfe33 | 0xfe34 | 0xfe4d..=0xfe52 | 0xfe54 | 0xfe55 | 0xff07 | 0xff0c | 0xff0e
            | 0xff1a | 0xff1b | 0xff3f)
}

/// Hashtags, mentions, URLs and grouped phone numbers, found in the original text and placed
/// at the position of the first word they cover.
pub fn specials(text: &str, out: &mut Vec<Token>) {
    let words: Vec<(u32, u32, u32)> = out
        .iter()
        .filter(|t| t.kind != Kind::Extra)
        .map(|t| (t.start, t.end, t.pos))
        .collect();
    let pos_at = |start: usize| {
        let i = words.partition_point(|w| (w.0 as usize) < start);
        words.get(i).map(|w| w.2).unwrap_or(0)
    };
    let mut extra = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    // Only these bytes can start a hashtag, mention or URL: skip to them.
    while let Some(found) = bytes[i..]
        .iter()
        .position(|b| matches!(b, b'#' | b'@' | b'h' | b'H' | b'w' | b'W'))
    {
        i += found;
        let boundary = i == 0
            || !text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let rest = &text[i..];
        let mut advance = 1;
        if boundary {
            if let Some(tag) = rest.strip_prefix('#') {
                let len = tag
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(tag.len());
                if len > 0 {
                    extra.push((format!("#{}", fold(&tag[..len])), i, i + 1 + len));
                    advance = 1 + len;
                }
            } else if let Some(name) = rest.strip_prefix('@') {
                let len = name
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(name.len());
                if len > 0 {
                    extra.push((format!("@{}", name[..len].to_ascii_lowercase()), i, i + 1 + len));
                    advance = 1 + len;
                }
            } else if starts_url(rest) {
                let len = rest
                    .find(|c: char| c.is_whitespace() || "<>\"«»「」".contains(c))
                    .unwrap_or(rest.len());
                let url = rest[..len].trim_end_matches(|c: char| ".,;:!?)]}'".contains(c));
                let norm = url_term(url);
                let host = norm.split(['/', '?', '#', ':']).next().unwrap_or("");
                if !host.is_empty() && host != norm {
                    extra.push((host.to_string(), i, i + url.len()));
                }
                if !norm.is_empty() {
                    extra.push((norm, i, i + url.len()));
                }
                advance = len.max(1);
            }
        }
        i += advance;
        while i < bytes.len() && !text.is_char_boundary(i) {
            i += 1;
        }
    }
    extra.extend(phone_numbers(text, out));
    for (term, s, e) in extra {
        let mut t = Token {
            term,
            start: s as u32,
            end: e as u32,
            pos: pos_at(s),
            kind: Kind::Extra,
        };
        truncate(&mut t.term);
        if out.len() < MAX_TOKENS {
            out.push(t);
        }
    }
}

fn starts_url(s: &str) -> bool {
    let b = s.as_bytes();
    let has = |p: &[u8]| b.len() >= p.len() && b[..p.len()].eq_ignore_ascii_case(p);
    has(b"http://") || has(b"https://") || has(b"www.")
}

/// A URL as a term: lower case, without scheme, `www.` or a trailing slash.
pub fn url_term(url: &str) -> String {
    let lower = url.to_lowercase();
    let s = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower);
    let s = s.strip_prefix("www.").unwrap_or(s);
    s.trim_end_matches('/').to_string()
}

/// Runs of at least two all-digit words separated only by phone punctuation, with six or more
/// digits in all, as joined numbers.
fn phone_numbers(text: &str, tokens: &[Token]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let digits = |t: &Token| t.kind == Kind::Word && t.term.bytes().all(|b| b.is_ascii_digit());
    let mut group: Vec<&Token> = Vec::new();
    let mut close = |group: &mut Vec<&Token>| {
        // Every tail of two or more groups, so the number is found with or without its
        // country or area code.
        for k in 0..group.len().saturating_sub(1) {
            let joined: String = group[k..].iter().map(|t| t.term.as_str()).collect();
            if joined.len() >= 6 {
                out.push((
                    joined,
                    group[k].start as usize,
                    group[group.len() - 1].end as usize,
                ));
            }
        }
        group.clear();
    };
    for t in tokens.iter().filter(|t| t.kind != Kind::Extra) {
        let joins = group.last().is_some_and(|prev| {
            let gap = &text[prev.end as usize..t.start as usize];
            gap.len() <= 3 && gap.chars().all(|c| " -().+/".contains(c))
        });
        if !(joins && digits(t)) {
            close(&mut group);
        }
        if digits(t) {
            group.push(t);
        }
    }
    close(&mut group);
    out
}

#[cfg(test)]
mod tests {
    use super::super::tokenize;

    fn terms(text: &str) -> Vec<String> {
        tokenize(text).into_iter().map(|t| t.term).collect()
    }

    #[test]
    fn emoji_hashtags_mentions_urls_and_numbers() {
        let t = terms("👍🏽 ❤️ #Urgent @John_Doe https://www.Example.org/d/x?y=1. order ORD10023");
        for want in [
            "👍",
            "❤",
            "urgent",
            "#urgent",
            "@john_doe",
            "example.org/d/x?y=1",
            "ord10023",
            "ord",
            "10023",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
        }
        let t = terms("call +1 555-010-0123 or 555.010.0123, total 12,345.67");
        for want in [
            "555",
            "0123",
            "15550100123",
            "5550100123",
            "12,345.67",
            "345",
            "1234567",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} missing from {t:?}");
        }
        assert_eq!(
            terms("report_q3.xlsx"),
            ["report_q3", "report", "q3", "3", "xlsx"]
        );
    }

    #[test]
    fn extras_share_the_position_of_their_word() {
        let t = tokenize("see #tag now");
        let tag = t.iter().find(|t| t.term == "#tag").unwrap();
        let word = t.iter().find(|t| t.term == "tag").unwrap();
        assert_eq!((tag.pos, tag.start, tag.end), (word.pos, 4, 8));
    }
}
