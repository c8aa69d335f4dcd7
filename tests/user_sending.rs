//! Sending through a Telegram user account (issue 16, point 7), through the whole path: an
//! agent sends, edits, deletes, types and marks read through the REST API of a running lanbox
//! (real TLS, port 0); the outbox sends over the account's connector client, under MTProto
//! encryption over real TCP, to the MTProto simulator, which shows exactly what Telegram would
//! have received (method, peer with its access hash checked, text, `reply_to`).
//!
//! - a reply in a private chat (`updateShortSentMessage`), its edit, delete, typing and the
//!   customer's messages marked read (`messages.readHistory`);
//! - basic groups (`inputPeerChat`) and supergroups (`inputPeerChannel`, `channels.deleteMessages`,
//!   `channels.readHistory`);
//! - `FLOOD_WAIT_n` and `SLOWMODE_WAIT_n` are waited out, then the message goes once;
//! - a user account's stricter default limits (one message a second in a private chat);
//! - no message text in lanbox's log.

mod support;

use std::time::{Duration, Instant};

use grammers_tl_types as tl;
use lanbox::auth::Role;
use lanbox::channels::mtproto;
use lanbox::dev::mtproto::{MtSimConfig, MtSimulator, Outbound, SimChatKind, SimPeer};
use lanbox::outbox::OutboxOptions;
use lanbox::service::ServiceOptions;
use serde_json::{Value, json};
use support::poll;
use support::server::{TestServer, Ws, call, get, next_of, post, request, ws_token};

const WAIT: Duration = Duration::from_secs(20);

struct Rig {
    s: TestServer,
    sim: MtSimulator,
    root: String,
    account: u64,
    logs: &'static support::logs::Captured,
}

fn options(sim: &MtSimulator, outbox: OutboxOptions) -> ServiceOptions {
    let app = support::users::app(sim);
    ServiceOptions {
        telegram_app: Some(app),
        outbox,
        ..ServiceOptions::default()
    }
}

/// lanbox pointed at the simulator, its account logged in through the API and online.
async fn rig(outbox: OutboxOptions) -> Rig {
    // Everything at trace but the WebSocket library, which traces whole frames (the test's
    // own client reads the messages it sent).
    let logs = support::logs::capture(&format!(
        "trace,tungstenite=info,tokio_tungstenite=info,{}",
        mtproto::LOG_DIRECTIVES
    ));
    let sim = MtSimulator::start(MtSimConfig::default()).await.unwrap();
    let s = TestServer::start_with(options(&sim, outbox)).await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let account = support::users::sign_in(&s, &root, &sim).await;
    let r = Rig {
        s,
        sim,
        root,
        account,
        logs,
    };
    r.wait_online().await;
    r
}

impl Rig {
    async fn wait_online(&self) {
        support::users::wait_online(&self.s, &self.root, self.account, WAIT).await
    }

    /// Stops lanbox (its connectors and senders), waits until its store is closed, and serves
    /// the same data directory again; the simulator (Telegram) stays as it was.
    async fn restart(self) -> Rig {
        let Rig {
            mut s,
            sim,
            root,
            account,
            logs,
        } = self;
        s.state.shutdown();
        s.state.join().await;
        let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
        drop(s);
        // The store closes once its writer thread has finished; nothing announces that.
        poll::until_ok(WAIT, || async {
            let store = lanbox::store::Store::open(
                dir.path(),
                &lanbox::store::StoreOptions {
                    credentials_dir: None,
                    ..Default::default()
                },
            );
            store.map(drop).map_err(|err| format!("store still open: {err}"))
        })
        .await;
        let s = TestServer::start_in(dir, options(&sim, OutboxOptions::unlimited())).await;
        let r = Rig {
            s,
            sim,
            root,
            account,
            logs,
        };
        r.wait_online().await;
        r
    }

    /// The message with `text` and its chat's ID, once visible.
    async fn wait_for(&self, text: &str) -> (String, Value) {
        poll::until_ok(WAIT, || async {
            let (_, chats) = get(&self.s, &self.root, "/api/v1/chats").await;
            for c in chats["chats"].as_array().into_iter().flatten() {
                let id = c["id"].as_str().unwrap().to_string();
                let (_, m) = get(&self.s, &self.root, &format!("/api/v1/chats/{id}/messages")).await;
                if let Some(m) = m["messages"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["text"] == text)
                {
                    return Ok((id, m.clone()));
                }
            }
            Err(format!("no message {text:?} yet"))
        })
        .await
    }

