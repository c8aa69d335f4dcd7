//! WebSocket fan-out and REST throughput: lanbox against bare baselines on the same machine.
//!
//! ```text
//! cargo bench --bench ws                          # 10,000 clients, 3 rounds, then REST
//! cargo bench --bench ws -- --clients 2000 --rounds 1 --no-rest
//! ```
//!
//! WebSocket, per round and side, with the server in a child process (`benches/ws/servers.rs`):
//! 1. start the server; note its RSS with no client (after one warm-up connection);
//! 2. connect `--clients` TLS 1.3 WebSocket clients from this process (16 loopback source
//!    addresses; lanbox clients authenticate with a token and `subscribe`), let them sit idle
//!    for 2 s, note the RSS again: (RSS with N − RSS with 0) / N is the memory per idle
//!    connection;
//! 3. publish `--messages` messages one after another, each once every client has the previous
//!    one: lanbox gets each as a Telegram update injected into the in-process Bot API
//!    simulator, which its poller long-polls (so the path is poll, ingest, commit with fsync,
//!    hub, every session); the baseline gets each as a text frame from one extra client, which
//!    it broadcasts. The baseline's payload is padded to the length of lanbox's event frame.
//! 4. per client and message, latency = receive time − publish time. p50 and p99 over all
//!    (client, message) pairs. "Spread" is the same measured from the first client's receipt,
//!    which leaves out lanbox's ingest path and is the fan-out alone.
//!
//! The figure per side is the median of the rounds. Clients and server share the machine's
//! cores (as they share them for both sides). REST: see `benches/ws/rest.rs`. Without `--bench`
//! (under `cargo test --benches`) it runs a smoke test: 50 clients, 1 round, no REST.
//! Results: `docs/benchmarks.md`, sections "WebSocket fan-out" and "REST".

#[path = "ws/client.rs"]
mod client;
#[path = "ws/rest.rs"]
mod rest;
#[path = "ws/servers.rs"]
mod servers;

#[path = "common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use client::{Board, Fleet, MARKER, Res, Target};
use common::measure::median;
use futures_util::SinkExt;
use lanbox::dev::simulator::{SimBot, Simulator};
use serde_json::json;
use servers::Server;

/// Goals from the issues (17, point 4: p99 at most 1.25x the baseline's; point 3: REST at
/// least 35% of the bare server's requests per second).
const GOAL_P99_RATIO: f64 = 1.25;
const GOAL_KIB_PER_CONN: f64 = 32.0;
const GOAL_REST_SHARE: f64 = 0.35;

#[derive(Parser, Debug, Clone)]
#[command(about = "lanbox WebSocket fan-out and REST benchmark")]
struct Args {
    /// Concurrent WebSocket clients (default 10,000; 50 without --bench).
    #[arg(long)]
    clients: Option<usize>,
    /// Rounds per side; the median is reported (default 3; 1 without --bench).
    #[arg(long)]
    rounds: Option<usize>,
    /// Messages published per round.
    #[arg(long, default_value_t = 10)]
    messages: usize,
    /// Skip the REST part.
    #[arg(long)]
    no_rest: bool,
    /// Skip the WebSocket part.
    #[arg(long)]
    no_ws: bool,
    /// wrk duration per run, seconds.
    #[arg(long, default_value_t = 15)]
    wrk_secs: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    wrk_connections: u32,
    /// Child mode: `baseline-ws` or `baseline-rest BODY_FILE`.
    #[arg(long)]
    child: Option<String>,
    /// The child's argument.
    rest: Vec<String>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> Res<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match args.child.as_deref() {
        Some("baseline-ws") => return rt.block_on(servers::baseline_ws()),
        Some("baseline-rest") => {
            let file = PathBuf::from(args.rest.first().ok_or("baseline-rest needs BODY_FILE")?);
            return rt.block_on(servers::baseline_rest(&file));
        }
        Some(other) => return Err(format!("unknown child {other}").into()),
        None => {}
    }
    raise_nofile()?;
    rt.block_on(parent(args))
}

