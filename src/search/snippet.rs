//! Work on a decrypted hit: checking phrases (the index keeps no positions) and cutting a short
//! snippet with the matched words marked.

use super::query::{Atom, Parsed};
use super::terms::PREFIX_MAX;
use super::tokenize::{Kind, is_emoji, scan, tokenize};

/// Characters of message text a snippet shows at most (plus `…` at a cut end).
pub const SNIPPET_CHARS: usize = 160;
/// Characters shown before the first match, at most.
const LEAD_CHARS: usize = 40;

/// A short piece of a hit's text. `marks` are byte ranges of `text` holding matched words,
/// ascending and disjoint; render them however the client needs (HTML-escape the text first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snippet {
    pub text: String,
    pub marks: Vec<(u32, u32)>,
}

impl Snippet {
    /// The text with each mark wrapped in `open` and `close`, e.g. `«` and `»`.
    pub fn marked(&self, open: &str, close: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + self.marks.len() * 4);
        let mut at = 0;
        for &(s, e) in &self.marks {
            out.push_str(&self.text[at..s as usize]);
            out.push_str(open);
            out.push_str(&self.text[s as usize..e as usize]);
            out.push_str(close);
            at = e as usize;
        }
        out.push_str(&self.text[at..]);
        out
    }
}

/// Whether the texts of a message satisfy what the index alone cannot tell: every phrase at
/// consecutive positions within one text (emoji between words are looked through, unless the
/// phrase has an emoji itself), and every prefix longer than the dictionary holds. Runs the
/// allocation-free [`scan`] per text, as this is done for many candidates.
pub fn satisfies(parsed: &Parsed, texts: &[&str]) -> bool {
    parsed.clauses.iter().all(|clause| {
        if clause.adjacent && clause.atoms.len() > 1 {
            return texts.iter().any(|t| has_sequence(t, &clause.atoms));
        }
        clause.atoms.iter().all(|a| match a {
            Atom::Prefix(p) if p.chars().count() > PREFIX_MAX => texts
                .iter()
                .any(|t| tokenize(t).iter().any(|tok| a.matches(&tok.term))),
            _ => true,
        })
    })
}

/// Whether `atoms` match consecutive positions of `text`. `state` bit `j` says the atoms up to
/// `j` matched ending at the previous position (at most [`super::query::MAX_TERMS`] atoms).
fn has_sequence(text: &str, atoms: &[Atom]) -> bool {
    let with_emoji = atoms
        .iter()
        .any(|a| matches!(a, Atom::Term(t) if t.chars().next().is_some_and(is_emoji)));
    let last = 1u32 << (atoms.len() - 1);
    let mut state = 0u32;
    let mut found = false;
    scan(text, |term, _, _, kind| {
        if kind == Kind::Emoji && !with_emoji {
            return true;
        }
        let mut next = 0u32;
        for (j, a) in atoms.iter().enumerate() {
            if (j == 0 || state & (1 << (j - 1)) != 0) && a.matches(term) {
                next |= 1 << j;
            }
        }
        state = next;
        found = state & last != 0;
        !found
    });
    found
}

/// A snippet from the first of `texts` with a match (or the first), around the first match.
pub fn snippet(parsed: &Parsed, texts: &[&str]) -> Snippet {
    // Names are not in the text.
    let atoms: Vec<&Atom> = parsed.atoms().filter(|a| !matches!(a, Atom::Name(_))).collect();
    if atoms.is_empty() {
        return cut(texts.first().copied().unwrap_or(""), &[]);
    }
    for text in texts {
        // Words, bigrams and emoji first, stopping past the window (allocation-free); the
        // whole token list with extras (hashtags, URLs, parts) when some atom was not seen.
        let mut m: Vec<(usize, usize)> = Vec::new();
        let mut seen = 0u32;
        scan(text, |term, start, end, _| {
            if m.first().is_some_and(|f| start > f.0 + SNIPPET_CHARS * 4) {
                return false;
            }
            for (i, a) in atoms.iter().enumerate() {
                if a.matches(term) {
                    seen |= 1 << i;
                    if m.last() != Some(&(start, end)) {
                        m.push((start, end));
                    }
                }
            }
            true
        });
        if seen.count_ones() as usize != atoms.len() {
            m = tokenize(text)
                .iter()
                .filter(|t| atoms.iter().any(|a| a.matches(&t.term)))
                .map(|t| (t.start as usize, t.end as usize))
                .collect();
        }
        if m.is_empty() {
            continue;
        }
        m.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(m.len());
        for (s, e) in m {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        return cut(text, &merged);
    }
    cut(texts.first().copied().unwrap_or(""), &[])
}

/// The window of `text` around the first mark, on character (and where possible word)
/// boundaries, on one line.
fn cut(text: &str, marks: &[(usize, usize)]) -> Snippet {
    let anchor = marks.first().map_or(0, |m| m.0);
    let mut start = anchor;
    for (n, (i, _)) in text[..anchor].char_indices().rev().enumerate() {
        if n >= LEAD_CHARS {
            break;
        }
        start = i;
    }
    if start > 0 {
        // Start at a word boundary inside the lead, if there is one.
        if let Some(ws) = text[start..anchor].find(char::is_whitespace) {
            start += ws + 1;
            while !text.is_char_boundary(start) {
                start += 1;
            }
        }
    }
    let mut end = text.len();
    if let Some((i, _)) = text[start..].char_indices().nth(SNIPPET_CHARS) {
        end = start + i;
        if let Some(ws) = text[start..end].rfind(char::is_whitespace)
            && start + ws > anchor
        {
            end = start + ws;
        }
    }
    let mut out = String::new();
    let lead = if start > 0 { "…" } else { "" };
    out.push_str(lead);
    out.extend(
        text[start..end]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c }),
    );
    let shift = lead.len();
    let marks = marks
        .iter()
        .filter(|&&(s, e)| s >= start && e <= end)
        .map(|&(s, e)| ((s - start + shift) as u32, (e - start + shift) as u32))
        .collect();
    if end < text.len() {
        out.push('…');
    }
    Snippet { text: out, marks }
}

#[cfg(test)]
mod tests {
    use super::super::query::parse;
    use super::*;

    fn snip(q: &str, text: &str) -> (bool, String) {
        let parsed = parse(q).unwrap();
        (
            satisfies(&parsed, &[text]),
            snippet(&parsed, &[text]).marked("«", "»"),
        )
    }

    #[test]
    fn phrases_need_adjacency_and_marks_cover_matches() {
        assert!(!snip("\"send invoice\"", "please send the invoice").0);
        assert!(
            snip("\"send invoice\"", "please send 🙏 invoice").0,
            "emoji are looked through"
        );
        assert!(!snip("\"send 🙏\"", "please send invoice 🙏").0);
        assert!(snip("\"send 🙏\"", "please send 🙏 invoice").0);
        let (ok, s) = snip("\"send invoice\"", "please send invoice now");
        assert!(ok);
        assert_eq!(s, "please «send» «invoice» now");
        assert_eq!(snip("会议记录", "明天的会议记录好").1, "明天的«会议记录»好");
        assert_eq!(snip("caf*", "Un CAFÉ crème").1, "Un «CAFÉ» crème");
    }

    #[test]
    fn long_text_is_cut_around_the_first_match() {
        let text = format!("{} needle {}", "word ".repeat(100), "tail ".repeat(100));
        let (_, s) = snip("needle", &text);
        assert!(s.starts_with('…') && s.ends_with('…'), "{s}");
        assert!(s.contains("«needle»"));
        assert!(s.chars().count() <= SNIPPET_CHARS + 2 + 4);
    }
}
