//! Keyed term hashes, and the set of terms a message is indexed under.
//!
//! Every term is stored as the first 64 bits of a keyed BLAKE3 hash. The key is derived from
//! the owner account's data key (BLAKE3 `derive_key` with a context string of its own, so the
//! data key itself is never used for two purposes), so the index of one account says nothing
//! about another's, and releasing an account (destroying its data key) leaves hashes nobody can
//! test guesses against. A domain byte keeps text terms, filter terms and dictionary keys apart.
//!
//! 64 bits: with a million distinct terms in one account the chance of any collision is about
//! 3 in 10^8; a collision can only add a candidate, and phrase checks and snippets work on the
//! decrypted text.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use zeroize::{Zeroize, ZeroizeOnDrop};

use super::pending::Mix;
use super::sketch::Sketch;
use super::tokenize::clitics::clitic_stem;
use super::tokenize::{Kind, MAX_TOKENS, Token, extras, scan, tokenize_with};
use crate::model::{Body, BodyKind, MessageContent, Sender};

const CONTEXT: &str = "lanbox 2025-01 search index term key v1";

/// Prefix queries expand through dictionary entries for prefixes of 3 up to this many
/// characters; a longer query prefix uses its first `PREFIX_MAX` characters and is checked
/// against the decrypted text.
pub const PREFIX_MAX: usize = 8;
/// The shortest prefix a query may end with.
pub const PREFIX_MIN: usize = 3;

mod domain {
    pub const TEXT: u8 = 0;
    pub const CHAT: u8 = 1;
    pub const SENDER: u8 = 2;
    pub const KIND: u8 = 3;
    pub const SENDER_NAME: u8 = 4;
    pub const PREFIX: u8 = 16;
    pub const GRAM_CHAR: u8 = 17;
}

/// An account's term-hashing key. Wiped from memory when dropped.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TermKey([u8; 32]);

impl std::fmt::Debug for TermKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TermKey(..)")
    }
}

impl TermKey {
    pub fn derive(data_key: &[u8; 32]) -> TermKey {
        TermKey(blake3::derive_key(CONTEXT, data_key))
    }

    fn hash(&self, domain: u8, bytes: &[u8]) -> u64 {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(&[domain]);
        h.update(bytes);
        let out = h.finalize();
        u64::from_le_bytes(out.as_bytes()[..8].try_into().expect("8 bytes"))
    }

    pub fn text(&self, term: &str) -> u64 {
        self.hash(domain::TEXT, term.as_bytes())
    }

    pub fn chat(&self, chat: i64) -> u64 {
        self.hash(domain::CHAT, &chat.to_be_bytes())
    }

    pub fn sender(&self, sender: i64) -> u64 {
        self.hash(domain::SENDER, &sender.to_be_bytes())
    }

    pub fn kind(&self, kind: BodyKind) -> u64 {
        self.hash(domain::KIND, &[kind.code()])
    }

    /// A word of a sender's name (first and last name, username, a channel's title or a
    /// post's signature).
    pub fn sender_name(&self, word: &str) -> u64 {
        self.hash(domain::SENDER_NAME, word.as_bytes())
    }

    pub fn prefix(&self, prefix: &str) -> u64 {
        self.hash(domain::PREFIX, prefix.as_bytes())
    }

    pub fn gram_char(&self, c: char) -> u64 {
        self.hash(domain::GRAM_CHAR, c.encode_utf8(&mut [0; 4]).as_bytes())
    }

    /// Dictionary keys a new text term is listed under: its prefixes of `PREFIX_MIN..=PREFIX_MAX`
    /// characters for words, each of its characters for bigrams of spaceless scripts, none for
    /// emoji.
    pub fn dictionary_keys(&self, term: &str, kind: Kind) -> Vec<u64> {
        match kind {
            Kind::Gram => {
                let mut out: Vec<u64> = term.chars().map(|c| self.gram_char(c)).collect();
                out.dedup();
                return out;
            }
            Kind::Emoji => return Vec::new(),
            Kind::Word | Kind::Extra => {}
        }
        let mut out = Vec::new();
        for (n, (i, c)) in term.char_indices().enumerate() {
            let len = n + 1;
            if len > PREFIX_MAX {
                break;
            }
            if len >= PREFIX_MIN {
                out.push(self.prefix(&term[..i + c.len_utf8()]));
            }
        }
        out
    }
}

