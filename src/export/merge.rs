//! Splices finished krilla documents (volumes of a transcript) into one PDF file as it
//! streams out, so a transcript of any length needs memory for one volume only.
//!
//! Each volume's objects are copied in order with their numbers shifted past the ones already
//! written (references `n g R` rewritten outside strings and stream data, which are copied
//! verbatim). The volume's catalog is dropped and its page tree root becomes a child of the
//! file's own root (object 2, written at the end with the file's catalog, object 1, and
//! document information, object 3). What stays in memory for the whole file is the offset of
//! each object (8 bytes each) and the page tree's list of volume roots.

use super::ExportError;

/// Bytes handed to the sink at a time.
const CHUNK: usize = 64 << 10;

pub struct Merger<'o> {
    sink: &'o mut dyn FnMut(Vec<u8>) -> Result<(), ExportError>,
    buf: Vec<u8>,
    pos: u64,
    /// Offset of each object by number (index 0 unused); `None` for a free number.
    offsets: Vec<Option<u64>>,
    kids: Vec<u32>,
    count: u64,
}

fn bad(what: &str) -> ExportError {
    ExportError::Pdf(format!("unexpected volume layout: {what}"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

fn int_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(hay, key)? + key.len();
    let rest = &hay[at..];
    let start = rest.iter().position(|b| b.is_ascii_digit())?;
    let end = rest[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(rest.len(), |e| start + e);
    std::str::from_utf8(&rest[start..end]).ok()?.parse().ok()
}

impl<'o> Merger<'o> {
    pub fn new(sink: &'o mut dyn FnMut(Vec<u8>) -> Result<(), ExportError>) -> Merger<'o> {
        let mut m = Merger {
            sink,
            buf: Vec::with_capacity(CHUNK),
            pos: 0,
            offsets: vec![None, None, None, None],
            kids: Vec::new(),
            count: 0,
        };
        m.buf.extend_from_slice(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n");
        m
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.pos += self.buf.len() as u64;
        let out = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        (self.sink)(out)
    }

    fn here(&self) -> u64 {
        self.pos + self.buf.len() as u64
    }

    /// Appends one finished krilla document.
    pub fn volume(&mut self, pdf: &[u8]) -> Result<(), ExportError> {
        let sx = rfind(pdf, b"startxref").ok_or_else(|| bad("no startxref"))?;
        let xref_at = int_after(&pdf[sx..], b"startxref").ok_or_else(|| bad("startxref"))? as usize;
        let trailer = &pdf[rfind(pdf, b"trailer").ok_or_else(|| bad("no trailer"))?..];
        let root = int_after(trailer, b"/Root").ok_or_else(|| bad("no root"))? as u32;
        // The classic xref table: "xref\n0 N\n" then N 20-byte entries.
        let table = pdf.get(xref_at..).ok_or_else(|| bad("xref offset"))?;
        if !table.starts_with(b"xref") {
            return Err(bad("not a classic xref table"));
        }
        let mut lines = table.split(|b| *b == b'\n');
        lines.next();
        let head = std::str::from_utf8(lines.next().ok_or_else(|| bad("xref head"))?)
            .map_err(|_| bad("xref head"))?;
        let n: usize = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("xref size"))?;
        let entries_at = xref_at + 5 + head.len() + 1;
        let mut objs: Vec<(u32, usize)> = Vec::new();
        for i in 1..n {
            let e = pdf
                .get(entries_at + i * 20..entries_at + i * 20 + 18)
                .ok_or_else(|| bad("xref entry"))?;
            if e[17] == b'n' {
                let off: usize = std::str::from_utf8(&e[..10])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad("xref offset"))?;
                objs.push((i as u32, off));
            }
        }
        objs.sort_by_key(|o| o.1);
        let catalog = objs
            .iter()
            .find(|o| o.0 == root)
            .map(|o| &pdf[o.1..])
            .ok_or_else(|| bad("catalog"))?;
        let pages_root = int_after(catalog, b"/Pages").ok_or_else(|| bad("pages"))? as u32;
        let base = (self.offsets.len() - 1) as u32;
        let max = objs.iter().map(|o| o.0).max().unwrap_or(0);
        self.offsets.resize((base + max + 1) as usize, None);
        for (k, &(num, off)) in objs.iter().enumerate() {
            let end = objs.get(k + 1).map_or(xref_at, |o| o.1);
            let obj = &pdf[off..end];
            if num == root {
                continue;
            }
            let body_at = find(obj, b"obj").ok_or_else(|| bad("obj"))? + 3;
            let stop = rfind(obj, b"endobj").ok_or_else(|| bad("endobj"))?;
            let new = num + base;
            self.offsets[new as usize] = Some(self.here());
            self.write(format!("{new} 0 obj\n").as_bytes())?;
            let mut body = renumber(&obj[body_at..stop], base);
            if num == pages_root {
                self.count += int_after(&body, b"/Count").unwrap_or(0);
                let open = find(&body, b"<<").ok_or_else(|| bad("pages dict"))? + 2;
                body.splice(open..open, b" /Parent 2 0 R ".iter().copied());
                self.kids.push(new);
            }
            self.write(&body)?;
            self.write(b"endobj\n")?;
        }
        Ok(())
    }

    /// Writes the page tree root, catalog, document information, xref table and trailer.
    pub fn finish(mut self, title: &str) -> Result<(), ExportError> {
        let kids: Vec<String> = self.kids.iter().map(|k| format!("{k} 0 R")).collect();
        let title_hex: String = std::iter::once(0xFEFFu16)
            .chain(title.encode_utf16())
            .map(|u| format!("{u:04X}"))
            .collect();
        let fixed = [
            (1, "<< /Type /Catalog /Pages 2 0 R >>".to_string()),
            (
                2,
                format!(
                    "<< /Type /Pages /Kids [{}] /Count {} >>",
                    kids.join(" "),
                    self.count
                ),
            ),
            (3, format!("<< /Producer (lanbox) /Title <{title_hex}> >>")),
        ];
        for (num, body) in fixed {
            self.offsets[num] = Some(self.here());
            self.write(format!("{num} 0 obj\n{body}\nendobj\n").as_bytes())?;
        }
        let xref = self.here();
        let size = self.offsets.len();
        self.write(format!("xref\n0 {size}\n0000000000 65535 f\r\n").as_bytes())?;
        for i in 1..size {
            let e = match self.offsets[i] {
                Some(o) => format!("{o:010} 00000 n\r\n"),
                None => "0000000000 65535 f\r\n".to_string(),
            };
            self.write(e.as_bytes())?;
        }
        self.write(
            format!("trailer\n<< /Size {size} /Root 1 0 R /Info 3 0 R >>\nstartxref\n{xref}\n%%EOF\n")
                .as_bytes(),
        )?;
        self.flush()
    }
}

/// Copies an object's body with every reference `n g R` shifted by `base`; strings, comments
/// and stream data are copied as they are.
fn renumber(body: &[u8], base: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 16);
    // The last two integer tokens in `out` with only whitespace after them: (start, value).
    let mut ints: Vec<(usize, u64)> = Vec::new();
    let mut i = 0;
    let delim = |b: u8| b.is_ascii_whitespace() || b"()<>[]{}/%".contains(&b);
    while i < body.len() {
        let b = body[i];
        match b {
            b'(' => {
                let mut depth = 0;
                let start = i;
                while i < body.len() {
                    match body[i] {
                        b'\\' => i += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                out.extend_from_slice(&body[start..i.min(body.len())]);
                ints.clear();
            }
            b'<' if body.get(i + 1) == Some(&b'<') => {
                out.extend_from_slice(b"<<");
                i += 2;
                ints.clear();
            }
            b'<' => {
                let end = body[i..]
                    .iter()
                    .position(|c| *c == b'>')
                    .map_or(body.len(), |e| i + e + 1);
                out.extend_from_slice(&body[i..end]);
                i = end;
                ints.clear();
            }
            b'%' => {
                let end = body[i..]
                    .iter()
                    .position(|c| *c == b'\n')
                    .map_or(body.len(), |e| i + e);
                out.extend_from_slice(&body[i..end]);
                i = end;
            }
            c if c.is_ascii_whitespace() => {
                out.push(c);
                i += 1;
            }
            c if delim(c) => {
                out.push(c);
                i += 1;
                ints.clear();
            }
            _ => {
                let end = body[i..]
                    .iter()
                    .position(|c| delim(*c))
                    .map_or(body.len(), |e| i + e);
                let tok = &body[i..end];
                if tok == b"stream" {
                    out.extend_from_slice(&body[i..]);
                    return out;
                }
                if tok == b"R" && ints.len() >= 2 {
                    let (start, n) = ints[ints.len() - 2];
                    let g = ints[ints.len() - 1].1;
                    out.truncate(start);
                    out.extend_from_slice(format!("{} {g} R", n + u64::from(base)).as_bytes());
                    ints.clear();
                } else if !tok.is_empty() && tok.iter().all(u8::is_ascii_digit) {
                    let v = std::str::from_utf8(tok)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0);
                    ints.push((out.len(), v));
                    out.extend_from_slice(tok);
                } else {
                    out.extend_from_slice(tok);
                    ints.clear();
                }
                i = end.max(i + 1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn references_shift_and_strings_do_not() {
        let body = b"<< /Parent 4 0 R /Kids [5 0 R 6 0 R] /T (7 0 R) /M [0 0 595 842] >>\nstream\n9 0 R";
        let tight = b"<</Type/Page/Resources 2 0 R/X<3a 0 R>/Parent 1 0 R/Annots[2 0 R]>>";
        assert_eq!(
            String::from_utf8(renumber(tight, 3)).unwrap(),
            "<</Type/Page/Resources 5 0 R/X<3a 0 R>/Parent 4 0 R/Annots[5 0 R]>>"
        );
        let out = String::from_utf8(renumber(body, 10)).unwrap();
        assert_eq!(
            out,
            "<< /Parent 14 0 R /Kids [15 0 R 16 0 R] /T (7 0 R) /M [0 0 595 842] >>\nstream\n9 0 R"
        );
    }
}
