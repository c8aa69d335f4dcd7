//! The soak: the real `lanbox` binary under a steady mixed load for a configurable time, and
//! an end-to-end count at the end (issue 18, point 7).
//!
//! ```text
//! cargo bench --bench soak                              # 60 minutes, 200 messages/s, 500 clients
//! cargo test --bench soak                               # a 20-second smoke test with every check
//! cargo bench --bench soak -- --minutes 10 --rate 200 --clients 500
//! ```
//!
//! What runs at once, against one lanbox on a data directory set up with its own commands:
//!
//! - **Ingest**: `--rate` text messages a second from `--accounts` bots of the in-process Bot API
//!   simulator (private chats of 200 customers per bot), through lanbox's real long-polling
//!   connector; every 5 s a 200 KB document too.
//! - **Live clients**: `--clients` TLS WebSocket clients (`lanbox.v1`, an admin API token) that
//!   subscribe and note every message they see; each drops its connection every
//!   `--resume-every-s` (300 s; in ten waves) and comes back with `resume` from the last
//!   sequence number it saw.
//! - **Sends**: four a second through `POST /api/v1/chats/{chat}/messages` (each with its own
//!   idempotency key), while the simulator answers `sendMessage` with 429 (retry after 1 s)
//!   and with 502 in turns every 20 s.
//! - **Attachments** sync to a real S3 server (SeaweedFS) that is stopped for a tenth of the run
//!   (from 20% to 30% of it), then started again.
//! - **Event-log trimming**: `[events] keep_max = 20000`, so the log is trimmed all along.
//!
//! Every 10 s it prints a line of the series: elapsed time, lanbox's RSS and CPU seconds, messages injected and
//! stored, sends accepted and delivered, WebSocket resumes, resync answers and connection
//! errors, failed attachment fetches, the health status. At the end it stops the load, waits until lanbox has drained
//! everything (or a deadline), and checks end to end: every message the simulator sent is
//! stored once (the sum of the chats' message counts equals what was injected plus the sends
//! Telegram took, which are stored as outgoing messages), every send
//! reached the simulator exactly once, every live client saw every message despite its
//! reconnections, and RSS in the last third of the run stayed within 15% of the middle third.
//! It exits non-zero when any of these fails.

#[path = "ws/client.rs"]
#[allow(dead_code)]
mod client;
#[path = "../tests/support/s3.rs"]
mod s3;
#[path = "ws/servers.rs"]
#[allow(dead_code)]
mod servers;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use lanbox::dev::simulator::{Fault, SimBot, Simulator};
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};
use tokio_tungstenite::tungstenite::Message;

use client::{Res, Target};

