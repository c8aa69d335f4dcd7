//! Ingest benchmark: the full pipeline against raw redb, on the same synthetic workload.
//!
//! ```text
//! cargo bench --bench ingest                                   # 1,000,000 changes, batch 1000
//! cargo bench --bench ingest -- --messages 100000 --batch 500 --cipher chacha20-poly1305
//! ```
//!
//! The deterministic corpus generator (`benches/common/`, splitmix64, fixed seed; the search and
//! footprint benchmarks use it too) produces a stream of batches, one account per batch like a
//! connector poll: 94% new messages, 5% edits and 1% deletes of earlier messages, in private
//! chats, groups, supergroups and channels; text in English, Russian, Arabic, Chinese and
//! Japanese with emoji, lengths skewed short (most 10–200 chars, a few up to 4096), 10% media
//! with plausible attachment fields, occasional entities, replies and forwards.
//!
//! The parent process runs each side in a child process of its own (this binary again, with
//! `--side`), so the peak RSS each child reads from `/proc/self/status` (VmHWM) is that side's
//! alone:
//! - `raw`: the same operations straight into one redb table: key = lanbox's 24-byte `MsgKey`,
//!   value = postcard of the plaintext message (no sealing, no chats, counters or event log),
//!   one write transaction and commit per batch, default durability, same cache size;
//! - `pipeline`: `Store::open` + `Pipeline::submit_blocking` with `NoIndex`, one batch at a time
//!   (so also one transaction per batch), once per cipher;
//! - `team` (with `--team N`): the pipeline again, with the first cipher, on a box where a team
//!   works: N users have their own read state in every chat (nothing read, so every incoming
//!   message moves each of their unread counts) and every chat has a conversation record
//!   (status, assignee). The state is written as each chat first appears, in one extra
//!   transaction per batch that brought new chats, timed with the batch. Its rate against the
//!   plain pipeline's is the cost of per-agent state.
//!
//! Timing covers only the storing (submit, or transaction + encode + commit); generating the
//! batches is timed separately and excluded from the rate. Without `--bench` (as under
//! `cargo test --benches`) it runs a small smoke workload instead of a million changes.
//! Results and analysis: `docs/benchmarks.md`.

#[path = "common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use common::measure::{cpu_seconds, load_average, peak_rss_kb};
use common::words::{Counts, Gen};
use lanbox::ingest::apply::scope_for;
use lanbox::ingest::{Batch, Change, NoIndex, Outcome, Pipeline};
use lanbox::store::new_account::{self as accounts, NewAccount};
use lanbox::store::records::ConversationRecord;
use lanbox::store::seal::Cipher;
use lanbox::store::{ChatKey, DB_FILE, MsgKey, Store, StoreOptions};
use redb::{Database, Durability, ReadableDatabase, ReadableTableMetadata, TableDefinition, TableHandle};

type Res<T> = Result<T, Box<dyn Error>>;

/// The raw side's only table, keyed exactly like lanbox's `chat_message`.
const RAW_MESSAGES: TableDefinition<MsgKey, &[u8]> = TableDefinition::new("chat_message");

/// Goals from the issue.
const GOAL_RATIO: f64 = 0.5;
const GOAL_RATE: f64 = 20_000.0;
const GOAL_RSS_MB: f64 = 200.0;

