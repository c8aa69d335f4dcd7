//! Conversations have a status, an assignee and labels (issue 15, points 3, 6 and 12): REST
//! and WebSocket actions change them, every change is a `conversation.*` event and an entry of
//! the activity trail, an incoming message reopens a resolved or snoozed conversation, the list
//! views "Mine", "Unassigned" and "All" come with counts and filter by status and label, and
//! grants hold throughout. Real server on 127.0.0.1:0, real TLS.

mod support;

use lanbox::model::ChatKind;
use serde_json::{Value, json};
use support::messages::{chat, text_message};
use support::server::*;

async fn user_id(s: &TestServer, token: &str) -> u64 {
    get(s, token, "/api/v1/me").await.1["id"].as_u64().unwrap()
}

async fn assign(s: &TestServer, token: &str, chat: &str, to: Value) -> (u16, Value) {
    post(
        s,
        token,
        &format!("/api/v1/chats/{chat}/assign"),
        json!({"assignee": to}),
    )
    .await
}

async fn status(s: &TestServer, token: &str, chat: &str, body: Value) -> (u16, Value) {
    post(s, token, &format!("/api/v1/chats/{chat}/status"), body).await
}

async fn list(s: &TestServer, token: &str, query: &str) -> (Vec<String>, Value) {
    let (st, page) = get(s, token, &format!("/api/v1/chats?{query}")).await;
    assert_eq!(st, 200, "{page}");
    let ids = page["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    (ids, page["counts"].clone())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn assignment_status_and_labels_make_the_list_views_and_the_trail() {
    let (s, a, b) = workspace().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;
    let alice_id = user_id(&s, &alice).await;
    let root_id = user_id(&s, &root).await;
    let anna = format!("{a}:1001");
    let shared = "0:-100700".to_string();
    let boris = format!("{b}:2001");

    // Everything starts open and unassigned.
    let (ids, counts) = list(&s, &alice, "").await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(counts, json!({"mine": 0, "unassigned": 2, "all": 2}));
    let (_, c) = get(&s, &alice, &format!("/api/v1/chats/{anna}")).await;
    assert_eq!(
        c["conversation"],
        json!({"status": "open", "snoozed_until": null, "assignee": null, "labels": []})
    );

    // The agent takes Anna; the admin gives the shared room to the agent, then to themself.
    let (st, conv) = assign(&s, &alice, &anna, json!(alice_id)).await;
    assert_eq!(st, 200, "{conv}");
    assert_eq!(conv["assignee"], json!({"user": alice_id, "name": "alice"}));
    assert_eq!(assign(&s, &root, &shared, json!(alice_id)).await.0, 200);
    assert_eq!(assign(&s, &root, &shared, json!(root_id)).await.0, 200);
    let (ids, counts) = list(&s, &alice, "assignee=me").await;
    assert_eq!(ids, vec![anna.clone()]);
    assert_eq!(counts, json!({"mine": 1, "unassigned": 0, "all": 2}));
    let (ids, _) = list(&s, &root, "assignee=none").await;
    assert!(
        ids.contains(&boris) && !ids.contains(&anna) && !ids.contains(&shared),
        "{ids:?}"
    );
    let (ids, _) = list(&s, &root, &format!("assignee={root_id}")).await;
    assert_eq!(ids, vec![shared.clone()]);

    // Status: pending, then resolved; the status filter follows.
    let (st, conv) = status(&s, &alice, &anna, json!({"status": "pending"})).await;
    assert_eq!((st, conv["status"].as_str()), (200, Some("pending")), "{conv}");
    assert_eq!(list(&s, &alice, "status=pending").await.0, vec![anna.clone()]);
    assert_eq!(list(&s, &alice, "status=open").await.0, vec![shared.clone()]);
    assert_eq!(
        status(&s, &alice, &anna, json!({"status": "resolved"})).await.0,
        200
    );
    let (ids, counts) = list(&s, &alice, "status=resolved").await;
    assert_eq!(ids, vec![anna.clone()]);
    assert_eq!(counts, json!({"mine": 1, "unassigned": 0, "all": 1}));

    // Labels: admins create them, agents apply them, the list filters by them.
    let (st, vip) = post(
        &s,
        &root,
        "/api/v1/labels",
        json!({"name": "VIP", "color": "#AA0000"}),
    )
    .await;
    assert_eq!(st, 201, "{vip}");
    let vip = vip["id"].as_u64().unwrap();
    let (st, _) = post(&s, &alice, "/api/v1/labels", json!({"name": "mine"})).await;
    assert_eq!(st, 403, "agents do not create labels");
    assert_eq!(
        post(&s, &root, "/api/v1/labels", json!({"name": "vip"})).await.0,
        409,
        "names are unique regardless of case"
    );
    let (st, conv) = request(
        &s,
        "PUT",
        &alice,
        &format!("/api/v1/chats/{shared}/labels"),
        Some(json!({"labels": [vip]})),
    )
    .await;
    assert_eq!((st, conv["labels"].clone()), (200, json!([vip])), "{conv}");
    let (st, e) = request(
        &s,
        "PUT",
        &alice,
        &format!("/api/v1/chats/{anna}/labels"),
        Some(json!({"labels": [vip + 50]})),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("unknown_label")),
        "{e}"
    );
    assert_eq!(
        list(&s, &alice, &format!("label={vip}")).await.0,
        vec![shared.clone()]
    );
    let (_, labels) = get(&s, &alice, "/api/v1/labels").await;
    assert_eq!(labels, json!([{"id": vip, "name": "VIP", "color": "#aa0000"}]));

    // The trail of Anna's chat, newest first, with who did it.
    let (st, trail) = get(&s, &alice, &format!("/api/v1/chats/{anna}/activity")).await;
    assert_eq!(st, 200, "{trail}");
    let kinds: Vec<(&str, Option<&str>, Option<&str>)> = trail["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["status"].as_str(),
                e["by"]["name"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("status", Some("resolved"), Some("alice")),
            ("status", Some("pending"), Some("alice")),
            ("assigned", None, Some("alice")),
        ]
    );
    // Paging goes back through it.
    let (_, page) = get(&s, &alice, &format!("/api/v1/chats/{anna}/activity?limit=2")).await;
    let older = page["older"].as_u64().unwrap();
    let (_, rest) = get(
        &s,
        &alice,
        &format!("/api/v1/chats/{anna}/activity?before={older}"),
    )
    .await;
    assert_eq!(rest["activity"].as_array().unwrap().len(), 1);
    assert_eq!(rest["older"], Value::Null);

    // Deleting a label takes it off the conversations.
    assert_eq!(
        request(&s, "DELETE", &root, &format!("/api/v1/labels/{vip}"), None)
            .await
            .0,
        204
    );
    let (_, c) = get(&s, &alice, &format!("/api/v1/chats/{shared}")).await;
    assert_eq!(c["conversation"]["labels"], json!([]));

    // Changing nothing writes nothing.
    let before = get(&s, &root, &format!("/api/v1/chats/{shared}/activity"))
        .await
        .1;
    assert_eq!(assign(&s, &root, &shared, json!(root_id)).await.0, 200);
    assert_eq!(
        get(&s, &root, &format!("/api/v1/chats/{shared}/activity"))
            .await
            .1,
        before
    );
}

