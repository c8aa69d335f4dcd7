//! A shallow, non-recursive JSON scanner.
//!
//! It finds where values start and end without building them, so one level of an object or an
//! array can be split into byte slices no matter what those values contain. Brackets are counted,
//! not matched, and scalars are not validated: a malformed element still has an end, and is
//! rejected later by the real parser, on its own. Memory and time are linear in the input and the
//! call stack stays flat whatever the nesting depth (serde_json's recursion limit never comes
//! into play here).

use std::borrow::Cow;

/// Where the scanner gave up, as a byte offset into its input, and why (a fixed phrase).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanError {
    pub reason: &'static str,
    pub offset: usize,
}

fn err<T>(reason: &'static str, offset: usize) -> Result<T, ScanError> {
    Err(ScanError { reason, offset })
}

/// The first position at or after `pos` that is not JSON whitespace.
pub fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(pos) {
        pos += 1;
    }
    pos
}

/// End (exclusive) of the string whose opening quote is at `pos`.
fn string_end(b: &[u8], pos: usize) -> Result<usize, ScanError> {
    let mut i = pos + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Ok(i + 1),
            _ => i += 1,
        }
    }
    err("unterminated string", pos)
}

/// End (exclusive) of the value starting at `pos` (which must not be whitespace).
pub fn value_end(b: &[u8], pos: usize) -> Result<usize, ScanError> {
    match b.get(pos) {
        None => err("value expected, input ended", pos),
        Some(b'"') => string_end(b, pos),
        Some(b'[' | b'{') => {
            let mut depth: usize = 0;
            let mut i = pos;
            while i < b.len() {
                match b[i] {
                    b'"' => {
                        i = string_end(b, i)?;
                        continue;
                    }
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            err("unclosed array or object", pos)
        }
        Some(b']' | b'}' | b',' | b':') => err("value expected", pos),
        Some(_) => {
            let mut i = pos;
            while let Some(&c) = b.get(i) {
                if matches!(c, b',' | b']' | b'}' | b':' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                i += 1;
            }
            Ok(i)
        }
    }
}

/// Decodes an object key (the slice includes its quotes). `None` when it is not a valid string.
fn decode_key(quoted: &[u8]) -> Option<Cow<'_, str>> {
    let inner = &quoted[1..quoted.len() - 1];
    if !inner.contains(&b'\\') {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(quoted).ok().map(Cow::Owned)
}

/// One member of an object: its key (when it decodes) and the bytes of its value.
pub type Member<'a> = (Option<Cow<'a, str>>, &'a [u8]);

/// The members of the object that makes up `b` (surrounding whitespace allowed), one level deep.
pub fn object_members(b: &[u8]) -> Result<Vec<Member<'_>>, ScanError> {
    let mut members = Members::new(b);
    let out = members.by_ref().collect::<Result<Vec<_>, _>>()?;
    finish(b, members.pos, out)
}

/// The value of the first member named `key`, if `b` is an object that has one. Members after
/// the first one that does not scan are not looked at, the ones before it are.
pub fn member<'a>(b: &'a [u8], key: &str) -> Option<&'a [u8]> {
    Members::new(b)
        .map_while(Result::ok)
        .find(|(k, _)| k.as_deref() == Some(key))
        .map(|(_, v)| v)
}

/// Iterates over an object's members; stops after the first error.
struct Members<'a> {
    b: &'a [u8],
    /// Where the next key starts, or, once done, just after the closing `}`.
    pos: usize,
    state: State,
}

#[derive(PartialEq)]
enum State {
    Start,
    Next,
    /// A member was read but what follows it is not `,` or `}`: reported on the next call, so
    /// the member itself is still seen.
    Failed(ScanError),
    Done,
}

impl<'a> Members<'a> {
    fn new(b: &'a [u8]) -> Self {
        Members {
            b,
            pos: 0,
            state: State::Start,
        }
    }

    fn step(&mut self) -> Result<Option<Member<'a>>, ScanError> {
        let b = self.b;
        let mut i = skip_ws(b, self.pos);
        if self.state == State::Start {
            if b.get(i) != Some(&b'{') {
                return err("object expected", i);
            }
            i = skip_ws(b, i + 1);
            if b.get(i) == Some(&b'}') {
                self.pos = i + 1;
                return Ok(None);
            }
        }
        if b.get(i) != Some(&b'"') {
            return err("object key expected", i);
        }
        let key_end = string_end(b, i)?;
        let key = decode_key(&b[i..key_end]);
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return err("`:` expected", i);
        }
        let start = skip_ws(b, i + 1);
        let end = value_end(b, start)?;
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => {
                self.pos = i + 1;
                self.state = State::Next;
            }
            Some(b'}') => {
                self.pos = i + 1;
                self.state = State::Done;
            }
            _ => {
                self.state = State::Failed(ScanError {
                    reason: "`,` or `}` expected",
                    offset: i,
                })
            }
        }
        Ok(Some((key, &b[start..end])))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<Member<'a>, ScanError>;

    fn next(&mut self) -> Option<Self::Item> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Done => return None,
            State::Failed(e) => return Some(Err(e)),
            state => self.state = state,
        }
        match self.step() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => {
                self.state = State::Done;
                None
            }
            Err(e) => {
                self.state = State::Done;
                Some(Err(e))
            }
        }
    }
}