/// Lifts the soft open-files limit to the hard one (children inherit it).
fn raise_nofile() -> Res<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err("getrlimit".into());
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err("setrlimit".into());
        }
    }
    Ok(())
}

/// One side's figures of one round.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    p50_ms: f64,
    p99_ms: f64,
    spread_p50_ms: f64,
    spread_p99_ms: f64,
    max_ms: f64,
    rss0_mib: f64,
    rssn_mib: f64,
    kib_per_conn: f64,
    connect_s: f64,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1e6
}

async fn parent(args: Args) -> Res<()> {
    let full = args.bench || args.clients.is_some();
    let n = args.clients.unwrap_or(if full { 10_000 } else { 50 });
    let rounds = args.rounds.unwrap_or(if full { 3 } else { 1 });
    println!(
        "ws bench: {n} clients, {rounds} round(s), {} messages per round; lanbox binary {}",
        args.messages,
        servers::lanbox_bin()
    );
    let sim = Simulator::start().await?;
    let mut frame_len = 600;
    if !args.no_ws {
        let (mut lb, mut base) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let (round, len) = lanbox_round(&sim, n, args.messages).await?;
            frame_len = len;
            print_round("lanbox", r, &round);
            lb.push(round);
            let round = baseline_round(n, args.messages, frame_len).await?;
            print_round("baseline", r, &round);
            base.push(round);
        }
        summary(n, &lb, &base, frame_len);
    }
    if !args.no_rest && full {
        rest_part(&sim, &args).await?;
    }
    sim.stop().await?;
    Ok(())
}

fn print_round(side: &str, r: usize, x: &Round) {
    println!(
        "  round {r} {side:>8}: latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms | fan-out spread p50 {:.1} ms p99 {:.1} ms | RSS {:.1} -> {:.1} MiB = {:.1} KiB/conn | connect {:.1} s",
        x.p50_ms,
        x.p99_ms,
        x.max_ms,
        x.spread_p50_ms,
        x.spread_p99_ms,
        x.rss0_mib,
        x.rssn_mib,
        x.kib_per_conn,
        x.connect_s
    );
}

fn summary(n: usize, lb: &[Round], base: &[Round], frame_len: usize) {
    let m = |v: &[Round], f: fn(&Round) -> f64| median(v.iter().map(f).collect());
    println!(
        "\nmedian of {} round(s), {n} clients, event frame {frame_len} bytes:",
        lb.len()
    );
    println!(
        "| side | p50 ms | p99 ms | spread p50 ms | spread p99 ms | KiB per idle conn | RSS 0 -> N MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, v) in [("lanbox", lb), ("baseline", base)] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} -> {:.1} |",
            m(v, |r| r.p50_ms),
            m(v, |r| r.p99_ms),
            m(v, |r| r.spread_p50_ms),
            m(v, |r| r.spread_p99_ms),
            m(v, |r| r.kib_per_conn),
            m(v, |r| r.rss0_mib),
            m(v, |r| r.rssn_mib),
        );
    }
    let rounds: Vec<String> = lb
        .iter()
        .zip(base)
        .map(|(l, b)| format!("{:.0} / {:.0}", l.p99_ms, b.p99_ms))
        .collect();
    println!("rounds, p99 ms lanbox / baseline: {}", rounds.join(", "));
    let ratio = m(lb, |r| r.p99_ms) / m(base, |r| r.p99_ms);
    let kib = m(lb, |r| r.kib_per_conn);
    println!(
        "goal p99 <= {GOAL_P99_RATIO}x baseline: {ratio:.2}x {}; goal < {GOAL_KIB_PER_CONN} KiB per idle connection: {kib:.1} KiB {}",
        if ratio <= GOAL_P99_RATIO { "met" } else { "NOT met" },
        if kib < GOAL_KIB_PER_CONN { "met" } else { "NOT met" },
    );
}

