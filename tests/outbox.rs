//! The outbox end to end: a real lanbox server (HTTPS, WebSocket) sending through the Bot API
//! simulator over real sockets. Sends reach the simulator once, statuses arrive as events,
//! limits hold under a 429 storm (checked against the times the simulator recorded), queued
//! items survive a restart, and the text never reaches the disk or the log unsealed.
//!
//! Real time, not paused tokio time: the limits and the simulator's call times are
//! `std::time::Instant`, and commits run on the store's writer thread (paused time would jump
//! ahead while one runs). The tests wait on events and states; one short window remains (typing).

mod support;

use std::time::{Duration, Instant};

use lanbox::auth::Role;
use lanbox::channels::telegram::bots::{self as accounts, AccountChanges};
use lanbox::dev::simulator::{Call, Fault, SimBot, Simulator};
use lanbox::model::ChatKind;
use lanbox::outbox::OutboxOptions;
use lanbox::service::ServiceOptions;
use serde_json::{Value, json};
use support::logs::{self, Captured};
use support::messages::{chat, text_message};
use support::server::*;
use support::{bots, canary, poll};

const CANARY: &str = "OutboxCanary9Kestrel";
const ANNA: i64 = 1001;
const GROUP: i64 = -100_4242;
/// Message IDs of what the chats received (the simulator numbers the bot's own from 1).
const THEIRS: i64 = 9001;

/// Every test's lanbox log, at the most verbose level (the simulator, standing in for
/// Telegram, is left out: it is not lanbox).
fn logs() -> &'static Captured {
    logs::capture("lanbox=trace,lanbox::dev::simulator=off")
}

struct Env {
    s: TestServer,
    sim: Simulator,
    bot: SimBot,
    account: u64,
    /// Token of `alice`, an agent granted the account.
    alice: String,
    opts: OutboxOptions,
}

fn fast(mut o: OutboxOptions) -> OutboxOptions {
    o.max_backoff = Duration::from_millis(200);
    o
}

async fn setup(opts: OutboxOptions) -> Env {
    logs();
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("lanbox_outbox_bot");
    let s = TestServer::start_with(ServiceOptions {
        outbox: opts.clone(),
        ..ServiceOptions::default()
    })
    .await;
    let account = bots::add(&s.store, &sim, &bot, Some("alpha")).await;
    s.state.outbox.start(account).await.unwrap();
    s.user("alice", Role::Agent, &[account]).await;
    s.user("nobody", Role::Agent, &[]).await;
    let alice = s.token("alice").await;
    let anna = chat(ANNA, ChatKind::Private, "Anna");
    let group = chat(GROUP, ChatKind::Supergroup, "Team room");
    s.ingest(
        account,
        vec![
            text_message(account, &anna, THEIRS, "hello from Anna"),
            text_message(account, &group, THEIRS + 7, "hello from the group"),
        ],
    )
    .await;
    Env {
        s,
        sim,
        bot,
        account,
        alice,
        opts,
    }
}

impl Env {
    fn anna(&self) -> String {
        format!("{}:{ANNA}", self.account)
    }

    async fn send(&self, chat: &str, body: Value) -> (u16, Value) {
        post(
            &self.s,
            &self.alice,
            &format!("/api/v1/chats/{chat}/messages"),
            body,
        )
        .await
    }

    async fn item(&self, id: u64) -> Value {
        let (st, v) = get(&self.s, &self.alice, &format!("/api/v1/outbox/{id}")).await;
        assert_eq!(st, 200, "{v}");
        v
    }

    /// Waits until item `id` is no longer queued or sending.
    async fn settled(&self, id: u64, within: Duration) -> Value {
        poll::until_ok(within, || async {
            let v = self.item(id).await;
            if v["status"] == "sent" || v["status"] == "failed" {
                Ok(v)
            } else {
                Err(format!("item {id} still {v}"))
            }
        })
        .await
    }

    /// Waits until the account's outbox holds nothing queued or sending (its figures in
    /// `GET /api/v1/stats`), and returns those figures. From then on, until something is sent
    /// again, no request can reach the simulator.
    async fn drained(&self, within: Duration) -> Value {
        poll::until_ok(within, || async {
            let (_, stats) = get(&self.s, &self.alice, "/api/v1/stats").await;
            let outbox = stats["outbox"].clone();
            if outbox["backlog"] == 0 {
                Ok(outbox)
            } else {
                Err(format!("outbox still holds items: {outbox}"))
            }
        })
        .await
    }

