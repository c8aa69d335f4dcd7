//! Wire errors that are safe to log.
//!
//! serde's messages quote the offending value (`invalid type: string "…", expected i64`), and a
//! value can be message text. Every serde_json error is therefore rebuilt here from its parts:
//! the category, a fixed phrase, the type serde expected (which comes from our own types), the
//! kind of JSON value found (never the value), a path made of declared field names only, and the
//! line and column.

use super::scan::{self, ScanError};

/// Why a Telegram payload could not be read. The `Display` form names fields, positions and
/// types only, never payload content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The getUpdates envelope could not be split (truncated body, not an object, ...).
    #[error("getUpdates response not understood: {reason} at byte {offset}")]
    Envelope { reason: &'static str, offset: usize },
    /// Telegram answered `ok: false`.
    #[error("getUpdates response has ok=false (error_code {error_code:?})")]
    NotOk { error_code: Option<i64> },
    /// One update did not parse.
    #[error("{category} error: {what} at `{path}` (line {line}, column {column})")]
    Json {
        /// `syntax`, `data` or `eof`.
        category: &'static str,
        /// A fixed phrase, or serde's phrase with the found value replaced by its JSON kind.
        what: String,
        /// Where, in declared field names (`message.entities[0].offset`); `*` for other keys.
        path: String,
        line: usize,
        column: usize,
    },
}

impl From<ScanError> for WireError {
    fn from(e: ScanError) -> Self {
        WireError::Envelope {
            reason: e.reason,
            offset: e.offset,
        }
    }
}

impl WireError {
    /// Rebuilds a serde_json error met while parsing `input`.
    pub(super) fn from_json(
        e: &serde_json::Error,
        input: &[u8],
        known: impl Fn(&str) -> Option<&'static str>,
    ) -> Self {
        use serde_json::error::Category;
        let category = match e.classify() {
            Category::Syntax => "syntax",
            Category::Data => "data",
            Category::Eof => "eof",
            Category::Io => "io",
        };
        let offset = byte_offset(input, e.line(), e.column());
        WireError::Json {
            category,
            what: sanitize(&e.to_string()),
            path: scan::path_at(input, offset, known),
            line: e.line(),
            column: e.column(),
        }
    }
}

/// serde_json reports a 1-based line and the count of bytes before the error on that line.
fn byte_offset(input: &[u8], line: usize, column: usize) -> usize {
    let mut start = 0;
    let mut seen = 1;
    if line > 1 {
        for (i, &c) in input.iter().enumerate() {
            if c == b'\n' {
                seen += 1;
                if seen == line {
                    start = i + 1;
                    break;
                }
            }
        }
    }
    start.saturating_add(column).min(input.len())
}

/// Phrases serde_json and serde produce that carry no payload content.
const FIXED_PHRASES: &[&str] = &[
    "EOF while parsing",
    "expected ",
    "invalid escape",
    "invalid number",
    "number out of range",
    "key must be a string",
    "trailing c",
    "recursion limit exceeded",
    "control character",
    "lone leading surrogate",
    "unexpected end of hex escape",
    "invalid unicode code point",
    "missing field `",
    "duplicate field `",
    "invalid length ",
];

/// serde's message without the quoted value. Unknown message shapes become a fixed phrase.
pub(super) fn sanitize(msg: &str) -> String {
    let core = match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = core.strip_prefix(prefix) {
            let (found, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, "?"));
            return format!(
                "{}expected {}, found {}",
                prefix,
                printable(expected),
                value_kind(found)
            );
        }
    }
    if core.starts_with("unknown variant `")
        && let Some((_, expected)) = core.rsplit_once("`, expected ")
    {
        return format!("unknown variant, expected {}", printable(expected));
    }
    if FIXED_PHRASES.iter().any(|p| core.starts_with(p)) {
        return printable(core);
    }
    "invalid data".to_owned()
}

/// The JSON kind of serde's `Unexpected` description, without the value it quotes.
fn value_kind(found: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("string", "string"),
        ("integer", "integer"),
        ("floating point", "float"),
        ("boolean", "boolean"),
        ("null", "null"),
        ("unit", "null"),
        ("map", "object"),
        ("sequence", "array"),
        ("character", "string"),
        ("byte array", "bytes"),
    ];
    KINDS
        .iter()
        .find(|(p, _)| found.starts_with(p))
        .map_or("value", |(_, k)| k)
}

/// Keeps a phrase short and on one line.
fn printable(s: &str) -> String {
    s.chars()
        .take(120)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_replaced_by_kinds() {
        let m = r#"invalid type: string "SECRET, expected x", expected i64 at line 1 column 9"#;
        assert_eq!(sanitize(m), "invalid type: expected i64, found string");
        let m = "invalid value: integer `-5`, expected u32";
        assert_eq!(sanitize(m), "invalid value: expected u32, found integer");
        let m = "unknown variant `SECRET`, expected `a` or `b`";
        assert_eq!(sanitize(m), "unknown variant, expected `a` or `b`");
        assert_eq!(sanitize("missing field `chat`"), "missing field `chat`");
        assert_eq!(sanitize("SECRET"), "invalid data");
    }

    #[test]
    fn offsets_follow_lines() {
        let input = b"ab\ncdef\ngh";
        assert_eq!(byte_offset(input, 1, 1), 1);
        assert_eq!(byte_offset(input, 2, 2), 5);
        assert_eq!(byte_offset(input, 3, 0), 8);
        assert_eq!(byte_offset(input, 9, 99), input.len());
    }
}
