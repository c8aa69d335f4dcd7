//! The WebSocket feed over real TLS sockets: the three ways to authenticate and the Origin rule,
//! events with their sequence numbers, acknowledged client messages, resume without gaps,
//! slow clients closed without slowing the others, heartbeats and shutdown.

mod support;

use std::time::Duration;

use lanbox::auth::Role;
use lanbox::ingest::Change;
use lanbox::live::{Ephemeral, LiveOptions};
use lanbox::model::{ChatKind, Message};
use lanbox::service::ServiceOptions;
use serde_json::json;
use support::messages::{chat, text_message};
use support::server::*;

async fn server(live: LiveOptions) -> (TestServer, u64, String) {
    let s = TestServer::start_with(ServiceOptions {
        live,
        ..ServiceOptions::default()
    })
    .await;
    let a = s.account("alpha").await;
    s.user("alice", Role::Agent, &[a]).await;
    let token = s.token("alice").await;
    (s, a, token)
}

fn dm() -> lanbox::model::Chat {
    chat(1001, ChatKind::Private, "Anna")
}

fn msgs(a: u64, ids: std::ops::RangeInclusive<i64>, text: &str) -> Vec<Message> {
    ids.map(|i| text_message(a, &dm(), i, &format!("{text} {i}")))
        .collect()
}

#[tokio::test]
async fn token_ticket_and_cookie_with_the_origin_rule() {
    let (s, _, token) = server(LiveOptions::default()).await;
    let proto = format!("lanbox.v1, {token}");
    assert_eq!(ws_connect(&s, "/api/v1/ws", &[]).await.err(), Some(401));
    ws_token(&s, &token).await;
    let err = ws_connect(&s, "/api/v1/ws", &[("sec-websocket-protocol", &token)])
        .await
        .err();
    assert_eq!(err, Some(400), "a token needs the lanbox.v1 subprotocol with it");
    let foreign = [
        ("sec-websocket-protocol", proto.as_str()),
        ("origin", "https://evil.example"),
    ];
    assert_eq!(
        ws_connect(&s, "/api/v1/ws", &foreign).await.err(),
        Some(403),
        "never any origin"
    );
    let wrong = format!("lanbox.v1, lbx_{}", "A".repeat(43));
    assert_eq!(
        ws_connect(&s, "/api/v1/ws", &[("sec-websocket-protocol", &wrong)])
            .await
            .err(),
        Some(401)
    );

    // The session cookie works only together with the box's own Origin.
    let cookie = s.login("alice").await;
    let origin = s.origin();
    assert_eq!(
        ws_connect(&s, "/api/v1/ws", &[("cookie", &cookie)]).await.err(),
        Some(403)
    );
    let evil = [("cookie", cookie.as_str()), ("origin", "https://evil.example")];
    assert_eq!(ws_connect(&s, "/api/v1/ws", &evil).await.err(), Some(403));
    let plain = format!("http://{HOST}:{}", s.addr.port());
    let http = [("cookie", cookie.as_str()), ("origin", plain.as_str())];
    assert_eq!(
        ws_connect(&s, "/api/v1/ws", &http).await.err(),
        Some(403),
        "plain-HTTP pages are foreign"
    );
    let (mut ws, _) = ws_connect(&s, "/api/v1/ws", &[("cookie", &cookie), ("origin", &origin)])
        .await
        .unwrap();
    assert_eq!(recv(&mut ws).await["user"]["name"], "alice");

    // A ticket works once.
    let (st, t) = post(&s, &token, "/api/v1/ws/ticket", json!({})).await;
    assert_eq!(st, 200);
    assert_eq!(t["expires_in"], 30);
    let path = format!("/api/v1/ws?ticket={}", t["ticket"].as_str().unwrap());
    let (mut ws, _) = ws_connect(&s, &path, &[]).await.unwrap();
    assert_eq!(recv(&mut ws).await["type"], "hello");
    assert_eq!(ws_connect(&s, &path, &[]).await.err(), Some(401), "used up");
    assert_eq!(
        ws_connect(&s, "/api/v1/ws?ticket=made-up", &[]).await.err(),
        Some(401)
    );
}

