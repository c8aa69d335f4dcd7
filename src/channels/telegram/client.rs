//! The Bot API client: one [`BotClient`] per bot token, over HTTPS (rustls with the `ring`
//! provider and compiled-in Mozilla roots, so the static ARM binaries need neither OpenSSL nor a
//! system certificate store).
//!
//! Every method returns a typed result or an [`ApiError`] that says what the caller should do:
//! wait exactly `retry_after` ([`ApiError::RetryAfter`]), stop (a revoked token is
//! [`ApiError::Unauthorized`]; a webhook or a second poller is [`ApiError::Conflict`]), or back
//! off and try again ([`ApiError::Server`], [`ApiError::Network`], [`ApiError::Timeout`]).
//!
//! The token is part of every request URL (`<base>/bot<token>/<method>`), and HTTP libraries like
//! to quote URLs in their errors. So no error leaves this module without passing through
//! [`BotClient::network_error`], which drops the URL and scrubs the token from whatever text is
//! left, and [`Token`] never shows itself in `Debug`.

mod types;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use zeroize::{Zeroize, ZeroizeOnDrop};

pub use types::{
    ChatAction, EditMessageText, File, GetUpdates, ReplyParameters, SendMessage, SetWebhook, WebhookInfo,
};

use super::wire;

/// Telegram's own Bot API server.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// Timeout of every call except `getUpdates` (which waits as long as its long poll plus a margin)
/// and file downloads (bounded per read instead).
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A bot token (`<bot id>:<secret>`). Never shown by `Debug`, wiped from memory on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Token(String);

/// Why a string is not a bot token. Never contains the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a bot token: expected <bot id>:<secret> as issued by @BotFather")]
pub struct BadToken;

impl Token {
    /// Checks the shape BotFather issues: digits, a colon, then letters, digits, `_` and `-`.
    pub fn new(token: impl Into<String>) -> Result<Token, BadToken> {
        let token = Token(token.into());
        let (id, secret) = token.0.split_once(':').ok_or(BadToken)?;
        let id_ok = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
        let secret_ok = !secret.is_empty()
            && secret.len() <= 128
            && secret
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if id_ok && secret_ok {
            Ok(token)
        } else {
            Err(BadToken)
        }
    }

    /// The token itself, for sealing it into the store. Do not log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The bot's user ID (the part before the colon; public, unlike the rest).
    pub fn bot_id(&self) -> i64 {
        self.0
            .split_once(':')
            .and_then(|(id, _)| id.parse().ok())
            .unwrap_or(0)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}:<redacted>)", self.bot_id())
    }
}

/// What went wrong with a Bot API call. The `Display` form never contains the token; a
/// `description` is Telegram's own error text (about the request, never message content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// 429: wait exactly this many seconds before the next call.
    #[error("rate limited by Telegram: retry after {0} s")]
    RetryAfter(u64),
    /// 401: the token is wrong or was revoked in @BotFather.
    #[error("Telegram rejected the bot token (401 Unauthorized)")]
    Unauthorized,
    /// 409: a webhook is set, or another process polls with the same token.
    #[error("conflict with another consumer of this bot (409): {0}")]
    Conflict(String),
    /// 5xx, from Telegram or a proxy in front of it.
    #[error("Telegram server error (HTTP {0})")]
    Server(u16),
    /// The request did not reach Telegram or the response did not come back whole.
    #[error("network error: {0}")]
    Network(String),
    /// No complete response within the call's timeout.
    #[error("request timed out")]
    Timeout,
    /// 400 for a group that became a supergroup: send to the new chat instead.
    #[error("the group is now the supergroup {0}")]
    Migrated(i64),
    /// The response was not the Bot API's JSON (wrong `--api-base`, a captive portal, ...).
    #[error("response not understood: {0}")]
    BadResponse(String),
    /// Any other error Telegram reports (400, 403, 404, ...).
    #[error("Telegram error {0}: {1}")]
    Other(i64, String),
}

