//! The contact panel beside a conversation: who it is with (name, username, Telegram ID,
//! language), the caller's accounts they have written to, and the other conversations they
//! share with the team, all cut to the caller's grants.
//!
//! The contact of a private chat is the other person; of a group, the last person who wrote in
//! it (whom a reply most likely answers). What Telegram says about a person (names, username,
//! `language_code`) arrives on each of their messages and is stored sealed in its content, so
//! the panel opens the newest incoming message of theirs the caller may see; a private chat
//! with none yet shows the chat's own name. Where else they wrote comes from the store's
//! `sender_chat` index (per account, so an account the caller is not granted adds nothing; built
//! from the stored messages on the first start of a store older than it); private chats with
//! the same person through the caller's other accounts are also found by key, even before they
//! wrote there. Labels are not shown: the box has none yet.

use std::collections::BTreeSet;

use serde::Serialize;

use super::dto::chat_id;
use super::visible::{self, Towards};
use crate::auth::Grants;
use crate::model::{ChatKind, Direction, Sender};
use crate::store::read::ChatView;
use crate::store::{ChatKey, Reader, StoreError};

/// Newest messages of the conversation read to find the contact's latest message.
const LOOK_BACK: usize = 200;
/// Chats per account read from the index, and conversations listed at most.
pub const MAX_CONVERSATIONS: usize = 50;

#[derive(Debug, Serialize)]
pub struct ContactDto {
    /// The conversation asked about.
    chat: String,
    /// `peer` (the other person of a private chat), `last_writer` (the last person who wrote
    /// in a group), or `none` (a group or channel nobody has written in yet).
    role: &'static str,
    contact: Option<PersonDto>,
    /// The caller's accounts this contact has written to (and those that have this chat).
    accounts: Vec<AccountRef>,
    /// Other conversations of this contact the caller may see, newest activity first.
    conversations: Vec<ConversationDto>,
}

#[derive(Debug, Serialize)]
pub struct PersonDto {
    telegram_id: i64,
    first_name: String,
    last_name: Option<String>,
    /// First and last name.
    name: String,
    username: Option<String>,
    /// Telegram's `language_code` (IETF tag, e.g. `de`), when the person's client sends one.
    language: Option<String>,
    is_bot: bool,
}

#[derive(Debug, Serialize)]
pub struct AccountRef {
    id: u64,
    name: String,
}

#[derive(Debug, Serialize)]
pub struct ConversationDto {
    id: String,
    telegram_id: i64,
    kind: &'static str,
    title: Option<String>,
    /// The caller's accounts that have this chat.
    accounts: Vec<u64>,
    last_date: Option<i64>,
}

/// The contact panel of a conversation, `None` when the caller may not see it.
pub fn contact(r: &Reader, g: &Grants, key: ChatKey) -> Result<Option<ContactDto>, StoreError> {
    let Some(view) = visible::chat(r, g, key)? else {
        return Ok(None);
    };
    let (role, person) = match find_person(r, g, &view)? {
        Some(p) if view.record.kind == ChatKind::Private => ("peer", Some(p)),
        Some(p) => ("last_writer", Some(p)),
        None if view.record.kind == ChatKind::Private => ("peer", Some(peer_from_chat(&view))),
        None => ("none", None),
    };
    let granted = visible::account_ids(r, g)?;
    let mut accounts: BTreeSet<u64> = g.visible(&view.record.accounts).into_iter().collect();
    let mut keys = BTreeSet::new();
    if let Some(p) = &person {
        for &a in &granted {
            let mut wrote = false;
            for (k, _) in r.sender_chats(a, p.telegram_id, MAX_CONVERSATIONS)? {
                keys.insert(k);
                wrote = true;
            }
            // A private chat with them through this account (also from before the index).
            let private = ChatKey {
                scope: a,
                chat: p.telegram_id,
            };
            if p.telegram_id > 0 && r.chat(private)?.is_some() {
                keys.insert(private);
                wrote = true;
            }
            if wrote {
                accounts.insert(a);
            }
        }
    }
    let mut conversations = Vec::new();
    let mut seen = BTreeSet::from([key]);
    for k in keys {
        // A basic group that became a supergroup lives on as the supergroup.
        let k = match r.chat(k)?.and_then(|c| c.record.migrated_to) {
            Some(to) => ChatKey { scope: 0, chat: to },
            None => k,
        };
        if !seen.insert(k) {
            continue;
        }
        let Some(v) = visible::chat(r, g, k)? else {
            continue;
        };
        conversations.push(ConversationDto {
            id: chat_id(k),
            telegram_id: k.chat,
            kind: v.record.kind.as_str(),
            title: v.meta.title.clone(),
            accounts: g.visible(&v.record.accounts),
            last_date: v.record.last_key.map(|_| v.record.last_date),
        });
    }
    conversations.sort_by(|a, b| b.last_date.cmp(&a.last_date).then_with(|| a.id.cmp(&b.id)));
    conversations.truncate(MAX_CONVERSATIONS);
    let mut names = Vec::new();
    for a in accounts {
        if let Some(rec) = r.account(a)? {
            names.push(AccountRef {
                id: a,
                name: rec.name,
            });
        }
    }
    Ok(Some(ContactDto {
        chat: chat_id(key),
        role,
        contact: person,
        accounts: names,
        conversations,
    }))
}

/// The person of the newest incoming message from a user the caller may see (in a private
/// chat, only the other person counts).
fn find_person(r: &Reader, g: &Grants, view: &ChatView) -> Result<Option<PersonDto>, StoreError> {
    let rows = visible::scan(r, g, view.key, Towards::Older { below: i64::MAX }, LOOK_BACK)?;
    let private = view.record.kind == ChatKind::Private;
    for (k, m) in rows {
        let theirs = if private {
            m.sender_id == view.key.chat
        } else {
            m.sender_id > 0
        };
        if m.direction != Direction::Incoming || !theirs {
            continue;
        }
        // A damaged message is walked past (the reader counts it).
        let Some(content) = r.skip_damaged(r.open_content(k, &m))? else {
            continue;
        };
        if let Sender::User(u) = content.sender {
            let name = match &u.last_name {
                Some(l) if !l.is_empty() => format!("{} {l}", u.first_name),
                _ => u.first_name.clone(),
            };
            return Ok(Some(PersonDto {
                telegram_id: u.id,
                first_name: u.first_name,
                last_name: u.last_name,
                name,
                username: u.username,
                language: u.language_code,
                is_bot: u.is_bot,
            }));
        }
    }
    Ok(None)
}

/// The other person of a private chat known only from the chat itself (no message of theirs
/// yet): its title is their name.
fn peer_from_chat(view: &ChatView) -> PersonDto {
    let name = view.meta.title.clone().unwrap_or_default();
    PersonDto {
        telegram_id: view.key.chat,
        first_name: name.split(' ').next().unwrap_or_default().to_string(),
        last_name: None,
        name,
        username: view.meta.username.clone(),
        language: None,
        is_bot: false,
    }
}
