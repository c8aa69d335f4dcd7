//! Attachments: files of incoming messages fetched from Telegram in the background, encrypted
//! while they stream, kept in a local store and (when configured) synced to an S3-compatible
//! bucket, served to browsers through lanbox-signed URLs with Range support.
//!
//! - [`config`]: the `[attachments]` and `[s3]` sections.
//! - [`crypt`]: the chunked AEAD file format (any range decrypts alone, truncation detected).
//! - [`tables`]: this subsystem's redb tables: records, a message's attachments, the durable
//!   fetch, sync and delete queues, the event-log cursor.
//! - [`local`]: encrypted files under `DIR/attachments/` (the embedded default).
//! - [`follow`]: follows the event log from its own durable cursor and queues the files of
//!   new media messages (and drops those of deleted ones).
//! - [`fetch`]: downloads queued files with bounded concurrency and records them with an
//!   `attachment.ready` event in the same transaction.
//! - [`sink`]: encrypts a stream to the local store, teeing it into a streaming S3 upload.
//! - [`s3`] and [`sync`]: a small SigV4 client (rusty-s3 signing over the shared reqwest) and
//!   the durable upload/delete queue that survives restarts and outages.
//! - [`read`]: plaintext of a stored attachment, by range, from local disk or the bucket.
//! - [`signing`]: the URL signing key (wrapped by the master key) and signed URLs.
//! - [`upload`]: files the team sends, streamed into the spool encrypted.
//! - [`stats`]: storage use and queue backlogs for the admin system page (read-only).
//!
//! The HTTP routes (downloads, listings, uploads) are `api::files`.
//!
//! Nothing here logs file bytes, names or message text; errors carry IDs and sizes only.

pub mod config;
pub mod crypt;
pub mod fetch;
pub mod follow;
pub mod local;
pub mod outbox;
pub mod read;
pub mod s3;
pub mod signing;
pub mod sink;
pub mod stats;
pub mod sync;
pub mod tables;
pub mod upload;

use std::sync::Arc;

use redb::ReadableTable;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::store::{Store, StoreError};
pub use local::LocalStore;
pub use s3::{S3Config, S3Error};
pub use tables::{AttachmentRecord, Role, State};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("i/o on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("attachment file: {0}")]
    Crypt(#[from] crypt::CryptError),
    #[error("S3: {0}")]
    S3(#[from] S3Error),
    #[error("telegram: {0}")]
    Telegram(String),
    #[error("attachment {0} not found")]
    NotFound(u64),
    #[error("attachment {0} is not stored (yet)")]
    NotReady(u64),
    #[error("lanbox is shutting down")]
    Stopped,
}

/// Tunables, from the `[attachments]` and `[s3]` config sections.
#[derive(Debug, Clone)]
pub struct AttachmentOptions {
    /// Downloads running at once. 0 runs no background follower or fetches at all (files
    /// are then recorded and fetched only when someone asks for them): tests that step the
    /// follower by hand use it; `lanbox.toml` allows 1 to 16.
    pub workers: usize,
    /// Largest file a bot may download from the API bases in `limited_api_bases`.
    pub bot_download_limit: u64,
    /// Bot API servers that enforce `bot_download_limit` (Telegram's own); a self-hosted
    /// server is not listed and its files are fetched in full.
    pub limited_api_bases: Vec<String>,
    /// Largest upload accepted for sending.
    pub upload_limit: u64,
    /// How long a signed download URL stays valid.
    pub url_ttl: Duration,
    /// Local bytes kept as a cache once files are in S3.
    pub cache_bytes: u64,
    /// First retry delay after a failure; doubles up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Fetch attempts before an attachment is marked failed.
    pub max_attempts: u32,
    pub s3: Option<S3Config>,
}

impl Default for AttachmentOptions {
    fn default() -> Self {
        AttachmentOptions {
            workers: 2,
            bot_download_limit: 20 << 20,
            limited_api_bases: vec!["https://api.telegram.org".into()],
            upload_limit: 2 << 30,
            url_ttl: Duration::from_secs(3600),
            cache_bytes: 1 << 30,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
            max_attempts: 8,
            s3: None,
        }
    }
}

/// The attachment subsystem: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Attachments {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    local: LocalStore,
    opts: AttachmentOptions,
    http: reqwest::Client,
    s3: Option<s3::S3>,
    signer: signing::UrlSigner,
    wake_fetch: Notify,
    wake_sync: Notify,
}

impl std::fmt::Debug for Attachments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachments")
            .field("dir", &self.inner.local.dir())
            .field("s3", &self.inner.s3.is_some())
            .finish_non_exhaustive()
    }
}

