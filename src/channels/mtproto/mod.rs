//! Telegram user accounts over MTProto (issue 16), with grammers (default features off: its
//! default session storage is SQLite in C; lanbox keeps the session itself).
//!
//! - [`accounts`]: user accounts listed for the command line;
//! - [`app`]: the box's `api_id`/`api_hash` (`[telegram]`) and where logins connect;
//! - [`login`]: phone number -> code -> a new account, its session sealed like a bot token;
//! - [`logout`]: `auth.logOut` on Telegram, then the sealed session erased;
//! - [`session`]: what is sealed (data centres, auth keys, the signed-in user);
//! - [`state`]: the update state (pts, qts, date, seq, channels' pts) in its own table, written
//!   in the same transaction as the messages it delivered; [`channel_access`]: the channels'
//!   access hashes, which a channel's catch-up needs after a restart;
//! - [`connector`]: the live update stream, catch-up first, into the ingest pipeline, with
//!   [`backfill`] beside it (each dialog's recent history, paced, resumable);
//!   [`connectors`]: one connector task per signed-in account, for `serve`;
//! - [`map`]: MTProto updates to normalised changes ([`map_media`]: their media, and the
//!   file references stored for the later download); [`events`]: those without a message
//!   (deletes, read receipts, typing); [`message_chat`]: the chat of each per-account message
//!   ID, which `updateDeleteMessages` does not name;
//! - [`send`]: sending, edits, deletes, typing and read marks through the connector's own
//!   client, for the outbox.
//!
//! The MTProto simulator the tests talk to lives apart, in `dev` (the top-level module).

pub mod accounts;
pub mod app;
pub mod backfill;
pub mod channel_access;
pub mod connector;
pub mod connectors;
pub mod events;
pub mod login;
pub mod logout;
pub mod map;
pub mod map_media;
pub mod message_chat;
pub mod send;
pub mod session;
pub mod state;

pub use app::{Endpoint, TelegramApp, normalise_phone};
pub use connector::{UserConnector, UserStatus};
pub use connectors::UserConnectors;
pub use events::CustomerTyping;
pub use login::{LoginError, LoginSpec, PendingLogin, UserOptions, begin};
pub use logout::logout;
pub use send::{SendError, UserSender};
pub use session::StoredSession;
pub use state::MtState;

/// [`crate::store::records::AccountRecord::channel`] of Telegram user accounts.
pub const CHANNEL: &str = "telegram-user";

/// Log filter directives that every lanbox log filter ends with: grammers logs whole updates
/// and differences (message text included) at `trace` level, so its crates are capped at
/// `info` whatever level the rest of the log runs at.
pub const LOG_DIRECTIVES: &str =
    "grammers_client=info,grammers_mtsender=info,grammers_session=info,grammers_mtproto=info";
