//! Clients that trust one certificate only, pinned by its SHA-256 fingerprint (what the box
//! prints at start and shows in the API), for servers the tests reach by address: a `lanbox
//! serve` process, or `lanbox::server::run` on a listener.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The name the box's self-signed certificate carries (and clients ask for).
pub const HOST: &str = "lanbox.local";

pub type Stream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS 1.3 client configuration that accepts only the certificate with fingerprint `fp`.
pub fn config(fp: &str) -> rustls::ClientConfig {
    lanbox::system::tls::client_config(Some(fp), &[&rustls::version::TLS13])
}

/// A connector pinned to `fp`, offering only `versions`.
pub fn connector(
    fp: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(Arc::new(lanbox::system::tls::client_config(Some(fp), versions)))
}

/// A TLS 1.3 stream to `addr` (as [`HOST`]), pinned to `fp`.
pub async fn connect(addr: SocketAddr, fp: &str) -> std::io::Result<Stream> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    connector(fp, &[&rustls::version::TLS13])
        .connect(ServerName::try_from(HOST).unwrap(), tcp)
        .await
}

/// `GET path` over HTTP/1.1 with `Connection: close` (and a bearer token if given): the whole
/// response, status line and headers included.
pub async fn get(addr: SocketAddr, fp: &str, token: Option<&str>, path: &str) -> std::io::Result<String> {
    let mut tls = connect(addr, fp).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}
