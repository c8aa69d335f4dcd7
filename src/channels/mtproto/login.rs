//! Adding a Telegram user account: phone number -> code -> 2FA password (when the account has
//! one) -> an account whose session is sealed in the store.
//!
//! [`begin`] connects with the box's `api_id`/`api_hash` and asks Telegram to send a code
//! (`auth.sendCode`); the [`PendingLogin`] it returns keeps that connection (the code belongs to
//! its auth key) until [`PendingLogin::submit_code`] succeeds. A wrong code leaves the login
//! pending, so the person can type it again; an expired one ends it. After
//! [`LoginError::PasswordRequired`], [`PendingLogin::submit_password`] proves the password with
//! SRP (`account.getPassword`, `auth.checkPassword`); the password itself never leaves the box. The calls are made raw
//! (grammers' own `sign_in` folds every `PHONE_CODE_*` error into one), and errors carry
//! Telegram's error name and numbers, never the phone number or the code.
//!
//! On success the account is created in one write job with its sealed session and the update
//! state from `updates.getState`, so the connector's first catch-up starts exactly there.

use std::sync::Arc;

use grammers_client::sender::{ConnectionParams, NoRetries, SenderPool};
use grammers_client::{Client, InvocationError};
use grammers_crypto::two_factor_auth::{calculate_2fa, check_p_and_g};
use grammers_session::Session;
use grammers_session::storages::MemorySession;
use grammers_tl_types as tl;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::CHANNEL;
use super::session::StoredSession;
use super::state::{self, MtState};
use crate::store::new_account::{NewAccount, create_in};
use crate::store::{Store, StoreError};

/// What the operator gives to add a user account.
#[derive(Clone)]
pub struct LoginSpec {
    /// The box's application ID and hash (from my.telegram.org).
    pub api_id: i32,
    pub api_hash: String,
    pub phone: String,
    /// The account's label; defaults to the person's first name.
    pub name: Option<String>,
    pub rented: bool,
    /// Where to connect: Telegram's data centres (`StoredSession::default()` lets grammers
    /// make a key), or a data centre whose key is already shared (the simulator).
    pub session: StoredSession,
}

impl std::fmt::Debug for LoginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginSpec")
            .field("api_id", &self.api_id)
            .finish_non_exhaustive()
    }
}

/// The non-secret part of a user account, as JSON in the account record's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserOptions {
    pub api_id: i32,
    pub user_id: i64,
    /// Set when the account was logged out (removed): the record stays as a tombstone, as a
    /// removed bot's does, and no listing shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_at: Option<i64>,
    /// How far back history is fetched on connect, and at what pace.
    #[serde(default)]
    pub backfill: super::backfill::BackfillOptions,
}

/// Why a login step failed. Never contains the phone number, the code or a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    #[error("Telegram does not accept this phone number")]
    PhoneInvalid,
    #[error("this phone number is banned by Telegram")]
    PhoneBanned,
    #[error("the code is wrong; try again")]
    CodeInvalid,
    #[error("the code expired; start the login again")]
    CodeExpired,
    #[error("the account has a 2FA password: enter it to finish the login")]
    PasswordRequired,
    #[error("the 2FA password is wrong; try again")]
    PasswordInvalid,
    #[error("this Telegram account is already account {0} of this box")]
    AlreadyAdded(u64),
    #[error("Telegram asks to wait {0} s before trying again (FLOOD_WAIT)")]
    FloodWait(u32),
    #[error("Telegram refused: {code} {name}")]
    Telegram { code: i32, name: String },
    #[error("connecting to Telegram: {0}")]
    Network(String),
    #[error("Telegram's answer was not understood: {0}")]
    Unexpected(&'static str),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl From<InvocationError> for LoginError {
    fn from(e: InvocationError) -> LoginError {
        match e {
            InvocationError::Rpc(r) => match r.name.as_str() {
                "PHONE_NUMBER_INVALID" | "PHONE_NUMBER_UNOCCUPIED" => LoginError::PhoneInvalid,
                "PHONE_NUMBER_BANNED" => LoginError::PhoneBanned,
                "PHONE_CODE_INVALID" | "PHONE_CODE_EMPTY" => LoginError::CodeInvalid,
                "PHONE_CODE_EXPIRED" | "PHONE_CODE_HASH_EMPTY" => LoginError::CodeExpired,
                "SESSION_PASSWORD_NEEDED" => LoginError::PasswordRequired,
                "PASSWORD_HASH_INVALID" => LoginError::PasswordInvalid,
                "FLOOD_WAIT" => LoginError::FloodWait(r.value.unwrap_or(0)),
                _ => LoginError::Telegram {
                    code: r.code,
                    name: r.name,
                },
            },
            other => LoginError::Network(other.to_string()),
        }
    }
}

