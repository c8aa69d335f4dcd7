//! The HTTPS server on a real socket: TLS 1.3 only, the self-signed certificate's fingerprint
//! is what the client sees, HSTS, the JSON error shape, plain HTTP redirecting, graceful
//! shutdown; and the `lanbox serve` binary end to end.

mod support;

use std::process::Stdio;

use lanbox::api::router;
use lanbox::service::Service;
use lanbox::system::tls::{CertSource, CertStore};
use rustls::pki_types::ServerName;
use support::binary::{self, Serving};
use support::tls::{HOST, connector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, fp: &str, path: &str) -> std::io::Result<String> {
    support::tls::get(addr, fp, None, path).await
}

#[tokio::test]
async fn tls13_only_fingerprint_hsts_and_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = lanbox::store::Store::open(dir.path(), &Default::default()).unwrap();
    let certs = CertStore::load(CertSource::SelfSigned {
        dir: dir.path().join("tls"),
        names: lanbox::system::tls::default_names(HOST),
    })
    .unwrap();
    let fp = certs.fingerprint();
    let app = router(
        Service::open(store, certs.clone(), Default::default())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lanbox::server::run(listener, certs, app, async {
        let _ = stopped.await;
    }));

    let health = get(addr, &fp, "/api/v1/health").await.unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(
        health
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000")
    );
    assert!(health.contains(&fp), "the API shows the fingerprint");

    // The post-update health probe (lanbox update mark-good) sees a healthy server.
    lanbox::system::ota::check_health(addr).await.unwrap();
    assert!(matches!(
        lanbox::system::ota::check_health("10.1.2.3:443".parse().unwrap()).await,
        Err(lanbox::system::ota::OtaError::NotLoopback(_))
    ));

    let missing = get(addr, &fp, "/api/v1/nope").await.unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert!(
        missing.contains(r#"{"error":{"code":"not_found","message":"not found"}}"#),
        "{missing}"
    );

    // A TLS 1.2-only client is refused.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls12 = connector(&fp, &[&rustls::version::TLS12])
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await;
    assert!(tls12.is_err(), "TLS 1.2 must be refused");

    // A different certificate (fingerprint) is refused by the pinned client.
    assert!(get(addr, "00:11", "/").await.is_err());

    stop.send(()).unwrap();
    let stopped_at = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
    assert!(
        stopped_at.elapsed() < std::time::Duration::from_secs(5),
        "nothing held shutdown"
    );
    assert!(matches!(
        lanbox::system::ota::check_health(addr).await,
        Err(lanbox::system::ota::OtaError::Unhealthy { .. })
    ));
}

#[tokio::test]
async fn plain_http_only_redirects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lanbox::server::redirect(listener, 8443, std::future::pending()));
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /inbox?x=1 HTTP/1.1\r\nHost: lanbox.local:80\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
    assert!(
        out.to_ascii_lowercase()
            .contains("location: https://lanbox.local:8443/inbox?x=1"),
        "{out}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn serve_binary_prints_fingerprint_answers_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(binary::command(&["serve"], dir.path()).stderr(Stdio::null()));
    let health = get(serving.addr, &serving.fingerprint, "/api/v1/health")
        .await
        .unwrap();
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(serving.stop().success());
}

// Regression: a connection that had sent nothing when the server stopped was kept, waiting for
// its first request, for the whole drain timeout (10 s), and then answered that request with
// the stopped server's router. A browser's (or reqwest's) spare pooled connection to a sealed
// box's unlock page was answered `503 sealed` after the unlock, by the page already replaced.
#[tokio::test]
async fn a_silent_connection_is_closed_at_shutdown_not_served_later() {
    let dir = tempfile::tempdir().unwrap();
    let certs = CertStore::load(CertSource::SelfSigned {
        dir: dir.path().join("tls"),
        names: lanbox::system::tls::default_names(HOST),
    })
    .unwrap();
    let fp = certs.fingerprint();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "old router" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(lanbox::server::run(listener, certs, app, async {
        let _ = stopped.await;
    }));
    // A connection used once, so the server has certainly taken it past its handshake...
    let mut used = support::tls::connect(addr, &fp).await.unwrap();
    used.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = used.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("old router"));
    // ... and a spare one, handshaken, that sends nothing yet.
    let mut spare = support::tls::connect(addr, &fp).await.unwrap();

    stop.send(()).unwrap();
    let stopped_at = std::time::Instant::now();
    tokio::time::timeout(std::time::Duration::from_secs(15), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        stopped_at.elapsed() < std::time::Duration::from_secs(5),
        "a silent connection held the drain for {:?}",
        stopped_at.elapsed()
    );
    // The spare connection is closed; a request on it is never answered by the old router.
    let _ = spare.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), spare.read_to_end(&mut got)).await;
    assert!(
        !String::from_utf8_lossy(&got).contains("old router"),
        "the stopped server answered a request on a spare connection"
    );
}
