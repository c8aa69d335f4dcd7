//! A Telegram user account's updates beyond new messages (issue 16, point 2), through the
//! whole path: the MTProto simulator pushes them over real TCP, under MTProto encryption, to a
//! running lanbox (logged in through the API), and the test reads the result back through the
//! REST API and the WebSocket on a real TLS socket.
//!
//! - deletes (`updateDeleteMessages` across a private chat and a basic group, whose IDs are per
//!   account and name no chat; `updateDeleteChannelMessages`) remove the message, from the
//!   chat and from search, with no tombstone; a delete missed while lanbox was down arrives
//!   through `updates.getDifference`, a supergroup's message through
//!   `updates.getChannelDifference`;
//! - read receipts of the account's outgoing messages (`updateReadHistoryOutbox`,
//!   `updateReadChannelOutbox`) make them `read`, with `message.status` events;
//! - the other side's typing (`updateUserTyping`, `updateChatUserTyping`,
//!   `updateChannelUserTyping`) is the live feed's `typing` event;
//! - basic groups, supergroups and channels are chats of their kind, under the Bot API's chat
//!   IDs, and a channel's posts come from the channel.

mod support;

use std::time::Duration;

use lanbox::auth::Role;
use lanbox::channels::mtproto::{self, UserStatus};
use lanbox::dev::mtproto::{MtSimConfig, MtSimulator, SimChatKind};
use lanbox::service::ServiceOptions;
use serde_json::{Value, json};
use support::poll;
use support::server::{TestServer, Ws, call, get, next_of, ws_token};

const WAIT: Duration = Duration::from_secs(20);

struct Rig {
    s: TestServer,
    sim: MtSimulator,
    root: String,
    account: u64,
}

/// lanbox with a Telegram application pointing at the simulator, and the simulator's account
/// logged in through the API and online.
async fn rig() -> Rig {
    support::logs::capture(&format!("info,{}", mtproto::LOG_DIRECTIVES));
    let sim = MtSimulator::start(MtSimConfig::default()).await.unwrap();
    let app = support::users::app(&sim);
    let s = TestServer::start_with(ServiceOptions {
        telegram_app: Some(app),
        ..ServiceOptions::default()
    })
    .await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let account = support::users::sign_in(&s, &root, &sim).await;
    let r = Rig {
        s,
        sim,
        root,
        account,
    };
    r.wait_online().await;
    r
}

impl Rig {
    async fn wait_online(&self) {
        support::users::wait_online(&self.s, &self.root, self.account, WAIT).await
    }

    async fn chats(&self) -> Vec<Value> {
        let (st, v) = get(&self.s, &self.root, "/api/v1/chats").await;
        assert_eq!(st, 200, "{v}");
        v["chats"].as_array().unwrap().clone()
    }

    /// Every visible message, with its chat.
    async fn messages(&self) -> Vec<(Value, Value)> {
        let mut out = Vec::new();
        for c in self.chats().await {
            let path = format!("/api/v1/chats/{}/messages", c["id"].as_str().unwrap());
            let (st, m) = get(&self.s, &self.root, &path).await;
            assert_eq!(st, 200, "{m}");
            for m in m["messages"].as_array().unwrap() {
                out.push((c.clone(), m.clone()));
            }
        }
        out
    }

    /// The message with `text` and its chat, once visible.
    async fn wait_for(&self, text: &str) -> (Value, Value) {
        poll::until_ok(WAIT, || async {
            self.messages()
                .await
                .into_iter()
                .find(|(_, m)| m["text"] == text)
                .ok_or_else(|| format!("no message {text:?} yet"))
        })
        .await
    }

    /// Waits until `check` holds for the visible messages' texts.
    async fn wait_texts(&self, what: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        poll::until_ok(WAIT, || async {
            let texts: Vec<String> = self
                .messages()
                .await
                .iter()
                .filter_map(|(_, m)| m["text"].as_str().map(str::to_string))
                .collect();
            if check(&texts) {
                Ok(texts)
            } else {
                Err(format!("{what}: {texts:?}"))
            }
        })
        .await
    }

    async fn search(&self, q: &str) -> Vec<Value> {
        let (st, v) = get(&self.s, &self.root, &format!("/api/v1/search?q={q}")).await;
        assert_eq!(st, 200, "{v}");
        v["hits"].as_array().unwrap().clone()
    }

    /// The status of the message with `text`.
    async fn status_of(&self, text: &str) -> String {
        let (_, m) = self.wait_for(text).await;
        m["status"].as_str().unwrap().to_string()
    }
}

