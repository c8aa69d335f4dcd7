//! The normalised, channel-neutral message model.
//!
//! Every connector (Telegram today) maps what it receives into these types; everything after
//! ingestion (store, search, API, live feed, web) only ever sees them. The shapes follow the seed
//! `004` ("how a Telegram message maps to a channel-neutral message"): one [`Message`] with a
//! [`Body`] that says what kind of content it is.
//!
//! Text offsets in [`Entity`] are UTF-8 byte offsets into the Rust string, converted once from
//! Telegram's UTF-16 code units at the boundary (see [`text::utf16_range_to_utf8`]).

mod chat;
mod conversation;
mod event;
mod message;
mod reaction;
pub mod text;

pub use chat::{Chat, ChatKind};
pub use conversation::{Activity, ConversationStatus};
pub use event::{EventKind, EventRecord};
pub use message::{
    Attachment, Body, BodyKind, Direction, Entity, ForwardOrigin, Location, Media, MediaKind, Message,
    MessageContent, PollOption, ReplyTo, Sender, ServiceEvent, Status, Text, UserRef,
};
pub use reaction::{ActorReactions, MAX_ACTORS, Reaction, ReactionTally, Reactions};

/// Telegram's system chat: login codes, 2FA recovery codes, session confirmations.
pub const TELEGRAM_SYSTEM_CHAT: i64 = 777_000;

/// What a redacted message reads as. It is a constant, so it is safe to store and show.
pub const REDACTED_PLACEHOLDER: &str = "[system message hidden on this rented account]";

/// A lanbox account (one Telegram bot today). Numbered by the store, starting at 1.
pub type AccountId = u64;