#[tokio::test]
async fn an_incoming_message_reopens_and_snoozes_end() {
    let (s, a, _b) = workspace().await;
    let alice = s.token("alice").await;
    let anna = format!("{a}:1001");
    let mut ws = ws_token(&s, &alice).await;
    call(&mut ws, json!({"type": "subscribe"})).await;

    assert_eq!(
        status(&s, &alice, &anna, json!({"status": "resolved"})).await.0,
        200
    );
    let ev = next_of(&mut ws, "conversation.status").await;
    assert_eq!(
        (ev["status"].as_str(), ev["reopened"].as_bool()),
        (Some("resolved"), Some(false)),
        "{ev}"
    );
    assert_eq!(ev["by"]["name"], "alice");

    // The customer writes again: open, by lanbox itself.
    let dm = chat(1001, ChatKind::Private, "Anna");
    s.ingest(a, vec![text_message(a, &dm, 4, "alpha hello again")])
        .await;
    let ev = next_of(&mut ws, "conversation.status").await;
    assert_eq!(
        (ev["status"].as_str(), ev["reopened"].as_bool(), ev["by"].clone()),
        (Some("open"), Some(true), Value::Null),
        "{ev}"
    );
    let (_, c) = get(&s, &alice, &format!("/api/v1/chats/{anna}")).await;
    assert_eq!(c["conversation"]["status"], "open");

    // A snooze needs a time in the future; a message ends it too.
    let (st, e) = status(&s, &alice, &anna, json!({"status": "snoozed"})).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("bad_snooze")),
        "{e}"
    );
    let (st, _) = status(
        &s,
        &alice,
        &anna,
        json!({"status": "snoozed", "snoozed_until": now() - 5}),
    )
    .await;
    assert_eq!(st, 400);
    let until = now() + 3600;
    let (st, conv) = status(
        &s,
        &alice,
        &anna,
        json!({"status": "snoozed", "snoozed_until": until}),
    )
    .await;
    assert_eq!((st, conv["snoozed_until"].as_i64()), (200, Some(until)), "{conv}");
    assert_eq!(list(&s, &alice, "status=snoozed").await.0, vec![anna.clone()]);
    // An outgoing message does not reopen it.
    let mut out = text_message(a, &dm, 5, "alpha reply");
    out.direction = lanbox::model::Direction::Outgoing;
    s.ingest(a, vec![out]).await;
    assert_eq!(list(&s, &alice, "status=snoozed").await.0, vec![anna.clone()]);
    s.ingest(a, vec![text_message(a, &dm, 6, "alpha are you there")])
        .await;
    assert!(list(&s, &alice, "status=open").await.0.contains(&anna));
    assert!(list(&s, &alice, "status=snoozed").await.0.is_empty());

    // A resume replays the changes with who made them.
    let mut again = ws_token(&s, &alice).await;
    // (The replayed events come before the `ack`.)
    send(&mut again, json!({"type": "resume", "from_seq": 0, "id": "r"})).await;
    let mut seen = Vec::new();
    loop {
        let m = recv(&mut again).await;
        if m["type"] == "conversation.status" {
            seen.push((
                m["status"].as_str().unwrap().to_string(),
                m["reopened"].as_bool().unwrap(),
            ));
        }
        if m["id"] == "r" {
            assert_eq!(m["type"], "ack", "{m}");
            break;
        }
    }
    assert_eq!(
        seen,
        vec![
            ("resolved".to_string(), false),
            ("open".to_string(), true),
            ("snoozed".to_string(), false),
            ("open".to_string(), true),
        ]
    );
}

