//! The inbox routes over real TLS sockets: chats with last message and unread counts and their
//! filters, messages in pages both ways, one message, mark read, search, stats, and send (not
//! implemented yet, and saying so).

mod support;

use lanbox::auth::Role;
use lanbox::ingest::Change;
use lanbox::model::ChatKind;
use serde_json::{Value, json};
use support::messages::{chat, text_message};
use support::server::*;

#[tokio::test]
async fn chats_come_with_last_message_unread_and_filters() {
    let (s, a, b) = workspace().await;
    let root = s.token("root").await;
    let (_, page) = get(&s, &root, "/api/v1/chats").await;
    let chats = page["chats"].as_array().unwrap();
    assert_eq!(chats.len(), 4);
    let dates: Vec<i64> = chats.iter().map(|c| c["last_date"].as_i64().unwrap()).collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "newest first: {dates:?}");
    let anna = chats.iter().find(|c| c["id"] == format!("{a}:1001")).unwrap();
    assert_eq!(anna["unread"], 3);
    assert_eq!(anna["title"], "Anna");
    assert_eq!(anna["kind"], "private");
    assert_eq!(anna["last_message"]["text"], "alpha hello 3");
    let (_, shared) = get(&s, &root, "/api/v1/chats/0:-100700").await;
    assert_eq!(shared["accounts"], json!([a, b]));

    let (_, by_account) = get(&s, &root, &format!("/api/v1/chats?account={a}")).await;
    assert_eq!(by_account["chats"].as_array().unwrap().len(), 2);
    let (_, groups) = get(&s, &root, "/api/v1/chats?kind=supergroup").await;
    assert_eq!(groups["chats"].as_array().unwrap().len(), 2);
    let (st, bad) = get(&s, &root, "/api/v1/chats?kind=forum").await;
    assert_eq!((st, bad["error"]["code"].as_str()), (400, Some("bad_request")));

    // Pages of one chat at a time cover the list exactly once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/chats?limit=1".to_string();
    loop {
        let (_, p) = get(&s, &root, &path).await;
        seen.extend(p["chats"].as_array().unwrap().iter().map(|c| c["id"].clone()));
        match p["next"].as_str() {
            Some(n) => path = format!("/api/v1/chats?limit=1&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(seen, chats.iter().map(|c| c["id"].clone()).collect::<Vec<_>>());

    // Reading clears the unread count, here and in the filters.
    let (st, read) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{a}:1001/read"),
        json!({"up_to": 2}),
    )
    .await;
    assert_eq!((st, read["unread"].as_u64()), (200, Some(1)));
    let (_, read) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{a}:1001/read"),
        json!({"up_to": 3}),
    )
    .await;
    assert_eq!(read["unread"], 0);
    let (_, unread) = get(&s, &root, "/api/v1/chats?unread=true").await;
    assert!(
        unread["chats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["id"] != format!("{a}:1001"))
    );
    let (st, e) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{a}:1001/read"),
        json!({"up_to": "x"}),
    )
    .await;
    assert_eq!((st, e["error"]["code"].as_str()), (400, Some("bad_request")));
}

