//! Who is calling, and what they may see.
//!
//! - [`records`]: users (role, argon2id hash, account grants), API tokens, sessions;
//!   [`tables`]: the tables holding them.
//! - [`users`] and [`credentials`]: those records in the store; [`manage`]: changing and
//!   deleting them (the admin API), never leaving the box without an active admin.
//! - [`secrets`]: random bearer values kept only as SHA-256, argon2id password hashing.
//! - [`hashing`]: password checks bounded in number and memory (a reused, returned pool).
//! - [`throttle`]: growing waits after failed logins, per name and per client address.
//! - [`tickets`]: single-use WebSocket tickets.
//! - [`revoke`]: revoking and changing credentials and users, told at once to the live
//!   WebSockets they concern.
//! - [`setup`]: the first run's one-time setup code.
//! - [`prompt`]: reading a new password on the command line.
//!
//! [`Auth`] is the cheap-to-clone handle the API holds; it turns a credential (token, session
//! cookie, ticket) into a [`Caller`], whose [`Grants`] every route and every live event is
//! filtered by. The HTTP side (extractors, cookies, Origin checks) lives in `api`.

pub mod credentials;
pub mod hashing;
pub mod manage;
pub mod prompt;
pub mod records;
pub mod revoke;
pub mod secrets;
pub mod setup;
pub mod tables;
pub mod throttle;
pub mod tickets;
pub mod users;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use zeroize::Zeroizing;

pub use records::{Role, UserRecord};
pub use users::NewUser;

use crate::store::{Reader, Store, StoreError};
use hashing::Hashing;
use revoke::Revoked;
use throttle::Throttle;
use tickets::Tickets;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("{0}")]
    BadName(String),
    #[error("{0}")]
    WeakPassword(String),
    #[error("a user with that name exists")]
    NameTaken,
    #[error("no such user")]
    UnknownUser,
    #[error("no such token")]
    UnknownToken,
    #[error("the box must keep at least one active admin")]
    LastAdmin,
    #[error("no account {0}")]
    UnknownAccount(u64),
    #[error("wrong user name or password")]
    InvalidCredentials,
    #[error("authentication required")]
    Unauthenticated,
    #[error("too many failed logins; retry in {} s", .0.as_secs().max(1))]
    Throttled(Duration),
    /// Every place for a password check is taken; retry after the wait.
    #[error("too many logins at once; retry in {} s", .0.as_secs().max(1))]
    Busy(Duration),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Auth keeps its own tables and works on them inside the store's write jobs
/// ([`Store::try_write`]), so redb's errors there are the store's.
macro_rules! store_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for AuthError {
            fn from(e: $t) -> Self {
                AuthError::Store(e.into())
            }
        }
    )*};
}

store_errors!(redb::TableError, redb::StorageError);

/// The accounts a caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Grants {
    /// Every account (admins).
    All,
    /// These accounts only, sorted.
    Only(Vec<u64>),
}

impl Grants {
    /// What `u` may see, as its record says now.
    pub fn of(u: &UserRecord) -> Grants {
        match u.role {
            Role::Admin => Grants::All,
            Role::Agent => Grants::Only(u.grants.clone()),
        }
    }

    pub fn allows(&self, account: u64) -> bool {
        match self {
            Grants::All => true,
            Grants::Only(a) => a.binary_search(&account).is_ok(),
        }
    }

    /// True when at least one of `accounts` is granted: the rule for chats, messages and events,
    /// which list every account that has them.
    pub fn allows_any(&self, accounts: &[u64]) -> bool {
        accounts.iter().any(|&a| self.allows(a))
    }

    /// The granted part of `accounts`, in its order.
    pub fn visible(&self, accounts: &[u64]) -> Vec<u64> {
        accounts.iter().copied().filter(|&a| self.allows(a)).collect()
    }
}

/// How a caller proved who they are, with the digest of the credential so it can be checked
/// again later (a WebSocket outlives the request that opened it: a logout or an expired
/// session must still end it). A WebSocket opened with a ticket carries the credential that
/// minted the ticket, so it ends with that credential.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Token([u8; 32]),
    Session([u8; 32]),
}