    fn send_calls(&self) -> Vec<Call> {
        self.bot
            .calls()
            .into_iter()
            .filter(|c| c.method == "sendMessage")
            .collect()
    }
}

#[tokio::test]
async fn a_send_reaches_telegram_and_its_status_goes_queued_then_sent() {
    let e = setup(OutboxOptions::default()).await;
    let mut ws = ws_token(&e.s, &e.alice).await;
    call(&mut ws, json!({"type": "subscribe"})).await;

    let (st, item) = e
        .send(
            &e.anna(),
            json!({"text": "first reply zanzibar", "reply_to": THEIRS, "idempotency_key": "k-1"}),
        )
        .await;
    assert_eq!(st, 202, "{item}");
    assert_eq!(item["status"], "queued");
    assert_eq!(item["chat"], e.anna());
    let id = item["id"].as_u64().unwrap();

    let queued = next_of(&mut ws, "message.status").await;
    assert_eq!(
        (queued["status"].as_str(), queued["outbox"]["id"].as_u64()),
        (Some("queued"), Some(id)),
        "{queued}"
    );
    assert_eq!(queued["seq"], item["seq"]);
    let created = next_of(&mut ws, "message.created").await;
    assert_eq!(created["message"]["direction"], "outgoing");
    assert_eq!(created["message"]["text"], "first reply zanzibar");
    let sent = next_of(&mut ws, "message.status").await;
    assert_eq!(sent["status"], "sent", "{sent}");
    assert!(sent["seq"].as_u64() > queued["seq"].as_u64());
    let tg = sent["outbox"]["telegram_id"].as_i64().unwrap();
    assert_eq!(sent["message_id"], json!(tg));
    assert_eq!(sent["message"]["status"], "sent");

    let out = e.bot.sent();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].chat_id, out[0].message_id, out[0].text.as_str()),
        (ANNA, tg, "first reply zanzibar")
    );
    assert_eq!(out[0].reply_parameters.as_ref().unwrap()["message_id"], THEIRS);
    let item = e.item(id).await;
    assert_eq!(
        (
            item["status"].as_str(),
            item["telegram_id"].as_i64(),
            item["attempts"].as_u64()
        ),
        (Some("sent"), Some(tg), Some(1))
    );

    // The sent message is part of the conversation and of search.
    let (_, page) = get(&e.s, &e.alice, &format!("/api/v1/chats/{}/messages", e.anna())).await;
    let last = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "outgoing")
        .unwrap()
        .clone();
    assert_eq!(
        (
            last["text"].as_str(),
            last["direction"].as_str(),
            last["status"].as_str()
        ),
        (Some("first reply zanzibar"), Some("outgoing"), Some("sent"))
    );
    let (_, found) = get(&e.s, &e.alice, "/api/v1/search?q=zanzibar").await;
    assert_eq!(found["hits"].as_array().unwrap().len(), 1, "{found}");

    // The same over the WebSocket, into the group.
    let ack = call(
        &mut ws,
        json!({"type": "send_message", "chat": format!("0:{GROUP}"), "text": "to the group"}),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["outbox"]["status"], "queued");
    let gid = ack["outbox"]["id"].as_u64().unwrap();
    loop {
        let m = next_of(&mut ws, "message.status").await;
        if m["outbox"]["id"] == json!(gid) && m["status"] == "sent" {
            break;
        }
    }
    assert_eq!(e.bot.sent().len(), 2);

    // Replayed from the log, the statuses read the same.
    let (_, log) = get(&e.s, &e.alice, "/api/v1/events?after=0").await;
    let statuses: Vec<(u64, String)> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "message.status")
        .map(|v| {
            (
                v["outbox"]["id"].as_u64().unwrap(),
                v["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (id, "queued".to_owned()),
            (id, "sent".to_owned()),
            (gid, "queued".to_owned()),
            (gid, "sent".to_owned())
        ]
    );
    let (_, stats) = get(&e.s, &e.alice, "/api/v1/stats").await;
    assert_eq!(
        stats["outbox"],
        json!({"available": true, "backlog": 0, "failed": 0})
    );

    // What was sent matches the OpenAPI document's shapes (field names; tests/openapi.rs
    // checks types for the other routes).
    let doc: Value = serde_json::from_str(lanbox::api::OPENAPI).unwrap();
    let schemas = &doc["components"]["schemas"];
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let mut required: Vec<String> = schemas["OutboxItem"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    required.sort();
    assert_eq!(keys(&item), required);
    for k in keys(&sent) {
        assert!(!schemas["Event"]["properties"][&k].is_null(), "Event lacks {k}");
    }
    assert_eq!(keys(&sent["outbox"]), vec!["id", "telegram_id"]);
}

// Regression (issue 15): a message a teammate sent showed to everyone as "You", and nothing
// recorded who sent it.
#[tokio::test]
async fn each_sent_message_names_the_user_who_sent_it() {
    let e = setup(OutboxOptions::default()).await;
    e.s.user("bob", Role::Agent, &[e.account]).await;
    let bob = e.s.token("bob").await;
    let id_of = |token: String| {
        let s = &e.s;
        async move { get(s, &token, "/api/v1/me").await.1["id"].as_u64().unwrap() }
    };
    let (alice_id, bob_id) = (id_of(e.alice.clone()).await, id_of(bob.clone()).await);
    let mut ws = ws_token(&e.s, &e.alice).await;
    call(&mut ws, json!({"type": "subscribe"})).await;

    let (st, a) = e.send(&e.anna(), json!({"text": "from alice"})).await;
    assert_eq!(st, 202, "{a}");
    let (st, b) = post(
        &e.s,
        &bob,
        &format!("/api/v1/chats/{}/messages", e.anna()),
        json!({"text": "from bob"}),
    )
    .await;
    assert_eq!(st, 202, "{b}");
    for item in [&a, &b] {
        e.settled(item["id"].as_u64().unwrap(), Duration::from_secs(30))
            .await;
    }

    // Live: each created message and each "sent" status carries its sender.
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let ev = recv(&mut ws).await;
        let m = &ev["message"];
        if ev["type"] == "message.created" || (ev["type"] == "message.status" && ev["status"] == "sent") {
            seen.push((
                m["text"].as_str().unwrap().to_string(),
                m["sent_by"]["user"].as_u64(),
                m["sent_by"]["name"].clone(),
            ));
        }
    }
    for (text, user, name) in &seen {
        let want = if text == "from alice" {
            (alice_id, "alice")
        } else {
            (bob_id, "bob")
        };
        assert_eq!((*user, name.as_str()), (Some(want.0), Some(want.1)), "{text}");
    }

    // Over REST: ours name their sender, theirs (incoming) have none.
    let (_, page) = get(&e.s, &e.alice, &format!("/api/v1/chats/{}/messages", e.anna())).await;
    let by: Vec<(String, Value)> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["text"].as_str().unwrap_or("").to_string(), m["sent_by"].clone()))
        .collect();
    assert!(by.contains(&("hello from Anna".into(), Value::Null)), "{by:?}");
    // Sent with an API token: the token is named too (by its id and label).
    let (_, tokens) = get(&e.s, &e.alice, "/api/v1/tokens").await;
    let alice_token = tokens[0]["id"].clone();
    let from_alice = by
        .iter()
        .find(|(t, _)| t == "from alice")
        .map(|(_, b)| b.clone())
        .unwrap();
    assert_eq!(
        (
            from_alice["user"].as_u64(),
            from_alice["name"].as_str(),
            &from_alice["token"]["id"]
        ),
        (Some(alice_id), Some("alice"), &alice_token),
        "{by:?}"
    );
    let from_bob = by
        .iter()
        .find(|(t, _)| t == "from bob")
        .map(|(_, b)| b.clone())
        .unwrap();
    assert_eq!(
        (from_bob["user"].as_u64(), from_bob["name"].as_str()),
        (Some(bob_id), Some("bob"))
    );
    assert_ne!(
        from_bob["token"]["id"], alice_token,
        "each send names its own token"
    );
    assert!(from_bob["token"]["id"].is_string(), "{by:?}");
}

