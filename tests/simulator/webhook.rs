//! Webhook delivery to real local endpoints: HTTPS with a self-signed certificate uploaded
//! with setWebhook (and refused without it), the secret header, order, retries while the
//! endpoint fails, and getWebhookInfo's pending count and last error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use lanbox::channels::telegram::client::http_client;
use lanbox::dev::simulator::{SimBot, SimConfig, Simulator};
use lanbox::system::tls::{CertSource, CertStore};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::{WAIT, call, text_update};

/// What the endpoint saw: the secret header and the update of every request, and how many
/// of the first requests it is to fail.
#[derive(Default)]
struct Endpoint {
    seen: Mutex<Vec<(Option<String>, Value, u16)>>,
    fail_first: AtomicUsize,
}

/// An HTTPS endpoint with a fresh self-signed certificate; returns its URL and the PEM.
async fn https_endpoint(dir: &std::path::Path, endpoint: Arc<Endpoint>) -> (String, Vec<u8>) {
    let certs = CertStore::load(CertSource::SelfSigned {
        dir: dir.to_path_buf(),
        names: vec!["127.0.0.1".into(), "localhost".into()],
    })
    .unwrap();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let endpoint = endpoint.clone();
            async move {
                let secret = headers
                    .get("x-telegram-bot-api-secret-token")
                    .map(|v| v.to_str().unwrap().to_owned());
                let update: Value = serde_json::from_slice(&body).unwrap();
                let failing = endpoint
                    .fail_first
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                let status = if failing { 500 } else { 200 };
                endpoint.seen.lock().unwrap().push((secret, update, status));
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(lanbox::server::run(listener, certs, app, std::future::pending()));
    let pem = std::fs::read(dir.join("cert.pem")).unwrap();
    (format!("https://{addr}/hook"), pem)
}

async fn fast_sim() -> Simulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = SimConfig {
        webhook_retry: (Duration::from_millis(50), Duration::from_millis(200)),
        webhook_timeout: Duration::from_secs(5),
        ..SimConfig::default()
    };
    Simulator::start_with(listener, config).unwrap()
}

async fn set_webhook(sim: &Simulator, bot: &SimBot, url: &str, certificate: Option<Vec<u8>>) -> (u16, Value) {
    let mut form = Form::new()
        .text("url", url.to_owned())
        .text("secret_token", "s3cret-Token_1");
    if let Some(pem) = certificate {
        form = form.part("certificate", Part::bytes(pem).file_name("cert.pem"));
    }
    let resp = http_client()
        .unwrap()
        .post(format!("{}/bot{}/setWebhook", sim.api_base(), bot.token()))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

#[tokio::test]
async fn delivers_in_order_with_the_secret_and_retries_while_the_endpoint_fails() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Arc::new(Endpoint::default());
    endpoint.fail_first.store(2, Ordering::SeqCst);
    let (url, pem) = https_endpoint(dir.path(), endpoint.clone()).await;
    let sim = fast_sim().await;
    let bot = sim.add_bot("hook_bot");
    let first = bot.inject(text_update(5, 1, "one"));
    let second = bot.inject(text_update(5, 2, "two"));

    let (status, body) = set_webhook(&sim, &bot, &url, Some(pem)).await;
    assert_eq!((status, body), (200, json!({"ok": true, "result": true})));
    // The first two attempts fail: the error shows, the updates wait.
    let failed = |b: &SimBot| b.webhook_info()["last_error_message"].is_string();
    assert!(bot.wait_until(WAIT, failed).await);
    let (_, info) = call(&sim, bot.token(), "getWebhookInfo", json!({})).await;
    let info = &info["result"];
    assert_eq!(info["url"], url.as_str());
    assert_eq!(info["has_custom_certificate"], true);
    assert_eq!(
        info["last_error_message"],
        "Wrong response from the webhook: 500 Internal Server Error"
    );
    assert!(info["last_error_date"].as_i64().unwrap() > 1_700_000_000);
    assert!(info["pending_update_count"].as_u64().unwrap() >= 1);
    // getUpdates is not allowed meanwhile.
    let (status, e) = call(&sim, bot.token(), "getUpdates", json!({})).await;
    assert_eq!(status, 409, "{e}");

    assert!(bot.wait_until(WAIT, |b| b.pending() == 0).await, "not delivered");
    let third = bot.inject(text_update(5, 3, "three"));
    assert!(bot.wait_until(WAIT, |b| b.pending() == 0).await, "not delivered");

    let seen = endpoint.seen.lock().unwrap().clone();
    let attempts: Vec<(i64, u16)> = seen
        .iter()
        .map(|(_, u, s)| (u["update_id"].as_i64().unwrap(), *s))
        .collect();
    assert_eq!(
        attempts,
        [
            (first, 500),
            (first, 500),
            (first, 200),
            (second, 200),
            (third, 200)
        ]
    );
    assert!(
        seen.iter()
            .all(|(secret, _, _)| secret.as_deref() == Some("s3cret-Token_1"))
    );
    assert_eq!(seen[3].1["message"]["text"], "two");
    let (_, info) = call(&sim, bot.token(), "getWebhookInfo", json!({})).await;
    assert_eq!(info["result"]["pending_update_count"], 0);

    // deleteWebhook: polling works again, and nothing more is POSTed.
    assert_eq!(call(&sim, bot.token(), "deleteWebhook", json!({})).await.0, 200);
    let fourth = bot.inject(text_update(5, 4, "four"));
    let (status, got) = call(&sim, bot.token(), "getUpdates", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(got["result"][0]["update_id"], fourth);
    assert_eq!(endpoint.seen.lock().unwrap().len(), 5);
}

#[tokio::test]
async fn self_signed_endpoint_without_its_certificate_is_refused_and_refused_connections_retry() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Arc::new(Endpoint::default());
    let (url, _pem) = https_endpoint(dir.path(), endpoint.clone()).await;
    let sim = fast_sim().await;
    let bot = sim.add_bot("hook_bot");
    bot.inject(text_update(5, 1, "one"));
    assert_eq!(set_webhook(&sim, &bot, &url, None).await.0, 200);
    let failed = |b: &SimBot| b.webhook_info()["last_error_message"].is_string();
    assert!(bot.wait_until(WAIT, failed).await);
    let message = bot.webhook_info()["last_error_message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("SSL error"), "{message}");
    assert!(endpoint.seen.lock().unwrap().is_empty());
    assert_eq!(bot.pending(), 1);

    // Nothing listening: connection refused, retried, then delivered once something listens
    // (plain HTTP is accepted on loopback).
    let other = sim.add_bot("other_bot");
    let spare = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = spare.local_addr().unwrap();
    drop(spare);
    let id = other.inject(text_update(6, 1, "later"));
    assert_eq!(
        set_webhook(&sim, &other, &format!("http://{addr}/hook"), None)
            .await
            .0,
        200
    );
    let failed = |b: &SimBot| b.webhook_info()["last_error_message"] == "Connection refused";
    assert!(other.wait_until(WAIT, failed).await, "{}", other.webhook_info());
    let got = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let got = got.clone();
            move |body: axum::body::Bytes| async move {
                got.lock()
                    .unwrap()
                    .push(serde_json::from_slice::<Value>(&body).unwrap());
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    assert!(other.wait_until(WAIT, |b| b.pending() == 0).await);
    assert_eq!(got.lock().unwrap()[0]["update_id"], id);
}
