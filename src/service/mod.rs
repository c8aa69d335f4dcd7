//! The running service, assembled in one place: the store's subsystems (ingest pipeline,
//! search index hook, live hub, auth, outbox, attachments, Telegram pollers, the first-run
//! setup gate) as one cheap-to-clone handle, [`Service`], and what starts and stops their
//! background work ([`Service::start`], [`Service::shutdown`]).
//!
//! Below the HTTP layer: `api` receives a `Service` as its state and calls into it;
//! nothing here knows about routes, status codes or JSON. `app::serve` (what
//! `lanbox serve` and the integration tests run) opens it, starts it, serves it and shuts it
//! down.
//!
//! - [`lifecycle`]: starting the background work, and an account's running parts (poller or webhook keeper, outbox sender, status
//!   feed) started, restarted and stopped as the account is added, changed or removed, and
//!   account release.
//! - [`typing`]: the other side typing in a user account's chats, to the live feed.
//! - [`logins`]: Telegram user-account logins in progress (phone -> code -> 2FA password),
//!   bounded and expiring, and the account's connector started when one succeeds.

pub mod lifecycle;
pub mod logins;
pub mod typing;
pub mod updates;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::attachments::{AttachmentOptions, Attachments};
use crate::auth::setup::SetupGate;
use crate::auth::{Auth, AuthOptions};
use crate::backup::{BackupOptions, Backups};
use crate::channels::mtproto::UserConnectors;
use crate::channels::telegram::poller::PollerConfig;
use crate::channels::telegram::pollers::Pollers;
use crate::ingest::Pipeline;
use crate::live::retention::Retention;
use crate::live::{Hub, LiveOptions};
use crate::outbox::{Outbox, OutboxOptions};
use crate::search::SearchIndex;
use crate::store::{Store, StoreError};
use crate::system::tls::CertStore;

/// Tunables of the service (from `lanbox.toml` through `Config::service_options`, or a test).
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Largest HTTP request body, bytes.
    pub body_limit: usize,
    /// Longest an HTTP request may take, reading its body included.
    pub request_timeout: Duration,
    pub auth: AuthOptions,
    pub live: LiveOptions,
    /// How Telegram accounts poll and back off.
    pub pollers: PollerConfig,
    /// Sending limits, retries and timeouts (`[outbox]`).
    pub outbox: OutboxOptions,
    /// Media fetching, storage and S3 sync (`[attachments]`, `[s3]`).
    pub attachments: AttachmentOptions,
    /// How much of the event log is kept (`[events]`).
    pub retention: Retention,
    /// Where backups go, how many are kept, how often they run (`[backup]`).
    pub backup: BackupOptions,
    /// PDF transcripts: fonts directory, time zone, the box's name (`[export]`).
    pub export: crate::export::ExportOptions,
    /// Updates through RAUC (`[update]`).
    pub update: crate::system::update::UpdateOptions,
    /// The box's Telegram application that user accounts log in with (`[telegram]`); `None`
    /// when it has none (then user logins are refused, saying so).
    pub telegram_app: Option<crate::channels::mtproto::TelegramApp>,
    /// User-account logins in progress at once.
    pub user_logins_max: usize,
    /// How long a user-account login may take, from its start.
    pub user_login_ttl: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            body_limit: 64 << 10,
            request_timeout: Duration::from_secs(30),
            auth: AuthOptions::default(),
            live: LiveOptions::default(),
            pollers: PollerConfig::default(),
            outbox: OutboxOptions::default(),
            attachments: AttachmentOptions::default(),
            retention: Retention::default(),
            backup: BackupOptions::default(),
            export: crate::export::ExportOptions::default(),
            update: crate::system::update::UpdateOptions::default(),
            telegram_app: None,
            user_logins_max: logins::MAX_PENDING,
            user_login_ttl: logins::LOGIN_TTL,
        }
    }
}

