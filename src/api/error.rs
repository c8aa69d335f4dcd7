//! The API's one error type and its mapping to HTTP: every failure leaves as
//! `{"error":{"code","message"}}` with a stable code. A 5xx never carries internal detail (the
//! detail goes to the log, which never holds message text either). Errors of the layers below
//! (store, auth, search) and axum's own rejections are mapped here and nowhere else.

use crate::attachments::AttachmentError;
use crate::service::lifecycle::LifecycleError;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthError;
use crate::backup::BackupError;
use crate::canned::CannedError;
use crate::channels::mtproto::LoginError;
use crate::channels::telegram::bots::AccountError;
use crate::channels::telegram::client::{ApiError as TelegramError, BadToken};
use crate::export::ExportError;
use crate::outbox::OutboxError;
use crate::search::SearchError;
use crate::store::StoreError;
use crate::system::update::UpdateError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    BadRequest(String),
    /// A 400 with a more specific code than `bad_request`.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("not allowed")]
    Forbidden,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the request took too long")]
    Timeout,
    #[error("{0}")]
    Conflict(String),
    #[error("request body too large")]
    TooLarge,
    #[error("request bodies must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests,
    /// 429 with `Retry-After`.
    #[error("too many attempts; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    /// 410: the event log no longer reaches back to where the client was.
    #[error("the event log no longer reaches back that far; reload and start from the current last_seq")]
    ResyncRequired,
    #[error("{0}")]
    NotImplemented(String),
    #[error("internal error")]
    Internal(String),
    /// 429 with its own stable code and `Retry-After` (Telegram's FLOOD_WAIT).
    #[error("{message}")]
    Wait {
        code: &'static str,
        message: String,
        wait: Duration,
    },
    /// Any other status with its own stable code (the outbox's refusals).
    #[error("{message}")]
    Coded {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Invalid { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            ApiError::TooManyRequests | ApiError::Throttled(_) => {
                (StatusCode::TOO_MANY_REQUESTS, "too_many_requests")
            }
            ApiError::ResyncRequired => (StatusCode::GONE, "resync_required"),
            ApiError::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, "not_implemented"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Coded { status, code, .. } => (*status, code),
            ApiError::Wait { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
        }
    }

    /// The stable code (also used for WebSocket error replies).
    pub fn code(&self) -> &'static str {
        self.status_and_code().1
    }

    pub fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    pub fn invalid(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Invalid {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            // A request that names an account the box does not have (an upload, a grant).
            StoreError::UnknownAccount(a) => ApiError::invalid("unknown_account", format!("no account {a}")),
            // The box cannot write (or, for a moment, read) its database: the request was
            // sound, so not a 500; /api/v1/health says why, and it recovers by itself.
            e if e.is_disk_full() => ApiError::Coded {
                status: StatusCode::INSUFFICIENT_STORAGE,
                code: "disk_full",
                message: "the box's disk is full; nothing of this request was stored".into(),
            },
            e if e.is_storage_failure() => {
                tracing::warn!(error = %e, "a request failed on storage");
                ApiError::Coded {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "store_unavailable",
                    message: "the box cannot use its database right now; retry shortly".into(),
                }
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadName(m) | AuthError::WeakPassword(m) => ApiError::BadRequest(m),
            AuthError::NameTaken => ApiError::Conflict(e.to_string()),
            AuthError::UnknownUser | AuthError::UnknownToken => ApiError::NotFound,
            AuthError::LastAdmin => ApiError::Conflict(e.to_string()),
            AuthError::UnknownAccount(_) => ApiError::invalid("unknown_account", e.to_string()),
            AuthError::InvalidCredentials => ApiError::invalid("invalid_credentials", e.to_string()),
            AuthError::Unauthenticated => ApiError::Unauthorized,
            AuthError::Throttled(d) | AuthError::Busy(d) => ApiError::Throttled(d),
            AuthError::Store(s) => s.into(),
            AuthError::Internal(d) => ApiError::Internal(d),
        }
    }
}

impl From<OutboxError> for ApiError {
    fn from(e: OutboxError) -> Self {
        let coded = |status, code, e: &OutboxError| ApiError::Coded {
            status,
            code,
            message: e.to_string(),
        };
        match e {
            OutboxError::DailyLimit { .. } => coded(StatusCode::TOO_MANY_REQUESTS, "daily_limit_reached", &e),
            OutboxError::NotConnected(_) => coded(StatusCode::CONFLICT, "account_not_connected", &e),
            OutboxError::NotOutgoing => coded(StatusCode::FORBIDDEN, "not_outgoing", &e),
            OutboxError::FilesUnavailable => ApiError::NotImplemented(e.to_string()),
            OutboxError::Refused(_) => coded(StatusCode::UNPROCESSABLE_ENTITY, "telegram_refused", &e),
            OutboxError::Unavailable(_) => coded(StatusCode::BAD_GATEWAY, "telegram_unavailable", &e),
            OutboxError::RateLimited(s) => ApiError::Throttled(Duration::from_secs(s)),
            OutboxError::Store(s) => s.into(),
            OutboxError::Account(d) => ApiError::Internal(d),
        }
    }
}

