//! Record encoding: one format-version byte, then postcard; and [`Rec`], the redb value type
//! that applies it, so a table declared `TableDefinition<K, Rec<T>>` reads and writes `T` and
//! no call site touches the bytes.
//!
//! The version byte lets a later release read what an earlier one wrote: [`decode`] looks at it
//! and either decodes the current layout or hands the bytes to that record type's migration
//! (each old version gets its own function, see [`Record::migrate`]).
//!
//! Decoding can fail (a damaged record, or one a newer release wrote), and redb's
//! `Value::from_bytes` cannot return an error. So a [`Rec`] reads as a [`Stored`]: the record's
//! bytes, borrowed from the page, decoded when the caller asks with [`Stored::get`], which
//! returns the failure as a [`StoreError`] rather than panicking inside redb. Writing encodes
//! up front, in [`Stored::new`], so an encoding failure is an error at the call site too.

use std::borrow::Cow;
use std::marker::PhantomData;

use redb::{TypeName, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StoreError;

/// A value stored in a table.
pub trait Record: Serialize + DeserializeOwned {
    /// Name used in error messages (never the content).
    const NAME: &'static str;
    /// Current format version.
    const VERSION: u8;

    /// Reads a record written by an older release. No older formats exist yet.
    fn migrate(version: u8, _bytes: &[u8]) -> Result<Self, StoreError> {
        Err(StoreError::Format {
            record: Self::NAME,
            detail: format!("unknown format version {version}"),
        })
    }
}

pub fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![T::VERSION];
    let body = postcard::to_allocvec(value).map_err(|e| StoreError::Format {
        record: T::NAME,
        detail: e.to_string(),
    })?;
    out.extend_from_slice(&body);
    Ok(out)
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
    let (&version, body) = bytes.split_first().ok_or(StoreError::Format {
        record: T::NAME,
        detail: "empty record".into(),
    })?;
    if version != T::VERSION {
        return T::migrate(version, body);
    }
    postcard::from_bytes(body).map_err(|e| StoreError::Format {
        record: T::NAME,
        detail: e.to_string(),
    })
}

/// How a [`Rec`] lays its record out in bytes.
pub trait Layout {
    fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StoreError>;
    fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError>;
}

/// A version byte, then postcard ([`encode`], [`decode`]): every record but one.
#[derive(Debug)]
pub enum Versioned {}

impl Layout for Versioned {
    fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StoreError> {
        encode(value)
    }

    fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
        decode(bytes)
    }
}

/// Postcard with no version byte: the URL signing key's wrapping (`attachments::tables`), which
/// was stored that way before records carried versions. Such a layout can never change.
#[derive(Debug)]
pub enum Bare {}

impl Layout for Bare {
    fn encode<T: Record>(value: &T) -> Result<Vec<u8>, StoreError> {
        postcard::to_allocvec(value).map_err(|e| StoreError::Format {
            record: T::NAME,
            detail: e.to_string(),
        })
    }

    fn decode<T: Record>(bytes: &[u8]) -> Result<T, StoreError> {
        postcard::from_bytes(bytes).map_err(|e| StoreError::Format {
            record: T::NAME,
            detail: e.to_string(),
        })
    }
}

/// The redb value type of a table holding records `T` (never constructed; tables name it).
///
/// Its redb type name is the one `&[u8]` has, and its bytes are what the tables held when they
/// were declared `&[u8]`: redb checks a table's stored type name on open, so a new name would
/// make every existing `lanbox.redb` fail with `TableTypeMismatch`. The record's own version
/// byte, not the table's type name, says what layout the bytes are in.
pub struct Rec<T, L = Versioned>(PhantomData<(fn() -> T, L)>);

impl<T: Record, L> std::fmt::Debug for Rec<T, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rec<{}>", T::NAME)
    }
}

/// A record as a [`Rec`] table holds it: its bytes, read from the table (borrowed) or encoded
/// to be written (owned).
pub struct Stored<'a, T, L = Versioned> {
    bytes: Cow<'a, [u8]>,
    _record: PhantomData<(fn() -> T, L)>,
}

impl<T: Record, L: Layout> Stored<'static, T, L> {
    /// Encodes `value` for writing: `table.insert(key, Stored::new(&record)?)`.
    pub fn new(value: &T) -> Result<Self, StoreError> {
        Ok(Stored {
            bytes: Cow::Owned(L::encode(value)?),
            _record: PhantomData,
        })
    }
}

impl<T: Record> Stored<'_, T, Versioned> {
    /// The version the record was written in (its first byte), without decoding it: an
    /// upgrade walk uses it to skip records already in the current layout.
    pub fn version(&self) -> Option<u8> {
        self.bytes.first().copied()
    }
}

impl<T: Record, L: Layout> Stored<'_, T, L> {
    /// The record, decoded (and migrated, when an older release wrote it). A damaged or unknown
    /// record is a [`StoreError::Format`].
    pub fn get(&self) -> Result<T, StoreError> {
        L::decode(&self.bytes)
    }
}

/// Names the record type and its size, never its content.
impl<T: Record, L> std::fmt::Debug for Stored<'_, T, L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stored<{}>({} bytes)", T::NAME, self.bytes.len())
    }
}

impl<T: Record, L: Layout> Value for Rec<T, L> {
    type SelfType<'a>
        = Stored<'a, T, L>
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a [u8]
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Stored<'a, T, L>
    where
        Self: 'a,
    {
        Stored {
            bytes: Cow::Borrowed(data),
            _record: PhantomData,
        }
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Stored<'b, T, L>) -> &'a [u8]
    where
        Self: 'b,
    {
        &value.bytes
    }

    fn type_name() -> TypeName {
        <&[u8] as Value>::type_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Thing {
        n: u32,
        s: String,
    }

    impl Record for Thing {
        const NAME: &'static str = "thing";
        const VERSION: u8 = 3;
    }

    #[test]
    fn rec_bytes_are_the_codec_bytes_and_the_type_name_is_that_of_bytes() {
        let t = Thing { n: 7, s: "x".into() };
        let stored = Stored::<Thing>::new(&t).unwrap();
        assert_eq!(Rec::<Thing>::as_bytes(&stored), encode(&t).unwrap().as_slice());
        assert_eq!(Rec::<Thing>::from_bytes(&encode(&t).unwrap()).get().unwrap(), t);
        assert_eq!(Rec::<Thing>::type_name(), <&[u8] as Value>::type_name());
        let bare = Stored::<Thing, Bare>::new(&t).unwrap();
        assert_eq!(
            Rec::<Thing, Bare>::as_bytes(&bare),
            postcard::to_allocvec(&t).unwrap()
        );
    }

    /// A damaged or future record is an error from `get`, never a panic inside redb.
    #[test]
    fn damaged_or_future_records_are_errors() {
        for bytes in [&[][..], &[3, 0xff][..], &[9, 1, 1, b'x'][..]] {
            let err = Rec::<Thing>::from_bytes(bytes).get().unwrap_err();
            assert!(matches!(err, StoreError::Format { record: "thing", .. }), "{err}");
        }
    }
}