impl std::fmt::Debug for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Via::Token(_) => "Token",
            Via::Session(_) => "Session",
        })
    }
}

/// An authenticated caller. Handlers receive it from the API's extractor; there is no other way
/// to learn what a request may see.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: u64,
    pub name: String,
    pub role: Role,
    pub grants: Grants,
    pub via: Via,
}

impl Caller {
    pub fn from_user(u: &UserRecord, via: Via) -> Caller {
        Caller {
            user: u.id,
            name: u.name.clone(),
            role: u.role,
            grants: Grants::of(u),
            via,
        }
    }
}

/// Tunables of [`Auth`].
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Lifetime of a login session.
    pub session_ttl: Duration,
    /// Password checks running at once (each takes 19 MiB and a core for ~0.1 s on a Pi 4).
    pub concurrent_hashes: usize,
    /// Password checks waiting for a turn; a login beyond these is refused at once (429 with
    /// `Retry-After`).
    pub queued_hashes: usize,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            session_ttl: Duration::from_secs(12 * 3600),
            concurrent_hashes: 2,
            queued_hashes: 6,
        }
    }
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Login {
    pub caller: Caller,
    /// The session cookie's value (shown to the browser once, stored hashed).
    pub cookie: String,
    pub expires_at: i64,
}

/// The auth service: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    options: AuthOptions,
    throttle: Throttle,
    hashing: Hashing,
    tickets: Tickets,
    /// Revocations for the live WebSockets (see [`revoke`]).
    revoked: broadcast::Sender<Revoked>,
}

impl Auth {
    pub fn new(store: Store, options: AuthOptions) -> Auth {
        let hashing = Hashing::new(
            options.concurrent_hashes,
            options.queued_hashes,
            secrets::hash_blocks(),
        );
        Auth {
            inner: Arc::new(Inner {
                store,
                options,
                throttle: Throttle::default(),
                hashing,
                tickets: Tickets::default(),
                revoked: broadcast::channel(revoke::CAPACITY).0,
            }),
        }
    }

    pub fn options(&self) -> &AuthOptions {
        &self.inner.options
    }

    /// Password checks (argon2 computations of logins) done since the start.
    pub fn hashes_computed(&self) -> u64 {
        self.inner.hashing.computed()
    }