#[tokio::test]
async fn events_carry_sequence_numbers_and_client_messages_are_acknowledged() {
    let (s, a, token) = server(LiveOptions::default()).await;
    s.ingest(a, msgs(a, 1..=2, "before")).await;
    let mut ws = ws_token(&s, &token).await;
    let ack = call(&mut ws, json!({"type": "subscribe"})).await;
    assert_eq!(ack["type"], "ack");
    let start = ack["last_seq"].as_u64().unwrap();
    assert_eq!(start, 2);

    s.ingest(a, msgs(a, 3..=3, "hello")).await;
    let created = recv(&mut ws).await;
    assert_eq!(created["type"], "message.created", "{created}");
    assert_eq!(created["seq"], start + 1);
    assert_eq!(created["chat"], format!("{a}:1001"));
    assert_eq!(created["message"]["text"], "hello 3");
    // Read state is per user: the shared log's events carry nobody's unread count.
    assert!(created.get("unread").is_none(), "{created}");

    let mut edit = text_message(a, &dm(), 3, "hello again");
    edit.edited_at = Some(1_800_000_000);
    s.submit(a, vec![Change::Edit(edit)]).await;
    let updated = recv(&mut ws).await;
    assert_eq!(
        (updated["type"].as_str(), updated["seq"].as_u64()),
        (Some("message.updated"), Some(start + 2))
    );
    assert_eq!(updated["message"]["text"], "hello again");

    let read = call(
        &mut ws,
        json!({"type": "mark_read", "chat": format!("{a}:1001"), "up_to": 2}),
    )
    .await;
    assert_eq!(
        (read["type"].as_str(), read["unread"].as_u64()),
        (Some("ack"), Some(1)),
        "{read}"
    );
    // The caller's own sessions hear of their read (not logged: it is theirs alone).
    let ev = next_of(&mut ws, "chat.read").await;
    assert_eq!(
        (
            ev["seq"].as_u64(),
            ev["unread"].as_u64(),
            ev["read_up_to"].as_i64()
        ),
        (Some(start + 2), Some(1), Some(2))
    );

    s.submit(
        a,
        vec![Change::Delete {
            account: a,
            chat: dm(),
            message_ids: vec![3],
        }],
    )
    .await;
    let del = recv(&mut ws).await;
    assert_eq!(
        (del["type"].as_str(), del["message_id"].as_i64()),
        (Some("message.deleted"), Some(3))
    );
    assert_eq!((del["seq"].as_u64(), del.get("unread")), (Some(start + 3), None));

    // Typing reaches the other agents who see the chat; account status goes to its grantees.
    let mut other = ws_token(&s, &token).await;
    call(&mut other, json!({"type": "subscribe"})).await;
    let typed = call(&mut ws, json!({"type": "typing", "chat": format!("{a}:1001")})).await;
    assert_eq!(typed["type"], "ack");
    let t = next_of(&mut other, "typing").await;
    assert_eq!(
        (t["user"].as_str(), t["seq"].as_u64()),
        (Some("alice"), Some(start + 3))
    );
    s.state.hub.publish(Ephemeral::AccountStatus {
        account: a,
        status: "offline".into(),
        detail: None,
    });
    s.state.hub.publish(Ephemeral::AccountStatus {
        account: a + 1,
        status: "hidden".into(),
        detail: None,
    });
    let st = next_of(&mut other, "account.status").await;
    assert_eq!(
        (st["account"].as_u64(), st["status"].as_str()),
        (Some(a), Some("offline"))
    );

    let sent = call(
        &mut ws,
        json!({"type": "send_message", "chat": format!("{a}:1001"), "text": "hi"}),
    )
    .await;
    assert_eq!(
        (sent["type"].as_str(), sent["code"].as_str()),
        (Some("error"), Some("account_not_connected"))
    );
    let unknown = call(&mut ws, json!({"type": "mark_read", "chat": "9:9", "up_to": 1})).await;
    assert_eq!(unknown["code"], "not_found");
    assert_eq!(call(&mut ws, json!({"type": "ping"})).await["type"], "pong");
    let bad = call(&mut ws, json!({"type": "fly"})).await;
    assert_eq!(
        (bad["type"].as_str(), bad["code"].as_str()),
        (Some("error"), Some("bad_request"))
    );
    send(&mut ws, json!("not an object")).await;
    assert_eq!(next_of(&mut ws, "error").await["code"], "bad_request");

    // A subscription filter narrows the feed to some chats.
    let other_chat = chat(1002, ChatKind::Private, "Olga");
    let only = call(
        &mut ws,
        json!({"type": "subscribe", "chats": [format!("{a}:1002")]}),
    )
    .await;
    assert_eq!(only["type"], "ack");
    s.ingest(a, msgs(a, 10..=10, "filtered out")).await;
    s.ingest(a, vec![text_message(a, &other_chat, 1, "kept")]).await;
    let m = next_of(&mut ws, "message.created").await;
    assert_eq!(m["message"]["text"], "kept");
}

