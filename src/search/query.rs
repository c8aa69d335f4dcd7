//! What a caller asks ([`Query`], [`Filter`], [`Cursor`]) and how the query text is parsed.
//!
//! Syntax: words separated by spaces, all required. A word that the tokenizer splits into
//! several terms (`café-bar`, `会议记录`, `555-010-0123`) is a phrase of them, except that a
//! hashtag, mention, URL or grouped number is looked up whole. `"quoted words"` must be
//! adjacent.
//!
//! The last word, when it is a plain word of at least three characters and not quoted, is
//! also a prefix (search as you type: `appoint` finds "appointment"); earlier words match
//! whole. A `*` at its end asks for the prefix explicitly (and fails on one too short);
//! quoting it asks for the whole word. [`Parsed::prefix`] says what was done.
//!
//! A word matches a message's text or the name of its sender (`ann` finds what Ann wrote);
//! `from:ann` matches the sender's name only. Arabic and Hebrew words are looked up without
//! their attached article and prefixes (see `tokenize::clitics`).

use std::fmt;
use std::str::FromStr;

use super::SearchError;
use super::terms::{PREFIX_MAX, PREFIX_MIN};
use super::tokenize::clitics::{clitic_stem, query_form};
use super::tokenize::{Kind, Token, tokenize};
use crate::model::{BodyKind, Direction};

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most terms (words, phrase words, prefixes) in one query.
pub const MAX_TERMS: usize = 16;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

/// One search request.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub text: String,
    /// The accounts the caller may see (its grants). Only messages one of them received are
    /// ever returned; an empty list finds nothing.
    pub allowed_accounts: Vec<u64>,
    pub filter: Filter,
    /// Hits per page; 0 means [`DEFAULT_LIMIT`], more than [`MAX_LIMIT`] is cut to it.
    pub limit: u32,
    /// From [`super::SearchPage::next`]: continue after the last hit of that page.
    pub cursor: Option<Cursor>,
}

impl Query {
    pub fn new(text: impl Into<String>, allowed_accounts: &[u64]) -> Query {
        Query {
            text: text.into(),
            allowed_accounts: allowed_accounts.to_vec(),
            ..Query::default()
        }
    }

    pub fn limit(&self) -> usize {
        match self.limit {
            0 => DEFAULT_LIMIT as usize,
            n => n.min(MAX_LIMIT) as usize,
        }
    }
}

/// Restrictions on hits. Empty lists and `None` restrict nothing; a list matches any of its
/// values.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Messages received by one of these accounts (within the allowed ones).
    pub accounts: Vec<u64>,
    /// Telegram chat IDs.
    pub chats: Vec<i64>,
    /// Sender IDs (user ID, or chat ID for posts on behalf of a chat).
    pub senders: Vec<i64>,
    pub direction: Option<Direction>,
    pub kinds: Vec<BodyKind>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, inclusive.
    pub until: Option<i64>,
}

/// Where a page ended: hits are ordered by (date, account, document), newest first, and the
/// next page holds what sorts below this. Opaque to callers as a string of 40 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub(crate) date: i64,
    pub(crate) account: u64,
    pub(crate) doc: u32,
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:016x}{:016x}{:08x}",
            (self.date as u64) ^ (1 << 63),
            self.account,
            self.doc
        )
    }
}

impl FromStr for Cursor {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Cursor, SearchError> {
        if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SearchError::BadCursor);
        }
        let num =
            |r: std::ops::Range<usize>| u64::from_str_radix(&s[r], 16).map_err(|_| SearchError::BadCursor);
        Ok(Cursor {
            date: (num(0..16)? ^ (1 << 63)) as i64,
            account: num(16..32)?,
            doc: num(32..40)? as u32,
        })
    }
}

/// One required piece of a clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    Term(String),
    /// A word prefix (folded), at least [`PREFIX_MIN`] characters.
    Prefix(String),
    /// A lone character of a spaceless script: any bigram containing it matches.
    GramChar(char),
    /// A word of the sender's name (`from:`), folded; never matches message text.
    Name(String),
}

impl Atom {
    /// Whether a term of message text matches (an Arabic or Hebrew term also by its stem).
    pub fn matches(&self, term: &str) -> bool {
        let stem = || clitic_stem(term);
        match self {
            Atom::Term(t) => t == term || stem() == Some(t.as_str()),
            Atom::Prefix(p) => {
                term.starts_with(p.as_str()) || stem().is_some_and(|s| s.starts_with(p.as_str()))
            }
            Atom::GramChar(c) => term.contains(*c),
            Atom::Name(_) => false,
        }
    }
}

/// Atoms that must all match; `adjacent` ones at consecutive positions, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub atoms: Vec<Atom>,
    pub adjacent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub clauses: Vec<Clause>,
    /// The last word is matched as a prefix (asked with `*`, or implied).
    pub prefix: bool,
    /// That prefix was implied, not asked for: where it would expand to too many terms, the
    /// word is matched whole instead of failing.
    pub implied: bool,
}

