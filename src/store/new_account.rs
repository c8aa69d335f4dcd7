//! A new account: its record, and a fresh data key wrapped by the master key.

use super::records::AccountRecord;
use super::{Store, StoreError, WriteCtx};

/// What the operator supplies for a new account.
#[derive(Debug, Clone, Default)]
pub struct NewAccount {
    pub channel: String,
    pub name: String,
    pub rented: bool,
    pub daily_limit: Option<u32>,
    /// Channel credentials (bot token): sealed with the account's own key before storing.
    pub secret: Option<Vec<u8>>,
    pub options: String,
}

/// Inside a write job: allocates the ID, creates and wraps the data key, stores the record.
pub fn create_in(ctx: &mut WriteCtx<'_>, spec: &NewAccount) -> Result<AccountRecord, StoreError> {
    let id = ctx.next_account_id()?;
    let (sealer, wrapped_key) = ctx.keyring().new_data_key(id)?;
    let secret = match &spec.secret {
        Some(s) => Some(sealer.seal(s, &secret_aad(id))?),
        None => None,
    };
    let rec = AccountRecord {
        id,
        channel: spec.channel.clone(),
        name: spec.name.clone(),
        rented: spec.rented,
        daily_limit: spec.daily_limit,
        wrapped_key,
        secret,
        options: spec.options.clone(),
        created_at: ctx.now,
    };
    ctx.put_account(rec.clone())?;
    Ok(rec)
}

/// Associated data for an account's sealed secret.
pub fn secret_aad(id: u64) -> [u8; 14] {
    let mut out = [0u8; 14];
    out[..6].copy_from_slice(b"secret");
    out[6..].copy_from_slice(&id.to_be_bytes());
    out
}

pub async fn create(store: &Store, spec: NewAccount) -> Result<AccountRecord, StoreError> {
    store.write(1, move |ctx| create_in(ctx, &spec)).await
}

pub fn create_blocking(store: &Store, spec: NewAccount) -> Result<AccountRecord, StoreError> {
    store.write_blocking(1, move |ctx| create_in(ctx, &spec))
}