#[tokio::test]
async fn a_retried_send_with_the_same_key_is_sent_once() {
    let e = setup(OutboxOptions::default()).await;
    // Held at the simulator for a moment, so the retries meet the item while it is in flight.
    e.bot
        .fail("sendMessage", Fault::Slow(Duration::from_millis(400)), 1);
    let body = json!({"text": "only once please", "idempotency_key": "retry-me"});
    let (st, first) = e.send(&e.anna(), body.clone()).await;
    assert_eq!(st, 202);
    let mut handles = Vec::new();
    for _ in 0..5 {
        let (s2, b2) = (e.s.client(), body.clone());
        let (url, tok) = (
            e.s.url(&format!("/api/v1/chats/{}/messages", e.anna())),
            e.alice.clone(),
        );
        handles.push(tokio::spawn(async move {
            let r = s2.post(url).bearer_auth(tok).json(&b2).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }));
    }
    for h in handles {
        let (st, again) = h.await.unwrap();
        assert_eq!((st, &again["id"]), (202, &first["id"]), "{again}");
    }
    let done = e
        .settled(first["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(done["status"], "sent");
    let (_, after) = e.send(&e.anna(), body.clone()).await;
    assert_eq!(
        (after["id"].clone(), after["status"].clone()),
        (first["id"].clone(), json!("sent"))
    );
    // A different key is a different message; the same key on another chat's send is still
    // the first item (keys are per account).
    let (_, other) = e
        .send(
            &e.anna(),
            json!({"text": "another", "idempotency_key": "retry-me-2"}),
        )
        .await;
    assert_ne!(other["id"], first["id"]);
    e.settled(other["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(e.bot.sent().len(), 2);
    assert_eq!(e.send_calls().len(), 2);
}

#[tokio::test]
async fn the_daily_limit_refuses_further_sends_clearly() {
    let e = setup(OutboxOptions::default()).await;
    accounts::update(
        &e.s.store,
        e.account,
        AccountChanges {
            daily_limit: Some(Some(2)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for i in 0..2 {
        let (st, v) = e
            .send(
                &e.anna(),
                json!({"text": format!("send {i}"), "idempotency_key": format!("d{i}")}),
            )
            .await;
        assert_eq!(st, 202, "{v}");
    }
    let (st, v) = e.send(&e.anna(), json!({"text": "one too many"})).await;
    assert_eq!(st, 429, "{v}");
    assert_eq!(v["error"]["code"], "daily_limit_reached");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily limit of 2"),
        "{v}"
    );
    // A retry of an accepted send still answers with its item.
    let (st, v) = e
        .send(&e.anna(), json!({"text": "send 0", "idempotency_key": "d0"}))
        .await;
    assert_eq!(st, 202, "{v}");
    let mut ws = ws_token(&e.s, &e.alice).await;
    let refused = call(
        &mut ws,
        json!({"type": "send_message", "chat": e.anna(), "text": "ws too"}),
    )
    .await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("daily_limit_reached"))
    );
    assert!(
        e.bot
            .wait_until(Duration::from_secs(10), |b| b.sent().len() == 2)
            .await
    );
    // Once nothing is queued or sending, nothing more can be sent: the refusals queued nothing.
    let outbox = e.drained(Duration::from_secs(10)).await;
    assert_eq!(outbox, json!({"available": true, "backlog": 0, "failed": 0}));
    assert_eq!(e.bot.sent().len(), 2);
}

#[tokio::test]
async fn two_server_errors_then_success_is_sent_once() {
    let e = setup(fast(OutboxOptions::default())).await;
    e.bot.fail("sendMessage", Fault::Status(500), 1);
    e.bot.fail("sendMessage", Fault::Status(502), 1);
    let (_, item) = e.send(&e.anna(), json!({"text": "third time lucky"})).await;
    let done = e
        .settled(item["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("sent"), Some(3)),
        "{done}"
    );
    let calls = e.send_calls();
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        vec![Some(500), Some(502), Some(200)]
    );
    assert_eq!(e.bot.sent().len(), 1);
}

#[tokio::test]
async fn errors_fail_the_item_with_a_reason_that_never_holds_the_text() {
    let e = setup(fast(OutboxOptions::default())).await;
    let mut ws = ws_token(&e.s, &e.alice).await;
    call(&mut ws, json!({"type": "subscribe"})).await;

    // A permanent refusal fails at once.
    e.bot.fail("sendMessage", Fault::Status(403), 1);
    let (_, item) = e
        .send(&e.anna(), json!({"text": format!("blocked {CANARY}")}))
        .await;
    let done = e
        .settled(item["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    let reason = done["status_reason"].as_str().unwrap();
    assert!(reason.contains("403") && !reason.contains(CANARY), "{reason}");

    // Transient errors are retried three times, then the item fails.
    e.bot.fail("sendMessage", Fault::Status(503), 10);
    let (_, item) = e
        .send(&e.anna(), json!({"text": format!("unlucky {CANARY}")}))
        .await;
    let id = item["id"].as_u64().unwrap();
    let done = e.settled(id, Duration::from_secs(15)).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_u64()),
        (Some("failed"), Some(4)),
        "{done}"
    );
    let reason = done["status_reason"].as_str().unwrap();
    assert!(
        reason.contains("gave up after 4 attempts") && !reason.contains(CANARY),
        "{reason}"
    );
    assert_eq!(e.send_calls().len(), 5);
    assert!(e.bot.sent().is_empty());
    loop {
        let m = next_of(&mut ws, "message.status").await;
        if m["outbox"]["id"] == json!(id) && m["status"] == "failed" {
            assert_eq!(m["status_reason"].as_str(), Some(reason));
            break;
        }
    }
    let (_, stats) = get(&e.s, &e.alice, "/api/v1/stats").await;
    assert_eq!(
        stats["outbox"],
        json!({"available": true, "backlog": 0, "failed": 2})
    );
}

/// Most calls in any window of `span` (shortened by `slack` for the simulator's clock).
fn most_in(times: &[Instant], span: Duration) -> usize {
    let mut best = 0;
    for (i, t) in times.iter().enumerate() {
        let n = times[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < span)
            .count();
        best = best.max(n);
    }
    best
}

#[tokio::test]
async fn a_429_storm_is_ridden_out_within_the_limits() {
    let opts = OutboxOptions {
        bot_per_second: 8,
        private_per_second: 1.0,
        private_burst: 3,
        group_per_minute: 20,
        ..fast(OutboxOptions::default())
    };
    let e = setup(opts.clone()).await;
    // More chats for the bot-wide limit to matter.
    let chats: Vec<i64> = (0..6).map(|i| 5000 + i).collect();
    for &c in &chats {
        let ch = chat(c, ChatKind::Private, "someone");
        e.s.ingest(e.account, vec![text_message(e.account, &ch, 1, "hi")])
            .await;
    }
    // A storm: the first five sends get 429 with retry_after 1.
    e.bot.fail("sendMessage", Fault::RetryAfter(1), 5);
    let mut ids = Vec::new();
    let mut expected = Vec::new();
    for round in 0..4 {
        for &c in chats.iter().chain([ANNA].iter()) {
            let text = format!("round {round} to {c}");
            let (st, v) = e.send(&format!("{}:{c}", e.account), json!({"text": text})).await;
            assert_eq!(st, 202, "{v}");
            ids.push(v["id"].as_u64().unwrap());
            expected.push(text);
        }
        let text = format!("round {round} to the group");
        let (_, v) = e.send(&format!("0:{GROUP}"), json!({"text": text})).await;
        ids.push(v["id"].as_u64().unwrap());
        expected.push(text);
    }
    for id in &ids {
        let v = e.settled(*id, Duration::from_secs(60)).await;
        assert_eq!(v["status"], "sent", "{v}");
    }
    // Each message reached Telegram once, in order per chat.
    let sent = e.bot.sent();
    let mut texts: Vec<String> = sent.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts.len(), expected.len());
    for &c in chats.iter().chain([ANNA, GROUP].iter()) {
        let order: Vec<&str> = sent
            .iter()
            .filter(|m| m.chat_id == c)
            .map(|m| m.text.as_str())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "chat {c} out of order");
    }
    texts.sort();
    expected.sort();
    assert_eq!(texts, expected);

    // Every request, the 429'd ones included, kept within the limits the simulator saw.
    let calls = e.send_calls();
    assert_eq!(calls.len(), expected.len() + 5);
    let slack = Duration::from_millis(30);
    let all: Vec<Instant> = calls.iter().map(|c| c.at).collect();
    let most = most_in(&all, Duration::from_secs(1));
    assert!(most <= opts.bot_per_second as usize, "bot: {most} in 1 s");
    for &c in chats.iter().chain([ANNA].iter()) {
        let t: Vec<Instant> = calls
            .iter()
            .filter(|x| x.params["chat_id"] == json!(c))
            .map(|x| x.at)
            .collect();
        // A bucket of 3 at 1/s: at most 3 + n in any window of n seconds.
        for n in 1..=4u64 {
            let most = most_in(&t, Duration::from_secs(n) - slack);
            assert!(most as u64 <= 3 + n, "chat {c}: {most} in {n} s");
        }
    }
    let g: Vec<Instant> = calls
        .iter()
        .filter(|x| x.params["chat_id"] == json!(GROUP))
        .map(|x| x.at)
        .collect();
    assert!(most_in(&g, Duration::from_secs(60)) <= 20);
    // After each 429 the bot started nothing new for its retry_after: what arrives within it
    // was already in flight (at most `concurrency - 1` other requests).
    for c in calls.iter().filter(|c| c.status == Some(429)) {
        let within = calls
            .iter()
            .filter(|x| x.at > c.at && x.at.duration_since(c.at) < Duration::from_millis(950))
            .count();
        assert!(
            within < opts.concurrency as usize,
            "{within} requests within a second of a 429"
        );
    }
}

/// Stops the server and its senders, waits until the store is closed, and serves the same
/// data directory again.
async fn restart(e: Env) -> Env {
    let Env {
        mut s,
        sim,
        bot,
        account,
        alice,
        opts,
    } = e;
    s.state.outbox.shutdown().await;
    s.state.hub.shutdown();
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    // The store closes once its writer thread has finished; nothing announces that.
    poll::until_ok(Duration::from_secs(20), || async {
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
    let s = TestServer::start_in(
        dir,
        ServiceOptions {
            outbox: opts.clone(),
            ..ServiceOptions::default()
        },
    )
    .await;
    Env {
        s,
        sim,
        bot,
        account,
        alice,
        opts,
    }
}

#[tokio::test]
async fn queued_items_survive_a_restart_and_interrupted_ones_are_not_resent_silently() {
    let e = setup(fast(OutboxOptions::default())).await;
    // Telegram says "wait 30 s": the item is queued again when the server stops.
    e.bot.fail("sendMessage", Fault::RetryAfter(30), 1);
    let (_, waiting) = e.send(&e.anna(), json!({"text": "survives a restart"})).await;
    let waiting = waiting["id"].as_u64().unwrap();
    assert!(
        e.bot
            .wait_until(Duration::from_secs(10), |b| b
                .calls()
                .iter()
                .any(|c| c.method == "sendMessage" && c.status == Some(429)))
            .await
    );
    // The 429's answer puts the item back in the queue, to wait out the 30 s.
    let answered = poll::until_ok(Duration::from_secs(10), || async {
        let v = e.item(waiting).await;
        if v["status"] == "sending" {
            Err(format!("item still {v}"))
        } else {
            Ok(v)
        }
    })
    .await;
    assert_eq!(answered["status"], "queued", "{answered}");
    let e = restart(e).await;
    let done = e.settled(waiting, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "sent", "{done}");
    assert_eq!(e.bot.sent().len(), 1);
    assert_eq!(e.bot.sent()[0].text, "survives a restart");

    // Telegram has the request when the server stops: the outcome is unknown, so the item is
    // failed with a reason saying so, and not sent again.
    e.bot.fail("sendMessage", Fault::Hang, 1);
    let (_, hung) = e.send(&e.anna(), json!({"text": "in flight"})).await;
    let hung = hung["id"].as_u64().unwrap();
    assert!(
        e.bot
            .wait_until(Duration::from_secs(10), |b| b
                .calls()
                .iter()
                .any(|c| c.method == "sendMessage" && c.status.is_none()))
            .await
    );
    assert_eq!(e.item(hung).await["status"], "sending");
    let calls_before = e.send_calls().len();
    let e = restart(e).await;
    let done = e.settled(hung, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "failed");
    assert!(
        done["status_reason"].as_str().unwrap().starts_with("interrupted"),
        "{done}"
    );
    // A chat's items go out in the order they were queued, so a resend of the interrupted item
    // would reach Telegram before a message queued after the restart.
    let (_, next) = e.send(&e.anna(), json!({"text": "after the restart"})).await;
    let next = e
        .settled(next["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(next["status"], "sent", "{next}");
    let calls = e.send_calls();
    assert_eq!(calls.len(), calls_before + 1, "an interrupted send was resent");
    assert_eq!(calls.last().unwrap().params["text"], "after the restart");
    assert_eq!(e.item(hung).await["status"], "failed");
    assert_eq!(e.bot.sent().len(), 2);

    // With resend_interrupted, it is sent again (and the operator accepted a possible double).
    let mut e = e;
    e.opts.resend_interrupted = true;
    e.bot.fail("sendMessage", Fault::Hang, 1);
    let (_, again) = e.send(&e.anna(), json!({"text": "resend me"})).await;
    let again = again["id"].as_u64().unwrap();
    assert!(
        e.bot
            .wait_until(Duration::from_secs(10), |b| b
                .calls()
                .iter()
                .filter(|c| c.method == "sendMessage" && c.status.is_none())
                .count()
                >= 2)
            .await
    );
    let e = restart(e).await;
    let done = e.settled(again, Duration::from_secs(10)).await;
    assert_eq!(done["status"], "sent");
    assert_eq!(e.bot.sent().last().unwrap().text, "resend me");
}

#[tokio::test]
async fn our_messages_can_be_edited_and_deleted_theirs_cannot() {
    let e = setup(OutboxOptions::default()).await;
    let (_, item) = e.send(&e.anna(), json!({"text": "typo here"})).await;
    let done = e
        .settled(item["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    let mid = done["message_id"].as_i64().unwrap();
    let path = format!("/api/v1/chats/{}/messages/{mid}", e.anna());

    let res =
        e.s.client()
            .patch(e.s.url(&path))
            .bearer_auth(&e.alice)
            .json(&json!({"text": "fixed here"}))
            .send()
            .await
            .unwrap();
    if res.status() != 200 {
        let l = logs().text();
        eprintln!(
            "DEBUG {}",
            l.lines()
                .filter(|x| x.contains("ERROR") || x.contains("WARN"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert_eq!(res.status(), 200);
    let edited: Value = res.json().await.unwrap();
    assert_eq!(edited["text"], "fixed here");
    assert!(edited["edited_at"].is_i64());
    let (_, found) = get(&e.s, &e.alice, "/api/v1/search?q=typo").await;
    assert!(found["hits"].as_array().unwrap().is_empty(), "{found}");
    assert!(e.bot.calls().iter().any(|c| c.method == "editMessageText"
        && c.params["message_id"] == json!(mid)
        && c.params["text"] == "fixed here"));

    // An incoming message is not ours to change.
    let theirs = format!("/api/v1/chats/{}/messages/{THEIRS}", e.anna());
    let res =
        e.s.client()
            .patch(e.s.url(&theirs))
            .bearer_auth(&e.alice)
            .json(&json!({"text": "rewritten"}))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"]["code"],
        "not_outgoing"
    );
    let res =
        e.s.client()
            .delete(e.s.url(&theirs))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 403);
    // Nor anyone's without a grant.
    let nobody = e.s.token("nobody").await;
    let res =
        e.s.client()
            .delete(e.s.url(&path))
            .bearer_auth(&nobody)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 404);

    let res =
        e.s.client()
            .delete(e.s.url(&path))
            .bearer_auth(&e.alice)
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        e.bot
            .calls()
            .iter()
            .any(|c| c.method == "deleteMessage" && c.params["message_id"] == json!(mid))
    );
    let (st, _) = get(&e.s, &e.alice, &path).await;
    assert_eq!(st, 404);
    assert!(!e.bot.calls().iter().any(|c| c.method != "getMe"
        && c.method != "sendMessage"
        && c.params.get("message_id") == Some(&json!(THEIRS))));
}

#[tokio::test]
async fn typing_reaches_telegram_at_most_once_per_interval() {
    let e = setup(OutboxOptions::default()).await;
    let mut ws = ws_token(&e.s, &e.alice).await;
    let first = call(&mut ws, json!({"type": "typing", "chat": e.anna()})).await;
    assert_eq!(
        (first["type"].as_str(), first["telegram"].as_bool()),
        (Some("ack"), Some(true))
    );
    for _ in 0..30 {
        let again = call(&mut ws, json!({"type": "typing", "chat": e.anna()})).await;
        assert_eq!(again["telegram"], false);
    }
    let (st, v) = post(
        &e.s,
        &e.alice,
        &format!("/api/v1/chats/0:{GROUP}/typing"),
        json!({}),
    )
    .await;
    assert_eq!((st, v["telegram"].as_bool()), (200, Some(true)), "{v}");
    assert!(
        e.bot
            .wait_until(Duration::from_secs(5), |b| b
                .calls()
                .iter()
                .filter(|c| c.method == "sendChatAction")
                .count()
                == 2)
            .await
    );
    // A typing notice is a fire-and-forget task (never queued), so an extra one would have no
    // event to wait for and no order to wait behind: a short window is all there is.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let actions: Vec<Call> = e
        .bot
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendChatAction")
        .collect();
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0].params["action"], "typing");
}

#[tokio::test]
async fn sends_need_a_granted_account_with_a_bot() {
    let e = setup(OutboxOptions::default()).await;
    let nobody = e.s.token("nobody").await;
    let (st, _) = post(
        &e.s,
        &nobody,
        &format!("/api/v1/chats/{}/messages", e.anna()),
        json!({"text": "x"}),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = e
        .send(&e.anna(), json!({"text": "x", "account": e.account + 7}))
        .await;
    assert_eq!(st, 404);
    let (st, _) = e.send(&e.anna(), json!({"text": "   "})).await;
    assert_eq!(st, 400);
    let (st, _) = e.send(&e.anna(), json!({"text": "x", "reply_to": 999})).await;
    assert_eq!(st, 400);
    let (_, item) = e.send(&e.anna(), json!({"text": "mine"})).await;
    let (st, _) = get(&e.s, &nobody, &format!("/api/v1/outbox/{}", item["id"])).await;
    assert_eq!(st, 404);
    // A stopped sender starts again when needed.
    e.s.state.outbox.stop(e.account);
    let (st, v) = e.send(&e.anna(), json!({"text": "after a stop"})).await;
    assert_eq!(st, 202, "{v}");
    let done = e
        .settled(v["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(done["status"], "sent");
    // An account without a bot cannot send.
    let bare = e.s.account("no bot").await;
    let ch = chat(77, ChatKind::Private, "Zed");
    e.s.ingest(bare, vec![text_message(bare, &ch, 1, "hi")]).await;
    e.s.user("root", Role::Admin, &[]).await;
    let root = e.s.token("root").await;
    let (st, v) = post(
        &e.s,
        &root,
        &format!("/api/v1/chats/{bare}:77/messages"),
        json!({"text": "x"}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("account_not_connected")),
        "{v}"
    );
}

/// Sends canary texts (sent, refused, rate limited on the way) and an idempotency key, then
/// scans this server's data directory and every lanbox log line written by any test so far.
#[tokio::test]
async fn the_text_never_reaches_the_disk_or_the_log_unsealed() {
    let e = setup(fast(OutboxOptions::default())).await;
    let (_, a) = e
        .send(
            &e.anna(),
            json!({"text": format!("sent {CANARY}"), "idempotency_key": CANARY}),
        )
        .await;
    e.settled(a["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    e.bot.fail("sendMessage", Fault::Status(400), 1);
    let (_, b) = e
        .send(&e.anna(), json!({"text": format!("refused {CANARY}")}))
        .await;
    e.settled(b["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    e.bot.fail("sendMessage", Fault::RetryAfter(1), 2);
    let (_, c) = e
        .send(&format!("0:{GROUP}"), json!({"text": format!("storm {CANARY}")}))
        .await;
    e.settled(c["id"].as_u64().unwrap(), Duration::from_secs(10))
        .await;
    assert_eq!(e.bot.sent().len(), 2);

    let dir = e.s.dir.path().to_path_buf();
    let e = restart(e).await;
    let _ = e.item(1).await;
    let mut hits = Vec::new();
    canary::scan(&dir, &[CANARY], &mut hits);
    assert!(hits.is_empty(), "{hits:?}");
    let log = logs().text();
    assert!(log.contains("outbox"), "the log was captured");
    assert!(!log.contains(CANARY), "the log holds the text");
}
