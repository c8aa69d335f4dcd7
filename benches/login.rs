//! Login flood benchmark: what parallel password logins do to the real `lanbox` binary's memory.
//!
//! ```text
//! cargo bench --bench login
//! cargo bench --bench login -- --bin target/x86_64-unknown-linux-musl/release/lanbox
//! ```
//!
//! It makes a fresh data directory (`lanbox init`, `lanbox user add`), starts `lanbox serve` as
//! a child process (as the footprint bench does, `footprint/child.rs`), and then, each login on
//! its own TLS connection, all at once:
//! 1. `--parallel` (200) logins of distinct unknown user names;
//! 2. `--parallel` logins of the real user with wrong passwords.
//!
//! A thread samples the child's `VmRSS` every 10 ms throughout; the bench prints the answers'
//! statuses and times, the peak (`VmHWM` of `/proc/PID/status`), the RSS at idle before, and 1,
//! 2 and `--idle-secs` (5) seconds after the floods, and whether the real user's correct login
//! then works (waiting out each `Retry-After` it is given, within two minutes). Without
//! `--bench` (as under `cargo test --benches`) it runs a small smoke workload. Results:
//! `docs/benchmarks.md`, "Login flood".

#[allow(dead_code)]
#[path = "footprint/child.rs"]
mod child;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use child::{Launch, Mem};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Goals from the issue: the peak stays under 64 MB, and the RSS is back near idle soon after.
const GOAL_PEAK_BYTES: f64 = 64e6;
/// "Near idle": within this much of the idle reading.
const NEAR_IDLE_KIB: u64 = 8 * 1024;
const USER: &str = "alice";
const PASSWORD: &str = "login bench password";
/// How long the correct login may keep being told to wait.
const LOGIN_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Parser, Debug)]
#[command(about = "lanbox login flood benchmark: memory under parallel password logins")]
struct Args {
    /// The lanbox binary to measure (default: the one cargo built with this bench).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Logins fired at once in each flood (default 200; 20 without --bench).
    #[arg(long)]
    parallel: Option<usize>,
    /// Seconds after the floods for the last RSS reading (default 5; 2 without --bench).
    #[arg(long)]
    idle_secs: Option<u64>,
    /// Extra environment for `lanbox serve`, e.g. `--env TOKIO_WORKER_THREADS=4`.
    #[arg(long, value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// Passed by `cargo bench`; without it the default workload is a smoke test.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

fn main() -> Res<()> {
    let args = Args::parse();
    let parallel = args.parallel.unwrap_or(if args.bench { 200 } else { 20 });
    let idle_secs = args.idle_secs.unwrap_or(if args.bench { 5 } else { 2 }).max(2);
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lanbox")))
        .canonicalize()?;
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("login-bench");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    let data = root.join("data");
    std::fs::create_dir_all(&root)?;
    cli(&bin, &data, &["init"], &[])?;
    cli(
        &bin,
        &data,
        &["user", "add", USER, "--role", "agent"],
        &[("LANBOX_PASSWORD", PASSWORD)],
    )?;

    println!("## lanbox login flood\n");
    println!("binary under test: {}", bin.display());
    println!("machine: {} cores, load average {}", cores(), load_average());
    if !args.env.is_empty() {
        println!("extra environment: {:?}", args.env);
    }
    let launch = Launch {
        bin: &bin,
        data: &data,
        work: &root,
        env: &args.env,
        mdns: false,
    };
    let s = child::start(&launch)?;
    std::thread::sleep(Duration::from_secs(2));
    let idle = s.mem()?;

    let sampler = Sampler::start(s.pid);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(lanbox::system::tls::client_config(
        Some(&s.fingerprint),
        &[&rustls::version::TLS13],
    )));
    let unknown = rt.block_on(flood(s.addr, &tls, parallel, |i| {
        (format!("nobody-{i}"), format!("guess {i}"))
    }))?;
    let after_unknown = s.mem()?;
    let wrong = rt.block_on(flood(s.addr, &tls, parallel, |i| {
        (USER.to_string(), format!("wrong password {i}"))
    }))?;
    let floods_done = Instant::now();
    let mut readings = Vec::new();
    for secs in [1, 2, idle_secs] {
        let at = floods_done + Duration::from_secs(secs);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        readings.push((secs, s.mem()?));
    }
    let correct = rt.block_on(login_until_in(s.addr, &tls))?;
    let end = s.mem()?;
    let peak_sampled_kb = sampler.stop();
    s.stop()?;