/// The elements of the array that makes up `b` (surrounding whitespace allowed), one level deep.
pub fn array_elements(b: &[u8]) -> Result<Vec<&[u8]>, ScanError> {
    let mut out = Vec::new();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'[') {
        return err("array expected", i);
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b']') {
        return finish(b, i + 1, out);
    }
    loop {
        let end = value_end(b, i)?;
        out.push(&b[i..end]);
        i = skip_ws(b, end);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(b']') => return finish(b, i + 1, out),
            _ => return err("`,` or `]` expected", i),
        }
    }
}

fn finish<T>(b: &[u8], end: usize, out: T) -> Result<T, ScanError> {
    let rest = skip_ws(b, end);
    if rest < b.len() {
        return err("trailing characters", rest);
    }
    Ok(out)
}

enum Frame {
    Object {
        key: Option<&'static str>,
        expect_key: bool,
    },
    Array {
        index: u64,
    },
}

/// Frames deeper than this are counted, not named.
const PATH_DEPTH: usize = 16;

/// The location of byte `offset` in `b` as a path like `message.entities[2].offset`, for error
/// reports. Keys are only named when `known` returns them as a field name lanbox declares
/// (`known` maps a key to the static name): anything else prints as `*`, so a path never carries
/// data from the payload.
pub fn path_at(b: &[u8], offset: usize, known: impl Fn(&str) -> Option<&'static str>) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut hidden: usize = 0;
    let stop = offset.min(b.len());
    let mut i = 0;
    while i < stop {
        match b[i] {
            b'"' => {
                let Ok(end) = string_end(b, i) else { break };
                if hidden == 0
                    && let Some(Frame::Object { key, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    *key = decode_key(&b[i..end]).and_then(|k| known(&k)).or(Some("*"));
                    *expect_key = false;
                }
                i = end;
                continue;
            }
            c @ (b'{' | b'[') => {
                if stack.len() >= PATH_DEPTH {
                    hidden += 1;
                } else if c == b'{' {
                    stack.push(Frame::Object {
                        key: None,
                        expect_key: true,
                    });
                } else {
                    stack.push(Frame::Array { index: 0 });
                }
            }
            b'}' | b']' => {
                if hidden > 0 {
                    hidden -= 1;
                } else {
                    stack.pop();
                }
            }
            b',' if hidden == 0 => match stack.last_mut() {
                Some(Frame::Object { key, expect_key }) => {
                    *key = None;
                    *expect_key = true;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    if hidden > 0 {
        path.push_str(".…");
    }
    if path.is_empty() {
        path.push('$');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_one_level() {
        let body = br#" { "a" : [1, {"b": "x]}\"y"}], "c": tru , "d\u0041": {} } "#;
        let m = object_members(body).unwrap();
        let keys: Vec<_> = m.iter().map(|(k, _)| k.as_deref().unwrap()).collect();
        assert_eq!(keys, ["a", "c", "dA"]);
        assert_eq!(m[1].1, b"tru");
        let elems = array_elements(m[0].1).unwrap();
        assert_eq!(elems.len(), 2);
        assert_eq!(elems[1], br#"{"b": "x]}\"y"}"#);
    }

    #[test]
    fn deep_nesting_is_flat() {
        let mut b = Vec::new();
        b.push(b'[');
        b.extend(std::iter::repeat_n(b'[', 1_000_000));
        b.extend(std::iter::repeat_n(b']', 1_000_000));
        b.extend_from_slice(b",1]");
        assert_eq!(array_elements(&b).unwrap().len(), 2);
    }

    #[test]
    fn errors_have_offsets() {
        assert_eq!(array_elements(b"[1,2").unwrap_err().offset, 4);
        assert_eq!(object_members(br#"{"a":"#).unwrap_err().offset, 5);
        assert_eq!(
            object_members(br#"{"a":"x"#).unwrap_err().reason,
            "unterminated string"
        );
        assert_eq!(
            array_elements(b"[1] x").unwrap_err().reason,
            "trailing characters"
        );
    }

    #[test]
    fn member_reads_up_to_the_damage() {
        let b = br#"{"id": 1, "chat": {"id": 2} "text": "x", "later": 3}"#;
        assert_eq!(member(b, "chat"), Some(br#"{"id": 2}"#.as_slice()));
        assert_eq!(member(b, "later"), None);
        assert!(object_members(b).is_err());
    }

    #[test]
    fn paths_name_known_keys_only() {
        let known = |k: &str| ["message", "entities", "offset"].into_iter().find(|n| *n == k);
        let b = br#"{"message": {"secret": 1, "entities": [{"offset": 5}, {"offset": X"#;
        let at = b.len() - 1;
        assert_eq!(path_at(b, at, known), "message.entities[1].offset");
        let at = b.iter().position(|&c| c == b'1').unwrap();
        assert_eq!(path_at(b, at, known), "message.*");
    }
}
