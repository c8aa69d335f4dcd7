//! The HTTP API under `/api/v1`: JSON over HTTPS, one error shape, every route behind an
//! authentication extractor and filtered by the caller's grants.
//!
//! State is the running [`Service`] (`crate::service`); grants filtering and the JSON shapes
//! are the read model in `crate::view`.
//!
//! - [`extract`]: [`crate::auth::Caller`] as an extractor (token, session cookie + Origin),
//!   and `Json`/`Query`/`Path` whose rejections keep the error shape.
//! - [`session`], [`inbox`], [`send`], [`search`], [`stats`], [`events`]: the routes.
//! - [`ws`]: the WebSocket: authentication, the upgrade, one task per connection.
//! - [`files`]: attachment listings, signed downloads with `Range`, uploads for sending.
//! - [`canned`]: canned replies; [`contact`]: the contact panel of a conversation.
//! - [`accounts`]: channel accounts; [`account_logins`]: adding a Telegram user account
//!   (phone, code, 2FA password), admins only.
//! - [`admin`]: users, grants (admins only) and the caller's own API tokens.
//! - [`backups`]: backups now, their list and download, the backup passphrase (admins only).
//! - [`export`]: a chat's PDF transcript and JSON Lines, an account's archive (admins).
//! - [`setup`]: first run, the first admin with the one-time setup code from the console.
//! - [`unlock`]: the sealed box's unlock page and its routes (sealed boot).
//! - [`restore`]: first run, the other way: a backup uploaded and restored into a new box.
//! - [`error`]: [`ApiError`] and its mapping to status codes and stable codes.
//! - `openapi.json`: the OpenAPI 3.1 document, served at `/api/v1/openapi.json`; a test checks
//!   it names exactly the routes of [`ROUTES`].
//!
//! Limits: request bodies are capped (`ServiceOptions::body_limit`) and a request that takes
//! longer than `ServiceOptions::request_timeout` (a client trickling its body, say) is answered
//! `408` and dropped. A WebSocket is out of the request's scope once upgraded.

pub mod account_logins;
pub mod accounts;
pub mod admin;
pub mod backups;
pub mod canned;
pub mod contact;
pub mod conversations;
pub mod error;
pub mod events;
pub mod export;
pub mod extract;
pub mod files;
pub mod inbox;
pub mod notes;
pub mod restore;
pub mod search;
pub mod send;
pub mod session;
pub mod setup;
pub mod stats;
pub mod unlock;
pub mod update;
pub mod webhook;
pub mod ws;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde::Serialize;

pub use error::ApiError;

use crate::service::Service;

#[derive(Serialize)]
struct Health {
    status: &'static str,
    /// Why the box is degraded (empty when `ok`).
    reasons: Vec<Reason>,
    version: &'static str,
    uptime_s: u64,
    certificate_sha256: String,
    /// `None` when the store cannot be read.
    last_seq: Option<u64>,
}

/// One reason for `degraded`, with a stable code.
#[derive(Serialize)]
struct Reason {
    code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<u64>,
    /// `store_damaged`: damaged records met since the start.
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    /// `store_damaged`: when the last one was met (Unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_at: Option<i64>,
}

impl Reason {
    fn new(code: &'static str) -> Reason {
        Reason {
            code,
            account: None,
            count: None,
            last_at: None,
        }
    }
}

/// A connector that failed this many polls in a row counts as down (with the default backoff,
/// after half a minute or more of failures).
const CONNECTOR_DOWN_AFTER: u32 = 5;