#[derive(Parser, Debug, Clone)]
#[command(about = "lanbox ingest benchmark: full pipeline against raw redb")]
struct Args {
    /// Changes to ingest (default 1,000,000; 5,000 without --bench, as a smoke test).
    #[arg(long)]
    messages: Option<u64>,
    /// Changes per batch (one connector poll, one transaction).
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Pipeline cipher: both (AES-256-GCM if the CPU has AES instructions, and
    /// ChaCha20-Poly1305), auto, aes-256-gcm or chacha20-poly1305.
    #[arg(long, default_value = "both")]
    cipher: String,
    #[arg(long, default_value_t = 4)]
    accounts: u64,
    #[arg(long, default_value_t = 3000)]
    chats: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Concurrent submitters on the pipeline side (one connector per account; the writer's group
    /// commit then merges their batches). Must divide --accounts. The raw side stays sequential.
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Raw side only: commit with `Durability::None` except every 64th commit, to size what the
    /// fsync per commit costs (the pipeline always commits durably).
    #[arg(long)]
    raw_lazy_fsync: bool,
    /// Also run the `team` side: the pipeline with N users' read state and a conversation record
    /// on every chat.
    #[arg(long, default_value_t = 0)]
    team: u64,
    /// Run every side this many times, rotating the order, and report the median.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// redb page cache in MiB, both sides (default: lanbox's `StoreOptions` default).
    #[arg(long)]
    cache_mb: Option<usize>,
    /// Parent directory for the databases (default: cargo's target/tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the databases after the run.
    #[arg(long)]
    keep: bool,
    /// Run one side in this process and print its RESULT line (what the parent starts).
    #[arg(long, value_enum)]
    side: Option<Side>,
    /// Passed by `cargo bench`; without it the default workload is a smoke test.
    #[arg(long, hide = true)]
    bench: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Side {
    Raw,
    Pipeline,
    Team,
}

fn main() -> Res<()> {
    let args = Args::parse();
    match args.side {
        Some(side) => child(&args, side),
        None => parent(&args),
    }
}

fn messages(args: &Args) -> u64 {
    args.messages
        .unwrap_or(if args.bench { 1_000_000 } else { 5_000 })
}

/// A run with the real workload, not the smoke test `cargo test --benches` does.
fn full_run(args: &Args) -> bool {
    args.bench || args.messages.is_some()
}

fn check_producers(args: &Args) -> Res<()> {
    if args.producers == 0 || !args.accounts.is_multiple_of(args.producers as u64) {
        return Err("--producers must divide --accounts (each account's batches stay on one thread)".into());
    }
    Ok(())
}

fn cache_bytes(args: &Args) -> usize {
    args.cache_mb
        .map(|m| m << 20)
        .unwrap_or(StoreOptions::default().cache_bytes)
}

// ---------------------------------------------------------------------------------------------
// One side, in a child process
// ---------------------------------------------------------------------------------------------

/// What one side measured; travels from child to parent as one `RESULT key=value ...` line.
#[derive(Debug, Default, Clone)]
struct SideResult {
    side: String,
    cipher: String,
    changes: u64,
    counts: Counts,
    ingest_s: f64,
    gen_s: f64,
    hwm_kb: u64,
    file_bytes: u64,
    stored: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    /// CPU seconds (all threads) spent storing, i.e. outside the generator.
    cpu_s: f64,
    /// Bytes this process caused to be written to / read from storage (`/proc/self/io`).
    write_bytes: u64,
    read_bytes: u64,
    /// `name:rows:stored_bytes:leaf_pages:branch_pages` per table, `,`-separated.
    tables: String,
}

impl SideResult {
    fn rate(&self) -> f64 {
        self.changes as f64 / self.ingest_s
    }

    fn to_line(&self) -> String {
        let c = &self.counts;
        format!(
            "RESULT side={} cipher={} changes={} new={} edits={} deletes={} media={} ingest_s={:.4} gen_s={:.4} \
             hwm_kb={} file_bytes={} stored={} p50_ms={:.3} p99_ms={:.3} max_ms={:.3} cpu_s={:.3} \
             write_bytes={} read_bytes={} tables={}",
            self.side,
            self.cipher,
            self.changes,
            c.new,
            c.edits,
            c.deletes,
            c.media,
            self.ingest_s,
            self.gen_s,
            self.hwm_kb,
            self.file_bytes,
            self.stored,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.cpu_s,
            self.write_bytes,
            self.read_bytes,
            self.tables
        )
    }

    fn parse(line: &str) -> Option<SideResult> {
        let kv: HashMap<&str, &str> = line
            .strip_prefix("RESULT ")?
            .split(' ')
            .filter_map(|p| p.split_once('='))
            .collect();
        let num = |k: &str| kv.get(k).and_then(|v| v.parse::<f64>().ok());
        let int = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok());
        Some(SideResult {
            side: kv.get("side")?.to_string(),
            cipher: kv.get("cipher")?.to_string(),
            changes: int("changes")?,
            counts: Counts {
                new: int("new")?,
                edits: int("edits")?,
                deletes: int("deletes")?,
                media: int("media")?,
            },
            ingest_s: num("ingest_s")?,
            gen_s: num("gen_s")?,
            hwm_kb: int("hwm_kb")?,
            file_bytes: int("file_bytes")?,
            stored: int("stored")?,
            p50_ms: num("p50_ms")?,
            p99_ms: num("p99_ms")?,
            max_ms: num("max_ms")?,
            cpu_s: num("cpu_s")?,
            write_bytes: int("write_bytes")?,
            read_bytes: int("read_bytes")?,
            tables: kv.get("tables")?.to_string(),
        })
    }
}

/// Where a side sends its batches. Each sink is used by one thread.
type Sink<'a> = Box<dyn FnMut(Batch) -> Res<()> + Send + 'a>;

/// Generates the workload batch by batch and hands the batches to the sinks.
///
/// With one sink the generator and the sink take turns on this thread, and only the sink is
/// timed. With several (`--producers`), each sink runs on a thread of its own, like one connector
/// per account: batch `i` goes to sink `i % n`, so each account's batches stay in order on one
/// thread (hence `accounts % producers == 0`), and the rate is over wall time, with the generator
/// running alongside.
fn drive(args: &Args, mut sinks: Vec<Sink<'_>>) -> Res<SideResult> {
    let total = messages(args);
    let mut g = Gen::new(args.seed, args.accounts, args.chats);
    let mut gen_time = Duration::ZERO;
    let cpu_start = cpu_seconds();
    let (ingest, mut lat) = if sinks.len() == 1 {
        let store = &mut sinks[0];
        let mut ingest = Duration::ZERO;
        let mut lat: Vec<f64> = Vec::new();
        let (mut done, mut next_report) = (0u64, total / 10);
        while done < total {
            let n = (total - done).min(args.batch as u64) as usize;
            let t = Instant::now();
            let batch = g.batch(n);
            gen_time += t.elapsed();
            let t = Instant::now();
            store(batch)?;
            let d = t.elapsed();
            ingest += d;
            lat.push(d.as_secs_f64() * 1e3);
            done += n as u64;
            if done >= next_report && done < total {
                eprintln!("  {done} changes, {:.0}/s", done as f64 / ingest.as_secs_f64());
                next_report += total / 10;
            }
        }
        (ingest, lat)
    } else {
        let start = Instant::now();
        let lat = std::thread::scope(|scope| -> Res<Vec<f64>> {
            let mut queues = Vec::new();
            let mut threads = Vec::new();
            for mut sink in sinks.drain(..) {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(1);
                queues.push(tx);
                threads.push(scope.spawn(move || -> Result<Vec<f64>, String> {
                    let mut lat = Vec::new();
                    for batch in rx {
                        let t = Instant::now();
                        sink(batch).map_err(|e| e.to_string())?;
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(lat)
                }));
            }
            let mut done = 0u64;
            for i in 0.. {
                if done >= total {
                    break;
                }
                let n = (total - done).min(args.batch as u64) as usize;
                let t = Instant::now();
                let batch = g.batch(n);
                gen_time += t.elapsed();
                if queues[i % queues.len()].send(batch).is_err() {
                    break; // that producer failed; its error is reported below
                }
                done += n as u64;
            }
            drop(queues);
            let mut lat = Vec::new();
            for t in threads {
                lat.extend(t.join().map_err(|_| "producer panicked")??);
            }
            Ok(lat)
        })?;
        (start.elapsed(), lat)
    };
    // With one sink the generator runs alone (the writer is idle meanwhile), so its wall time is
    // its CPU time; with several this is an approximation.
    let cpu_s = (cpu_seconds() - cpu_start - gen_time.as_secs_f64()).max(0.0);
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    Ok(SideResult {
        changes: total,
        counts: g.counts,
        ingest_s: ingest.as_secs_f64(),
        gen_s: gen_time.as_secs_f64(),
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
        cpu_s,
        ..SideResult::default()
    })
}

/// `(write_bytes, read_bytes)` of this process from `/proc/self/io`.
fn io_bytes() -> (u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("write_bytes:"), field("read_bytes:"))
}

fn side_dir(args: &Args, name: &str) -> PathBuf {
    let parent = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    parent.join(format!("ingest-{name}-{}", std::process::id()))
}

fn child(args: &Args, side: Side) -> Res<()> {
    let cipher = match side {
        Side::Raw => None,
        Side::Pipeline | Side::Team => Cipher::parse(&args.cipher)
            .ok_or("--side pipeline takes --cipher auto, aes-256-gcm or chacha20-poly1305")?,
    };
    if side != Side::Raw {
        check_producers(args)?;
    }
    let name = match (side, cipher) {
        (Side::Raw, _) => "raw".to_string(),
        (Side::Pipeline, c) => format!("pipeline-{}", cipher_name(c.unwrap_or_else(Cipher::for_this_cpu))),
        (Side::Team, c) => format!("team-{}", cipher_name(c.unwrap_or_else(Cipher::for_this_cpu))),
    };
    let dir = side_dir(args, &name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut result = match side {
        Side::Raw => run_raw(args, &dir)?,
        Side::Pipeline => run_pipeline(args, cipher, &dir, 0)?,
        Side::Team => run_pipeline(args, cipher, &dir, args.team.max(1))?,
    };
    result.file_bytes = std::fs::metadata(dir.join(DB_FILE))?.len();
    (result.write_bytes, result.read_bytes) = io_bytes();
    result.tables = table_stats(&dir.join(DB_FILE))?;
    if !args.keep {
        std::fs::remove_dir_all(&dir)?;
    }
    let c = result.counts;
    if result.stored != c.new - c.deletes {
        return Err(format!(
            "{name}: {} messages stored, expected {}",
            result.stored,
            c.new - c.deletes
        )
        .into());
    }
    println!("{}", result.to_line());
    Ok(())
}

/// Rows, payload bytes and pages of every table, read after the side closed its database.
fn table_stats(path: &Path) -> Res<String> {
    let db = Database::open(path)?;
    let txn = db.begin_read()?;
    let mut out = Vec::new();
    for handle in txn.list_tables()? {
        let name = handle.name().to_string();
        let t = txn.open_untyped_table(handle)?;
        let st = t.stats()?;
        out.push(format!(
            "{name}:{}:{}:{}:{}",
            t.len()?,
            st.stored_bytes(),
            st.leaf_pages(),
            st.branch_pages()
        ));
    }
    Ok(out.join(","))
}

fn cipher_name(c: Cipher) -> &'static str {
    match c {
        Cipher::Aes256Gcm => "aes-256-gcm",
        Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
    }
}

fn run_raw(args: &Args, dir: &Path) -> Res<SideResult> {
    let db = Database::builder()
        .set_cache_size(cache_bytes(args))
        .create(dir.join(DB_FILE))?;
    let mut commits = 0u64;
    let mut result = drive(
        args,
        vec![Box::new(|batch: Batch| {
            let mut txn = db.begin_write()?;
            commits += 1;
            if args.raw_lazy_fsync && !commits.is_multiple_of(64) {
                txn.set_durability(Durability::None)?;
            }
            {
                let mut table = txn.open_table(RAW_MESSAGES)?;
                for change in &batch.changes {
                    match change {
                        Change::New(m) | Change::Edit(m) => {
                            let key = MsgKey {
                                scope: scope_for(batch.account, m.chat.kind),
                                chat: m.chat.id,
                                msg: m.message_id,
                            };
                            // What lanbox keeps of a message, in the clear and in one record.
                            let value = postcard::to_allocvec(&(
                                m.message_id,
                                m.topic,
                                m.direction,
                                m.date,
                                m.edited_at,
                                &m.status,
                                &m.content,
                            ))?;
                            table.insert(key, value.as_slice())?;
                        }
                        Change::Delete {
                            chat, message_ids, ..
                        } => {
                            let scope = scope_for(batch.account, chat.kind);
                            for &msg in message_ids {
                                table.remove(MsgKey {
                                    scope,
                                    chat: chat.id,
                                    msg,
                                })?;
                            }
                        }
                        _ => unreachable!("the generator makes only new, edit and delete"),
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })],
    )?;
    if args.raw_lazy_fsync {
        db.begin_write()?.commit()?; // make the last lazy commits durable before measuring
    }
    result.hwm_kb = peak_rss_kb();
    result.stored = db.begin_read()?.open_table(RAW_MESSAGES)?.len()?;
    result.side = "raw".into();
    result.cipher = "none".into();
    Ok(result)
}

/// The chats of a batch not seen before.
fn new_chats(batch: &Batch, seen: &Mutex<HashSet<ChatKey>>) -> Vec<ChatKey> {
    let mut seen = seen.lock().expect("no producer panicked");
    let mut out = Vec::new();
    for c in &batch.changes {
        if let Change::New(m) | Change::Edit(m) = c {
            let key = ChatKey {
                scope: scope_for(m.account, m.chat.kind),
                chat: m.chat.id,
            };
            if seen.insert(key) {
                out.push(key);
            }
        }
    }
    out
}

/// Gives `users` users their own read state (nothing read) and a conversation record
/// (open, assigned to user 1) in each of `chats`, in one transaction.
fn add_team_state(store: &Store, chats: Vec<ChatKey>, users: u64) -> Res<()> {
    if chats.is_empty() {
        return Ok(());
    }
    store.write_blocking(chats.len(), move |ctx| {
        for &chat in &chats {
            for user in 1..=users {
                ctx.set_user_read(chat, user, i64::MIN, 0)?;
            }
            let rec = ConversationRecord {
                assignee: Some(1),
                ..ConversationRecord::default()
            };
            ctx.put_conversation(chat, &rec)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn run_pipeline(args: &Args, cipher: Option<Cipher>, dir: &Path, team: u64) -> Res<SideResult> {
    let opts = StoreOptions {
        cipher,
        cache_bytes: cache_bytes(args),
        credentials_dir: None,
        ..StoreOptions::default()
    };
    let store = Store::open(dir, &opts)?;
    for a in 1..=args.accounts {
        let spec = NewAccount {
            channel: "telegram".into(),
            name: format!("bench bot {a}"),
            ..NewAccount::default()
        };
        let id = accounts::create_blocking(&store, spec)?.id;
        assert_eq!(id, a, "accounts are numbered from 1");
    }
    let pipeline = Pipeline::new(store.clone(), Arc::new(NoIndex));
    let total = std::sync::Mutex::new(Outcome::default());
    let seen = Mutex::new(HashSet::new());
    let sinks = (0..args.producers.max(1))
        .map(|_| {
            let (pipeline, total, seen, store) = (pipeline.clone(), &total, &seen, &store);
            Box::new(move |batch: Batch| {
                let fresh = if team > 0 {
                    new_chats(&batch, seen)
                } else {
                    Vec::new()
                };
                let o = pipeline.submit_blocking(batch)?;
                add_team_state(store, fresh, team)?;
                let mut t = total.lock().expect("no producer panicked");
                t.created += o.created;
                t.updated += o.updated;
                t.deleted += o.deleted;
                t.duplicates += o.duplicates;
                Ok(())
            }) as Sink<'_>
        })
        .collect();
    let mut result = drive(args, sinks)?;
    let total = total.into_inner().expect("no producer panicked");
    result.hwm_kb = peak_rss_kb();
    let c = result.counts;
    let expected = (c.new, c.edits, c.deletes, 0);
    let got = (
        total.created.into(),
        total.updated.into(),
        total.deleted.into(),
        total.duplicates,
    );
    if got != expected {
        return Err(format!(
            "pipeline outcome (created, updated, deleted, duplicates) {got:?}, expected {expected:?}"
        )
        .into());
    }
    result.stored = store.reader()?.all_message_keys()?.len() as u64;
    result.side = if team > 0 { "team" } else { "pipeline" }.into();
    result.cipher = cipher_name(store.cipher()).into();
    drop(pipeline);
    // The last handle: the writer drains and the database closes before the file is measured.
    drop(store);
    Ok(result)
}

// ---------------------------------------------------------------------------------------------
// The parent: run the sides, print the table
// ---------------------------------------------------------------------------------------------

fn cpuinfo_field(names: &[&str]) -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    names.iter().find_map(|n| {
        info.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == *n).then(|| v.trim().to_string())
        })
    })
}

fn mem_total_gib() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: f64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / (1024.0 * 1024.0))
}

/// Runs one side in a child process and reads its RESULT line.
fn run_child(args: &Args, side: Side, cipher: &str) -> Res<SideResult> {
    let mut cmd = Command::new(std::env::current_exe()?);
    let num = |v: u64| v.to_string();
    cmd.args(["--bench", "--cipher", cipher, "--messages", &num(messages(args))])
        .args([
            "--side",
            match side {
                Side::Raw => "raw",
                Side::Pipeline => "pipeline",
                Side::Team => "team",
            },
        ])
        .args(["--team", &num(args.team)])
        .args([
            "--batch",
            &num(args.batch as u64),
            "--producers",
            &num(args.producers as u64),
        ])
        .args([
            "--accounts",
            &num(args.accounts),
            "--chats",
            &num(u64::from(args.chats)),
        ])
        .args(["--seed", &num(args.seed)]);
    if let Some(mb) = args.cache_mb {
        cmd.args(["--cache-mb", &num(mb as u64)]);
    }
    if let Some(d) = &args.dir {
        cmd.arg("--dir").arg(d);
    }
    if args.keep {
        cmd.arg("--keep");
    }
    if args.raw_lazy_fsync {
        cmd.arg("--raw-lazy-fsync");
    }
    let out = cmd.stderr(Stdio::inherit()).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!("{side:?} side failed ({}): {stdout}", out.status).into());
    }
    Ok(stdout
        .lines()
        .find_map(SideResult::parse)
        .ok_or("child printed no RESULT line")?)
}

fn parent(args: &Args) -> Res<()> {
    let has_aes = Cipher::for_this_cpu() == Cipher::Aes256Gcm;
    let ciphers: Vec<&str> = match args.cipher.as_str() {
        "both" if has_aes => vec!["aes-256-gcm", "chacha20-poly1305"],
        "both" => vec!["chacha20-poly1305"],
        other => {
            Cipher::parse(other).ok_or("--cipher: both, auto, aes-256-gcm or chacha20-poly1305")?;
            vec![other]
        }
    };
    let cpu = cpuinfo_field(&["model name", "Model", "Hardware"]).unwrap_or_else(|| "unknown CPU".into());
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "lanbox ingest benchmark{}",
        if full_run(args) {
            ""
        } else {
            " (smoke run: pass --bench or --messages)"
        }
    );
    println!(
        "machine: {cpu}, {threads} CPUs, {:.1} GiB RAM, Linux {} ({}), AES instructions: {}",
        mem_total_gib().unwrap_or(0.0),
        kernel.trim(),
        std::env::consts::ARCH,
        if has_aes { "yes" } else { "no" }
    );
    println!("data dir: {}", side_dir(args, "*").display());
    println!("load average before: {}", load_average());