impl From<BadToken> for ApiError {
    fn from(e: BadToken) -> Self {
        ApiError::invalid("bad_token", e.to_string())
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let coded = |status, code, e: &AccountError| ApiError::Coded {
            status,
            code,
            message: e.to_string(),
        };
        match e {
            AccountError::BadToken(t) => t.into(),
            AccountError::BadApiBase | AccountError::BadWebhookBase => {
                ApiError::invalid("bad_url", e.to_string())
            }
            AccountError::NotABot => ApiError::invalid("not_a_bot", e.to_string()),
            AccountError::Api(TelegramError::Unauthorized) => {
                coded(StatusCode::UNPROCESSABLE_ENTITY, "token_rejected", &e)
            }
            AccountError::Api(ref t) if t.is_transient() => {
                coded(StatusCode::BAD_GATEWAY, "telegram_unavailable", &e)
            }
            AccountError::Api(_) => coded(StatusCode::UNPROCESSABLE_ENTITY, "telegram_refused", &e),
            AccountError::AlreadyAdded { .. } => ApiError::Conflict(e.to_string()),
            AccountError::NotFound(_) => ApiError::NotFound,
            AccountError::BadOptions(..) => ApiError::Internal(e.to_string()),
            AccountError::Store(s) => s.into(),
        }
    }
}

impl From<AttachmentError> for ApiError {
    fn from(e: AttachmentError) -> Self {
        match e {
            AttachmentError::NotFound(_) => ApiError::NotFound,
            AttachmentError::NotReady(_) => ApiError::Conflict("the file is not stored yet".into()),
            // An upload for an account the box does not have, say.
            AttachmentError::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::Account(a) => a.into(),
            LifecycleError::Outbox(o) => o.into(),
            LifecycleError::Store(s) => s.into(),
            LifecycleError::Login(l) => l.into(),
            LifecycleError::NoTelegramApp => ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "telegram_app_unset",
                message: e.to_string(),
            },
            LifecycleError::BadPhone(m) => ApiError::invalid("bad_phone", m),
            LifecycleError::LoginNotFound => ApiError::Coded {
                status: StatusCode::NOT_FOUND,
                code: "login_not_found",
                message: e.to_string(),
            },
            LifecycleError::LoginBusy => ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "login_busy",
                message: e.to_string(),
            },
            LifecycleError::TooManyLogins(_) => ApiError::Coded {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "too_many_logins",
                message: e.to_string(),
            },
        }
    }
}

