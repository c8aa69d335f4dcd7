//! The inbox routes: chats (with last message and unread counts), the messages of a
//! chat in pages both ways, one message, marking read. Sending is in [`super::send`].

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::extract::{Credential, Json, Path, Query};
use crate::auth::{Caller, Grants};
use crate::model::{ChatKind, ConversationStatus};
use crate::service::Service;
use crate::store::ctx::unix_now;
use crate::store::read::ChatView;
use crate::store::{ChatKey, Reader, StoreError};
use crate::view::conversation::{self as conv, ConversationDto};
use crate::view::dto::{MessageDto, chat_id, parse_chat_id};
use crate::view::visible::{self, Towards};

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

/// The page size asked for; outside 1 to [`MAX_PAGE`] is refused (as the OpenAPI document
/// says), not silently changed.
fn page_size(limit: Option<u32>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n as usize),
        _ => Err(ApiError::BadRequest(format!("limit is 1 to {MAX_PAGE}"))),
    }
}

pub fn chat_key(s: &str) -> Result<ChatKey, ApiError> {
    parse_chat_id(s).ok_or(ApiError::NotFound)
}

#[derive(Serialize)]
pub struct ChatDto {
    id: String,
    telegram_id: i64,
    kind: &'static str,
    title: Option<String>,
    username: Option<String>,
    is_forum: bool,
    /// The caller's accounts that have this chat.
    accounts: Vec<u64>,
    /// Incoming messages the caller has not read (read state is per user).
    unread: u32,
    messages: u32,
    /// Incoming messages with a higher `id` are unread for the caller; `null` when nothing was
    /// read yet.
    read_up_to: Option<i64>,
    last_date: Option<i64>,
    last_message: Option<MessageDto>,
    /// The team's state of the conversation: status, assignee, labels.
    conversation: ConversationDto,
}

fn chat_dto(
    r: &crate::store::Reader,
    caller: &Caller,
    v: &ChatView,
) -> Result<ChatDto, crate::store::StoreError> {
    let last_message = visible::last_message(r, &caller.grants, v)?;
    let (read_up_to, unread) = visible::read_state(r, caller.user, v)?;
    let conversation = conv::dto(r, &conv::record(r, v.key)?, unix_now())?;
    Ok(ChatDto {
        id: chat_id(v.key),
        telegram_id: v.key.chat,
        kind: v.record.kind.as_str(),
        title: v.meta.title.clone(),
        username: v.meta.username.clone(),
        is_forum: v.record.is_forum,
        accounts: caller.grants.visible(&v.record.accounts),
        unread,
        messages: v.record.messages,
        read_up_to: (read_up_to != i64::MIN).then_some(read_up_to),
        last_date: last_message.as_ref().map(|m| m.date),
        last_message,
        conversation,
    })
}

