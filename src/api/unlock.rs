//! The sealed box's only face: the unlock page (sealed boot).
//!
//! A box whose master key is sealed by a passphrase (`lanbox key seal`) starts with nothing
//! open: no database, no connectors, nothing ingested. It serves the browser app, which finds
//! `sealed: true` in `GET /api/v1/setup` and shows the unlock form; `POST /api/v1/unlock`
//! with the passphrase opens the sealed key (argon2id, about a second on a Pi) and hands it to
//! whoever waits on [`Unlock::key`], which then opens the store and starts the service on the
//! same socket. Every other route answers `503` with the code `sealed`; `/api/v1/health` says
//! `sealed` too (so an update is not marked good while nobody has unlocked the box).
//!
//! The passphrase is the credential (only admins hold it), over HTTPS only. Attempts run one at
//! a time, and each wrong one doubles a wait before the next is heard (1 s up to 60 s).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Mutex, watch};

use super::ApiError;
use super::extract::Json;
use crate::store::StoreError;
use crate::store::seal::SecretKey;
use crate::store::sealed_key;

/// The unlock page's state: where the sealed key is, and where an opened key goes.
#[derive(Clone)]
pub struct Unlock {
    dir: PathBuf,
    fingerprint: String,
    started: Instant,
    key: watch::Sender<Option<SecretKey>>,
    /// Failures in a row and when the next attempt is heard; held across an attempt, so
    /// attempts run one at a time.
    throttle: Arc<Mutex<(u32, Option<Instant>)>>,
}

impl Unlock {
    pub fn new(dir: PathBuf, fingerprint: String) -> Unlock {
        Unlock {
            dir,
            fingerprint,
            started: Instant::now(),
            key: watch::channel(None).0,
            throttle: Arc::new(Mutex::new((0, None))),
        }
    }

    /// Resolves with the master key once someone has unlocked the box.
    pub async fn key(&self) -> SecretKey {
        let mut rx = self.key.subscribe();
        let got = rx
            .wait_for(|k| k.is_some())
            .await
            .expect("the sender lives in self");
        got.clone().expect("checked")
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockBody {
    passphrase: String,
}

fn sealed_error() -> ApiError {
    ApiError::Coded {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "sealed",
        message: "the box is sealed: an admin unlocks it with its passphrase on its web page".into(),
    }
}

async fn unlock(State(u): State<Unlock>, Json(body): Json<UnlockBody>) -> Result<Response, ApiError> {
    let mut throttle = u.throttle.lock().await;
    if let Some(at) = throttle.1
        && let Some(wait) = at.checked_duration_since(Instant::now())
    {
        return Err(ApiError::Throttled(wait));
    }
    if u.key.borrow().is_some() {
        return Ok((StatusCode::OK, axum::Json(json!({"status": "unlocked"}))).into_response());
    }
    let dir = u.dir.clone();
    let passphrase = zeroize::Zeroizing::new(body.passphrase);
    let opened = tokio::task::spawn_blocking(move || sealed_key::unseal(&dir, &passphrase))
        .await
        .map_err(|e| ApiError::Internal(format!("unlock task: {e}")))?;
    match opened {
        Ok(key) => {
            *throttle = (0, None);
            tracing::info!("the box was unlocked");
            u.key.send_replace(Some(key));
            // The page's next request goes on a new connection, to the service that replaces
            // this page on the same socket, not to this connection's unlock router.
            Ok((
                StatusCode::OK,
                [(axum::http::header::CONNECTION, "close")],
                axum::Json(json!({"status": "unlocked"})),
            )
                .into_response())
        }
        Err(StoreError::WrongPassphrase) => {
            throttle.0 += 1;
            let wait = Duration::from_secs(1 << (throttle.0 - 1).min(6)).min(Duration::from_secs(60));
            throttle.1 = Some(Instant::now() + wait);
            tracing::warn!(failures = throttle.0, "unlock: wrong passphrase");
            // 400 like a login's `invalid_credentials`: the browser takes 401 for "signed out".
            Err(ApiError::Coded {
                status: StatusCode::BAD_REQUEST,
                code: "wrong_passphrase",
                message: format!(
                    "wrong passphrase; the next attempt is heard in {} s",
                    wait.as_secs()
                ),
            })
        }
        Err(e) => Err(ApiError::Internal(e.to_string())),
    }
}

async fn setup(State(u): State<Unlock>) -> Response {
    axum::Json(json!({"needed": false, "sealed": true, "certificate_sha256": u.fingerprint})).into_response()
}

async fn health(State(u): State<Unlock>) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({
            "status": "sealed",
            "reasons": [{"code": "sealed"}],
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": u.started.elapsed().as_secs(),
            "certificate_sha256": u.fingerprint,
            "last_seq": null,
        })),
    )
        .into_response()
}

async fn everything_else() -> ApiError {
    sealed_error()
}

/// The routes of a sealed box: the browser app, the setup state (saying `sealed`), health,
/// the unlock call; `503 sealed` for the rest.
pub fn router(u: Unlock) -> Router {
    Router::new()
        .route("/api/v1/unlock", post(unlock))
        .route("/api/v1/setup", get(setup))
        .route("/api/v1/health", get(health))
        .merge(crate::web::router())
        .fallback(everything_else)
        .layer(axum::extract::DefaultBodyLimit::max(4096))
        .layer(axum::middleware::from_fn(super::headers))
        .with_state(u)
}

/// `POST /api/v1/unlock` on a box that is not sealed.
pub async fn not_sealed() -> ApiError {
    ApiError::Coded {
        status: StatusCode::CONFLICT,
        code: "not_sealed",
        message: "the box is not sealed (or already unlocked)".into(),
    }
}