impl Parsed {
    /// Whether candidates must be checked against their decrypted text (phrases, and prefixes
    /// longer than the dictionary holds).
    pub fn needs_check(&self) -> bool {
        self.clauses.iter().any(|c| {
            (c.adjacent && c.atoms.len() > 1)
                || c.atoms
                    .iter()
                    .any(|a| matches!(a, Atom::Prefix(p) if p.chars().count() > PREFIX_MAX))
        })
    }

    pub fn atoms(&self) -> impl Iterator<Item = &Atom> {
        self.clauses.iter().flat_map(|c| c.atoms.iter())
    }
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '“' | '”' | '«' | '»' | '„')
}

/// Splits the text into (chunk, quoted) pairs.
fn chunks(text: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| !c.is_whitespace()) {
        rest = &rest[start..];
        let first = rest.chars().next().expect("non-empty");
        if is_quote(first) {
            let body = &rest[first.len_utf8()..];
            let end = body.find(is_quote).unwrap_or(body.len());
            out.push((&body[..end], true));
            let close = body[end..].chars().next().map_or(0, char::len_utf8);
            rest = &body[end + close..];
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || is_quote(c))
                .unwrap_or(rest.len());
            out.push((&rest[..end], false));
            rest = &rest[end..];
        }
    }
    out
}

/// Parses query text. Errors are about the shape of the query, never echo it.
pub fn parse(text: &str) -> Result<Parsed, SearchError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(SearchError::QueryTooLong { max: MAX_QUERY_BYTES });
    }
    let chunks = chunks(text);
    let mut clauses = Vec::new();
    let mut terms = 0;
    let (mut prefix_used, mut implied) = (false, false);
    for (i, &(chunk, quoted)) in chunks.iter().enumerate() {
        let mut chunk = chunk;
        let mut prefix = false;
        let last = i + 1 == chunks.len();
        if !quoted && let Some(name) = strip_from(chunk) {
            let atoms: Vec<Atom> = tokenize(name)
                .into_iter()
                .filter(|t| t.kind != Kind::Extra)
                .map(|t| Atom::Name(t.term))
                .collect();
            terms += atoms.len();
            if terms > MAX_TERMS {
                return Err(SearchError::TooManyTerms { max: MAX_TERMS });
            }
            if !atoms.is_empty() {
                clauses.push(Clause {
                    atoms,
                    adjacent: false,
                });
            }
            continue;
        }
        if !quoted {
            if let Some(stripped) = chunk.strip_suffix('*') {
                if i + 1 != chunks.len() {
                    return Err(SearchError::MisplacedWildcard);
                }
                chunk = stripped;
                prefix = true;
            }
            if chunk.contains('*') {
                return Err(SearchError::MisplacedWildcard);
            }
        }
        let tokens = tokenize(chunk);
        let Some(mut clause) = clause(&tokens, quoted) else {
            continue;
        };
        if prefix {
            apply_prefix(&mut clause, &tokens)?;
            prefix_used = matches!(clause.atoms.last(), Some(Atom::Prefix(_)));
        } else if last && !quoted && imply_prefix(&mut clause, &tokens) {
            prefix_used = true;
            implied = true;
        }
        terms += clause.atoms.len();
        if terms > MAX_TERMS {
            return Err(SearchError::TooManyTerms { max: MAX_TERMS });
        }
        clauses.push(clause);
    }
    if clauses.is_empty() {
        return Err(SearchError::EmptyQuery);
    }
    Ok(Parsed {
        clauses,
        prefix: prefix_used,
        implied,
    })
}

/// The name after `from:` (any case), when the chunk is one.
fn strip_from(chunk: &str) -> Option<&str> {
    let head = chunk.get(..5)?;
    head.eq_ignore_ascii_case("from:").then(|| &chunk[5..])
}

/// Makes a lone plain word of at least [`PREFIX_MIN`] characters a prefix; false when the clause
/// is anything else (a phrase, a hashtag, a number, a bigram).
fn imply_prefix(clause: &mut Clause, tokens: &[Token]) -> bool {
    let words: Vec<&Token> = tokens.iter().filter(|t| t.kind != Kind::Extra).collect();
    let [word] = words[..] else { return false };
    let plain = word.kind == Kind::Word && word.term.chars().any(char::is_alphabetic);
    match &clause.atoms[..] {
        [Atom::Term(t)] if plain && t == query_form(&word.term) && t.chars().count() >= PREFIX_MIN => {
            clause.atoms[0] = Atom::Prefix(t.clone());
            true
        }
        _ => false,
    }
}