impl ApiError {
    /// Worth trying again later (after [`ApiError::RetryAfter`]'s delay or a backoff).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::RetryAfter(_) | ApiError::Server(_) | ApiError::Network(_) | ApiError::Timeout
        )
    }
}

/// Builds the HTTP client every [`BotClient`] shares: rustls with `ring`, TLS 1.2+ with
/// Mozilla's roots, HTTP/1.1.
pub fn http_client() -> Result<reqwest::Client, ApiError> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| ApiError::Network("TLS configuration".into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("lanbox/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        // Bounds each read of a download; long polls set their own, longer, total timeout.
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| ApiError::Network(format!("HTTP client: {}", e.without_url())))
}

/// Time allowed for a file upload (a 50 MB upload over a slow uplink takes minutes).
pub const UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Largest photo `sendPhoto` takes; bigger images go as documents.
pub const MAX_PHOTO_BYTES: u64 = 10 * 1000 * 1000;

/// A file to send, with its bytes as a stream.
pub struct FileSend {
    pub chat_id: i64,
    pub file_name: String,
    pub mime_type: String,
    pub size: u64,
    pub caption: Option<String>,
    pub reply_to: Option<i64>,
    pub bytes:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send>>,
}

impl FileSend {
    /// The Bot API method and form field for this file: photos (JPEG, PNG, WebP up to 10 MB),
    /// MP4 video, Ogg voice notes and other audio get their own; everything else is a document.
    pub fn method(&self) -> (&'static str, &'static str) {
        let mime = self.mime_type.as_str();
        match mime {
            "image/jpeg" | "image/png" | "image/webp" if self.size <= MAX_PHOTO_BYTES => {
                ("sendPhoto", "photo")
            }
            "video/mp4" => ("sendVideo", "video"),
            "audio/ogg" => ("sendVoice", "voice"),
            _ if mime.starts_with("audio/") => ("sendAudio", "audio"),
            _ => ("sendDocument", "document"),
        }
    }
}

/// A client for one bot. Cheap to clone.
#[derive(Clone)]
pub struct BotClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `<api base>/bot<token>/`: a secret, like the token.
    method_base: String,
    /// `<api base>/file/bot<token>/`.
    file_base: String,
    api_base: String,
    token: Token,
    /// Timeout of the calls that send (messages, edits, deletes, chat actions).
    send_timeout: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.method_base.zeroize();
        self.file_base.zeroize();
    }
}

impl std::fmt::Debug for BotClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotClient")
            .field("api_base", &self.inner.api_base)
            .field("token", &self.inner.token)
            .finish()
    }
}

impl BotClient {
    /// A client for `token` at `api_base` (Telegram, a self-hosted Bot API server, or the
    /// simulator), over a shared HTTP client from [`http_client`].
    pub fn new(http: reqwest::Client, api_base: &str, token: Token) -> BotClient {
        let api_base = api_base.trim_end_matches('/').to_owned();
        BotClient {
            inner: Arc::new(Inner {
                http,
                method_base: format!("{api_base}/bot{}/", token.expose()),
                file_base: format!("{api_base}/file/bot{}/", token.expose()),
                api_base,
                token,
                send_timeout: DEFAULT_CALL_TIMEOUT,
            }),
        }
    }

    /// The same bot with another timeout for the calls that send (the outbox's
    /// `request_timeout`).
    pub fn with_send_timeout(&self, timeout: Duration) -> BotClient {
        let i = &self.inner;
        BotClient {
            inner: Arc::new(Inner {
                http: i.http.clone(),
                method_base: i.method_base.clone(),
                file_base: i.file_base.clone(),
                api_base: i.api_base.clone(),
                token: i.token.clone(),
                send_timeout: timeout,
            }),
        }
    }

    pub fn api_base(&self) -> &str {
        &self.inner.api_base
    }

    pub fn bot_id(&self) -> i64 {
        self.inner.token.bot_id()
    }

    /// The bot itself; the usual way to check a token.
    pub async fn get_me(&self) -> Result<wire::User, ApiError> {
        self.call("getMe", &serde_json::json!({}), DEFAULT_CALL_TIMEOUT)
            .await
    }

