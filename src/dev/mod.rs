//! Development tools that ship in the binary because they are features (`lanbox demo`,
//! `lanbox dev telegram-sim`), kept apart from the real connectors in [`crate::channels`].
//!
//! - [`simulator`]: a Bot API server speaking Telegram's wire format on loopback, with a control
//!   API to inject customers, failures (429, 5xx, timeouts) and media; the tests' Telegram.
//! - [`demo`]: the whole product with the simulator and scripted customers.

pub mod demo;
pub mod simulator;