#[tokio::test]
async fn resume_replays_every_missed_event_in_order_or_asks_for_a_resync() {
    let (s, a, token) = server(LiveOptions::default()).await;
    let mut ws = ws_token(&s, &token).await;
    let from = call(&mut ws, json!({"type": "subscribe"})).await["last_seq"]
        .as_u64()
        .unwrap();
    drop(ws);
    s.ingest(a, msgs(a, 1..=600, "missed")).await;

    let mut ws = ws_token(&s, &token).await;
    send(&mut ws, json!({"type": "resume", "id": 1, "from_seq": from})).await;
    let mut seqs = Vec::new();
    let ack = loop {
        let m = recv(&mut ws).await;
        if m["type"] == "ack" {
            break m;
        }
        assert_eq!(m["type"], "message.created");
        seqs.push(m["seq"].as_u64().unwrap());
    };
    assert_eq!(
        seqs,
        (from + 1..=from + 600).collect::<Vec<_>>(),
        "every event, in order, once"
    );
    assert_eq!(
        (ack["replayed"].as_u64(), ack["last_seq"].as_u64()),
        (Some(600), Some(from + 600))
    );
    s.ingest(a, msgs(a, 601..=601, "live")).await;
    let live = recv(&mut ws).await;
    assert_eq!(
        live["seq"],
        from + 601,
        "live continues right after the replay: {live}"
    );

    let far = call(&mut ws, json!({"type": "resume", "from_seq": from + 10_000})).await;
    assert_eq!(far["type"], "resync_required");
    assert_eq!(far["last_seq"], from + 601);

    // The REST log follows the same rule.
    let (st, page) = get(
        &s,
        &token,
        &format!("/api/v1/events?after={}&limit=2", from + 599),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert_eq!(page["last_seq"], from + 601);
    let (st, gone) = get(&s, &token, "/api/v1/events?after=99999").await;
    assert_eq!(
        (st, gone["error"]["code"].as_str()),
        (410, Some("resync_required"))
    );
}

/// A client that stops reading is closed with 4008 `too_slow` once its queue fills; it then
/// resumes without losing an event, and a client reading alongside gets every event on time.
#[tokio::test]
async fn a_slow_client_is_closed_and_resumes_without_loss_while_others_keep_up() {
    // The queue holds more than one commit's events (a burst a reading client drains), far
    // less than the run.
    let (s, a, token) = server(LiveOptions {
        queue: 128,
        // The blocked write must outlast the run, so the close frame still goes out after.
        write_timeout: Duration::from_secs(120),
        ..LiveOptions::default()
    })
    .await;
    let proto = format!("lanbox.v1, {token}");
    let (mut slow, _) = ws_connect_with(
        &s,
        "/api/v1/ws",
        &[("sec-websocket-protocol", &proto)],
        Some(2048),
    )
    .await
    .unwrap();
    recv(&mut slow).await;
    let start = call(&mut slow, json!({"type": "subscribe"})).await["last_seq"]
        .as_u64()
        .unwrap();
    let mut fast = ws_token(&s, &token).await;
    call(&mut fast, json!({"type": "subscribe"})).await;
    const N: u64 = 400;
    let reader = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while (seqs.len() as u64) < N {
            let m = recv(&mut fast).await;
            seqs.push(m["seq"].as_u64().unwrap());
        }
        seqs
    });
    // Large enough that the run overflows the kernel socket buffers (a few MB on loopback).
    let filler = "x".repeat(24_000);
    for b in 0..(N as i64 / 25) {
        s.ingest(a, msgs(a, b * 25 + 1..=b * 25 + 25, &filler)).await;
    }
    let fast_seqs = tokio::time::timeout(Duration::from_secs(30), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        fast_seqs,
        (start + 1..=start + N).collect::<Vec<_>>(),
        "the reading client got everything"
    );

    let mut got = Vec::new();
    let close = loop {
        match try_recv(&mut slow, Duration::from_secs(10)).await {
            Some(Ok(m)) => got.push(m["seq"].as_u64().unwrap()),
            Some(Err(close)) => break close,
            None => panic!("neither events nor a close after {} events", got.len()),
        }
    };
    assert_eq!(close, Some((4008, "too_slow".to_string())));
    assert!((got.len() as u64) < N, "closed before the end");
    assert_eq!(got, (start + 1..=start + got.len() as u64).collect::<Vec<_>>());

    let mut again = ws_token(&s, &token).await;
    let last = got.last().copied().unwrap_or(start);
    send(&mut again, json!({"type": "resume", "id": "r", "from_seq": last})).await;
    loop {
        let m = recv(&mut again).await;
        if m["type"] == "ack" {
            break;
        }
        got.push(m["seq"].as_u64().unwrap());
    }
    assert_eq!(
        got,
        (start + 1..=start + N).collect::<Vec<_>>(),
        "nothing lost, nothing doubled"
    );
}