/// A WebSocket subscribed to everything the admin sees.
async fn live(r: &Rig) -> Ws {
    let mut ws = ws_token(&r.s, &r.root).await;
    let ack = call(&mut ws, json!({"type": "subscribe"})).await;
    assert!(ack["last_seq"].is_u64(), "{ack}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_remove_messages_from_private_chats_basic_groups_and_supergroups() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Group);
    let sgroup = r.sim.add_chat("Patients forum", SimChatKind::Supergroup);
    r.sim.message_from(&ann, "keep private");
    let p = r.sim.message_from(&ann, "gone private walrus");
    r.sim.message_in(&group, &ann, "keep group");
    let g = r.sim.message_in(&group, &ann, "gone group walrus");
    let c = r.sim.message_in(&sgroup, &ann, "gone super walrus");
    r.sim.message_in(&sgroup, &ann, "keep super");
    r.wait_texts("all six", |t| t.len() == 6).await;
    assert_eq!(r.search("walrus").await.len(), 3);

    // One updateDeleteMessages names IDs of two chats (a private chat and a basic group),
    // and no chat; updateDeleteChannelMessages names its supergroup.
    r.sim.delete(&[p, g]);
    r.sim.delete_in(&sgroup, &[c]);
    let texts = r
        .wait_texts("the deleted gone", |t| !t.iter().any(|t| t.contains("walrus")))
        .await;
    let mut texts = texts;
    texts.sort();
    assert_eq!(
        texts,
        ["keep group", "keep private", "keep super"],
        "no tombstones"
    );
    assert!(r.search("walrus").await.is_empty(), "gone from search too");
    for chat in r.chats().await {
        assert_eq!(chat["messages"], 1, "{chat}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_missed_while_down_arrives_with_the_catch_up() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let gone = r.sim.message_from(&ann, "deleted while the box was off");
    r.sim.message_from(&ann, "still here");
    r.wait_texts("both", |t| t.len() == 2).await;

    // The account is stopped (as when the box is down), the message deleted meanwhile; the
    // restarted connector learns of it from updates.getDifference.
    let users = &r.s.state.users;
    let mut status = users.watch(r.account).unwrap();
    users.stop(r.account);
    let _ = status.wait_for(|s| matches!(s, UserStatus::Stopped { .. })).await;
    r.sim.delete(&[gone]);
    r.s.state.start_user(r.account);
    let texts = r.wait_texts("the delete caught up", |t| t.len() == 1).await;
    assert_eq!(texts, ["still here"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_receipts_make_outgoing_messages_read() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let sgroup = r.sim.add_chat("Patients forum", SimChatKind::Supergroup);
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Group);
    let mut ws = live(&r).await;
    let first = r.sim.message_to(&ann, "first from the phone");
    r.sim.message_to(&ann, "second from the phone");
    r.sim.message_from(&ann, "an answer");
    let posted = r.sim.message_out_in(&sgroup, "our post in the forum");
    for t in [
        "first from the phone",
        "second from the phone",
        "our post in the forum",
    ] {
        assert_eq!(r.status_of(t).await, "sent");
    }

    // Ann read up to the first: only that one is read.
    r.sim.read_outbox(&ann, first);
    let ev = next_of(&mut ws, "message.status").await;
    assert_eq!(ev["status"], "read", "{ev}");
    assert_eq!(ev["message"]["text"], "first from the phone", "{ev}");
    assert_eq!(r.status_of("first from the phone").await, "read");
    assert_eq!(r.status_of("second from the phone").await, "sent");
    assert_eq!(
        r.status_of("an answer").await,
        "delivered",
        "incoming is untouched"
    );

    // In a supergroup the receipt is updateReadChannelOutbox.
    r.sim.read_outbox_in(&sgroup, posted);
    let ev = next_of(&mut ws, "message.status").await;
    assert_eq!(
        (ev["status"].as_str(), ev["message"]["text"].as_str()),
        (Some("read"), Some("our post in the forum")),
        "{ev}"
    );
    assert_eq!(r.status_of("our post in the forum").await, "read");

    // In a basic group it is updateReadHistoryOutbox naming the group.
    let ours = r.sim.message_out_in(&group, "ours in the group");
    assert_eq!(r.status_of("ours in the group").await, "sent");
    r.sim.read_outbox_in(&group, ours);
    let ev = next_of(&mut ws, "message.status").await;
    assert_eq!(
        (ev["status"].as_str(), ev["message"]["text"].as_str()),
        (Some("read"), Some("ours in the group")),
        "{ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_sides_typing_is_the_live_typing_event() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Group);
    let sgroup = r.sim.add_chat("Patients forum", SimChatKind::Supergroup);
    // Telegram sends a private message as `updateShortMessage`, which names no one; an edit
    // comes with the users it names, which gives the private chat Ann's name.
    let hello = r.sim.message_from(&ann, "hello");
    r.sim.edit(hello, "hello!");
    r.sim.message_in(&group, &ann, "hello group");
    r.sim.message_in(&sgroup, &ann, "hello forum");
    let (private, _) = r.wait_for("hello!").await;
    // Read the chat again: `wait_for` lists the chats before their messages, so the chat it
    // returns may predate the edit (seen in CI: the title still null beside "hello!").
    let path = format!("/api/v1/chats/{}", private["id"].as_str().unwrap());
    let (st, private) = get(&r.s, &r.root, &path).await;
    assert_eq!(st, 200, "{private}");
    assert_eq!(private["title"], "Ann", "{private}");
    let (basic, _) = r.wait_for("hello group").await;
    let (sup, _) = r.wait_for("hello forum").await;
    let mut ws = live(&r).await;

    // updateUserTyping in an updateShort names no one: the private chat's title is Ann's name.
    r.sim.typing(&ann);
    let ev = next_of(&mut ws, "typing").await;
    assert_eq!(
        (&ev["chat"], ev["user"].as_str()),
        (&private["id"], Some("Ann")),
        "{ev}"
    );
    r.sim.typing_in(&group, &ann);
    let ev = next_of(&mut ws, "typing").await;
    assert_eq!(
        (&ev["chat"], ev["user"].as_str()),
        (&basic["id"], Some("Ann")),
        "{ev}"
    );
    r.sim.typing_in(&sgroup, &ann);
    let ev = next_of(&mut ws, "typing").await;
    assert_eq!(
        (&ev["chat"], ev["user"].as_str()),
        (&sup["id"], Some("Ann")),
        "{ev}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_supergroups_and_channels_are_chats_of_their_kind() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Group);
    let sgroup = r.sim.add_chat("Patients forum", SimChatKind::Supergroup);
    let channel = r.sim.add_chat("Clinic news", SimChatKind::Channel);
    r.sim.message_in(&group, &ann, "in the basic group");
    r.sim.message_in(&sgroup, &ann, "in the supergroup");
    r.sim.message_in(&channel, &ann, "a channel post");
    r.sim.message_out_in(&sgroup, "ours in the supergroup");

    let (c, m) = r.wait_for("in the basic group").await;
    assert_eq!(
        (c["kind"].as_str(), c["title"].as_str(), c["telegram_id"].as_i64()),
        (Some("group"), Some("Clinic staff"), Some(-group.id)),
        "{c}"
    );
    assert_eq!(
        (m["sender"]["type"].as_str(), m["sender"]["name"].as_str()),
        (Some("user"), Some("Ann")),
        "{m}"
    );
    let (c, m) = r.wait_for("in the supergroup").await;
    assert_eq!(
        (c["kind"].as_str(), c["title"].as_str(), c["telegram_id"].as_i64()),
        (
            Some("supergroup"),
            Some("Patients forum"),
            Some(-1_000_000_000_000 - sgroup.id)
        ),
        "{c}"
    );
    assert_eq!(m["direction"], "incoming", "{m}");
    let (c2, m) = r.wait_for("ours in the supergroup").await;
    assert_eq!(c2["id"], c["id"], "one chat");
    assert_eq!(
        (m["direction"].as_str(), m["status"].as_str()),
        (Some("outgoing"), Some("sent")),
        "{m}"
    );
    let (c, m) = r.wait_for("a channel post").await;
    assert_eq!(
        (c["kind"].as_str(), c["title"].as_str(), c["telegram_id"].as_i64()),
        (
            Some("channel"),
            Some("Clinic news"),
            Some(-1_000_000_000_000 - channel.id)
        ),
        "{c}"
    );
    assert_eq!(
        (m["sender"]["type"].as_str(), m["sender"]["name"].as_str()),
        (Some("chat"), Some("Clinic news")),
        "a channel's post comes from the channel: {m}"
    );
}

// Regression: grammers needs a channel's access hash to ask `updates.getChannelDifference`,
// and lanbox did not keep the hashes across a restart, so grammers gave the channel up
// ("missing its hash") and a supergroup's messages sent while lanbox was down never arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supergroup_message_missed_while_down_arrives_with_the_catch_up() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let sgroup = r.sim.add_chat("Patients forum", SimChatKind::Supergroup);
    r.sim.message_in(&sgroup, &ann, "before the stop");
    r.wait_for("before the stop").await;
    let users = &r.s.state.users;
    let mut status = users.watch(r.account).unwrap();
    users.stop(r.account);
    let _ = status.wait_for(|s| matches!(s, UserStatus::Stopped { .. })).await;
    r.sim.message_in(&sgroup, &ann, "while stopped");
    r.s.state.start_user(r.account);
    let (chat, _) = r.wait_for("while stopped").await;
    assert_eq!(chat["kind"], "supergroup");
    assert!(
        r.sim.calls().iter().any(|c| c == "updates.getChannelDifference"),
        "fetched by the channel's own catch-up"
    );
    assert_eq!(r.messages().await.len(), 2, "each once");
}
