//! One connection's byte stream: the idle watchdog ([`Conn`]), the first bytes sniffed for
//! HTTP/2 by prior knowledge, and the rate floor of request bodies ([`MinRate`]).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::limits::Permit;

/// HTTP/2's connection preface, which a client speaking it by prior knowledge sends first.
pub(super) const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2's refusal: the server's preface (an empty SETTINGS frame), then GOAWAY with last
/// stream 0 and error HTTP_1_1_REQUIRED (0xd), RFC 9113 sections 3.4, 6.8 and 7.
pub(super) const H2_REFUSAL: [u8; 26] = [
    0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS, length 0, stream 0
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY, length 8, stream 0
    0, 0, 0, 0, // last stream id
    0, 0, 0, 0xd, // HTTP_1_1_REQUIRED
];

pub(super) enum First {
    Http1,
    Http2,
    Closed,
}

/// A client connection's IO: the bytes read ahead to tell HTTP/2 from HTTP/1.1 are handed out
/// first, every byte moved either way counts as activity, and a read, write, flush or close
/// that waits on the client after `idle` without activity fails with `TimedOut`, which ends
/// the connection. It holds the connection's [`Permit`].
pub(super) struct Conn<T> {
    pub(super) io: T,
    pub(super) ahead: Bytes,
    pub(super) idle: Duration,
    pub(super) last: Instant,
    pub(super) timer: Pin<Box<Sleep>>,
    pub(super) _permit: Permit,
}

impl<T: AsyncRead + AsyncWrite + Unpin> Conn<T> {
    pub(super) fn new(io: T, idle: Duration, permit: Permit) -> Conn<T> {
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
    pub(super) async fn sniff(&mut self) -> io::Result<First> {
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

    pub(super) fn active(&mut self) {
        self.last = Instant::now();
    }

    /// Called when the client keeps the connection waiting.
    pub(super) fn waiting(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
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
pub(super) struct Floor {
    pub(super) min_bytes: u64,
    pub(super) window: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub(super) struct TooSlow;

/// A request body held to a [`Floor`]. Only time spent waiting on the client counts (not time
/// the handler spends elsewhere before it asks for more): once a window's worth of waiting
/// brought fewer than `min_bytes`, the body fails with [`TooSlow`]; the handler's error answer
/// then closes the connection, since the rest of the body is never read.
pub(super) struct MinRate {
    pub(super) inner: Incoming,
    pub(super) floor: Floor,
    pub(super) peer: std::net::SocketAddr,
    /// Bytes in the current window.
    pub(super) got: u64,
    /// Waiting in the current window, before `waiting_since`.
    pub(super) waited: Duration,
    pub(super) waiting_since: Option<Instant>,
    pub(super) timer: Option<Pin<Box<Sleep>>>,
    pub(super) failed: bool,
}

impl MinRate {
    pub(super) fn new(inner: Incoming, floor: Floor, peer: std::net::SocketAddr) -> MinRate {
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
