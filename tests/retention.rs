//! Trimming the event log: by count and by age, in batches through the store writer, and a
//! client resuming from before the oldest kept event is told to resync (WebSocket and REST),
//! while one resuming from inside the kept range gets every event after it.

mod support;

use std::time::Duration;

use lanbox::live::retention::{self, Retention};
use lanbox::model::ChatKind;
use serde_json::json;
use support::messages::{chat, text_message};
use support::server::*;

async fn seqs(s: &TestServer) -> (Option<u64>, u64) {
    s.store
        .read(|r| Ok((r.first_seq()?, r.last_seq()?)))
        .await
        .unwrap()
}

#[tokio::test]
async fn the_log_is_trimmed_by_count_and_resume_from_before_it_asks_for_a_resync() {
    let s = TestServer::start().await;
    let a = s.account("alpha").await;
    s.user("root", lanbox::auth::Role::Admin, &[]).await;
    let token = s.token("root").await;
    let anna = chat(1001, ChatKind::Private, "Anna");
    for i in 0..5 {
        s.ingest(
            a,
            (1..=10)
                .map(|j| text_message(a, &anna, i * 10 + j, "hello"))
                .collect(),
        )
        .await;
    }
    let (first, last) = seqs(&s).await;
    assert_eq!(first, Some(1));
    assert!(last >= 50, "{last}");

    // Keep 20, removed 7 at a time: several batches, and exactly the oldest go.
    let keep = Retention {
        max_events: Some(20),
        max_age: None,
        batch: 7,
        ..Default::default()
    };
    let removed = retention::trim(&s.store, &keep).await.unwrap();
    assert_eq!(removed, last - 20);
    assert_eq!(seqs(&s).await, (Some(last - 19), last));
    assert_eq!(retention::trim(&s.store, &keep).await.unwrap(), 0, "idempotent");

    // REST: from inside the kept range, every later event; from before it, 410.
    let (st, page) = get(&s, &token, &format!("/api/v1/events?after={}", last - 20)).await;
    assert_eq!(st, 200, "{page}");
    let got: Vec<u64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(got, ((last - 19)..=last).collect::<Vec<_>>());
    let (st, v) = get(&s, &token, &format!("/api/v1/events?after={}", last - 21)).await;
    assert_eq!((st, &v["error"]["code"]), (410, &json!("resync_required")));

    // WebSocket resume, both ways.
    let mut ws = ws_token(&s, &token).await;
    let old = call(&mut ws, json!({"type": "resume", "from_seq": 1})).await;
    assert_eq!(old["type"], "resync_required", "{old}");
    assert_eq!(old["first_seq"], json!(last - 19));
    let ok = call(&mut ws, json!({"type": "resume", "from_seq": last - 2})).await;
    assert_eq!(ok["type"], "ack", "{ok}");
    assert_eq!(ok["replayed"], json!(2));

    // New events keep their numbers after a trim.
    s.ingest(a, vec![text_message(a, &anna, 100, "later")]).await;
    assert_eq!(seqs(&s).await.1, last + 1);
}

#[tokio::test]
async fn the_log_is_trimmed_by_age_and_an_empty_log_still_resumes_at_its_end() {
    let s = TestServer::start().await;
    let a = s.account("alpha").await;
    s.user("root", lanbox::auth::Role::Admin, &[]).await;
    let token = s.token("root").await;
    let anna = chat(1001, ChatKind::Private, "Anna");
    s.ingest(a, (1..=30).map(|j| text_message(a, &anna, j, "hi")).collect())
        .await;
    let (_, last) = seqs(&s).await;
    let by_age = Retention {
        max_events: None,
        max_age: Some(Duration::from_secs(3600)),
        batch: 8,
        ..Default::default()
    };
    let now = lanbox::store::ctx::unix_now();
    // Nothing is an hour old yet.
    assert_eq!(retention::trim_at(&s.store, &by_age, now).await.unwrap(), 0);
    // Two hours later, everything is.
    let removed = retention::trim_at(&s.store, &by_age, now + 7200).await.unwrap();
    assert_eq!(removed, last);
    assert_eq!(seqs(&s).await, (None, last));

    let (st, page) = get(&s, &token, &format!("/api/v1/events?after={last}")).await;
    assert_eq!(st, 200, "{page}");
    assert_eq!(page["events"], json!([]));
    let (st, _) = get(&s, &token, &format!("/api/v1/events?after={}", last - 1)).await;
    assert_eq!(st, 410);
    let mut ws = ws_token(&s, &token).await;
    let ok = call(&mut ws, json!({"type": "resume", "from_seq": last})).await;
    assert_eq!(ok["type"], "ack", "{ok}");
    let old = call(&mut ws, json!({"type": "resume", "from_seq": 0})).await;
    assert_eq!(old["type"], "resync_required", "{old}");
}

/// The configuration's `[events]` section becomes the retention the server runs with.
#[test]
fn the_events_section_configures_retention() {
    let d = lanbox::config::Config::default().events.retention();
    assert_eq!(d.max_events, Some(200_000));
    assert_eq!(d.max_age, Some(Duration::from_secs(90 * 86_400)));
    let loaded = lanbox::config::Config::from_parts(
        "[events]\nkeep_max = 0\nkeep_days = 7\n",
        "t",
        vec![("LANBOX_EVENTS_KEEP_MAX".into(), "500".into())],
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let r = loaded.config.events.retention();
    assert_eq!(r.max_events, Some(500));
    assert_eq!(r.max_age, Some(Duration::from_secs(7 * 86_400)));
    let off = lanbox::config::Config::from_parts("[events]\nkeep_max = 0\nkeep_days = 0\n", "t", Vec::new())
        .unwrap()
        .config
        .events
        .retention();
    assert_eq!((off.max_events, off.max_age), (None, None));
}
