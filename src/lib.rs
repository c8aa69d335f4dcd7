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
//! - [`auth`]: users (admin, agent) with argon2id passwords, sessions, API tokens, account
//!   grants, login throttling, WebSocket tickets; turns a credential into a `Caller`.
//! - [`api`]: the REST API under `/api/v1` (axum): auth extractors, grants filtering in one
//!   place (`api::visible`), JSON shapes, one error shape, the OpenAPI document.
//! - [`outbox`]: durable, rate-limited sending through each account's bot (idempotency keys,
//!   daily limits, retries, `message.status` events), plus edits, deletes and typing.
//! - [`attachments`]: media files fetched in the background, encrypted in chunks while they
//!   stream, kept locally and synced to S3, served through signed URLs with Range support.
//! - [`live`]: the WebSocket feed: a fan-out hub with bounded per-client queues, sessions that
//!   resume from a sequence number through the event log.
//! - [`demo`]: `lanbox demo`, the product with a simulated Telegram and scripted customers.
//! - [`web`]: the browser inbox (HTML, CSS, ES modules from `web/`), embedded and served at `/`.
//!
//! Data flow: a connector maps updates into an [`ingest::Batch`], the [`ingest::Pipeline`]
//! hands it to the store's writer, which commits it together with other waiting batches in one
//! transaction, then publishes the resulting events to live subscribers: the [`live`] hub,
//! which hands each one to the WebSocket clients whose grants allow it.

pub mod accounts;
pub mod api;
pub mod app;
pub mod attachments;
pub mod auth;
pub mod channels;
pub mod config;
pub mod dev;
pub mod ingest;
pub mod live;
pub mod model;
pub mod outbox;
pub mod search;
pub mod server;
pub mod store;
pub mod system;
pub mod web;
