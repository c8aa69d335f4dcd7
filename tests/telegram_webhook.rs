//! Webhook mode over real sockets: switching calls `setWebhook` on the Bot API simulator with a
//! secret and the box's certificate; the box's `/telegram/webhook/{id}` endpoint refuses
//! deliveries without the secret and stores those with it (once, however often Telegram
//! redelivers); the simulator's own deliveries arrive over TLS; switching back calls
//! `deleteWebhook` and polling resumes.

mod support;

use std::time::Duration;

use lanbox::channels::telegram::bots::{self as accounts, Mode};
use lanbox::channels::telegram::client::http_client;
use lanbox::channels::telegram::webhook::{self, SECRET_HEADER};
use lanbox::dev::simulator::{SimBot, Simulator};
use lanbox::store::ChatKey;
use serde_json::Value;
use support::server::TestServer;
use support::{bots, poll, updates};

async fn setup() -> (TestServer, Simulator, SimBot, u64) {
    let server = TestServer::start().await;
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("hookbot");
    let id = bots::add(&server.store, &sim, &bot, None).await;
    (server, sim, bot, id)
}

/// Ada's text message `message_id`, as update `update_id` (0: the simulator numbers it).
fn private_update(update_id: i64, message_id: i64, text: &str) -> Value {
    updates::numbered(
        updates::private_text(4242, "Ada", message_id, updates::DATE, text),
        update_id,
    )
}

/// The webhook base URL that reaches the test server (its certificate names 127.0.0.1).
fn base(server: &TestServer) -> String {
    format!("https://127.0.0.1:{}", server.addr.port())
}

async fn messages_in(server: &TestServer, scope: u64, chat: i64) -> u32 {
    server
        .store
        .read(move |r| Ok(r.chat(ChatKey { scope, chat })?.map_or(0, |c| c.record.messages)))
        .await
        .unwrap()
}

async fn deliver(server: &TestServer, account: u64, secret: Option<&str>, body: &Value) -> u16 {
    let mut req = server
        .client()
        .post(server.url(&format!("/telegram/webhook/{account}")))
        .json(body);
    if let Some(s) = secret {
        req = req.header(SECRET_HEADER, s);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn deliveries_need_the_secret_and_are_stored_once() {
    let (server, _sim, bot, id) = setup().await;
    let update = private_update(10, 1, "hello over a webhook");
    assert_eq!(
        deliver(&server, id, Some("anything"), &update).await,
        404,
        "an account in polling mode has no webhook endpoint"
    );

    let pem = std::fs::read(server.dir.path().join("tls/cert.pem")).unwrap();
    let summary = webhook::switch_to_webhook(
        &server.store,
        http_client().unwrap(),
        id,
        &base(&server),
        Some(pem),
    )
    .await
    .unwrap();
    assert_eq!(summary.mode, Mode::Webhook);
    let url = format!("{}/telegram/webhook/{id}", base(&server));
    assert_eq!(summary.webhook_url.as_deref(), Some(url.as_str()));
    let (set_url, secret) = bot.webhook().expect("setWebhook reached the simulator");
    assert_eq!(set_url, url);
    let secret = secret.expect("a secret token was set");
    assert!(secret.len() >= 32);
    let allowed = bot.allowed_updates().expect("allowed_updates sent");
    assert!(allowed.to_string().contains("message_reaction"));

    assert_eq!(deliver(&server, id, None, &update).await, 401);
    assert_eq!(deliver(&server, id, Some("wrong"), &update).await, 401);
    let mut forged = secret.clone();
    forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
    assert_eq!(deliver(&server, id, Some(&forged), &update).await, 401);
    assert_eq!(
        messages_in(&server, id, 4242).await,
        0,
        "refused deliveries store nothing"
    );

    assert_eq!(deliver(&server, id, Some(&secret), &update).await, 200);
    assert_eq!(
        deliver(&server, id, Some(&secret), &update).await,
        200,
        "a redelivery is fine"
    );
    assert_eq!(messages_in(&server, id, 4242).await, 1, "stored once");

    // A body that is not an update is answered (so Telegram stops retrying it) and counted.
    let status = server
        .client()
        .post(server.url(&format!("/telegram/webhook/{id}")))
        .header(SECRET_HEADER, &secret)
        .body("{not json")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(server.store.read(move |r| r.rejected(id)).await.unwrap(), 1);

    // Switching again rotates the secret: the old one stops working.
    let pem = std::fs::read(server.dir.path().join("tls/cert.pem")).unwrap();
    webhook::switch_to_webhook(
        &server.store,
        http_client().unwrap(),
        id,
        &base(&server),
        Some(pem),
    )
    .await
    .unwrap();
    let (_, rotated) = bot.webhook().unwrap();
    assert_ne!(rotated.as_deref(), Some(secret.as_str()));
    assert_eq!(
        deliver(&server, id, Some(&secret), &private_update(11, 2, "x")).await,
        401
    );
}

#[tokio::test]
async fn the_simulator_delivers_over_tls_and_switching_back_polls_again() {
    let (server, sim, bot, id) = setup().await;
    let pem = std::fs::read(server.dir.path().join("tls/cert.pem")).unwrap();
    webhook::switch_to_webhook(
        &server.store,
        http_client().unwrap(),
        id,
        &base(&server),
        Some(pem),
    )
    .await
    .unwrap();

    bot.inject(private_update(0, 7, "first, by webhook"));
    bot.inject(private_update(0, 8, "second, by webhook"));
    poll::until_ok(Duration::from_secs(20), || async {
        match messages_in(&server, id, 4242).await {
            2.. => Ok(()),
            n => Err(format!(
                "{n} of the simulator's 2 webhook deliveries arrived: {}",
                bot.webhook_info()
            )),
        }
    })
    .await;

    webhook::switch_to_polling(&server.store, http_client().unwrap(), id)
        .await
        .unwrap();
    assert!(bot.webhook().is_none(), "deleteWebhook reached the simulator");
    let list = accounts::list(&server.store).await.unwrap();
    assert_eq!(list[0].mode, Mode::Polling);

    // Polling picks up what arrives next.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pipeline = server.state.pipeline.clone();
    let pollers = lanbox::channels::telegram::pollers::Pollers::new(
        pipeline,
        http_client().unwrap(),
        lanbox::channels::telegram::poller::PollerConfig {
            poll_timeout: 1,
            ..Default::default()
        },
        stop_rx,
    );
    assert_eq!(pollers.start_all().await.unwrap(), 1);
    bot.inject(private_update(0, 9, "third, by polling"));
    poll::until("polling to resume", Duration::from_secs(20), || async {
        messages_in(&server, id, 4242).await >= 3
    })
    .await;
    stop_tx.send_replace(true);
    pollers.join().await;
    drop(sim);
}
