//! End-to-end smoke test of a lanbox *binary*: the host build by default, or the static ARM
//! build under qemu-user when `LANBOX_SMOKE_BIN` and `LANBOX_SMOKE_RUNNER` are set (CI runs it
//! both ways: `scripts/test.sh`).
//!
//! It sets up a data directory with the binary's own commands (init, account add against the
//! Bot API simulator, user add, token create), starts `serve`, lets it ingest an update from
//! the simulator, reads it back over the HTTPS API, receives the WebSocket event, and stops it
//! with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lanbox::dev::simulator::Simulator;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CANARY: &str = "smoke test message from the simulator";

fn command(args: &[&str], data: &Path) -> Command {
    let bin = std::env::var("LANBOX_SMOKE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lanbox").to_string());
    let mut c = match std::env::var("LANBOX_SMOKE_RUNNER") {
        Ok(runner) if !runner.is_empty() => {
            let mut c = Command::new(runner);
            c.arg(bin);
            c
        }
        _ => Command::new(bin),
    };
    c.args(args).arg("--data").arg(data);
    c.env("LANBOX_SERVER_LISTEN", "127.0.0.1:0")
        .env("LANBOX_SERVER_MDNS", "false");
    c
}

fn run(args: &[&str], data: &Path, env: &[(&str, &str)]) -> String {
    let out = command(args, data)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "lanbox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn tls(addr: std::net::SocketAddr, fp: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let cfg = lanbox::system::tls::client_config(Some(fp), &[&rustls::version::TLS13]);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("lanbox.local").unwrap(), tcp)
        .await
        .unwrap()
}

async fn get(addr: std::net::SocketAddr, fp: &str, token: &str, path: &str) -> String {
    let mut s = tls(addr, fp).await;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: lanbox.local\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
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

    let mut child = command(&["serve"], data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let (mut fp, mut addr) = (String::new(), None);
    let mut line = String::new();
    while addr.is_none() {
        line.clear();
        assert!(lines.read_line(&mut line).unwrap() > 0, "serve exited early");
        if let Some(f) = line
            .trim()
            .strip_prefix("lanbox certificate SHA-256 fingerprint: ")
        {
            fp = f.to_string();
        }
        if let Some(a) = line.trim().strip_prefix("lanbox listening on https://") {
            addr = Some(a.parse::<std::net::SocketAddr>().unwrap());
        }
    }
    let addr = addr.unwrap();

    // A WebSocket with the token as subprotocol, subscribed before the update arrives.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("wss://lanbox.local:{}/api/v1/ws", addr.port())
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("lanbox.v1, {token}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tls(addr, &fp).await)
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

    bot.inject(serde_json::json!({
        "message": {
            "message_id": 7,
            "from": {"id": 4242, "is_bot": false, "first_name": "Smoke"},
            "chat": {"id": 4242, "type": "private", "first_name": "Smoke"},
            "date": 1_700_000_000,
            "text": CANARY
        }
    }));

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

    let chats = get(addr, &fp, &token, "/api/v1/chats").await;
    assert!(chats.starts_with("HTTP/1.1 200"), "{chats}");
    assert!(chats.contains("4242"), "{chats}");

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "clean shutdown: {status:?}");
}
