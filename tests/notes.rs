//! Private notes (issue 15, points 4 and 12): written in a conversation, never sent to
//! Telegram, sealed at rest, found by the team's note search, `@name` mentions resolved to
//! teammates who can see the conversation, `note.*` events live, deleting your own, and grants
//! throughout. Real server on 127.0.0.1:0, real TLS.

mod support;

use serde_json::{Value, json};
use support::server::*;

async fn note(s: &TestServer, token: &str, chat: &str, text: &str) -> (u16, Value) {
    post(
        s,
        token,
        &format!("/api/v1/chats/{chat}/notes"),
        json!({"text": text}),
    )
    .await
}

#[tokio::test]
async fn notes_are_written_listed_announced_and_deleted() {
    let (s, a, _b) = workspace().await;
    s.user("bob", lanbox::auth::Role::Agent, &[a]).await;
    let alice = s.token("alice").await;
    let bob = s.token("bob").await;
    let root = s.token("root").await;
    let anna = format!("{a}:1001");
    let mut bob_ws = ws_token(&s, &bob).await;
    call(&mut bob_ws, json!({"type": "subscribe"})).await;

    // Mentions name teammates who can see the chat; `nobody` (no grant) and unknown names
    // stay plain text.
    let (st, n) = note(
        &s,
        &alice,
        &anna,
        "@bob she asked for a refund, @nobody @ghost see the Café order",
    )
    .await;
    assert_eq!(st, 201, "{n}");
    let mentions: Vec<&str> = n["mentions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(mentions, vec!["bob"]);
    assert_eq!(n["by"]["name"], "alice");
    let id = n["id"].as_u64().unwrap();

    let ev = next_of(&mut bob_ws, "note.created").await;
    assert_eq!(
        (ev["chat"].as_str(), ev["note_id"].as_u64()),
        (Some(anna.as_str()), Some(id)),
        "{ev}"
    );
    assert_eq!(ev["note"]["text"], n["text"]);
    assert_eq!(ev["note"]["mentions"][0]["name"], "bob");

    let (st, page) = get(&s, &bob, &format!("/api/v1/chats/{anna}/notes")).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["notes"][0]["id"].as_u64(), Some(id));

    // The team finds it by its words, accents and case aside.
    let (st, hits) = get(&s, &bob, "/api/v1/notes?q=cafe%20REFUND").await;
    assert_eq!(st, 200, "{hits}");
    assert_eq!(hits["notes"].as_array().unwrap().len(), 1, "{hits}");
    assert_eq!(
        get(&s, &bob, "/api/v1/notes?q=cafe%20nothing").await.1["notes"],
        json!([])
    );

    // Only its author (or an admin) deletes it.
    let url = format!("/api/v1/chats/{anna}/notes/{id}");
    assert_eq!(request(&s, "DELETE", &bob, &url, None).await.0, 403);
    assert_eq!(request(&s, "DELETE", &alice, &url, None).await.0, 204);
    assert_eq!(request(&s, "DELETE", &alice, &url, None).await.0, 404);
    let ev = next_of(&mut bob_ws, "note.deleted").await;
    assert_eq!(ev["note_id"].as_u64(), Some(id));
    let (_, n2) = note(&s, &alice, &anna, "second thoughts").await;
    let url2 = format!("/api/v1/chats/{anna}/notes/{}", n2["id"]);
    assert_eq!(request(&s, "DELETE", &root, &url2, None).await.0, 204);

    // Bad notes are refused with a clear error.
    let (st, e) = note(&s, &alice, &anna, "   ").await;
    assert_eq!((st, e["error"]["code"].as_str()), (400, Some("bad_note")), "{e}");
    assert_eq!(note(&s, &alice, &anna, &"x".repeat(4097)).await.0, 400);
}

#[tokio::test]
async fn grants_hold_for_notes() {
    let (s, a, b) = workspace().await;
    let alice = s.token("alice").await;
    let root = s.token("root").await;
    let boris = format!("{b}:2001");
    let anna = format!("{a}:1001");
    let mut ws = ws_token(&s, &alice).await;
    call(&mut ws, json!({"type": "subscribe"})).await;

    assert_eq!(note(&s, &alice, &boris, "not mine to write").await.0, 404);
    assert_eq!(
        get(&s, &alice, &format!("/api/v1/chats/{boris}/notes")).await.0,
        404
    );
    let (st, secret) = note(&s, &root, &boris, "bravo internal zebrafish note").await;
    assert_eq!(st, 201);
    assert_eq!(
        request(
            &s,
            "DELETE",
            &alice,
            &format!("/api/v1/chats/{boris}/notes/{}", secret["id"]),
            None
        )
        .await
        .0,
        404
    );
    // Not found by the agent's search, not announced to them.
    assert_eq!(
        get(&s, &alice, "/api/v1/notes?q=zebrafish").await.1["notes"],
        json!([])
    );
    assert_eq!(
        get(&s, &root, "/api/v1/notes?q=zebrafish").await.1["notes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    note(&s, &root, &anna, "alpha visible note").await;
    let ev = next_of(&mut ws, "note.created").await;
    assert_eq!(
        ev["chat"], anna,
        "the first note alice hears of is on her account: {ev}"
    );
}

#[tokio::test]
async fn notes_are_sealed_at_rest_and_survive_a_release_of_the_owner() {
    let (s, a, _b) = workspace().await;
    let root = s.token("root").await;
    let shared = "0:-100700";
    let canary = "canary-note-3f9a1c-quetzal";
    let (st, n) = note(&s, &root, shared, &format!("{canary} about the shared room")).await;
    assert_eq!(st, 201, "{n}");
    // Everything the box wrote (the commit is durable), read raw: the text is nowhere in the clear.
    let mut hits = Vec::new();
    let files = support::canary::scan(s.dir.path(), &[canary], &mut hits);
    assert!(files > 0);
    assert!(hits.is_empty(), "{hits:?}");

    // Releasing the account that owned the chat re-seals its notes under the other's key.
    s.state.pipeline.release_account(a).await.unwrap();
    let (st, page) = get(&s, &root, &format!("/api/v1/chats/{shared}/notes")).await;
    assert_eq!(st, 200, "{page}");
    assert!(page["notes"][0]["text"].as_str().unwrap().starts_with(canary));
}
