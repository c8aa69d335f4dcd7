//! Arbitrary bytes through the Telegram update path: the getUpdates splitter, then the mapper
//! on each element (and on the whole input, as a webhook body would be). Neither may panic, and
//! every update must map to at least one change.
//!
//! Run with `cargo fuzz run update_parser` from the crate root; seed the corpus with
//! `tests/fixtures/telegram/*.json`.

#![no_main]

use lanbox::channels::telegram::{map_raw, split_updates};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(updates) = split_updates(data) {
        for update in updates {
            assert!(!map_raw(1, update.0).changes.is_empty());
        }
    }
    assert!(!map_raw(1, data).changes.is_empty());
});
