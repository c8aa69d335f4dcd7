//! End-to-end smoke test of a lanbox *binary*: the host build by default, or the static ARM
//! build under qemu-user when `LANBOX_SMOKE_BIN` and `LANBOX_SMOKE_RUNNER` are set (CI runs it
//! both ways: `scripts/test.sh`).
//!
//! It sets up a data directory with the binary's own commands (init, account add against the
//! Bot API simulator, user add, token create), starts `serve`, lets it ingest an update from
//! the simulator, reads it back over the HTTPS API, receives the WebSocket event, and stops it
//! with SIGTERM.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use lanbox::dev::simulator::Simulator;
use support::binary::{self, Serving};
use support::{tls, updates};

const CANARY: &str = "smoke test message from the simulator";

/// `lanbox ARGS --data DATA` without mDNS: the host build, or `LANBOX_SMOKE_BIN` run by
/// `LANBOX_SMOKE_RUNNER` (qemu-user) when set.
fn command(args: &[&str], data: &Path) -> Command {
    let bin = std::env::var("LANBOX_SMOKE_BIN").unwrap_or_else(|_| binary::BIN.to_string());
    let c = match std::env::var("LANBOX_SMOKE_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    let mut c = binary::with(c, args, data);
    c.env("LANBOX_SERVER_MDNS", "false");
    c
}

fn run(args: &[&str], data: &Path, env: &[(&str, &str)]) -> String {
    binary::run(command(args, data).envs(env.iter().copied()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_ingests_serves_pushes_and_stops() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("smoke_bot");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();

    // First set-up, with the binary's own commands.
    run(&["init"], data, &[]);
    run(
        &[
            "account",
            "add",
            "telegram",
            "--token",
            bot.token(),
            "--api-base",
            &sim.api_base(),
            "--name",
            "smoke",
        ],
        data,
        &[],
    );
    run(
        &["user", "add", "admin", "--role", "admin"],
        data,
        &[("LANBOX_PASSWORD", "correct horse battery")],
    );
    let out = run(&["token", "create", "admin", "--label", "smoke"], data, &[]);
    let token = out
        .split_whitespace()
        .find(|w| w.starts_with("lbx_"))
        .expect("token printed")
        .to_string();

    let serving = Serving::start(command(&["serve"], data).stderr(Stdio::inherit()));
    let (addr, fp) = (serving.addr, serving.fingerprint.clone());

    // A WebSocket with the token as subprotocol, subscribed before the update arrives.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("wss://lanbox.local:{}/api/v1/ws", addr.port())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("lanbox.v1, {token}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls::connect(addr, &fp).await.unwrap())
        .await
        .unwrap();
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        r#"{"type":"subscribe","id":"s1"}"#.into(),
    ))
    .await
    .unwrap();
    let acked = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(m)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "ack" && v["id"] == "s1" {
                    return;
                }
            }
        }
        panic!("websocket closed before the subscription was acknowledged");
    })
    .await;
    assert!(acked.is_ok(), "subscribe acknowledged");

    bot.inject(updates::private_text(4242, "Smoke", 7, updates::DATE, CANARY));

    let created = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(msg) = ws.next().await {
            if let Ok(tokio_tungstenite::tungstenite::Message::Text(t)) = msg {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                if v["type"] == "message.created" {
                    return v;
                }
            }
        }
        panic!("websocket closed before the event");
    })
    .await
    .expect("message.created within 60 s");
    assert!(created["seq"].as_u64().unwrap() >= 1, "{created}");
    assert!(created.to_string().contains(CANARY), "{created}");

    let chats = tls::get(addr, &fp, Some(&token), "/api/v1/chats").await.unwrap();
    assert!(chats.starts_with("HTTP/1.1 200"), "{chats}");
    assert!(chats.contains("4242"), "{chats}");

    let status = tokio::task::spawn_blocking(move || serving.stop()).await.unwrap();
    assert!(status.success(), "clean shutdown: {status:?}");
}
