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
//! - [`admin`]: users, grants (admins only) and the caller's own API tokens.
//! - [`setup`]: first run, the first admin with the one-time setup code from the console.
//! - [`error`]: [`ApiError`] and its mapping to status codes and stable codes.
//! - `openapi.json`: the OpenAPI 3.1 document, served at `/api/v1/openapi.json`; a test checks
//!   it names exactly the routes of [`ROUTES`].
//!
//! Limits: request bodies are capped (`ServiceOptions::body_limit`) and a request that takes
//! longer than `ServiceOptions::request_timeout` (a client trickling its body, say) is answered
//! `408` and dropped. A WebSocket is out of the request's scope once upgraded.

pub mod accounts;
pub mod admin;
pub mod error;
pub mod events;
pub mod extract;
pub mod files;
pub mod inbox;
pub mod search;
pub mod send;
pub mod session;
pub mod setup;
pub mod stats;
pub mod webhook;
pub mod ws;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
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
    version: &'static str,
    uptime_s: u64,
    certificate_sha256: String,
    last_seq: u64,
}

async fn health(State(s): State<Service>) -> Result<Json<Health>, ApiError> {
    let last_seq = s.store.read(|r| r.last_seq()).await?;
    Ok(Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: s.started.elapsed().as_secs(),
        certificate_sha256: s.tls.fingerprint(),
        last_seq,
    }))
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
    // An attachment upload (up to 2 GB) streams for longer; its own size limit bounds it.
    if req.uri().path() == "/api/v1/attachments" {
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
    post "/api/v1/auth/login" => session::login,
    post "/api/v1/auth/logout" => session::logout,
    get "/api/v1/me" => session::me,
    post "/api/v1/ws/ticket" => session::ticket,
    get "/api/v1/ws" => ws::upgrade,
    get "/api/v1/accounts" => accounts::list,
    post "/api/v1/accounts" => accounts::create,
    patch "/api/v1/accounts/{account}" => accounts::update,
    delete "/api/v1/accounts/{account}" => accounts::remove,
    get "/api/v1/chats" => inbox::chats,
    get "/api/v1/chats/{chat}" => inbox::chat,
    get "/api/v1/chats/{chat}/messages" => inbox::messages,
    post "/api/v1/chats/{chat}/messages" => send::send,
    get "/api/v1/chats/{chat}/messages/{message}" => inbox::message,
    patch "/api/v1/chats/{chat}/messages/{message}" => send::edit,
    delete "/api/v1/chats/{chat}/messages/{message}" => send::delete,
    post "/api/v1/chats/{chat}/typing" => send::typing,
    get "/api/v1/outbox/{item}" => send::item,
    post "/api/v1/chats/{chat}/read" => inbox::mark_read,
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
