//! The fixed query set: 200 queries drawn (seeded) from the corpus vocabulary and its chats,
//! each in lanbox syntax and in FTS5 `MATCH` syntax with the same filters.
//!
//! | class    | n  | what |
//! |----------|----|------|
//! | term1    | 40 | one word: Latin, Cyrillic, Arabic, CJK, a file-name word or an emoji |
//! | term2    | 30 | two words of one language |
//! | term3    | 30 | three words of one language |
//! | phrase   | 30 | two words in quotes (adjacent, in order) |
//! | prefix   | 30 | `pre*` (3–5 characters), a third of them after a word |
//! | filtered | 40 | one or two words with a chat, sender, kind, direction, date or account filter |

use lanbox::model::{BodyKind, ChatKind, Direction};
use lanbox::search::Filter;

use super::common::words::*;

pub struct BenchQuery {
    pub class: &'static str,
    pub text: String,
    pub fts: String,
    pub filter: Filter,
}

pub const CLASSES: [&str; 6] = ["term1", "term2", "term3", "phrase", "prefix", "filtered"];

fn quoted(words: &[&str]) -> String {
    format!("\"{}\"", words.join(" ").replace('"', "\"\""))
}

/// A word of a spaced script (skipping one-letter words and punctuation).
fn spaced_word(rng: &mut Rng, script: Script) -> &'static str {
    loop {
        let w = rng.pick(script.words());
        if w.chars().count() >= 2 {
            return w;
        }
    }
}

fn spaced_script(rng: &mut Rng) -> Script {
    loop {
        let s = Script::roll(rng);
        if s.spaced() {
            return s;
        }
    }
}

fn words_query(rng: &mut Rng, n: usize) -> (String, String) {
    let s = spaced_script(rng);
    let ws: Vec<&str> = (0..n).map(|_| spaced_word(rng, s)).collect();
    (
        ws.join(" "),
        ws.iter().map(|w| quoted(&[w])).collect::<Vec<_>>().join(" "),
    )
}

fn cjk_word(rng: &mut Rng) -> &'static str {
    loop {
        let list = if rng.chance(500) { ZH } else { JA };
        let w = rng.pick(list);
        if w.chars().count() >= 2 {
            return w;
        }
    }
}

/// Words that only file names carry (lower case, as both tokenizers see them).
const FILE_WORDS: &[&str] = &[
    "invoice",
    "report_q3",
    "backup",
    "presentation",
    "scan0001",
    "договор",
    "анализы_крови",
];

pub fn queries(g: &Gen, accounts: u64) -> Vec<BenchQuery> {
    let mut rng = Rng::new(7);
    let mut out = Vec::new();
    let mut push = |class, text: String, fts: String, filter: Filter| {
        out.push(BenchQuery {
            class,
            text,
            fts,
            filter,
        })
    };
    for i in 0..40 {
        let (text, fts) = match i % 10 {
            0..6 => words_query(&mut rng, 1),
            6 | 7 => {
                let w = cjk_word(&mut rng);
                (w.to_string(), quoted(&[w]))
            }
            8 => {
                let w = rng.pick(FILE_WORDS);
                (w.to_string(), quoted(&[w]))
            }
            _ => {
                let e = rng.pick(EMOJI);
                (e.to_string(), quoted(&[e]))
            }
        };
        push("term1", text, fts, Filter::default());
    }
    for (class, n) in [("term2", 2), ("term3", 3)] {
        for _ in 0..30 {
            let (text, fts) = words_query(&mut rng, n);
            push(class, text, fts, Filter::default());
        }
    }
    for _ in 0..30 {
        let s = spaced_script(&mut rng);
        let ws = [spaced_word(&mut rng, s), spaced_word(&mut rng, s)];
        push("phrase", quoted(&ws), quoted(&ws), Filter::default());
    }
    for i in 0..30 {
        let s = spaced_script(&mut rng);
        let w = loop {
            let w = spaced_word(&mut rng, s);
            if w.chars().count() >= 4 {
                break w;
            }
        };
        let n = (rng.range(3, 5) as usize).min(w.chars().count() - 1);
        let cut = w.char_indices().nth(n).map_or(w.len(), |(i, _)| i);
        let pre = &w[..cut];
        let (text, fts) = if i % 3 == 0 {
            let first = spaced_word(&mut rng, s);
            (
                format!("{first} {pre}*"),
                format!("{} {}*", quoted(&[first]), quoted(&[pre])),
            )
        } else {
            (format!("{pre}*"), format!("{}*", quoted(&[pre])))
        };
        push("prefix", text, fts, Filter::default());
    }
    let span = g.clock - BASE_DATE;
    for i in 0..40 {
        let (text, fts) = words_query(&mut rng, 1 + (i % 2));
        let a = rng.below(accounts) as usize;
        // The busiest chats of an account come first in its list.
        let busy = &g.chats[g.by_account[a][rng.below(5) as usize] as usize];
        let filter = match i % 8 {
            0 | 1 => Filter {
                chats: vec![busy.chat.id],
                ..Filter::default()
            },
            2 => {
                let sender = if busy.chat.kind == ChatKind::Private {
                    busy.member_base
                } else {
                    busy.member_base + rng.below(busy.members.min(5)) as i64
                };
                Filter {
                    senders: vec![sender],
                    ..Filter::default()
                }
            }
            3 => Filter {
                kinds: vec![BodyKind::Image, BodyKind::File],
                ..Filter::default()
            },
            4 => {
                let from = BASE_DATE + (span as f64 * rng.unit()) as i64;
                let len = (span as f64 * 0.05) as i64;
                Filter {
                    since: Some(from),
                    until: Some(from + len),
                    ..Filter::default()
                }
            }
            5 => Filter {
                direction: Some(Direction::Outgoing),
                ..Filter::default()
            },
            _ => Filter {
                accounts: vec![a as u64 + 1],
                ..Filter::default()
            },
        };
        push("filtered", text, fts, filter);
    }
    // lanbox takes the last word of an unquoted query as a prefix too (as a user types it);
    // FTS5 is asked the same.
    for q in &mut out {
        let implied = lanbox::search::query::parse(&q.text).is_ok_and(|p| p.prefix && p.implied);
        if implied {
            q.fts.push('*');
        }
    }
    out
}

/// The SQL condition and parameters for a filter on the FTS5 table's UNINDEXED columns.
pub fn fts_where(f: &Filter) -> String {
    let list = |v: &[i64]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    let mut w = String::new();
    if !f.accounts.is_empty() {
        let a: Vec<i64> = f.accounts.iter().map(|&x| x as i64).collect();
        w += &format!(" AND account IN ({})", list(&a));
    }
    if !f.chats.is_empty() {
        w += &format!(" AND chat IN ({})", list(&f.chats));
    }
    if !f.senders.is_empty() {
        w += &format!(" AND sender IN ({})", list(&f.senders));
    }
    if let Some(d) = f.direction {
        w += &format!(" AND direction = {}", d as u8);
    }
    if !f.kinds.is_empty() {
        let k: Vec<i64> = f.kinds.iter().map(|k| i64::from(k.code())).collect();
        w += &format!(" AND kind IN ({})", list(&k));
    }
    if let Some(s) = f.since {
        w += &format!(" AND date >= {s}");
    }
    if let Some(u) = f.until {
        w += &format!(" AND date <= {u}");
    }
    w
}
