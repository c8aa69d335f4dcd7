//! The HTTP API under `/api/v1`: the router, its shared state, and the error mapping.
//!
//! Handlers take [`AppState`] through axum's `State`; authentication will live in extractors so
//! no handler can forget it.

pub mod error;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

pub use error::ApiError;

use crate::store::Store;
use crate::system::tls::CertStore;

/// Shared state of every handler: a cheap-to-clone handle.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tls: Arc<CertStore>,
    pub started: Instant,
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

async fn not_found() -> ApiError {
    ApiError::NotFound
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .fallback(not_found)
        .layer(axum::middleware::map_response(|mut res: axum::response::Response| async move {
            res.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=31536000"),
            );
            res.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            res
        }))
        .with_state(state)
}
