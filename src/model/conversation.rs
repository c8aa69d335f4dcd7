//! A conversation's place in the team's work: its status and who handles it.
//!
//! A chat is a conversation; these are the words the team uses about it (Chatwoot's: open,
//! pending, snoozed, resolved). They carry no content, so they are kept in the clear.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConversationStatus {
    /// Needs an answer (every conversation starts here).
    #[default]
    Open,
    /// Waiting on something else (the customer, a colleague); still counted as work.
    Pending,
    /// Put away until a time; it comes back as open then, or sooner when the customer writes.
    Snoozed,
    /// Done; a new incoming message opens it again.
    Resolved,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 4] = [
        ConversationStatus::Open,
        ConversationStatus::Pending,
        ConversationStatus::Snoozed,
        ConversationStatus::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Pending => "pending",
            ConversationStatus::Snoozed => "snoozed",
            ConversationStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<ConversationStatus> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One entry of a conversation's activity trail: what changed. Who and when are kept beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activity {
    /// Assigned to a user, or unassigned (`None`).
    Assigned { to: Option<u64> },
    /// The status changed (`until`: the end of a snooze, unix seconds).
    Status {
        status: ConversationStatus,
        until: Option<i64>,
    },
    /// The labels now on the conversation.
    Labels { labels: Vec<u64> },
    /// An incoming message opened a resolved or snoozed conversation again.
    Reopened,
    /// Someone exported the conversation (`format`: `pdf` or `jsonl`), over a period.
    Exported {
        format: String,
        from: Option<i64>,
        to: Option<i64>,
    },
}