    async fn messages(&self, chat: &str) -> Vec<Value> {
        let (st, m) = get(&self.s, &self.root, &format!("/api/v1/chats/{chat}/messages")).await;
        assert_eq!(st, 200, "{m}");
        m["messages"].as_array().unwrap().clone()
    }

    /// Queues a send; the outbox item.
    async fn send(&self, chat: &str, body: Value) -> Value {
        let (st, item) = post(
            &self.s,
            &self.root,
            &format!("/api/v1/chats/{chat}/messages"),
            body,
        )
        .await;
        assert_eq!(st, 202, "{item}");
        item
    }

    /// The simulator's record of `method` calls, once there are `n` of them.
    async fn outbound(&self, method: &str, n: usize) -> Vec<Outbound> {
        poll::until_ok(WAIT, || async {
            let all: Vec<Outbound> = self
                .sim
                .outbound()
                .into_iter()
                .filter(|o| o.method == method)
                .collect();
            if all.len() >= n {
                Ok(all)
            } else {
                Err(format!("{method}: {} of {n}", all.len()))
            }
        })
        .await
    }

    /// Nothing of `texts` in lanbox's log.
    fn no_text_logged(&self, texts: &[&str]) {
        let log = self.logs.text();
        assert!(!log.is_empty(), "the log was captured");
        for t in texts {
            let lines: Vec<&str> = log.lines().filter(|l| l.contains(t)).take(3).collect();
            assert!(lines.is_empty(), "the log holds message text {t:?}: {lines:?}");
        }
    }
}

async fn live(r: &Rig) -> Ws {
    let mut ws = ws_token(&r.s, &r.root).await;
    let ack = call(&mut ws, json!({"type": "subscribe"})).await;
    assert!(ack["last_seq"].is_u64(), "{ack}");
    ws
}

