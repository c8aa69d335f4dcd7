//! The HTTP API under `/api/v1`: JSON over HTTPS, one error shape, every route behind an
//! authentication extractor and filtered by the caller's grants.
//!
//! - [`extract`]: [`crate::auth::Caller`] as an extractor (token, session cookie + Origin),
//!   and `Json`/`Query`/`Path` whose rejections keep the error shape.
//! - [`visible`]: grants filtering, the one place that decides what a caller sees.
//! - [`dto`]: the JSON shapes of chats, messages and their parts.
//! - [`session`], [`inbox`], [`search`], [`stats`], [`events`], [`ws`]: the routes.
//! - [`error`]: [`ApiError`] and its mapping to status codes and stable codes.
//! - `openapi.json`: the OpenAPI 3.1 document, served at `/api/v1/openapi.json`; a test checks
//!   it names exactly the routes of [`ROUTES`].
//!
//! Limits: request bodies are capped ([`ApiOptions::body_limit`]) and a request that takes
//! longer than [`ApiOptions::request_timeout`] (a client trickling its body, say) is answered
//! `408` and dropped. A WebSocket is out of the request's scope once upgraded.

pub mod dto;
pub mod error;
pub mod events;
pub mod extract;
pub mod inbox;
pub mod search;
pub mod session;
pub mod stats;
pub mod visible;
pub mod ws;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use error::ApiError;

use crate::auth::{Auth, AuthOptions};
use crate::ingest::Pipeline;
use crate::live::{Hub, LiveOptions};
use crate::search::SearchIndex;
use crate::store::{Store, StoreError};
use crate::system::tls::CertStore;

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Largest request body, bytes.
    pub body_limit: usize,
    /// Longest a request may take, reading its body included.
    pub request_timeout: Duration,
    pub auth: AuthOptions,
    pub live: LiveOptions,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            body_limit: 64 << 10,
            request_timeout: Duration::from_secs(30),
            auth: AuthOptions::default(),
            live: LiveOptions::default(),
        }
    }
}

/// Shared state of every handler: a cheap-to-clone handle.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tls: Arc<CertStore>,
    pub started: Instant,
    pub pipeline: Pipeline,
    pub auth: Auth,
    pub hub: Hub,
    pub options: Arc<ApiOptions>,
}

impl AppState {
    /// State with default options. Starts the live hub, so it needs a tokio runtime.
    pub async fn new(store: Store, tls: Arc<CertStore>) -> Result<AppState, StoreError> {
        AppState::with_options(store, tls, ApiOptions::default()).await
    }

    pub async fn with_options(
        store: Store,
        tls: Arc<CertStore>,
        options: ApiOptions,
    ) -> Result<AppState, StoreError> {
        crate::auth::users::ensure_tables(&store).await?;
        let hub = Hub::start(store.clone(), options.live.queue).await?;
        Ok(AppState {
            pipeline: Pipeline::new(store.clone(), Arc::new(SearchIndex::new())),
            auth: Auth::new(store.clone(), options.auth.clone()),
            hub,
            store,
            tls,
            started: Instant::now(),
            options: Arc::new(options),
        })
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_s: u64,
    certificate_sha256: String,
    last_seq: u64,
}

async fn health(State(s): State<AppState>) -> Result<Json<Health>, ApiError> {
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
async fn deadline(State(s): State<AppState>, req: Request, next: Next) -> Response {
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
    // Conversations must not linger in shared or browser caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

macro_rules! routes {
    ($($method:ident $path:literal => $handler:expr),* $(,)?) => {
        /// Every route, `(method, path)` in OpenAPI spelling.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn routes() -> Router<AppState> {
            Router::new()$(.route($path, $method($handler)))*
        }
    };
}

routes! {
    get "/api/v1/health" => health,
    get "/api/v1/openapi.json" => openapi,
    post "/api/v1/auth/login" => session::login,
    post "/api/v1/auth/logout" => session::logout,
    get "/api/v1/me" => session::me,
    post "/api/v1/ws/ticket" => session::ticket,
    get "/api/v1/ws" => ws::upgrade,
    get "/api/v1/accounts" => inbox::accounts,
    get "/api/v1/chats" => inbox::chats,
    get "/api/v1/chats/{chat}" => inbox::chat,
    get "/api/v1/chats/{chat}/messages" => inbox::messages,
    post "/api/v1/chats/{chat}/messages" => inbox::send,
    get "/api/v1/chats/{chat}/messages/{message}" => inbox::message,
    post "/api/v1/chats/{chat}/read" => inbox::mark_read,
    get "/api/v1/search" => search::search,
    get "/api/v1/stats" => stats::stats,
    get "/api/v1/events" => events::events,
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.options.body_limit;
    routes()
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), deadline))
        .layer(axum::middleware::from_fn(headers))
        .with_state(state)
}