    /// One long poll. Returns the whole response body, for [`wire::split_updates`], so a bad
    /// update fails alone instead of failing the response. The call waits up to `timeout`
    /// seconds on Telegram's side, so its own timeout is that plus `margin`.
    pub async fn get_updates(&self, req: &GetUpdates, margin: Duration) -> Result<bytes::Bytes, ApiError> {
        let timeout = Duration::from_secs(u64::from(req.timeout)) + margin;
        self.call_raw("getUpdates", req, timeout).await
    }

    pub async fn send_message(&self, req: &SendMessage) -> Result<wire::Message, ApiError> {
        self.call("sendMessage", req, self.inner.send_timeout).await
    }

    /// `sendMessage` returning the sent message as JSON, for the update mapping (which takes
    /// what Telegram sends, not a re-serialised struct).
    pub async fn send_message_json(&self, req: &SendMessage) -> Result<serde_json::Value, ApiError> {
        self.call("sendMessage", req, self.inner.send_timeout).await
    }

    /// Uploads a file with the send method that suits its type ([`FileSend::method`]), the
    /// bytes streamed as multipart form data (a 50 MB file never sits in memory). Returns the
    /// sent message as JSON, like [`BotClient::send_message_json`].
    pub async fn send_file_json(&self, send: FileSend) -> Result<serde_json::Value, ApiError> {
        let (method, field) = send.method();
        let body = reqwest::Body::wrap_stream(send.bytes);
        let part = reqwest::multipart::Part::stream_with_length(body, send.size)
            .file_name(send.file_name.clone())
            .mime_str(&send.mime_type)
            .unwrap_or_else(|_| {
                reqwest::multipart::Part::bytes(Vec::new()).file_name(send.file_name.clone())
            });
        let mut form = reqwest::multipart::Form::new()
            .text("chat_id", send.chat_id.to_string())
            .part(field, part);
        if let Some(c) = send.caption.filter(|c| !c.is_empty()) {
            form = form.text("caption", c);
        }
        if let Some(m) = send.reply_to {
            let rp = serde_json::json!({"message_id": m, "allow_sending_without_reply": true});
            form = form.text("reply_parameters", rp.to_string());
        }
        self.call_multipart(method, form, self.inner.send_timeout.max(UPLOAD_TIMEOUT))
            .await
    }

    /// Calls `method` with a multipart form body and decodes its `result`.
    async fn call_multipart<T: DeserializeOwned>(
        &self,
        method: &str,
        form: reqwest::multipart::Form,
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let resp = self
            .inner
            .http
            .post(format!("{}{method}", self.inner.method_base))
            .multipart(form)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.network_error(e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.network_error(e))?;
        if !(200..300).contains(&status) {
            return Err(self.classify(status, &body));
        }
        let env: types::Envelope<T> = serde_json::from_slice(&body).map_err(|e| bad_json(method, &e))?;
        match (env.ok, env.result) {
            (true, Some(r)) => Ok(r),
            _ => Err(self.classify(200, &body)),
        }
    }

    pub async fn send_chat_action(&self, chat_id: i64, action: ChatAction) -> Result<bool, ApiError> {
        let req = serde_json::json!({ "chat_id": chat_id, "action": action });
        self.call("sendChatAction", &req, self.inner.send_timeout).await
    }

    /// Returns the edited message (`true` comes back only for inline messages, which lanbox
    /// does not send).
    pub async fn edit_message_text(&self, req: &EditMessageText) -> Result<wire::Message, ApiError> {
        self.call("editMessageText", req, self.inner.send_timeout).await
    }

    /// `editMessageText` returning the edited message as JSON (see
    /// [`BotClient::send_message_json`]).
    pub async fn edit_message_text_json(&self, req: &EditMessageText) -> Result<serde_json::Value, ApiError> {
        self.call("editMessageText", req, self.inner.send_timeout).await
    }

    pub async fn delete_message(&self, chat_id: i64, message_id: i64) -> Result<bool, ApiError> {
        let req = serde_json::json!({ "chat_id": chat_id, "message_id": message_id });
        self.call("deleteMessage", &req, self.inner.send_timeout).await
    }

