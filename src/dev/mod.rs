//! Development tools that ship in the binary because they are features (`lanbox demo`,
//! `lanbox dev telegram-sim`), kept apart from the real connectors in [`crate::channels`].
//!
//! - [`simulator`]: a Bot API server speaking Telegram's wire format on loopback, with a control
//!   API to inject customers, failures (429, 5xx, timeouts) and media; the tests' Telegram.
//! - [`demo`]: the whole product with the simulator and scripted customers.
//! - [`mtproto`]: an MTProto server for user accounts on loopback (real transport and
//!   encryption under a pre-shared auth key); the tests' Telegram for `channels::mtproto`.

pub mod demo;
pub mod mtproto;
pub mod simulator;
