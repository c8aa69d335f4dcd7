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
//! [`redirect`] serves plain HTTP that only redirects to HTTPS; plain HTTP sent to the HTTPS
//! port is redirected the same way.
//!
//! - [`limits`]: the caps and timeouts, and the gate that counts connections per client.
//! - [`conn`]: a connection's idle watchdog, HTTP/2 sniffing, the request body's rate floor.

mod conn;
mod limits;

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Request, StatusCode, Uri, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::system::tls::CertStore;

use conn::{Conn, First, Floor, H2_REFUSAL, MinRate};
pub use limits::Limits;
use limits::{Gate, RefusalLog};

/// The first byte of a TLS handshake record: anything else on the HTTPS port is not TLS.
const TLS_HANDSHAKE: u8 = 0x16;
/// Refusals answered at once with a `503`; past these a refused connection is just closed.
pub(super) const REFUSAL_SLOTS: usize = 16;
/// How long answering one refusal may take (handshake, answer, close).
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(2);

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
    // A connection that has sent nothing yet when the server stops is closed at once rather
    // than kept until its first request: that request belongs to whatever serves this socket
    // next (a client's spare pooled connection to the unlock page was answered `sealed` by it
    // after the unlock, and held the drain for its whole timeout).
    let first = tokio::select! {
        first = tokio::time::timeout(limits.header_timeout, io.sniff()) => first,
        _ = stop.wait_for(|s| *s) => return,
    };
    match first {
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
        let mut req = req.map(|body| axum::body::Body::new(MinRate::new(body, floor, peer)));
        // The client's address, for the login throttle (`api::session`).
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
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
    use std::net::IpAddr;

    use tokio::time::Instant;

    use super::conn::*;
    use super::limits::*;
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
