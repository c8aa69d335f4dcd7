//! Media sends over multipart (a file part, `attach://`, a `file_id`, a URL), the Message and
//! media objects they return, Telegram's size limits, the uploaded bytes coming back through
//! getFile, and answerCallbackQuery.

use lanbox::channels::telegram::client::http_client;
use lanbox::dev::simulator::{SimBot, Simulator};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::call;

/// The start of a PNG of `w` x `h` (what the simulator reads, as Telegram's decoder would).
fn png(w: u32, h: u32, len: usize) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    b.extend_from_slice(&w.to_be_bytes());
    b.extend_from_slice(&h.to_be_bytes());
    b.extend_from_slice(&[8, 6, 0, 0, 0]);
    b.resize(len, 0x5a);
    b
}

async fn send(sim: &Simulator, bot: &SimBot, method: &str, form: Form) -> (u16, Value) {
    let resp = http_client()
        .unwrap()
        .post(format!("{}/bot{}/{method}", sim.api_base(), bot.token()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn download(sim: &Simulator, bot: &SimBot, file_id: &str) -> Vec<u8> {
    let (status, file) = call(sim, bot.token(), "getFile", json!({"file_id": file_id})).await;
    assert_eq!(status, 200, "{file}");
    let path = file["result"]["file_path"].as_str().unwrap();
    let resp = http_client()
        .unwrap()
        .get(format!("{}/file/bot{}/{path}", sim.api_base(), bot.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn photo_document_video_voice_audio_uploads() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let image = png(640, 480, 20_000);
    let form = Form::new()
        .text("chat_id", "42")
        .text("caption", "the view")
        .part(
            "photo",
            Part::bytes(image.clone())
                .file_name("view.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let (status, m) = send(&sim, &bot, "sendPhoto", form).await;
    assert_eq!(status, 200, "{m}");
    let m = &m["result"];
    assert_eq!(
        (m["chat"]["id"].as_i64(), m["caption"].as_str()),
        (Some(42), Some("the view"))
    );
    let sizes = m["photo"].as_array().unwrap();
    let largest = sizes.last().unwrap();
    assert_eq!(
        (largest["width"].as_u64(), largest["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(largest["file_size"], 20_000);
    assert!(largest["file_unique_id"].is_string());
    assert_eq!(
        download(&sim, &bot, largest["file_id"].as_str().unwrap()).await,
        image
    );

    let text = b"meeting notes\n".repeat(100);
    let form = Form::new().text("chat_id", "42").part(
        "document",
        Part::bytes(text.clone())
            .file_name("notes.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let (status, m) = send(&sim, &bot, "sendDocument", form).await;
    assert_eq!(status, 200, "{m}");
    let doc = &m["result"]["document"];
    assert_eq!(
        (
            doc["file_name"].as_str(),
            doc["mime_type"].as_str(),
            doc["file_size"].as_u64()
        ),
        (Some("notes.txt"), Some("text/plain"), Some(1400))
    );
    let doc_id = doc["file_id"].as_str().unwrap().to_owned();
    assert_eq!(download(&sim, &bot, &doc_id).await, text);

    // The same file again by file_id (a form field, no upload), and through attach://.
    let (status, again) = send(
        &sim,
        &bot,
        "sendDocument",
        Form::new().text("chat_id", "43").text("document", doc_id.clone()),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["result"]["document"]["file_id"], doc_id.as_str());
    assert_eq!(again["result"]["document"]["file_name"], "notes.txt");
    let form = Form::new()
        .text("chat_id", "42")
        .text("video", "attach://clip")
        .text("width", "1280")
        .text("height", "720")
        .text("duration", "12")
        .part("clip", Part::bytes(vec![0u8; 5000]).file_name("clip.mp4"));
    let (status, m) = send(&sim, &bot, "sendVideo", form).await;
    assert_eq!(status, 200, "{m}");
    let v = &m["result"]["video"];
    assert_eq!(
        (
            v["width"].as_u64(),
            v["height"].as_u64(),
            v["duration"].as_u64(),
            v["mime_type"].as_str()
        ),
        (Some(1280), Some(720), Some(12), Some("video/mp4"))
    );

    let form = Form::new().text("chat_id", "42").text("duration", "3").part(
        "voice",
        Part::bytes(b"OggS voice".to_vec()).file_name("voice.ogg"),
    );
    let (status, m) = send(&sim, &bot, "sendVoice", form).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["result"]["voice"]["mime_type"], "audio/ogg");
    assert_eq!(m["result"]["voice"]["duration"], 3);
    let form = Form::new()
        .text("chat_id", "42")
        .text("performer", "Band")
        .text("title", "Song")
        .part("audio", Part::bytes(b"ID3 audio".to_vec()).file_name("song.mp3"));
    let (status, m) = send(&sim, &bot, "sendAudio", form).await;
    assert_eq!(status, 200, "{m}");
    let a = &m["result"]["audio"];
    assert_eq!(
        (
            a["performer"].as_str(),
            a["title"].as_str(),
            a["file_name"].as_str(),
            a["mime_type"].as_str()
        ),
        (Some("Band"), Some("Song"), Some("song.mp3"), Some("audio/mpeg"))
    );

    let methods: Vec<String> = bot.activity().into_iter().map(|a| a.method).collect();
    assert_eq!(
        methods,
        [
            "sendPhoto",
            "sendDocument",
            "sendDocument",
            "sendVideo",
            "sendVoice",
            "sendAudio"
        ]
    );
    // The media message can be deleted, but its text cannot be edited.
    let id = bot.activity()[0].message_id.unwrap();
    let (s, e) = call(
        &sim,
        bot.token(),
        "editMessageText",
        json!({"chat_id": 42, "message_id": id, "text": "x"}),
    )
    .await;
    assert_eq!(
        (s, e["description"].as_str()),
        (400, Some("Bad Request: there is no text in the message to edit"))
    );
    assert_eq!(
        call(
            &sim,
            bot.token(),
            "deleteMessage",
            json!({"chat_id": 42, "message_id": id})
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn size_limits_and_bad_files_get_telegrams_errors() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    // An 11 MB photo: over the 10 MB photo limit.
    let form = Form::new().text("chat_id", "42").part(
        "photo",
        Part::bytes(png(4000, 3000, 11 << 20)).file_name("big.png"),
    );
    let (status, body) = send(&sim, &bot, "sendPhoto", form).await;
    assert_eq!(
        (status, body),
        (
            413,
            json!({"ok": false, "error_code": 413, "description": "Request Entity Too Large"})
        )
    );
    // A 51 MB document: over the 50 MB upload limit.
    let form = Form::new()
        .text("chat_id", "42")
        .part("document", Part::bytes(vec![0u8; 51 << 20]).file_name("big.bin"));
    let (status, body) = send(&sim, &bot, "sendDocument", form).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (413, Some("Request Entity Too Large"))
    );
    // 9 MB as a document is fine.
    let form = Form::new()
        .text("chat_id", "42")
        .part("document", Part::bytes(vec![1u8; 9 << 20]).file_name("ok.bin"));
    assert_eq!(send(&sim, &bot, "sendDocument", form).await.0, 200);

    let form = Form::new().text("chat_id", "42").part(
        "photo",
        Part::bytes(b"not an image at all".to_vec()).file_name("x.jpg"),
    );
    let (status, body) = send(&sim, &bot, "sendPhoto", form).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: IMAGE_PROCESS_FAILED"))
    );
    let (status, body) = send(&sim, &bot, "sendDocument", Form::new().text("chat_id", "42")).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: there is no document in the request"))
    );
    let (status, body) = call(
        &sim,
        bot.token(),
        "sendDocument",
        json!({"chat_id": 42, "document": "NOPE"}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: wrong file identifier/HTTP URL specified"))
    );
    let form = Form::new()
        .text("chat_id", "42")
        .text("caption", "c".repeat(1025))
        .part("document", Part::bytes(b"x".to_vec()).file_name("x.txt"));
    let (status, body) = send(&sim, &bot, "sendDocument", form).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message caption is too long"))
    );
    let (status, body) = call(
        &sim,
        bot.token(),
        "sendMessage",
        json!({"chat_id": 42, "text": "x".repeat(4097)}),
    )
    .await;
    assert_eq!(
        (status, body["description"].as_str()),
        (400, Some("Bad Request: message is too long"))
    );
    assert_eq!(bot.activity().len(), 1);
}

#[tokio::test]
async fn send_by_url_fetches_the_file() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/files/report.pdf",
        axum::routing::get(|| async { b"%PDF-1.7 hosted".to_vec() }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let url = format!("http://{origin}/files/report.pdf");
    let (status, m) = call(
        &sim,
        bot.token(),
        "sendDocument",
        json!({"chat_id": 42, "document": url}),
    )
    .await;
    assert_eq!(status, 200, "{m}");
    let doc = &m["result"]["document"];
    assert_eq!(
        (doc["file_name"].as_str(), doc["mime_type"].as_str()),
        (Some("report.pdf"), Some("application/pdf"))
    );
    assert_eq!(
        download(&sim, &bot, doc["file_id"].as_str().unwrap()).await,
        b"%PDF-1.7 hosted"
    );
    let missing = format!("http://{origin}/files/gone.pdf");
    let (status, e) = call(
        &sim,
        bot.token(),
        "sendDocument",
        json!({"chat_id": 42, "document": missing}),
    )
    .await;
    assert_eq!(
        (status, e["description"].as_str()),
        (400, Some("Bad Request: failed to get HTTP URL content"))
    );
}

#[tokio::test]
async fn answer_callback_query_once_per_query() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/telegram/telegram-rs__callback_query_channel_msg.json"
    ))
    .unwrap();
    let update: Value = serde_json::from_slice(&fixture).unwrap();
    let query_id = update["callback_query"]["id"].as_str().unwrap().to_owned();
    bot.inject(update);
    let t = bot.token();
    let (status, ok) = call(
        &sim,
        t,
        "answerCallbackQuery",
        json!({"callback_query_id": query_id, "text": "Done"}),
    )
    .await;
    assert_eq!((status, ok), (200, json!({"ok": true, "result": true})));
    let stale = "Bad Request: query is too old and response timeout expired or query ID is invalid";
    let (status, e) = call(
        &sim,
        t,
        "answerCallbackQuery",
        json!({"callback_query_id": query_id}),
    )
    .await;
    assert_eq!((status, e["description"].as_str()), (400, Some(stale)));
    let (status, e) = call(
        &sim,
        t,
        "answerCallbackQuery",
        json!({"callback_query_id": "123"}),
    )
    .await;
    assert_eq!((status, e["description"].as_str()), (400, Some(stale)));
    let log = bot.activity();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (
            log[0].method.as_str(),
            log[0].callback_query_id.as_deref(),
            log[0].text.as_deref()
        ),
        ("answerCallbackQuery", Some(query_id.as_str()), Some("Done"))
    );
}
