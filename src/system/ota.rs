//! Over-the-air updates through RAUC: after an update boots the new slot, systemd starts
//! `lanbox-mark-good.service`, which runs `lanbox update mark-good`. That asks the local
//! service for its health over HTTPS and, only when lanbox answers healthy, tells RAUC to mark
//! the booted slot good (`rauc status mark-good`). Otherwise the boot counter runs out and the
//! bootloader falls back to the previous slot.
//!
//! The health probe goes to loopback only and sends no credentials, so it accepts whatever
//! certificate the local server presents (the self-signed one is not in any trust store).

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum OtaError {
    #[error("health check of {addr} failed: {detail}")]
    Unhealthy { addr: String, detail: String },
    #[error("health checks only go to loopback addresses, not {0}")]
    NotLoopback(String),
    #[error("running rauc: {0}")]
    Rauc(String),
}

/// GETs `/api/v1/health` from the local server and requires a 200 with `"status":"ok"`: a
/// degraded box (503: writes failing, a connector down, ...) does not pass.
pub async fn check_health(addr: std::net::SocketAddr) -> Result<(), OtaError> {
    if !addr.ip().is_loopback() {
        return Err(OtaError::NotLoopback(addr.to_string()));
    }
    let fail = |detail: String| OtaError::Unhealthy {
        addr: addr.to_string(),
        detail,
    };
    let cfg = crate::system::tls::client_config(None, &[&rustls::version::TLS13]);
    let probe = async {
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let name = ServerName::try_from("localhost").expect("static name");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| fail(e.to_string()))?;
        tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut out = Vec::new();
        tls.take(64 * 1024)
            .read_to_end(&mut out)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok::<_, OtaError>(String::from_utf8_lossy(&out).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(20), probe)
        .await
        .map_err(|_| fail("timed out".into()))??;
    if response.starts_with("HTTP/1.1 200") && response.contains(r#""status":"ok""#) {
        Ok(())
    } else {
        Err(fail(response.lines().next().unwrap_or("no response").to_string()))
    }
}

/// Health check, then `rauc status mark-good`.
pub async fn mark_good(addr: std::net::SocketAddr, rauc: &str) -> Result<String, OtaError> {
    check_health(addr).await?;
    let out = tokio::process::Command::new(rauc)
        .args(["status", "mark-good"])
        .output()
        .await
        .map_err(|e| OtaError::Rauc(format!("{rauc}: {e}")))?;
    if !out.status.success() {
        return Err(OtaError::Rauc(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
