//! Request and result types of the Bot API methods [`super::BotClient`] calls, with Telegram's
//! field names. Optional fields are left out of the JSON when unset, as Telegram expects.

use serde::{Deserialize, Serialize};

/// `{"ok":...,"result":...}` or `{"ok":false,"error_code":...,"description":...}`.
#[derive(Debug, Deserialize)]
pub(super) struct Envelope<T> {
    pub ok: bool,
    pub result: Option<T>,
    pub error_code: Option<i64>,
    pub description: Option<String>,
    pub parameters: Option<ResponseParameters>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct ResponseParameters {
    pub retry_after: Option<u64>,
    pub migrate_to_chat_id: Option<i64>,
}

/// `getUpdates`. `offset` confirms every update below it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GetUpdates {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// 1 to 100.
    pub limit: u32,
    /// Long-poll seconds; 0 is a short poll.
    pub timeout: u32,
    /// Update types to receive. Telegram remembers the last list it was given.
    pub allowed_updates: Vec<String>,
}

/// Where a sent message replies to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ReplyParameters {
    pub message_id: i64,
    /// When the replied-to message is in another chat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<i64>,
    /// Send even if the replied-to message is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_sending_without_reply: Option<bool>,
    /// Part of the replied-to message to quote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
}

/// `sendMessage`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SendMessage {
    pub chat_id: i64,
    pub text: String,
    /// Forum topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_thread_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_parameters: Option<ReplyParameters>,
    /// Formatting as `MessageEntity` objects (instead of a `parse_mode`); empty: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<serde_json::Value>,
    /// `MarkdownV2` or `HTML`; `None` sends plain text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<String>,
    /// Replies to a business chat go through the connection that delivered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_connection_id: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disable_notification: bool,
}

/// `editMessageText`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EditMessageText {
    pub chat_id: i64,
    pub message_id: i64,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_connection_id: Option<String>,
}

/// `sendChatAction`'s `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatAction {
    Typing,
    UploadPhoto,
    RecordVideo,
    UploadVideo,
    RecordVoice,
    UploadVoice,
    UploadDocument,
    ChooseSticker,
    FindLocation,
    RecordVideoNote,
    UploadVideoNote,
}

/// `getFile`'s result. `file_path` is valid for at least an hour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    pub file_id: String,
    pub file_unique_id: String,
    pub file_size: Option<u64>,
    pub file_path: Option<String>,
}

/// `setWebhook`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SetWebhook {
    pub url: String,
    /// Sent back in `X-Telegram-Bot-Api-Secret-Token`; 1-256 of `A-Z a-z 0-9 _ -`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_token: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_updates: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub drop_pending_updates: bool,
}

/// `getWebhookInfo`'s result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WebhookInfo {
    /// Empty when no webhook is set.
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub has_custom_certificate: bool,
    #[serde(default)]
    pub pending_update_count: u64,
    pub ip_address: Option<String>,
    pub last_error_date: Option<i64>,
    pub last_error_message: Option<String>,
    pub max_connections: Option<u32>,
    pub allowed_updates: Option<Vec<String>>,
}