/// The running service: a cheap-to-clone handle with named parts.
#[derive(Clone)]
pub struct Service {
    pub store: Store,
    pub tls: Arc<CertStore>,
    pub started: Instant,
    pub pipeline: Pipeline,
    pub auth: Auth,
    pub hub: Hub,
    /// Sending; its per-account senders start in [`Service::start`] and as accounts change.
    pub outbox: Outbox,
    /// Media files: fetching, storage, S3 sync, signed downloads.
    pub attachments: Attachments,
    /// The admin system page's storage and queue figures, the costly ones counted at most
    /// every few seconds.
    pub system_stats: Arc<crate::attachments::stats::StatsCache>,
    /// Encrypted backups: now, listed, scheduled.
    pub backups: Backups,
    /// Exports running now, at most [`crate::export::MAX_RUNNING`] at once.
    pub exports: crate::export::Exports,
    /// One poller (or webhook keeper) per Telegram account.
    pub pollers: Pollers,
    /// One MTProto connector per Telegram user account.
    pub users: UserConnectors,
    /// Telegram user-account logins in progress.
    pub logins: logins::Logins,
    /// The shared HTTP client for Telegram (connection pool, rustls).
    pub http: reqwest::Client,
    /// First run: the one-time setup code while the box has no user.
    pub setup: Arc<SetupGate>,
    /// This box's update: a staged bundle, its install, the reboot.
    pub updates: updates::Updates,
    /// Stops every background task of the service ([`Service::shutdown`]).
    stop: Arc<watch::Sender<bool>>,
    /// Set when the box should stop and start again on its data directory (a first-run
    /// restore staged a backup there): [`Service::request_restart`].
    restart: Arc<watch::Sender<bool>>,
    /// Turns for reading a page of the event log for a WebSocket `resume`: bounds the pages
    /// held in memory when many clients resume at once.
    pub replays: Arc<tokio::sync::Semaphore>,
    pub options: Arc<ServiceOptions>,
}

impl Service {
    /// Opens every subsystem over `store` (creating their tables). Starts the live hub, so it
    /// needs a tokio runtime; nothing polls or sends until [`Service::start`].
    pub async fn open(
        store: Store,
        tls: Arc<CertStore>,
        options: ServiceOptions,
    ) -> Result<Service, StoreError> {
        crate::auth::users::ensure_tables(&store).await?;
        let hub = Hub::start(store.clone(), options.live.queue).await?;
        Outbox::ensure_tables(&store).await?;
        // One index hook for received and sent messages alike.
        let index = Arc::new(SearchIndex::new());
        let outbox = Outbox::new(store.clone(), index.clone(), options.outbox.clone());
        let attachments = Attachments::open_default_http(store.clone(), options.attachments.clone()).await?;
        outbox.set_attachments(Arc::new(crate::attachments::outbox::ForOutbox(
            attachments.clone(),
        )));
        let pipeline = Pipeline::new(store.clone(), index);
        let http = crate::channels::telegram::client::http_client().map_err(|e| StoreError::Io {
            path: "HTTP client".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let (stop, stop_rx) = watch::channel(false);
        let setup = Arc::new(SetupGate::open(&store).await?);
        let users = UserConnectors::new(pipeline.clone(), stop_rx.clone());
        outbox.set_users(users.clone());
        let pollers = Pollers::new(pipeline.clone(), http.clone(), options.pollers.clone(), stop_rx);
        let backups = Backups::new(store.clone(), options.backup.clone()).map_err(|e| StoreError::Io {
            path: "backup options".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let updates = updates::Updates::new(options.update.clone(), store.dir(), hub.clone());
        Ok(Service {
            updates,
            attachments,
            backups,
            system_stats: Arc::default(),
            exports: crate::export::Exports::default(),
            pipeline,
            pollers,
            users,
            logins: logins::Logins::new(options.user_logins_max, options.user_login_ttl),
            http,
            setup,
            stop: Arc::new(stop),
            restart: Arc::new(watch::channel(false).0),
            replays: Arc::new(tokio::sync::Semaphore::new(4)),
            outbox,
            auth: Auth::new(store.clone(), options.auth.clone()),
            hub,
            store,
            tls,
            started: Instant::now(),
            options: Arc::new(options),
        })
    }

    /// Asks whoever runs the service (`lanbox serve`) to stop it and start the box again.
    pub fn request_restart(&self) {
        self.restart.send_replace(true);
    }

    /// Whether a restart was asked for.
    pub fn restart_requested(&self) -> bool {
        *self.restart.borrow()
    }

    /// Resolves once a restart is asked for.
    pub async fn restart_wanted(&self) {
        let mut rx = self.restart.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// Stops the service: closes live sockets (they were upgraded out of the HTTP server's
    /// graceful drain) and asks every background task to stop. [`Service::join`] waits.
    pub fn shutdown(&self) {
        self.hub.shutdown();
        self.stop.send_replace(true);
    }

    /// Waits for the senders and pollers to stop after [`Service::shutdown`]. A message in
    /// flight stays "sending" and is reported at the next start (see `crate::outbox`).
    pub async fn join(&self) {
        self.outbox.shutdown().await;
        for (account, reason) in self.pollers.join().await {
            tracing::info!(account, %reason, "poller stopped");
        }
        for (account, reason) in self.users.join().await {
            tracing::info!(account, %reason, "user account connector stopped");
        }
    }
}