    /// Prepares a file for download; its `file_path` goes to [`BotClient::download`].
    pub async fn get_file(&self, file_id: &str) -> Result<File, ApiError> {
        let req = serde_json::json!({ "file_id": file_id });
        self.call("getFile", &req, DEFAULT_CALL_TIMEOUT).await
    }

    /// Starts downloading a file named by [`File::file_path`]; the body streams in chunks.
    pub async fn download(&self, file_path: &str) -> Result<Download, ApiError> {
        let path = file_path.trim_start_matches('/');
        if path.split('/').any(|seg| seg == "..") || path.contains(['?', '#']) {
            return Err(ApiError::BadResponse("file path is not a plain path".into()));
        }
        let url = format!("{}{path}", self.inner.file_base);
        let resp = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.network_error(e))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(self.classify(status, &body));
        }
        Ok(Download {
            len: resp.content_length(),
            resp,
            client: self.clone(),
        })
    }

    /// Switches the bot to webhook mode. Telegram will send `secret_token` in the
    /// `X-Telegram-Bot-Api-Secret-Token` header of every delivery.
    pub async fn set_webhook(&self, req: &SetWebhook) -> Result<bool, ApiError> {
        self.call("setWebhook", req, DEFAULT_CALL_TIMEOUT).await
    }

    /// [`BotClient::set_webhook`] with the public certificate (PEM) of a self-signed webhook
    /// endpoint uploaded, so Telegram trusts exactly that certificate.
    pub async fn set_webhook_with_certificate(
        &self,
        req: &SetWebhook,
        pem: Vec<u8>,
    ) -> Result<bool, ApiError> {
        let mut form = reqwest::multipart::Form::new().text("url", req.url.clone());
        if let Some(secret) = &req.secret_token {
            form = form.text("secret_token", secret.clone());
        }
        if !req.allowed_updates.is_empty() {
            let json = serde_json::to_string(&req.allowed_updates).expect("strings serialise");
            form = form.text("allowed_updates", json);
        }
        if let Some(n) = req.max_connections {
            form = form.text("max_connections", n.to_string());
        }
        if req.drop_pending_updates {
            form = form.text("drop_pending_updates", "true");
        }
        let part = reqwest::multipart::Part::bytes(pem)
            .file_name("certificate.pem")
            .mime_str("application/x-pem-file")
            .expect("static MIME type");
        form = form.part("certificate", part);
        self.call_multipart("setWebhook", form, DEFAULT_CALL_TIMEOUT)
            .await
    }

    pub async fn delete_webhook(&self, drop_pending_updates: bool) -> Result<bool, ApiError> {
        let req = serde_json::json!({ "drop_pending_updates": drop_pending_updates });
        self.call("deleteWebhook", &req, DEFAULT_CALL_TIMEOUT).await
    }

    pub async fn get_webhook_info(&self) -> Result<WebhookInfo, ApiError> {
        self.call("getWebhookInfo", &serde_json::json!({}), DEFAULT_CALL_TIMEOUT)
            .await
    }

    /// Calls `method` and decodes its `result`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        req: &(impl Serialize + ?Sized),
        timeout: Duration,
    ) -> Result<T, ApiError> {
        let body = self.call_raw(method, req, timeout).await?;
        let env: types::Envelope<T> = serde_json::from_slice(&body).map_err(|e| bad_json(method, &e))?;
        match (env.ok, env.result) {
            (true, Some(result)) => Ok(result),
            (true, None) => Err(ApiError::BadResponse(format!("{method}: no result"))),
            (false, _) => Err(self.classify(200, &body)),
        }
    }

    /// Calls `method` with a JSON body; returns the body of a successful (2xx) response.
    async fn call_raw(
        &self,
        method: &str,
        req: &(impl Serialize + ?Sized),
        timeout: Duration,
    ) -> Result<bytes::Bytes, ApiError> {
        let url = format!("{}{method}", self.inner.method_base);
        let resp = self
            .inner
            .http
            .post(url)
            .json(req)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| self.network_error(e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.network_error(e))?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(self.classify(status, &body))
        }
    }

    /// Turns an error response into an [`ApiError`]; `status` is the HTTP status, the body's
    /// `error_code` wins when there is one (a proxy's HTML error page has none).
    fn classify(&self, status: u16, body: &[u8]) -> ApiError {
        let env: Option<types::Envelope<serde::de::IgnoredAny>> = serde_json::from_slice(body).ok();
        let (code, description, params) = match env {
            Some(e) => (
                e.error_code.unwrap_or(i64::from(status)),
                e.description.unwrap_or_default(),
                e.parameters.unwrap_or_default(),
            ),
            None => (i64::from(status), String::new(), Default::default()),
        };
        let description = self.scrub(&printable(&description));
        match code {
            429 => ApiError::RetryAfter(params.retry_after.unwrap_or(1)),
            401 => ApiError::Unauthorized,
            409 => ApiError::Conflict(description),
            500..=599 => ApiError::Server(code as u16),
            _ if params.migrate_to_chat_id.is_some() => {
                ApiError::Migrated(params.migrate_to_chat_id.unwrap_or_default())
            }
            _ if status >= 500 => ApiError::Server(status),
            _ => ApiError::Other(code, description),
        }
    }

    /// A transport error without its URL and with the token scrubbed from what is left.
    fn network_error(&self, e: reqwest::Error) -> ApiError {
        if e.is_timeout() {
            return ApiError::Timeout;
        }
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        ApiError::Network(self.scrub(&printable(&text)))
    }

    /// Removes the token (and its secret half) from a text, in case a layer below quoted it.
    fn scrub(&self, text: &str) -> String {
        let token = self.inner.token.expose();
        let secret = token.split_once(':').map_or(token, |(_, s)| s);
        text.replace(token, "<token>").replace(secret, "<token>")
    }
}

