//! The contact panel (issue 15, point 8): who a conversation is with (name, username, Telegram
//! ID, language), the caller's accounts they wrote to, and their other conversations, all cut
//! to the caller's grants (point 12: an agent never learns of another account's chats through
//! it). Real server on 127.0.0.1:0, real TLS.

mod support;

use lanbox::model::{ChatKind, Message, Sender, UserRef};
use serde_json::Value;
use support::messages::{chat, text_message};
use support::server::*;

const VERA: i64 = 5005;
const BORIS: i64 = 6006;

fn from(mut m: Message, id: i64, first: &str, last: Option<&str>, lang: Option<&str>) -> Message {
    m.content.sender = Sender::User(UserRef {
        id,
        is_bot: false,
        first_name: first.into(),
        last_name: last.map(Into::into),
        username: Some(format!("{}_tg", first.to_lowercase())),
        language_code: lang.map(Into::into),
    });
    m
}

fn vera(m: Message) -> Message {
    from(m, VERA, "Vera", Some("Petrova"), Some("de"))
}

/// The workspace plus Vera, who wrote to alpha privately, in an alpha basic group and in the
/// shared room, and to bravo privately and in bravo's own supergroup; and Boris, whose message
/// in the shared room only bravo received.
async fn with_vera() -> (TestServer, u64, u64) {
    let (s, a, b) = workspace().await;
    let dm = chat(VERA, ChatKind::Private, "Vera Petrova");
    s.ingest(
        a,
        vec![
            vera(text_message(a, &dm, 1, "alpha hello")),
            vera(text_message(a, &dm, 2, "alpha again")),
        ],
    )
    .await;
    s.ingest(b, vec![vera(text_message(b, &dm, 1, "bravo secret dm"))])
        .await;
    let group = chat(-4001, ChatKind::Group, "Alpha group");
    s.ingest(a, vec![vera(text_message(a, &group, 1, "alpha group hello"))])
        .await;
    let shared = chat(-100700, ChatKind::Supergroup, "Shared room");
    let in_shared = vera(text_message(a, &shared, 30, "alpha shared vera"));
    s.ingest(a, vec![in_shared.clone()]).await;
    s.ingest(b, vec![in_shared]).await;
    s.ingest(
        b,
        vec![from(
            text_message(b, &shared, 31, "bravo secret boris"),
            BORIS,
            "Boris",
            None,
            None,
        )],
    )
    .await;
    let bravo_sg = chat(-100500, ChatKind::Supergroup, "Bravo team");
    s.ingest(
        b,
        vec![vera(text_message(b, &bravo_sg, 11, "bravo secret group vera"))],
    )
    .await;
    (s, a, b)
}

async fn panel(s: &TestServer, token: &str, chat: &str) -> Value {
    let (st, v) = get(s, token, &format!("/api/v1/chats/{chat}/contact")).await;
    assert_eq!(st, 200, "{v}");
    v
}

