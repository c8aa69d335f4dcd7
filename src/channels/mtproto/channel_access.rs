//! The access hash of each supergroup and channel a user account has received updates from.
//!
//! `updates.getChannelDifference` names its channel with the access hash, which Telegram hands
//! out only alongside the channel (in the `chats` of an update). grammers keeps the hashes it
//! sees in its in-memory session, which lanbox does not keep across restarts, so without this
//! table a restarted connector could not catch up a channel (grammers gives the channel up,
//! "missing its hash") and the channel's messages sent meanwhile were never fetched. The
//! connector records each new hash with the batch that brought it and gives them back to
//! grammers when it starts. A hash is an authorisation bound to this account's session, not
//! content; it is stored like the update state.
//!
//! The people's hashes are kept the same way ([`ACCOUNT_USER_ACCESS`]): sending to a private
//! chat names the person with theirs.

use grammers_client::peer::PeerMap;
use grammers_session::types::PeerInfo;
use redb::TableDefinition;

use crate::store::{Reader, StoreError, WriteCtx};

/// `(account, channel ID) -> access hash` (MTProto's bare channel ID).
pub const ACCOUNT_CHANNEL_ACCESS: TableDefinition<(u64, i64), i64> =
    TableDefinition::new("mtproto_account_channel_access");

/// `(account, user ID) -> access hash` of the people the account's updates described, so the
/// outbox can name a private chat to Telegram after a restart (grammers keeps them only in
/// memory). Same nature as the channels' hashes: an authorisation, not content.
pub const ACCOUNT_USER_ACCESS: TableDefinition<(u64, i64), i64> =
    TableDefinition::new("mtproto_account_user_access");

/// The people with a usable hash among `peers` (not the account itself).
pub fn users_seen(peers: &PeerMap) -> impl Iterator<Item = (i64, i64)> + '_ {
    peers.iter_peers().filter_map(|p| match PeerInfo::from(p) {
        PeerInfo::User {
            id,
            auth: Some(a),
            is_self,
            ..
        } if is_self != Some(true) => Some((id, a.hash())),
        _ => None,
    })
}

/// Inside a write job: records `(user, hash)` pairs for `account`.
pub fn put_users(ctx: &mut WriteCtx<'_>, account: u64, rows: &[(i64, i64)]) -> Result<(), StoreError> {
    put_into(ctx, ACCOUNT_USER_ACCESS, account, rows)
}

fn put_into(
    ctx: &mut WriteCtx<'_>,
    table: TableDefinition<(u64, i64), i64>,
    account: u64,
    rows: &[(i64, i64)],
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut t = ctx.txn().open_table(table)?;
    for &(id, hash) in rows {
        t.insert((account, id), hash)?;
    }
    Ok(())
}

fn lookup(
    r: &Reader,
    table: TableDefinition<(u64, i64), i64>,
    key: (u64, i64),
) -> Result<Option<i64>, StoreError> {
    let t = match r.txn().open_table(table) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(t.get(key)?.map(|v| v.value()))
}

/// The recorded hash of `channel` (bare ID) for `account`.
pub fn hash_of(r: &Reader, account: u64, channel: i64) -> Result<Option<i64>, StoreError> {
    lookup(r, ACCOUNT_CHANNEL_ACCESS, (account, channel))
}

/// The recorded hash of person `user` for `account`.
pub fn user_hash_of(r: &Reader, account: u64, user: i64) -> Result<Option<i64>, StoreError> {
    lookup(r, ACCOUNT_USER_ACCESS, (account, user))
}

/// The channels with a usable hash among `peers` (what an update described).
pub fn seen(peers: &PeerMap) -> impl Iterator<Item = (i64, i64)> + '_ {
    peers.iter_peers().filter_map(|p| match PeerInfo::from(p) {
        PeerInfo::Channel {
            id, auth: Some(a), ..
        } => Some((id, a.hash())),
        _ => None,
    })
}

/// Inside a write job: records `(channel, hash)` pairs for `account`.
pub fn put(ctx: &mut WriteCtx<'_>, account: u64, rows: &[(i64, i64)]) -> Result<(), StoreError> {
    put_into(ctx, ACCOUNT_CHANNEL_ACCESS, account, rows)
}

/// Every `(channel, hash)` recorded for `account`.
pub fn all(r: &Reader, account: u64) -> Result<Vec<(i64, i64)>, StoreError> {
    let t = match r.txn().open_table(ACCOUNT_CHANNEL_ACCESS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in t.range((account, i64::MIN)..=(account, i64::MAX))? {
        let (k, v) = row?;
        out.push((k.value().1, v.value()));
    }
    Ok(out)
}

/// Every `(user, hash)` recorded for `account`.
pub fn users(r: &Reader, account: u64) -> Result<Vec<(i64, i64)>, StoreError> {
    let t = match r.txn().open_table(ACCOUNT_USER_ACCESS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for row in t.range((account, i64::MIN)..=(account, i64::MAX))? {
        let (k, v) = row?;
        out.push((k.value().1, v.value()));
    }
    Ok(out)
}

/// Inside a write job: drops every row of `account`.
pub fn forget(ctx: &mut WriteCtx<'_>, account: u64) -> Result<(), StoreError> {
    let mut t = ctx.txn().open_table(ACCOUNT_CHANNEL_ACCESS)?;
    t.retain_in((account, i64::MIN)..=(account, i64::MAX), |_, _| false)?;
    let mut t = ctx.txn().open_table(ACCOUNT_USER_ACCESS)?;
    t.retain_in((account, i64::MIN)..=(account, i64::MAX), |_, _| false)?;
    Ok(())
}
