//! Text offset conversion. Telegram counts entity offsets in UTF-16 code units; Rust strings are
//! UTF-8. Conversion happens once, at the channel boundary, and refuses ranges that do not land
//! on character boundaries (a surrogate pair split in half) or run past the end.

/// Converts a UTF-16 `(offset, length)` range into a UTF-8 byte range of `text`.
/// Returns `None` when the range is out of bounds or splits a character.
pub fn utf16_range_to_utf8(text: &str, offset: u64, length: u64) -> Option<(u32, u32)> {
    let end16 = offset.checked_add(length)?;
    let mut pos16: u64 = 0;
    let mut start8 = None;
    let mut end8 = None;
    for (byte, ch) in text.char_indices() {
        if pos16 == offset {
            start8 = Some(byte);
        }
        if pos16 == end16 {
            end8 = Some(byte);
            break;
        }
        if pos16 > end16 {
            return None;
        }
        pos16 += ch.len_utf16() as u64;
    }
    if pos16 == offset && start8.is_none() {
        start8 = Some(text.len());
    }
    if pos16 == end16 && end8.is_none() {
        end8 = Some(text.len());
    }
    let (s, e) = (start8?, end8?);
    if s > e {
        return None;
    }
    Some((u32::try_from(s).ok()?, u32::try_from(e).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii() {
        assert_eq!(utf16_range_to_utf8("hello world", 6, 5), Some((6, 11)));
    }

    #[test]
    fn cyrillic_and_emoji() {
        // "Привет 👋 мир": П..т are 2-byte chars (1 UTF-16 unit each), 👋 is 4 bytes, 2 units.
        let t = "Привет 👋 мир";
        let (s, e) = utf16_range_to_utf8(t, 10, 3).unwrap();
        assert_eq!(&t[s as usize..e as usize], "мир");
        let (s, e) = utf16_range_to_utf8(t, 7, 2).unwrap();
        assert_eq!(&t[s as usize..e as usize], "👋");
    }

    #[test]
    fn split_surrogate_and_out_of_range_are_refused() {
        let t = "a👋b";
        assert_eq!(
            utf16_range_to_utf8(t, 2, 1),
            None,
            "starts inside a surrogate pair"
        );
        assert_eq!(utf16_range_to_utf8(t, 0, 2), None, "ends inside a surrogate pair");
        assert_eq!(utf16_range_to_utf8(t, 0, 5), None, "past the end");
        assert_eq!(utf16_range_to_utf8(t, u64::MAX, 2), None, "overflow");
        assert_eq!(utf16_range_to_utf8(t, 0, 4), Some((0, 6)));
        assert_eq!(utf16_range_to_utf8(t, 4, 0), Some((6, 6)));
    }
}
