//! Search errors. Callers branch on them (an API maps each to a status and a stable code);
//! no message contains message text or the query's words.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    #[error("the query has no words to search for")]
    EmptyQuery,
    #[error("the query is longer than {max} bytes")]
    QueryTooLong { max: usize },
    #[error("the query has more than {max} terms")]
    TooManyTerms { max: usize },
    #[error("a prefix search needs at least {min} characters before the `*`")]
    PrefixTooShort { min: usize },
    #[error("`*` is only allowed at the end of the last word")]
    MisplacedWildcard,
    #[error("the prefix matches more than {max} different words; type more of it")]
    PrefixTooBroad { max: usize },
    #[error("the query needs too much work; add words or filters")]
    TooExpensive,
    #[error("the cursor is not one this search returned")]
    BadCursor,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for SearchError {
            fn from(e: $t) -> Self {
                SearchError::Store(StoreError::from(e))
            }
        }
    )*};
}

from_redb!(redb::StorageError, redb::TableError);
