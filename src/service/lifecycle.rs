//! The service's background work ([`Service::start`]), and an account's running parts, which
//! follow the account: adding one starts its poller (or webhook
//! keeper), its outbox sender and its status feed; changing its mode restarts them; removing
//! it stops them, and a release deletes what only it received and destroys its key.
//!
//! The admin API and `lanbox serve` both come through here, so an account added in the
//! browser and one found in the store at start run the same way.

use tokio::sync::watch;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

use super::Service;
use crate::attachments::Attachments;
use crate::channels::mtproto::{self, LoginError, UserOptions};
use crate::channels::telegram::bots::{self, AccountError, AccountSummary, AddBot};
use crate::channels::telegram::poller::AccountStatus;
use crate::channels::telegram::webhook;
use crate::ingest::Pipeline;
use crate::ingest::release::Released;
use crate::outbox::OutboxError;
use crate::store::StoreError;

/// What can go wrong while an account's parts start or stop. The API maps it to HTTP in
/// `api::error`, through the errors it wraps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A Telegram user-account login or logout step failed.
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error(
        "this box has no Telegram application: set [telegram] api_id and api_hash (see docs/user-accounts.md)"
    )]
    NoTelegramApp,
    #[error("{0}")]
    BadPhone(&'static str),
    #[error("no such login in progress: it finished, was cancelled or expired; start again")]
    LoginNotFound,
    #[error("this login is busy with another step; wait for its answer")]
    LoginBusy,
    #[error("{0} logins are in progress already; finish or cancel one")]
    TooManyLogins(usize),
}

/// How long removing a user account waits for Telegram to end its session.
const LOGOUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// How an account receives its updates.
pub enum Receive {
    Polling,
    /// At `base` (public `https://host[:port]`), with this box's certificate uploaded to
    /// Telegram when `self_signed`.
    Webhook {
        base: String,
        self_signed: bool,
    },
}

/// A status as the API and the live feed name it.
pub fn status_parts(s: Option<&AccountStatus>) -> (&'static str, Option<String>) {
    match s {
        None => ("not_running", None),
        Some(AccountStatus::Starting) => ("starting", None),
        Some(AccountStatus::Running) => ("online", None),
        Some(AccountStatus::BackingOff { reason, .. }) => ("backing_off", Some(reason.clone())),
        Some(AccountStatus::Stopped { reason }) => ("stopped", Some(reason.to_string())),
    }
}

/// A user account's connector status, named as [`status_parts`] names a bot's.
pub fn user_status_parts(s: Option<&mtproto::UserStatus>) -> (&'static str, Option<String>) {
    match s {
        None => ("not_running", None),
        Some(mtproto::UserStatus::Starting) => ("starting", None),
        Some(mtproto::UserStatus::Live { .. }) => ("online", None),
        Some(mtproto::UserStatus::BackingOff { reason, .. }) => ("backing_off", Some(reason.clone())),
        Some(mtproto::UserStatus::Stopped { reason }) => ("stopped", Some(reason.clone())),
    }
}

impl Service {
    /// Starts the background work: event-log retention, media fetching and S3 sync, then the
    /// release of any account whose release a crash interrupted (before anything polls
    /// again), then every account's poller, sender and status feed. Returns the number of
    /// accounts started.
    pub async fn start(&self) -> Result<usize, AnyError> {
        let stopped = self.stop.subscribe();
        crate::live::retention::spawn(
            self.store.clone(),
            self.options.retention.clone(),
            stopped.clone(),
        );
        self.attachments.start(stopped.clone());
        tokio::spawn(forward_store_status(
            self.store.watch_health(),
            self.hub.clone(),
            stopped.clone(),
        ));
        tokio::spawn(super::typing::forward(
            self.users.typing(),
            self.store.clone(),
            self.hub.clone(),
            stopped.clone(),
        ));
        self.backups.start(stopped);
        for account in crate::ingest::release::pending(&self.store)? {
            tracing::info!(account, "finishing an interrupted release");
            release_account(&self.pipeline, &self.attachments, account).await?;
        }
        if self.store.scrub_pending()? {
            tracing::info!("finishing an interrupted overwrite of free pages");
            self.store.scrub_free_pages().await?;
        }
        let started = self.pollers.start_all().await?;
        tracing::info!(accounts = started, "telegram pollers started");
        let users = self.users.start_all().await?;
        tracing::info!(accounts = users, "telegram user accounts started");
        for account in self.users.accounts() {
            self.forward_user_status(account);
        }
        let senders = self.outbox.start_all().await?;
        tracing::info!(accounts = senders, "outbox senders started");
        for (account, _) in self.pollers.statuses() {
            self.forward_status(account);
        }
        Ok(started)
    }

    /// Adds a bot account (its token is checked with `getMe` first) and starts it.
    pub async fn add_bot(&self, spec: AddBot) -> Result<AccountSummary, LifecycleError> {
        let added = bots::add(&self.store, self.http.clone(), spec).await?;
        self.start_account(added.id).await?;
        Ok(added)
    }

    /// (Re)starts what an account runs: its poller or webhook keeper, its outbox sender, and
    /// the status feed.
    pub async fn start_account(&self, id: u64) -> Result<(), LifecycleError> {
        self.pollers.start(id).await?;
        self.outbox.start(id).await?;
        self.forward_status(id);
        Ok(())
    }

