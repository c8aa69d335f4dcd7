//! Attached prefixes of Arabic and Hebrew: the article and the one-letter conjunctions and
//! prepositions are written as part of the word (`الاستشارة` is `ال` + `استشارة`, `הבית` is `ה`
//! + `בית`), so a bare word would not find its prefixed forms, nor the converse.
//!
//! [`clitic_stem`] gives the word without them, conservatively: a stem keeps at least three
//! letters, and in Arabic one that had no article in front of it keeps at least four (so that
//! `فكرة` is not cut to `كرة`). A word is indexed under itself and its stem, and a query word
//! is looked up by its stem, so each finds the other. The stem is a suffix of the folded word
//! (no allocation: phrase checks run this on every word of a candidate).

/// Arabic conjunctions `و` `ف`, then prepositions `ب` `ك` `ل`, then the article `ال` (after `ل`
/// written `ل`: `للبيت` is `ل` + `ال` + `بيت`). The longest strip whose stem is long enough wins.
fn arabic(word: &str) -> Option<&str> {
    let conj = word.strip_prefix(['و', 'ف']);
    for (s, stripped) in [(conj, true), (Some(word), false)] {
        let Some(s) = s else { continue };
        if let Some(r) = s.strip_prefix("لل").or_else(|| s.strip_prefix("ال"))
            && r.chars().count() >= 3
        {
            return Some(r);
        }
        if let Some(r) = s.strip_prefix(['ب', 'ك', 'ل']) {
            if let Some(r) = r.strip_prefix("ال")
                && r.chars().count() >= 3
            {
                return Some(r);
            }
            if r.chars().count() >= 4 {
                return Some(r);
            }
        }
        if stripped && s.chars().count() >= 4 {
            return Some(s);
        }
    }
    None
}

/// Hebrew `ו` (and), then one of `ה` (the), `ב` (in), `ל` (to), `מ` (from), `ש` (that), `כ` (as);
/// `ו` followed by `ה`, `ב`, `ל`, `מ`, `ש` is stripped whole.
fn hebrew(word: &str) -> Option<&str> {
    let mut s = word;
    let mut stripped = false;
    if let Some(r) = s.strip_prefix('ו') {
        s = r;
        stripped = true;
    }
    if let Some(r) = s.strip_prefix(['ה', 'ב', 'ל', 'מ', 'ש', 'כ']) {
        s = r;
        stripped = true;
    }
    (stripped && s.chars().count() >= 3).then_some(s)
}

/// `term` (folded) without its attached Arabic or Hebrew prefixes, when it has some and what
/// is left is long enough to be a word; `None` otherwise (every other script).
pub fn clitic_stem(term: &str) -> Option<&str> {
    match term.chars().next()? {
        '\u{0600}'..='\u{06ff}' => arabic(term),
        '\u{05d0}'..='\u{05ea}' => hebrew(term),
        _ => None,
    }
}

/// The term a query word is looked up by: its stem when it has one.
pub fn query_form(term: &str) -> &str {
    clitic_stem(term).unwrap_or(term)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_attached_prefixes_conservatively() {
        assert_eq!(clitic_stem("الاستشارة"), Some("استشارة"));
        assert_eq!(clitic_stem("والاستشارة"), Some("استشارة"));
        assert_eq!(clitic_stem("بالاستشارة"), Some("استشارة"));
        assert_eq!(clitic_stem("للبيت"), Some("بيت"));
        assert_eq!(clitic_stem("وكتاب"), Some("كتاب"));
        assert_eq!(clitic_stem("استشارة"), None);
        assert_eq!(clitic_stem("فكرة"), None, "three letters left without an article");
        assert_eq!(clitic_stem("الله"), None, "two letters left");
        assert_eq!(clitic_stem("הבית"), Some("בית"));
        assert_eq!(clitic_stem("והבית"), Some("בית"));
        assert_eq!(clitic_stem("בית"), None);
        assert_eq!(clitic_stem("appointment"), None);
        assert_eq!(query_form("الاستشارة"), query_form("استشارة"));
    }
}
