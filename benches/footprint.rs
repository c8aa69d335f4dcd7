//! Footprint benchmark: how big and how quick the real `lanbox` binary is on a box.
//!
//! ```text
//! cargo bench --bench footprint                                  # host release build
//! cargo bench --bench footprint -- --bin target/x86_64-unknown-linux-musl/release/lanbox
//! ```
//!
//! For an empty store and for a store of 1,000,000 ingested changes (built once through the
//! real pipeline and search index and cached, see `footprint/stores.rs`), it starts `lanbox
//! serve` as a child process, acting as systemd's notify socket, and measures:
//! - start to `READY=1`, with the store's files in the page cache (*warm*, a restart) and
//!   evicted from it (*cold*, as after a reboot; `posix_fadvise(DONTNEED)` on the data
//!   directory and the binary only);
//! - `VmRSS`/`VmHWM` (and `RssAnon`, `RssFile`, threads) from `/proc/PID/status`, a few seconds
//!   after ready, and again after a handful of authenticated HTTPS reads (chat list, messages,
//!   search);
//! - the stop on SIGTERM, which must be clean.
//!
//! While it measures, `--bots` (4) bots of the Bot API simulator are added to the store with
//! `lanbox account add`, so `serve` runs a poller per bot, long-polling as it would Telegram;
//! they are removed again at the end.
//!
//! The first start of each store (which also creates the TLS certificate) is a warm-up, shown
//! but not counted. Also reported: the size of the binary under test and of any ARM builds that
//! `scripts/build-arm.sh` left in the target directories. Without `--bench` (as under `cargo
//! test --benches`) it runs a small smoke workload. Results: `docs/benchmarks.md`, "Footprint".

#[path = "footprint/api.rs"]
mod api;
#[path = "footprint/child.rs"]
mod child;
#[path = "common/mod.rs"]
mod common;
#[path = "footprint/report.rs"]
mod report;
#[path = "footprint/sizes.rs"]
mod sizes;
#[path = "footprint/stores.rs"]
mod stores;

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use lanbox::dev::simulator::Simulator;

use child::{Launch, Mem};
use report::{kib_mib, mib, ms, ticks_ms};
use stores::Shape;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Goals from the issue.
pub const GOAL_RSS_BYTES: f64 = 25e6;
pub const GOAL_READY: Duration = Duration::from_secs(1);

#[derive(Parser, Debug)]
#[command(about = "lanbox footprint benchmark: start time, memory and size of the real binary")]
struct Args {
    /// The lanbox binary to measure (default: the one cargo built with this bench).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Counted starts per store and page-cache state (default 3; 1 without --bench).
    #[arg(long)]
    runs: Option<usize>,
    /// Changes in the corpus store (default 1,000,000; 2,000 without --bench).
    #[arg(long)]
    messages: Option<u64>,
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    #[arg(long, default_value_t = 4)]
    accounts: u64,
    #[arg(long, default_value_t = 3000)]
    chats: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Seconds to leave the process alone before each memory reading.
    #[arg(long)]
    idle_secs: Option<u64>,
    /// Rounds of API reads between the two readings.
    #[arg(long, default_value_t = 5)]
    reads: u32,
    /// Skip the starts with the store evicted from the page cache.
    #[arg(long)]
    no_cold: bool,
    /// Live bots on the Bot API simulator (one poller each) while measuring.
    #[arg(long, default_value_t = 4)]
    bots: u32,
    /// Announce over mDNS (off by default: it would advertise on the machine's LAN).
    #[arg(long)]
    mdns: bool,
    /// Extra environment for `lanbox serve`, e.g. `--env LANBOX_STORE_CACHE_MB=16`.
    #[arg(long, value_parser = parse_env)]
    env: Vec<(String, String)>,
    /// More target directories to look for ARM builds in (default: this one and
    /// $CARGO_TARGET_DIR).
    #[arg(long)]
    target_dir: Vec<PathBuf>,
    /// Build the cached corpus store again.
    #[arg(long)]
    rebuild: bool,
    /// Where the stores go (default: cargo's target/tmp/footprint).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Passed by `cargo bench`; without it the default workload is a smoke test.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_string(), v.to_string()))
}

/// One counted start.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub ready: Duration,
    pub idle: Mem,
    /// CPU use, in percent of one core, between ready and the idle reading.
    pub idle_cpu: f64,
    pub reads: api::Reads,
    pub after: Mem,
    pub stop: Duration,
}

