//! Channel connectors: each one turns what a messaging service delivers into the normalised
//! [`crate::model`] types and hands them to the ingest pipeline as [`crate::ingest::Batch`]es.
//!
//! Only Telegram exists today ([`telegram`]).

pub mod telegram;