    println!(
        "\n{parallel} parallel logins per flood, each on its own TLS 1.3 connection; RSS sampled every 10 ms\n"
    );
    println!("| flood | answers (status × count) | slowest answer | all answered after |");
    println!("|---|---|---:|---:|");
    for (name, f) in [
        ("unknown user names", &unknown),
        ("real user, wrong passwords", &wrong),
    ] {
        println!(
            "| {name} | {} | {:.0} ms | {:.0} ms |",
            f.statuses(),
            ms(f.slowest),
            ms(f.total)
        );
    }
    println!("\n| reading | VmRSS | VmHWM | RssAnon | threads |");
    println!("|---|---:|---:|---:|---:|");
    let row = |label: &str, m: &Mem| {
        println!(
            "| {label} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {} |",
            kib_mib(m.rss_kb),
            kib_mib(m.hwm_kb),
            kib_mib(m.anon_kb),
            m.threads
        )
    };
    row("idle, before", &idle);
    row("after the unknown-name flood", &after_unknown);
    for (secs, m) in &readings {
        row(&format!("{secs} s after the floods"), m);
    }
    row("after the correct login", &end);
    println!(
        "\npeak VmRSS sampled: {:.1} MiB; VmHWM (the kernel's peak): {:.1} MiB",
        kib_mib(peak_sampled_kb),
        kib_mib(end.hwm_kb)
    );
    match &correct {
        Ok((waited, tries)) => println!(
            "correct login of the real user afterwards: OK after {:.1} s of Retry-After waits ({tries} tries)",
            waited.as_secs_f64()
        ),
        Err(e) => println!("correct login of the real user afterwards: FAILED ({e})"),
    }
    if !args.bench {
        println!("\nsmoke run: goals not evaluated");
        return Ok(());
    }
    let peak_ok = (end.hwm_kb as f64) * 1024.0 < GOAL_PEAK_BYTES;
    let last = readings.last().map_or(end, |(_, m)| *m);
    let back_ok = last.rss_kb <= idle.rss_kb + NEAR_IDLE_KIB;
    println!(
        "\nGOAL peak RSS under 64 MB: {}",
        if peak_ok { "met" } else { "MISSED" }
    );
    println!(
        "GOAL RSS back within {} MiB of idle {idle_secs} s after the floods: {}",
        NEAR_IDLE_KIB / 1024,
        if back_ok { "met" } else { "MISSED" }
    );
    println!(
        "GOAL the real user's correct login works afterwards: {}",
        if correct.is_ok() { "met" } else { "MISSED" }
    );
    Ok(())
}

/// One flood's answers.
struct Flood {
    statuses: BTreeMap<String, usize>,
    slowest: Duration,
    total: Duration,
}

impl Flood {
    fn statuses(&self) -> String {
        self.statuses
            .iter()
            .map(|(s, n)| format!("{s} × {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

async fn flood(
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
    n: usize,
    creds: impl Fn(usize) -> (String, String),
) -> Res<Flood> {
    // Connect (TLS included) first, then send every login at once, so the server sees them
    // together rather than spread over the handshakes.
    let go = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    let ready = Arc::new(tokio::sync::Semaphore::new(0));
    for i in 0..n {
        let (name, password) = creds(i);
        let (tls, go, ready) = (tls.clone(), go.clone(), ready.clone());
        tasks.push(tokio::spawn(async move {
            let conn = connect(addr, &tls).await.map_err(|e| e.to_string());
            let notified = go.notified();
            ready.add_permits(1);
            notified.await;
            let t = Instant::now();
            let r = match conn {
                Ok(mut c) => post_login(&mut c, &name, &password)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            (
                r.map(|a| a.status).unwrap_or_else(|e| format!("error: {e}")),
                t.elapsed(),
            )
        }));
    }
    let _all = ready.acquire_many(n as u32).await?;
    let t0 = Instant::now();
    go.notify_waiters();
    let mut f = Flood {
        statuses: BTreeMap::new(),
        slowest: Duration::ZERO,
        total: Duration::ZERO,
    };
    for t in tasks {
        let (status, took) = t.await?;
        *f.statuses.entry(status).or_default() += 1;
        f.slowest = f.slowest.max(took);
    }
    f.total = t0.elapsed();
    Ok(f)
}

/// The correct login of the real user, waiting out each `Retry-After`; how long it waited and
/// how many tries it took.
async fn login_until_in(
    addr: SocketAddr,
    tls: &tokio_rustls::TlsConnector,
) -> Res<Result<(Duration, u32), String>> {
    let t0 = Instant::now();
    let mut waited = Duration::ZERO;
    for tries in 1.. {
        let mut c = connect(addr, tls).await?;
        let a = post_login(&mut c, USER, PASSWORD).await?;
        match a.status.as_str() {
            "200" => return Ok(Ok((waited, tries))),
            "429" | "503" => {
                let secs = a.retry_after.ok_or("a refusal without Retry-After")?;
                if t0.elapsed() + Duration::from_secs(secs) > LOGIN_DEADLINE {
                    return Ok(Err(format!("still told to wait {secs} s after {tries} tries")));
                }
                let d = Duration::from_secs(secs);
                tokio::time::sleep(d).await;
                waited += d;
            }
            other => return Ok(Err(format!("status {other}"))),
        }
    }
    unreachable!("the loop returns")
}

type Conn = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

async fn connect(addr: SocketAddr, tls: &tokio_rustls::TlsConnector) -> Res<Conn> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    Ok(tls.connect(ServerName::try_from("lanbox.local")?, tcp).await?)
}

struct Answer {
    status: String,
    retry_after: Option<u64>,
}

async fn post_login(c: &mut Conn, name: &str, password: &str) -> Res<Answer> {
    let body = serde_json::json!({ "username": name, "password": password }).to_string();
    let req = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: lanbox.local\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    // A server closing without close_notify is reported as an error after the data.
    if let Err(e) = c.read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(e.into());
    }
    let text = String::from_utf8_lossy(&raw);
    let head = text.split_once("\r\n\r\n").map_or(&*text, |(h, _)| h);
    let status = head
        .split_whitespace()
        .nth(1)
        .ok_or("no HTTP response")?
        .to_string();
    let retry_after = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("retry-after")
            .then(|| v.trim().parse().ok())
            .flatten()
    });
    Ok(Answer { status, retry_after })
}

/// Reads the child's `VmRSS` every 10 ms on a thread of its own; `stop` gives the highest.
struct Sampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(m) = child::mem(pid) {
                    p.fetch_max(m.rss_kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        Sampler { stop, peak, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed)
    }
}

fn cli(bin: &Path, data: &Path, args: &[&str], env: &[(&str, &str)]) -> Res<String> {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LANBOX_") {
            cmd.env_remove(&k);
        }
    }
    let out = cmd
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("CREDENTIALS_DIRECTORY")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!("lanbox {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn kib_mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