#[tokio::test]
async fn heartbeats_close_a_silent_client_and_shutdown_says_going_away() {
    let (s, _, token) = server(LiveOptions {
        heartbeat: Duration::from_millis(500),
        ..LiveOptions::default()
    })
    .await;
    let mut silent = ws_token(&s, &token).await;
    let mut alive = ws_token(&s, &token).await;
    call(&mut alive, json!({"type": "subscribe"})).await;
    // `alive` keeps reading (which answers pings); `silent` reads nothing for a while. Real
    // time, not paused: the session measures silence with `std::time::Instant`, which paused
    // tokio time does not move, and the pings cross a real socket.
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_millis(2500) {
        assert!(
            try_recv(&mut alive, Duration::from_millis(100)).await.is_none(),
            "alive stays open"
        );
    }
    let closed = loop {
        match try_recv(&mut silent, Duration::from_secs(5)).await {
            Some(Ok(_)) => continue,
            Some(Err(c)) => break c,
            None => panic!("the silent client was not closed"),
        }
    };
    assert_eq!(closed, Some((4009, "heartbeat_timeout".to_string())));

    let mut idle = ws_token(&s, &token).await;
    s.state.hub.shutdown();
    let bye = try_recv(&mut alive, Duration::from_secs(5)).await;
    assert_eq!(bye, Some(Err(Some((1001, "going_away".to_string())))));
    let bye = try_recv(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(
        bye,
        Some(Err(Some((1001, "going_away".to_string())))),
        "unsubscribed ones too"
    );
}

/// When the hub itself falls behind the store's broadcast (a burst larger than its capacity),
/// nobody is dropped: it reads what it missed from the event log, and clients get every event
/// once, in order.
#[tokio::test]
async fn a_hub_that_lags_catches_up_from_the_log_and_drops_nobody() {
    let s = TestServer::start_full(
        tempfile::tempdir().unwrap(),
        lanbox::store::StoreOptions {
            publish_capacity: 16,
            ..Default::default()
        },
        ServiceOptions::default(),
    )
    .await;
    let a = s.account("alpha").await;
    s.user("alice", Role::Agent, &[a]).await;
    let token = s.token("alice").await;
    let mut ws = ws_token(&s, &token).await;
    let start = call(&mut ws, json!({"type": "subscribe"})).await["last_seq"]
        .as_u64()
        .unwrap();
    let mut seen = Vec::new();
    for round in 0..5i64 {
        s.ingest(a, msgs(a, round * 300 + 1..=round * 300 + 300, "burst"))
            .await;
        if s.state.hub.catch_ups() > 0 {
            break;
        }
    }
    assert!(
        s.state.hub.catch_ups() > 0,
        "a burst of 300 overran a broadcast of 16"
    );
    let end = s.store.read(|r| r.last_seq()).await.unwrap();
    while seen.last().is_none_or(|&l| l < end) {
        let m = recv(&mut ws).await;
        assert_eq!(m["type"], "message.created");
        assert!(
            m["message"]["text"].as_str().unwrap().starts_with("burst"),
            "content loaded: {m}"
        );
        seen.push(m["seq"].as_u64().unwrap());
    }
    assert_eq!(seen, (start + 1..=end).collect::<Vec<_>>());
}

#[tokio::test]
async fn logging_out_ends_the_sessions_websocket_at_once() {
    // The default heartbeat (30 s) is far beyond the wait below: the close comes from the
    // logout itself (tests/revocation.rs has every credential and every way to end it).
    let (s, _, _) = server(LiveOptions::default()).await;
    let cookie = s.login("alice").await;
    let origin = s.origin();
    let (mut browser, _) = ws_connect(&s, "/api/v1/ws", &[("cookie", &cookie), ("origin", &origin)])
        .await
        .unwrap();
    let out = s
        .client()
        .post(s.url("/api/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let ended = loop {
        match try_recv(&mut browser, Duration::from_secs(5)).await {
            Some(Ok(_)) => continue,
            Some(Err(c)) => break c,
            None => panic!("the logged-out WebSocket stayed open"),
        }
    };
    assert_eq!(ended, Some((4001, "unauthorized".to_string())));
}
