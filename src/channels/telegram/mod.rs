//! Telegram Bot API connector.
//!
//! - [`wire`]: the Bot API's JSON (`Update` and everything inside it), parsed tolerantly, plus a
//!   shallow splitter for whole `getUpdates` responses so one bad element fails alone;
//! - [`map`]: updates to normalised [`crate::ingest::Change`]s. Every update yields at least one
//!   change; a payload that does not parse becomes a placeholder or a counted rejection, with a
//!   reason that names fields and positions but never message text;
//! - [`client`]: the HTTPS Bot API client; [`poller`] and [`pollers`]: long polling, one task
//!   per bot; [`bots`]: adding and managing bot accounts. The Bot API simulator used by
//!   tests and `lanbox demo` lives apart, in `dev` (the top-level module).
//!
//! The usual path for a `getUpdates` body is [`split_updates`] then [`map_raw`] per element.

mod body;
pub mod bots;
pub mod client;
pub mod map;
pub mod poller;
pub mod pollers;
pub mod webhook;
pub mod wire;

pub use map::{Mapped, map_raw, map_update};
pub use wire::{RawUpdate, Update, WireError, parse_update, split_updates};
