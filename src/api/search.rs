//! Full-text search over what the caller may see, newest first, with snippets.
//!
//! The index is asked only about the caller's accounts (its `allowed_accounts`), and every hit
//! is then opened through [`visible`], so a hit outside the grants cannot slip through even if
//! the index were wrong.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::extract::{Json, Query};
use crate::auth::Caller;
use crate::model::{BodyKind, Direction};
use crate::search::{self, Cursor, Filter};
use crate::service::Service;
use crate::view::dto::{MessageDto, parse_chat_id, utf16_at};
use crate::view::visible;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: String,
    /// Comma-separated account IDs.
    account: Option<String>,
    /// A chat `id` (`scope:chat`).
    chat: Option<String>,
    /// Comma-separated message kinds (`text`, `image`, ...).
    kind: Option<String>,
    direction: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize)]
pub struct Mark {
    offset: u32,
    length: u32,
}

#[derive(Serialize)]
pub struct SnippetDto {
    text: String,
    /// Matched words in `text` (UTF-16 offsets).
    marks: Vec<Mark>,
}

#[derive(Serialize)]
pub struct HitDto {
    message: MessageDto,
    snippet: SnippetDto,
}

#[derive(Serialize)]
pub struct SearchReply {
    hits: Vec<HitDto>,
    /// Pass as `cursor` for the next page; `null` at the end.
    next: Option<String>,
    /// The query's last word was matched as a prefix (typing `appoint` finds "appointment").
    prefix: bool,
}

/// A comma-separated list, as the OpenAPI document spells it: no empty items, no spaces.
fn list<T>(s: Option<&str>, parse: impl Fn(&str) -> Option<T>, what: &str) -> Result<Vec<T>, ApiError> {
    s.into_iter()
        .flat_map(|s| s.split(','))
        .map(|p| parse(p).ok_or_else(|| ApiError::BadRequest(format!("unknown {what}"))))
        .collect()
}

pub async fn search(
    State(s): State<Service>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchReply>, ApiError> {
    let chat = q
        .chat
        .as_deref()
        .map(|c| parse_chat_id(c).ok_or_else(|| ApiError::BadRequest("unknown chat".into())))
        .transpose()?;
    let filter = Filter {
        accounts: list(
            q.account.as_deref(),
            |p| {
                p.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| p.parse().ok())
                    .flatten()
            },
            "account",
        )?,
        chats: chat.map(|c| vec![c.chat]).unwrap_or_default(),
        senders: Vec::new(),
        direction: match q.direction.as_deref() {
            None => None,
            Some("incoming") => Some(Direction::Incoming),
            Some("outgoing") => Some(Direction::Outgoing),
            Some(_) => return Err(ApiError::BadRequest("direction is incoming or outgoing".into())),
        },
        kinds: list(
            q.kind.as_deref(),
            |p| BodyKind::ALL.into_iter().find(|k| k.as_str() == p),
            "kind",
        )?,
        since: q.since,
        until: q.until,
    };
    let cursor = q.cursor.as_deref().map(str::parse::<Cursor>).transpose()?;
    let (text, limit) = (q.q, q.limit.unwrap_or(0));
    let reply = s
        .store
        .try_read(move |r| {
            let g = &caller.grants;
            let mut query = search::Query::new(text, &visible::account_ids(r, g)?);
            query.filter = filter;
            query.limit = limit;
            query.cursor = cursor;
            let page = search::search(r, &query)?;
            let mut hits = Vec::new();
            for h in page.hits {
                if chat.is_some_and(|c| c != h.key.chat_key()) {
                    continue;
                }
                let Some(message) = visible::message(r, g, h.key)? else {
                    continue;
                };
                let sn = &h.snippet;
                let marks = sn
                    .marks
                    .iter()
                    .map(|&(a, b)| {
                        let offset = utf16_at(&sn.text, a as usize);
                        Mark {
                            offset,
                            length: utf16_at(&sn.text, b as usize) - offset,
                        }
                    })
                    .collect();
                hits.push(HitDto {
                    message,
                    snippet: SnippetDto {
                        text: sn.text.clone(),
                        marks,
                    },
                });
            }
            Ok::<_, ApiError>(SearchReply {
                hits,
                next: page.next.map(|c| c.to_string()),
                prefix: page.prefix,
            })
        })
        .await?;
    Ok(Json(reply))
}
