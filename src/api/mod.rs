//! The HTTP API under `/api/v1`: JSON over HTTPS, one error shape, every route behind an
//! authentication extractor and filtered by the caller's grants.
//!
//! - [`extract`]: [`crate::auth::Caller`] as an extractor (token, session cookie + Origin),
//!   and `Json`/`Query`/`Path` whose rejections keep the error shape.
//! - [`visible`]: grants filtering, the one place that decides what a caller sees.
//! - [`dto`]: the JSON shapes of chats, messages and their parts.
//! - [`session`], [`inbox`], [`send`], [`search`], [`stats`], [`events`], [`ws`]: the routes.
//! - [`admin`]: users, grants (admins only) and the caller's own API tokens.
//! - [`setup`]: first run, the first admin with the one-time setup code from the console.
//! - [`error`]: [`ApiError`] and its mapping to status codes and stable codes.
//! - `openapi.json`: the OpenAPI 3.1 document, served at `/api/v1/openapi.json`; a test checks
//!   it names exactly the routes of [`ROUTES`].
//!
//! Limits: request bodies are capped ([`ApiOptions::body_limit`]) and a request that takes
//! longer than [`ApiOptions::request_timeout`] (a client trickling its body, say) is answered
//! `408` and dropped. A WebSocket is out of the request's scope once upgraded.

pub mod accounts;
pub mod admin;
pub mod dto;
pub mod error;
pub mod events;
pub mod extract;
pub mod inbox;
pub mod search;
pub mod send;
pub mod session;
pub mod setup;
pub mod stats;
pub mod visible;
pub mod webhook;
pub mod ws;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde::Serialize;

pub use error::ApiError;

use crate::auth::{Auth, AuthOptions};
use crate::channels::telegram::poller::PollerConfig;
use crate::channels::telegram::pollers::Pollers;
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
    /// How Telegram accounts poll and back off.
    pub pollers: PollerConfig,
    /// Sending limits, retries and timeouts (`[outbox]`).
    pub outbox: crate::outbox::OutboxOptions,
    /// Media fetching, storage and S3 sync (`[attachments]`, `[s3]`).
    pub attachments: crate::attachments::AttachmentOptions,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            body_limit: 64 << 10,
            request_timeout: Duration::from_secs(30),
            auth: AuthOptions::default(),
            live: LiveOptions::default(),
            pollers: PollerConfig::default(),
            outbox: crate::outbox::OutboxOptions::default(),
            attachments: crate::attachments::AttachmentOptions::default(),
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
    /// Sending; its per-account senders are started by `app::serve` (or a test).
    pub outbox: crate::outbox::Outbox,
    /// Media files: fetching, storage, S3 sync, signed downloads; its background work is
    /// started by `app::serve` (or a test).
    pub attachments: crate::attachments::Attachments,
    /// The admin system page's storage and queue figures, the costly ones counted at most
    /// every few seconds.
    pub system_stats: Arc<crate::attachments::stats::StatsCache>,
    /// One poller (or webhook keeper) per Telegram account; started by `app::serve`, a test,
    /// or the accounts API when an account is added or changed.
    pub pollers: Pollers,
    /// The shared HTTP client for Telegram (connection pool, rustls).
    pub http: reqwest::Client,
    /// First run: the one-time setup code while the box has no user (see [`setup`]).
    pub setup: Arc<setup::SetupGate>,
    /// Stops every poller ([`AppState::stop_channels`]).
    channels_stop: Arc<tokio::sync::watch::Sender<bool>>,
    pub options: Arc<ApiOptions>,
}

impl AppState {
    /// Asks every poller to stop ([`Pollers::join`] waits for them).
    pub fn stop_channels(&self) {
        self.channels_stop.send_replace(true);
    }

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
        crate::outbox::Outbox::ensure_tables(&store).await?;
        // One index hook for received and sent messages alike.
        let index = Arc::new(SearchIndex::new());
        let outbox = crate::outbox::Outbox::new(store.clone(), index.clone(), options.outbox.clone());
        let attachments =
            crate::attachments::Attachments::open_default_http(store.clone(), options.attachments.clone())
                .await?;
        outbox.set_attachments(Arc::new(crate::attachments::outbox::ForOutbox(
            attachments.clone(),
        )));
        let pipeline = Pipeline::new(store.clone(), index);
        let http = crate::channels::telegram::client::http_client().map_err(|e| StoreError::Io {
            path: "HTTP client".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let (channels_stop, stop_rx) = tokio::sync::watch::channel(false);
        let setup = Arc::new(setup::SetupGate::open(&store).await?);
        let pollers = Pollers::new(pipeline.clone(), http.clone(), options.pollers.clone(), stop_rx);
        Ok(AppState {
            attachments,
            system_stats: Arc::default(),
            pipeline,
            pollers,
            http,
            setup,
            channels_stop: Arc::new(channels_stop),
            outbox,
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

        fn routes() -> Router<AppState> {
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
    get "/api/v1/chats/{chat}/messages/{message}/attachments" => crate::attachments::http::list,
    get "/api/v1/files/{id}" => crate::attachments::http::download,
    post "/api/v1/attachments" => crate::attachments::http::upload,
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

pub fn router(state: AppState) -> Router {
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
