//! The read model: what a caller may see, and the shapes it sees it in. Used by the REST API,
//! the WebSocket feed and the download routes alike, so the rule and the shapes exist once.
//!
//! - [`visible`]: grants filtering, the one place that decides what a caller sees.
//! - [`dto`]: the JSON shapes of chats, messages and their parts (REST and WebSocket).
//! - [`conversation`]: status, assignee, labels and activity trail of a conversation.
//! - [`notes`]: private notes, their events, and finding them by their words.
//! - [`reports`]: conversations by status, workload, response and resolution times.
//! - [`contact`]: the contact panel beside a conversation.

pub mod contact;
pub mod conversation;
pub mod dto;
pub mod notes;
pub mod reports;
pub mod visible;
