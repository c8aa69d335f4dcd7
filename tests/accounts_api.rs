//! The accounts API over real TLS with the Bot API simulator: an admin adds a bot (checked with
//! getMe) and it starts receiving at once; renames, limits and switches it to webhook mode and
//! back while the box runs; removes and releases it. Agents may only list what they are granted.
//! The token never comes back in any reply.

mod support;

use std::time::Duration;

use lanbox::auth::Role;
use lanbox::dev::simulator::{SimBot, Simulator};
use serde_json::{Value, json};
use support::server::{TestServer, get, post, request};
use support::{poll, updates};

fn update(message_id: i64, text: &str) -> Value {
    updates::private_text(777, "Ivy", message_id, updates::DATE, text)
}

/// Waits until the chat list of `token`'s caller shows `n` messages in chat 777.
async fn wait_messages(s: &TestServer, token: &str, n: u64) {
    poll::until_ok(Duration::from_secs(20), || async {
        let (_, chats) = get(s, token, "/api/v1/chats").await;
        let count = chats["chats"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["telegram_id"] == 777)
            .map_or(0, |c| c["messages"].as_u64().unwrap());
        if count == n {
            Ok(())
        } else {
            Err(format!("{count} messages, want {n}"))
        }
    })
    .await
}

fn no_token(v: &Value, bot: &SimBot) {
    let text = v.to_string();
    let secret = bot.token().split(':').nth(1).unwrap();
    assert!(!text.contains(secret), "the token came back: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_accounts_live_and_agents_cannot() {
    let s = TestServer::start().await;
    s.user("root", Role::Admin, &[]).await;
    s.user("nobody", Role::Agent, &[]).await;
    let root = s.token("root").await;
    let nobody = s.token("nobody").await;
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("desk_bot");
    let api = sim.api_base();

    // Bad input is refused clearly and adds nothing.
    let (st, v) = post(&s, &root, "/api/v1/accounts", json!({"token": "nope"})).await;
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("bad_token")));
    let revoked = sim.add_bot("gone_bot");
    revoked.revoke();
    let (st, v) = post(
        &s,
        &root,
        "/api/v1/accounts",
        json!({"token": revoked.token(), "api_base": api}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (422, Some("token_rejected")),
        "{v}"
    );
    let (st, _) = post(
        &s,
        &nobody,
        "/api/v1/accounts",
        json!({"token": bot.token(), "api_base": api}),
    )
    .await;
    assert_eq!(st, 403);
    assert_eq!(get(&s, &root, "/api/v1/accounts").await.1, json!([]));

    // Added: checked with getMe, and receiving at once.
    let (st, v) = post(
        &s,
        &root,
        "/api/v1/accounts",
        json!({"token": bot.token(), "api_base": api, "name": "Front desk", "daily_limit": 100}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    no_token(&v, &bot);
    let id = v["id"].as_u64().unwrap();
    assert_eq!(
        (v["name"].as_str(), v["bot_username"].as_str()),
        (Some("Front desk"), Some("desk_bot"))
    );
    assert_eq!(v["mode"], "polling");
    bot.inject(update(1, "first, by polling"));
    wait_messages(&s, &root, 1).await;
    let (_, list) = get(&s, &root, "/api/v1/accounts").await;
    assert_eq!(list[0]["status"], "online", "{list}");
    let (st, v) = post(
        &s,
        &root,
        "/api/v1/accounts",
        json!({"token": bot.token(), "api_base": api}),
    )
    .await;
    assert_eq!(st, 409, "{v}");

    // Agents see nothing ungranted and change nothing.
    assert_eq!(get(&s, &nobody, "/api/v1/accounts").await.1, json!([]));
    let path = format!("/api/v1/accounts/{id}");
    let (st, _) = request(
        &s,
        reqwest::Method::PATCH,
        &nobody,
        &path,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = request(&s, reqwest::Method::DELETE, &nobody, &path, None).await;
    assert_eq!(st, 403);

    // Renamed, limit removed.
    let (st, v) = request(
        &s,
        reqwest::Method::PATCH,
        &root,
        &path,
        Some(json!({"name": "Desk", "daily_limit": null})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["name"].as_str(), &v["daily_limit"]),
        (Some("Desk"), &Value::Null)
    );
    let (st, v) = request(
        &s,
        reqwest::Method::PATCH,
        &root,
        &path,
        Some(json!({"mode": "webhook"})),
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("bad_mode")));

    // Webhook mode while running: Telegram (the simulator) now delivers to the box over TLS.
    let base = format!("https://127.0.0.1:{}", s.addr.port());
    let (st, v) = request(
        &s,
        reqwest::Method::PATCH,
        &root,
        &path,
        Some(json!({"mode": "webhook", "webhook_base": base, "webhook_self_signed": true})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["mode"], "webhook");
    assert_eq!(v["webhook_url"], format!("{base}/telegram/webhook/{id}"));
    bot.inject(update(2, "second, by webhook"));
    wait_messages(&s, &root, 2).await;
    // And back to polling.
    let (st, v) = request(
        &s,
        reqwest::Method::PATCH,
        &root,
        &path,
        Some(json!({"mode": "polling"})),
    )
    .await;
    assert_eq!((st, v["mode"].as_str()), (200, Some("polling")), "{v}");
    assert!(bot.webhook().is_none());
    bot.inject(update(3, "third, by polling again"));
    wait_messages(&s, &root, 3).await;

    // Removed and released: gone from the list, and its messages with it.
    let (st, v) = request(
        &s,
        reqwest::Method::DELETE,
        &root,
        &format!("{path}?release=true"),
        None,
    )
    .await;
    assert_eq!((st, v["release_started"].as_bool()), (202, Some(true)), "{v}");
    wait_messages(&s, &root, 0).await;
    assert_eq!(get(&s, &root, "/api/v1/accounts").await.1, json!([]));
    let (st, _) = request(&s, reqwest::Method::DELETE, &root, &path, None).await;
    assert_eq!(st, 404);
}
