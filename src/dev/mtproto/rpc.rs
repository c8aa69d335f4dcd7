//! The API methods the simulator answers, decoded with grammers' TL types
//! (`deserializable-functions`): the connection wrappers (`invokeWithLayer`, `initConnection`,
//! `invokeWithoutUpdates`), `help.getConfig`, login (`auth.sendCode`, `auth.signIn`, and for a
//! 2FA account `account.getPassword` and `auth.checkPassword`; `auth.logOut`), the
//! update sequence (`updates.getState`, `updates.getDifference`, `updates.getChannelDifference`),
//! and what [`super::sending`] answers (sending, edits, deletes, typing, reads). Anything else is answered `400 INPUT_METHOD_INVALID`, so a connector that calls more
//! than the simulator knows fails loudly instead of getting a made-up answer. A fault scheduled
//! for a method ([`super::MtSimulator::fail_next`]) answers its next call instead.

use std::time::Instant;

use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};

use super::Shared;
use super::tl_build;
use super::world::{Step, now};

/// The answer to one call: the result object's bytes, or an RPC error.
#[derive(Debug)]
pub(super) enum Answer {
    Ok(Vec<u8>),
    Err(i32, String),
}

fn err(code: i32, message: &str) -> Answer {
    Answer::Err(code, message.to_string())
}

/// The generic query inside a wrapper, kept as bytes.
struct Rest(Vec<u8>);

impl Deserializable for Rest {
    fn deserialize(buf: &mut Cursor<'_>) -> tl::deserialize::Result<Rest> {
        let mut v = Vec::new();
        buf.read_to_end(&mut v)?;
        Ok(Rest(v))
    }
}

/// A function's fields (grammers' generated `deserialize` starts after the constructor ID,
/// which the caller has matched already).
fn decode<T: Deserializable>(body: &[u8]) -> Result<T, Answer> {
    T::from_bytes(&body[4..]).map_err(|_| err(400, "INPUT_REQUEST_INVALID"))
}

/// Answers one call (after the wrappers, which nest at most a few deep).
pub(super) fn call(shared: &Shared, body: &[u8]) -> Answer {
    call_at(shared, body, 0).unwrap_or_else(|a| a)
}

fn call_at(shared: &Shared, body: &[u8], depth: u8) -> Result<Answer, Answer> {
    let Some(id) = body
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    else {
        return Err(err(400, "INPUT_REQUEST_INVALID"));
    };
    if depth > 4 {
        return Err(err(400, "INPUT_REQUEST_TOO_DEEP"));
    }
    let name = tl::name_for_id(id);
    let fault = {
        let mut w = shared.lock();
        w.record_call(name);
        w.take_fault(name)
    };
    if let Some((code, message)) = fault {
        return Err(Answer::Err(code, message));
    }
    if let Some(r) = super::sending::call(shared, id, body) {
        return r.map(Answer::Ok).map_err(|(code, m)| Answer::Err(code, m));
    }
    use tl::functions as f;
    match id {
        f::InvokeWithLayer::<Rest>::CONSTRUCTOR_ID => {
            let w: f::InvokeWithLayer<Rest> = decode(body)?;
            call_at(shared, &w.query.0, depth + 1)
        }
        f::InitConnection::<Rest>::CONSTRUCTOR_ID => {
            let w: f::InitConnection<Rest> = decode(body)?;
            call_at(shared, &w.query.0, depth + 1)
        }
        f::InvokeWithoutUpdates::<Rest>::CONSTRUCTOR_ID => {
            let w: f::InvokeWithoutUpdates<Rest> = decode(body)?;
            call_at(shared, &w.query.0, depth + 1)
        }
        f::help::GetConfig::CONSTRUCTOR_ID => Ok(ok(&tl_build::config(shared.addr, now()))),
        f::auth::SendCode::CONSTRUCTOR_ID => send_code(shared, decode(body)?),
        f::auth::SignIn::CONSTRUCTOR_ID => sign_in(shared, decode(body)?),
        f::account::GetPassword::CONSTRUCTOR_ID => get_password(shared),
        f::auth::LogOut::CONSTRUCTOR_ID => {
            let mut w = authorized(shared)?;
            w.authorized = false;
            Ok(ok(&tl::enums::auth::LoggedOut::Out(tl::types::auth::LoggedOut {
                future_auth_token: None,
            })))
        }
        f::auth::CheckPassword::CONSTRUCTOR_ID => check_password(shared, decode(body)?),
        f::updates::GetState::CONSTRUCTOR_ID => {
            let w = authorized(shared)?;
            Ok(ok(&tl_build::state(w.pts, w.date, w.seq)))
        }
        f::updates::GetDifference::CONSTRUCTOR_ID => difference(shared, decode(body)?),
        f::updates::GetChannelDifference::CONSTRUCTOR_ID => channel_difference(shared, decode(body)?),
        f::messages::GetDialogs::CONSTRUCTOR_ID => rpc_of(super::history::dialogs(shared, decode(body)?)),
        f::messages::GetHistory::CONSTRUCTOR_ID => rpc_of(super::history::history(shared, decode(body)?)),
        _ => Err(err(400, "INPUT_METHOD_INVALID")),
    }
}

