//! `multipart/form-data` bodies, as Bot API clients upload files: parts without a file name are
//! parameters, parts with one are files. The body is already read (and bounded by the upload
//! limit), so parsing works on one buffer and files are zero-copy slices of it.

use bytes::Bytes;

/// A file part.
#[derive(Debug, Clone)]
pub(super) struct Upload {
    /// The form field name (`photo`, `document`, ... or the name an `attach://` refers to).
    pub name: String,
    pub file_name: String,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// Text fields (name, value) and file parts.
pub(super) type Parts = (Vec<(String, String)>, Vec<Upload>);

/// Splits a body into its text fields and file parts; `None` if it is not valid multipart.
pub(super) fn parse(content_type: &str, body: &Bytes) -> Option<Parts> {
    let boundary = content_type.split(';').find_map(|p| {
        let p = p.trim();
        p.strip_prefix("boundary=").map(|b| b.trim_matches('"'))
    })?;
    if boundary.is_empty() {
        return None;
    }
    let delim = format!("--{boundary}").into_bytes();
    let next = format!("\r\n--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut files = Vec::new();
    let mut pos = find(body, &delim, 0)? + delim.len();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Some((fields, files));
        }
        // Skip transport padding and the line break after the delimiter.
        let line_end = find(body, b"\r\n", pos)?;
        let head_start = line_end + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let head = std::str::from_utf8(&body[head_start..head_end]).ok()?;
        let content_start = head_end + 4;
        let content_end = find(body, &next, content_start)?;
        let content = body.slice(content_start..content_end);
        pos = content_end + next.len();

        let mut name = None;
        let mut file_name = None;
        let mut part_type = None;
        for line in head.split("\r\n") {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            if key.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_param(value, "name");
                file_name = disposition_param(value, "filename");
            } else if key.trim().eq_ignore_ascii_case("content-type") {
                part_type = Some(value.trim().to_owned());
            }
        }
        let name = name?;
        match file_name {
            Some(file_name) => files.push(Upload {
                name,
                file_name,
                content_type: part_type,
                bytes: content,
            }),
            None => fields.push((name, String::from_utf8_lossy(&content).into_owned())),
        }
    }
}

/// `name="value"` (or unquoted) out of a Content-Disposition value.
fn disposition_param(value: &str, key: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        if !k.trim().eq_ignore_ascii_case(key) {
            return None;
        }
        let v = v.trim();
        let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
        Some(v.replace("\\\"", "\""))
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    let first = *needle.first()?;
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let off = hay[i..hay.len() - needle.len() + 1]
            .iter()
            .position(|b| *b == first)?;
        i += off;
        if &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_files() {
        let body = Bytes::from_static(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n42\r\n--XyZ\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--X\r\n--XyZ--\r\n",
        );
        let (fields, files) = parse("multipart/form-data; boundary=XyZ", &body).unwrap();
        assert_eq!(fields, [("chat_id".to_owned(), "42".to_owned())]);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].name, "photo");
        assert_eq!(files[0].file_name, "a.png");
        assert_eq!(files[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(&files[0].bytes[..], b"\x89PNG\r\n--X");
        assert!(parse("multipart/form-data; boundary=Q", &body).is_none());
    }
}