fn clause(tokens: &[Token], quoted: bool) -> Option<Clause> {
    let words: Vec<&Token> = tokens.iter().filter(|t| t.kind != Kind::Extra).collect();
    let whole = |t: &&Token| {
        t.kind == Kind::Extra
            && ((t.start == 0 && (t.term.starts_with('#') || t.term.starts_with('@')))
                || (words.len() > 1 && t.start <= words[0].start && t.end >= words[words.len() - 1].end))
    };
    if !quoted && let Some(special) = tokens.iter().filter(whole).max_by_key(|t| t.term.len()) {
        return Some(Clause {
            atoms: vec![Atom::Term(special.term.clone())],
            adjacent: false,
        });
    }
    if words.is_empty() {
        return None;
    }
    let atoms: Vec<Atom> = words
        .iter()
        .map(|t| {
            let mut chars = t.term.chars();
            match (t.kind, chars.next(), chars.next()) {
                (Kind::Gram, Some(c), None) => Atom::GramChar(c),
                _ => Atom::Term(query_form(&t.term).to_string()),
            }
        })
        .collect();
    Some(Clause {
        adjacent: atoms.len() > 1,
        atoms,
    })
}

/// Turns the clause's last word into a prefix (a trailing bigram stays as it is: bigrams
/// already match inside longer runs).
fn apply_prefix(clause: &mut Clause, tokens: &[Token]) -> Result<(), SearchError> {
    let last_is_word = tokens
        .iter()
        .rev()
        .find(|t| t.kind != Kind::Extra)
        .is_none_or(|t| t.kind == Kind::Word);
    let Some(Atom::Term(t)) = clause.atoms.last() else {
        return Ok(());
    };
    if !last_is_word && !t.starts_with('#') && !t.starts_with('@') {
        return Ok(());
    }
    if t.chars().count() < PREFIX_MIN {
        return Err(SearchError::PrefixTooShort { min: PREFIX_MIN });
    }
    let p = t.clone();
    *clause.atoms.last_mut().expect("checked") = Atom::Prefix(p);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atoms(q: &str) -> Vec<(Vec<Atom>, bool)> {
        parse(q)
            .unwrap()
            .clauses
            .into_iter()
            .map(|c| (c.atoms, c.adjacent))
            .collect()
    }

    fn term(s: &str) -> Atom {
        Atom::Term(s.into())
    }

    #[test]
    fn words_phrases_and_prefixes() {
        assert_eq!(
            atoms("Café  \"Order\""),
            [(vec![term("cafe")], false), (vec![term("order")], false)]
        );
        let typed = parse("Café Ord").unwrap();
        assert!(typed.prefix && typed.implied);
        assert_eq!(typed.clauses[1].atoms, [Atom::Prefix("ord".into())]);
        assert!(!parse("Café or").unwrap().prefix, "too short");
        assert!(!parse("ord #urgent").unwrap().prefix, "not a plain word");
        assert_eq!(
            atoms("from:Ann inv"),
            [
                (vec![Atom::Name("ann".into())], false),
                (vec![Atom::Prefix("inv".into())], false)
            ]
        );
        assert_eq!(
            atoms("\"please send\" inv*"),
            [
                (vec![term("please"), term("send")], true),
                (vec![Atom::Prefix("inv".into())], false)
            ]
        );
        assert_eq!(
            atoms("会议记录"),
            [(vec![term("会议"), term("议记"), term("记录")], true)]
        );
        assert_eq!(atoms("好"), [(vec![Atom::GramChar('好')], false)]);
        assert_eq!(
            atoms("#Urgent @Bob https://x.org/a"),
            [
                (vec![term("#urgent")], false),
                (vec![term("@bob")], false),
                (vec![term("x.org/a")], false)
            ]
        );
        assert_eq!(atoms("555-010-0123"), [(vec![term("5550100123")], false)]);
        assert!(parse("\"the the\"").unwrap().needs_check());
        assert!(!parse("the inv*").unwrap().needs_check());
        assert!(parse("invoicesx*").unwrap().needs_check());
    }

    #[test]
    fn bad_queries_are_clear_errors() {
        assert!(matches!(parse(""), Err(SearchError::EmptyQuery)));
        assert!(matches!(parse(" \t\n "), Err(SearchError::EmptyQuery)));
        assert!(matches!(parse("!!! ?? ..."), Err(SearchError::EmptyQuery)));
        assert!(matches!(parse("ab*"), Err(SearchError::PrefixTooShort { .. })));
        assert!(matches!(parse("abc* def"), Err(SearchError::MisplacedWildcard)));
        assert!(matches!(parse("a*b"), Err(SearchError::MisplacedWildcard)));
        let thousand = (0..1000).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        assert!(matches!(parse(&thousand), Err(SearchError::QueryTooLong { .. })));
        let many = (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
        assert!(matches!(parse(&many), Err(SearchError::TooManyTerms { .. })));
        assert!(parse("\"unclosed phrase").is_ok());
    }

    #[test]
    fn cursor_round_trips_and_rejects_junk() {
        let c = Cursor {
            date: -5,
            account: 3,
            doc: 77,
        };
        assert_eq!(c.to_string().parse::<Cursor>().unwrap(), c);
        assert!("zz".parse::<Cursor>().is_err());
        assert!("g".repeat(40).parse::<Cursor>().is_err());
    }
}