    /// Checks a password and starts a session. `client` is the peer's address when the server
    /// knows it (it keys the per-address throttle).
    ///
    /// The attempt is counted before the password is checked, and refused without a check when
    /// the name or the address must wait ([`AuthError::Throttled`]) or when every place for a
    /// check is taken ([`AuthError::Busy`]).
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<Login, AuthError> {
        // Names are stored lowercase; what people type may not be.
        let name = &name.trim().to_lowercase();
        let i = &self.inner;
        let attempt = i
            .throttle
            .reserve(name, client, Instant::now())
            .map_err(AuthError::Throttled)?;
        let admitted = match i.hashing.admit() {
            Ok(a) => a,
            Err(retry) => {
                i.throttle.refund(attempt);
                return Err(AuthError::Busy(retry));
            }
        };
        let lookup = name.to_string();
        let user = match i.store.read(move |r| users::by_name(r, &lookup)).await {
            Ok(u) => u,
            Err(e) => {
                i.throttle.refund(attempt);
                return Err(e.into());
            }
        };
        // Same work for unknown and disabled users: the answer's timing tells nothing.
        let phc = match &user {
            Some(u) if !u.disabled => u.password_hash.clone(),
            _ => secrets::dummy_hash().to_string(),
        };
        let pw = Zeroizing::new(password.to_string());
        let checked = admitted
            .run(move |memory| secrets::verify_password_in(&pw, &phc, memory))
            .await;
        let ok = match checked {
            Ok(ok) => ok,
            Err(e) => {
                i.throttle.refund(attempt);
                return Err(e);
            }
        };
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            // The attempt stays counted.
            _ => return Err(AuthError::InvalidCredentials),
        };
        i.throttle.succeeded(attempt);
        let ttl = i64::try_from(i.options.session_ttl.as_secs()).unwrap_or(i64::MAX / 4);
        let (cookie, rec) = credentials::create_session(&i.store, user.id, ttl).await?;
        Ok(Login {
            caller: Caller::from_user(&user, Via::Session(secrets::digest(&cookie))),
            cookie,
            expires_at: rec.expires_at,
        })
    }

    /// The caller an API token belongs to.
    pub async fn by_token(&self, token: &str) -> Result<Caller, AuthError> {
        self.by_via(token_credential(token)?).await
    }

    /// The caller a session cookie belongs to.
    pub async fn by_session(&self, cookie: &str) -> Result<Caller, AuthError> {
        self.by_via(session_credential(cookie)?).await
    }

    /// A single-use WebSocket ticket for this caller, remembering the credential it came with.
    pub fn issue_ticket(&self, caller: &Caller) -> Result<String, AuthError> {
        self.inner.tickets.issue(caller.user, caller.via, Instant::now())
    }

    /// Uses up a ticket. The credential that minted it must still work (a ticket never outlives
    /// it), and the caller carries that credential, so the WebSocket ends with it.
    pub async fn redeem_ticket(&self, ticket: &str) -> Result<Caller, AuthError> {
        let (user, via) = self
            .inner
            .tickets
            .redeem(ticket, Instant::now())
            .ok_or(AuthError::Unauthenticated)?;
        let caller = self.by_via(via).await?;
        if caller.user != user {
            return Err(AuthError::Unauthenticated);
        }
        Ok(caller)
    }

    /// The caller as it stands now: its credential checked again (revoked, expired, logged
    /// out) and its grants re-read (they change while a WebSocket stays open).
    pub async fn recheck(&self, caller: &Caller) -> Result<Caller, AuthError> {
        self.by_via(caller.via).await
    }

    /// The caller a credential belongs to, checked now.
    pub async fn recheck_via(&self, via: Via) -> Result<Caller, AuthError> {
        self.by_via(via).await
    }

    async fn by_via(&self, via: Via) -> Result<Caller, AuthError> {
        self.inner.store.read(move |r| caller_in(r, via)).await?
    }
}

/// The credential an API token is, unchecked (`Unauthenticated` when it cannot be one).
pub fn token_credential(token: &str) -> Result<Via, AuthError> {
    if !secrets::looks_like_token(token) {
        return Err(AuthError::Unauthenticated);
    }
    Ok(Via::Token(secrets::digest(token)))
}

/// The credential a session cookie is, unchecked (`Unauthenticated` when it cannot be one).
pub fn session_credential(cookie: &str) -> Result<Via, AuthError> {
    if cookie.is_empty() || cookie.len() > 128 {
        return Err(AuthError::Unauthenticated);
    }
    Ok(Via::Session(secrets::digest(cookie)))
}

/// The caller a credential belongs to, checked in a read the caller already has open (so a
/// request can authenticate and read in one transaction). The outer error is the store's;
/// the inner one `Unauthenticated` for a credential that is unknown, expired or revoked, or
/// whose user is disabled or gone.
pub fn caller_in(r: &Reader, via: Via) -> Result<Result<Caller, AuthError>, StoreError> {
    let now = crate::store::ctx::unix_now();
    let user = match via {
        Via::Token(hash) => match credentials::token(r, &hash)? {
            Some(t) if t.expires_at.is_none_or(|e| e > now) => credentials::active_user(r, t.user)?,
            _ => None,
        },
        Via::Session(hash) => match credentials::session(r, &hash)? {
            Some(s) if s.expires_at > now => credentials::active_user(r, s.user)?,
            _ => None,
        },
    };
    Ok(user
        .map(|u| Caller::from_user(&u, via))
        .ok_or(AuthError::Unauthenticated))
}
