//! The HTTPS server loop: `run(listener, tls, app, shutdown)`. It takes an already-bound
//! listener (tests bind port 0, systemd passes sockets, `main` binds the configured address),
//! serves HTTP/1.1 only (what TLS offers by ALPN), and on shutdown stops accepting, lets open
//! requests finish (bounded), then returns.
//!
//! Every connection is bounded ([`Limits`]), so slow or idle clients cannot use up the
//! process's file descriptors:
//! - connections are capped in total and per client (an IPv4 address, an IPv6 /64); one over a
//!   cap is answered `503 too_many_connections` and closed (through a few refusal slots of their
//!   own; past those it is closed at once), and refusals are logged at most every 10 s;
//! - the TLS handshake, the first request's headers and the wait for each next request on a
//!   kept-alive connection have deadlines;
//! - a connection that moves no byte either way for [`Limits::idle_timeout`] while it waits on
//!   the client is closed, upgraded ones (the WebSocket) too: their heartbeats keep them moving;
//! - a request body must keep arriving ([`Limits::min_body_bytes`] per [`Limits::body_window`]
//!   of waiting on the client), which bounds the attachment upload that has no overall deadline;
//! - an HTTP/2 client that speaks by prior knowledge gets HTTP/2's own refusal (`GOAWAY` with
//!   `HTTP_1_1_REQUIRED`), not an HTTP/2 server without limits.
//!
//! [`redirect`] serves plain HTTP that only redirects to HTTPS.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::{Request, StatusCode, Uri, header};
use axum::response::IntoResponse;
use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::system::tls::CertStore;

/// Refusals answered at once with a `503`; past these a refused connection is just closed.
/// The first byte of a TLS handshake record: anything else on the HTTPS port is not TLS.
const TLS_HANDSHAKE: u8 = 0x16;
const REFUSAL_SLOTS: usize = 16;
/// How long answering one refusal may take (handshake, answer, close).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);
/// File descriptors kept for everything but client connections: listeners, the store, the
/// runtime, mDNS, logs, the Bot API and S3 clients' pools, and the refusal slots.
const RESERVED_FDS: u64 = 64 + REFUSAL_SLOTS as u64;
/// At most one refusal log line in this long (with the count since the last one).
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// What every connection is held to. [`Limits::default`] derives the caps from the process's
/// file-descriptor limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Client connections open at once; more are refused.
    pub max_connections: u32,
    /// Connections open at once from one client (an IPv4 address, an IPv6 /64).
    pub max_per_client: u32,
    /// Time to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time to receive a request's headers, counted from when the server waits for them: on a
    /// kept-alive connection this is also how long it may sit idle between requests.
    pub header_timeout: Duration,
    /// A connection (upgraded or not) that moves no byte either way for this long while it
    /// waits on the client is closed. Longer than the WebSocket heartbeat (30 s).
    pub idle_timeout: Duration,
    /// A request body must bring at least this many bytes in every `body_window` the server
    /// spends waiting for it; slower, it is aborted (and the connection with it).
    pub min_body_bytes: u32,
    pub body_window: Duration,
    /// How long shutdown waits for open requests.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    /// Caps derived from `RLIMIT_NOFILE` (the packaged unit sets 16384, so 1024 connections).
    fn default() -> Self {
        Limits::for_fd_limit(fd_limit().unwrap_or(1024))
    }
}