fn ids(v: &Value, field: &str, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[key].to_string().trim_matches('"').to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn the_panel_shows_the_person_and_what_they_share_with_the_team() {
    let (s, a, b) = with_vera().await;
    let root = s.token("root").await;
    let v = panel(&s, &root, &format!("{a}:{VERA}")).await;
    assert_eq!(v["role"], "peer");
    let p = &v["contact"];
    assert_eq!(p["telegram_id"], VERA);
    assert_eq!(p["first_name"], "Vera");
    assert_eq!(p["last_name"], "Petrova");
    assert_eq!(p["name"], "Vera Petrova");
    assert_eq!(p["username"], "vera_tg");
    assert_eq!(p["language"], "de");
    assert_eq!(p["is_bot"], false);
    assert_eq!(ids(&v, "accounts", "name"), ["alpha", "bravo"]);
    assert_eq!(
        ids(&v, "conversations", "id"),
        [
            "0:-100500",
            "0:-100700",
            format!("{a}:-4001").as_str(),
            format!("{b}:{VERA}").as_str()
        ]
    );
    // Newest activity first.
    let dates: Vec<i64> = v["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["last_date"].as_i64().unwrap())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
}

#[tokio::test]
async fn an_agent_sees_only_what_their_grants_allow() {
    let (s, a, b) = with_vera().await;
    let alice = s.token("alice").await;
    let nobody = s.token("nobody").await;
    let v = panel(&s, &alice, &format!("{a}:{VERA}")).await;
    assert_eq!(v["contact"]["name"], "Vera Petrova");
    assert_eq!(ids(&v, "accounts", "name"), ["alpha"]);
    assert_eq!(
        ids(&v, "conversations", "id"),
        ["0:-100700", format!("{a}:-4001").as_str()]
    );
    let text = v.to_string().to_lowercase();
    assert!(!text.contains("bravo"), "bravo leaked: {v}");
    assert!(!text.contains(&format!("\"{b}:")), "bravo's chat leaked: {v}");

    // Another account's conversation, or any without grants, does not exist for them.
    for (token, chat) in [(&alice, format!("{b}:{VERA}")), (&nobody, format!("{a}:{VERA}"))] {
        let (st, e) = get(&s, token, &format!("/api/v1/chats/{chat}/contact")).await;
        assert_eq!((st, e["error"]["code"].as_str()), (404, Some("not_found")));
    }
}

#[tokio::test]
async fn a_group_shows_its_last_writer_the_caller_may_see() {
    let (s, a, _b) = with_vera().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;
    // Boris wrote last, but only bravo received it: the admin sees him, alpha's agent Vera.
    let v = panel(&s, &root, "0:-100700").await;
    assert_eq!(
        (v["role"].as_str(), v["contact"]["name"].as_str()),
        (Some("last_writer"), Some("Boris"))
    );
    assert_eq!(v["contact"]["language"], Value::Null);
    let v = panel(&s, &alice, "0:-100700").await;
    assert_eq!(v["contact"]["name"], "Vera Petrova");
    assert_eq!(
        ids(&v, "conversations", "id"),
        [format!("{a}:-4001").as_str(), format!("{a}:{VERA}").as_str()]
    );
}

/// Releasing an account forgets where people wrote to it (the panel's index holds identifiers
/// only, but nothing of a released account stays behind).
#[tokio::test]
async fn a_released_account_leaves_nothing_in_the_index() {
    let (s, a, b) = with_vera().await;
    let rows = |account| {
        let store = s.store.clone();
        async move {
            store
                .read(move |r| r.sender_chats(account, VERA, 100))
                .await
                .unwrap()
        }
    };
    assert_eq!(rows(b).await.len(), 3);
    s.state.pipeline.release_account(b).await.unwrap();
    assert!(rows(b).await.is_empty());
    assert_eq!(rows(a).await.len(), 3);
    let root = s.token("root").await;
    let v = panel(&s, &root, &format!("{a}:{VERA}")).await;
    assert_eq!(ids(&v, "accounts", "name"), ["alpha"]);
    assert_eq!(
        ids(&v, "conversations", "id"),
        ["0:-100700", format!("{a}:-4001").as_str()]
    );
}

/// Regression guard: a box that stored messages before the `sender_chat` index existed must
/// show a contact's groups too, not only what arrives after the upgrade. Its first start
/// builds the index from the messages.
#[test]
fn a_store_from_before_the_index_gets_it_built_on_start() {
    use lanbox::ingest::{Batch, Change, NoIndex, Pipeline};
    use lanbox::store::tables::{META_SENDER_CHAT_BUILT, SENDER_CHAT};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = support::messages::open(dir.path());
    let a = support::messages::account(&store, "alpha", false);
    let p = Pipeline::new(store.clone(), Arc::new(NoIndex));
    let group = chat(-100900, ChatKind::Supergroup, "Old group");
    let dm = chat(VERA, ChatKind::Private, "Vera Petrova");
    let mut out = text_message(a, &dm, 3, "our answer");
    out.direction = lanbox::model::Direction::Outgoing;
    p.submit_blocking(Batch {
        account: a,
        changes: vec![
            Change::New(vera(text_message(a, &group, 7, "old hello"))),
            Change::New(vera(text_message(a, &group, 8, "old again"))),
            Change::New(vera(text_message(a, &dm, 2, "old private"))),
            Change::New(out),
        ],
        position: None,
    })
    .unwrap();
    let rows = |store: &lanbox::store::Store| {
        let r = store.reader().unwrap();
        r.sender_chats(a, VERA, 10).unwrap()
    };
    let before = rows(&store);
    assert_eq!(before.len(), 2);
    // Make it the store of a release without the index.
    store
        .write_blocking(1, |ctx| {
            ctx.txn().delete_table(SENDER_CHAT)?;
            ctx.set_meta_flag(META_SENDER_CHAT_BUILT, None)
        })
        .unwrap();
    assert!(store.reader().unwrap().txn().open_table(SENDER_CHAT).is_err());
    drop(p);
    drop(store);

    let store = support::messages::open(dir.path());
    assert_eq!(
        rows(&store),
        before,
        "the same chats, with the first message's date"
    );
}
