//! The messages an export holds: a chat's visible messages, oldest first, read in batches of
//! [`BATCH`], each batch in its own short read transaction (a long export never pins one
//! snapshot of the store), filtered by the caller's grants through the read model.

use crate::attachments::tables::{self, Role};
use crate::auth::Grants;
use crate::store::{ChatKey, Store};
use crate::view::dto::{MessageDto, chat_id};
use crate::view::visible::{self, Towards};

use super::ExportError;

/// Messages read per step.
pub const BATCH: usize = 200;

/// An optional period, Unix seconds, both ends inclusive.
#[derive(Debug, Clone, Copy, Default)]
pub struct Period {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl Period {
    pub fn holds(&self, t: i64) -> bool {
        self.from.is_none_or(|f| t >= f) && self.to.is_none_or(|to| t <= to)
    }
}

/// What the header of an export says about the chat.
#[derive(Debug, Clone)]
pub struct ChatHead {
    pub key: ChatKey,
    pub id: String,
    pub title: String,
    pub kind: &'static str,
    /// Names of the caller's accounts that have the chat.
    pub accounts: Vec<String>,
}

/// The chat as the caller may see it; `None` when they may not (the route answers 404).
pub fn chat_head(store: &Store, g: &Grants, key: ChatKey) -> Result<Option<ChatHead>, ExportError> {
    let r = store.reader()?;
    let Some(v) = visible::chat(&r, g, key)? else {
        return Ok(None);
    };
    let mut accounts = Vec::new();
    for a in visible::accounts(&r, g)? {
        if v.record.accounts.contains(&a.id) {
            accounts.push(a.name);
        }
    }
    let title = v
        .meta
        .title
        .clone()
        .or_else(|| v.meta.username.clone().map(|u| format!("@{u}")))
        .unwrap_or_else(|| format!("chat {}", key.chat));
    Ok(Some(ChatHead {
        key,
        id: chat_id(key),
        title,
        kind: v.record.kind.as_str(),
        accounts,
    }))
}

/// One message and the ids of its stored files.
pub struct Row {
    pub msg: MessageDto,
    pub files: Vec<(Role, u64)>,
    /// A short excerpt of the message it replies to (same chat, visible), for transcripts.
    pub reply_excerpt: Option<String>,
}

/// Walks a chat's visible messages, oldest first.
pub struct Messages {
    store: Store,
    grants: Grants,
    key: ChatKey,
    period: Period,
    after: i64,
    excerpts: bool,
    done: bool,
}

impl Messages {
    pub fn new(store: Store, grants: Grants, key: ChatKey, period: Period, excerpts: bool) -> Messages {
        Messages {
            store,
            grants,
            key,
            period,
            after: i64::MIN,
            excerpts,
            done: false,
        }
    }

    /// The next batch; `None` at the end (or once the chat is no longer visible).
    pub fn next_batch(&mut self) -> Result<Option<Vec<Row>>, ExportError> {
        while !self.done {
            let r = self.store.reader()?;
            let g = &self.grants;
            let Some(view) = visible::chat(&r, g, self.key)? else {
                self.done = true;
                break;
            };
            let rows = visible::scan(&r, g, self.key, Towards::Newer { above: self.after }, BATCH)?;
            let Some((last, _)) = rows.last() else {
                self.done = true;
                break;
            };
            self.after = last.msg;
            self.done = rows.len() < BATCH;
            let mut out = Vec::new();
            for msg in visible::open_rows(&r, g, &view, rows)? {
                if !self.period.holds(msg.date) {
                    continue;
                }
                let files = tables::read_of_message(r.txn(), self.key.msg(msg.id))?;
                let reply_excerpt = match (&msg.reply_to, self.excerpts) {
                    (Some(rt), true) if rt.chat_id.is_none() => {
                        visible::message(&r, g, self.key.msg(rt.message_id))?
                            .and_then(|m| m.text)
                            .map(|t| excerpt(&t, 120))
                    }
                    _ => None,
                };
                out.push(Row {
                    msg,
                    files,
                    reply_excerpt,
                });
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
        Ok(None)
    }
}

/// The first `n` characters of a text, on one line.
pub fn excerpt(t: &str, n: usize) -> String {
    let mut s: String = t
        .chars()
        .take(n)
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if t.chars().count() > n {
        s.push('…');
    }
    s
}