/// An answer of `history.rs` (which cannot name [`Answer`] without an import circle).
fn rpc_of(r: Result<Vec<u8>, (i32, String)>) -> Result<Answer, Answer> {
    r.map(Answer::Ok).map_err(|(code, name)| Answer::Err(code, name))
}

fn ok(v: &impl Serializable) -> Answer {
    Answer::Ok(v.to_bytes())
}

/// The world, when this connection's auth key is signed in; `401 AUTH_KEY_UNREGISTERED` otherwise.
fn authorized(shared: &Shared) -> Result<std::sync::MutexGuard<'_, super::world::World>, Answer> {
    let w = shared.lock();
    if w.authorized {
        Ok(w)
    } else {
        Err(err(401, "AUTH_KEY_UNREGISTERED"))
    }
}

fn send_code(shared: &Shared, req: tl::functions::auth::SendCode) -> Result<Answer, Answer> {
    let mut w = shared.lock();
    if req.api_id <= 0 || req.api_hash.is_empty() {
        return Err(err(400, "API_ID_INVALID"));
    }
    if w.me.phone.as_deref() != Some(req.phone_number.as_str()) {
        return Err(err(400, "PHONE_NUMBER_INVALID"));
    }
    let pending = w.new_code();
    Ok(ok(&tl::enums::auth::SentCode::Code(tl::types::auth::SentCode {
        r#type: tl::types::auth::SentCodeTypeApp { length: 5 }.into(),
        phone_code_hash: pending.hash,
        next_type: None,
        timeout: None,
    })))
}

fn sign_in(shared: &Shared, req: tl::functions::auth::SignIn) -> Result<Answer, Answer> {
    let mut w = shared.lock();
    if w.me.phone.as_deref() != Some(req.phone_number.as_str()) {
        return Err(err(400, "PHONE_NUMBER_INVALID"));
    }
    let Some(pending) = w.code.clone() else {
        return Err(err(400, "PHONE_CODE_EXPIRED"));
    };
    if pending.hash != req.phone_code_hash {
        return Err(err(400, "PHONE_CODE_HASH_EMPTY"));
    }
    if Instant::now() >= pending.expires {
        w.code = None;
        return Err(err(400, "PHONE_CODE_EXPIRED"));
    }
    if req.phone_code.as_deref() != Some(pending.code.as_str()) {
        return Err(err(400, "PHONE_CODE_INVALID"));
    }
    w.code = None;
    if w.password.is_some() {
        w.password_pending = true;
        return Err(err(401, "SESSION_PASSWORD_NEEDED"));
    }
    Ok(signed_in(&mut w))
}

/// Signs the key in and answers with the account's user.
fn signed_in(w: &mut super::world::World) -> Answer {
    w.authorized = true;
    w.password_pending = false;
    let user = tl_build::user(&w.me, true);
    ok(&tl::enums::auth::Authorization::Authorization(
        tl::types::auth::Authorization {
            setup_password_required: false,
            otherwise_relogin_days: None,
            tmp_sessions: None,
            future_auth_token: None,
            user,
        },
    ))
}

/// `account.getPassword`: the SRP parameters and a fresh challenge.
fn get_password(shared: &Shared) -> Result<Answer, Answer> {
    let mut w = shared.lock();
    if !w.authorized && !w.password_pending {
        return Err(err(401, "AUTH_KEY_UNREGISTERED"));
    }
    let Some(v) = w.password.clone() else {
        return Ok(ok(&tl_build::password(None, None)));
    };
    let c = v.challenge(super::world::random_i64());
    w.challenge = Some(c.clone());
    Ok(ok(&tl_build::password(Some(&v), Some(&c))))
}

/// `auth.checkPassword`: verifies the SRP proof against the last challenge (used once).
fn check_password(shared: &Shared, req: tl::functions::auth::CheckPassword) -> Result<Answer, Answer> {
    let mut w = shared.lock();
    if !w.password_pending {
        return Err(err(400, "PASSWORD_HASH_INVALID"));
    }
    let tl::enums::InputCheckPasswordSrp::Srp(proof) = req.password else {
        return Err(err(400, "PASSWORD_HASH_INVALID"));
    };
    let (Some(v), Some(c)) = (w.password.clone(), w.challenge.take()) else {
        return Err(err(400, "SRP_ID_INVALID"));
    };
    if c.srp_id != proof.srp_id {
        return Err(err(400, "SRP_ID_INVALID"));
    }
    if !v.check(&c, &proof.a, &proof.m1) {
        return Err(err(400, "PASSWORD_HASH_INVALID"));
    }
    Ok(signed_in(&mut w))
}