/// `200` with `ok`, or `503` with `degraded` and the reasons: the store's writes fail
/// (`store_write_failing`, with `disk_full` when the disk refused them), its writer thread ended
/// (`writer_stopped`), it cannot be read (`store_read_failing`), damaged records were met
/// (`store_damaged`, with their count and the time of the last; the records themselves are
/// skipped), or an account's connector is stopped or keeps failing (`connector_down`, with the
/// account). No credentials needed; no detail beyond the codes. `lanbox update mark-good` takes
/// only `ok`.
async fn health(State(s): State<Service>) -> Response {
    use crate::channels::telegram::poller::{AccountStatus, StopReason};
    let mut reasons = Vec::new();
    let store = s.store.health();
    for code in store.reasons() {
        reasons.push(match code {
            "store_damaged" => Reason {
                count: Some(store.damaged),
                last_at: store.last_damage_at,
                ..Reason::new(code)
            },
            _ => Reason::new(code),
        });
    }
    let last_seq = match s.store.read(|r| r.last_seq()).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "health: the store cannot be read");
            reasons.push(Reason::new("store_read_failing"));
            None
        }
    };
    for (account, status) in s.pollers.statuses() {
        let down = match status {
            AccountStatus::Stopped { reason } => reason != StopReason::Shutdown,
            AccountStatus::BackingOff { failures, .. } => failures >= CONNECTOR_DOWN_AFTER,
            AccountStatus::Starting | AccountStatus::Running => false,
        };
        if down {
            reasons.push(Reason {
                account: Some(account),
                ..Reason::new("connector_down")
            });
        }
    }
    let (status, code) = if reasons.is_empty() {
        ("ok", StatusCode::OK)
    } else {
        ("degraded", StatusCode::SERVICE_UNAVAILABLE)
    };
    let body = Health {
        status,
        reasons,
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: s.started.elapsed().as_secs(),
        certificate_sha256: s.tls.fingerprint(),
        last_seq,
    };
    (code, Json(body)).into_response()
}

/// The OpenAPI 3.1 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Answers `408` for a request still running after the deadline (a slow body, a stuck read).
async fn deadline(State(s): State<Service>, req: Request, next: Next) -> Response {
    // An attachment upload (up to 2 GB) streams for longer; its own size limit bounds it. A
    // backup of a large store, or its download, takes longer too (admins only), and so does a
    // first-run restore's upload and restore (setup code only).
    // An export streams for as long as the conversation takes (bounded by the client's pace).
    let path = req.uri().path();
    if path == "/api/v1/attachments"
        || path.starts_with("/api/v1/backups")
        || path.starts_with("/api/v1/setup/restore")
        || path == "/api/v1/system/update/bundle"
        || path.ends_with("/export.pdf")
        || path.ends_with("/export.json")
        || path.ends_with("/export.tar")
    {
        return next.run(req).await;
    }
    match tokio::time::timeout(s.options.request_timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            let mut res = ApiError::Timeout.into_response();
            res.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            res
        }
    }
}

async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Conversations must not linger in shared or browser caches (the web assets set their own).
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

macro_rules! routes {
    ($($method:ident $path:literal => $handler:expr),* $(,)?) => {
        /// Every route, `(method, path)` in OpenAPI spelling.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn routes() -> Router<Service> {
            Router::new()$(.route($path, $method($handler)))*
        }
    };
}