/// Waits for item `id`'s `sent` event; its Telegram message ID.
async fn sent(ws: &mut Ws, id: u64) -> i64 {
    loop {
        let ev = next_of(ws, "message.status").await;
        if ev["outbox"]["id"].as_u64() != Some(id) {
            continue;
        }
        match ev["status"].as_str() {
            Some("sent") => return ev["outbox"]["telegram_id"].as_i64().unwrap(),
            Some("failed") => panic!("item {id} failed: {ev}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_in_a_private_chat_its_edit_typing_read_and_delete_reach_telegram() {
    let r = rig(OutboxOptions::unlimited()).await;
    let mut ws = live(&r).await;
    let ann = r.sim.add_user("Ann");
    let asked = r
        .sim
        .message_from_new_contact(&ann, "does the clinic open on sunday");
    let (chat, question) = r.wait_for("does the clinic open on sunday").await;
    assert_eq!(question["id"], json!(asked));

    let link = "https://clinic.example/hours";
    let entities = json!([
        {"kind": "bold", "offset": 0, "length": 3},
        {"kind": "text_link", "offset": 13, "length": 5, "url": link},
    ]);
    let item = r
        .send(
            &chat,
            json!({"text": "yes, kumquat hours from ten", "reply_to": asked, "entities": entities}),
        )
        .await;
    assert_eq!(item["account"], json!(r.account));
    let id = item["id"].as_u64().unwrap();
    let tg = sent(&mut ws, id).await;

    // Telegram received exactly this: to Ann (her access hash checked), answering her message,
    // its formatting as messageEntity* (UTF-16 ranges).
    let sends = r.outbound("messages.sendMessage", 1).await;
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0].peer, SimPeer::User(ann.id));
    assert_eq!(sends[0].text.as_deref(), Some("yes, kumquat hours from ten"));
    assert_eq!(sends[0].reply_to, Some(asked));
    assert_eq!(sends[0].ids, vec![tg as i32]);
    let bold: tl::enums::MessageEntity = tl::types::MessageEntityBold { offset: 0, length: 3 }.into();
    let text_url: tl::enums::MessageEntity = tl::types::MessageEntityTextUrl {
        offset: 13,
        length: 5,
        url: link.into(),
    }
    .into();
    assert_eq!(sends[0].entities, vec![bold, text_url]);
    let (_, item) = get(&r.s, &r.root, &format!("/api/v1/outbox/{id}")).await;
    assert_eq!(
        (
            item["status"].as_str(),
            item["telegram_id"].as_i64(),
            item["attempts"].as_u64()
        ),
        (Some("sent"), Some(tg), Some(1)),
        "{item}"
    );
    // In the conversation, once (the connector also sees the send come back: deduplicated).
    let mine: Vec<Value> = r
        .messages(&chat)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outgoing")
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["id"], json!(tg));
    assert_eq!(mine[0]["text"], "yes, kumquat hours from ten");
    assert_eq!(mine[0]["status"], "sent");
    let shown: Vec<(Value, Value, Value, Value)> = mine[0]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].clone(),
                e["offset"].clone(),
                e["length"].clone(),
                e["url"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (json!("bold"), json!(0), json!(3), Value::Null),
            (json!("text_link"), json!(13), json!(5), json!(link)),
        ]
    );

    // Edit: messages.editMessage with the new text.
    let (st, edited) = request(
        &r.s,
        "PATCH",
        &r.root,
        &format!("/api/v1/chats/{chat}/messages/{tg}"),
        Some(json!({"text": "yes, kumquat hours from eleven"})),
    )
    .await;
    assert_eq!(st, 200, "{edited}");
    assert_eq!(edited["text"], "yes, kumquat hours from eleven");
    assert!(edited["edited_at"].is_i64(), "{edited}");
    let edits = r.outbound("messages.editMessage", 1).await;
    assert_eq!(
        (edits[0].peer, edits[0].ids.clone(), edits[0].text.as_deref()),
        (
            SimPeer::User(ann.id),
            vec![tg as i32],
            Some("yes, kumquat hours from eleven")
        )
    );

    // Typing: messages.setTyping to Ann.
    let (st, v) = post(&r.s, &r.root, &format!("/api/v1/chats/{chat}/typing"), json!({})).await;
    assert_eq!((st, v["telegram"].as_bool()), (200, Some(true)), "{v}");
    let typing = r.outbound("messages.setTyping", 1).await;
    assert_eq!(typing[0].peer, SimPeer::User(ann.id));

    // Reading Ann's question in lanbox marks it read on Telegram.
    let (st, v) = post(
        &r.s,
        &r.root,
        &format!("/api/v1/chats/{chat}/read"),
        json!({"up_to": asked}),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let reads = r.outbound("messages.readHistory", 1).await;
    assert_eq!(
        (reads[0].peer, reads[0].ids.clone()),
        (SimPeer::User(ann.id), vec![asked])
    );

    // Delete: messages.deleteMessages (for everyone), and gone from the chat.
    let (st, v) = request(
        &r.s,
        "DELETE",
        &r.root,
        &format!("/api/v1/chats/{chat}/messages/{tg}"),
        None,
    )
    .await;
    assert_eq!(st, 204, "{v}");
    let deletes = r.outbound("messages.deleteMessages", 1).await;
    assert_eq!(deletes[0].ids, vec![tg as i32]);
    assert!(
        !r.messages(&chat).await.iter().any(|m| m["id"] == json!(tg)),
        "the deleted message is gone"
    );
    r.no_text_logged(&["kumquat", "clinic open on sunday"]);
}

