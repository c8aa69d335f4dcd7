//! lanbox: a private, on-premises unified inbox for Telegram.
//!
//! # Layout
//!
//! From the bottom up; a module uses only modules of layers before its own (`tests/layers.rs` checks
//! this against every `crate::` path in `src/`).
//!
//! Layers, lowest first: model, system, web < store < auth, ingest, canned < search < channels
//! < outbox < attachments < backup < view < export < live < service < api, server < config < app < dev < main
//!
//! - [`model`]: the normalised, channel-neutral message, chat and event types.
//! - [`system`]: the box around the inbox: TLS certificates, sockets passed by systemd, sd_notify,
//!   mDNS, the RAUC mark-good probe.
//! - [`web`]: the browser inbox (HTML, CSS, ES modules from `web/`), embedded and served at `/`.
//! - [`store`]: the redb database: typed tables, versioned records, sealing under per-account
//!   data keys, the single batching writer, read transactions, new accounts and their keys.
//! - [`auth`]: users (admin, agent) with argon2id passwords, sessions, API tokens, account
//!   grants, login throttling, WebSocket tickets, the first-run setup code; turns a credential
//!   into a `Caller`.
//! - [`ingest`]: the pipeline that turns connector batches into committed, published changes
//!   (dedup, login-code redaction, sealing, index hook, unread counters, event log, position).
//! - [`canned`]: canned replies, the team's and each user's own, sealed under a box-level team
//!   key; who sees and manages which.
//! - [`search`]: tokenizer and the full-text index kept in redb, updated in the message's own
//!   transaction through the ingest hook (keyed-hash terms, compact postings, newest-first
//!   queries with snippets).
//! - [`channels`]: the real connectors; `channels::telegram` parses Bot API updates, maps them,
//!   polls or receives webhooks, and manages bot accounts; `channels::mtproto` logs people's own
//!   accounts in over MTProto (grammers), keeps their sessions sealed, and streams their
//!   updates (catch-up first) with the update state committed alongside.
//! - [`outbox`]: durable, rate-limited sending through each account's bot (idempotency keys,
//!   daily limits, retries, `message.status` events), plus edits, deletes and typing.
//! - [`attachments`]: media files fetched in the background, encrypted in chunks while they
//!   stream, kept locally and synced to S3, signed URLs; uploads for sending.
//! - [`backup`]: encrypted backups of the whole box taken while it runs (one read
//!   transaction's records, keys, configuration), verified after writing, kept locally or in
//!   the S3 bucket, and their restore into a new data directory.
//! - [`view`]: the read model: grants filtering in one place and the JSON shapes of chats and
//!   messages, shared by REST, WebSocket and downloads.
//! - [`export`]: conversation export: the typeset PDF transcript (krilla, fonts from the box),
//!   a chat as JSON Lines, an account's archive as a streamed tar.
//! - [`live`]: the event fan-out: a hub with bounded per-client queues, the `lanbox.v1`
//!   protocol, replay from a sequence number, event-log retention.
//! - [`service`]: the running service assembled in one place (the composition root): every
//!   subsystem as one handle, its background work, and the account lifecycle (start, mode
//!   switch, removal, release).
//! - [`api`]: the HTTP face of the service: REST under `/api/v1` (axum), the WebSocket, file
//!   downloads and uploads, auth extractors, one error shape, the OpenAPI document.
//! - [`server`]: the HTTPS accept loop (TLS handshakes with a deadline, graceful drain) and the
//!   plain-HTTP redirect; it serves whatever router it is given, under connection caps and timeouts.
//! - [`config`]: `lanbox.toml` plus `LANBOX_*` variables, validated at the boundary into the
//!   service's options.
//! - [`app`]: `run` and `serve(service, listeners, shutdown)`: what `lanbox serve` runs, and
//!   what the integration tests start.
//! - [`dev`]: development tools that ship as features: the Bot API simulator, the MTProto
//!   simulator (user accounts) and `lanbox demo`.
//!
//! # One incoming update
//!
//! ```text
//! Telegram --getUpdates/webhook--> channels::telegram (parse, map to model::Message)
//!   --> ingest::Pipeline (dedup, redact, seal; search index hook)
//!   --> store writer: one redb transaction per batch (messages, chats, unread, index,
//!       event log, getUpdates offset)
//!   --> store broadcast --> live::Hub --> api::ws (each client whose grants allow it, via view)
//!                       --> attachments follower (fetch media, encrypt, sync to S3)
//! ```
//!
//! # One outgoing reply
//!
//! ```text
//! browser --POST /api/v1/chats/{chat}/messages or WebSocket send--> api (auth, view)
//!   --> outbox (durable item in redb, idempotency key) --> outbox sender per account
//!       (rate limits, retries) --> channels::telegram client --> Telegram
//!   --> sent message committed through the store writer (indexed) --> event log
//!   --> live::Hub --> api::ws clients
//! ```

pub mod api;
pub mod app;
pub mod attachments;
pub mod auth;
pub mod backup;
pub mod canned;
pub mod channels;
pub mod config;
pub mod dev;
pub mod export;
pub mod ingest;
pub mod live;
pub mod model;
pub mod outbox;
pub mod search;
pub mod server;
pub mod service;
pub mod store;
pub mod system;
pub mod view;
pub mod web;
