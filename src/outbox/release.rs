//! Releasing an account from the outbox: every item it sent or was to send goes, with the
//! rows that point at them (idempotency keys, the pending queue, counters, "sent by" links,
//! status snapshots). An item's text is sealed under the account's data key, which the release
//! destroys; deleting the rows as well leaves no sealed copy behind in the live database (the
//! store's scrub then overwrites the freed pages).
//!
//! Idempotent and safe to interrupt: the item IDs are read first, the rows pointing at them
//! go next, the items themselves last, in chunks; running it again finds what is left.

use std::collections::HashSet;

use redb::ReadableTable;

use super::tables::*;
use crate::store::{Store, StoreError};

/// Items deleted per write job.
const CHUNK: usize = 1_000;

/// Deletes everything the outbox holds for `account`; returns how many items went.
pub async fn release_account(store: &Store, account: u64) -> Result<u64, StoreError> {
    // A box that never served (a release from the CLI) may not have the tables yet.
    super::Outbox::ensure_tables(store).await?;
    let ids: Vec<u64> = store
        .read(move |r| {
            let t = r.txn().open_table(ITEM_RECORD)?;
            let mut ids = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                match v.value().get() {
                    Ok(rec) if rec.account == account => ids.push(k.value()),
                    Ok(_) => {}
                    // A damaged item cannot be attributed; it stays (and is reported where read).
                    Err(e) => tracing::warn!(item = k.value(), error = %e, "outbox release: an item could not be read"),
                }
            }
            Ok(ids)
        })
        .await?;
    let set: HashSet<u64> = ids.iter().copied().collect();
    store
        .write(CHUNK, move |ctx| {
            let txn = ctx.txn();
            txn.open_table(MSGKEY_ITEM)?
                .retain(|_, item| !set.contains(&item))?;
            txn.open_table(SEQ_STATUS)?
                .retain(|_, snap| snap.get().map_or(true, |s| !set.contains(&s.item)))?;
            let mut low = [0u8; 40];
            low[..8].copy_from_slice(&account.to_be_bytes());
            let mut high = [0xffu8; 40];
            high[..8].copy_from_slice(&account.to_be_bytes());
            txn.open_table(ACCOUNTKEY_ITEM)?
                .retain_in::<&[u8; 40], _>(&low..=&high, |_, _| false)?;
            txn.open_table(ACCOUNT_PENDING)?
                .retain_in(pending_range(account), |_, _| false)?;
            txn.open_table(ACCOUNT_TODAY)?.remove(account)?;
            txn.open_table(ACCOUNT_FAILED)?.remove(account)?;
            Ok(())
        })
        .await?;
    for chunk in ids.chunks(CHUNK) {
        let chunk = chunk.to_vec();
        store
            .write(chunk.len(), move |ctx| {
                let mut t = ctx.txn().open_table(ITEM_RECORD)?;
                for id in &chunk {
                    t.remove(id)?;
                }
                Ok(())
            })
            .await?;
    }
    Ok(ids.len() as u64)
}
