//! Slow and idle connections are bounded (issue 13, point 5). The bug: TLS offered `http/1.1`
//! by ALPN yet HTTP/2 by prior knowledge was served, idle HTTP/2 connections were never
//! closed, trickled uploads (1 byte every 4 s) never timed out, and nothing capped
//! connections, so under a file-descriptor limit of 256, 245 idle connections made
//! `/api/v1/health` time out for 30 s with "Too many open files". These tests run the real
//! server over real TLS on 127.0.0.1, with attackers on other loopback addresses
//! (127.0.0.2, ...) so the per-client cap tells them from the normal client on 127.0.0.1.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanbox::api::router;
use lanbox::auth::{NewUser, Role, credentials, users};
use lanbox::server::Limits;
use lanbox::service::Service;
use lanbox::store::{Store, StoreOptions};
use lanbox::system::tls::{CertSource, CertStore};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const HOST: &str = "lanbox.local";
/// The longest any close awaited here may take before the test fails (the limits under test
/// are a second or two; this is room for a loaded machine, not a wait).
const GUARD: Duration = Duration::from_secs(30);

const NORMAL: [u8; 4] = [127, 0, 0, 1];

struct Served {
    _dir: tempfile::TempDir,
    addr: SocketAddr,
    fp: String,
    token: String,
    account: u64,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The real API (plus `/test/big`, a 16 MiB answer for a client that will not read it) under
/// `limits`.
async fn start(limits: Limits) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        &StoreOptions {
            credentials_dir: None,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let certs = CertStore::load(CertSource::SelfSigned {
        dir: dir.path().join("tls"),
        names: lanbox::system::tls::default_names(HOST),
    })
    .unwrap();
    let fp = certs.fingerprint();
    let account = lanbox::store::new_account::create(
        &store,
        lanbox::store::new_account::NewAccount {
            channel: "telegram".into(),
            name: "support".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id;
    users::add(
        &store,
        NewUser {
            name: "alice".into(),
            role: Role::Agent,
            password: "correct horse battery".into(),
            grants: vec![account],
        },
    )
    .await
    .unwrap();
    let token = credentials::create_token(&store, "alice", "test", None)
        .await
        .unwrap()
        .0;
    let state = Service::open(store, certs.clone(), Default::default())
        .await
        .unwrap();
    let app = router(state).route("/test/big", axum::routing::get(|| async { vec![0u8; 16 << 20] }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(lanbox::server::run_with(listener, certs, app, limits, async {
        let _ = stopped.await;
    }));
    Served {
        _dir: dir,
        addr,
        fp,
        token,
        account,
        _stop: stop,
    }
}

impl Served {
    /// A TCP connection from the loopback address `from`, optionally with a small receive
    /// buffer (so an unread answer backs up fast).
    async fn tcp(&self, from: [u8; 4], recv_buffer: Option<u32>) -> TcpStream {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(SocketAddr::from((Ipv4Addr::from(from), 0))).unwrap();
        if let Some(n) = recv_buffer {
            sock.set_recv_buffer_size(n).unwrap();
        }
        sock.connect(self.addr).await.unwrap()
    }

    fn connector(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
        let mut cfg = lanbox::system::tls::client_config(Some(&self.fp), &[&rustls::version::TLS13]);
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }

    async fn tls_over(&self, tcp: TcpStream, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
        self.connector(alpn)
            .connect(ServerName::try_from(HOST).unwrap(), tcp)
            .await
    }

    async fn tls(&self, from: [u8; 4]) -> TlsStream<TcpStream> {
        let tcp = self.tcp(from, None).await;
        self.tls_over(tcp, &[]).await.unwrap()
    }

    /// One request on a fresh connection from `from`; the whole answer.
    async fn get(&self, from: [u8; 4], path: &str) -> String {
        let mut s = self.tls(from).await;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let (bytes, _) = read_until_closed(&mut s).await;
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// An upload's request head, declaring far more body than will ever come.
    fn upload_head(&self) -> String {
        format!(
            "POST /api/v1/attachments?account={} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/pdf\r\nContent-Length: 1000000\r\n\r\n",
            self.account, self.token
        )
    }

    /// A client on `from` with its own pooled keep-alive connection.
    fn client(&self, from: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(lanbox::system::tls::client_config(
                Some(&self.fp),
                &[&rustls::version::TLS13],
            ))
            .resolve(HOST, self.addr)
            .local_address(std::net::IpAddr::from(from))
            .build()
            .unwrap()
    }
}

/// Reads until the server closes (EOF, or an error such as a reset or a TLS close without
/// `close_notify`); what came, and how long it took. Fails after [`GUARD`].
async fn read_until_closed<S: AsyncRead + Unpin>(s: &mut S) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(GUARD, async {
        while let Ok(n) = s.read(&mut buf).await
            && n > 0
        {
            all.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the server closes the connection");
    (all, started.elapsed())
}

/// Reads one answer with a `content-length` body, leaving the connection open.
async fn read_answer<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed mid-answer");
        all.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&all).into_owned();
        if let Some(at) = text.find("\r\n\r\n") {
            let len: usize = text[..at]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse().ok())
                .expect("a content-length");
            if all.len() >= at + 4 + len {
                return text;
            }
        }
    }
}

/// Writes one byte every 300 ms until the server stops taking them.
fn trickle<W: AsyncWrite + Unpin + Send + 'static>(mut w: W, byte: u8) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(300));
        loop {
            every.tick().await;
            if w.write_all(&[byte]).await.is_err() || w.flush().await.is_err() {
                return;
            }
        }
    })
}

fn refused(answer: &str) -> bool {
    answer.starts_with("HTTP/1.1 503")
        && answer.contains(r#""code":"too_many_connections""#)
        && answer.to_ascii_lowercase().contains("connection: close")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_trickling_clients_over_the_caps_are_refused_and_a_normal_client_is_served() {
    // Long timeouts: here the attackers stay, and only the caps protect the box.
    let s = start(Limits {
        max_connections: 7,
        max_per_client: 3,
        ..Limits::for_fd_limit(16384)
    })
    .await;
    let (idler, trickler) = ([127, 0, 0, 2], [127, 0, 0, 3]);
    // 127.0.0.2 holds three idle connections, 127.0.0.3 three trickled uploads.
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(s.tls(idler).await);
    }
    let mut trickled = Vec::new();
    for _ in 0..3 {
        let mut t = s.tls(trickler).await;
        t.write_all(s.upload_head().as_bytes()).await.unwrap();
        t.write_all(b"%").await.unwrap();
        let (r, w) = tokio::io::split(t);
        trickled.push((r, trickle(w, b'x')));
    }
    // Each one more is refused at once, clearly.
    for from in [idler, trickler] {
        let answer = s.get(from, "/api/v1/health").await;
        assert!(refused(&answer), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("retry-after: 5"), "{answer}");
    }
    // The normal client is served, and keeps its connection.
    let normal = s.client(NORMAL);
    let health = normal
        .get(format!("https://{HOST}:{}/api/v1/health", s.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Now the total cap (7) is reached: a newcomer is refused, the normal client still served.
    let answer = s.get([127, 0, 0, 4], "/api/v1/health").await;
    assert!(refused(&answer), "{answer}");
    let health = normal
        .get(format!("https://{HOST}:{}/api/v1/health", s.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // The attackers were held, not dropped, all along.
    for (_, writer) in &trickled {
        assert!(!writer.is_finished(), "the trickled uploads are still open");
    }
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_trickling_and_stalled_connections_are_closed_and_the_box_answers_again() {
    let limits = Limits {
        max_connections: 6,
        max_per_client: 6,
        handshake_timeout: Duration::from_secs(1),
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(2),
        min_body_bytes: 1024,
        body_window: Duration::from_secs(1),
        ..Limits::for_fd_limit(16384)
    };
    let s = start(limits.clone()).await;
    let from = [127, 0, 0, 2];

    // 1. TCP only, no TLS handshake.
    let mut bare = s.tcp(from, None).await;
    // 2. TLS, then nothing.
    let mut silent = s.tls(from).await;
    // 3. One request, then idle on the kept-alive connection.
    let mut kept = s.tls(from).await;
    kept.write_all(format!("GET /api/v1/health HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert!(read_answer(&mut kept).await.starts_with("HTTP/1.1 200"));
    // 4. Request headers, one byte every 300 ms.
    let t = s.tls(from).await;
    let (mut slow_head, w) = tokio::io::split(t);
    let mut w = w;
    w.write_all(format!("GET /api/v1/health HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    let _head_writer = trickle(w, b'a');
    // 5. An upload (the route without an overall deadline), one byte every 300 ms: 1 byte
    //    every 4 s in the issue; as slow per window here, but faster than the idle timeout.
    let mut t = s.tls(from).await;
    t.write_all(s.upload_head().as_bytes()).await.unwrap();
    let (mut slow_body, w) = tokio::io::split(t);
    let _body_writer = trickle(w, b'x');
    // 6. Neither reads its 16 MiB answer nor stops sending: no byte moves either way.
    let tcp = s.tcp(from, Some(4096)).await;
    let stalled = s.tls_over(tcp, &[]).await.unwrap();
    let (_stalled_r, mut stalled_w) = tokio::io::split(stalled);
    stalled_w
        .write_all(format!("GET /test/big HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let stalled_writer = tokio::spawn(async move {
        let junk = vec![b'j'; 1 << 20];
        let started = Instant::now();
        loop {
            if stalled_w.write_all(&junk).await.is_err() {
                return started.elapsed();
            }
        }
    });

    // The box is full (6 of 6): the normal client is refused, clearly.
    let answer = s.get(NORMAL, "/api/v1/health").await;
    assert!(refused(&answer), "{answer}");

    // Every one of them is closed by the server, each by its own limit.
    let (_, took) = read_until_closed(&mut bare).await;
    assert!(took < GUARD, "no handshake: {took:?}");
    let (got, _) = read_until_closed(&mut silent).await;
    assert!(got.is_empty());
    let (got, _) = read_until_closed(&mut kept).await;
    assert!(got.is_empty(), "closed while idle between requests");
    read_until_closed(&mut slow_head).await;
    let (got, _) = read_until_closed(&mut slow_body).await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 400"), "the upload is aborted: {got}");
    let took = tokio::time::timeout(GUARD, stalled_writer)
        .await
        .expect("the stalled connection is closed")
        .unwrap();
    assert!(
        took >= limits.idle_timeout,
        "closed for idling, not before: {took:?}"
    );

    // And the normal client is served again.
    let health = s.get(NORMAL, "/api/v1/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_refused_consistently() {
    let s = start(Limits::for_fd_limit(16384)).await;
    // ALPN offers HTTP/1.1 only: a client that wants h2 alone is refused in the handshake,
    // one that offers both gets HTTP/1.1.
    let tcp = s.tcp(NORMAL, None).await;
    assert!(
        s.tls_over(tcp, &[b"h2"]).await.is_err(),
        "h2 alone is not negotiated"
    );
    let tcp = s.tcp(NORMAL, None).await;
    let both = s.tls_over(tcp, &[b"h2", b"http/1.1"]).await.unwrap();
    assert_eq!(both.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));

    // HTTP/2 by prior knowledge (no ALPN): the server's preface (empty SETTINGS) and GOAWAY
    // with HTTP_1_1_REQUIRED, then the connection closes. Before, it was served as HTTP/2.
    let mut h2 = s.tls(NORMAL).await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    h2.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).await.unwrap();
    let (got, _) = read_until_closed(&mut h2).await;
    assert_eq!(
        got,
        [
            0, 0, 0, 4, 0, 0, 0, 0, 0, // SETTINGS
            0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xd, // GOAWAY HTTP_1_1_REQUIRED
        ]
    );

    // HTTP/1.1 on the same server is unaffected.
    let health = s.get(NORMAL, "/api/v1/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
}
