//! Channel connectors: each one turns what a messaging service delivers into the normalised
//! [`crate::model`] types and hands them to the ingest pipeline as [`crate::ingest::Batch`]es.
//!
//! Only Telegram exists today: bots over the Bot API ([`telegram`]) and people's own accounts
//! over MTProto ([`mtproto`]).

pub mod mtproto;
pub mod telegram;