impl Attachments {
    /// Opens the local store under the data directory, creates the tables and the URL signing
    /// key. `http` is the shared client for Telegram (and for S3 when no TLS override applies).
    pub async fn open(
        store: Store,
        opts: AttachmentOptions,
        http: reqwest::Client,
    ) -> Result<Attachments, AttachmentError> {
        let local = LocalStore::open(store.dir().join("attachments"))?;
        store
            .write(1, |ctx| {
                tables::ensure(ctx.txn())?;
                // A store with a log but no cursor had messages before this subsystem (an
                // upgraded box): follow from the log's end; older media are fetched on demand
                // (see `follow`), never by walking the whole log.
                let last = ctx.events_table().last()?.map(|(k, _)| k.value());
                let mut t = tables::Tables::open(ctx.txn())?;
                if t.meta.get(tables::META_CURSOR)?.is_none() {
                    t.set_cursor(last.unwrap_or(0))?;
                }
                Ok(())
            })
            .await?;
        let signer = signing::UrlSigner::load(&store).await?;
        let s3 = match &opts.s3 {
            Some(cfg) => Some(s3::S3::new(cfg.clone())?),
            None => None,
        };
        Ok(Attachments {
            inner: Arc::new(Inner {
                store,
                local,
                opts,
                http,
                s3,
                signer,
                wake_fetch: Notify::new(),
                wake_sync: Notify::new(),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn local(&self) -> &LocalStore {
        &self.inner.local
    }

    pub fn options(&self) -> &AttachmentOptions {
        &self.inner.opts
    }

    pub fn s3(&self) -> Option<&s3::S3> {
        self.inner.s3.as_ref()
    }

    pub fn signer(&self) -> &signing::UrlSigner {
        &self.inner.signer
    }

    /// Starts the background work (event follower, fetch workers, S3 sync) until `stop`.
    pub fn start(&self, stop: watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if self.inner.opts.workers > 0 {
            tasks.push(tokio::spawn(fetch::run(self.clone(), stop.clone())));
        }
        if self.inner.s3.is_some() {
            tasks.push(tokio::spawn(sync::run(self.clone(), stop)));
        }
        tasks
    }

    /// One attachment's record.
    pub async fn record(&self, id: u64) -> Result<Option<AttachmentRecord>, AttachmentError> {
        Ok(self
            .inner
            .store
            .read(move |r| tables::read_record(r.txn(), id))
            .await?)
    }

    fn backoff(&self, attempts: u32) -> Duration {
        backoff(self.inner.opts.retry_base, self.inner.opts.retry_max, attempts)
    }
}

/// `base` doubled per attempt, capped at `max`.
pub(crate) fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32 << attempts.min(16)).min(max)
}

/// Unix seconds now.
pub(crate) fn now() -> u64 {
    crate::store::ctx::unix_now().max(0) as u64
}

/// Waits until `stop` says stop (or its sender is gone).
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl AttachmentError {
    /// As a store error, for callers whose error type is the store's (API state set-up).
    pub fn into_store(self) -> StoreError {
        match self {
            AttachmentError::Store(e) => e,
            AttachmentError::Io { path, source } => StoreError::Io { path, source },
            other => StoreError::Io {
                path: "attachments".into(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

impl Attachments {
    /// [`Attachments::open`] with lanbox's shared Telegram HTTP client, for the API state.
    pub async fn open_default_http(store: Store, opts: AttachmentOptions) -> Result<Attachments, StoreError> {
        let http = crate::channels::telegram::client::http_client().map_err(|e| StoreError::Io {
            path: "HTTP client".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Attachments::open(store, opts, http)
            .await
            .map_err(AttachmentError::into_store)
    }
}
