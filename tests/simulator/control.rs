//! The control API over real HTTP: injecting updates (with and without IDs), uploading files
//! for updates, the activity log, send statistics and limit enforcement, faults of every kind,
//! tokens registered on first use, and the `lanbox dev telegram-sim` command.

use std::time::{Duration, Instant};

use lanbox::channels::telegram::client::http_client;
use lanbox::dev::simulator::{SimConfig, Simulator};
use serde_json::{Value, json};

use super::{call, text_update};

/// A well-formed token the simulator has never seen.
const FRESH: &str = "7700001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1";

async fn control(sim: &Simulator, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = http_client().unwrap();
    let mut req = http.request(method, format!("{}/_sim/{path}", sim.api_base()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn updates_with_and_without_ids_come_out_in_order() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let path = format!("bot{}/updates", bot.token());
    let (status, body) = control(&sim, reqwest::Method::POST, &path, Some(text_update(5, 1, "one"))).await;
    assert_eq!(status, 200, "{body}");
    let first = body["result"][0].as_i64().unwrap();
    // An array: a missing update_id is assigned after the given ones.
    let mut given = text_update(5, 2, "two");
    given["update_id"] = json!(first + 10);
    let mut missing = text_update(5, 3, "three");
    missing.as_object_mut().unwrap().remove("update_id");
    let (status, body) = control(&sim, reqwest::Method::POST, &path, Some(json!([given, missing]))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!([first + 10, first + 11]));

    let (status, got) = call(&sim, bot.token(), "getUpdates", json!({"timeout": 0})).await;
    assert_eq!(status, 200);
    let ids: Vec<i64> = got["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["update_id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [first, first + 10, first + 11]);
    assert_eq!(got["result"][2]["message"]["text"], "three");

    // Not an object: refused, nothing queued.
    let (status, body) = control(&sim, reqwest::Method::POST, &path, Some(json!([1, 2]))).await;
    assert_eq!((status, body["ok"].clone()), (400, json!(false)), "{body}");
    assert_eq!(bot.pending(), 3);
}

#[tokio::test]
async fn uploaded_files_round_trip_through_get_file_and_download() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let resp = http_client()
        .unwrap()
        .post(format!(
            "{}/_sim/bot{}/files?kind=document&file_name=report.pdf",
            sim.api_base(),
            bot.token()
        ))
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let file: Value = resp.json().await.unwrap();
    let file_id = file["result"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(file["result"]["file_size"], 300_000);

    // A user's document, as an update would carry it.
    let (_, body) = control(
        &sim,
        reqwest::Method::POST,
        &format!("bot{}/updates", bot.token()),
        Some(json!({"message": {"message_id": 9, "date": 1_700_000_000,
            "chat": {"id": 5, "type": "private", "first_name": "Ann"},
            "document": {"file_id": file_id, "file_unique_id": file["result"]["file_unique_id"],
                         "file_name": "report.pdf", "file_size": 300_000}}})),
    )
    .await;
    assert!(body["ok"].as_bool().unwrap());

    let (status, got) = call(&sim, bot.token(), "getFile", json!({"file_id": file_id})).await;
    assert_eq!(status, 200, "{got}");
    let path = got["result"]["file_path"].as_str().unwrap();
    assert!(path.starts_with("documents/") && path.ends_with(".pdf"), "{path}");
    let download = http_client()
        .unwrap()
        .get(format!("{}/file/bot{}/{path}", sim.api_base(), bot.token()))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Over 20 MB a bot cannot getFile it, as with Telegram.
    let big = http_client()
        .unwrap()
        .post(format!("{}/_sim/bot{}/files", sim.api_base(), bot.token()))
        .body(vec![1u8; 21 << 20])
        .send()
        .await
        .unwrap();
    let big: Value = big.json().await.unwrap();
    let big_id = big["result"]["file_id"].as_str().unwrap();
    let (status, got) = call(&sim, bot.token(), "getFile", json!({"file_id": big_id})).await;
    assert_eq!(
        (status, got["description"].as_str()),
        (400, Some("Bad Request: file is too big"))
    );
}

#[tokio::test]
async fn file_storage_is_capped_with_a_clear_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        file_bytes_cap: 1 << 20,
        ..SimConfig::default()
    };
    let sim = Simulator::start_with(listener, config).unwrap();
    let bot = sim.add_bot("inbox_bot");
    let upload = |n: usize| {
        http_client()
            .unwrap()
            .post(format!("{}/_sim/bot{}/files", sim.api_base(), bot.token()))
            .body(vec![7u8; n])
            .send()
    };
    assert_eq!(upload(600_000).await.unwrap().status(), 200);
    let refused = upload(600_000).await.unwrap();
    assert_eq!(refused.status(), 413);
    let body: Value = refused.json().await.unwrap();
    let d = body["description"].as_str().unwrap();
    assert!(d.contains("simulator file storage full"), "{d}");
    // A send that would store past the cap fails the same way, and stores nothing.
    let part = reqwest::multipart::Part::bytes(vec![1u8; 600_000]).file_name("a.bin");
    let form = reqwest::multipart::Form::new()
        .text("chat_id", "5")
        .part("document", part);
    let resp = http_client()
        .unwrap()
        .post(format!("{}/bot{}/sendDocument", sim.api_base(), bot.token()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(bot.activity().is_empty());
}

#[tokio::test]
async fn sent_log_has_every_send_edit_delete_and_chat_action_in_order() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let t = bot.token();
    let (_, m) = call(&sim, t, "sendMessage", json!({"chat_id": 5, "text": "hello"})).await;
    let id = m["result"]["message_id"].as_i64().unwrap();
    call(
        &sim,
        t,
        "sendChatAction",
        json!({"chat_id": 5, "action": "typing"}),
    )
    .await;
    let (s, _) = call(
        &sim,
        t,
        "editMessageText",
        json!({"chat_id": 5, "message_id": id, "text": "hello!"}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = call(&sim, t, "deleteMessage", json!({"chat_id": 5, "message_id": id})).await;
    assert_eq!(s, 200);
    let (s, _) = call(
        &sim,
        t,
        "sendMessage",
        json!({"chat_id": -100, "text": "to the group"}),
    )
    .await;
    assert_eq!(s, 200);

    let (status, log) = control(&sim, reqwest::Method::GET, &format!("bot{t}/sent"), None).await;
    assert_eq!(status, 200);
    let log = log["result"].as_array().unwrap().clone();
    let summary: Vec<(String, Value, Value)> = log
        .iter()
        .map(|a| {
            (
                a["method"].as_str().unwrap().to_owned(),
                a["chat_id"].clone(),
                a["text"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("sendMessage".into(), json!(5), json!("hello")),
            ("sendChatAction".into(), json!(5), Value::Null),
            ("editMessageText".into(), json!(5), json!("hello!")),
            ("deleteMessage".into(), json!(5), Value::Null),
            ("sendMessage".into(), json!(-100), json!("to the group")),
        ]
    );
    assert_eq!(log[1]["action"], "typing");
    assert!(log[2]["message"]["edit_date"].is_i64());
    let seqs: Vec<u64> = log.iter().map(|a| a["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let (_, later) = control(&sim, reqwest::Method::GET, &format!("bot{t}/sent?since=3"), None).await;
    assert_eq!(later["result"].as_array().unwrap().len(), 2);
    // The Rust handle sees the same, and `sent()` still lists only sendMessage.
    assert_eq!(bot.activity().len(), 5);
    assert_eq!(bot.sent().len(), 2);

    // Edits and deletes only for the bot's own messages, with Telegram's errors.
    let (s, e) = call(
        &sim,
        t,
        "editMessageText",
        json!({"chat_id": 5, "message_id": id, "text": "x"}),
    )
    .await;
    assert_eq!(
        (s, e["description"].as_str()),
        (400, Some("Bad Request: message to edit not found"))
    );
    let (s, e) = call(&sim, t, "deleteMessage", json!({"chat_id": 5, "message_id": id})).await;
    assert_eq!(
        (s, e["description"].as_str()),
        (400, Some("Bad Request: message to delete not found"))
    );
    let (s, e) = call(&sim, t, "deleteMessage", json!({"chat_id": 5, "message_id": 999})).await;
    assert_eq!(
        (s, e["description"].as_str()),
        (400, Some("Bad Request: message can't be deleted"))
    );
    let (_, m2) = call(&sim, t, "sendMessage", json!({"chat_id": 5, "text": "same"})).await;
    let id2 = m2["result"]["message_id"].as_i64().unwrap();
    let (s, e) = call(
        &sim,
        t,
        "editMessageText",
        json!({"chat_id": 5, "message_id": id2, "text": "same"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        e["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: message is not modified"),
        "{e}"
    );
    let (s, e) = call(
        &sim,
        t,
        "editMessageText",
        json!({"chat_id": 6, "message_id": id2, "text": "other chat"}),
    )
    .await;
    assert_eq!(
        (s, e["description"].as_str()),
        (400, Some("Bad Request: message to edit not found"))
    );
}

#[tokio::test]
async fn stats_measure_windows_and_enforced_limits_answer_429() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let t = bot.token();
    for i in 0..5 {
        let (s, _) = call(
            &sim,
            t,
            "sendMessage",
            json!({"chat_id": 5, "text": format!("m{i}")}),
        )
        .await;
        assert_eq!(s, 200);
    }
    for i in 0..3 {
        call(
            &sim,
            t,
            "sendMessage",
            json!({"chat_id": -100, "text": format!("g{i}")}),
        )
        .await;
    }
    let (_, stats) = control(&sim, reqwest::Method::GET, &format!("bot{t}/stats"), None).await;
    let s = &stats["result"];
    assert_eq!(s["sends"], 8);
    assert_eq!(s["max_per_second"], 8);
    assert_eq!(s["max_per_second_private_chat"], 5);
    assert_eq!(s["max_per_minute_group"], 3);
    assert_eq!(s["rejected_429"], 0);
    assert_eq!(s["methods"]["sendMessage"], 8);

    // Enforced: a fresh private chat takes a burst of 3, then 429 with retry_after.
    let (status, _) = control(
        &sim,
        reqwest::Method::POST,
        "faults",
        Some(json!({"enforce_limits": true})),
    )
    .await;
    assert_eq!(status, 200);
    let mut codes = Vec::new();
    let mut retry = None;
    for i in 0..5 {
        let (s, body) = call(
            &sim,
            t,
            "sendMessage",
            json!({"chat_id": 77, "text": format!("b{i}")}),
        )
        .await;
        codes.push(s);
        if s == 429 {
            retry = body["parameters"]["retry_after"].as_u64();
            assert_eq!(
                body["description"],
                format!("Too Many Requests: retry after {}", retry.unwrap())
            );
        }
    }
    assert_eq!(codes, [200, 200, 200, 429, 429]);
    assert_eq!(retry, Some(1));
    let (_, stats) = control(&sim, reqwest::Method::GET, &format!("bot{t}/stats"), None).await;
    assert_eq!(stats["result"]["rejected_429"], 2);
    assert_eq!(stats["result"]["enforce_limits"], true);
}

#[tokio::test]
async fn every_fault_kind_over_the_control_api() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let t = bot.token();
    let fault = |f: Value| json!({"token": t, "method": "getMe", "fault": f, "count": 1});
    for f in [
        json!({"retry_after": 3}),
        json!({"status": 500}),
        json!({"status": 502}),
        json!({"slow_ms": 400}),
        json!("hang"),
        json!("drop"),
    ] {
        let (status, body) = control(&sim, reqwest::Method::POST, "faults", Some(fault(f))).await;
        assert_eq!(status, 200, "{body}");
    }
    let http = http_client().unwrap();
    let get_me = || {
        http.post(format!("{}/bot{t}/getMe", sim.api_base()))
            .timeout(Duration::from_millis(1500))
            .send()
    };
    let r = get_me().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 3",
               "parameters": {"retry_after": 3}})
    );
    let r = get_me().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.json::<Value>().await.unwrap()["error_code"], 500);
    let r = get_me().await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().await.unwrap().contains("<h1>502 Bad Gateway</h1>"));
    let started = Instant::now();
    assert_eq!(get_me().await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
    // Hang: no answer until the client gives up.
    let started = Instant::now();
    let err = get_me().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    // Drop: the connection closes without an answer, long before the timeout.
    let started = Instant::now();
    let err = get_me().await.unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    // Then normal again, and the call log shows what happened.
    assert_eq!(get_me().await.unwrap().status(), 200);
    let statuses: Vec<_> = bot.calls().iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [
            Some(429),
            Some(500),
            Some(502),
            Some(200),
            None,
            Some(0),
            Some(200)
        ]
    );

    // Any method ("*"), several times.
    let (status, _) = control(
        &sim,
        reqwest::Method::POST,
        "faults",
        Some(json!({"token": t, "fault": {"status": 503}, "count": 2})),
    )
    .await;
    assert_eq!(status, 200);
    let status = |method: &'static str| {
        http.post(format!("{}/bot{t}/{method}?chat_id=1&text=x", sim.api_base()))
            .send()
    };
    let s1 = status("getUpdates").await.unwrap().status();
    let s2 = status("sendMessage").await.unwrap().status();
    let s3 = status("getMe").await.unwrap().status();
    assert_eq!((s1.as_u16(), s2.as_u16(), s3.as_u16()), (503, 503, 200));
    let (status, body) = control(
        &sim,
        reqwest::Method::POST,
        "faults",
        Some(json!({"token": t, "fault": "explode"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn well_formed_unknown_tokens_are_registered_unless_strict() {
    let sim = Simulator::start().await.unwrap();
    let (status, me) = call(&sim, FRESH, "getMe", json!({})).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["result"]["id"], 7_700_001);
    let bot = sim.bot(FRESH).expect("registered");
    bot.inject(text_update(5, 1, "hi"));
    let (_, got) = call(&sim, FRESH, "getUpdates", json!({})).await;
    assert_eq!(got["result"].as_array().unwrap().len(), 1);
    // Malformed: still 401. Revoked: 401.
    let (status, _) = call(&sim, "7700001:short", "getMe", json!({})).await;
    assert_eq!(status, 401);
    bot.revoke();
    assert_eq!(call(&sim, FRESH, "getMe", json!({})).await.0, 401);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let strict = Simulator::start_with(
        listener,
        SimConfig {
            strict: true,
            ..SimConfig::default()
        },
    )
    .unwrap();
    assert_eq!(call(&strict, FRESH, "getMe", json!({})).await.0, 401);
    let added = strict.add_bot_with_token(FRESH, "given_bot").unwrap();
    let (status, me) = call(&strict, added.token(), "getMe", json!({})).await;
    assert_eq!(
        (status, me["result"]["username"].as_str()),
        (200, Some("given_bot"))
    );
    let other = strict.add_bot("made_bot");
    assert_eq!(call(&strict, other.token(), "getMe", json!({})).await.0, 200);
}

#[tokio::test]
async fn dev_telegram_sim_command_serves_until_sigterm() {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(crate::support::binary::BIN)
        .args(["dev", "telegram-sim", "--listen", "127.0.0.1:0", "--token", FRESH])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = first.rsplit(' ').next().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{first}");
    assert_eq!(
        lines.next_line().await.unwrap().unwrap(),
        format!("token {FRESH}")
    );
    let me: Value = http_client()
        .unwrap()
        .get(format!("{base}/bot{FRESH}/getMe"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["result"]["id"], 7_700_001);
    let pid = child.id().unwrap() as i32;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}
