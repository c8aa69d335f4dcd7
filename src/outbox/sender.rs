//! What an account sends with: a bot's Bot API client, or a user account's MTProto client (the
//! connector's own, shared through `UserConnectors`). The queue, its order, the limits, the
//! retries and the status records are the same for both; only the request differs. Failures of
//! either come back as the Bot API client's [`ApiError`], so the retry logic reads one kind of
//! error: a `FLOOD_WAIT_n` or `SLOWMODE_WAIT_n` is [`ApiError::RetryAfter`] with its seconds,
//! as a bot's 429 is.

use std::time::Duration;

use crate::channels::mtproto::{SendError, UserSender};
use crate::channels::telegram::client::{ApiError, BotClient};
use crate::model::{
    Body, Chat, ChatKind, Direction, Message, MessageContent, ReplyTo, Sender as From, Status, Text, UserRef,
};

/// An account's way to Telegram.
#[derive(Debug, Clone)]
pub enum Sender {
    Bot(BotClient),
    /// A user account: its connector's client; each call bounded by `timeout`.
    User { sender: UserSender, timeout: Duration },
}

impl Sender {
    pub fn is_user(&self) -> bool {
        matches!(self, Sender::User { .. })
    }
}

/// A user account's failure as the outbox's retry logic reads it.
pub fn api_error(e: SendError) -> ApiError {
    match e {
        SendError::Wait(secs, _) => ApiError::RetryAfter(secs.max(1)),
        SendError::Offline => ApiError::Network("the account's connection to Telegram is down".into()),
        SendError::Network(d) => ApiError::Network(d),
        SendError::Server(_) => ApiError::Server(500),
        SendError::UnknownPeer => ApiError::Other(
            400,
            "the chat is not known to this account's session yet (no update has named it)".into(),
        ),
        SendError::Refused(code, name) => ApiError::Other(i64::from(code), name),
    }
}

/// Runs one user-account call within `timeout`.
pub async fn bounded<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, SendError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r.map_err(api_error),
        Err(_) => Err(ApiError::Timeout),
    }
}

/// The message a user account just sent, as the store keeps it (outgoing, sent).
pub fn user_message(
    account: u64,
    chat: i64,
    kind: ChatKind,
    text: &str,
    reply_to: Option<i64>,
    sent: crate::channels::mtproto::send::Sent,
) -> Message {
    let chat = Chat {
        id: chat,
        kind,
        // None keeps the title the chat has.
        title: None,
        username: None,
        is_forum: false,
    };
    let sender = if kind == ChatKind::Channel {
        From::Chat {
            id: chat.id,
            title: None,
            username: None,
            signature: None,
        }
    } else {
        From::User(UserRef {
            id: sent.from,
            is_bot: false,
            first_name: String::new(),
            last_name: None,
            username: None,
            language_code: None,
        })
    };
    Message {
        account,
        chat,
        message_id: i64::from(sent.message_id),
        topic: None,
        direction: Direction::Outgoing,
        date: i64::from(sent.date),
        edited_at: None,
        status: Status::Sent,
        content: MessageContent {
            sender,
            reply_to: reply_to.map(|message_id| ReplyTo {
                message_id,
                chat_id: None,
                quote: None,
            }),
            forward: None,
            media_group: None,
            body: Body::Text(Text::plain(text)),
            notes: Vec::new(),
        },
    }
}