#[tokio::test]
async fn websocket_actions_reach_the_other_agent_live() {
    let (s, a, _b) = workspace().await;
    s.user("bob", lanbox::auth::Role::Agent, &[a]).await;
    let alice = s.token("alice").await;
    let bob = s.token("bob").await;
    let bob_id = user_id(&s, &bob).await;
    let anna = format!("{a}:1001");
    let mut alice_ws = ws_token(&s, &alice).await;
    let mut bob_ws = ws_token(&s, &bob).await;
    call(&mut bob_ws, json!({"type": "subscribe"})).await;

    let ack = call(
        &mut alice_ws,
        json!({"type": "assign", "chat": anna, "assignee": bob_id}),
    )
    .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(ack["conversation"]["assignee"]["name"], "bob");
    let ev = next_of(&mut bob_ws, "conversation.assigned").await;
    assert_eq!(
        (
            ev["chat"].as_str(),
            ev["assignee"]["user"].as_u64(),
            ev["by"]["name"].as_str()
        ),
        (Some(anna.as_str()), Some(bob_id), Some("alice")),
        "{ev}"
    );
    let ack = call(
        &mut alice_ws,
        json!({"type": "set_status", "chat": anna, "status": "pending"}),
    )
    .await;
    assert_eq!(ack["conversation"]["status"], "pending", "{ack}");
    let ev = next_of(&mut bob_ws, "conversation.status").await;
    assert_eq!(ev["status"], "pending");
    let err = call(
        &mut alice_ws,
        json!({"type": "set_status", "chat": anna, "status": "later"}),
    )
    .await;
    assert_eq!(err["type"], "error", "{err}");
}

