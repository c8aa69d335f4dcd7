//! What connectors hand to the pipeline: normalised changes, already mapped from the channel's
//! wire format. A connector submits them as one [`Batch`] together with its upstream position
//! ("delivered up to"), which commits in the same transaction as the changes.

use crate::model::{AccountId, Chat, Message, Reaction, ReactionTally};

/// One normalised change.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A message seen for the first time (a repeat of a known message is deduplicated).
    New(Message),
    /// An edit: replaces the content and sets `edited_at`. Creates the message if it was never seen.
    Edit(Message),
    /// Messages deleted upstream: removed with everything derived from them.
    Delete {
        account: AccountId,
        chat: Chat,
        message_ids: Vec<i64>,
    },
    /// The other side read the account's outgoing messages in `chat` up to and including
    /// Telegram message `up_to`: each one still `sent` becomes `read`, with a `message.status`
    /// event. Read receipts only move forward, so the walk stops at the first one already read
    /// (or after a bound, `apply::READ_OUTBOX_WALK`).
    ReadOutbox {
        account: AccountId,
        chat: Chat,
        up_to: i64,
    },
    /// A basic group became a supergroup: its conversation moves to the new chat ID.
    Migrate {
        account: AccountId,
        from_group: i64,
        to_supergroup: Chat,
    },
    /// One actor's reactions on a message changed to `reactions` (empty: all withdrawn).
    /// Recorded on the message and as a `message.reaction` event; a reaction on a message the
    /// store does not have is counted as rejected.
    Reaction {
        account: AccountId,
        chat: Chat,
        message_id: i64,
        actor: i64,
        reactions: Vec<Reaction>,
    },
    /// Anonymous reaction totals of a message (channels), replacing the previous totals.
    ReactionCount {
        account: AccountId,
        chat: Chat,
        message_id: i64,
        totals: Vec<ReactionTally>,
    },
    /// The update could not be used at all and does not even name a chat (a bad payload in a
    /// batch). Recorded as a count, so it is visible, but stores nothing.
    Rejected {
        account: AccountId,
        update_type: String,
        reason: String,
    },
}

/// Changes from one connector poll, with the position to record once they are committed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub account: AccountId,
    pub changes: Vec<Change>,
    /// The connector's upstream position after this batch (Telegram: next `getUpdates` offset).
    /// Committed in the same transaction as the changes; `None` leaves it unchanged.
    pub position: Option<u64>,
}