impl Limits {
    /// The defaults for a process allowed `nofile` open files: [`RESERVED_FDS`] are kept for
    /// the rest of lanbox, and half of what remains goes to connections, since a connection
    /// may hold a file open too (an upload being written, an attachment being sent). At most
    /// 1024 connections, at least 16; one client gets at most half of them, and at most 64.
    pub fn for_fd_limit(nofile: u64) -> Limits {
        let total = (nofile.saturating_sub(RESERVED_FDS) / 2).clamp(16, 1024) as u32;
        Limits {
            max_connections: total,
            max_per_client: (total / 2).min(64),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
            min_body_bytes: 1024,
            body_window: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// The soft `RLIMIT_NOFILE`, when there is one.
#[cfg(unix)]
#[allow(clippy::useless_conversion)] // `rlim_t` is 32 bits on 32-bit ARM with glibc.
fn fd_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then(|| u64::from(r.rlim_cur))
}

#[cfg(not(unix))]
fn fd_limit() -> Option<u64> {
    None
}

/// Serves with [`Limits::default`].
pub async fn run(
    listener: TcpListener,
    tls: Arc<CertStore>,
    app: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    run_with(listener, tls, app, Limits::default(), shutdown).await
}

pub async fn run_with(
    listener: TcpListener,
    tls: Arc<CertStore>,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let config = tls.server_config().map_err(io::Error::other)?;
    let acceptor = TlsAcceptor::from(config);
    let limits = Arc::new(limits);
    let gate = Gate::new(limits.max_connections, limits.max_per_client);
    let refusing = Arc::new(Semaphore::new(REFUSAL_SLOTS));
    let mut refusals = RefusalLog::default();
    // Each connection past its handshake holds a receiver: shutdown sends `true`, then waits
    // (bounded) for every receiver to be dropped.
    let stop = Arc::new(watch::channel(false).0);
    // Plain HTTP sent to this port (`http://box:8443/`) gets a redirect, not an empty reply.
    let plain = redirect_app(listener.local_addr()?.port());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let permit = match gate.admit(peer.ip()) {
            Ok(p) => p,
            Err(refused) => {
                let answered = match refusing.clone().try_acquire_owned() {
                    Ok(slot) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, refuse(acceptor, tcp)).await;
                            drop(slot);
                        });
                        true
                    }
                    Err(_) => false,
                };
                refusals.note(peer.ip(), refused, answered);
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        let limits = limits.clone();
        let stop = stop.clone();
        let plain = plain.clone();
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits.handshake_timeout, tcp.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] != TLS_HANDSHAKE && first[0].is_ascii_alphabetic() => {
                    let io = Conn::new(tcp, limits.idle_timeout, permit);
                    serve_connection(io, peer, plain, &limits, stop.subscribe()).await;
                    return;
                }
                Ok(Ok(1)) => {}
                _ => return,
            }
            let tls = match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "tls handshake timed out");
                    return;
                }
            };
            let io = Conn::new(tls, limits.idle_timeout, permit);
            serve_connection(io, peer, app, &limits, stop.subscribe()).await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let _ = tokio::time::timeout(limits.drain_timeout, stop.closed()).await;
    Ok(())
}

/// Serves one connection after its handshake: HTTP/1.1 (with upgrades), or the refusal of
/// HTTP/2.
async fn serve_connection<T>(
    mut io: Conn<T>,
    peer: std::net::SocketAddr,
    app: Router,
    limits: &Limits,
    mut stop: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match tokio::time::timeout(limits.header_timeout, io.sniff()).await {
        Ok(Ok(First::Http1)) => {}
        Ok(Ok(First::Http2)) => {
            tracing::debug!(%peer, "HTTP/2 by prior knowledge refused");
            let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer_and_close(&mut io, &H2_REFUSAL)).await;
            return;
        }
        Ok(Ok(First::Closed)) | Ok(Err(_)) => return,
        Err(_) => {
            tracing::debug!(%peer, "no request before the header timeout");
            return;
        }
    }
    let floor = Floor {
        min_bytes: u64::from(limits.min_body_bytes.max(1)),
        window: limits.body_window,
    };
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let req = req.map(|body| axum::body::Body::new(MinRate::new(body, floor, peer)));
        tower::Service::call(&mut app.clone(), req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // A client that trickles its request headers, or idles between requests, is cut off.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// The per-client and total connection counts. A std mutex, not a tokio one: nothing awaits
/// while it is held, and it is held for a map lookup.
struct Gate {
    max_total: u32,
    max_per_client: u32,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    open: u32,
    /// Only clients with an open connection: at most `max_total` entries.
    per_client: HashMap<IpAddr, u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Total,
    PerClient,
}

impl Refused {
    fn as_str(self) -> &'static str {
        match self {
            Refused::Total => "total connection limit",
            Refused::PerClient => "per-client connection limit",
        }
    }
}

impl Gate {
    fn new(max_total: u32, max_per_client: u32) -> Arc<Gate> {
        Arc::new(Gate {
            max_total: max_total.max(1),
            max_per_client: max_per_client.max(1),
            counts: Mutex::new(Counts::default()),
        })
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refused> {
        let client = client_key(ip);
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if c.open >= self.max_total {
            return Err(Refused::Total);
        }
        let n = c.per_client.entry(client).or_insert(0);
        if *n >= self.max_per_client {
            return Err(Refused::PerClient);
        }
        *n += 1;
        c.open += 1;
        Ok(Permit {
            gate: self.clone(),
            client,
        })
    }
}

/// One admitted connection; dropping it (with the connection's IO, upgraded or not) frees its
/// place.
struct Permit {
    gate: Arc<Gate>,
    client: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut c = self.gate.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.open = c.open.saturating_sub(1);
        if let Some(n) = c.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                c.per_client.remove(&self.client);
            }
        }
    }
}

/// What counts as one client: an IPv4 address (also when mapped into IPv6), or an IPv6 /64,
/// since one host usually holds a whole /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        v4 => v4,
    }
}

/// Refusals logged at most every [`REFUSAL_LOG_EVERY`], with how many there were.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    count: u64,
}