/// A login waiting for its code.
pub struct PendingLogin {
    store: Store,
    spec: LoginSpec,
    client: Client,
    session: Arc<MemorySession>,
    runner: JoinHandle<()>,
    phone_code_hash: String,
}

impl Drop for PendingLogin {
    fn drop(&mut self) {
        self.client.disconnect();
        self.runner.abort();
    }
}

/// Connects and asks Telegram to send a login code to `spec.phone`.
pub async fn begin(store: &Store, spec: LoginSpec) -> Result<PendingLogin, LoginError> {
    let session = Arc::new(spec.session.to_memory(Default::default()));
    // No automatic retries: a FLOOD_WAIT during login goes to the person, with its wait,
    // instead of grammers sleeping through it while the browser waits.
    let params = ConnectionParams {
        retry_policy: Box::new(NoRetries),
        ..ConnectionParams::default()
    };
    let pool = SenderPool::with_configuration(session.clone(), spec.api_id, params);
    let client = Client::new(pool.handle.clone());
    let runner = tokio::spawn(pool.runner.run());
    let mut pending = PendingLogin {
        store: store.clone(),
        spec,
        client,
        session,
        runner,
        phone_code_hash: String::new(),
    };
    let send = tl::functions::auth::SendCode {
        phone_number: pending.spec.phone.clone(),
        api_id: pending.spec.api_id,
        api_hash: pending.spec.api_hash.clone(),
        settings: tl::types::CodeSettings {
            allow_flashcall: false,
            current_number: false,
            allow_app_hash: false,
            allow_missed_call: false,
            allow_firebase: false,
            unknown_number: false,
            logout_tokens: None,
            token: None,
            app_sandbox: None,
        }
        .into(),
    };
    let sent = match pending.client.invoke(&send).await {
        // The number belongs to another data centre (PHONE_MIGRATE_n): it becomes the home
        // one, and the code is asked for there (grammers' `request_login_code` does the same).
        Err(InvocationError::Rpc(e)) if e.code == 303 => {
            let Some(dc) = e.value.and_then(|v| i32::try_from(v).ok()) else {
                return Err(LoginError::Unexpected("a 303 without a data centre"));
            };
            let old = pending.session.home_dc_id().unwrap_or(2);
            pool.handle.disconnect_from_dc(old);
            pending
                .session
                .set_home_dc_id(dc)
                .await
                .map_err(|_| LoginError::Unexpected("the session refused a data centre"))?;
            tracing::info!(dc, "login moved to the number's data centre");
            pending.client.invoke(&send).await?
        }
        other => other?,
    };
    pending.phone_code_hash = match sent {
        tl::enums::auth::SentCode::Code(c) => c.phone_code_hash,
        _ => return Err(LoginError::Unexpected("auth.sendCode did not send a code")),
    };
    Ok(pending)
}

impl PendingLogin {
    /// Signs in with `code`; on success stores the account and returns its ID. After
    /// [`LoginError::CodeInvalid`] the same login can take another code.
    pub async fn submit_code(&self, code: &str) -> Result<u64, LoginError> {
        let auth = self
            .client
            .invoke(&tl::functions::auth::SignIn {
                phone_number: self.spec.phone.clone(),
                phone_code_hash: self.phone_code_hash.clone(),
                phone_code: Some(code.to_string()),
                email_verification: None,
            })
            .await?;
        self.finish(auth).await
    }