/// Regression: grammers keeps people's access hashes only in memory, so after a restart a
/// private chat could not be answered (no update had named the person again) until the person
/// wrote again; the connector now keeps the hashes it sees (`mtproto_account_user_access`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_chat_can_be_answered_after_a_restart() {
    let r = rig(OutboxOptions::unlimited()).await;
    let ann = r.sim.add_user("Ann");
    r.sim.message_from_new_contact(&ann, "are you still there");
    let (chat, asked) = r.wait_for("are you still there").await;
    let r = r.restart().await;
    let mut ws = live(&r).await;
    let item = r
        .send(
            &chat,
            json!({"text": "still here, medlar", "reply_to": asked["id"]}),
        )
        .await;
    sent(&mut ws, item["id"].as_u64().unwrap()).await;
    let sends = r.outbound("messages.sendMessage", 1).await;
    assert_eq!(
        (sends[0].peer, sends[0].text.as_deref()),
        (SimPeer::User(ann.id), Some("still here, medlar"))
    );
    r.no_text_logged(&["medlar"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entities_that_cannot_be_sent_are_refused_before_queueing() {
    let r = rig(OutboxOptions::unlimited()).await;
    let ann = r.sim.add_user("Ann");
    r.sim.message_from_new_contact(&ann, "format me");
    let (chat, _) = r.wait_for("format me").await;
    for (entities, why) in [
        (
            json!([{"kind": "bold", "offset": 2, "length": 9}]),
            "outside the text",
        ),
        (json!([{"kind": "bold", "offset": 0, "length": 0}]), "empty"),
        (
            json!([{"kind": "text_link", "offset": 0, "length": 2}]),
            "a link without a url",
        ),
        (
            json!([{"kind": "text_link", "offset": 0, "length": 2, "url": "javascript:x"}]),
            "a bad url",
        ),
        (
            json!([{"kind": "custom_emoji", "offset": 0, "length": 2}]),
            "not sendable",
        ),
        (
            json!([{"kind": "bold", "offset": 0, "length": 2, "url": "https://x.example"}]),
            "a url on bold",
        ),
        (
            json!([{"kind": "bold", "offset": 0, "length": 2, "colour": "red"}]),
            "an unknown field",
        ),
    ] {
        let (st, v) = post(
            &r.s,
            &r.root,
            &format!("/api/v1/chats/{chat}/messages"),
            json!({"text": "hi there", "entities": entities}),
        )
        .await;
        assert!(st == 400 || st == 422, "{why}: {st} {v}");
    }
    assert!(r.sim.outbound().is_empty(), "nothing was sent");
    // Typing before the account ever sent (its sender starts on demand) reaches Telegram.
    let (st, v) = post(&r.s, &r.root, &format!("/api/v1/chats/{chat}/typing"), json!({})).await;
    assert_eq!((st, v["telegram"].as_bool()), (200, Some(true)), "{v}");
    let typing = r.outbound("messages.setTyping", 1).await;
    assert_eq!(typing[0].peer, SimPeer::User(ann.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_groups_and_supergroups_are_named_as_telegram_wants_them() {
    let r = rig(OutboxOptions::unlimited()).await;
    let mut ws = live(&r).await;
    let ann = r.sim.add_user("Ann");
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Group);
    let forum = r.sim.add_chat("Patients forum", SimChatKind::Supergroup);
    let in_group = r.sim.message_in(&group, &ann, "who has the rota");
    let in_forum = r.sim.message_in(&forum, &ann, "is parking free");
    let (group_chat, _) = r.wait_for("who has the rota").await;
    let (forum_chat, _) = r.wait_for("is parking free").await;

    let a = r
        .send(
            &group_chat,
            json!({"text": "the rota is with quince", "reply_to": in_group}),
        )
        .await;
    let ga = sent(&mut ws, a["id"].as_u64().unwrap()).await;
    let b = r
        .send(
            &forum_chat,
            json!({"text": "parking is free for quince patients", "reply_to": in_forum}),
        )
        .await;
    let fb = sent(&mut ws, b["id"].as_u64().unwrap()).await;

    let sends = r.outbound("messages.sendMessage", 2).await;
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert_eq!(
        (sends[0].peer, sends[0].reply_to, sends[0].ids.clone()),
        (SimPeer::Chat(group.id), Some(in_group), vec![ga as i32])
    );
    assert_eq!(
        (sends[1].peer, sends[1].reply_to, sends[1].ids.clone()),
        (SimPeer::Channel(forum.id), Some(in_forum), vec![fb as i32])
    );
    for (chat, tg, text) in [
        (&group_chat, ga, "the rota is with quince"),
        (&forum_chat, fb, "parking is free for quince patients"),
    ] {
        let mine: Vec<Value> = r
            .messages(chat)
            .await
            .into_iter()
            .filter(|m| m["direction"] == "outgoing")
            .collect();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(
            (mine[0]["id"].as_i64(), mine[0]["text"].as_str()),
            (Some(tg), Some(text))
        );
    }

    // The supergroup: edit, read and delete name the channel.
    let (st, v) = request(
        &r.s,
        "PATCH",
        &r.root,
        &format!("/api/v1/chats/{forum_chat}/messages/{fb}"),
        Some(json!({"text": "parking is free for all quince patients"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    let edits = r.outbound("messages.editMessage", 1).await;
    assert_eq!(
        (edits[0].peer, edits[0].ids.clone()),
        (SimPeer::Channel(forum.id), vec![fb as i32])
    );
    let (st, _) = post(
        &r.s,
        &r.root,
        &format!("/api/v1/chats/{forum_chat}/read"),
        json!({"up_to": in_forum}),
    )
    .await;
    assert_eq!(st, 200);
    let reads = r.outbound("channels.readHistory", 1).await;
    assert_eq!(
        (reads[0].peer, reads[0].ids.clone()),
        (SimPeer::Channel(forum.id), vec![in_forum])
    );
    let (st, _) = request(
        &r.s,
        "DELETE",
        &r.root,
        &format!("/api/v1/chats/{forum_chat}/messages/{fb}"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let deletes = r.outbound("channels.deleteMessages", 1).await;
    assert_eq!(
        (deletes[0].peer, deletes[0].ids.clone()),
        (SimPeer::Channel(forum.id), vec![fb as i32])
    );

    // The basic group: read and delete through messages.*.
    let (st, _) = post(
        &r.s,
        &r.root,
        &format!("/api/v1/chats/{group_chat}/read"),
        json!({"up_to": in_group}),
    )
    .await;
    assert_eq!(st, 200);
    let reads = r.outbound("messages.readHistory", 1).await;
    assert_eq!(
        (reads[0].peer, reads[0].ids.clone()),
        (SimPeer::Chat(group.id), vec![in_group])
    );
    let (st, _) = request(
        &r.s,
        "DELETE",
        &r.root,
        &format!("/api/v1/chats/{group_chat}/messages/{ga}"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let deletes = r.outbound("messages.deleteMessages", 1).await;
    assert_eq!(deletes[0].ids, vec![ga as i32]);
    r.no_text_logged(&["quince", "rota", "parking"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_and_slowmode_wait_are_waited_out_then_the_message_goes_once() {
    let r = rig(OutboxOptions::unlimited()).await;
    let mut ws = live(&r).await;
    let ann = r.sim.add_user("Ann");
    let forum = r.sim.add_chat("Patients forum", SimChatKind::Supergroup);
    r.sim.message_from_new_contact(&ann, "hello there");
    r.sim.message_in(&forum, &ann, "anyone here");
    let (chat, _) = r.wait_for("hello there").await;
    let (forum_chat, _) = r.wait_for("anyone here").await;

    for (chat, code, error, secs, text) in [
        (&chat, 420, "FLOOD_WAIT_2", 2, "after the flood, persimmon"),
        (
            &forum_chat,
            400,
            "SLOWMODE_WAIT_1",
            1,
            "after the slow mode, persimmon",
        ),
    ] {
        let before = r
            .sim
            .calls()
            .iter()
            .filter(|c| *c == "messages.sendMessage")
            .count();
        r.sim.fail_next("messages.sendMessage", code, error);
        let asked = Instant::now();
        let item = r.send(chat, json!({"text": text})).await;
        let id = item["id"].as_u64().unwrap();
        sent(&mut ws, id).await;
        let waited = asked.elapsed();
        assert!(
            waited >= Duration::from_secs(secs),
            "{error}: sent after {waited:?}"
        );
        let calls = r
            .sim
            .calls()
            .iter()
            .filter(|c| *c == "messages.sendMessage")
            .count();
        assert_eq!(calls - before, 2, "{error}: refused once, then sent");
        let received: Vec<Outbound> = r
            .sim
            .outbound()
            .into_iter()
            .filter(|o| o.text.as_deref() == Some(text))
            .collect();
        assert_eq!(received.len(), 1, "{error}: sent once: {received:?}");
        let (_, item) = get(&r.s, &r.root, &format!("/api/v1/outbox/{id}")).await;
        assert_eq!(
            (item["status"].as_str(), item["attempts"].as_u64()),
            (Some("sent"), Some(1)),
            "a wait Telegram asked for is not a failed attempt: {item}"
        );
    }
    r.no_text_logged(&["persimmon"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_account_sends_at_most_one_message_a_second_to_a_person_by_default() {
    let r = rig(OutboxOptions::default()).await;
    let mut ws = live(&r).await;
    let ann = r.sim.add_user("Ann");
    r.sim.message_from_new_contact(&ann, "tell me three things");
    let (chat, _) = r.wait_for("tell me three things").await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let item = r
            .send(&chat, json!({"text": format!("thing {i} of three")}))
            .await;
        ids.push(item["id"].as_u64().unwrap());
    }
    for id in ids {
        sent(&mut ws, id).await;
    }
    let sends = r.outbound("messages.sendMessage", 3).await;
    let texts: Vec<_> = sends.iter().map(|o| o.text.clone().unwrap()).collect();
    assert_eq!(
        texts,
        ["thing 0 of three", "thing 1 of three", "thing 2 of three"]
    );
    for pair in sends.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        // A bot would send these three at once (a burst of 3); a person's account waits a second.
        assert!(gap >= Duration::from_millis(900), "sent {gap:?} apart");
    }
}
