//! The Bot API simulator against the real client over real sockets: wire format, offset
//! semantics, long polling, faults, webhooks, sending and files, and tokens never appearing in
//! errors. The control API, media sends and webhook delivery are in the modules below.

mod support;

#[path = "simulator/control.rs"]
mod control;
#[path = "simulator/media.rs"]
mod media;
#[path = "simulator/webhook.rs"]
mod webhook;

use std::time::{Duration, Instant};

use lanbox::channels::telegram::client::{
    ApiError, BotClient, ChatAction, EditMessageText, GetUpdates, ReplyParameters, SendMessage, SetWebhook,
    Token, http_client,
};
use lanbox::channels::telegram::split_updates;
use lanbox::dev::simulator::{Fault, SimBot, Simulator};
use serde_json::{Value, json};
use support::updates;

const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (Simulator, SimBot, BotClient) {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("support_bot");
    let client = BotClient::new(
        http_client().unwrap(),
        &sim.api_base(),
        Token::new(bot.token()).unwrap(),
    );
    (sim, bot, client)
}

/// Ann's text message `id` in her private chat `chat`.
fn text_update(chat: i64, id: i64, text: &str) -> Value {
    updates::private_text(chat, "Ann", id, updates::DATE, text)
}

/// One Bot API call over plain HTTP with a JSON body: the status and the decoded answer.
async fn call(sim: &Simulator, token: &str, method: &str, params: Value) -> (u16, Value) {
    let resp = http_client()
        .unwrap()
        .post(format!("{}/bot{token}/{method}", sim.api_base()))
        .json(&params)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn poll(offset: Option<i64>, timeout: u32) -> GetUpdates {
    GetUpdates {
        offset,
        limit: 100,
        timeout,
        allowed_updates: vec!["message".into()],
    }
}

/// The update IDs of a getUpdates body, through the connector's own splitter.
fn ids(body: &[u8]) -> Vec<i64> {
    split_updates(body)
        .unwrap()
        .iter()
        .map(|raw| {
            serde_json::from_slice::<Value>(raw.0).unwrap()["update_id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn get_me_and_telegram_error_shapes() {
    let (sim, bot, client) = setup().await;
    let me = client.get_me().await.unwrap();
    assert_eq!(
        (me.id, me.is_bot, me.username.as_deref()),
        (bot.id(), true, Some("support_bot"))
    );

    // Exactly Telegram's shapes: status = error_code, a description, `ok: false`.
    let http = http_client().unwrap();
    let resp = http
        .get(format!("{}/bot1:unknown/getMe", sim.api_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let resp = http
        .post(format!("{}/bot{}/noSuchMethod", sim.api_base(), bot.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Method names are case-insensitive, and parameters may come as a query string.
    let resp = http
        .get(format!(
            "{}/bot{}/getupdates?timeout=0&offset=-1",
            sim.api_base(),
            bot.token()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), r#"{"ok":true,"result":[]}"#);
}

#[tokio::test]
async fn offsets_confirm_and_unconfirmed_updates_come_again() {
    let (_sim, bot, client) = setup().await;
    let a = bot.inject(text_update(5, 1, "one"));
    let b = bot.inject(text_update(5, 2, "two"));
    let c = bot.inject(text_update(5, 3, "three"));
    assert_eq!((b, c), (a + 1, a + 2));
    let margin = Duration::from_secs(2);
    assert_eq!(
        ids(&client.get_updates(&poll(None, 0), margin).await.unwrap()),
        [a, b, c]
    );
    // Nothing confirmed yet: delivered again.
    assert_eq!(
        ids(&client.get_updates(&poll(None, 0), margin).await.unwrap()),
        [a, b, c]
    );
    assert_eq!(
        ids(&client.get_updates(&poll(Some(b), 0), margin).await.unwrap()),
        [b, c]
    );
    assert_eq!(bot.pending(), 2);
    assert_eq!(
        ids(&client.get_updates(&poll(Some(c + 1), 0), margin).await.unwrap()),
        Vec::<i64>::new()
    );
    assert_eq!(bot.pending(), 0);
    let allowed = bot.allowed_updates().unwrap();
    assert_eq!(allowed, json!(["message"]));
}

#[tokio::test]
async fn long_poll_returns_on_injection_or_after_its_timeout() {
    let (_sim, bot, client) = setup().await;
    let margin = Duration::from_secs(2);
    let started = Instant::now();
    let empty = client.get_updates(&poll(None, 1), margin).await.unwrap();
    assert!(ids(&empty).is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    let c = client.clone();
    let waiting = tokio::spawn(async move { c.get_updates(&poll(None, 20), margin).await });
    let open = |b: &SimBot| {
        b.calls()
            .iter()
            .any(|c| c.method == "getUpdates" && c.status.is_none())
    };
    assert!(bot.wait_until(WAIT, open).await);
    let started = Instant::now();
    let id = bot.inject(text_update(5, 1, "hello"));
    let body = waiting.await.unwrap().unwrap();
    assert_eq!(ids(&body), [id]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn second_poller_and_webhook_conflict() {
    let (_sim, bot, client) = setup().await;
    let margin = Duration::from_secs(2);
    let c = client.clone();
    let first = tokio::spawn(async move { c.get_updates(&poll(None, 20), margin).await });
    let open = |b: &SimBot| {
        b.calls()
            .iter()
            .any(|c| c.method == "getUpdates" && c.status.is_none())
    };
    assert!(bot.wait_until(WAIT, open).await);
    let second = client.get_updates(&poll(None, 0), margin).await;
    assert!(second.is_ok());
    match first.await.unwrap() {
        Err(ApiError::Conflict(d)) => assert!(d.contains("terminated by other getUpdates"), "{d}"),
        other => panic!("{other:?}"),
    }

    let hook = SetWebhook {
        url: "https://lanbox.example/telegram/1".into(),
        secret_token: Some("s3cret-Token_1".into()),
        ..SetWebhook::default()
    };
    assert!(client.set_webhook(&hook).await.unwrap());
    assert_eq!(client.get_webhook_info().await.unwrap().url, hook.url);
    assert_eq!(bot.webhook(), Some((hook.url.clone(), hook.secret_token.clone())));
    match client.get_updates(&poll(None, 0), margin).await {
        Err(ApiError::Conflict(d)) => assert!(d.contains("webhook is active"), "{d}"),
        other => panic!("{other:?}"),
    }
    let plain = SetWebhook {
        url: "http://insecure.example/".into(),
        ..SetWebhook::default()
    };
    assert!(matches!(
        client.set_webhook(&plain).await,
        Err(ApiError::Other(400, _))
    ));
    assert!(client.delete_webhook(false).await.unwrap());
    assert!(client.get_webhook_info().await.unwrap().url.is_empty());
    assert!(client.get_updates(&poll(None, 0), margin).await.is_ok());
}

#[tokio::test]
async fn sending_editing_deleting_and_files_are_recorded() {
    let (_sim, bot, client) = setup().await;
    let sent = client
        .send_message(&SendMessage {
            chat_id: 42,
            text: "Hello, Ann".into(),
            reply_parameters: Some(ReplyParameters {
                message_id: 7,
                ..ReplyParameters::default()
            }),
            ..SendMessage::default()
        })
        .await
        .unwrap();
    assert_eq!((sent.chat.id, sent.text.as_deref()), (42, Some("Hello, Ann")));
    let log = bot.sent();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].chat_id, log[0].text.as_str()), (42, "Hello, Ann"));
    assert_eq!(log[0].message_id, sent.message_id);
    assert_eq!(log[0].reply_parameters, Some(json!({"message_id": 7})));

    let empty = SendMessage {
        chat_id: 42,
        ..SendMessage::default()
    };
    match client.send_message(&empty).await {
        Err(ApiError::Other(400, d)) => assert_eq!(d, "Bad Request: message text is empty"),
        other => panic!("{other:?}"),
    }
    assert!(client.send_chat_action(42, ChatAction::Typing).await.unwrap());
    let edit = EditMessageText {
        chat_id: 42,
        message_id: sent.message_id,
        text: "Hello again".into(),
        ..EditMessageText::default()
    };
    let edited = client.edit_message_text(&edit).await.unwrap();
    assert_eq!(edited.text.as_deref(), Some("Hello again"));
    assert!(client.delete_message(42, sent.message_id).await.unwrap());
    let methods: Vec<String> = bot.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(
        methods,
        [
            "sendMessage",
            "sendMessage",
            "sendChatAction",
            "editMessageText",
            "deleteMessage"
        ]
    );

    let file_id = bot.add_file(b"%PDF-1.4 not really".to_vec());
    let file = client.get_file(&file_id).await.unwrap();
    assert_eq!(file.file_size, Some(19));
    let mut download = client.download(file.file_path.as_deref().unwrap()).await.unwrap();
    assert_eq!(download.content_length(), Some(19));
    let mut got = Vec::new();
    while let Some(chunk) = download.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, b"%PDF-1.4 not really");
    assert!(matches!(
        client.get_file("nope").await,
        Err(ApiError::Other(400, _))
    ));
}

#[tokio::test]
async fn faults_map_to_typed_errors() {
    let (_sim, bot, client) = setup().await;
    bot.fail("getMe", Fault::RetryAfter(3), 1);
    bot.fail("getMe", Fault::Status(500), 1);
    bot.fail("getMe", Fault::Status(502), 1);
    bot.fail("getMe", Fault::Slow(Duration::from_millis(300)), 1);
    assert_eq!(client.get_me().await, Err(ApiError::RetryAfter(3)));
    assert_eq!(client.get_me().await, Err(ApiError::Server(500)));
    assert_eq!(client.get_me().await, Err(ApiError::Server(502)));
    let started = Instant::now();
    assert!(client.get_me().await.is_ok());
    assert!(started.elapsed() >= Duration::from_millis(300));
    let statuses: Vec<_> = bot.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [Some(429), Some(500), Some(502), Some(200)]);

    // A hang ends in the client's own timeout (here the long poll's 0 s plus a 300 ms margin).
    bot.fail("getUpdates", Fault::Hang, 1);
    let started = Instant::now();
    let hung = client
        .get_updates(&poll(None, 0), Duration::from_millis(300))
        .await;
    assert_eq!(hung, Err(ApiError::Timeout));
    assert!(started.elapsed() >= Duration::from_millis(300));

    bot.revoke();
    assert_eq!(client.get_me().await, Err(ApiError::Unauthorized));
}

#[tokio::test]
async fn tokens_never_appear_in_errors() {
    let (sim, bot, _client) = setup().await;
    let token = bot.token().to_owned();
    let api_base = sim.api_base();
    sim.stop().await.unwrap();
    // Nothing listens any more: a connection error, whose text must not carry the URL.
    let client = BotClient::new(
        http_client().unwrap(),
        &api_base,
        Token::new(token.clone()).unwrap(),
    );
    let err = client.get_me().await.unwrap_err();
    assert!(matches!(err, ApiError::Network(_)), "{err:?}");
    let secret = token.split_once(':').unwrap().1;
    for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!text.contains(secret), "{text}");
    }
}