#[tokio::test]
async fn grants_hold_for_every_conversation_route() {
    let (s, a, b) = workspace().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;
    let nobody = s.token("nobody").await;
    let nobody_id = user_id(&s, &nobody).await;
    let alice_id = user_id(&s, &alice).await;
    let anna = format!("{a}:1001");
    let boris = format!("{b}:2001");
    let bravo_sg = "0:-100500";

    // Another account's conversations do not exist for the agent.
    assert_eq!(assign(&s, &alice, &boris, json!(alice_id)).await.0, 404);
    assert_eq!(
        status(&s, &alice, bravo_sg, json!({"status": "resolved"}))
            .await
            .0,
        404
    );
    assert_eq!(
        request(
            &s,
            "PUT",
            &alice,
            &format!("/api/v1/chats/{boris}/labels"),
            Some(json!({"labels": []}))
        )
        .await
        .0,
        404
    );
    assert_eq!(
        get(&s, &alice, &format!("/api/v1/chats/{boris}/activity"))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&s, &alice, &format!("/api/v1/chats/{boris}/assignees"))
            .await
            .0,
        404
    );

    // Bodies that say too little are refused, not guessed at.
    let (st, e) = post(&s, &alice, &format!("/api/v1/chats/{anna}/assign"), json!({})).await;
    assert_eq!(st, 400, "a missing assignee is not an unassign: {e}");
    assert_eq!(
        post(&s, &root, "/api/v1/labels", json!({"name": "x", "color": null}))
            .await
            .0,
        400
    );

    // Nobody can be given a conversation they may not see.
    let (st, e) = assign(&s, &root, &anna, json!(nobody_id)).await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (400, Some("assignee_not_granted")),
        "{e}"
    );
    assert_eq!(assign(&s, &root, &boris, json!(alice_id)).await.0, 400);
    let (_, people) = get(&s, &root, &format!("/api/v1/chats/{anna}/assignees")).await;
    let names: Vec<&str> = people
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["root", "alice"]);

    // The admin's work on bravo's chats is not counted, listed or announced to the agent.
    let mut ws = ws_token(&s, &alice).await;
    call(&mut ws, json!({"type": "subscribe"})).await;
    assert_eq!(assign(&s, &root, &boris, json!(null)).await.0, 200);
    assert_eq!(
        status(&s, &root, &boris, json!({"status": "pending"})).await.0,
        200
    );
    assert_eq!(
        status(&s, &root, &anna, json!({"status": "pending"})).await.0,
        200
    );
    let ev = next_of(&mut ws, "conversation.status").await;
    assert_eq!(
        ev["chat"], anna,
        "the first change alice hears of is on her account: {ev}"
    );
    let (ids, counts) = list(&s, &alice, "status=pending").await;
    assert_eq!(ids, vec![anna.clone()]);
    assert_eq!(counts["all"], 1);
    let (ids, counts) = list(&s, &nobody, "").await;
    assert!(ids.is_empty());
    assert_eq!(counts, json!({"mine": 0, "unassigned": 0, "all": 0}));
}
