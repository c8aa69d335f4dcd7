//! Record encoding: one format-version byte, then postcard.
//!
//! The version byte lets a later release read what an earlier one wrote: [`decode`] looks at it
//! and either decodes the current layout or hands the bytes to that record type's migration
//! (each old version gets its own function, see [`Record::migrate`]).

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
