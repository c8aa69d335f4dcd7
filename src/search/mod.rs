//! Full-text search: a tokenizer and an inverted index kept in the store's redb file, changed in
//! the same write transaction as the messages it indexes, so an edit or delete is searchable
//! (or gone) the moment it commits.
//!
//! - [`tokenize`]: Unicode words, folding, CJK bigrams, emoji, with [`segment`] (word
//!   segmentation with a fast path for plain words) and [`tokenize::extras`] (hashtags, mentions, URLs,
//!   compound words, phone numbers).
//! - [`terms`]: keyed hashes of terms under the owner account's data key (no plaintext term is
//!   ever stored) and the set of terms a message is indexed under.
//! - [`tables`]: the index tables and their key encodings; [`docrow`]: what is kept per
//!   document; [`sketch`]: per-document filters of adjacent words, so phrases rarely need
//!   decrypting.
//! - [`postings`]: posting blocks (varint deltas or bitmaps), reading them by seeks, and the
//!   leapfrog intersection.
//! - [`index`]: [`SearchIndex`], the ingest pipeline's [`crate::ingest::IndexHook`];
//!   [`pending`]: a transaction's index writes, gathered and made once before it commits;
//!   [`names`]: which senders go by a name word.
//! - [`query`]: [`Query`], [`Filter`], [`Cursor`], and parsing the query text.
//! - [`exec`]: [`search`], run in a read transaction, newest first, within a work budget;
//!   `stream` walks one account's candidates; [`budget`]: what one query may spend and holds.
//! - [`snippet`]: phrase checks and [`Snippet`]s on decrypted hits.
//!
//! Use: build the pipeline with `Pipeline::new(store, Arc::new(SearchIndex::new()))`, then
//! `search(&store.reader()?, &Query::new("invoice march", &allowed_accounts))`; release an
//! account's index with [`SearchIndex::remove_account`]. Measurements: `docs/benchmarks.md`.

pub mod budget;
pub mod docrow;
mod error;
pub mod exec;
pub mod index;
pub mod names;
pub mod pending;
pub mod postings;
pub mod query;
pub mod segment;
pub mod sketch;
pub mod snippet;
mod stream;
pub mod tables;
pub mod terms;
pub mod tokenize;

use redb::{ReadableTableMetadata, TableError, TableHandle};

pub(crate) use budget::Budget;
pub use error::SearchError;
pub use exec::search;
pub use index::SearchIndex;
pub use query::{Cursor, Filter, Query};
pub use snippet::Snippet;

use crate::model::{BodyKind, Direction};
use crate::store::{MsgKey, Reader};

/// One message found.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The store key: `Reader::message(key)` gives the whole message.
    pub key: MsgKey,
    /// The account whose index holds it (its owner).
    pub account: u64,
    pub chat_id: i64,
    /// Telegram's message ID.
    pub message_id: i64,
    pub date: i64,
    pub direction: Direction,
    pub kind: BodyKind,
    pub sender_id: i64,
    pub snippet: Snippet,
}

/// A page of hits, newest first; `next` continues it (`None`: nothing more).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    pub next: Option<Cursor>,
    /// The query's last word was matched as a prefix (`appoint` finding "appointment"), asked
    /// for with `*` or implied; false when it was matched whole.
    pub prefix: bool,
}

/// Size of one index table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    pub name: &'static str,
    pub rows: u64,
    /// Bytes of keys and values.
    pub stored_bytes: u64,
    /// Bytes of pages the table occupies (stored + page metadata + unused space in its pages).
    pub allocated_bytes: u64,
}

/// Sizes of the index tables (for benchmarks and the operator's status page).
pub fn index_size(reader: &Reader) -> Result<Vec<TableSize>, SearchError> {
    let txn = reader.txn();
    let mut out = Vec::new();
    macro_rules! measure {
        ($($def:expr),*) => {$(
            match txn.open_table($def) {
                Ok(t) => {
                    let s = t.stats()?;
                    out.push(TableSize {
                        name: tables::TABLE_NAMES.iter().find(|n| **n == $def.name()).copied().unwrap_or("?"),
                        rows: t.len()?,
                        stored_bytes: s.stored_bytes(),
                        allocated_bytes: s.stored_bytes() + s.metadata_bytes() + s.fragmented_bytes(),
                    });
                }
                Err(TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
        )*};
    }
    measure!(
        tables::TERM_POSTINGS,
        tables::PREFIX_TERM,
        tables::DOCROW_MESSAGES,
        tables::DOCBLOCK_DATES,
        tables::NAME_SENDERS
    );
    Ok(out)
}
