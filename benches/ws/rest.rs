//! REST throughput: `wrk` against `GET /api/v1/chats/{chat}/messages` (the newest page of 50)
//! on a store filled through the real path (simulator updates, the poller, ingest), then
//! against the bare REST baseline serving the very same bytes.
//!
//! Content: `chats` private chats and `chats / 4` supergroups, `per_chat` messages each, text
//! of mixed scripts and lengths (most 20–200 characters, every 25th up to 2,000), every 7th with
//! a bold entity, every 11th a reply.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lanbox::dev::simulator::SimBot;
use serde_json::{Value, json};

use super::client::{HOST, Res};
use super::servers::Server;

const WORDS: &[&str] = &[
    "hello",
    "order",
    "delivery",
    "tomorrow",
    "thanks",
    "price",
    "invoice",
    "Привет",
    "заказ",
    "доставка",
    "спасибо",
    "مرحبا",
    "طلب",
    "你好",
    "订单",
    "こんにちは",
    "注文",
    "🙂",
    "👍",
    "ok",
];

fn text(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let target = if seed.is_multiple_of(25) {
        2000
    } else {
        20 + (next() % 180) as usize
    };
    let mut s = String::new();
    while s.chars().count() < target {
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
    }
    s
}

fn update(chat: i64, kind: &str, id: i64, date: i64, seed: u64) -> Value {
    let mut chat_v = json!({"id": chat, "type": kind});
    if kind == "private" {
        chat_v["first_name"] = json!(format!("Customer {chat}"));
    } else {
        chat_v["title"] = json!(format!("Team {chat}"));
    }
    let t = text(seed);
    let mut m = json!({
        "message_id": id,
        "date": date,
        "chat": chat_v,
        "from": {"id": 5000 + seed % 97, "is_bot": false, "first_name": "Sender", "username": "sender"},
        "text": t,
    });
    if seed.is_multiple_of(7) {
        m["entities"] = json!([{"type": "bold", "offset": 0, "length": t.encode_utf16().count().min(5)}]);
    }
    if seed.is_multiple_of(11) && id > 1 {
        m["reply_to_message"] =
            json!({"message_id": id - 1, "date": date, "chat": chat_v, "text": "earlier"});
    }
    json!({"message": m})
}

/// Queues the content in the simulator; returns the number of messages and the busiest chat's
/// id in API form.
pub fn fill(bot: &SimBot, account: u64, chats: i64, per_chat: i64) -> (u64, String) {
    let now = lanbox::store::ctx::unix_now();
    let mut n = 0u64;
    for c in 0..chats + chats / 4 {
        let (chat, kind) = if c < chats {
            (10_000 + c, "private")
        } else {
            (-1_000_000_000_000 - c, "supergroup")
        };
        let updates: Vec<Value> = (1..=per_chat)
            .map(|i| {
                n += 1;
                update(chat, kind, i, now - per_chat + i, n)
            })
            .collect();
        bot.inject_all(updates);
    }
    (n, format!("{account}:10000"))
}

/// Waits until the server's stats count `n` messages.
pub async fn wait_stored(client: &reqwest::Client, base: &str, token: &str, n: u64) -> Res<Duration> {
    let start = Instant::now();
    loop {
        let v: Value = client
            .get(format!("{base}/api/v1/stats"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        if v["totals"]["messages"].as_u64() == Some(n) {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(format!(
                "only {} of {n} messages stored after 10 minutes",
                v["totals"]["messages"]
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn client(s: &Server) -> Res<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(lanbox::system::tls::client_config(
            Some(&s.fingerprint),
            &[&rustls::version::TLS13],
        ))
        .resolve(HOST, s.addr)
        .build()?)
}

/// One wrk run's figures.
#[derive(Debug, Clone, Default)]
pub struct Wrk {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: String,
}

fn ms(v: &str) -> Option<f64> {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// Runs `wrk` against `url` with `connections` connections on 2 threads for `secs`.
pub fn wrk(url: &str, token: Option<&str>, connections: u32, secs: u32, log: &Path) -> Res<Wrk> {
    let mut c = Command::new("wrk");
    c.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{secs}s"),
        "--latency",
    ]);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = c
        .arg(url)
        .output()
        .map_err(|e| format!("running wrk (scripts/install-deps.sh installs it): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    std::fs::write(log, &text)?;
    if !out.status.success() {
        return Err(format!("wrk failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let mut w = Wrk::default();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["Requests/sec:", v] => w.rps = v.parse()?,
            ["50%", v] => w.p50_ms = ms(v).unwrap_or(f64::NAN),
            ["99%", v] => w.p99_ms = ms(v).unwrap_or(f64::NAN),
            _ if line.contains("Non-2xx") || line.contains("Socket errors") => {
                w.errors.push_str(line.trim());
                w.errors.push(' ');
            }
            _ => {}
        }
    }
    Ok(w)
}
