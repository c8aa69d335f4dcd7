//! Revocation, told at once. A REST request checks its credential in the store every time, but a
//! WebSocket is authenticated once and then lives on; so every change that can end or narrow a
//! credential (revoking a token, logging out, resetting a password, disabling, deleting or
//! re-granting a user) goes through [`Auth`] here, which commits it and then announces a
//! [`Revoked`] on a bounded broadcast. Each WebSocket task listens and, when an announcement
//! concerns it, ends at once or checks its credential again (`api::ws::socket`).
//!
//! Nothing is lost to the bound: a socket that falls more than [`CAPACITY`] announcements
//! behind checks its credential in the store instead. Nor to a race with the upgrade: the
//! WebSocket route subscribes before it checks the credential, so a revocation committed after
//! that check is announced to it. The announcement goes out after the commit, from a task of its
//! own, so a caller that hangs up mid-request cannot leave a committed revocation untold.

use std::future::Future;

use tokio::sync::broadcast;

use super::manage::{self, UserChange};
use super::{Auth, AuthError, Caller, UserRecord, Via, credentials};

/// Announcements kept for a socket that is busy (a long replay); revocations are rare.
pub const CAPACITY: usize = 64;

/// What changed. Credentials are named by the SHA-256 the store keys them by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// This token or session stopped working (a token revoked, a logout).
    Credential([u8; 32]),
    /// Every session of this user ended (a password reset); its tokens keep working.
    Sessions(u64),
    /// This user was disabled, deleted, or had its role or grants changed.
    User(u64),
}

/// What a live connection of `caller` does about an announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Unaffected,
    /// Its credential is gone: end now.
    Ended,
    /// Its credential or user changed: check again in the store (and take the new grants).
    Recheck,
}

impl Revoked {
    pub fn verdict(&self, caller: &Caller) -> Verdict {
        match (*self, caller.via) {
            (Revoked::Credential(h), Via::Token(c) | Via::Session(c)) if h == c => Verdict::Ended,
            // A session started after the reset is still good: the store tells.
            (Revoked::Sessions(u), Via::Session(_)) if u == caller.user => Verdict::Recheck,
            (Revoked::User(u), _) if u == caller.user => Verdict::Recheck,
            _ => Verdict::Unaffected,
        }
    }
}

/// Runs a change to completion even if the request that asked for it is dropped, then
/// announces what it revoked.
async fn commit_and_tell<T, F>(auth: &Auth, change: F) -> Result<T, AuthError>
where
    T: Send + 'static,
    F: Future<Output = Result<(T, Option<Revoked>), AuthError>> + Send + 'static,
{
    let sender = auth.inner.revoked.clone();
    tokio::spawn(async move {
        let (out, told) = change.await?;
        if let Some(r) = told {
            // An error only means no WebSocket is listening.
            let _ = sender.send(r);
        }
        Ok(out)
    })
    .await
    .map_err(|e| AuthError::Internal(format!("auth task: {e}")))?
}

impl Auth {
    /// Announcements from now on. Subscribe before checking the credential of a connection, so
    /// nothing committed after the check goes unseen.
    pub fn revocations(&self) -> broadcast::Receiver<Revoked> {
        self.inner.revoked.subscribe()
    }

    /// Revokes `user`'s token named `id` (see [`manage::revoke_token`]).
    pub async fn revoke_token(&self, user: u64, id: String) -> Result<(), AuthError> {
        let store = self.inner.store.clone();
        commit_and_tell(self, async move {
            let hash = manage::revoke_token(&store, user, id).await?;
            Ok(((), Some(Revoked::Credential(hash))))
        })
        .await
    }

    /// Ends the caller's session; a caller with a token has none to end.
    pub async fn logout(&self, caller: &Caller) -> Result<(), AuthError> {
        let Via::Session(hash) = caller.via else {
            return Ok(());
        };
        let store = self.inner.store.clone();
        commit_and_tell(self, async move {
            credentials::end_session(&store, hash).await?;
            Ok(((), Some(Revoked::Credential(hash))))
        })
        .await
    }

    /// Changes a user's role or disabled flag (see [`manage::update`]).
    pub async fn update_user(&self, id: u64, change: UserChange) -> Result<UserRecord, AuthError> {
        let store = self.inner.store.clone();
        commit_and_tell(self, async move {
            let rec = manage::update(&store, id, change).await?;
            Ok((rec, Some(Revoked::User(id))))
        })
        .await
    }

    /// Replaces a user's grants (see [`manage::set_grants`]); its WebSockets narrow at once.
    pub async fn set_grants(&self, id: u64, grants: Vec<u64>) -> Result<UserRecord, AuthError> {
        let store = self.inner.store.clone();
        commit_and_tell(self, async move {
            let rec = manage::set_grants(&store, id, grants).await?;
            Ok((rec, Some(Revoked::User(id))))
        })
        .await
    }

    /// Sets a new password and ends the user's sessions (see [`manage::set_password`]).
    pub async fn set_password(&self, id: u64, password: String) -> Result<(), AuthError> {
        let store = self.inner.store.clone();
        commit_and_tell(self, async move {
            manage::set_password(&store, id, password).await?;
            Ok(((), Some(Revoked::Sessions(id))))
        })
        .await
    }

    /// Deletes a user with its tokens and sessions (see [`manage::remove`]).
    pub async fn remove_user(&self, id: u64) -> Result<(), AuthError> {
        let store = self.inner.store.clone();
        commit_and_tell(self, async move {
            manage::remove(&store, id).await?;
            Ok(((), Some(Revoked::User(id))))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Grants, Role};

    fn caller(user: u64, via: Via) -> Caller {
        Caller {
            user,
            name: "x".into(),
            role: Role::Agent,
            grants: Grants::Only(vec![]),
            via,
        }
    }

    #[test]
    fn verdicts_concern_only_the_credential_or_user_named() {
        let token = caller(7, Via::Token([1; 32]));
        let session = caller(7, Via::Session([2; 32]));
        let other = caller(8, Via::Session([3; 32]));
        assert_eq!(Revoked::Credential([1; 32]).verdict(&token), Verdict::Ended);
        assert_eq!(
            Revoked::Credential([1; 32]).verdict(&session),
            Verdict::Unaffected
        );
        assert_eq!(Revoked::Credential([2; 32]).verdict(&session), Verdict::Ended);
        assert_eq!(Revoked::Sessions(7).verdict(&session), Verdict::Recheck);
        assert_eq!(
            Revoked::Sessions(7).verdict(&token),
            Verdict::Unaffected,
            "tokens survive a password reset"
        );
        assert_eq!(Revoked::User(7).verdict(&token), Verdict::Recheck);
        assert_eq!(Revoked::User(7).verdict(&other), Verdict::Unaffected);
    }
}