impl RefusalLog {
    fn note(&mut self, ip: IpAddr, why: Refused, answered: bool) {
        self.count += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_EVERY)
        {
            tracing::warn!(
                client = %ip,
                reason = why.as_str(),
                answered,
                refused = self.count,
                "connection refused: too many connections"
            );
            self.last = Some(now);
            self.count = 0;
        }
    }
}

const REFUSAL_BODY: &str =
    r#"{"error":{"code":"too_many_connections","message":"too many connections; try again shortly"}}"#;

/// Completes the handshake of a connection over a cap and answers `503`.
async fn refuse(acceptor: TlsAcceptor, tcp: tokio::net::TcpStream) {
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 5\r\nconnection: close\r\n\r\n{REFUSAL_BODY}",
        REFUSAL_BODY.len()
    );
    answer_and_close(&mut tls, answer.as_bytes()).await;
}

/// Writes `answer`, closes the sending side, then reads what the client still sends until it
/// closes too, so the answer is not lost to a reset. Callers bound the time.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, answer: &[u8]) {
    if s.write_all(answer).await.is_err() || s.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 1024];
    while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
}

/// HTTP/2's connection preface, which a client speaking it by prior knowledge sends first.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2's refusal: the server's preface (an empty SETTINGS frame), then GOAWAY with last
/// stream 0 and error HTTP_1_1_REQUIRED (0xd), RFC 9113 sections 3.4, 6.8 and 7.
const H2_REFUSAL: [u8; 26] = [
    0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS, length 0, stream 0
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY, length 8, stream 0
    0, 0, 0, 0, // last stream id
    0, 0, 0, 0xd, // HTTP_1_1_REQUIRED
];

enum First {
    Http1,
    Http2,
    Closed,
}

/// A client connection's IO: the bytes read ahead to tell HTTP/2 from HTTP/1.1 are handed out
/// first, every byte moved either way counts as activity, and a read, write, flush or close
/// that waits on the client after `idle` without activity fails with `TimedOut`, which ends
/// the connection. It holds the connection's [`Permit`].
struct Conn<T> {
    io: T,
    ahead: Bytes,
    idle: Duration,
    last: Instant,
    timer: Pin<Box<Sleep>>,
    _permit: Permit,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Conn<T> {
    fn new(io: T, idle: Duration, permit: Permit) -> Conn<T> {
        let last = Instant::now();
        Conn {
            io,
            ahead: Bytes::new(),
            idle,
            last,
            timer: Box::pin(tokio::time::sleep_until(last + idle)),
            _permit: permit,
        }
    }

    /// Reads until the first bytes either are or cannot be HTTP/2's preface.
    async fn sniff(&mut self) -> io::Result<First> {
        let mut buf = Vec::with_capacity(H2_PREFACE.len());
        let mut chunk = [0u8; 1024];
        loop {
            let n = self.read(&mut chunk).await?;
            if n == 0 {
                return Ok(First::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
            let k = buf.len().min(H2_PREFACE.len());
            let first = if buf[..k] != H2_PREFACE[..k] {
                Some(First::Http1)
            } else if k == H2_PREFACE.len() {
                Some(First::Http2)
            } else {
                None
            };
            if let Some(first) = first {
                self.ahead = Bytes::from(buf);
                return Ok(first);
            }
        }
    }

    fn active(&mut self) {
        self.last = Instant::now();
    }

    /// Called when the client keeps the connection waiting.
    fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.last + self.idle;
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "idle connection")),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Conn<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ahead.is_empty() {
            let n = this.ahead.len().min(buf.remaining());
            buf.put_slice(&this.ahead[..n]);
            this.ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    this.active();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx).map(Err),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Conn<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.active();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    this.active();
                }
                Poll::Ready(r)
            }
            Poll::Pending => this.waiting(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.waiting(cx).map(Err),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Ready(r) => Poll::Ready(r),
            Poll::Pending => this.waiting(cx).map(Err),
        }
    }
}