#[derive(Parser, Clone)]
struct Args {
    /// How long the load runs (60 under `cargo bench`).
    #[arg(long)]
    minutes: Option<f64>,
    /// Incoming text messages a second, over all accounts (200).
    #[arg(long)]
    rate: Option<u32>,
    /// Live WebSocket clients (500).
    #[arg(long)]
    clients: Option<usize>,
    /// Bot accounts on the simulator.
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// Each client drops its connection and resumes this often, seconds (300; 0: never).
    #[arg(long)]
    resume_every_s: Option<u64>,
    /// cargo bench passes --bench; without it (`cargo test --benches`) the soak is a smoke test
    /// of 20 seconds at 50 messages/s with 20 clients, with all its checks.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The run's settings: the soak's under `cargo bench` (or when any is given), else the smoke's.
struct Settings {
    minutes: f64,
    rate: u32,
    clients: usize,
    accounts: usize,
    resume_every_s: u64,
}

impl Args {
    fn settings(&self) -> Settings {
        let full = self.bench || self.minutes.is_some() || self.rate.is_some() || self.clients.is_some();
        Settings {
            minutes: self.minutes.unwrap_or(if full { 60.0 } else { 1.0 / 3.0 }),
            rate: self.rate.unwrap_or(if full { 200 } else { 50 }),
            clients: self.clients.unwrap_or(if full { 500 } else { 20 }),
            accounts: self.accounts,
            resume_every_s: self.resume_every_s.unwrap_or(if full { 300 } else { 6 }),
        }
    }
}

const CUSTOMERS: i64 = 200;
const MARK: &str = "soakmsg";

/// Seen message numbers, one bit each.
struct Seen(Vec<AtomicU64>);

impl Seen {
    fn new(n: usize) -> Seen {
        Seen((0..n.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }
    fn set(&self, i: usize) {
        if let Some(w) = self.0.get(i / 64) {
            w.fetch_or(1 << (i % 64), Ordering::Relaxed);
        }
    }
    fn count(&self) -> usize {
        self.0
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
            .sum()
    }
}

#[derive(Default)]
struct Counters {
    /// Clients subscribed (their first `ack`): the load starts once all are.
    ready: AtomicUsize,
    injected: AtomicUsize,
    files: AtomicUsize,
    sends_ok: AtomicUsize,
    sends_failed: AtomicUsize,
    resumes: AtomicUsize,
    resyncs: AtomicUsize,
    ws_errors: AtomicUsize,
}

/// The number after `"seq":` in a frame, if any.
fn seq_of(text: &str) -> Option<u64> {
    let at = text.find("\"seq\":")? + 6;
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The message number after the marker, if the frame carries one.
fn mark_of(text: &str) -> Option<usize> {
    let at = text.find(MARK)? + MARK.len();
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// One live client: subscribes, reads, notes every marked message; every `period` (offset by
/// its number) drops the connection and resumes from the last seq it saw.
async fn live_client(
    t: Arc<Target>,
    n: usize,
    every: Duration,
    seen: Arc<Seen>,
    c: Arc<Counters>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_seq: Option<u64> = None;
    let mut subscribed = false;
    // Clients drop in ten waves spread over the period.
    let every = if every.is_zero() {
        Duration::from_secs(1 << 30)
    } else {
        every
    };
    let mut next_drop = Instant::now() + every / 10 * (n as u32 % 10 + 1);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut ws = match client::connect(&t, n).await {
            Ok(ws) => ws,
            Err(_) => {
                c.ws_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let hello = match &last_seq {
            Some(s) => {
                c.resumes.fetch_add(1, Ordering::Relaxed);
                json!({"type": "resume", "from_seq": s, "id": 1})
            }
            None => json!({"type": "subscribe", "id": 1}),
        };
        if ws.send(Message::text(hello.to_string())).await.is_err() {
            continue;
        }
        loop {
            let frame = tokio::select! {
                f = ws.next() => f,
                _ = stop.changed() => { let _ = ws.close(None).await; return; }
                _ = tokio::time::sleep_until(next_drop.into()) => {
                    next_drop += every;
                    let _ = ws.close(None).await;
                    break;
                }
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    if !subscribed && text.contains("\"ack\"") {
                        subscribed = true;
                        c.ready.fetch_add(1, Ordering::Relaxed);
                    }
                    if text.contains("\"resync_required\"") {
                        c.resyncs.fetch_add(1, Ordering::Relaxed);
                        last_seq = None;
                        break;
                    }
                    if let Some(s) = seq_of(&text)
                        && last_seq.is_none_or(|l| s > l)
                    {
                        last_seq = Some(s);
                    }
                    if text.contains("\"message.created\"")
                        && let Some(k) = mark_of(&text)
                    {
                        seen.set(k);
                    }
                }
                Some(Ok(_)) => {}
                _ => {
                    c.ws_errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}

fn private_update(customer: i64, n: usize, text: String) -> Value {
    let user = json!({"id": customer, "is_bot": false, "first_name": format!("Customer {customer}")});
    json!({"message": {
        "message_id": n as i64 + 1,
        "date": lanbox::store::ctx::unix_now(),
        "chat": {"id": customer, "type": "private", "first_name": format!("Customer {customer}")},
        "from": user,
        "text": text,
    }})
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// CPU time lanbox has used (user + system), seconds, from `/proc/PID/stat`.
fn cpu_s_of(pid: u32) -> f64 {
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name (which is in parentheses and may hold spaces).
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        });
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks.unwrap_or(0) as f64 / hz
}

struct Lanbox {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Lanbox {
    async fn get(&self, path: &str) -> Res<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let st = r.status().as_u16();
        Ok((st, r.json().await.unwrap_or(Value::Null)))
    }

    /// Messages stored over every chat (the sum of the chats' counts).
    async fn stored(&self) -> Res<u64> {
        let mut total = 0;
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/v1/chats?limit=200&cursor={c}"),
                None => "/api/v1/chats?limit=200".into(),
            };
            let (_, page) = self.get(&q).await?;
            for c in page["chats"].as_array().cloned().unwrap_or_default() {
                total += c["messages"].as_u64().unwrap_or(0);
            }
            match page["next"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return Ok(total),
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let args = Args::parse().settings();
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let max_msgs = (args.rate as f64 * run_for.as_secs_f64() * 1.1) as usize + 10_000;
    println!(
        "soak: {:.1} min, {} messages/s from {} accounts, {} live clients; load average {}",
        args.minutes,
        args.rate,
        args.accounts,
        args.clients,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );

    let mut weed = s3::Weed::start();
    let sim = Simulator::start().await?;
    let bots: Vec<SimBot> = (0..args.accounts)
        .map(|i| sim.add_bot(&format!("soak{i}_bot")))
        .collect();
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("box");
    let token = servers::setup_lanbox(&data, bots[0].token(), &sim.api_base())?;
    for b in &bots[1..] {
        servers::run(
            &[
                "account",
                "add",
                "telegram",
                "--token",
                b.token(),
                "--api-base",
                &sim.api_base(),
            ],
            &data,
            &[],
        )?;
    }
    let cfg_path = data.join("lanbox.toml");
    let mut cfg: toml::Table = std::fs::read_to_string(&cfg_path)?.parse()?;
    let section = |cfg: &mut toml::Table, name: &str| -> toml::Table {
        cfg.remove(name)
            .and_then(|v| v.as_table().cloned())
            .unwrap_or_default()
    };
    let mut events = section(&mut cfg, "events");
    events.insert("keep_max".into(), 20_000.into());
    cfg.insert("events".into(), events.into());
    let mut s3 = section(&mut cfg, "s3");
    s3.insert("endpoint".into(), weed.endpoint().into());
    s3.insert("bucket".into(), "soak".into());
    s3.insert("access_key".into(), s3::ACCESS_KEY.into());
    s3.insert("secret_key".into(), s3::SECRET_KEY.into());
    s3.insert("create_bucket".into(), true.into());
    cfg.insert("s3".into(), s3.into());
    std::fs::write(&cfg_path, cfg.to_string())?;
    let server = servers::start_lanbox(&data)?;
    let pid = server.pid();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(lanbox::system::tls::client_config(
            Some(&server.fingerprint),
            &[&rustls::version::TLS13],
        ))
        .resolve(client::HOST, server.addr)
        .build()?;
    let lb = Arc::new(Lanbox {
        base: format!("https://{}:{}", client::HOST, server.addr.port()),
        http,
        token: token.clone(),
    });

    let counters = Arc::new(Counters::default());
    let seen: Vec<Arc<Seen>> = (0..args.clients).map(|_| Arc::new(Seen::new(max_msgs))).collect();
    let target = Arc::new(Target {
        addr: server.addr,
        fingerprint: server.fingerprint.clone(),
        protocol: Some(format!("lanbox.v1, {token}")),
        greeting: None,
        ready_frames: 0,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut clients = tokio::task::JoinSet::new();
    for (n, s) in seen.iter().enumerate() {
        clients.spawn(live_client(
            target.clone(),
            n,
            Duration::from_secs(args.resume_every_s),
            s.clone(),
            counters.clone(),
            stop_rx.clone(),
        ));
    }

    // Every client subscribed before the first message (a subscription starts from "now").
    let ready_by = Instant::now() + Duration::from_secs(120);
    while counters.ready.load(Ordering::Relaxed) < args.clients {
        if Instant::now() > ready_by {
            return Err(format!(
                "only {} of {} clients subscribed in two minutes",
                counters.ready.load(Ordering::Relaxed),
                args.clients
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sends and their keys, to count deliveries at the end.
    let sends: Arc<Mutex<HashMap<String, ()>>> = Arc::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let per_tick = (args.rate as usize).div_ceil(20);
    let mut n = 0usize;
    let mut next_sample = started;
    let mut next_file = started + Duration::from_secs(5);
    let mut next_send = started + Duration::from_secs(2);
    let mut next_fault = started + Duration::from_secs(20);
    let mut fault_turn = 0u32;
    // Early enough that the middle and last thirds, compared for RSS, both come after it.
    let outage = (started + run_for / 5, started + run_for * 3 / 10);
    let mut s3_down = false;
    let mut sends_made = 0usize;
    let mut series: Vec<(f64, u64)> = Vec::new();
    println!(
        "t_s,rss_mib,cpu_s,injected,stored,sends_ok,sends_delivered,resumes,resyncs,ws_errors,attachments_failed,health"
    );
    while started.elapsed() < run_for {
        tick.tick().await;
        let now = Instant::now();
        for _ in 0..per_tick {
            let bot = &bots[n % bots.len()];
            let customer = 10_000 + (n as i64 / bots.len() as i64) % CUSTOMERS;
            bot.inject(private_update(
                customer,
                n,
                format!("{MARK}{n} order status please, lorem ipsum dolor"),
            ));
            counters.injected.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
        if now >= next_file {
            next_file += Duration::from_secs(5);
            let bot = &bots[n % bots.len()];
            let bytes: Vec<u8> = (0..200_000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect();
            let fid = bot.add_file(bytes);
            let customer = 10_000 + (n as i64 / bots.len() as i64) % CUSTOMERS;
            let mut u = private_update(customer, n, String::new());
            let m = u["message"].as_object_mut().expect("object");
            m.remove("text");
            m.insert("caption".into(), json!(format!("{MARK}{n} a file")));
            m.insert(
                "document".into(),
                json!({"file_id": fid, "file_unique_id": format!("u{n}"), "file_name": "scan.pdf", "file_size": 200_000}),
            );
            bot.inject(u);
            counters.injected.fetch_add(1, Ordering::Relaxed);
            counters.files.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
        if now >= next_send {
            next_send += Duration::from_millis(250);
            let key = format!("soaksend{sends_made}");
            // Over 50 of the first account's customers: Telegram allows about one message a
            // second per private chat, and the outbox keeps to it.
            let chat = 10_000 + sends_made as i64 % 50;
            sends_made += 1;
            let (lb, c, sends) = (lb.clone(), counters.clone(), sends.clone());
            tokio::spawn(async move {
                let body = json!({"text": key, "idempotency_key": key});
                let r = lb
                    .http
                    .post(format!("{}/api/v1/chats/1:{chat}/messages", lb.base))
                    .bearer_auth(&lb.token)
                    .json(&body)
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        c.sends_ok.fetch_add(1, Ordering::Relaxed);
                        sends.lock().await.insert(key, ());
                    }
                    _ => {
                        c.sends_failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        if now >= next_fault {
            next_fault += Duration::from_secs(20);
            let fault = if fault_turn.is_multiple_of(2) {
                Fault::RetryAfter(1)
            } else {
                Fault::Status(502)
            };
            fault_turn += 1;
            bots[0].fail("sendMessage", fault, 2);
        }
        if !s3_down && now >= outage.0 && now < outage.1 {
            weed.stop();
            s3_down = true;
            println!("# S3 stopped at {:.0} s", started.elapsed().as_secs_f64());
        }
        if s3_down && now >= outage.1 {
            weed.restart();
            s3_down = false;
            println!("# S3 started again at {:.0} s", started.elapsed().as_secs_f64());
        }
        if now >= next_sample {
            next_sample += Duration::from_secs(10);
            let rss = rss_of(pid);
            let t = started.elapsed().as_secs_f64();
            series.push((t, rss));
            let stored = lb.stored().await.unwrap_or(0);
            let delivered = bots[0]
                .sent()
                .iter()
                .filter(|m| m.text.starts_with("soaksend"))
                .count();
            let health = lb.get("/api/v1/health").await.map(|(s, _)| s).unwrap_or(0);
            let (_, stats) = lb.get("/api/v1/stats").await.unwrap_or((0, Value::Null));
            let att_failed = stats["system"]["attachments"]["failed"].as_u64().unwrap_or(0);
            println!(
                "{t:.0},{:.1},{:.1},{},{stored},{},{delivered},{},{},{},{att_failed},{health}",
                rss as f64 / (1 << 20) as f64,
                cpu_s_of(pid),
                counters.injected.load(Ordering::Relaxed),
                counters.sends_ok.load(Ordering::Relaxed),
                counters.resumes.load(Ordering::Relaxed),
                counters.resyncs.load(Ordering::Relaxed),
                counters.ws_errors.load(Ordering::Relaxed),
            );
        }
    }
    if s3_down {
        weed.restart();
    }

    // Drain: everything injected confirmed, stored, files synced, sends delivered.
    let injected = counters.injected.load(Ordering::Relaxed) as u64;
    println!(
        "# load stopped after {:.0} s; draining",
        started.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut stored = 0;
    loop {
        stored = lb.stored().await.unwrap_or(stored);
        let pending: usize = bots.iter().map(SimBot::pending).sum();
        let keys = sends.lock().await.len();
        let delivered = bots[0]
            .sent()
            .iter()
            .filter(|m| m.text.starts_with("soaksend"))
            .count();
        let (_, stats) = lb.get("/api/v1/stats").await.unwrap_or((0, Value::Null));
        let backlog = stats["system"]["attachments"]["sync_backlog"]
            .as_u64()
            .unwrap_or(0)
            + stats["system"]["attachments"]["fetch_backlog"]
                .as_u64()
                .unwrap_or(0);
        // The chats' counts hold our sends too, once Telegram has taken them.
        if (stored >= injected + delivered as u64 && pending == 0 && delivered >= keys && backlog == 0)
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Stored is not yet delivered: give the live clients until every one has seen every
    // message (or a minute) before they stop.
    let seen_all = Instant::now() + Duration::from_secs(60);
    while seen.iter().any(|s| s.count() < injected as usize) && Instant::now() < seen_all {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop_tx.send(true);
    while clients.join_next().await.is_some() {}

    // The end-to-end count.
    let mut failures = Vec::new();
    let keys = sends.lock().await.clone();
    let mut delivered: HashMap<String, usize> = HashMap::new();
    for m in bots[0].sent() {
        if m.text.starts_with("soaksend") {
            *delivered.entry(m.text).or_default() += 1;
        }
    }
    let expected = injected + delivered.len() as u64;
    if stored != expected {
        failures.push(format!(
            "stored {stored} messages; the simulator sent {injected} and took {} sends",
            delivered.len()
        ));
    }
    let twice = delivered.values().filter(|&&c| c > 1).count();
    let missing = keys.keys().filter(|k| !delivered.contains_key(*k)).count();
    if twice > 0 || missing > 0 {
        failures.push(format!(
            "sends: {twice} delivered more than once, {missing} never delivered"
        ));
    }
    let counts: Vec<usize> = seen.iter().map(|s| s.count()).collect();
    let short = counts.iter().filter(|&&c| c < injected as usize).count();
    if short > 0 {
        let first = &seen[0];
        let missing: Vec<usize> = (0..injected as usize)
            .filter(|&i| first.0[i / 64].load(Ordering::Relaxed) & (1 << (i % 64)) == 0)
            .take(10)
            .collect();
        println!("# client 0 never saw messages {missing:?}");
        failures.push(format!(
            "{short} of {} live clients missed messages (fewest seen {} of {injected})",
            counts.len(),
            counts.iter().min().copied().unwrap_or(0)
        ));
    }
    let third = series.len() / 3;
    if third >= 2 {
        let mean = |s: &[(f64, u64)]| s.iter().map(|x| x.1 as f64).sum::<f64>() / s.len() as f64;
        let (mid, last) = (mean(&series[third..2 * third]), mean(&series[2 * third..]));
        println!(
            "# RSS mean: middle third {:.1} MiB, last third {:.1} MiB ({:+.1}%)",
            mid / (1 << 20) as f64,
            last / (1 << 20) as f64,
            (last / mid - 1.0) * 100.0
        );
        if last > mid * 1.15 {
            failures.push("RSS grew more than 15% from the middle third to the last".into());
        }
    }
    println!(
        "# totals: injected {injected} ({} files), stored {stored}, sends accepted {} (failed to enqueue {}), delivered {} distinct, resumes {}, resync answers {}, ws errors {}",
        counters.files.load(Ordering::Relaxed),
        counters.sends_ok.load(Ordering::Relaxed),
        counters.sends_failed.load(Ordering::Relaxed),
        delivered.len(),
        counters.resumes.load(Ordering::Relaxed),
        counters.resyncs.load(Ordering::Relaxed),
        counters.ws_errors.load(Ordering::Relaxed),
    );
    server.stop();
    if failures.is_empty() {
        println!("soak: PASS");
        Ok(())
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        Err("the soak failed".into())
    }
}
