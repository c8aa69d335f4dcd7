//! The simulator's accept loop: plain HTTP/1.1, one task per connection, and a per-connection
//! kill switch so [`super::Fault::Drop`] can close the TCP connection without an answer (which
//! a router cannot do by itself).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tower::ServiceExt;

use super::State;
use super::reply::ConnKill;

const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn run(
    listener: TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = super::methods::router(state.clone());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let kill = ConnKill(Arc::new(Notify::new()));
        let service = app.clone().map_request({
            let kill = kill.clone();
            move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(kill.clone());
                req
            }
        });
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let builder = Builder::new(TokioExecutor::new());
            let conn =
                builder.serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(service));
            tokio::select! {
                _ = watcher.watch(conn.into_owned()) => {}
                // Dropping the connection future closes the socket, mid-request.
                _ = kill.0.notified() => {}
            }
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await;
    Ok(())
}
