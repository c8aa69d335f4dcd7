//! One WebSocket connection, after authentication: its own task, reading client messages,
//! forwarding hub events in sequence order without duplicates, sending heartbeats, and closing
//! with a clear code when it must (see [`crate::live::protocol::close`]).
//!
//! Resume without gaps or doubles: the session leaves the hub, replays the log after the
//! client's `from_seq` page by page, joins the hub again, replays once more up to the log's end
//! (events committed meanwhile are then both in the log and in the queue), and from then on
//! drops queued events whose `seq` it has already sent.
//!
//! The credential is as good as it is now, not as it was at the upgrade: the session listens to
//! the auth service's revocations ([`crate::auth::revoke`]) and, before anything else that is
//! ready, ends with 4001 `unauthorized` when its token or session is revoked or its user
//! disabled or deleted (or takes the user's new grants); every client message is authorised
//! against the store first; and each heartbeat checks again, which catches expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};

use crate::api::{ApiError, conversations, inbox, send};
use crate::auth::revoke::{Revoked, Verdict};
use crate::auth::{AuthError, Caller};
use crate::live::hub::{Ephemeral, Item, Registration, Shared};
use crate::live::protocol::{self, ClientMsg, Subscription, View, close};
use crate::live::replay::{self, Reach};
use crate::model::{Direction, EventKind};
use crate::service::Service;
use crate::view::dto::chat_id;
use crate::view::visible;

/// Events replayed per store read.
const REPLAY_PAGE: usize = 64;

