//! The REST API over real TLS sockets: login, sessions and tokens, the grants promise on
//! every route (and the WebSocket), limits and the one error shape.

mod support;

use std::time::Duration;

use lanbox::auth::Role;
use lanbox::model::ChatKind;
use lanbox::service::ServiceOptions;
use serde_json::{Value, json};
use support::messages::{chat, text_message};
use support::server::*;
use support::{binary, canary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn accounts_in(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "accounts" {
                    out.extend(x.as_array().unwrap().iter().map(|n| n.as_u64().unwrap()));
                } else if k == "account" && x.is_u64() {
                    out.push(x.as_u64().unwrap());
                } else {
                    accounts_in(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| accounts_in(x, out)),
        _ => {}
    }
}

/// Regression guard for the grants promise: an agent without a grant on an account sees
/// nothing of it (no chat, message, search hit, count or event) by any REST route or the
/// WebSocket, while an admin does see it (so the check is not vacuous).
#[tokio::test]
async fn an_agent_without_a_grant_sees_nothing_of_that_account() {
    let (s, a, b) = workspace().await;
    let alice = s.token("alice").await;
    let root = s.token("root").await;
    let nobody = s.token("nobody").await;

    let b_private = format!("{b}:2001");
    let reads = [
        "/api/v1/me".to_string(),
        "/api/v1/accounts".into(),
        "/api/v1/chats".into(),
        format!("/api/v1/chats?account={b}"),
        "/api/v1/chats?kind=supergroup".into(),
        "/api/v1/chats?unread=true".into(),
        format!("/api/v1/chats/{b_private}"),
        format!("/api/v1/chats/{b_private}/messages"),
        format!("/api/v1/chats/{b_private}/messages/1"),
        "/api/v1/chats/0:-100500".into(),
        "/api/v1/chats/0:-100500/messages?after=0".into(),
        "/api/v1/chats/0:-100700/messages".into(),
        "/api/v1/chats/0:-100700/messages/21".into(),
        "/api/v1/search?q=bravo".into(),
        "/api/v1/search?q=secret".into(),
        "/api/v1/search?q=shared".into(),
        format!("/api/v1/search?q=alpha&account={b}"),
        "/api/v1/stats".into(),
        "/api/v1/events?after=0&limit=1000".into(),
    ];
    let mut admin_saw_bravo = false;
    for path in &reads {
        let (status, body) = get(&s, &alice, path).await;
        let text = body.to_string();
        assert!(
            !text.to_lowercase().contains("bravo"),
            "alice sees bravo at {path}: {text}"
        );
        for id in [
            format!("\"{b_private}\""),
            "-100500".into(),
            "\"message_id\":21".into(),
            "\"id\":21,".into(),
        ] {
            assert!(!text.contains(&id), "alice sees {id} at {path}: {text}");
        }
        let mut accounts = Vec::new();
        accounts_in(&body, &mut accounts);
        assert!(!accounts.contains(&b), "alice sees account {b} at {path}: {text}");
        if path.contains(&b_private) || path.contains("100500") || path.ends_with("/21") {
            assert_eq!(status, 404, "{path}: {text}");
            assert_eq!(body["error"]["code"], "not_found");
        } else {
            assert_eq!(status, 200, "{path}: {text}");
        }
        let (_, admin) = get(&s, &root, path).await;
        admin_saw_bravo |= admin.to_string().to_lowercase().contains("bravo");
        let (_, none) = get(&s, &nobody, path).await;
        assert!(
            !none.to_string().to_lowercase().contains("alpha"),
            "nobody sees alpha at {path}"
        );
    }
    assert!(
        admin_saw_bravo,
        "the admin sees bravo, so the checks above mean something"
    );

    // What alice does see.
    let (_, chats) = get(&s, &alice, "/api/v1/chats").await;
    let ids: Vec<&str> = chats["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{chats}");
    assert!(ids.contains(&format!("{a}:1001").as_str()) && ids.contains(&"0:-100700"));
    let (_, shared) = get(&s, &alice, "/api/v1/chats/0:-100700/messages").await;
    let shared_ids: Vec<i64> = shared["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        shared_ids,
        vec![20],
        "the shared chat without bravo's own message"
    );
    assert_eq!(shared["messages"][0]["accounts"], json!([a]));
    let (_, hits) = get(&s, &alice, "/api/v1/search?q=alpha").await;
    assert_eq!(hits["hits"].as_array().unwrap().len(), 4, "{hits}");
    let (_, stats) = get(&s, &alice, "/api/v1/stats").await;
    assert_eq!(stats["totals"]["chats"], 2);
    assert_eq!(stats["by_account"].as_array().unwrap().len(), 1);

    // Writes on bravo's chats are refused as if they did not exist.
    let (st, _) = post(
        &s,
        &alice,
        &format!("/api/v1/chats/{b_private}/read"),
        json!({"up_to": 3}),
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = post(
        &s,
        &alice,
        &format!("/api/v1/chats/{b_private}/messages"),
        json!({"text": "hi"}),
    )
    .await;
    assert_eq!(st, 404);

    // The live feed: a replay from the start, then live events of both accounts.
    let mut ws = ws_token(&s, &alice).await;
    send(&mut ws, json!({"type": "resume", "id": "r", "from_seq": 0})).await;
    let ack = loop {
        let m = recv(&mut ws).await;
        assert!(
            !m.to_string().to_lowercase().contains("bravo"),
            "replay leak: {m}"
        );
        assert!(!m.to_string().contains(&format!("\"{b}:")), "replay leak: {m}");
        if m["type"] == "ack" {
            break m;
        }
    };
    assert_eq!(ack["replayed"], 4, "alice's own four messages: {ack}");
    let boris = chat(2001, ChatKind::Private, "Bravo Boris");
    let anna = chat(1001, ChatKind::Private, "Anna");
    s.ingest(b, vec![text_message(b, &boris, 4, "bravo secret live")])
        .await;
    s.ingest(a, vec![text_message(a, &anna, 4, "alpha live")]).await;
    let mut ws_root = ws_token(&s, &root).await;
    let replayed = call(&mut ws_root, json!({"type": "resume", "from_seq": 0})).await;
    assert!(replayed["replayed"].as_u64().unwrap() > ack["replayed"].as_u64().unwrap());
    loop {
        let m = recv(&mut ws).await;
        assert!(!m.to_string().to_lowercase().contains("bravo"), "live leak: {m}");
        assert!(!m.to_string().contains(&format!("\"{b}:")), "live leak: {m}");
        if m["type"] == "message.created" && m["message"]["text"] == "alpha live" {
            break;
        }
    }
}

#[tokio::test]
async fn login_sets_a_strict_cookie_and_sessions_need_same_origin_writes() {
    let s = TestServer::start().await;
    s.user("alice", Role::Agent, &[]).await;
    let c = s.client();
    let res = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_string();
    for attr in [
        "__Host-lanbox_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(set.contains(attr), "{attr} in {set}");
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["name"], "alice");
    assert_eq!(body["user"]["role"], "agent");
    let cookie = set.split(';').next().unwrap().to_string();

    let me = c
        .get(s.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    // A state-changing request with only the cookie needs the box's own Origin.
    let bare = c
        .post(s.url("/api/v1/ws/ticket"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    let foreign = c
        .post(s.url("/api/v1/ws/ticket"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 403);
    let same = c
        .post(s.url("/api/v1/ws/ticket"))
        .header("cookie", &cookie)
        .header("origin", s.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    // A login posted by another site's page is refused.
    let cross = c
        .post(s.url("/api/v1/auth/login"))
        .header("origin", "https://evil.example")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);

    let out = c
        .post(s.url("/api/v1/auth/logout"))
        .header("cookie", &cookie)
        .header("origin", s.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert!(
        out.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = c
        .get(s.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        401,
        "the session ended on the server, not just in the browser"
    );
}

#[tokio::test]
async fn failed_logins_are_throttled_and_tokens_are_stored_hashed() {
    let s = TestServer::start().await;
    s.user("carol", Role::Admin, &[]).await;
    let c = s.client();
    let attempt = |password: &'static str| {
        c.post(s.url("/api/v1/auth/login"))
            .json(&json!({"username": "carol", "password": password}))
            .send()
    };
    for _ in 0..lanbox::auth::throttle::FREE_FAILURES {
        let r = attempt("wrong password").await.unwrap();
        assert_eq!(r.status(), 400);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["error"]["code"], "invalid_credentials");
    }
    let r = attempt(PASSWORD).await.unwrap();
    assert_eq!(r.status(), 429, "even the right password waits now");
    assert!(r.headers().contains_key("retry-after"));
    let unknown = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "nobody-here", "password": "whatever123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400, "unknown users look like wrong passwords");

    let token = s.token("carol").await;
    assert!(token.starts_with("lbx_") && token.len() == 47, "{token}");
    let (st, me) = get(&s, &token, "/api/v1/me").await;
    assert_eq!((st, me["name"].as_str()), (200, Some("carol")));
    let (st, e) = get(
        &s,
        "lbx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/api/v1/me",
    )
    .await;
    assert_eq!((st, e["error"]["code"].as_str()), (401, Some("unauthorized")));
    let (st, _) = get(&s, "not-a-token", "/api/v1/me").await;
    assert_eq!(st, 401);

    // Neither the token nor the password is anywhere on disk.
    drop(c);
    assert!(s.dir.path().join(lanbox::store::DB_FILE).exists());
    canary::assert_absent(s.dir.path(), &[&token, &token[4..], PASSWORD]);
}

#[tokio::test]
async fn cli_user_add_and_token_create_set_up_a_fresh_box() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        binary::run(
            binary::command(args, dir.path())
                .env("LANBOX_PASSWORD", PASSWORD)
                .env("LANBOX_LOG", "warn"),
        )
    };
    let added = run(&["user", "add", "admin", "--role", "admin"]);
    assert!(added.contains("admin") && !added.contains("argon2"), "{added}");
    let token = run(&["token", "create", "admin", "--label", "setup"])
        .trim()
        .to_string();
    assert!(token.starts_with("lbx_"), "{token}");
    assert!(run(&["user", "list"]).contains("admin"));
    let s = TestServer::start_in(dir, ServiceOptions::default()).await;
    let (st, me) = get(&s, &token, "/api/v1/me").await;
    assert_eq!((st, me["role"].as_str()), (200, Some("admin")));
    s.login("admin").await;
}

/// Sends raw bytes over TLS and returns the status line and body.
async fn raw(s: &TestServer, request: &[u8]) -> String {
    let mut tls = s.raw().await;
    tls.write_all(request).await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_string(&mut out)).await;
    out
}

#[tokio::test]
async fn limits_and_the_one_error_shape() {
    let s = TestServer::start_with(ServiceOptions {
        request_timeout: Duration::from_millis(800),
        ..ServiceOptions::default()
    })
    .await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let c = s.client();
    let shape = |v: &Value, code: &str| {
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(v["error"]["message"].is_string());
        assert_eq!(v.as_object().unwrap().len(), 1);
    };
    let (st, v) = get(&s, &root, "/api/v1/nope").await;
    assert_eq!(st, 404);
    shape(&v, "not_found");
    let res = c
        .delete(s.url("/api/v1/chats"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    shape(&res.json().await.unwrap(), "method_not_allowed");
    let (st, v) = get(&s, "", "/api/v1/chats").await;
    assert_eq!(st, 401);
    shape(&v, "unauthorized");
    let res = c
        .post(s.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 100 << 10])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    shape(&res.json().await.unwrap(), "too_large");
    let res = c
        .post(s.url("/api/v1/auth/login"))
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    shape(&res.json().await.unwrap(), "unsupported_media_type");
    let res = c
        .post(s.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"username\": \"secret words\"")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(
        !body.contains("secret words"),
        "errors never echo the body: {body}"
    );
    let res = c
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": 5, "password": "secret words"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(!res.text().await.unwrap().contains("secret words"));

    // A client that announces a body and trickles it is cut off.
    let start = std::time::Instant::now();
    let slow = raw(
        &s,
        format!(
            "POST /api/v1/chats/1:1/read HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {root}\r\n\
             Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{{\"up"
        )
        .as_bytes(),
    )
    .await;
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    assert!(slow.contains("request_timeout"));
    assert!(start.elapsed() < Duration::from_secs(5));

    let (_, health) = get(&s, "", "/api/v1/health").await;
    assert_eq!(health["status"], "ok");
    let res = c
        .get(s.url("/api/v1/me"))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
}