#[derive(Deserialize)]
pub struct ChatsQuery {
    account: Option<u64>,
    unread: Option<bool>,
    kind: Option<String>,
    /// `me`, `none` (unassigned) or a user ID.
    assignee: Option<String>,
    /// `open`, `pending`, `snoozed` or `resolved`.
    status: Option<String>,
    /// A label ID.
    label: Option<u64>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Who a list asks for.
#[derive(Clone, Copy)]
enum AssigneeFilter {
    User(u64),
    Nobody,
}

fn parse_assignee(s: &str, me: u64) -> Result<AssigneeFilter, ApiError> {
    match s {
        "me" => Ok(AssigneeFilter::User(me)),
        "none" => Ok(AssigneeFilter::Nobody),
        n => n
            .parse()
            .map(AssigneeFilter::User)
            .map_err(|_| ApiError::BadRequest("assignee is me, none or a user ID".into())),
    }
}

/// How many conversations each list view holds, with the other filters applied.
#[derive(Serialize, Default)]
pub struct ViewCounts {
    /// Assigned to the caller.
    mine: u32,
    unassigned: u32,
    all: u32,
}

#[derive(Serialize)]
pub struct ChatPage {
    chats: Vec<ChatDto>,
    /// Pass as `cursor` for the next page; `null` at the end.
    next: Option<String>,
    /// The event log's end in the same snapshot: resuming the live feed from it misses nothing
    /// that happened after this page was read.
    last_seq: u64,
    /// Sizes of the "Mine", "Unassigned" and "All" views under the same filters (all but
    /// `assignee`).
    counts: ViewCounts,
}

fn parse_kind(s: &str) -> Result<ChatKind, ApiError> {
    [
        ChatKind::Private,
        ChatKind::Group,
        ChatKind::Supergroup,
        ChatKind::Channel,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .ok_or_else(|| ApiError::BadRequest("kind is one of private, group, supergroup, channel".into()))
}

/// Sort key of the chat list: newest activity first, then by chat.
type ChatOrder = (std::cmp::Reverse<i64>, u64, i64);

fn order_cursor(o: &ChatOrder) -> String {
    format!("{}_{}_{}", o.0.0, o.1, o.2)
}

fn parse_order(s: &str) -> Result<ChatOrder, ApiError> {
    let bad = || ApiError::invalid("bad_cursor", "the cursor is not one this list returned");
    let mut it = s.split('_');
    let (Some(d), Some(sc), Some(c), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    Ok((
        std::cmp::Reverse(d.parse().map_err(|_| bad())?),
        sc.parse().map_err(|_| bad())?,
        c.parse().map_err(|_| bad())?,
    ))
}

pub async fn chats(
    State(s): State<Service>,
    caller: Caller,
    Query(q): Query<ChatsQuery>,
) -> Result<Json<ChatPage>, ApiError> {
    let kind = q.kind.as_deref().map(parse_kind).transpose()?;
    let assignee = q
        .assignee
        .as_deref()
        .map(|a| parse_assignee(a, caller.user))
        .transpose()?;
    let status = q
        .status
        .as_deref()
        .map(|st| {
            ConversationStatus::parse(st).ok_or_else(|| {
                ApiError::BadRequest("status is one of open, pending, snoozed, resolved".into())
            })
        })
        .transpose()?;
    let after = q.cursor.as_deref().map(parse_order).transpose()?;
    let limit = page_size(q.limit)?;
    let page = s
        .store
        .read(move |r| {
            let only_unread = q.unread.unwrap_or(false);
            let now = unix_now();
            let mut counts = ViewCounts::default();
            let mut rows: Vec<(ChatOrder, ChatKey)> = Vec::new();
            for (k, rec) in visible::chats(r, &caller.grants)? {
                let wanted = q
                    .account
                    .is_none_or(|a| rec.accounts.contains(&a) && caller.grants.allows(a))
                    && kind.is_none_or(|kd| rec.kind == kd);
                if !wanted || (only_unread && visible::unread_of(r, caller.user, k, &rec)? == 0) {
                    continue;
                }
                let c = conv::record(r, k)?;
                if status.is_some_and(|st| conv::effective(&c, now) != st)
                    || q.label.is_some_and(|l| !c.labels.contains(&l))
                {
                    continue;
                }
                counts.all += 1;
                match c.assignee {
                    None => counts.unassigned += 1,
                    Some(u) if u == caller.user => counts.mine += 1,
                    Some(_) => {}
                }
                let in_view = match assignee {
                    None => true,
                    Some(AssigneeFilter::Nobody) => c.assignee.is_none(),
                    Some(AssigneeFilter::User(u)) => c.assignee == Some(u),
                };
                if !in_view {
                    continue;
                }
                let date = if rec.last_key.is_some() {
                    rec.last_date
                } else {
                    i64::MIN
                };
                let order = (std::cmp::Reverse(date), k.scope, k.chat);
                if after.is_none_or(|a| order > a) {
                    rows.push((order, k));
                }
            }
            rows.sort_unstable();
            let next = (rows.len() > limit).then(|| order_cursor(&rows[limit - 1].0));
            let mut chats = Vec::new();
            for (_, key) in rows.into_iter().take(limit) {
                if let Some(v) = visible::chat(r, &caller.grants, key)? {
                    chats.push(chat_dto(r, &caller, &v)?);
                }
            }
            Ok(ChatPage {
                chats,
                next,
                last_seq: r.last_seq()?,
                counts,
            })
        })
        .await?;
    Ok(Json(page))
}

pub async fn chat(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ChatDto>, ApiError> {
    let key = chat_key(&id)?;
    let out = s
        .store
        .read(move |r| match visible::chat(r, &caller.grants, key)? {
            Some(v) => Ok(Some(chat_dto(r, &caller, &v)?)),
            None => Ok(None),
        })
        .await?;
    out.map(Json).ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
pub struct MessagesQuery {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct MessagePage {
    /// Oldest first.
    messages: Vec<MessageDto>,
    /// Pass as `before` for the older page; `null` when there is none.
    older: Option<i64>,
    /// Pass as `after` for the newer page; `null` when there is none.
    newer: Option<i64>,
}

/// What a page of messages asks for.
struct PageAsk {
    key: ChatKey,
    limit: usize,
    before: Option<i64>,
    after: Option<i64>,
}

fn page_ask(id: &str, q: MessagesQuery) -> Result<PageAsk, ApiError> {
    let key = chat_key(id)?;
    if q.before.is_some() && q.after.is_some() {
        return Err(ApiError::BadRequest("give `before` or `after`, not both".into()));
    }
    Ok(PageAsk {
        key,
        limit: page_size(q.limit)?,
        before: q.before,
        after: q.after,
    })
}

/// The busiest read: the credential is checked in the same read transaction (and blocking-pool
/// hop) as the page, and what the request asks is judged only once it passed, as a [`Caller`]
/// extractor would have it (an unauthenticated request is told 401 whatever it asks).
pub async fn messages(
    State(s): State<Service>,
    credential: Credential,
    path: Result<Path<String>, ApiError>,
    query: Result<Query<MessagesQuery>, ApiError>,
) -> Result<Json<MessagePage>, ApiError> {
    let ask = path.and_then(|Path(id)| query.and_then(|Query(q)| page_ask(&id, q)));
    let page = s
        .store
        .read(move |r| {
            let caller = match credential.caller(r)? {
                Ok(c) => c,
                Err(e) => return Ok(Err(ApiError::from(e))),
            };
            let ask = match ask {
                Ok(a) => a,
                Err(e) => return Ok(Err(e)),
            };
            message_page(r, &caller.grants, ask).map(Ok)
        })
        .await??;
    page.map(Json).ok_or(ApiError::NotFound)
}

fn message_page(r: &Reader, g: &Grants, ask: PageAsk) -> Result<Option<MessagePage>, StoreError> {
    let PageAsk {
        key,
        limit,
        before,
        after,
    } = ask;
    let Some(view) = visible::chat(r, g, key)? else {
        return Ok(None);
    };
    let towards = match after {
        Some(above) => Towards::Newer { above },
        None => Towards::Older {
            below: before.unwrap_or(i64::MAX),
        },
    };
    let mut rows = visible::scan(r, g, key, towards, limit + 1)?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    if matches!(towards, Towards::Older { .. }) {
        rows.reverse();
    }
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.0.msg, l.0.msg),
        _ => {
            return Ok(Some(MessagePage {
                messages: Vec::new(),
                older: None,
                newer: None,
            }));
        }
    };
    let (older, newer) = match towards {
        Towards::Older { .. } => {
            let above = !visible::scan(r, g, key, Towards::Newer { above: last }, 1)?.is_empty();
            (more.then_some(first), above.then_some(last))
        }
        Towards::Newer { .. } => {
            let below = !visible::scan(r, g, key, Towards::Older { below: first }, 1)?.is_empty();
            (below.then_some(first), more.then_some(last))
        }
    };
    let messages = visible::open_rows(r, g, &view, rows)?;
    Ok(Some(MessagePage {
        messages,
        older,
        newer,
    }))
}

pub async fn message(
    State(s): State<Service>,
    caller: Caller,
    Path((id, msg)): Path<(String, i64)>,
) -> Result<Json<MessageDto>, ApiError> {
    let key = chat_key(&id)?.msg(msg);
    let out = s
        .store
        .read(move |r| visible::message(r, &caller.grants, key))
        .await?;
    out.map(Json).ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkRead {
    /// The `id` of the newest message read.
    up_to: i64,
}

#[derive(Serialize)]
pub struct ReadState {
    chat: String,
    unread: u32,
}

/// Sets the caller's own read position in a chat (a lower `up_to` marks messages unread
/// again); shared by REST and WebSocket. Only the caller's read state changes, and only their
/// own sessions hear of it (`chat.read`).
pub async fn mark_read_for(s: &Service, caller: &Caller, key: ChatKey, up_to: i64) -> Result<u32, ApiError> {
    let g = caller.grants.clone();
    let Some(view) = s.store.read(move |r| visible::chat(r, &g, key)).await? else {
        return Err(ApiError::NotFound);
    };
    let unread = s
        .pipeline
        .mark_read_by(key, caller.user, up_to)
        .await?
        .ok_or(ApiError::NotFound)?;
    // A user account also tells Telegram (the customer sees their messages read); bots cannot.
    for account in caller.grants.visible(&view.record.accounts) {
        s.outbox
            .read_on_telegram(account, key.chat, view.record.kind, up_to);
    }
    s.hub.publish(crate::live::Ephemeral::ChatRead {
        chat: key,
        accounts: view.record.accounts.clone(),
        user: caller.user,
        read_up_to: up_to,
        unread,
    });
    Ok(unread)
}

pub async fn mark_read(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<MarkRead>,
) -> Result<Json<ReadState>, ApiError> {
    let key = chat_key(&id)?;
    let unread = mark_read_for(&s, &caller, key, body.up_to).await?;
    Ok(Json(ReadState {
        chat: chat_id(key),
        unread,
    }))
}
