//! Sending a file end to end: uploaded to the box (`POST /api/v1/attachments`, stored
//! encrypted), queued with a caption through the outbox, streamed decrypted into the Bot API
//! simulator's multipart `sendDocument`/`sendPhoto`, and the very same bytes are what the
//! simulator then serves back for the sent message's `file_id`. An upload for another account
//! cannot be sent.

mod support;

use std::time::Duration;

use lanbox::auth::Role;
use lanbox::channels::telegram::client::{BotClient, Token, http_client};
use lanbox::dev::simulator::Simulator;
use lanbox::model::ChatKind;
use serde_json::json;
use support::messages::{chat, text_message};
use support::server::*;
use support::{bots, poll};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_file_is_sent_with_its_caption_and_the_same_bytes() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("files_bot");
    let s = TestServer::start().await;
    let a = bots::add(&s.store, &sim, &bot, Some("a")).await;
    let other = sim.add_bot("other_bot");
    let b = bots::add(&s.store, &sim, &other, Some("b")).await;
    s.state.outbox.start(a).await.unwrap();
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let anna = chat(5005, ChatKind::Private, "Anna");
    s.ingest(a, vec![text_message(a, &anna, 40, "send me the report")])
        .await;
    let chat_id = format!("{a}:5005");

    // 300 KB of a non-repeating pattern: a document.
    let report: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let id = upload(&s, &root, a, "Q3%20report.pdf", "application/pdf", report.clone()).await;
    let (st, item) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{chat_id}/messages"),
        json!({"text": "the report, as promised", "attachment": id, "reply_to": 40}),
    )
    .await;
    assert_eq!(st, 202, "{item}");

    let sent = bot
        .wait_until(Duration::from_secs(20), |b| {
            b.activity().iter().any(|x| x.method == "sendDocument")
        })
        .await;
    assert!(
        sent,
        "no sendDocument reached the simulator: {:?}",
        bot.activity()
    );
    let act = bot
        .activity()
        .into_iter()
        .find(|x| x.method == "sendDocument")
        .unwrap();
    assert_eq!(act.text.as_deref(), Some("the report, as promised"));
    let message = act.message.unwrap();
    assert_eq!(message["document"]["file_name"], "Q3 report.pdf");
    assert_eq!(message["reply_to_message"]["message_id"], 40);
    let file_id = message["document"]["file_id"].as_str().unwrap().to_owned();
    let client = BotClient::new(
        http_client().unwrap(),
        &sim.api_base(),
        Token::new(bot.token()).unwrap(),
    );
    let file = client.get_file(&file_id).await.unwrap();
    let mut dl = client.download(file.file_path.as_deref().unwrap()).await.unwrap();
    let mut got = Vec::new();
    while let Some(chunk) = dl.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert!(
        got == report,
        "the simulator received other bytes ({} vs {})",
        got.len(),
        report.len()
    );

    // The item ends "sent", and the conversation shows our document.
    let item_id = item["id"].as_u64().unwrap();
    poll::until_ok(Duration::from_secs(10), || async {
        let (_, it) = get(&s, &root, &format!("/api/v1/outbox/{item_id}")).await;
        if it["status"] == "sent" {
            Ok(())
        } else {
            Err(format!("item: {it}"))
        }
    })
    .await;
    let (_, page) = get(&s, &root, &format!("/api/v1/chats/{chat_id}/messages")).await;
    let ours = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["direction"] == "outgoing")
        .cloned()
        .expect("the sent message is in the conversation");
    assert_eq!(ours["kind"], "file", "{ours}");

    // A PNG goes as a photo.
    // A real 1x1 PNG (the simulator, like Telegram, refuses images it cannot decode).
    let png: Vec<u8> = vec![
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00,
        0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01,
        0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];
    let id = upload(&s, &root, a, "chart.png", "image/png", png).await;
    let (st, _) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{chat_id}/messages"),
        json!({"text": "", "attachment": id}),
    )
    .await;
    assert_eq!(st, 202);
    assert!(
        bot.wait_until(Duration::from_secs(20), |b| b
            .activity()
            .iter()
            .any(|x| x.method == "sendPhoto"))
            .await
    );

    // Someone else's upload cannot be sent through this account.
    let foreign = upload(&s, &root, b, "x.txt", "text/plain", b"not yours".to_vec()).await;
    let (st, _) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{chat_id}/messages"),
        json!({"text": "hm", "attachment": foreign}),
    )
    .await;
    assert_eq!(st, 404);
}