/// A user-account login's errors: a wrong code or password may be retried on the same login
/// (400); an expired code (410) or a banned number (403) ends it; FLOOD_WAIT says how long to
/// wait (429 with `Retry-After`). None of the messages names the number, the code or the
/// password.
impl From<LoginError> for ApiError {
    fn from(e: LoginError) -> Self {
        let coded = |status, code, e: &LoginError| ApiError::Coded {
            status,
            code,
            message: e.to_string(),
        };
        match e {
            LoginError::PhoneInvalid => ApiError::invalid("phone_invalid", e.to_string()),
            LoginError::PhoneBanned => coded(StatusCode::FORBIDDEN, "phone_banned", &e),
            LoginError::CodeInvalid => ApiError::invalid("code_invalid", e.to_string()),
            LoginError::CodeExpired => coded(StatusCode::GONE, "code_expired", &e),
            LoginError::PasswordRequired => coded(StatusCode::CONFLICT, "password_required", &e),
            LoginError::PasswordInvalid => ApiError::invalid("password_invalid", e.to_string()),
            LoginError::AlreadyAdded(_) => coded(StatusCode::CONFLICT, "already_added", &e),
            LoginError::FloodWait(s) => ApiError::Wait {
                code: "flood_wait",
                message: e.to_string(),
                wait: Duration::from_secs(u64::from(s)),
            },
            LoginError::Telegram { .. } => coded(StatusCode::UNPROCESSABLE_ENTITY, "telegram_refused", &e),
            LoginError::Network(_) | LoginError::Unexpected(_) => {
                tracing::warn!(error = %e, "a Telegram account login step failed");
                coded(StatusCode::BAD_GATEWAY, "telegram_unavailable", &e)
            }
            LoginError::Store(s) => s.into(),
        }
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        let coded = |status, code, e: &BackupError| ApiError::Coded {
            status,
            code,
            message: e.to_string(),
        };
        match e {
            BackupError::NoPassphrase => coded(StatusCode::CONFLICT, "backup_passphrase_unset", &e),
            BackupError::Busy => coded(StatusCode::CONFLICT, "backup_running", &e),
            BackupError::WeakPassphrase => ApiError::invalid("weak_passphrase", e.to_string()),
            BackupError::NotFound(_) => ApiError::NotFound,
            BackupError::S3(_) => coded(StatusCode::BAD_GATEWAY, "s3_unavailable", &e),
            // A backup given to restore that does not open: the file or the passphrase.
            BackupError::WrongPassphrase => ApiError::invalid("wrong_passphrase", e.to_string()),
            BackupError::NotABackup
            | BackupError::Truncated(_)
            | BackupError::Damaged(_)
            | BackupError::TooNew(_) => ApiError::invalid("bad_backup", e.to_string()),
            BackupError::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<UpdateError> for ApiError {
    fn from(e: UpdateError) -> Self {
        match e {
            UpdateError::NotAvailable(_) => ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "update_unavailable",
                message: e.to_string(),
            },
            UpdateError::Refused(_) => ApiError::invalid("bundle_refused", e.to_string()),
            UpdateError::TooLarge { .. } => ApiError::Coded {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "too_large",
                message: e.to_string(),
            },
            UpdateError::Rauc(_) => ApiError::Coded {
                status: StatusCode::BAD_GATEWAY,
                code: "rauc_failed",
                message: e.to_string(),
            },
            UpdateError::Io(m) => ApiError::Internal(m),
        }
    }
}

impl From<CannedError> for ApiError {
    fn from(e: CannedError) -> Self {
        match e {
            CannedError::NotFound => ApiError::NotFound,
            CannedError::Forbidden => ApiError::Forbidden,
            CannedError::BadShortcut(_) => ApiError::invalid("bad_shortcut", e.to_string()),
            CannedError::BadText(_) => ApiError::invalid("bad_text", e.to_string()),
            CannedError::ShortcutTaken => ApiError::Conflict(e.to_string()),
            CannedError::TooMany => ApiError::Coded {
                status: StatusCode::CONFLICT,
                code: "too_many_replies",
                message: e.to_string(),
            },
            CannedError::Store(s) => s.into(),
        }
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> ApiError {
        match e {
            // The operator's fix is named: which Debian packages to install.
            ExportError::FontsMissing { .. } => ApiError::Coded {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "fonts_missing",
                message: e.to_string(),
            },
            ExportError::BadRequest(m) => ApiError::BadRequest(m),
            ExportError::Store(e) => e.into(),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Store(s) => s.into(),
            SearchError::BadCursor => ApiError::invalid("bad_cursor", e.to_string()),
            SearchError::TooExpensive => ApiError::invalid("query_too_expensive", e.to_string()),
            // Shape errors of the query text; their messages never echo the query.
            other => ApiError::invalid("bad_query", other.to_string()),
        }
    }
}

/// Rejections keep their status but never echo the body: a serde message can quote the
/// offending value, which may be message text.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest("the body is not valid JSON".into()),
            JsonRejection::JsonDataError(e) => ApiError::BadRequest(json_data_error(&e.body_text())),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge,
            other if other.status() == StatusCode::REQUEST_TIMEOUT => ApiError::Timeout,
            _ => ApiError::BadRequest("the body could not be read".into()),
        }
    }
}

/// What is wrong with a JSON body, naming the field (`up_to: invalid type: ..., expected
/// i64`), with any string the client sent left out: a body may carry message text, and error
/// strings never do.
fn json_data_error(detail: &str) -> String {
    let detail = detail
        .split_once("target type: ")
        .map_or(detail, |(_, rest)| rest);
    let mut out = String::with_capacity(detail.len());
    let mut chars = detail.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            // A quoted value from the body: skip it (escapes included).
            while let Some(q) = chars.next() {
                match q {
                    '\\' => {
                        chars.next();
                    }
                    '"' => break,
                    _ => {}
                }
            }
            out.push_str("(value)");
        } else {
            out.push(c);
        }
    }
    let out = out.replace("string (value)", "a string");
    if out.trim().is_empty() {
        "the JSON body does not have the fields and types this route expects".into()
    } else {
        format!("the JSON body does not fit this route: {}", out.trim())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> Self {
        ApiError::BadRequest("the query parameters do not have the names and types this route expects".into())
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::NotFound
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = serde_json::json!({ "error": { "code": code, "message": self.to_string() } });
        let mut res = (status, Json(body)).into_response();
        match &self {
            ApiError::Throttled(d) | ApiError::Wait { wait: d, .. } => {
                let secs = d.as_secs().max(1).to_string();
                if let Ok(v) = HeaderValue::from_str(&secs) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            ApiError::Unauthorized => {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"lanbox\""),
                );
            }
            _ => {}
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_5xx_carries_no_internal_detail() {
        let res = ApiError::from(StoreError::MasterKey("/secret/path: disk on fire".into())).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        assert_eq!(
            &body[..],
            br#"{"error":{"code":"internal","message":"internal error"}}"#
        );
    }
}
