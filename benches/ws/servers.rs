//! The servers under test, each a child process so that its RSS (read from `/proc`) is its own:
//!
//! - lanbox: the real `lanbox` binary, on a data directory set up with its own commands (init,
//!   `account add` against the in-process Bot API simulator, `user add`, `token create`), then
//!   `serve`; messages reach it the real way, through the simulator and the poller.
//! - the WebSocket baseline (`--child baseline-ws`, this binary again): a bare tokio-tungstenite
//!   broadcast server behind the same TLS and WebSocket read buffer size (lanbox's certificate store and rustls server
//!   configuration, TLS 1.3): every text frame a client sends goes to every client through a
//!   `tokio::sync::broadcast` channel. No auth, no store, no JSON.
//! - the REST baseline (`--child baseline-rest BODY_FILE`): axum behind `lanbox::server::run`
//!   (the same TLS and HTTP stack lanbox uses), answering every GET with a fixed body.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::Message;

use super::client::{HOST, Res};

/// A running server child.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub fingerprint: String,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// Reads `lanbox certificate SHA-256 fingerprint: FP` and `lanbox listening on https://ADDR`
    /// (the baselines print the same two lines).
    fn from_child(mut child: Child) -> Res<Server> {
        let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let (mut fp, mut addr) = (None, None);
        let mut line = String::new();
        while addr.is_none() {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                return Err("server exited before listening".into());
            }
            if let Some(f) = line
                .trim()
                .strip_prefix("lanbox certificate SHA-256 fingerprint: ")
            {
                fp = Some(f.to_string());
            }
            if let Some(a) = line.trim().strip_prefix("lanbox listening on https://") {
                addr = Some(a.parse()?);
            }
        }
        Ok(Server {
            child,
            addr: addr.ok_or("no address")?,
            fingerprint: fp.ok_or("no fingerprint")?,
            _stdout: out,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size, bytes.
    pub fn rss(&self) -> Res<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .ok_or("no VmRSS")?
            .parse()?;
        Ok(kb * 1024)
    }

    pub fn stop(mut self) {
        // SIGTERM for a clean shutdown, then make sure.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary Cargo built with the bench, or `BENCH_LANBOX_BIN` (another build of lanbox, for
/// an A/B run of the same bench against an older or newer server; not `LANBOX_*`, which
/// lanbox reads as its own configuration and warns about).
pub fn lanbox_bin() -> &'static str {
    static BIN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        std::env::var("BENCH_LANBOX_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lanbox").into())
    })
}

fn lanbox(args: &[&str], data: &Path) -> Command {
    let mut c = Command::new(lanbox_bin());
    c.args(args)
        .arg("--data")
        .arg(data)
        .env("LANBOX_SERVER_LISTEN", "127.0.0.1:0")
        .env("LANBOX_SERVER_MDNS", "false")
        // wrk sends the IP address as SNI, which rustls warns about on every connection.
        .env("LANBOX_LOG_LEVEL", "warn,rustls=error")
        .stdin(Stdio::null());
    c
}

pub fn run(args: &[&str], data: &Path, env: &[(&str, &str)]) -> Res<String> {
    let out = lanbox(args, data).envs(env.iter().copied()).output()?;
    if !out.status.success() {
        return Err(format!("lanbox {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Sets up `data` with one Telegram account on the simulator at `api_base`, an admin and its
/// token; returns the token.
pub fn setup_lanbox(data: &Path, bot_token: &str, api_base: &str) -> Res<String> {
    run(&["init"], data, &[])?;
    run(
        &[
            "account",
            "add",
            "telegram",
            "--token",
            bot_token,
            "--api-base",
            api_base,
            "--name",
            "bench",
        ],
        data,
        &[],
    )?;
    run(
        &["user", "add", "bench", "--role", "admin"],
        data,
        &[("LANBOX_PASSWORD", "correct horse battery")],
    )?;
    let out = run(&["token", "create", "bench", "--label", "bench"], data, &[])?;
    Ok(out
        .split_whitespace()
        .find(|w| w.starts_with("lbx_"))
        .ok_or("no token printed")?
        .to_string())
}

pub fn start_lanbox(data: &Path) -> Res<Server> {
    // The default caps (1024 connections, 64 per address) are below the bench's 10,000 clients
    // from 16 addresses; the open-files limit was raised for them.
    let child = lanbox(&["serve"], data)
        .env("LANBOX_SERVER_MAX_CONNECTIONS", "16000")
        .env("LANBOX_SERVER_MAX_CONNECTIONS_PER_CLIENT", "16000")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    Server::from_child(child)
}

/// Starts this binary as a baseline server child.
pub fn start_baseline(kind: &str, extra: &[&str]) -> Res<Server> {
    let child = Command::new(std::env::current_exe()?)
        .args(["--child", kind])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    Server::from_child(child)
}

fn certs(dir: &Path) -> Res<std::sync::Arc<lanbox::system::tls::CertStore>> {
    Ok(lanbox::system::tls::CertStore::load(
        lanbox::system::tls::CertSource::SelfSigned {
            dir: dir.join("tls"),
            names: lanbox::system::tls::default_names(HOST),
        },
    )?)
}

fn announce(fp: &str, addr: SocketAddr) {
    println!("lanbox certificate SHA-256 fingerprint: {fp}");
    println!("lanbox listening on https://{addr}");
}

/// The WebSocket configuration of the baseline and the clients: tungstenite's defaults except
/// the read buffer, which is lanbox's (`lanbox::api::ws::READ_BUFFER`), so that memory per
/// connection compares like with like (the default 128 KiB is zero-filled per connection).
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(lanbox::api::ws::READ_BUFFER)
}

/// The bare tokio-tungstenite broadcast server (child process side).
pub async fn baseline_ws() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let certs = certs(dir.path())?;
    let acceptor = tokio_rustls::TlsAcceptor::from(certs.server_config()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (tx, _) = broadcast::channel::<tokio_tungstenite::tungstenite::Utf8Bytes>(1024);
    announce(&certs.fingerprint(), listener.local_addr()?);
    loop {
        let (tcp, _) = listener.accept().await?;
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(tls, Some(ws_config())).await else {
                return;
            };
            let mut rx = tx.subscribe();
            let (mut sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Ok(text) => {
                            if sink.send(Message::Text(text)).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    },
                    f = stream.next() => match f {
                        Some(Ok(Message::Text(t))) => {
                            let _ = tx.send(t);
                        }
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                        Some(Ok(_)) => {}
                    },
                }
            }
        });
    }
}

/// The bare REST server answering every GET with the body in `file` (child process side).
pub async fn baseline_rest(file: &Path) -> Res<()> {
    let body = bytes::Bytes::from(std::fs::read(file)?);
    let dir = tempfile::tempdir()?;
    let certs = certs(dir.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    announce(&certs.fingerprint(), listener.local_addr()?);
    let app = axum::Router::new().fallback(axum::routing::get(move || {
        let body = body.clone();
        async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
    }));
    lanbox::server::run(listener, certs, app, std::future::pending()).await?;
    Ok(())
}