    /// Finishes a login that answered [`LoginError::PasswordRequired`]: proves `password` with
    /// SRP. A wrong password leaves the login pending.
    pub async fn submit_password(&self, password: &str) -> Result<u64, LoginError> {
        let tl::enums::account::Password::Password(info) = self
            .client
            .invoke(&tl::functions::account::GetPassword {})
            .await?;
        let (
            Some(tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(algo)),
            Some(g_b),
            Some(srp_id),
        ) = (info.current_algo, info.srp_b, info.srp_id)
        else {
            return Err(LoginError::Unexpected(
                "account.getPassword has no SRP parameters",
            ));
        };
        if !check_p_and_g(&algo.p, &algo.g) {
            return Err(LoginError::Unexpected("the SRP prime or generator is not safe"));
        }
        let mut a = vec![0u8; 256];
        getrandom::fill(&mut a).map_err(|_| LoginError::Unexpected("no randomness"))?;
        let (m1, g_a) = calculate_2fa(&algo.salt1, &algo.salt2, &algo.p, &algo.g, g_b, a, password);
        let auth = self
            .client
            .invoke(&tl::functions::auth::CheckPassword {
                password: tl::types::InputCheckPasswordSrp {
                    srp_id,
                    a: g_a.to_vec(),
                    m1: m1.to_vec(),
                }
                .into(),
            })
            .await?;
        self.finish(auth).await
    }

    /// Stores the signed-in account: sealed session and initial update state, one write job.
    async fn finish(&self, auth: tl::enums::auth::Authorization) -> Result<u64, LoginError> {
        let user = match auth {
            tl::enums::auth::Authorization::Authorization(a) => a.user,
            tl::enums::auth::Authorization::SignUpRequired(_) => {
                return Err(LoginError::Telegram {
                    code: 400,
                    name: "SIGN_UP_REQUIRED".into(),
                });
            }
        };
        let tl::enums::User::User(user) = user else {
            return Err(LoginError::Unexpected("auth.signIn returned an empty user"));
        };
        let existing = self
            .store
            .read(|r| r.accounts())
            .await?
            .into_iter()
            .filter(|a| a.channel == CHANNEL)
            .find(|a| {
                serde_json::from_str::<UserOptions>(&a.options)
                    .is_ok_and(|o| o.user_id == user.id && o.removed_at.is_none())
            });
        if let Some(a) = existing {
            // A second session for a person whose account is here already: it would receive
            // everything twice. End it on Telegram (best effort) rather than leave it behind.
            let _ = self.client.invoke(&tl::functions::auth::LogOut {}).await;
            return Err(LoginError::AlreadyAdded(a.id));
        }
        let tl::enums::updates::State::State(s) =
            self.client.invoke(&tl::functions::updates::GetState {}).await?;
        let state = MtState {
            pts: s.pts,
            qts: s.qts,
            date: s.date,
            seq: s.seq,
            channels: Vec::new(),
        };
        let me = (user.id, user.access_hash.unwrap_or(0));
        let stored = StoredSession::capture(&self.session, Some(me));
        let secret =
            postcard::to_allocvec(&stored).map_err(|_| LoginError::Unexpected("session does not encode"))?;
        let options = UserOptions {
            api_id: self.spec.api_id,
            user_id: user.id,
            removed_at: None,
            backfill: Default::default(),
        };
        let new = NewAccount {
            channel: CHANNEL.into(),
            name: self
                .spec
                .name
                .clone()
                .or(user.first_name.clone())
                .unwrap_or_else(|| "Telegram account".into()),
            rented: self.spec.rented,
            daily_limit: None,
            secret: Some(secret),
            options: serde_json::to_string(&options).expect("options serialise"),
        };
        let id = self
            .store
            .write(1, move |ctx| {
                let rec = create_in(ctx, &new)?;
                state::put(ctx, rec.id, &state)?;
                Ok(rec.id)
            })
            .await?;
        tracing::info!(account = id, "Telegram user account added");
        Ok(id)
    }
}