fn main() -> Res<()> {
    let args = Args::parse();
    let full = args.bench || args.messages.is_some();
    let runs = args.runs.unwrap_or(if full { 3 } else { 1 }).max(1);
    let idle = Duration::from_secs(args.idle_secs.unwrap_or(if full { 3 } else { 1 }));
    let cold = full && !args.no_cold;
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let root = args.dir.clone().unwrap_or_else(|| tmp.join("footprint"));
    std::fs::create_dir_all(&root)?;
    let root = root.canonicalize()?;
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lanbox")))
        .canonicalize()?;

    println!("## lanbox footprint\n");
    report::machine();
    let under_test = sizes::describe(&bin, &root.join("strip"))?;
    println!(
        "binary under test: {} ({}, {:.2} MiB, stripped {})",
        bin.display(),
        under_test.linking,
        mib(under_test.bytes),
        under_test
            .stripped
            .map_or("?".into(), |s| format!("{:.2} MiB", mib(s)))
    );
    if !args.env.is_empty() {
        println!("extra environment: {:?}", args.env);
    }
    println!("mDNS: {}\n", if args.mdns { "on" } else { "off" });
    report::arm_sizes(&args.target_dir, tmp, &root);

    let shape = Shape {
        changes: args.messages.unwrap_or(if full { 1_000_000 } else { 2_000 }),
        batch: args.batch,
        accounts: args.accounts,
        chats: args.chats,
        seed: args.seed,
    };
    let stores = [
        stores::empty(&bin, &root)?,
        stores::corpus(&bin, &root, &shape, args.rebuild)?,
    ];
    // The Bot API simulator the live bots poll, on a runtime of its own for the whole run.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let sim = rt.block_on(Simulator::start())?;
    println!(
        "live bots: {} on the Bot API simulator (one long-polling poller each)\n",
        args.bots
    );

    let mut rows = Vec::new();
    for store in &stores {
        let work = root.join("work");
        std::fs::create_dir_all(&work)?;
        let launch = Launch {
            bin: &bin,
            data: &store.data,
            work: &work,
            env: &args.env,
            mdns: args.mdns,
        };
        stores::add_bots(&bin, &store.data, &sim, args.bots)?;
        let first = measure(&launch, idle, &store.token, args.reads, false)?;
        eprintln!(
            "footprint: {} first start (warm-up, not counted): {}",
            store.name,
            brief(&first)
        );
        let (mut warm, mut evicted) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let s = measure(&launch, idle, &store.token, args.reads, false)?;
            eprintln!("footprint: {} warm #{}: {}", store.name, i + 1, brief(&s));
            warm.push(s);
            if cold {
                let s = measure(&launch, idle, &store.token, args.reads, true)?;
                eprintln!("footprint: {} cold #{}: {}", store.name, i + 1, brief(&s));
                evicted.push(s);
            }
        }
        stores::remove_bots(&bin, &store.data)?;
        rows.push((store, "warm", warm));
        if cold {
            rows.push((store, "cold", evicted));
        }
        if store.changes == 0 {
            println!(
                "first start, empty store (creates the certificate): {:.0} ms",
                ms(first.ready)
            );
        }
    }
    report::report(&rows, full);
    println!("\nload average after: {}", common::measure::load_average());
    Ok(())
}

fn measure(l: &Launch<'_>, idle: Duration, token: &str, reads: u32, cold: bool) -> Res<Sample> {
    if cold {
        stores::evict(l.data)?;
        stores::evict(l.bin)?;
    }
    let s = child::start(l)?;
    let at_ready = s.mem()?;
    std::thread::sleep(idle);
    let idle_mem = s.mem()?;
    // CPU the process used while it should have been idle (start-up work left running).
    let idle_cpu = ticks_ms(idle_mem.cpu_ticks.saturating_sub(at_ready.cpu_ticks))
        / idle.as_secs_f64().max(0.001)
        / 10.0;
    let r = api::reads(s.addr, &s.fingerprint, token, reads)?;
    std::thread::sleep(idle);
    let after = s.mem()?;
    let ready = s.ready;
    let stop = s.stop()?;
    Ok(Sample {
        ready,
        idle: idle_mem,
        idle_cpu,
        reads: r,
        after,
        stop,
    })
}

fn brief(s: &Sample) -> String {
    format!(
        "ready {:.0} ms, idle RSS {:.1} MiB (CPU {:.0}% of a core), after {} reads RSS {:.1} MiB (HWM {:.1}), {} threads",
        ms(s.ready),
        kib_mib(s.idle.rss_kb),
        s.idle_cpu,
        s.reads.requests,
        kib_mib(s.after.rss_kb),
        kib_mib(s.after.hwm_kb),
        s.after.threads
    )
}
