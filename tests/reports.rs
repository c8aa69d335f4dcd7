//! Team reports in `GET /api/v1/stats` (issue 15, points 10 and 12): conversations by status,
//! account and channel, the assignees' workload, and over a period the first response and
//! resolution times and messages per day, each over what the caller may see.

mod support;

use lanbox::model::{ChatKind, Direction};
use serde_json::{Value, json};
use support::messages::{chat, text_message};
use support::server::*;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn at(mut m: lanbox::model::Message, date: i64, dir: Direction) -> lanbox::model::Message {
    m.date = date;
    m.direction = dir;
    m
}

#[tokio::test]
async fn reports_count_conversations_workload_and_times_over_visible_chats() {
    let (s, a, _b) = workspace().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;
    let alice_id = get(&s, &alice, "/api/v1/me").await.1["id"].clone();
    let t = now();
    let anna = chat(1001, ChatKind::Private, "Anna");
    let shared = chat(-100700, ChatKind::Supergroup, "Shared room");
    // Anna is answered after 10 minutes, the shared room after 30.
    s.ingest(
        a,
        vec![
            at(
                text_message(a, &anna, 10, "alpha question"),
                t - 3600,
                Direction::Incoming,
            ),
            at(
                text_message(a, &anna, 11, "alpha answer"),
                t - 3000,
                Direction::Outgoing,
            ),
            at(
                text_message(a, &shared, 30, "alpha room question"),
                t - 7200,
                Direction::Incoming,
            ),
            at(
                text_message(a, &shared, 31, "alpha room answer"),
                t - 5400,
                Direction::Outgoing,
            ),
        ],
    )
    .await;
    let anna_id = format!("{a}:1001");
    // Resolved, reopened by a message, resolved again at once.
    let status = |chat: String, st: &'static str| {
        let (s, tok) = (&s, alice.clone());
        async move {
            let (code, v) = post(
                s,
                &tok,
                &format!("/api/v1/chats/{chat}/status"),
                json!({"status": st}),
            )
            .await;
            assert_eq!(code, 200, "{v}");
        }
    };
    status(anna_id.clone(), "resolved").await;
    s.ingest(
        a,
        vec![at(
            text_message(a, &anna, 12, "alpha one more"),
            t,
            Direction::Incoming,
        )],
    )
    .await;
    status(anna_id.clone(), "resolved").await;
    let (code, _) = post(
        &s,
        &alice,
        "/api/v1/chats/0:-100700/assign",
        json!({"assignee": alice_id}),
    )
    .await;
    assert_eq!(code, 200);

    let q = format!("/api/v1/stats?from={}&to={}", t - 86_400, t + 60);
    let (code, st) = get(&s, &alice, &q).await;
    assert_eq!(code, 200, "{st}");
    let c = &st["conversations"];
    assert_eq!(
        c["by_status"],
        json!({"open": 1, "pending": 0, "snoozed": 0, "resolved": 1})
    );
    assert_eq!(
        c["by_account"].as_array().unwrap().len(),
        1,
        "only the agent's account: {c}"
    );
    assert_eq!(
        c["by_channel"],
        json!([{"channel": "telegram", "open": 1, "pending": 0, "snoozed": 0, "resolved": 1}])
    );
    assert_eq!(
        c["workload"],
        json!([{"assignee": {"user": alice_id, "name": "alice"}, "open": 1, "pending": 0}])
    );
    let p = &st["period"];
    assert_eq!(
        p["first_response"],
        json!({"count": 2, "median_s": 600, "p90_s": 1800})
    );
    assert_eq!(p["resolution"]["count"], 2, "{p}");
    assert!(
        p["resolution"]["median_s"].as_i64().unwrap() < 120,
        "the reopened one took seconds: {p}"
    );
    let days = p["messages_per_day"].as_array().unwrap();
    let sum = |k: &str| days.iter().map(|d| d[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("incoming"), sum("outgoing")), (3, 2));
    assert!(days.len() == 2 || days.len() == 3, "{days:?}");
    assert!(days.iter().all(|d| d["day"].as_str().unwrap().len() == 10));

    // The admin sees bravo's conversations too; the agent never did.
    let (_, all) = get(&s, &root, "/api/v1/stats").await;
    assert_eq!(
        all["conversations"]["by_status"]["open"], 3,
        "{}",
        all["conversations"]
    );
    assert_eq!(all["conversations"]["by_account"].as_array().unwrap().len(), 2);
    assert_eq!(all["period"], Value::Null, "no period asked for");

    // A bad period is refused.
    let (code, e) = get(&s, &alice, &format!("/api/v1/stats?from={}&to={}", t, t - 1)).await;
    assert_eq!(
        (code, e["error"]["code"].as_str()),
        (400, Some("bad_period")),
        "{e}"
    );
    assert_eq!(get(&s, &alice, "/api/v1/stats?to=5").await.0, 400);
}
