//! Errors name what is wrong, and nothing the client sent.

mod support;

use lanbox::auth::Role;
use lanbox::model::ChatKind;
use serde_json::{Value, json};
use support::messages::{chat, text_message};
use support::server::*;

/// Regression: a bad `/read` body answered "the JSON body does not have the fields and types
/// this route expects", naming no field; the fix names the field and must still never echo a
/// string from the body (which may be message text).
#[tokio::test]
async fn a_bad_body_names_the_field_and_echoes_no_value() {
    let s = TestServer::start().await;
    let a = s.account("support").await;
    s.user("ann", Role::Agent, &[a]).await;
    let token = s.token("ann").await;
    let c = chat(42, ChatKind::Private, "Bob");
    s.ingest(a, vec![text_message(a, &c, 1, "hello")]).await;
    let url = s.url(&format!("/api/v1/chats/{a}:42/read"));
    for body in [
        json!({}),
        json!({"up_to": "CANARY-7f3a up_to text"}),
        json!({"up_to": true}),
    ] {
        let res = s
            .client()
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let answer: Value = res.json().await.unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains("up_to"), "{body}: {message}");
        assert!(!message.contains("CANARY"), "{message}");
    }
    let send = s.url(&format!("/api/v1/chats/{a}:42/messages"));
    let res = s
        .client()
        .post(&send)
        .bearer_auth(&token)
        .json(&json!({"text": 12, "reply_to": "CANARY-in-reply"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let answer: Value = res.json().await.unwrap();
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(!message.contains("CANARY"), "{message}");
}

/// Regression (found by Schemathesis): `GET /events` with a `limit` above its documented
/// maximum and an `after` beyond the log answered `410 resync_required`: the limit was clamped
/// instead of refused, so a request that violates the schema was accepted.
#[tokio::test]
async fn an_events_limit_out_of_range_is_refused_first() {
    let s = TestServer::start().await;
    s.user("root", Role::Admin, &[]).await;
    let token = s.token("root").await;
    for query in [
        "limit=321830&after=111297456251",
        "limit=0&after=0",
        "limit=1001&after=0",
    ] {
        let res = s
            .client()
            .get(s.url(&format!("/api/v1/events?{query}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{query}");
        let answer: Value = res.json().await.unwrap();
        assert!(
            answer["error"]["message"].as_str().unwrap().contains("limit"),
            "{answer}"
        );
    }
}
