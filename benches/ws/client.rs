//! The benchmark's WebSocket clients: many TLS connections from one process, each a small task
//! that reads frames and notes when it first sees each published message.
//!
//! A published message carries the marker `wsbench-<k>-` in its text; a client that finds it
//! in a text frame stores the receive time (nanoseconds since the run's epoch) in slot
//! `[k][client]`. Nothing is parsed as JSON, so the clients' own cost per frame is one substring
//! search, the same for lanbox and the baseline.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::net::TcpSocket;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

pub const HOST: &str = "lanbox.local";
pub const MARKER: &str = "wsbench-";
/// Source addresses used round-robin (127.0.0.10 ..), so that repeated runs of 10,000
/// connections do not run out of ephemeral ports on one address pair.
const SOURCES: u8 = 16;
/// TLS + WebSocket handshakes in flight at once.
const CONNECTING: usize = 256;

/// How a client connects.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub fingerprint: String,
    /// `Sec-WebSocket-Protocol` to offer (lanbox: `lanbox.v1, <token>`).
    pub protocol: Option<String>,
    /// Text to send after connecting and the number of frames to read before counting the
    /// client as ready (lanbox: `subscribe`, then `hello` and the `ack`).
    pub greeting: Option<String>,
    pub ready_frames: usize,
}

/// Receive times: `[message][client]`, nanoseconds since `epoch`, 0 = not yet.
pub struct Board {
    pub epoch: Instant,
    pub slots: Vec<Vec<AtomicU64>>,
    pub received: Vec<AtomicUsize>,
    /// Length of the last frame that carried a marker (to size the baseline's payload).
    pub frame_len: AtomicUsize,
}

impl Board {
    pub fn new(messages: usize, clients: usize) -> Board {
        Board {
            epoch: Instant::now(),
            slots: (0..messages)
                .map(|_| (0..clients).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            received: (0..messages).map(|_| AtomicUsize::new(0)).collect(),
            frame_len: AtomicUsize::new(0),
        }
    }

    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn record(&self, text: &str, client: usize) {
        let Some(at) = text.find(MARKER) else {
            return;
        };
        let rest = &text[at + MARKER.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(k) = rest[..digits].parse::<usize>() else {
            return;
        };
        if let Some(slot) = self.slots.get(k).and_then(|s| s.get(client))
            && slot
                .compare_exchange(0, self.now().max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.received[k].fetch_add(1, Ordering::Relaxed);
            self.frame_len.store(text.len(), Ordering::Relaxed);
        }
    }
}

pub fn tls(fingerprint: &str) -> tokio_rustls::TlsConnector {
    let cfg = lanbox::system::tls::client_config(Some(fingerprint), &[&rustls::version::TLS13]);
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// One TLS WebSocket connection from source address number `n`.
pub async fn connect(t: &Target, n: usize) -> Res<Ws> {
    let src = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + (n % SOURCES as usize) as u8));
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(src, 0))?;
    let tcp = sock.connect(t.addr).await?;
    tcp.set_nodelay(true)?;
    let stream = tls(&t.fingerprint)
        .connect(ServerName::try_from(HOST)?, tcp)
        .await?;
    let url = format!("wss://{HOST}:{}/api/v1/ws", t.addr.port());
    let mut req = url.into_client_request()?;
    if let Some(p) = &t.protocol {
        req.headers_mut().insert("sec-websocket-protocol", p.parse()?);
    }
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(super::servers::ws_config())).await?;
    Ok(ws)
}

/// Connected clients, each reading in its own task until `stop`.
pub struct Fleet {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Fleet {
    /// Connects `n` clients (at most [`CONNECTING`] handshakes at once) and waits until each
    /// is ready.
    pub async fn connect(t: &Target, n: usize, board: Arc<Board>) -> Res<Fleet> {
        let (stop, stopped) = watch::channel(false);
        let gate = Arc::new(Semaphore::new(CONNECTING));
        let ready = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        for i in 0..n {
            let (t, board, gate, ready, failed) = (
                t.clone(),
                board.clone(),
                gate.clone(),
                ready.clone(),
                failed.clone(),
            );
            let mut stopped = stopped.clone();
            tasks.spawn(async move {
                let permit = gate.acquire_owned().await.expect("gate open");
                let mut ws = match setup(&t, i).await {
                    Ok(ws) => ws,
                    Err(e) => {
                        if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("client {i}: {e}");
                        }
                        return;
                    }
                };
                drop(permit);
                ready.fetch_add(1, Ordering::Relaxed);
                loop {
                    tokio::select! {
                        f = ws.next() => match f {
                            Some(Ok(Message::Text(text))) => board.record(text.as_str(), i),
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => return,
                        },
                        _ = async { let _ = stopped.wait_for(|s| *s).await; } => {
                            let _ = ws.close(None).await;
                            return;
                        }
                    }
                }
            });
        }
        let start = Instant::now();
        while ready.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n {
            if start.elapsed() > Duration::from_secs(600) {
                return Err("clients did not connect within 10 minutes".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let f = failed.load(Ordering::Relaxed);
        if f > 0 {
            return Err(format!("{f} of {n} clients failed to connect").into());
        }
        Ok(Fleet { tasks, stop })
    }

    /// Closes every client and waits for their tasks.
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(60), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        self.tasks.abort_all();
    }
}

async fn setup(t: &Target, i: usize) -> Res<Ws> {
    let mut ws = connect(t, i).await?;
    if let Some(g) = &t.greeting {
        ws.send(Message::Text(g.clone().into())).await?;
    }
    let mut seen = 0;
    while seen < t.ready_frames {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await {
            Ok(Some(Ok(Message::Text(_)))) => seen += 1,
            Ok(Some(Ok(_))) => {}
            Ok(other) => return Err(format!("closed before ready: {other:?}").into()),
            Err(_) => return Err("no greeting reply within 60 s".into()),
        }
    }
    Ok(ws)
}

/// Waits until message `k` reached all `n` clients or `limit` passed; returns how many got it.
pub async fn wait_delivered(board: &Board, k: usize, n: usize, limit: Duration) -> usize {
    let start = Instant::now();
    loop {
        let got = board.received[k].load(Ordering::Relaxed);
        if got >= n || start.elapsed() > limit {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