fn difference(shared: &Shared, req: tl::functions::updates::GetDifference) -> Result<Answer, Answer> {
    let w = authorized(shared)?;
    let page = shared.difference_page;
    let Some(entries) = w.after(req.pts, page) else {
        return Ok(ok(&tl::enums::updates::Difference::TooLong(
            tl::types::updates::DifferenceTooLong { pts: w.pts },
        )));
    };
    let channels = w.channels_since(req.date);
    let Some(last) = entries.last() else {
        if channels.is_empty() {
            return Ok(ok(&tl::enums::updates::Difference::Empty(
                tl::types::updates::DifferenceEmpty {
                    date: w.date,
                    seq: w.seq,
                },
            )));
        }
        let (users, chats) = tl_build::peers_of(&w, []);
        return Ok(ok(&tl::enums::updates::Difference::Difference(
            tl::types::updates::Difference {
                new_messages: Vec::new(),
                new_encrypted_messages: Vec::new(),
                other_updates: tl_build::channels_too_long(&channels),
                chats: chats
                    .into_iter()
                    .chain(
                        channels
                            .iter()
                            .filter_map(|(id, _)| w.chats.get(id))
                            .map(tl_build::chat),
                    )
                    .collect(),
                users,
                state: tl_build::state(w.pts, w.date, w.seq),
            },
        )));
    };
    let me = w.me.id;
    let (users, mut chats) = tl_build::peers_of(&w, &entries);
    let chat = |e: &super::world::Logged| e.chat.and_then(|id| w.chats.get(&id));
    let is_new = |e: &super::world::Logged| e.step == Step::Message && e.edit_date.is_none();
    let new_messages = entries
        .iter()
        .filter(|e| is_new(e))
        .map(|e| tl_build::message(e, me, chat(e)))
        .collect();
    let other_updates: Vec<tl::enums::Update> = entries
        .iter()
        .filter(|e| !is_new(e))
        .map(|e| tl_build::update(e, me, chat(e)))
        .collect();
    let complete = last.pts == w.pts;
    // The channels to catch up go with the last page (their chats carry the access hashes).
    let mut other_updates = other_updates;
    if complete {
        other_updates.extend(tl_build::channels_too_long(&channels));
        chats.extend(
            channels
                .iter()
                .filter_map(|(id, _)| w.chats.get(id))
                .map(tl_build::chat)
                .collect::<Vec<_>>(),
        );
    }
    let state = tl_build::state(last.pts, if complete { w.date } else { last.date }, w.seq);
    Ok(ok(&if complete {
        tl::enums::updates::Difference::Difference(tl::types::updates::Difference {
            new_messages,
            new_encrypted_messages: Vec::new(),
            other_updates,
            chats,
            users,
            state,
        })
    } else {
        tl::enums::updates::Difference::Slice(tl::types::updates::DifferenceSlice {
            new_messages,
            new_encrypted_messages: Vec::new(),
            other_updates,
            chats,
            users,
            intermediate_state: state,
        })
    }))
}

/// `updates.getChannelDifference`: a channel's steps after the client's pts, up to its
/// `limit` (and the simulator's page), as Telegram answers it; `final` once nothing is left.
fn channel_difference(
    shared: &Shared,
    req: tl::functions::updates::GetChannelDifference,
) -> Result<Answer, Answer> {
    let w = authorized(shared)?;
    let tl::enums::InputChannel::Channel(input) = &req.channel else {
        return Err(err(400, "CHANNEL_INVALID"));
    };
    if w.chats.get(&input.channel_id).map(|c| c.access_hash) != Some(input.access_hash) {
        return Err(err(400, "CHANNEL_INVALID"));
    }
    let limit = usize::try_from(req.limit.max(1))
        .unwrap_or(1)
        .min(shared.difference_page);
    let Some((steps, pts)) = w.channel_after(input.channel_id, req.pts, limit) else {
        return Err(err(400, "CHANNEL_PRIVATE"));
    };
    let Some(last) = steps.last() else {
        return Ok(ok(&tl::enums::updates::ChannelDifference::Empty(
            tl::types::updates::ChannelDifferenceEmpty {
                r#final: true,
                pts,
                timeout: None,
            },
        )));
    };
    let me = w.me.id;
    let chat = w.chats.get(&input.channel_id);
    let (users, chats) = tl_build::peers_of(&w, &steps);
    let is_new = |e: &&super::world::Logged| e.step == Step::Message && e.edit_date.is_none();
    Ok(ok(&tl::enums::updates::ChannelDifference::Difference(
        tl::types::updates::ChannelDifference {
            r#final: last.pts == pts,
            pts: last.pts,
            timeout: None,
            new_messages: steps
                .iter()
                .filter(is_new)
                .map(|e| tl_build::message(e, me, chat))
                .collect(),
            other_updates: steps
                .iter()
                .filter(|e| !is_new(e))
                .map(|e| tl_build::update(e, me, chat))
                .collect(),
            chats,
            users,
        },
    )))
}
