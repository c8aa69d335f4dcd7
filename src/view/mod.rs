//! The read model: what a caller may see, and the shapes it sees it in. Used by the REST API,
//! the WebSocket feed and the download routes alike, so the rule and the shapes exist once.
//!
//! - [`visible`]: grants filtering, the one place that decides what a caller sees.
//! - [`dto`]: the JSON shapes of chats, messages and their parts (REST and WebSocket).
//! - [`contact`]: the contact panel beside a conversation.

pub mod contact;
pub mod dto;
pub mod visible;