/// The minimum rate a request body must arrive at.
#[derive(Debug, Clone, Copy)]
struct Floor {
    min_bytes: u64,
    window: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
struct TooSlow;

/// A request body held to a [`Floor`]. Only time spent waiting on the client counts (not time
/// the handler spends elsewhere before it asks for more): once a window's worth of waiting
/// brought fewer than `min_bytes`, the body fails with [`TooSlow`]; the handler's error answer
/// then closes the connection, since the rest of the body is never read.
struct MinRate {
    inner: Incoming,
    floor: Floor,
    peer: std::net::SocketAddr,
    /// Bytes in the current window.
    got: u64,
    /// Waiting in the current window, before `waiting_since`.
    waited: Duration,
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl MinRate {
    fn new(inner: Incoming, floor: Floor, peer: std::net::SocketAddr) -> MinRate {
        MinRate {
            inner,
            floor,
            peer,
            got: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
            failed: false,
        }
    }
}

impl Body for MinRate {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Some(Err(TooSlow.into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame
                    && let Some(d) = f.data_ref()
                {
                    this.got += d.len() as u64;
                }
                if this.got >= this.floor.min_bytes {
                    this.got = 0;
                    this.waited = Duration::ZERO;
                }
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let since = *this.waiting_since.get_or_insert_with(Instant::now);
                let deadline = since + this.floor.window.saturating_sub(this.waited);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                tracing::info!(peer = %this.peer, "request body too slow; aborted");
                this.failed = true;
                Poll::Ready(Some(Err(TooSlow.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.failed && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Plain HTTP: every request is redirected to the same path over HTTPS on `https_port`.
pub async fn redirect(
    listener: TcpListener,
    https_port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, redirect_app(https_port))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Redirects every request to the same host and path over HTTPS on `https_port`.
fn redirect_app(https_port: u16) -> Router {
    Router::new().fallback(move |headers: axum::http::HeaderMap, uri: Uri| async move {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name).to_string())
            .filter(|h| {
                !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(c))
            })
            .unwrap_or_else(|| "lanbox.local".into());
        let port = if https_port == 443 {
            String::new()
        } else {
            format!(":{https_port}")
        };
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, format!("https://{host}{port}{path}"))],
        )
            .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_fd_limit() {
        // The issue's box: 256 descriptors. Connections stay well below them.
        let l = Limits::for_fd_limit(256);
        assert_eq!((l.max_connections, l.max_per_client), (88, 44));
        let l = Limits::for_fd_limit(1024);
        assert_eq!((l.max_connections, l.max_per_client), (472, 64));
        let l = Limits::for_fd_limit(16384);
        assert_eq!((l.max_connections, l.max_per_client), (1024, 64));
        let l = Limits::for_fd_limit(20);
        assert_eq!((l.max_connections, l.max_per_client), (16, 8));
        assert!(l.idle_timeout > crate::live::LiveOptions::default().heartbeat);
    }

    #[test]
    fn caps_per_client_and_in_total() {
        let gate = Gate::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
        let p1 = gate.admit(a).unwrap();
        let _p2 = gate.admit(a).unwrap();
        assert_eq!(gate.admit(a).err(), Some(Refused::PerClient));
        let _p3 = gate.admit(b).unwrap();
        assert_eq!(
            gate.admit("10.0.0.3".parse().unwrap()).err(),
            Some(Refused::Total)
        );
        drop(p1);
        let _p4 = gate.admit("10.0.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            gate.admit(b).err(),
            Some(Refused::Total),
            "a mapped IPv4 address is that address"
        );
        // One IPv6 /64 is one client.
        let gate = Gate::new(8, 1);
        let _v6 = gate.admit("2001:db8::1".parse().unwrap()).unwrap();
        assert_eq!(
            gate.admit("2001:db8::2:3".parse().unwrap()).err(),
            Some(Refused::PerClient)
        );
        let _other = gate.admit("2001:db8:0:1::1".parse().unwrap()).unwrap();
        drop((_v6, _other));
        let c = gate.counts.lock().unwrap();
        assert_eq!(
            (c.open, c.per_client.len()),
            (0, 0),
            "no entry outlives its connections"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_times_out_and_activity_keeps_it() {
        // Real time (the crate has no paused test clock): an idle limit of 1.5 s, and a client
        // that writes every 0.5 s for 2.5 s, so it outlives the limit only by being active.
        let gate = Gate::new(2, 2);
        let idle = Duration::from_millis(1500);
        let (client, server) = tokio::io::duplex(64);
        let mut conn = Conn::new(server, idle, gate.admit([127, 0, 0, 1].into()).unwrap());
        let (client_r, mut client_w) = tokio::io::split(client);
        let started = Instant::now();
        let talk = async {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                client_w.write_all(b"x").await.unwrap();
            }
        };
        let listen = async {
            let mut buf = [0u8; 8];
            for _ in 0..5 {
                assert_eq!(conn.read(&mut buf).await.unwrap(), 1);
            }
            let last = Instant::now();
            let e = conn.read(&mut buf).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::TimedOut);
            last.elapsed()
        };
        let ((), quiet) = tokio::join!(talk, listen);
        assert!(started.elapsed() > idle, "activity kept it open past the limit");
        assert!(quiet >= idle && quiet < idle * 4, "{quiet:?}");

        // A write the client never reads times out too.
        let (client, server) = tokio::io::duplex(64);
        let mut conn = Conn::new(
            server,
            Duration::from_millis(200),
            gate.admit([127, 0, 0, 1].into()).unwrap(),
        );
        let big = vec![0u8; 1024];
        let e = loop {
            if let Err(e) = conn.write(&big).await {
                break e;
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        drop((client, client_r));
    }
}