/// The texts of a message that are indexed: body text, caption, file name, audio title and
/// performer, contact name and number, venue title and address, poll, sticker emoji.
pub fn searchable_parts(content: &MessageContent) -> Vec<&str> {
    let mut parts = content.body.searchable_text();
    if let Body::Media(m) = &content.body
        && let Some(e) = &m.emoji
    {
        parts.push(e.as_str());
    }
    parts
}

/// The names a message's sender goes by: a user's first and last name, a chat's title and a
/// post's signature, an anonymous admin's signature (usernames are handles, not names: they
/// are found where the text mentions them).
pub fn sender_names(content: &MessageContent) -> Vec<&str> {
    let mut out = Vec::new();
    match &content.sender {
        Sender::User(u) => {
            out.push(u.first_name.as_str());
            out.extend(u.last_name.as_deref());
        }
        Sender::Chat { title, signature, .. } => {
            out.extend([title, signature].into_iter().flatten().map(String::as_str))
        }
        Sender::AnonymousAdmin { signature, .. } => out.extend(signature.as_deref()),
        Sender::Unknown => {}
    }
    out
}

/// Hashes of the words of the sender's names (folded, with compound parts and stems), sorted
/// and distinct.
pub fn sender_name_terms(key: &TermKey, content: &MessageContent) -> Vec<u64> {
    let mut out: Vec<u64> = sender_names(content)
        .into_iter()
        .flat_map(|n| tokenize_with(n, true))
        .filter(|t| matches!(t.kind, Kind::Word | Kind::Extra))
        .map(|t| key.sender_name(&t.term))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Tokens of every searchable part, one list per part (without extras unless `extras`).
pub fn tokenize_parts(content: &MessageContent, extras: bool) -> Vec<Vec<Token>> {
    searchable_parts(content)
        .into_iter()
        .map(|p| tokenize_with(p, extras))
        .collect()
}

/// One hashed term of a document: text terms carry their text (in memory only) for the
/// dictionary; filter terms do not need it.
pub struct DocTerm {
    pub hash: u64,
    pub text: Option<(String, Kind)>,
    /// Indexed by every version of the index (not only an Arabic or Hebrew stem, which
    /// documents indexed before stems existed lack): finding a document to remove intersects
    /// these only.
    pub core: bool,
}

/// What a document is indexed under: its text terms and the filter terms for its chat, sender
/// and body kind (sorted by hash, distinct), and the sketch of its adjacent words.
pub struct DocTerms {
    pub terms: Vec<DocTerm>,
    pub pairs: Sketch,
}

pub fn doc_terms(
    key: &TermKey,
    content: &MessageContent,
    chat: i64,
    sender: i64,
    kind: BodyKind,
) -> DocTerms {
    // Keyed by the term's hash (already uniform): one String per distinct term, none per
    // occurrence (this runs for every message ingested).
    let mut text: HashMap<u64, (String, Kind, bool), BuildHasherDefault<Mix>> = HashMap::default();
    let mut add = |term: &str, kind: Kind, core: bool| {
        let h = key.text(term);
        text.entry(h)
            .and_modify(|e| e.2 |= core)
            .or_insert_with(|| (term.to_string(), kind, core));
        h
    };
    let mut pairs = Vec::new();
    let mut sketchable = true;
    let mut specials = Vec::new();
    for part in searchable_parts(content) {
        let mut prev: Option<u64> = None;
        let mut positions = 0;
        specials.clear();
        scan(part, |term, start, end, k| {
            let mut hash = add(term, k, true);
            // Numbers written in groups (phone numbers) are joined from these.
            if k == Kind::Word && term.bytes().all(|b| b.is_ascii_digit()) {
                specials.push(Token {
                    term: term.to_string(),
                    start: start as u32,
                    end: end as u32,
                    pos: positions as u32,
                    kind: k,
                });
            }
            if k == Kind::Word {
                // A phrase's words are looked up by their stems (`query::parse`), so the
                // sketch pairs stems too.
                if let Some(stem) = clitic_stem(term) {
                    hash = add(stem, Kind::Word, false);
                }
                for p in extras::compound_parts(term) {
                    add(&p, Kind::Word, true);
                }
            }
            // Phrases are adjacent words and bigrams; emoji between them are looked through
            // (see `snippet::satisfies`).
            if matches!(k, Kind::Word | Kind::Gram) {
                positions += 1;
                if let Some(p) = prev {
                    pairs.push(Sketch::pair(p, hash));
                }
                prev = Some(hash);
            }
            true
        });
        extras::specials(part, &mut specials);
        for t in specials.iter().filter(|t| t.kind == Kind::Extra) {
            add(&t.term, Kind::Word, true);
        }
        sketchable &= positions < MAX_TOKENS;
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut terms: Vec<DocTerm> = text
        .into_iter()
        .map(|(hash, (t, k, core))| DocTerm {
            hash,
            text: Some((t, k)),
            core,
        })
        .collect();
    for hash in [key.chat(chat), key.sender(sender), key.kind(kind)] {
        terms.push(DocTerm {
            hash,
            text: None,
            core: true,
        });
    }
    // Two terms with one hash (a collision) are one posting.
    terms.sort_by_key(|t| (t.hash, !t.core));
    terms.dedup_by_key(|t| t.hash);
    DocTerms {
        terms,
        pairs: if sketchable {
            Sketch::build(&pairs)
        } else {
            Sketch::UNKNOWN
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_depend_on_key_and_domain() {
        let a = TermKey::derive(&[1; 32]);
        let b = TermKey::derive(&[2; 32]);
        assert_ne!(a.text("cafe"), b.text("cafe"));
        assert_eq!(a.text("cafe"), TermKey::derive(&[1; 32]).text("cafe"));
        assert_ne!(a.text("caf"), a.prefix("caf"));
        assert_ne!(a.chat(5), a.sender(5));
    }

    /// `doc_terms` walks the text without building tokens; it must index exactly the terms the
    /// tokenizer gives (with extras).
    #[test]
    fn doc_terms_are_the_tokenizers_terms() {
        use crate::model::Text;
        let k = TermKey::derive(&[5; 32]);
        for text in [
            "Call +1 555-010-0123 re ORD10023 at https://www.example.org/a #Urgent @Bob",
            "الاستشارة والبيت הבית 会议记录 👍🏽 café-bar report_q3 12,345.67",
            "",
        ] {
            let content = MessageContent {
                sender: Sender::Unknown,
                reply_to: None,
                forward: None,
                media_group: None,
                body: Body::Text(Text::plain(text)),
                notes: Vec::new(),
            };
            let got: std::collections::BTreeSet<u64> = doc_terms(&k, &content, 1, 2, BodyKind::Text)
                .terms
                .iter()
                .filter(|t| t.text.is_some())
                .map(|t| t.hash)
                .collect();
            let want: std::collections::BTreeSet<u64> = tokenize_parts(&content, true)
                .into_iter()
                .flatten()
                .map(|t| k.text(&t.term))
                .collect();
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn dictionary_keys_cover_prefixes_and_characters() {
        let k = TermKey::derive(&[3; 32]);
        let keys = k.dictionary_keys("invoices2024", Kind::Word);
        assert_eq!(keys.len(), PREFIX_MAX - PREFIX_MIN + 1);
        assert_eq!(keys[0], k.prefix("inv"));
        assert!(k.dictionary_keys("ab", Kind::Word).is_empty());
        assert_eq!(
            k.dictionary_keys("明天", Kind::Gram),
            [k.gram_char('明'), k.gram_char('天')]
        );
        assert_eq!(
            k.dictionary_keys("café", Kind::Word),
            [k.prefix("caf"), k.prefix("café")]
        );
    }
}
