//! Logging a user account out: the session is terminated on Telegram (`auth.logOut`) first, so
//! the auth key stops working there too, then its sealed copy is erased from the account record,
//! the update state dropped and the account marked removed. The record itself stays, as a
//! removed bot's does: its messages are still sealed with its key until the account is released.
//!
//! Stop the account's connector before calling [`logout`].

use std::sync::Arc;

use grammers_client::sender::SenderPool;
use grammers_client::{Client, InvocationError};
use grammers_tl_types as tl;

use super::connector::load;
use super::login::UserOptions;
use super::state::ACCOUNT_MTSTATE;
use super::{CHANNEL, LoginError};
use crate::store::{Store, StoreError};

/// Terminates the account's session on Telegram and forgets it here. An auth key Telegram no
/// longer knows (401) counts as logged out already; any other failure leaves the account as
/// it was, so the operator can try again.
pub async fn logout(store: &Store, account: u64) -> Result<(), LoginError> {
    let Some((session, options)) = load(store, account)
        .await
        .map_err(|e| LoginError::Network(e.to_string()))?
    else {
        return Err(LoginError::Unexpected("not a signed-in Telegram user account"));
    };
    let memory = Arc::new(session.to_memory(Default::default()));
    let pool = SenderPool::new(memory, options.api_id);
    let client = Client::new(pool.handle.clone());
    // Aborted however this ends, a caller's timeout included.
    let runner = AbortOnDrop(tokio::spawn(pool.runner.run()));
    let result = client.invoke(&tl::functions::auth::LogOut {}).await;
    client.disconnect();
    drop(runner);
    match result {
        Ok(_) => {}
        Err(InvocationError::Rpc(e)) if e.code == 401 => {}
        Err(e) => return Err(e.into()),
    }
    store
        .write(1, move |ctx| {
            let mut rec = ctx.account(account)?.clone();
            if rec.channel != CHANNEL {
                return Err(StoreError::UnknownAccount(account));
            }
            rec.secret = None;
            if let Ok(mut o) = serde_json::from_str::<UserOptions>(&rec.options) {
                o.removed_at = Some(ctx.now);
                rec.options = serde_json::to_string(&o).expect("options serialise");
            }
            ctx.put_account(rec)?;
            ctx.txn().open_table(ACCOUNT_MTSTATE)?.remove(account)?;
            Ok(())
        })
        .await?;
    tracing::info!(account, "Telegram user account logged out");
    Ok(())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
