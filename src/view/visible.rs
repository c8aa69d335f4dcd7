//! Grants filtering, in one place. Every route and every live event asks these functions what
//! the caller may see; nothing else reads chats or messages on a caller's behalf.
//!
//! The rule: an account is visible when granted; a chat when one of the accounts that have it
//! is granted; a message when one of the accounts that received it (`seen_by`) is granted; an
//! event when one of its `accounts` is granted. What is not visible does not exist for the
//! caller: routes answer 404, lists leave it out, the feed skips it.

use super::dto::{MessageDto, SentByDto, TokenRefDto};
use crate::auth::{Grants, users};
use crate::model::{Direction, Message};
use crate::outbox::jobs as outbox;
use crate::store::read::ChatView;
use crate::store::records::{AccountRecord, ChatRecord, StoredMessage};
use crate::store::{ChatKey, MsgKey, Reader, StoreError};

/// Rows read per step when a page has to skip invisible messages.
const SCAN_STEP: usize = 256;

pub fn accounts(r: &Reader, g: &Grants) -> Result<Vec<AccountRecord>, StoreError> {
    Ok(r.accounts()?.into_iter().filter(|a| g.allows(a.id)).collect())
}

pub fn account_ids(r: &Reader, g: &Grants) -> Result<Vec<u64>, StoreError> {
    Ok(accounts(r, g)?.into_iter().map(|a| a.id).collect())
}

/// The rule itself: something that names these accounts is visible when one is granted.
pub fn any(g: &Grants, accounts: &[u64]) -> bool {
    g.allows_any(accounts)
}

pub fn chat_record(g: &Grants, rec: &ChatRecord) -> bool {
    rec.migrated_to.is_none() && any(g, &rec.accounts)
}

/// Every visible chat, metadata still sealed.
pub fn chats(r: &Reader, g: &Grants) -> Result<Vec<(ChatKey, ChatRecord)>, StoreError> {
    Ok(r.chat_records()?
        .into_iter()
        .filter(|(_, rec)| chat_record(g, rec))
        .collect())
}

pub fn chat(r: &Reader, g: &Grants, key: ChatKey) -> Result<Option<ChatView>, StoreError> {
    Ok(r.chat(key)?.filter(|c| chat_record(g, &c.record)))
}

pub fn stored(g: &Grants, m: &StoredMessage) -> bool {
    any(g, &m.seen_by)
}

/// Events (logged, and the ephemeral ones with the accounts they concern).
pub fn event(g: &Grants, accounts: &[u64]) -> bool {
    any(g, accounts)
}

/// A message as the caller sees it (its `accounts` cut to the granted ones).
pub fn dto(g: &Grants, key: MsgKey, m: &Message, seen_by: &[u64]) -> MessageDto {
    MessageDto::new(key, m, g.visible(seen_by))
}

/// One visible message.
pub fn message(r: &Reader, g: &Grants, key: MsgKey) -> Result<Option<MessageDto>, StoreError> {
    let Some(view) = chat(r, g, key.chat_key())? else {
        return Ok(None);
    };
    let Some(mut s) = r.stored_message(key)?.filter(|s| stored(g, s)) else {
        return Ok(None);
    };
    let seen_by = std::mem::take(&mut s.seen_by);
    let reactions = r.reactions(key, s.owner)?;
    let m = r.open_message(key, s, view.chat())?;
    let by = sent_by(r, key, &m)?;
    Ok(Some(
        MessageDto::from_message(key, m, g.visible(&seen_by))
            .with_reactions(&reactions)
            .with_sent_by(by),
    ))
}

/// A user's read position and unread count in a chat: their own when they have moved it,
/// else the chat's shared one (see `CHAT_USER_READ` in the store's tables).
pub fn read_state(r: &Reader, user: u64, v: &ChatView) -> Result<(i64, u32), StoreError> {
    Ok(r.user_read(v.key, user)?
        .unwrap_or((v.record.read_up_to, v.record.unread)))
}

/// A user's unread count in a chat (as [`read_state`]).
pub fn unread_of(r: &Reader, user: u64, key: ChatKey, rec: &ChatRecord) -> Result<u32, StoreError> {
    Ok(r.user_read(key, user)?.map_or(rec.unread, |(_, u)| u))
}

/// A user's unread count per account: the sum over the account's chats they may see.
pub fn account_unread(
    r: &Reader,
    g: &Grants,
    user: u64,
) -> Result<std::collections::HashMap<u64, u64>, StoreError> {
    let mut out = std::collections::HashMap::new();
    for (k, rec) in chats(r, g)? {
        let n = u64::from(unread_of(r, user, k, &rec)?);
        if n == 0 {
            continue;
        }
        for &a in rec.accounts.iter().filter(|a| g.allows(**a)) {
            *out.entry(a).or_insert(0) += n;
        }
    }
    Ok(out)
}