    check_producers(args)?;
    let mut runs = vec![(Side::Raw, "auto")];
    runs.extend(ciphers.iter().map(|c| (Side::Pipeline, *c)));
    if args.team > 0 {
        runs.push((Side::Team, ciphers[0]));
    }
    let mut all: Vec<Vec<SideResult>> = vec![Vec::new(); runs.len()];
    for rep in 0..args.repeat.max(1) {
        // Rotate the order, so no side always runs first on a quiet disk.
        for k in 0..runs.len() {
            let i = (k + rep) % runs.len();
            let (side, cipher) = runs[i];
            eprintln!("{side:?} ({cipher}), run {}:", rep + 1);
            all[i].push(run_child(args, side, cipher)?);
            // Let the deleted database's writeback and discards finish before the next side.
            let _ = Command::new("sync").status();
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    // The run with the median rate stands for its side.
    let results: Vec<SideResult> = all
        .iter_mut()
        .map(|rs| {
            rs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
            rs[(rs.len() - 1) / 2].clone()
        })
        .collect();
    let ranges: Vec<String> = all
        .iter()
        .map(|rs| format!("{:.0}–{:.0}", rs[0].rate(), rs[rs.len() - 1].rate()))
        .collect();

    let raw = results[0].clone();
    let c = raw.counts;
    println!(
        "workload: {} changes ({} new, {} edits, {} deletes; {:.1}% of new messages are media), \
         {} accounts, {} chats, {} changes per batch, seed {}",
        raw.changes,
        c.new,
        c.edits,
        c.deletes,
        100.0 * c.media as f64 / c.new.max(1) as f64,
        args.accounts,
        args.chats,
        args.batch,
        args.seed
    );
    println!(
        "pipeline submitters: {} (raw: 1); runs per side: {}{}",
        args.producers,
        args.repeat.max(1),
        if args.repeat > 1 { ", median shown" } else { "" }
    );
    println!(
        "stored at the end: {} messages on every side; redb cache {} MiB",
        raw.stored,
        cache_bytes(args) >> 20
    );
    println!();
    println!(
        "| side | cipher | changes/s | range | vs raw | ingest s | CPU s | CPU/change | peak RSS | file size | \
         written | batch p50 | batch p99 | batch max |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (r, range) in results.iter().zip(&ranges) {
        println!(
            "| {} | {} | {:.0} | {range} | {:.0}% | {:.1} | {:.1} | {:.1} µs | {:.0} MiB | {:.0} MiB | \
             {:.0} MiB | {:.1} ms | {:.1} ms | {:.1} ms |",
            match r.side.as_str() {
                "raw" => "raw redb",
                "team" => "pipeline + team state",
                _ => "pipeline",
            },
            r.cipher,
            r.rate(),
            100.0 * r.rate() / raw.rate(),
            r.ingest_s,
            r.cpu_s,
            r.cpu_s * 1e6 / r.changes as f64,
            r.hwm_kb as f64 / 1024.0,
            r.file_bytes as f64 / (1024.0 * 1024.0),
            r.write_bytes as f64 / (1024.0 * 1024.0),
            r.p50_ms,
            r.p99_ms,
            r.max_ms
        );
    }
    println!();
    println!("| side | table | rows | payload | bytes/row | leaf pages | branch pages |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &results {
        for t in r.tables.split(',').filter(|t| !t.is_empty()) {
            let f: Vec<&str> = t.split(':').collect();
            let [name, rows, bytes, leaves, branches] = f[..] else {
                continue;
            };
            let (rows, bytes): (u64, u64) = (rows.parse()?, bytes.parse()?);
            if rows < 100 {
                continue;
            }
            println!(
                "| {} {} | {name} | {rows} | {:.1} MiB | {} | {leaves} | {branches} |",
                r.side,
                r.cipher,
                bytes as f64 / (1024.0 * 1024.0),
                bytes / rows
            );
        }
    }
    println!();
    println!(
        "(generating the workload took {:.1} s per side, {})",
        raw.gen_s,
        if args.producers > 1 {
            "not counted for raw; alongside the pipeline's submitters, so within its wall time"
        } else {
            "not counted"
        }
    );
    println!(
        "load average after: {} (other work on the machine skews the figures)",
        load_average()
    );
    println!(
        "goals: pipeline >= {:.0}% of raw, >= {GOAL_RATE:.0} changes/s, peak RSS < {GOAL_RSS_MB:.0} MB",
        GOAL_RATIO * 100.0
    );
    if !full_run(args) {
        println!("  (checked on the full run: cargo bench --bench ingest)");
        return Ok(());
    }
    let mut all_met = true;
    for r in results.iter().skip(1) {
        let ratio = r.rate() / raw.rate();
        let rss_mb = r.hwm_kb as f64 * 1024.0 / 1e6;
        let mark = |ok: bool| if ok { "met" } else { "MISSED" };
        println!(
            "  {}: ratio {:.2} {}, {:.0}/s {}, peak RSS {:.0} MB {}",
            r.cipher,
            ratio,
            mark(ratio >= GOAL_RATIO),
            r.rate(),
            mark(r.rate() >= GOAL_RATE),
            rss_mb,
            mark(rss_mb < GOAL_RSS_MB)
        );
        all_met &= ratio >= GOAL_RATIO && r.rate() >= GOAL_RATE && rss_mb < GOAL_RSS_MB;
    }
    if !all_met {
        println!("at least one goal missed (see docs/benchmarks.md for where the time goes)");
    }
    if let Some(team) = results.iter().find(|r| r.side == "team") {
        let plain = results
            .iter()
            .find(|r| r.side == "pipeline" && r.cipher == team.cipher)
            .ok_or("the team side runs with the first pipeline cipher")?;
        let cpu = |r: &SideResult| r.cpu_s * 1e6 / r.changes as f64;
        println!(
            "per-agent state ({} users' read state and a conversation record on every chat): \
             {:.0}/s against {:.0}/s without, ratio {:.2}; CPU {:.1} µs against {:.1} µs a change \
             (+{:.0}%, the figure load disturbs least); peak RSS {:.0} MB against {:.0} MB",
            args.team,
            team.rate(),
            plain.rate(),
            team.rate() / plain.rate(),
            cpu(team),
            cpu(plain),
            100.0 * (cpu(team) / cpu(plain) - 1.0),
            team.hwm_kb as f64 * 1024.0 / 1e6,
            plain.hwm_kb as f64 * 1024.0 / 1e6
        );
    }
    Ok(())
}
