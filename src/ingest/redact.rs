//! Login-code redaction for rented accounts.
//!
//! Telegram sends login codes, 2FA recovery codes and session confirmations from its system chat
//! (777000). On an account marked rented, such a message is replaced by a placeholder before it
//! is sealed, indexed, stored or published: the original exists only in the connector's memory.
//! Only the *chat* 777000 counts: user 777000 also appears as the sender of channel posts
//! auto-forwarded into discussion groups, and those are ordinary messages.

use crate::model::{Body, Message, MessageContent, TELEGRAM_SYSTEM_CHAT};

/// True when `message` must be stored as a placeholder on an account with this `rented` flag.
pub fn must_redact(message: &Message, rented: bool) -> bool {
    rented && message.chat.id == TELEGRAM_SYSTEM_CHAT
}

/// Replaces everything the message says with the placeholder body, keeping only who sent it
/// (Telegram itself) and when.
pub fn redact(message: &mut Message) {
    message.content = MessageContent {
        sender: std::mem::replace(&mut message.content.sender, crate::model::Sender::Unknown),
        reply_to: None,
        forward: None,
        media_group: None,
        body: Body::Redacted,
        notes: Vec::new(),
    };
}
