//! A handful of authenticated API reads over the child's real HTTPS listener (TLS 1.3, the
//! certificate pinned by the fingerprint the child printed), so the memory figure after them
//! includes what serving touches: TLS sessions, the router, read transactions, redb's cache
//! holding the pages read, decrypted records.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Res;

/// What one series of reads did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reads {
    pub requests: u32,
    pub total: Duration,
    /// The slowest single request (the first chat list, usually: nothing cached yet).
    pub slowest: Duration,
}

/// `rounds` times: health, accounts, the chat list (a page of 50), the newest 50 messages of
/// the first three chats, and a search. Every response must be `200`.
pub fn reads(addr: SocketAddr, fingerprint: &str, token: &str, rounds: u32) -> Res<Reads> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = Client {
            addr,
            token: token.to_string(),
            tls: tokio_rustls::TlsConnector::from(Arc::new(lanbox::system::tls::client_config(
                Some(fingerprint),
                &[&rustls::version::TLS13],
            ))),
        };
        let mut r = Reads::default();
        for _ in 0..rounds {
            client.timed(&mut r, "/api/v1/health").await?;
            client.timed(&mut r, "/api/v1/accounts").await?;
            let chats = client.timed(&mut r, "/api/v1/chats?limit=50").await?;
            let ids: Vec<String> = chats["chats"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c["id"].as_str().map(str::to_string))
                        .take(3)
                        .collect()
                })
                .unwrap_or_default();
            for id in &ids {
                client
                    .timed(&mut r, &format!("/api/v1/chats/{id}/messages?limit=50"))
                    .await?;
            }
            client.timed(&mut r, "/api/v1/search?q=meeting").await?;
        }
        Ok(r)
    })
}

struct Client {
    addr: SocketAddr,
    token: String,
    tls: tokio_rustls::TlsConnector,
}

impl Client {
    async fn timed(&self, r: &mut Reads, path: &str) -> Res<Value> {
        let t = Instant::now();
        let v = self.get(path).await?;
        let e = t.elapsed();
        r.requests += 1;
        r.total += e;
        r.slowest = r.slowest.max(e);
        Ok(v)
    }

    /// One request on a fresh connection, as a browser tab opening the inbox would.
    async fn get(&self, path: &str) -> Res<Value> {
        let tcp = tokio::net::TcpStream::connect(self.addr).await?;
        let mut s = self
            .tls
            .connect(ServerName::try_from("lanbox.local")?, tcp)
            .await?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: lanbox.local\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.token
        );
        s.write_all(req.as_bytes()).await?;
        let mut raw = Vec::new();
        // A server closing without close_notify is reported as an error after the data.
        if let Err(e) = s.read_to_end(&mut raw).await
            && raw.is_empty()
        {
            return Err(e.into());
        }
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("GET {path}: no HTTP response"))?;
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            return Err(format!("GET {path}: status {status}").into());
        }
        let chunked = head
            .lines()
            .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
        let body = if chunked { dechunk(body)? } else { body.to_string() };
        Ok(serde_json::from_str(&body)?)
    }
}

fn dechunk(mut rest: &str) -> Res<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").ok_or("truncated chunk")?;
        let n = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(after.get(..n).ok_or("truncated chunk")?);
        rest = after.get(n + 2..).ok_or("truncated chunk")?;
    }
}
