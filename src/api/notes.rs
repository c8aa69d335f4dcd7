//! Private notes in a conversation: list, write (with `@name` mentions of teammates who can
//! see the conversation), delete your own (admins: any), and find notes by their words.
//! Notes never go to Telegram; every change is a `note.*` event on the live feed.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiError;
use super::extract::{Json, Path, Query};
use super::inbox::chat_key;
use crate::auth::{Caller, Role, users};
use crate::ingest::notes::MAX_NOTE_CHARS;
use crate::service::Service;
use crate::store::records::NoteBody;
use crate::view::conversation::may_handle;
use crate::view::notes::{self, NoteDto};
use crate::view::visible;

#[derive(Deserialize)]
pub struct NotesQuery {
    before: Option<u64>,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct NotePage {
    /// Newest first.
    notes: Vec<NoteDto>,
    /// Pass as `before` for older notes; `null` when there are none.
    older: Option<u64>,
}

fn limit(l: Option<u32>) -> Result<usize, ApiError> {
    match l.unwrap_or(50) {
        n @ 1..=200 => Ok(n as usize),
        _ => Err(ApiError::BadRequest("limit is 1 to 200".into())),
    }
}

pub async fn list(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<NotesQuery>,
) -> Result<Json<NotePage>, ApiError> {
    let key = chat_key(&id)?;
    let limit = limit(q.limit)?;
    let before = q.before.unwrap_or(u64::MAX);
    let page = s
        .store
        .read(move |r| {
            if visible::chat(r, &caller.grants, key)?.is_none() {
                return Ok(None);
            }
            let mut rows = notes::list(r, key, before, limit + 1)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let older = more.then(|| rows.last().map(|n| n.id)).flatten();
            Ok(Some(NotePage { notes: rows, older }))
        })
        .await?;
    page.map(Json).ok_or(ApiError::NotFound)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    text: String,
}

/// The `@name` words of a text, folded to lower case, without duplicates.
fn mentioned_names(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in text.match_indices('@') {
        let before_ok = text[..i].chars().next_back().is_none_or(|c| !c.is_alphanumeric());
        let name: String = text[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .collect();
        let name = name.trim_end_matches(['.', '-']).to_ascii_lowercase();
        if before_ok && !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

pub async fn create(
    State(s): State<Service>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<NewNote>,
) -> Result<(StatusCode, Json<NoteDto>), ApiError> {
    let key = chat_key(&id)?;
    let text = body.text.trim().to_string();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::invalid(
            "bad_note",
            format!("a note is 1 to {MAX_NOTE_CHARS} characters"),
        ));
    }
    let names = mentioned_names(&text);
    let g = caller.grants.clone();
    // Mentions name users who can see the conversation; other `@words` stay plain text.
    let mentions = s
        .store
        .read(move |r| {
            let Some(view) = visible::chat(r, &g, key)? else {
                return Ok(None);
            };
            let mut ids = Vec::new();
            for n in &names {
                if let Some(u) = users::by_name(r, n)?
                    && may_handle(r, u.id, &view.record)?
                {
                    ids.push(u.id);
                }
            }
            Ok(Some(ids))
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    let note = s
        .pipeline
        .create_note(key, caller.user, NoteBody { text, mentions })
        .await?
        .ok_or(ApiError::NotFound)?;
    let dto = s
        .store
        .read(move |r| notes::note(r, key, note))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((StatusCode::CREATED, Json(dto)))
}

pub async fn delete(
    State(s): State<Service>,
    caller: Caller,
    Path((id, note)): Path<(String, u64)>,
) -> Result<StatusCode, ApiError> {
    let key = chat_key(&id)?;
    let g = caller.grants.clone();
    if s.store.read(move |r| visible::chat(r, &g, key)).await?.is_none() {
        return Err(ApiError::NotFound);
    }
    let (me, admin) = (caller.user, caller.role == Role::Admin);
    match s
        .pipeline
        .delete_note(key, note, move |by| admin || by == me)
        .await?
    {
        None => Err(ApiError::NotFound),
        Some(false) => Err(ApiError::Forbidden),
        Some(true) => Ok(StatusCode::NO_CONTENT),
    }
}

#[derive(Deserialize)]
pub struct SearchQuery {
    q: String,
    limit: Option<u32>,
}

#[derive(Serialize)]
pub struct NoteHits {
    /// Newest first.
    notes: Vec<NoteDto>,
}

pub async fn search(
    State(s): State<Service>,
    caller: Caller,
    Query(q): Query<SearchQuery>,
) -> Result<Json<NoteHits>, ApiError> {
    let limit = limit(q.limit)?;
    if q.q.trim().is_empty() || q.q.len() > 1024 {
        return Err(ApiError::BadRequest("q is 1 to 1024 bytes".into()));
    }
    let found = s
        .store
        .read(move |r| notes::search(r, &caller.grants, &q.q, limit))
        .await?;
    Ok(Json(NoteHits { notes: found }))
}

#[cfg(test)]
mod tests {
    use super::mentioned_names;

    #[test]
    fn mentions_are_at_words_not_addresses() {
        assert_eq!(
            mentioned_names("@alice please ask @Bob.Smith, not bob@example.org or @alice again."),
            vec!["alice", "bob.smith"]
        );
        assert!(mentioned_names("no mentions @ all").is_empty());
    }
}
