//! A real lanbox HTTPS server on `127.0.0.1:0` for the API and WebSocket tests, started
//! through `lanbox::app::serve` (what `lanbox serve` runs, so tests run its wiring), with
//! clients that pin its self-signed certificate by fingerprint, helpers to create accounts,
//! users, tokens and messages, and JSON and WebSocket calls.

use std::net::SocketAddr;
use std::sync::Arc;

use lanbox::app::{Listeners, ServeOptions};
use lanbox::auth::{NewUser, Role, credentials, users};
use lanbox::ingest::{Batch, Change};
use lanbox::model::Message;
use lanbox::service::{Service, ServiceOptions};
use lanbox::store::Store;
use lanbox::system::tls::{CertSource, CertStore};
use rustls::pki_types::ServerName;

pub use super::tls::HOST;

/// Every test user's password.
pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub state: Service,
    pub addr: SocketAddr,
    pub fp: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServiceOptions::default()).await
    }

    pub async fn start_with(options: ServiceOptions) -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap(), options).await
    }

    /// Serves the data directory `dir` (which may hold what the CLI created).
    pub async fn start_in(dir: tempfile::TempDir, options: ServiceOptions) -> TestServer {
        TestServer::start_full(dir, lanbox::store::StoreOptions::default(), options).await
    }

    pub async fn start_full(
        dir: tempfile::TempDir,
        store: lanbox::store::StoreOptions,
        options: ServiceOptions,
    ) -> TestServer {
        let store = Store::open(
            dir.path(),
            &lanbox::store::StoreOptions {
                credentials_dir: None,
                ..store
            },
        )
        .unwrap();
        let certs = CertStore::load(CertSource::SelfSigned {
            dir: dir.path().join("tls"),
            names: lanbox::system::tls::default_names(HOST),
        })
        .unwrap();
        let fp = certs.fingerprint();
        let state = Service::open(store.clone(), certs.clone(), options)
            .await
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // The same function `lanbox serve` runs, so tests run its wiring.
        let serving = lanbox::app::serve(
            state.clone(),
            Listeners {
                https: listener,
                http: None,
            },
            // Every test client comes from 127.0.0.1: one client may use every connection.
            ServeOptions {
                limits: lanbox::server::Limits {
                    max_per_client: lanbox::server::Limits::default().max_connections,
                    ..lanbox::server::Limits::default()
                },
                ..ServeOptions::default()
            },
            async {
                let _ = stopped.await;
            },
        );
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                panic!("lanbox::app::serve failed: {e}");
            }
        });
        let server = TestServer {
            dir,
            store,
            state,
            addr,
            fp,
            stop: Some(stop),
        };
        // Ready: the box answers only once its service has started (the senders and pollers of
        // accounts already in the store included), so no test races the start-up.
        server
            .client()
            .get(server.url("/api/v1/health"))
            .send()
            .await
            .expect("the server answers once started");
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://{HOST}:{}{path}", self.addr.port())
    }

    /// `https://lanbox.local:PORT`, what a page served by this box sends as `Origin`.
    pub fn origin(&self) -> String {
        format!("https://{HOST}:{}", self.addr.port())
    }

    /// An HTTPS client that trusts only this server's certificate.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(super::tls::config(&self.fp))
            .resolve(HOST, self.addr)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub fn tls(&self) -> tokio_rustls::TlsConnector {
        tokio_rustls::TlsConnector::from(Arc::new(super::tls::config(&self.fp)))
    }

    /// A raw TLS stream to the server (for slow or malformed clients).
    pub async fn raw(&self) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        self.raw_with(None).await
    }

    /// A raw TLS stream with a small TCP receive buffer, so an unread connection backs up fast.
    pub async fn raw_with(
        &self,
        recv_buffer: Option<u32>,
    ) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        if let Some(n) = recv_buffer {
            sock.set_recv_buffer_size(n).unwrap();
        }
        let tcp = sock.connect(self.addr).await.unwrap();
        self.tls()
            .connect(ServerName::try_from(HOST).unwrap(), tcp)
            .await
            .unwrap()
    }

    pub async fn account(&self, name: &str) -> u64 {
        lanbox::store::new_account::create(
            &self.store,
            lanbox::store::new_account::NewAccount {
                channel: "telegram".into(),
                name: name.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .id
    }

    pub async fn user(&self, name: &str, role: Role, grants: &[u64]) {
        users::add(
            &self.store,
            NewUser {
                name: name.into(),
                role,
                password: PASSWORD.into(),
                grants: grants.to_vec(),
            },
        )
        .await
        .unwrap();
    }

    pub async fn token(&self, user: &str) -> String {
        credentials::create_token(&self.store, user, "test", None)
            .await
            .unwrap()
            .0
    }

    /// Ingests messages as new, all received by `account`.
    pub async fn ingest(&self, account: u64, messages: Vec<Message>) {
        self.state
            .pipeline
            .submit(Batch {
                account,
                changes: messages.into_iter().map(Change::New).collect(),
                position: None,
            })
            .await
            .unwrap();
    }

    pub async fn submit(&self, account: u64, changes: Vec<Change>) {
        self.state
            .pipeline
            .submit(Batch {
                account,
                changes,
                position: None,
            })
            .await
            .unwrap();
    }

    /// Logs in with the session cookie; returns the cookie pair `name=value`.
    pub async fn login(&self, name: &str) -> String {
        let res = self
            .client()
            .post(self.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": name, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "login of {name}");
        let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
        cookie.split(';').next().unwrap().to_string()
    }
}

/// Accounts alpha (1) and bravo (2), users root (admin), alice (agent of alpha), nobody (agent
/// without grants). Bravo's content all says "bravo", so a leak is visible in any body.
pub async fn workspace() -> (TestServer, u64, u64) {
    use super::messages::{chat, text_message};
    use lanbox::model::ChatKind;
    let s = TestServer::start().await;
    let a = s.account("alpha").await;
    let b = s.account("bravo").await;
    s.user("root", Role::Admin, &[]).await;
    s.user("alice", Role::Agent, &[a]).await;
    s.user("nobody", Role::Agent, &[]).await;

    let anna = chat(1001, ChatKind::Private, "Anna");
    let boris = chat(2001, ChatKind::Private, "Bravo Boris");
    let bravo_sg = chat(-100500, ChatKind::Supergroup, "Bravo team");
    let shared = chat(-100700, ChatKind::Supergroup, "Shared room");
    s.ingest(
        a,
        (1..=3)
            .map(|i| text_message(a, &anna, i, &format!("alpha hello {i}")))
            .collect(),
    )
    .await;
    s.ingest(
        b,
        (1..=3)
            .map(|i| text_message(b, &boris, i, &format!("bravo secret {i}")))
            .collect(),
    )
    .await;
    s.ingest(b, vec![text_message(b, &bravo_sg, 10, "bravo secret group")])
        .await;
    s.ingest(a, vec![text_message(a, &shared, 20, "alpha shared words")])
        .await;
    s.ingest(
        b,
        vec![
            text_message(b, &shared, 20, "alpha shared words"),
            text_message(b, &shared, 21, "bravo secret in the shared room"),
        ],
    )
    .await;
    (s, a, b)
}

/// Any method with a bearer token and an optional JSON body: the status and the JSON body (a
/// body that is not JSON comes back as a JSON string).
pub async fn request(
    s: &TestServer,
    method: impl AsRef<str>,
    token: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let method = reqwest::Method::from_bytes(method.as_ref().as_bytes()).unwrap();
    let mut req = s.client().request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A GET with a bearer token: status and JSON body.
pub async fn get(s: &TestServer, token: &str, path: &str) -> (u16, serde_json::Value) {
    request(s, "GET", token, path, None).await
}

/// A POST with a bearer token and a JSON body: status and JSON body.
pub async fn post(
    s: &TestServer,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    request(s, "POST", token, path, Some(body)).await
}

/// Uploads `body` as file `name` (URL-encoded) of type `mime` for `account`
/// (`POST /api/v1/attachments`), asserting `201 Created`; the attachment's id.
pub async fn upload(s: &TestServer, token: &str, account: u64, name: &str, mime: &str, body: Vec<u8>) -> u64 {
    let res = s
        .client()
        .post(s.url(&format!("/api/v1/attachments?account={account}&name={name}")))
        .bearer_auth(token)
        .header("content-type", mime)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<serde_json::Value>().await.unwrap()["id"]
        .as_u64()
        .unwrap()
}

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
pub use tokio_tungstenite::tungstenite;

/// Opens a WebSocket to `path` (with its query) with extra request headers. An HTTP refusal
/// comes back as `Err(status)`.
pub async fn ws_connect(
    s: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<(Ws, tungstenite::http::Response<Option<Vec<u8>>>), u16> {
    ws_connect_with(s, path, headers, None).await
}

pub async fn ws_connect_with(
    s: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
    recv_buffer: Option<u32>,
) -> Result<(Ws, tungstenite::http::Response<Option<Vec<u8>>>), u16> {
    use tungstenite::client::IntoClientRequest;
    let url = format!("wss://{HOST}:{}{path}", s.addr.port());
    let mut req = url.into_client_request().unwrap();
    for (k, v) in headers {
        req.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let tls = s.raw_with(recv_buffer).await;
    match tokio_tungstenite::client_async(req, tls).await {
        Ok(ok) => Ok(ok),
        Err(tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("websocket handshake: {e}"),
    }
}

/// Connects with a token in `Sec-WebSocket-Protocol` and reads the `hello`.
pub async fn ws_token(s: &TestServer, token: &str) -> Ws {
    let proto = format!("lanbox.v1, {token}");
    let (mut ws, res) = ws_connect(s, "/api/v1/ws", &[("sec-websocket-protocol", &proto)])
        .await
        .expect("websocket with a token");
    assert_eq!(res.headers()["sec-websocket-protocol"], "lanbox.v1");
    let hello = recv(&mut ws).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    ws
}

/// The next JSON message (control frames are skipped), waiting at most 10 s.
pub async fn recv(ws: &mut Ws) -> serde_json::Value {
    match try_recv(ws, std::time::Duration::from_secs(10)).await {
        Some(Ok(v)) => v,
        Some(Err(close)) => panic!("closed: {close:?}"),
        None => panic!("nothing received within 10 s"),
    }
}

/// The next JSON message, `Err(close frame)` when the server closed, `None` on timeout.
pub async fn try_recv(
    ws: &mut Ws,
    wait: std::time::Duration,
) -> Option<Result<serde_json::Value, Option<(u16, String)>>> {
    use futures_util::StreamExt;
    use tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match next {
            Some(Ok(Message::Text(t))) => return Some(Ok(serde_json::from_str(t.as_str()).unwrap())),
            Some(Ok(Message::Close(f))) => {
                return Some(Err(f.map(|f| (u16::from(f.code), f.reason.as_str().to_string()))));
            }
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Some(Err(None)),
        }
    }
}

pub async fn send(ws: &mut Ws, v: serde_json::Value) {
    use futures_util::SinkExt;
    ws.send(tungstenite::Message::Text(v.to_string().into()))
        .await
        .unwrap();
}

/// The next message of type `kind` (an event type such as `message.status`), skipping others.
pub async fn next_of(ws: &mut Ws, kind: &str) -> serde_json::Value {
    loop {
        let m = recv(ws).await;
        if m["type"] == kind {
            return m;
        }
    }
}

/// Sends a client message and returns the reply with the same `id`, skipping events.
pub async fn call(ws: &mut Ws, mut v: serde_json::Value) -> serde_json::Value {
    let id = format!("c{}", rand_id());
    v["id"] = serde_json::json!(id);
    send(ws, v).await;
    loop {
        let m = recv(ws).await;
        if m["id"] == serde_json::json!(id) {
            return m;
        }
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Sets the box's backup passphrase through the API, as an admin (`token`).
pub async fn set_backup_passphrase(s: &TestServer, token: &str, passphrase: &str) {
    let (status, body) = request(
        s,
        "PUT",
        token,
        "/api/v1/backups/passphrase",
        Some(serde_json::json!({ "passphrase": passphrase })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
}
