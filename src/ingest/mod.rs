//! The ingest pipeline: normalise -> dedup -> redact -> seal -> index hook -> commit -> publish.
//!
//! - *normalise* happens in the connector (`channels::telegram::map`), which hands over a
//!   [`Batch`] of [`Change`]s in the model's terms plus its upstream position;
//! - *dedup*, *redact*, *seal* and the *index hook* run in [`apply`], inside the writer's
//!   transaction, so they see exactly the state they change;
//! - *commit* is the writer's group commit (many batches, one transaction, one fsync), with the
//!   upstream position in the same transaction: a crash never loses or doubles a message;
//! - *publish* is the store's broadcast, sent only after the commit succeeded.

pub mod apply;
mod change;
pub mod conversation;
pub mod notes;
pub mod redact;
pub mod release;

use std::sync::Arc;

pub use apply::{IndexHook, NoIndex, Outcome};
pub use change::{Batch, Change};
pub use conversation::{Changed, TeamChange};

use crate::store::records::{LabelRecord, NoteBody};
use crate::store::{ChatKey, Store, StoreError, WriteCtx};

/// A cheap-to-clone handle to the pipeline.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    index: Arc<dyn IndexHook>,
}

impl Pipeline {
    pub fn new(store: Store, index: Arc<dyn IndexHook>) -> Pipeline {
        Pipeline { store, index }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Commits one batch (possibly together with others waiting) and returns what it did.
    pub async fn submit(&self, batch: Batch) -> Result<Outcome, StoreError> {
        let index = self.index.clone();
        let weight = batch.changes.len().max(1);
        self.store
            .write(weight, move |ctx| apply::apply_batch(ctx, index.as_ref(), &batch))
            .await
    }

    /// [`Pipeline::submit`] plus `extra`, a connector's own write (its upstream state in a
    /// table of its own layer), made in the same transaction as the batch: both commit or
    /// neither does.
    pub async fn submit_with<F>(&self, batch: Batch, mut extra: F) -> Result<Outcome, StoreError>
    where
        F: FnMut(&mut WriteCtx<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let index = self.index.clone();
        let weight = batch.changes.len().max(1);
        self.store
            .write(weight, move |ctx| {
                let outcome = apply::apply_batch(ctx, index.as_ref(), &batch)?;
                extra(ctx)?;
                Ok(outcome)
            })
            .await
    }

    /// Blocking form of [`Pipeline::submit`] for threads outside the runtime.
    pub fn submit_blocking(&self, batch: Batch) -> Result<Outcome, StoreError> {
        let index = self.index.clone();
        let weight = batch.changes.len().max(1);
        self.store
            .write_blocking(weight, move |ctx| apply::apply_batch(ctx, index.as_ref(), &batch))
    }

    /// Releases an account: deletes what only it has, re-seals what it shares, destroys its
    /// key ([`release`]). Stop its connector first.
    pub async fn release_account(&self, account: u64) -> Result<release::Released, StoreError> {
        release::release(&self.store, self.index.clone(), account).await
    }

    /// Marks a chat read up to and including the message with store key `up_to`; returns the
    /// chat's new unread count.
    pub async fn mark_read(&self, chat: ChatKey, up_to: i64) -> Result<Option<u32>, StoreError> {
        self.store
            .write(1, move |ctx| apply::mark_read(ctx, chat, up_to))
            .await
    }

    /// Sets `user`'s own read position in a chat (lower than before marks messages unread
    /// again); returns their unread count there.
    pub async fn mark_read_by(
        &self,
        chat: ChatKey,
        user: u64,
        up_to: i64,
    ) -> Result<Option<u32>, StoreError> {
        self.store
            .write(1, move |ctx| apply::mark_read_by(ctx, chat, user, up_to))
            .await
    }

    /// Applies a team change (assign, status, labels) by `user`; `None` when the chat does
    /// not exist.
    pub async fn change_conversation(
        &self,
        chat: ChatKey,
        user: u64,
        change: TeamChange,
    ) -> Result<Option<Changed>, StoreError> {
        self.store
            .write(1, move |ctx| {
                conversation::change(ctx, chat, user, change.clone())
            })
            .await
    }

    /// Records an export of `chat` by `user` in its activity trail.
    pub async fn record_export(
        &self,
        chat: ChatKey,
        user: u64,
        format: &'static str,
        period: (Option<i64>, Option<i64>),
    ) -> Result<bool, StoreError> {
        self.store
            .write(1, move |ctx| {
                conversation::exported(ctx, chat, user, format, period)
            })
            .await
    }

    /// Creates a label; `None` when the box has as many as it keeps.
    pub async fn create_label(&self, name: String, color: String) -> Result<Option<LabelRecord>, StoreError> {
        self.store
            .write(1, move |ctx| {
                conversation::create_label(ctx, name.clone(), color.clone())
            })
            .await
    }

    /// Writes a private note; its ID, or `None` when the chat does not exist.
    pub async fn create_note(
        &self,
        chat: ChatKey,
        by: u64,
        body: NoteBody,
    ) -> Result<Option<u64>, StoreError> {
        self.store
            .write(1, move |ctx| notes::create(ctx, chat, by, &body))
            .await
    }

    /// Deletes a note if `allowed(author)` says the caller may; `None` when there is no such
    /// note, `Some(false)` when the caller may not.
    pub async fn delete_note(
        &self,
        chat: ChatKey,
        id: u64,
        allowed: impl Fn(u64) -> bool + Send + Sync + 'static,
    ) -> Result<Option<bool>, StoreError> {
        self.store
            .write(1, move |ctx| match notes::author(ctx, chat, id)? {
                None => Ok(None),
                Some(by) if !allowed(by) => Ok(Some(false)),
                Some(_) => Ok(Some(notes::delete(ctx, chat, id)?)),
            })
            .await
    }

    /// Deletes a label everywhere; false when it did not exist.
    pub async fn delete_label(&self, id: u64) -> Result<bool, StoreError> {
        self.store
            .write(1, move |ctx| conversation::delete_label(ctx, id))
            .await
    }
}
