//! Read state is per user (issue 15): one agent opening a chat no longer marks it read for the
//! whole team, a lower `up_to` marks messages unread again, and the counts in chats, the
//! unread filter and accounts are the caller's own. Real server on 127.0.0.1:0, real TLS.
//!
//! Regression: opening a chat marked every message read for everybody, and `POST /read` with a
//! lower `up_to` left the unread count at 0.

mod support;

use lanbox::ingest::Change;
use lanbox::model::ChatKind;
use serde_json::{Value, json};
use support::messages::{chat, text_message};
use support::server::*;

async fn unread(s: &TestServer, token: &str, chat: &str) -> (u64, Value) {
    let (st, c) = get(s, token, &format!("/api/v1/chats/{chat}")).await;
    assert_eq!(st, 200, "{c}");
    (c["unread"].as_u64().unwrap(), c["read_up_to"].clone())
}

async fn account_unread(s: &TestServer, token: &str, account: u64) -> u64 {
    let (_, list) = get(s, token, "/api/v1/accounts").await;
    list.as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == account)
        .map(|a| a["unread"].as_u64().unwrap())
        .unwrap()
}

async fn read(s: &TestServer, token: &str, chat: &str, up_to: i64) -> u64 {
    let (st, r) = post(
        s,
        token,
        &format!("/api/v1/chats/{chat}/read"),
        json!({"up_to": up_to}),
    )
    .await;
    assert_eq!(st, 200, "{r}");
    r["unread"].as_u64().unwrap()
}

async fn unread_list(s: &TestServer, token: &str) -> Vec<String> {
    let (_, page) = get(s, token, "/api/v1/chats?unread=true").await;
    page["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn each_user_has_their_own_read_position_and_counts() {
    let (s, a, _b) = workspace().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;
    let anna = format!("{a}:1001");
    assert_eq!(unread(&s, &root, &anna).await.0, 3);
    assert_eq!(unread(&s, &alice, &anna).await.0, 3);
    // Account `a`: Anna's 3 and the shared room's 2 (a chat's counts cover every account's
    // messages in it).
    assert_eq!(account_unread(&s, &alice, a).await, 5);

    // The admin reads Anna's chat: theirs goes to 0, the agent's stays.
    assert_eq!(read(&s, &root, &anna, 3).await, 0);
    assert_eq!(unread(&s, &root, &anna).await, (0, json!(3)));
    assert_eq!(unread(&s, &alice, &anna).await.0, 3);
    assert_eq!(account_unread(&s, &root, a).await, 2);
    assert_eq!(account_unread(&s, &alice, a).await, 5);
    assert!(!unread_list(&s, &root).await.contains(&anna));
    assert!(unread_list(&s, &alice).await.contains(&anna));

    // A new message is unread for both.
    let dm = chat(1001, ChatKind::Private, "Anna");
    s.ingest(a, vec![text_message(a, &dm, 4, "alpha hello 4")]).await;
    assert_eq!(unread(&s, &root, &anna).await.0, 1);
    assert_eq!(unread(&s, &alice, &anna).await.0, 4);

    // The agent reads part of it; the admin marks two messages unread again.
    assert_eq!(read(&s, &alice, &anna, 2).await, 2);
    assert_eq!(read(&s, &root, &anna, 2).await, 2);
    assert_eq!(unread(&s, &root, &anna).await, (2, json!(2)));
    assert_eq!(account_unread(&s, &root, a).await, 4);

    // A deleted unread message leaves every count it was in.
    s.submit(
        a,
        vec![Change::Delete {
            account: a,
            chat: dm,
            message_ids: vec![4],
        }],
    )
    .await;
    assert_eq!(unread(&s, &root, &anna).await.0, 1);
    assert_eq!(unread(&s, &alice, &anna).await.0, 1);
}

#[tokio::test]
async fn a_read_reaches_only_the_readers_own_sessions() {
    let (s, a, _b) = workspace().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;
    let (_, me) = get(&s, &alice, "/api/v1/me").await;
    let anna = format!("{a}:1001");
    let mut ws = ws_token(&s, &alice).await;
    call(&mut ws, json!({"type": "subscribe"})).await;
    read(&s, &root, &anna, 3).await;
    read(&s, &alice, &anna, 1).await;
    // The first chat.read alice's session sees is her own.
    let ev = next_of(&mut ws, "chat.read").await;
    assert_eq!(
        (
            ev["user"].as_u64(),
            ev["unread"].as_u64(),
            ev["read_up_to"].as_i64()
        ),
        (me["id"].as_u64(), Some(2), Some(1)),
        "{ev}"
    );
}