/// Connects, measures memory, publishes; `publish(k)` sends message `k` and returns its
/// publish time on the board's clock.
async fn measure<F, Fut>(
    server: &Server,
    target: Target,
    n: usize,
    messages: usize,
    mut publish: F,
) -> Res<(Round, usize)>
where
    F: FnMut(usize, Arc<Board>) -> Fut,
    Fut: std::future::Future<Output = Res<u64>>,
{
    // One warm-up connection, so one-time set-up (runtime threads, TLS, caches) is in RSS 0.
    {
        let warm = Arc::new(Board::new(messages, 1));
        Fleet::connect(&target, 1, warm).await?.close().await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rss0 = server.rss()?;
    let board = Arc::new(Board::new(messages, n));
    let t = Instant::now();
    let fleet = Fleet::connect(&target, n, board.clone()).await?;
    let connect_s = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rssn = server.rss()?;

    let mut lat = Vec::with_capacity(n * messages);
    let mut spread = Vec::with_capacity(n * messages);
    for k in 0..messages {
        let sent = publish(k, board.clone()).await?;
        let got = client::wait_delivered(&board, k, n, Duration::from_secs(30)).await;
        if got < n {
            fleet.close().await;
            return Err(format!("message {k}: only {got} of {n} clients received it within 30 s").into());
        }
        let times: Vec<u64> = board.slots[k]
            .iter()
            .map(|a| a.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        let first = times.iter().copied().min().unwrap_or(sent);
        lat.extend(times.iter().map(|&t| t.saturating_sub(sent)));
        spread.extend(times.iter().map(|&t| t.saturating_sub(first)));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let frame_len = board.frame_len.load(std::sync::atomic::Ordering::Relaxed);
    fleet.close().await;
    lat.sort_unstable();
    spread.sort_unstable();
    Ok((
        Round {
            p50_ms: pct(&lat, 0.50),
            p99_ms: pct(&lat, 0.99),
            max_ms: pct(&lat, 1.0),
            spread_p50_ms: pct(&spread, 0.50),
            spread_p99_ms: pct(&spread, 0.99),
            rss0_mib: rss0 as f64 / 1048576.0,
            rssn_mib: rssn as f64 / 1048576.0,
            kib_per_conn: (rssn as f64 - rss0 as f64) / n as f64 / 1024.0,
            connect_s,
        },
        frame_len,
    ))
}

fn inject_text(bot: &SimBot, k: usize, chat: i64) {
    bot.inject(json!({"message": {
        "message_id": 1 + k as i64,
        "date": lanbox::store::ctx::unix_now(),
        "chat": {"id": chat, "type": "private", "first_name": "Anna"},
        "from": {"id": chat, "is_bot": false, "first_name": "Anna"},
        "text": format!("{MARKER}{k}- a customer writes a message of ordinary length to the shop, asking about an order"),
    }}));
}

async fn lanbox_round(sim: &Simulator, n: usize, messages: usize) -> Res<(Round, usize)> {
    let bot = sim.add_bot("ws_bench_bot");
    let dir = tempfile::tempdir()?;
    let token = servers::setup_lanbox(dir.path(), bot.token(), &sim.api_base())?;
    let server = servers::start_lanbox(dir.path())?;
    let target = Target {
        addr: server.addr,
        fingerprint: server.fingerprint.clone(),
        protocol: Some(format!("lanbox.v1, {token}")),
        greeting: Some(r#"{"type":"subscribe","id":1}"#.into()),
        ready_frames: 2,
    };
    let chat = 4242;
    let result = measure(&server, target, n, messages, |k, board| {
        let bot = &bot;
        async move {
            let sent = board.now();
            inject_text(bot, k, chat);
            Ok(sent)
        }
    })
    .await;
    server.stop();
    result
}

async fn baseline_round(n: usize, messages: usize, frame_len: usize) -> Res<Round> {
    let server = servers::start_baseline("baseline-ws", &[])?;
    let target = Target {
        addr: server.addr,
        fingerprint: server.fingerprint.clone(),
        protocol: None,
        greeting: None,
        ready_frames: 0,
    };
    let publisher = Arc::new(tokio::sync::Mutex::new(client::connect(&target, 0).await?));
    let result = measure(&server, target, n, messages, |k, board| {
        let publisher = publisher.clone();
        async move {
            let mut text = format!("{{\"type\":\"message.created\",\"text\":\"{MARKER}{k}-");
            while text.len() + 2 < frame_len {
                text.push('x');
            }
            text.push_str("\"}");
            let sent = board.now();
            publisher
                .lock()
                .await
                .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
                .await?;
            Ok(sent)
        }
    })
    .await;
    drop(publisher);
    server.stop();
    Ok(result?.0)
}

async fn rest_part(sim: &Simulator, args: &Args) -> Res<()> {
    let (chats, per_chat) = (40, 250);
    let bot = sim.add_bot("rest_bench_bot");
    let dir = tempfile::tempdir()?;
    let token = servers::setup_lanbox(dir.path(), bot.token(), &sim.api_base())?;
    let (total, chat) = rest::fill(&bot, 1, chats, per_chat);
    let server = servers::start_lanbox(dir.path())?;
    let http = rest::client(&server)?;
    let base = format!("https://{}:{}", client::HOST, server.addr.port());
    let took = rest::wait_stored(&http, &base, &token, total).await?;
    let path = format!("/api/v1/chats/{chat}/messages?limit=50");
    let body = http
        .get(format!("{base}{path}"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    println!(
        "\nREST: {total} messages in {} chats ingested through the simulator in {:.1} s; page of 50 = {} bytes",
        chats + chats / 4,
        took.as_secs_f64(),
        body.len()
    );
    let logs = dir.path().join("wrk");
    std::fs::create_dir_all(&logs)?;
    let url = format!("https://127.0.0.1:{}{path}", server.addr.port());
    let rss_before = server.rss()?;
    let lb = rest::wrk(
        &url,
        Some(&token),
        args.wrk_connections,
        args.wrk_secs,
        &logs.join("lanbox.txt"),
    )?;
    let rss_after = server.rss()?;
    server.stop();
    let body_file = dir.path().join("page.json");
    std::fs::write(&body_file, &body)?;
    let bare = servers::start_baseline("baseline-rest", &[body_file.to_str().ok_or("path")?])?;
    let url = format!("https://127.0.0.1:{}{path}", bare.addr.port());
    let bl = rest::wrk(
        &url,
        None,
        args.wrk_connections,
        args.wrk_secs,
        &logs.join("baseline.txt"),
    )?;
    bare.stop();
    println!(
        "wrk -t2 -c{} -d{}s --latency, GET {path}",
        args.wrk_connections, args.wrk_secs
    );
    println!("| server | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|");
    for (name, w) in [("lanbox", &lb), ("bare axum, same bytes", &bl)] {
        println!(
            "| {name} | {:.0} | {:.2} | {:.2} | {} |",
            w.rps,
            w.p50_ms,
            w.p99_ms,
            if w.errors.is_empty() {
                "none"
            } else {
                w.errors.trim()
            }
        );
    }
    println!(
        "lanbox RSS {:.1} MiB before wrk, {:.1} MiB after",
        rss_before as f64 / 1048576.0,
        rss_after as f64 / 1048576.0
    );
    let share = lb.rps / bl.rps;
    println!(
        "goal lanbox >= {:.0}% of the bare server's requests/s: {:.1}% {}",
        GOAL_REST_SHARE * 100.0,
        share * 100.0,
        if share >= GOAL_REST_SHARE {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}