routes! {
    get "/api/v1/health" => health,
    get "/api/v1/openapi.json" => openapi,
    get "/api/v1/setup" => setup::state,
    post "/api/v1/setup" => setup::create,
    post "/api/v1/unlock" => unlock::not_sealed,
    post "/api/v1/setup/restore/upload" => restore::upload,
    post "/api/v1/setup/restore" => restore::restore,
    post "/api/v1/auth/login" => session::login,
    post "/api/v1/auth/logout" => session::logout,
    get "/api/v1/me" => session::me,
    post "/api/v1/ws/ticket" => session::ticket,
    get "/api/v1/ws" => ws::upgrade,
    get "/api/v1/accounts" => accounts::list,
    post "/api/v1/accounts" => accounts::create,
    patch "/api/v1/accounts/{account}" => accounts::update,
    delete "/api/v1/accounts/{account}" => accounts::remove,
    post "/api/v1/account-logins" => account_logins::begin,
    post "/api/v1/account-logins/{login}/code" => account_logins::code,
    post "/api/v1/account-logins/{login}/password" => account_logins::password,
    delete "/api/v1/account-logins/{login}" => account_logins::cancel,
    get "/api/v1/chats" => inbox::chats,
    get "/api/v1/chats/{chat}" => inbox::chat,
    get "/api/v1/chats/{chat}/messages" => inbox::messages,
    get "/api/v1/chats/{chat}/export.pdf" => export::pdf,
    get "/api/v1/chats/{chat}/export.json" => export::json,
    get "/api/v1/accounts/{account}/export.tar" => export::account,
    post "/api/v1/chats/{chat}/messages" => send::send,
    get "/api/v1/chats/{chat}/messages/{message}" => inbox::message,
    patch "/api/v1/chats/{chat}/messages/{message}" => send::edit,
    delete "/api/v1/chats/{chat}/messages/{message}" => send::delete,
    post "/api/v1/chats/{chat}/typing" => send::typing,
    get "/api/v1/outbox/{item}" => send::item,
    post "/api/v1/chats/{chat}/read" => inbox::mark_read,
    post "/api/v1/chats/{chat}/assign" => conversations::assign,
    post "/api/v1/chats/{chat}/status" => conversations::set_status,
    put "/api/v1/chats/{chat}/labels" => conversations::set_labels,
    get "/api/v1/chats/{chat}/activity" => conversations::activity,
    get "/api/v1/chats/{chat}/assignees" => conversations::assignees,
    get "/api/v1/chats/{chat}/notes" => notes::list,
    post "/api/v1/chats/{chat}/notes" => notes::create,
    delete "/api/v1/chats/{chat}/notes/{note}" => notes::delete,
    get "/api/v1/notes" => notes::search,
    get "/api/v1/labels" => conversations::labels,
    post "/api/v1/labels" => conversations::create_label,
    delete "/api/v1/labels/{label}" => conversations::delete_label,
    get "/api/v1/chats/{chat}/contact" => contact::contact,
    get "/api/v1/canned" => canned::list,
    post "/api/v1/canned" => canned::create,
    patch "/api/v1/canned/{id}" => canned::update,
    delete "/api/v1/canned/{id}" => canned::remove,
    get "/api/v1/search" => search::search,
    get "/api/v1/stats" => stats::stats,
    get "/api/v1/events" => events::events,
    get "/api/v1/chats/{chat}/messages/{message}/attachments" => files::list,
    get "/api/v1/files/{id}" => files::download,
    post "/api/v1/attachments" => files::upload,
    get "/api/v1/users" => admin::list_users,
    post "/api/v1/users" => admin::create_user,
    get "/api/v1/users/{user}" => admin::get_user,
    patch "/api/v1/users/{user}" => admin::update_user,
    delete "/api/v1/users/{user}" => admin::delete_user,
    post "/api/v1/users/{user}/password" => admin::reset_password,
    get "/api/v1/users/{user}/grants" => admin::get_grants,
    put "/api/v1/users/{user}/grants" => admin::set_grants,
    get "/api/v1/tokens" => admin::list_tokens,
    post "/api/v1/tokens" => admin::create_token,
    delete "/api/v1/tokens/{token}" => admin::revoke_token,
    get "/api/v1/backups" => backups::state,
    post "/api/v1/backups" => backups::create,
    put "/api/v1/backups/passphrase" => backups::set_passphrase,
    get "/api/v1/backups/{name}" => backups::download,
    get "/api/v1/system/update" => update::state,
    put "/api/v1/system/update/bundle" => update::upload,
    delete "/api/v1/system/update/bundle" => update::discard,
    post "/api/v1/system/update/install" => update::install,
    post "/api/v1/system/reboot" => update::reboot,
}

pub fn router(state: Service) -> Router {
    let body_limit = state.options.body_limit;
    // Telegram's deliveries: outside /api/v1 and its OpenAPI document, with a limit of their own.
    let telegram = Router::new()
        .route("/telegram/webhook/{account}", post(webhook::receive))
        .layer(DefaultBodyLimit::max(
            crate::channels::telegram::webhook::MAX_BODY,
        ));
    routes()
        .merge(telegram)
        // The browser inbox at `/` and `/assets/...` (outside /api/v1 and its document).
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), deadline))
        .layer(axum::middleware::from_fn(headers))
        .with_state(state)
}
