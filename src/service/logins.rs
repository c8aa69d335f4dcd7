//! Telegram user-account logins in progress: phone number -> code -> 2FA password, held in
//! memory between the admin's steps (a login is a live MTProto connection whose auth key the
//! code belongs to, so it cannot be stored and resumed).
//!
//! Bounded: at most [`MAX_PENDING`] at once (a permit per login), each forgotten
//! [`LOGIN_TTL`] after it began (both tunable in the service's options), when its connection closes. A login is named by a random
//! ID; nothing here logs or returns the phone number, the code or the password. On success the
//! account exists (sealed session, update state) and its connector starts at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Service;
use super::lifecycle::LifecycleError;
use crate::channels::mtproto::{self, LoginError, PendingLogin};

/// Logins in progress at once, box-wide (the default of `ServiceOptions::user_logins_max`).
pub const MAX_PENDING: usize = 8;
/// How long a login waits for its next step before it is forgotten, from its start (the
/// default of `ServiceOptions::user_login_ttl`; Telegram's codes live about as long).
pub const LOGIN_TTL: Duration = Duration::from_secs(300);

/// The logins in progress: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Logins {
    shared: Arc<Shared>,
}

struct Shared {
    /// A std Mutex, not a tokio one: nothing awaits while it is held.
    pending: Mutex<HashMap<String, Entry>>,
    permits: Arc<Semaphore>,
    ttl: Duration,
}

struct Entry {
    /// A tokio Mutex: a step awaits Telegram while holding it, so two steps of one login never
    /// run at once (a second one is refused as busy rather than queued).
    login: Arc<tokio::sync::Mutex<PendingLogin>>,
    _permit: OwnedSemaphorePermit,
}

/// A login that began: Telegram sent the code.
#[derive(Debug, Clone)]
pub struct LoginStarted {
    pub id: String,
    /// Seconds until the login is forgotten.
    pub expires_in: u64,
}

/// Where a login stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStep {
    /// The account was added (its ID) and its connector started.
    SignedIn(u64),
    /// The code was right; the account has a 2FA password, which comes next.
    PasswordRequired,
}

impl Logins {
    pub fn new(max: usize, ttl: Duration) -> Logins {
        Logins {
            shared: Arc::new(Shared {
                pending: Mutex::new(HashMap::new()),
                permits: Arc::new(Semaphore::new(max)),
                ttl,
            }),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.shared.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many logins are in progress.
    pub fn len(&self) -> usize {
        self.pending().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets a login (its connection closes); false when there was none.
    pub fn cancel(&self, id: &str) -> bool {
        self.pending().remove(id).is_some()
    }

    fn get(&self, id: &str) -> Result<Arc<tokio::sync::Mutex<PendingLogin>>, LifecycleError> {
        self.pending()
            .get(id)
            .map(|e| e.login.clone())
            .ok_or(LifecycleError::LoginNotFound)
    }

    fn insert(&self, login: PendingLogin, permit: OwnedSemaphorePermit) -> Result<String, LifecycleError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw)
            .map_err(|_| LifecycleError::Login(LoginError::Unexpected("no randomness")))?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let entry = Entry {
            login: Arc::new(tokio::sync::Mutex::new(login)),
            _permit: permit,
        };
        self.pending().insert(id.clone(), entry);
        // Forgotten after its time, whatever it is doing: a weak handle, so a stopped service
        // is not kept alive by its timers.
        let (weak, key, ttl): (Weak<Shared>, String, Duration) =
            (Arc::downgrade(&self.shared), id.clone(), self.shared.ttl);
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            if let Some(shared) = weak.upgrade() {
                let gone = Logins { shared }.cancel(&key);
                if gone {
                    tracing::info!("a Telegram account login expired unfinished");
                }
            }
        });
        Ok(id)
    }

    /// Whether a failed step ends the login (the others may be retried on it).
    fn ends(e: &LoginError) -> bool {
        !matches!(
            e,
            LoginError::CodeInvalid
                | LoginError::PasswordRequired
                | LoginError::PasswordInvalid
                | LoginError::FloodWait(_)
                | LoginError::Network(_)
                | LoginError::Store(_)
        )
    }
}

/// The longest one step may wait for Telegram: less than a request may take, so an
/// unreachable Telegram is told as such (`502`) rather than as a request timeout.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

async fn bounded<T>(step: impl Future<Output = Result<T, LoginError>>) -> Result<T, LoginError> {
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| Err(LoginError::Network("Telegram did not answer in time".into())))
}

impl Service {
    /// Starts adding a Telegram user account: asks Telegram to send a login code to `phone`.
    pub async fn begin_user_login(
        &self,
        phone: &str,
        name: Option<String>,
        rented: bool,
    ) -> Result<LoginStarted, LifecycleError> {
        let app = self
            .options
            .telegram_app
            .as_ref()
            .ok_or(LifecycleError::NoTelegramApp)?;
        let phone = mtproto::normalise_phone(phone).map_err(LifecycleError::BadPhone)?;
        let permit = self
            .logins
            .shared
            .permits
            .clone()
            .try_acquire_owned()
            .map_err(|_| LifecycleError::TooManyLogins(self.options.user_logins_max))?;
        let pending = bounded(mtproto::begin(&self.store, app.login_spec(phone, name, rented))).await?;
        let id = self.logins.insert(pending, permit)?;
        tracing::info!("a Telegram account login began; the code was sent");
        Ok(LoginStarted {
            id,
            expires_in: self.logins.shared.ttl.as_secs(),
        })
    }

    /// Signs a pending login in with the code Telegram sent.
    pub async fn submit_login_code(&self, id: &str, code: &str) -> Result<LoginStep, LifecycleError> {
        let login = self.logins.get(id)?;
        let login = login.try_lock().map_err(|_| LifecycleError::LoginBusy)?;
        let done = bounded(login.submit_code(code.trim())).await;
        drop(login);
        match done {
            Err(LoginError::PasswordRequired) => Ok(LoginStep::PasswordRequired),
            other => self.finish_step(id, other).await.map(LoginStep::SignedIn),
        }
    }

    /// Finishes a pending login that needs the account's 2FA password.
    pub async fn submit_login_password(&self, id: &str, password: &str) -> Result<u64, LifecycleError> {
        let login = self.logins.get(id)?;
        let login = login.try_lock().map_err(|_| LifecycleError::LoginBusy)?;
        let done = bounded(login.submit_password(password)).await;
        drop(login);
        self.finish_step(id, done).await
    }

    /// Cancels a pending login; false when there was none.
    pub fn cancel_user_login(&self, id: &str) -> bool {
        self.logins.cancel(id)
    }

    async fn finish_step(&self, id: &str, done: Result<u64, LoginError>) -> Result<u64, LifecycleError> {
        match done {
            Ok(account) => {
                self.logins.cancel(id);
                self.start_user(account);
                Ok(account)
            }
            Err(e) => {
                if Logins::ends(&e) {
                    self.logins.cancel(id);
                }
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_codes_and_passwords_keep_a_login_and_the_rest_end_it() {
        for keeps in [
            LoginError::CodeInvalid,
            LoginError::PasswordInvalid,
            LoginError::FloodWait(3),
        ] {
            assert!(!Logins::ends(&keeps), "{keeps:?}");
        }
        for ends in [
            LoginError::CodeExpired,
            LoginError::PhoneBanned,
            LoginError::Unexpected("x"),
        ] {
            assert!(Logins::ends(&ends), "{ends:?}");
        }
    }
}