/// A file being downloaded.
pub struct Download {
    len: Option<u64>,
    resp: reqwest::Response,
    client: BotClient,
}

impl Download {
    /// The size announced by the server, if any.
    pub fn content_length(&self) -> Option<u64> {
        self.len
    }

    /// The next chunk of the body; `None` at the end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ApiError> {
        self.resp.chunk().await.map_err(|e| self.client.network_error(e))
    }
}

/// A decoding error, by position only (serde's message may quote a value).
fn bad_json(method: &str, e: &serde_json::Error) -> ApiError {
    ApiError::BadResponse(format!(
        "{method}: invalid JSON at line {} column {}",
        e.line(),
        e.column()
    ))
}

/// Keeps a server-supplied text short and on one line.
fn printable(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape_is_checked_and_never_shown() {
        let t = Token::new("123456:AAE-x_yz").unwrap();
        assert_eq!(t.bot_id(), 123456);
        assert_eq!(format!("{t:?}"), "Token(123456:<redacted>)");
        for bad in ["", "123456", ":abc", "12a:abc", "1:", "1:a b", "1:a/b"] {
            assert_eq!(Token::new(bad), Err(BadToken), "{bad:?}");
        }
    }

    #[test]
    fn errors_are_classified_like_telegram_sends_them() {
        let c = BotClient::new(
            http_client().unwrap(),
            "http://x",
            Token::new("1:SECRET").unwrap(),
        );
        let body = br#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#;
        assert_eq!(c.classify(429, body), ApiError::RetryAfter(7));
        assert_eq!(
            c.classify(
                401,
                br#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#
            ),
            ApiError::Unauthorized
        );
        assert_eq!(
            c.classify(502, b"<html>Bad Gateway</html>"),
            ApiError::Server(502)
        );
        let body = br#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001}}"#;
        assert_eq!(c.classify(400, body), ApiError::Migrated(-1001));
        let body = br#"{"ok":false,"error_code":403,"description":"Forbidden: bot 1:SECRET was blocked"}"#;
        match c.classify(403, body) {
            ApiError::Other(403, d) => assert!(!d.contains("SECRET"), "{d}"),
            other => panic!("{other:?}"),
        }
    }
}