#[tokio::test]
async fn messages_page_both_ways_and_one_message_reads_whole() {
    let s = TestServer::start().await;
    let a = s.account("alpha").await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let dm = chat(1001, ChatKind::Private, "Anna");
    s.ingest(
        a,
        (1..=25)
            .map(|i| text_message(a, &dm, i, &format!("m{i}")))
            .collect(),
    )
    .await;
    let base = format!("/api/v1/chats/{a}:1001/messages");
    let ids = |v: &Value| -> Vec<i64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_i64().unwrap())
            .collect()
    };

    let (_, newest) = get(&s, &root, &format!("{base}?limit=10")).await;
    assert_eq!(ids(&newest), (16..=25).collect::<Vec<_>>());
    assert_eq!(
        (newest["older"].as_i64(), newest["newer"].as_i64()),
        (Some(16), None)
    );
    let (_, older) = get(&s, &root, &format!("{base}?limit=10&before=16")).await;
    assert_eq!(ids(&older), (6..=15).collect::<Vec<_>>());
    assert_eq!(
        (older["older"].as_i64(), older["newer"].as_i64()),
        (Some(6), Some(15))
    );
    let (_, oldest) = get(&s, &root, &format!("{base}?limit=10&before=6")).await;
    assert_eq!(ids(&oldest), (1..=5).collect::<Vec<_>>());
    assert_eq!(oldest["older"], Value::Null);
    let (_, forward) = get(&s, &root, &format!("{base}?limit=10&after=5")).await;
    assert_eq!(ids(&forward), (6..=15).collect::<Vec<_>>());
    assert_eq!(
        (forward["older"].as_i64(), forward["newer"].as_i64()),
        (Some(6), Some(15))
    );
    let (_, end) = get(&s, &root, &format!("{base}?after=25")).await;
    assert_eq!((ids(&end).len(), &end["newer"]), (0, &Value::Null));
    let (st, _) = get(&s, &root, &format!("{base}?after=1&before=9")).await;
    assert_eq!(st, 400);

    let (st, m) = get(&s, &root, &format!("{base}/7")).await;
    assert_eq!(st, 200);
    assert_eq!(m["text"], "m7");
    assert_eq!(m["chat"], format!("{a}:1001"));
    assert_eq!(m["direction"], "incoming");
    assert_eq!(m["status"], "delivered");
    assert_eq!(m["kind"], "text");
    assert_eq!(m["sender"]["type"], "user");
    assert_eq!(m["sender"]["name"], "Alice");
    assert_eq!(m["accounts"], json!([a]));
    let (st, _) = get(&s, &root, &format!("{base}/99")).await;
    assert_eq!(st, 404);
    let (st, _) = get(&s, &root, "/api/v1/chats/nonsense/messages/1").await;
    assert_eq!(st, 404);
    let (st, _) = get(&s, &root, &format!("{base}/x")).await;
    assert_eq!(st, 404);

    // Deleted messages leave the pages.
    s.submit(
        a,
        vec![Change::Delete {
            account: a,
            chat: dm.clone(),
            message_ids: vec![25],
        }],
    )
    .await;
    let (_, after_delete) = get(&s, &root, &format!("{base}?limit=1")).await;
    assert_eq!(ids(&after_delete), vec![24]);
}

#[tokio::test]
async fn search_stats_and_send() {
    let (s, a, b) = workspace().await;
    let root = s.token("root").await;
    let (st, r) = get(&s, &root, "/api/v1/search?q=secret&limit=2").await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["prefix"], true, "the last word was also taken as a prefix");
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits[0]["message"]["date"].as_i64() >= hits[1]["message"]["date"].as_i64());
    let mark = &hits[0]["snippet"]["marks"][0];
    let text = hits[0]["snippet"]["text"].as_str().unwrap();
    let (o, l) = (
        mark["offset"].as_u64().unwrap() as usize,
        mark["length"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[o..o + l], "secret");
    let next = r["next"].as_str().unwrap();
    let (_, more) = get(
        &s,
        &root,
        &format!("/api/v1/search?q=secret&limit=10&cursor={next}"),
    )
    .await;
    assert_eq!(more["hits"].as_array().unwrap().len(), 3);
    let (_, in_chat) = get(&s, &root, "/api/v1/search?q=secret&chat=0:-100700").await;
    assert_eq!(in_chat["hits"].as_array().unwrap().len(), 1);
    let (st, e) = get(&s, &root, "/api/v1/search?q=").await;
    assert_eq!((st, e["error"]["code"].as_str()), (400, Some("bad_query")));
    let (st, e) = get(&s, &root, "/api/v1/search?q=x&cursor=zz").await;
    assert_eq!((st, e["error"]["code"].as_str()), (400, Some("bad_cursor")));

    let (_, stats) = get(&s, &root, "/api/v1/stats").await;
    assert_eq!(stats["totals"]["chats"], 4);
    assert_eq!(stats["totals"]["messages"], 9);
    assert_eq!(stats["totals"]["unread"], 9);
    let kinds = stats["by_kind"].as_array().unwrap();
    let private = kinds.iter().find(|k| k["kind"] == "private").unwrap();
    assert_eq!(
        (private["chats"].as_u64(), private["messages"].as_u64()),
        (Some(2), Some(6))
    );
    let acct = |id: u64| {
        stats["by_account"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["account"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(acct(a)["chats"], 2);
    assert_eq!(acct(b)["chats"], 3);
    assert_eq!(
        stats["outbox"],
        json!({"available": true, "backlog": 0, "failed": 0})
    );

    let (st, e) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{a}:1001/messages"),
        json!({"text": "hello"}),
    )
    .await;
    assert_eq!(
        (st, e["error"]["code"].as_str()),
        (409, Some("account_not_connected")),
        "{e}"
    );
    let (st, _) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{a}:1001/messages"),
        json!({"text": ""}),
    )
    .await;
    assert_eq!(st, 400);
}