/// The lanbox user who sent an outgoing message through the outbox (the item records them).
fn sent_by(r: &Reader, key: MsgKey, m: &Message) -> Result<Option<SentByDto>, StoreError> {
    if m.direction != Direction::Outgoing {
        return Ok(None);
    }
    let Some(outbox::Sender { user, token }) = outbox::sent_by(r.txn(), key)? else {
        return Ok(None);
    };
    let token = token
        .map(|hash| -> Result<TokenRefDto, StoreError> {
            Ok(TokenRefDto {
                id: crate::auth::manage::token_id(&hash),
                label: crate::auth::manage::token(r, &hash)?.map(|t| t.label),
            })
        })
        .transpose()?;
    Ok(Some(SentByDto {
        user,
        name: users::by_id(r, user)?.map(|u| u.name),
        token,
    }))
}

/// Where a page of a chat goes from its bound (exclusive).
#[derive(Debug, Clone, Copy)]
pub enum Towards {
    Older { below: i64 },
    Newer { above: i64 },
}

/// Up to `want` visible messages from the bound on, in walking order (newest first for
/// `Older`), still sealed.
pub fn scan(
    r: &Reader,
    g: &Grants,
    chat: ChatKey,
    towards: Towards,
    want: usize,
) -> Result<Vec<(MsgKey, StoredMessage)>, StoreError> {
    let mut out = Vec::new();
    let mut bound = towards;
    // Read about as many rows as wanted (a chat list wants one per chat), not a fixed 256: the
    // rows pass through redb's cache, and a page of chats would otherwise pull in megabytes.
    let step = want.clamp(16, SCAN_STEP);
    while out.len() < want {
        let rows = match bound {
            Towards::Older { below } if below > i64::MIN => {
                r.chat_stored_rev(chat, i64::MIN, below - 1, step)?
            }
            Towards::Newer { above } if above < i64::MAX => r.chat_stored(chat, above + 1, i64::MAX, step)?,
            _ => break,
        };
        let Some((last, _)) = rows.last() else { break };
        bound = match bound {
            Towards::Older { .. } => Towards::Older { below: last.msg },
            Towards::Newer { .. } => Towards::Newer { above: last.msg },
        };
        let full = rows.len() == step;
        // A damaged record (`None`, counted by the reader) is walked past, not shown.
        out.extend(
            rows.into_iter()
                .filter_map(|(k, m)| Some((k, m?)))
                .filter(|(_, m)| stored(g, m))
                .take(want - out.len()),
        );
        if !full {
            break;
        }
    }
    Ok(out)
}

/// Opens scanned rows for the caller. A message whose content fails to open (damaged) is left
/// out of the page, and damaged reactions read as none; the reader counts both, and the rest of
/// the chat stays readable.
pub fn open_rows(
    r: &Reader,
    g: &Grants,
    view: &ChatView,
    rows: Vec<(MsgKey, StoredMessage)>,
) -> Result<Vec<MessageDto>, StoreError> {
    let chat = view.chat();
    let mut out = Vec::with_capacity(rows.len());
    let owners: Vec<_> = rows.iter().map(|(k, s)| (*k, s.owner)).collect();
    let mut reactions = r.skip_damaged(r.reactions_each(&owners))?.map(Vec::into_iter);
    for (k, mut s) in rows {
        // The message is taken apart, not copied: `seen_by` out of the record, the text into
        // the answer.
        let seen_by = std::mem::take(&mut s.seen_by);
        let reactions = match reactions.as_mut().and_then(Iterator::next) {
            Some(got) => r.skip_damaged(got)?.unwrap_or_default(),
            None => Default::default(),
        };
        let Some(m) = r.skip_damaged(r.open_message(k, s, chat.clone()))? else {
            continue;
        };
        let by = sent_by(r, k, &m)?;
        out.push(
            MessageDto::from_message(k, m, g.visible(&seen_by))
                .with_reactions(&reactions)
                .with_sent_by(by),
        );
    }
    Ok(out)
}

/// The newest message of a chat the caller may see.
pub fn last_message(r: &Reader, g: &Grants, view: &ChatView) -> Result<Option<MessageDto>, StoreError> {
    let Some(last) = view.record.last_key else {
        return Ok(None);
    };
    let below = last.saturating_add(1);
    let rows = scan(r, g, view.key, Towards::Older { below }, 1)?;
    Ok(open_rows(r, g, view, rows)?.pop())
}