/// Why a session ends.
enum End {
    Closed,
    Close(u16, &'static str),
}

impl End {
    fn unauthorized() -> End {
        End::Close(close::UNAUTHORIZED, "unauthorized")
    }
}

struct Session {
    state: Service,
    caller: Caller,
    sink: SplitSink<WebSocket, Message>,
    reg: Option<Registration>,
    sub: Subscription,
    /// The caller's grants and `sub`, kept current with both.
    view: Arc<View>,
    /// Highest `seq` sent to the client.
    last_sent: u64,
    /// Frames written into the socket's buffer but not yet flushed (see [`Session::feed_text`]).
    unflushed: bool,
}

/// Serves one upgraded connection until it ends. `revoked` was subscribed before `caller` was
/// authenticated.
pub async fn run(socket: WebSocket, state: Service, caller: Caller, revoked: broadcast::Receiver<Revoked>) {
    let (sink, stream) = socket.split();
    let view = Arc::new(View {
        grants: caller.grants.clone(),
        sub: Subscription::default(),
    });
    let mut s = Session {
        state,
        caller,
        sink,
        reg: None,
        sub: Subscription::default(),
        view,
        last_sent: 0,
        unflushed: false,
    };
    let end = s.serve(stream, revoked).await;
    if let End::Close(code, reason) = end {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let t = s.state.options.live.write_timeout;
        let _ = tokio::time::timeout(t, s.sink.send(Message::Close(Some(frame)))).await;
    }
}

enum Input {
    Revoked(Result<Revoked, RecvError>),
    Frame(Option<Result<Message, axum::Error>>),
    Item(Option<Item>),
    Tick,
}

async fn next_item(reg: &mut Option<Registration>) -> Option<Item> {
    match reg {
        Some(r) => r.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next revocation; none once the auth service is gone (the server is stopping).
async fn next_revocation(rx: &mut Option<broadcast::Receiver<Revoked>>) -> Result<Revoked, RecvError> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// A client frame, a hub item or a heartbeat tick, whichever comes first (fairly).
async fn next_input(
    stream: &mut SplitStream<WebSocket>,
    reg: &mut Option<Registration>,
    tick: &mut tokio::time::Interval,
) -> Input {
    tokio::select! {
        f = stream.next() => Input::Frame(f),
        i = next_item(reg) => Input::Item(i),
        _ = tick.tick() => Input::Tick,
    }
}

impl Session {
    fn view(&self) -> View {
        (*self.view).clone()
    }

    /// Gives the hub this session's view, and takes the hub's interned copy of it (equal), so
    /// that events queued for it are recognised by address.
    fn tell_hub(&mut self) {
        let view = self.view();
        if let Some(r) = &mut self.reg {
            r.set_view(view);
            self.view = r.view().clone();
        }
    }

    /// Joins the hub with this session's view.
    fn join_hub(&mut self) {
        let r = self.state.hub.register(self.view());
        self.view = r.view().clone();
        self.reg = Some(r);
    }

    /// Takes a new subscription (the hub's registration, if any, is told by the caller).
    fn set_sub(&mut self, sub: Subscription) {
        self.sub = sub;
        self.view = Arc::new(View {
            grants: self.caller.grants.clone(),
            sub: self.sub.clone(),
        });
    }

    async fn send(&mut self, v: &Value) -> Result<(), End> {
        self.send_text(Utf8Bytes::from(v.to_string())).await
    }

    async fn send_text(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let t = self.state.options.live.write_timeout;
        match tokio::time::timeout(t, self.sink.send(Message::Text(text))).await {
            Ok(Ok(())) => {
                self.unflushed = false;
                Ok(())
            }
            // A socket that takes no data for this long is gone or hopeless.
            _ => Err(End::Closed),
        }
    }

    /// Writes a frame into the socket's buffer without flushing it: the serve loop flushes once
    /// the hub's queue for this client is empty. A client that has fallen behind (a burst, a
    /// busy box) gets its waiting events in a few TLS records and system calls rather than one
    /// each; when events come one at a time, each is flushed at once, as before. The buffer is
    /// bounded (tungstenite writes it out when it passes its write-buffer size).
    async fn feed_text(&mut self, text: Utf8Bytes) -> Result<(), End> {
        let t = self.state.options.live.write_timeout;
        match tokio::time::timeout(t, self.sink.feed(Message::Text(text))).await {
            Ok(Ok(())) => {
                self.unflushed = true;
                Ok(())
            }
            _ => Err(End::Closed),
        }
    }

    /// Flushes fed frames unless more events are already queued for this client.
    async fn flush_if_idle(&mut self) -> Result<(), End> {
        if !self.unflushed || self.reg.as_ref().is_some_and(|r| !r.rx.is_empty()) {
            return Ok(());
        }
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), End> {
        let t = self.state.options.live.write_timeout;
        match tokio::time::timeout(t, self.sink.flush()).await {
            Ok(Ok(())) => {
                self.unflushed = false;
                Ok(())
            }
            _ => Err(End::Closed),
        }
    }

    async fn serve(
        &mut self,
        mut stream: SplitStream<WebSocket>,
        revoked: broadcast::Receiver<Revoked>,
    ) -> End {
        let opts = self.state.options.live.clone();
        let last_seq = self.state.store.read(|r| r.last_seq()).await.unwrap_or(0);
        let hello = json!({
            "type": "hello",
            "protocol": protocol::PROTOCOL,
            "user": {"id": self.caller.user, "name": self.caller.name, "role": self.caller.role.as_str()},
            "last_seq": last_seq,
            "heartbeat_s": opts.heartbeat.as_secs_f64(),
            // The store's state now: a client connecting during a full disk shows its banner
            // at once; later changes come as `store.status` events.
            "store": store_status(last_seq, &self.state.store.health().reasons()),
        });
        if let Err(e) = self.send(&hello).await {
            return e;
        }
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + opts.heartbeat, opts.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        let mut closing = self.state.hub.closing();
        let mut revoked = Some(revoked);
        loop {
            if let Err(e) = self.flush_if_idle().await {
                return e;
            }
            // Biased: a pending revocation goes before any frame, event or tick that is also
            // ready, so nothing is acted on or sent after it.
            let input = tokio::select! {
                biased;
                _ = closing.wait_for(|c| *c) => return End::Close(close::GOING_AWAY, "going_away"),
                r = next_revocation(&mut revoked) => Input::Revoked(r),
                i = next_input(&mut stream, &mut self.reg, &mut tick) => i,
            };
            let step = match input {
                Input::Revoked(Ok(r)) => match r.verdict(&self.caller) {
                    Verdict::Unaffected => Ok(()),
                    Verdict::Ended => Err(End::unauthorized()),
                    Verdict::Recheck => self.refresh().await,
                },
                // More revocations went by than are kept: any of them may have been ours.
                Input::Revoked(Err(RecvError::Lagged(_))) => self.refresh().await,
                Input::Revoked(Err(RecvError::Closed)) => {
                    revoked = None;
                    Ok(())
                }
                Input::Frame(None | Some(Err(_))) | Input::Frame(Some(Ok(Message::Close(_)))) => {
                    return End::Closed;
                }
                Input::Frame(Some(Ok(m))) => {
                    heard = Instant::now();
                    match m {
                        Message::Text(t) => {
                            let r = self.handle(t.as_str()).await;
                            // A long replay is time the client was served, not silent.
                            heard = Instant::now();
                            r
                        }
                        Message::Binary(_) => {
                            self.send(&protocol::error(
                                &None,
                                "bad_request",
                                "lanbox.v1 uses text frames",
                            ))
                            .await
                        }
                        _ => Ok(()),
                    }
                }
                Input::Item(Some(item)) => self.forward(item).await,
                Input::Item(None) => {
                    let stopping = self.reg.as_ref().is_some_and(|r| r.stopping());
                    return if stopping {
                        End::Close(close::GOING_AWAY, "going_away")
                    } else {
                        End::Close(close::TOO_SLOW, "too_slow")
                    };
                }
                Input::Tick => self.heartbeat(heard, opts.heartbeat).await,
            };
            if let Err(e) = step {
                return e;
            }
        }
    }

    async fn heartbeat(&mut self, heard: Instant, every: Duration) -> Result<(), End> {
        if heard.elapsed() > every * 2 {
            return Err(End::Close(close::HEARTBEAT_TIMEOUT, "heartbeat_timeout"));
        }
        // Revocations are announced; what is not (a token or session expiring) shows here.
        match self.state.auth.recheck(&self.caller).await {
            Ok(c) => self.adopt(c),
            Err(AuthError::Unauthenticated) => return Err(End::unauthorized()),
            Err(e) => tracing::warn!(error = %e, "live session could not reload its user"),
        }
        let t = self.state.options.live.write_timeout;
        match tokio::time::timeout(t, self.sink.send(Message::Ping(Default::default()))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Closed),
        }
    }

    /// Takes the caller as it stands now, with its grants (which narrow the feed at once).
    fn adopt(&mut self, c: Caller) {
        let changed = c.grants != self.caller.grants;
        self.caller = c;
        if changed {
            self.set_sub(self.sub.clone());
            self.tell_hub();
        }
    }

    /// After a revocation that may concern this session: checks its credential again. It ends
    /// when the credential no longer works, and when it cannot be checked (failing closed: the
    /// client reconnects and is checked afresh).
    async fn refresh(&mut self) -> Result<(), End> {
        match self.state.auth.recheck(&self.caller).await {
            Ok(c) => {
                self.adopt(c);
                Ok(())
            }
            Err(AuthError::Unauthenticated) => Err(End::unauthorized()),
            Err(e) => {
                tracing::warn!(error = %e, "live session could not check its credential");
                Err(End::Close(close::INTERNAL_ERROR, "internal_error"))
            }
        }
    }

    /// Authorises a client message against the credential as it is now (the store is the
    /// truth; a revocation's announcement may still be on its way).
    async fn authorise(&mut self) -> Result<(), Reply> {
        match self.state.auth.recheck(&self.caller).await {
            Ok(c) => {
                self.adopt(c);
                Ok(())
            }
            Err(AuthError::Unauthenticated) => Err(Reply::End(End::unauthorized())),
            Err(e) => Err(Reply::Api(e.into())),
        }
    }

    async fn forward(&mut self, item: Item) -> Result<(), End> {
        let v = match item {
            Item::Event(shared) => {
                let seq = shared.event.event.seq;
                if seq <= self.last_sent {
                    return Ok(());
                }
                // Filtered and rendered for this session's view, unless the view changed since
                // the hub queued it.
                let frame = if Arc::ptr_eq(&shared.view, &self.view) || *shared.view == *self.view {
                    let state = &self.state;
                    shared.frame.get_or_init(|| render(state, &shared)).await.clone()
                } else {
                    if !self.view.sees_event(&shared.event.event) {
                        return Ok(());
                    }
                    let own = Shared {
                        event: shared.event.clone(),
                        view: self.view.clone(),
                        frame: Default::default(),
                    };
                    render(&self.state, &own).await
                };
                self.last_sent = seq;
                // Valid UTF-8: serde_json wrote it.
                let text = Utf8Bytes::try_from(frame).map_err(|_| End::Closed)?;
                return self.feed_text(text).await;
            }
            Item::Ephemeral(e) => match &*e {
                Ephemeral::Typing { chat, user, .. } => {
                    json!({"type": "typing", "seq": self.last_sent, "chat": chat_id(*chat), "user": user})
                }
                Ephemeral::AccountStatus {
                    account,
                    status,
                    detail,
                } => json!({
                    "type": "account.status", "seq": self.last_sent, "account": account,
                    "status": status, "detail": detail,
                }),
                Ephemeral::ChatRead {
                    chat,
                    user,
                    read_up_to,
                    unread,
                    ..
                } => {
                    if *user != self.caller.user {
                        return Ok(());
                    }
                    json!({
                        "type": "chat.read", "seq": self.last_sent, "chat": chat_id(*chat),
                        "read_up_to": read_up_to, "unread": unread, "user": user,
                    })
                }
                Ephemeral::StoreStatus { reasons } => store_status(self.last_sent, reasons),
                Ephemeral::UpdateProgress {
                    state,
                    percent,
                    message,
                    error,
                } => {
                    if self.caller.role != crate::auth::Role::Admin {
                        return Ok(());
                    }
                    json!({
                        "type": "update.progress", "seq": self.last_sent, "state": state,
                        "percent": percent, "message": message, "error": error,
                    })
                }
            },
        };
        self.feed_text(Utf8Bytes::from(v.to_string())).await
    }

    async fn handle(&mut self, text: &str) -> Result<(), End> {
        let raw: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(_) => {
                return self
                    .send(&protocol::error(&None, "bad_request", "frames are JSON objects"))
                    .await;
            }
        };
        let id = raw.get("id").cloned();
        let msg: ClientMsg = match serde_json::from_value(raw) {
            Ok(m) => m,
            Err(_) => {
                let m = "not a lanbox.v1 client message (see the protocol's `type`s and their fields)";
                return self.send(&protocol::error(&id, "bad_request", m)).await;
            }
        };
        let reply = match self.dispatch(msg).await {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(()),
            Err(Reply::Api(e)) => protocol::error(&id, e.code(), &e.to_string()),
            Err(Reply::End(e)) => return Err(e),
        };
        self.send(&reply).await
    }

    async fn dispatch(&mut self, msg: ClientMsg) -> Result<Option<Value>, Reply> {
        self.authorise().await?;
        match msg {
            ClientMsg::Subscribe { id, filter } => {
                self.set_sub(Subscription::parse(filter).map_err(ApiError::BadRequest)?);
                match &self.reg {
                    Some(_) => self.tell_hub(),
                    None => {
                        self.join_hub();
                        // Everything committed from here on reaches the queue.
                        self.last_sent = self
                            .state
                            .store
                            .read(|r| r.last_seq())
                            .await
                            .map_err(ApiError::from)?;
                    }
                }
                Ok(Some(protocol::ack(&id, json!({"last_seq": self.last_sent}))))
            }
            ClientMsg::Resume { id, from_seq, filter } => {
                self.set_sub(Subscription::parse(filter).map_err(ApiError::BadRequest)?);
                self.resume(id, from_seq).await
            }
            ClientMsg::MarkRead { id, chat, up_to } => {
                let key = inbox::chat_key(&chat)?;
                let unread = inbox::mark_read_for(&self.state, &self.caller, key, up_to).await?;
                Ok(Some(protocol::ack(
                    &id,
                    json!({"chat": chat_id(key), "unread": unread}),
                )))
            }
            ClientMsg::Assign { id, chat, assignee } => {
                let key = inbox::chat_key(&chat)?;
                let change = crate::ingest::TeamChange::Assign(assignee);
                let c = conversations::change_for(&self.state, &self.caller, key, change).await?;
                Ok(Some(protocol::ack(
                    &id,
                    json!({"chat": chat_id(key), "conversation": c}),
                )))
            }
            ClientMsg::SetStatus {
                id,
                chat,
                status,
                snoozed_until,
            } => {
                let key = inbox::chat_key(&chat)?;
                let change = conversations::status_change(&status, snoozed_until)?;
                let c = conversations::change_for(&self.state, &self.caller, key, change).await?;
                Ok(Some(protocol::ack(
                    &id,
                    json!({"chat": chat_id(key), "conversation": c}),
                )))
            }
            ClientMsg::SendMessage {
                id,
                chat,
                text,
                reply_to,
                account,
                idempotency_key,
                attachment,
                entities,
            } => {
                let key = inbox::chat_key(&chat)?;
                let body = send::SendMessage {
                    text,
                    reply_to,
                    account,
                    idempotency_key,
                    attachment,
                    entities,
                };
                let item = send::send_for(&self.state, &self.caller, key, body).await?;
                Ok(Some(protocol::ack(&id, json!({"outbox": item}))))
            }
            ClientMsg::Typing { id, chat } => {
                let key = inbox::chat_key(&chat)?;
                let told = send::typing_for(&self.state, &self.caller, key).await?;
                Ok(Some(protocol::ack(&id, json!({"telegram": told}))))
            }
            ClientMsg::Ping { id } => Ok(Some(json!({"type": "pong", "id": id}))),
        }
    }

    /// Replays the log after `from_seq`, then continues live (see the module documentation).
    async fn resume(&mut self, id: Option<Value>, from_seq: u64) -> Result<Option<Value>, Reply> {
        let reach = self
            .state
            .store
            .read(move |r| replay::reach(r, from_seq))
            .await
            .map_err(ApiError::from)?;
        if let Reach::Resync { first_seq, last_seq } = reach {
            self.reg = None;
            return Ok(Some(json!({
                "type": "resync_required", "id": id, "first_seq": first_seq, "last_seq": last_seq,
            })));
        }
        self.reg = None;
        self.last_sent = from_seq;
        let mut replayed = self.replay_to_end().await?;
        self.join_hub();
        replayed += self.replay_to_end().await?;
        Ok(Some(protocol::ack(
            &id,
            json!({"replayed": replayed, "last_seq": self.last_sent}),
        )))
    }

    async fn replay_to_end(&mut self) -> Result<u64, Reply> {
        let mut sent = 0;
        loop {
            let (view, after) = (self.view(), self.last_sent);
            // A wave of clients resuming at once (a Wi-Fi blip) must not read and hold a page
            // each all at the same time: a few pages are read at once, the rest wait their turn.
            let page = {
                let _turn = self
                    .state
                    .replays
                    .acquire()
                    .await
                    .map_err(|_| Reply::End(End::Closed))?;
                self.state
                    .store
                    .read(move |r| replay::page(r, &view, after, REPLAY_PAGE))
                    .await
                    .map_err(ApiError::from)?
            };
            // A page goes out in a few TLS records, flushed before the next page is read.
            for e in &page.events {
                self.feed_text(Utf8Bytes::from(e.to_string()))
                    .await
                    .map_err(Reply::End)?;
                sent += 1;
            }
            self.flush().await.map_err(Reply::End)?;
            self.last_sent = page.last;
            if page.read < REPLAY_PAGE {
                return Ok(sent);
            }
        }
    }
}

/// An event as a view sees it, encoded. Incoming messages render from the event itself; an
/// outgoing one is read back, which adds the teammate who sent it (rare next to incoming), and
/// some kinds complete their JSON from the store. A read that fails leaves out what it would
/// have added, as before the frame was shared.
async fn render(state: &Service, shared: &Shared) -> Bytes {
    let (p, view) = (&shared.event, &shared.view);
    let key = protocol::event_chat(&p.event);
    let message = match (
        protocol::wants_message(p.event.kind),
        p.event.message_key,
        &p.message,
    ) {
        (true, Some(k), Some(m)) if m.direction != Direction::Outgoing => {
            Some(visible::dto(&view.grants, key.msg(k), m, &p.event.accounts))
        }
        (true, Some(k), _) => {
            let g = view.grants.clone();
            state
                .store
                .read(move |r| visible::message(r, &g, key.msg(k)))
                .await
                .unwrap_or(None)
        }
        _ => None,
    };
    let mut v = protocol::event_json(&view.grants, &p.event, message);
    if p.event.kind == EventKind::MessageStatus {
        v = state
            .store
            .read(move |r| crate::outbox::complete_event(r, &mut v).map(|_| v))
            .await
            .unwrap_or_else(|_| protocol::event_json(&view.grants, &p.event, None));
    }
    if crate::view::conversation::is_conversation_event(p.event.kind)
        || crate::view::notes::is_note_event(p.event.kind)
    {
        let e = p.event.clone();
        let plain = v.clone();
        v = state
            .store
            .read(move |r| {
                crate::view::conversation::complete_event(r, &e, &mut v)?;
                crate::view::notes::complete_event(r, &e, &mut v)?;
                Ok(v)
            })
            .await
            .unwrap_or(plain);
    }
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

/// How handling a client message can fail: an error reply, or the end of the session.
enum Reply {
    Api(ApiError),
    End(End),
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Reply::Api(e)
    }
}

/// The `store.status` event: `status` `ok` or `degraded`, and the reasons (`disk_full`, ...).
fn store_status(seq: u64, reasons: &[&'static str]) -> Value {
    let status = if reasons.is_empty() { "ok" } else { "degraded" };
    json!({"type": "store.status", "seq": seq, "status": status, "reasons": reasons})
}
