//! The user accounts of the box as the command line lists them: never the session, never the
//! phone number.

use serde::Serialize;

use super::CHANNEL;
use super::backfill::BackfillOptions;
use super::login::UserOptions;
use crate::store::records::AccountRecord;
use crate::store::{Store, StoreError};

/// What may be shown of a user account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserSummary {
    pub id: u64,
    /// Always `user`, so JSON lines tell it from a bot.
    pub kind: &'static str,
    pub name: String,
    pub rented: bool,
    /// The person's Telegram user ID.
    pub user_id: i64,
    /// False once the session is gone (logged out elsewhere, or its options are damaged).
    pub signed_in: bool,
    pub created_at: i64,
}

/// The user account `rec` is, unless it is another channel's or was removed.
pub fn summary(rec: &AccountRecord) -> Option<UserSummary> {
    if rec.channel != CHANNEL {
        return None;
    }
    let options = serde_json::from_str::<UserOptions>(&rec.options).ok();
    if options.as_ref().is_some_and(|o| o.removed_at.is_some()) {
        return None;
    }
    Some(UserSummary {
        id: rec.id,
        kind: "user",
        name: rec.name.clone(),
        rented: rec.rented,
        user_id: options.as_ref().map_or(0, |o| o.user_id),
        signed_in: options.is_some() && rec.secret.is_some(),
        created_at: rec.created_at,
    })
}

/// Every user account that was not removed, by ID.
pub async fn list(store: &Store) -> Result<Vec<UserSummary>, StoreError> {
    let records = store.read(|r| r.accounts()).await?;
    Ok(records.iter().filter_map(summary).collect())
}

/// A plain-text table of user accounts, for the command line.
pub fn table(accounts: &[UserSummary]) -> String {
    let mut rows = vec![[
        "ID".to_owned(),
        "NAME".to_owned(),
        "TELEGRAM USER".to_owned(),
        "RENTED".to_owned(),
        "SIGNED IN".to_owned(),
    ]];
    for a in accounts {
        rows.push([
            a.id.to_string(),
            a.name.clone(),
            a.user_id.to_string(),
            if a.rented { "yes" } else { "no" }.to_owned(),
            if a.signed_in { "yes" } else { "no" }.to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Changes a user account's label, rented flag or daily limit (`None` leaves one as it is;
/// `Some(None)` removes the limit). `None` when there is no such user account, or it was
/// removed.
pub async fn update(
    store: &Store,
    id: u64,
    name: Option<String>,
    rented: Option<bool>,
    daily_limit: Option<Option<u32>>,
) -> Result<Option<UserSummary>, StoreError> {
    store
        .write(1, move |ctx| {
            let mut rec = match ctx.account(id) {
                Ok(rec) => rec.clone(),
                Err(StoreError::UnknownAccount(_)) => return Ok(None),
                Err(e) => return Err(e),
            };
            if summary(&rec).is_none() {
                return Ok(None);
            }
            if let Some(name) = &name {
                rec.name = name.clone();
            }
            if let Some(rented) = rented {
                rec.rented = rented;
            }
            if let Some(limit) = daily_limit {
                rec.daily_limit = limit;
            }
            ctx.put_account(rec.clone())?;
            Ok(summary(&rec))
        })
        .await
}

/// Changes a user account's backfill settings (they apply from its next connection); false
/// when there is no such user account.
pub async fn set_backfill(store: &Store, id: u64, options: BackfillOptions) -> Result<bool, StoreError> {
    store
        .write(1, move |ctx| {
            let mut rec = match ctx.account(id) {
                Ok(rec) => rec.clone(),
                Err(StoreError::UnknownAccount(_)) => return Ok(false),
                Err(e) => return Err(e),
            };
            if rec.channel != CHANNEL {
                return Ok(false);
            }
            let Ok(mut user) = serde_json::from_str::<UserOptions>(&rec.options) else {
                return Ok(false);
            };
            user.backfill = options;
            rec.options = serde_json::to_string(&user).expect("options serialise");
            ctx.put_account(rec)?;
            Ok(true)
        })
        .await
}
