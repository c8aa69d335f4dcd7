//! What the integration tests share. Every test crate declares `mod support;` and uses the
//! parts it needs:
//!
//! - [`server`]: a real lanbox HTTPS server on `127.0.0.1:0`, started through
//!   `lanbox::app::serve` (what `lanbox serve` runs), with pinned clients, accounts, users,
//!   tokens, ingest, and JSON and WebSocket calls;
//! - [`messages`]: model builders (chats, senders, text messages) and a store opener;
//! - [`binary`]: the `lanbox` binary: commands, runs, and `serve` read up to its fingerprint and
//!   address;
//! - [`tls`]: clients pinned to a certificate fingerprint, for servers reached by address;
//! - [`bots`]: Bot API simulator bots added to a store as accounts;
//! - [`updates`]: Bot API update JSON, built or captured (`tests/fixtures/telegram`);
//! - [`logs`]: the log output captured, to check what it never says;
//! - [`canary`]: every file of a directory scanned for plaintext;
//! - [`poll`]: waiting, with a deadline, on state that has no event;
//! - [`rng`]: a seeded generator for randomised tests;
//! - [`s3`]: a real S3 server (SeaweedFS) on loopback ports;
//! - [`users`]: Telegram user accounts signed in against the MTProto simulator.
//!
//! A crate uses only some of it, hence `dead_code` is allowed here.
#![allow(dead_code)]

pub mod binary;
pub mod bots;
pub mod canary;
pub mod logs;
pub mod messages;
pub mod poll;
pub mod rng;
pub mod s3;
pub mod server;
pub mod tls;
pub mod updates;
pub mod users;
