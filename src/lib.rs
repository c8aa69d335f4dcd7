//! lanbox: a private, on-premises unified inbox for Telegram.
//!
//! # Layout
//!
//! - [`model`]: the normalised, channel-neutral message, chat and event types.
//! - [`store`]: the redb database: typed tables, versioned records, sealing under per-account
//!   data keys, the single batching writer, read transactions.
//! - [`ingest`]: the pipeline that turns connector batches into committed, published changes
//!   (dedup, login-code redaction, sealing, index hook, unread counters, event log, position).
//! - [`search`]: tokenizer and the full-text index kept in redb, updated in the message's own
//!   transaction (keyed-hash terms, compact postings, newest-first queries with snippets).
//! - [`channels`]: connectors; `channels::telegram` parses Bot API updates and maps them.
//! - [`config`]: `lanbox.toml` plus `LANBOX_*` variables, validated at the boundary.
//!
//! Data flow: a connector maps updates into an [`ingest::Batch`], the [`ingest::Pipeline`]
//! hands it to the store's writer, which commits it together with other waiting batches in one
//! transaction, then publishes the resulting events to live subscribers.

pub mod accounts;
pub mod app;
pub mod api;
pub mod channels;
pub mod config;
pub mod ingest;
pub mod model;
pub mod search;
pub mod server;
pub mod store;
pub mod system;