    /// Switches an account between polling and a webhook, then restarts it.
    pub async fn set_receive(&self, id: u64, how: Receive) -> Result<(), LifecycleError> {
        match how {
            Receive::Webhook { base, self_signed } => {
                let cert = self_signed.then(|| self.tls.cert_pem().into_bytes());
                webhook::switch_to_webhook(&self.store, self.http.clone(), id, &base, cert).await?;
            }
            Receive::Polling => {
                webhook::switch_to_polling(&self.store, self.http.clone(), id).await?;
            }
        }
        self.start_account(id).await
    }

    /// Stops an account and removes it (its token is erased). With `release`, its messages,
    /// files and key go too, in the background (it may take minutes on a large account; a
    /// crash resumes it at the next start).
    ///
    /// A Telegram user account is logged out: its session is terminated on Telegram
    /// (`auth.logOut`) before it is erased here; if Telegram cannot be reached, nothing changes
    /// and the removal can be tried again.
    pub async fn remove_account(&self, id: u64, release: bool) -> Result<(), LifecycleError> {
        let rec = self.store.read(move |r| r.account(id)).await?;
        if let Some(rec) = rec.filter(|r| r.channel == mtproto::CHANNEL) {
            let live = serde_json::from_str::<UserOptions>(&rec.options)
                .is_ok_and(|o| o.removed_at.is_none())
                && rec.secret.is_some();
            if !live {
                return Err(AccountError::NotFound(id).into());
            }
            self.users.stop(id);
            // Bounded: an unreachable Telegram must not hold the request (or the account's
            // connector, stopped meanwhile) indefinitely.
            let done = tokio::time::timeout(LOGOUT_TIMEOUT, mtproto::logout(&self.store, id))
                .await
                .unwrap_or_else(|_| Err(LoginError::Network("Telegram did not answer in time".into())));
            if let Err(e) = done {
                // Still signed in: it keeps receiving.
                self.start_user(id);
                return Err(e.into());
            }
            self.outbox.stop(id);
        } else {
            self.pollers.stop(id);
            self.outbox.stop(id);
            bots::remove(&self.store, id).await?;
        }
        if release {
            let (pipeline, attachments) = (self.pipeline.clone(), self.attachments.clone());
            tokio::spawn(async move {
                if let Err(e) = release_account(&pipeline, &attachments, id).await {
                    tracing::error!(account = id, error = %e, "release failed; it resumes at the next start");
                }
            });
        }
        Ok(())
    }

    /// Tells live clients whenever an account's connection to Telegram changes, for as long
    /// as its poller runs.
    pub fn forward_status(&self, account: u64) {
        let Some(rx) = self.pollers.watch(account) else {
            return;
        };
        tokio::spawn(forward(account, rx, self.hub.clone(), status_parts));
    }
}

impl Service {
    /// Starts a user account's connector (after its login) and tells live clients its status.
    pub fn start_user(&self, account: u64) {
        self.users.start(account);
        self.forward_user_status(account);
    }

    /// Tells live clients whenever a user account's connection changes, as
    /// [`Service::forward_status`] does for bots.
    pub fn forward_user_status(&self, account: u64) {
        let Some(rx) = self.users.watch(account) else {
            return;
        };
        tokio::spawn(forward(account, rx, self.hub.clone(), user_status_parts));
    }
}

/// Publishes an account's connection status, as `parts` words it, at once and on each change.
async fn forward<T>(
    account: u64,
    mut rx: watch::Receiver<T>,
    hub: crate::live::Hub,
    parts: fn(Option<&T>) -> (&'static str, Option<String>),
) {
    loop {
        let (status, detail) = parts(Some(&*rx.borrow_and_update()));
        hub.publish(crate::live::Ephemeral::AccountStatus {
            account,
            status: status.into(),
            detail,
        });
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Tells live clients whenever the store's health reasons change (a full disk and its end,
/// damage met), until the service stops. Counters that grow within one state (failures,
/// damaged records) send nothing more.
async fn forward_store_status(
    mut rx: watch::Receiver<crate::store::StoreHealth>,
    hub: crate::live::Hub,
    mut stop: watch::Receiver<bool>,
) {
    let mut last: Vec<&'static str> = Vec::new();
    loop {
        let reasons = rx.borrow_and_update().reasons();
        if reasons != last {
            hub.publish(crate::live::Ephemeral::StoreStatus {
                reasons: reasons.clone(),
            });
            last = reasons;
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Releases an account everywhere: marks the release begun (a crash at any later step leaves
/// the flag, and the next start finishes it), then its files (they need no key), its outbox
/// items, its messages and key ([`crate::ingest::release`]), and last overwrites the database
/// file's free pages ([`crate::store::Store::scrub_free_pages`]). The CLI calls it without a running service.
pub async fn release_account(
    pipeline: &Pipeline,
    attachments: &Attachments,
    account: u64,
) -> Result<Released, LifecycleError> {
    let store = pipeline.store();
    store.mark_scrub_pending().await?;
    crate::ingest::release::begin(store, account).await?;
    let files = attachments
        .release_account(account)
        .await
        .map_err(|e| e.into_store())?;
    tracing::info!(account, files, "account files released");
    let items = crate::outbox::release::release_account(store, account).await?;
    tracing::info!(account, items, "account outbox released");
    let done = pipeline.release_account(account).await?;
    // A user account's MTProto update state (numbers only) goes with it.
    crate::channels::mtproto::state::forget(store, account).await?;
    // redb does not zero the pages the release freed: overwrite them, so a raw read of the
    // file finds no old copy of the account's sealed records or of its wrapped key.
    store.scrub_free_pages().await?;
    Ok(done)
}
