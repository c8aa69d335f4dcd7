//! Search benchmark: lanbox's index against SQLite FTS5, on the ingest benchmark's corpus.
//!
//! ```text
//! cargo bench --bench search                          # 1,000,000 changes, 200 queries x 5
//! cargo bench --bench search -- --messages 100000     # a quicker run
//! ```
//!
//! One run, one process: the corpus generator (a copy of `benches/ingest.rs`'s, same seed and
//! defaults) produces batches; each batch goes, timed separately, to
//! - a store + `Pipeline` with `NoIndex` (the baseline, to see what indexing adds; skip it with
//!   `--no-baseline`),
//! - a store + `Pipeline` with `SearchIndex` (the index is built inside the pipeline's
//!   transactions, as in production),
//! - SQLite FTS5 (see `search/fts5.rs`), one transaction per batch, then `optimize`.
//!
//! Then the fixed set of 200 queries (`search/queries.rs`) runs on both, once to warm up and
//! compare first pages, then `--rounds` times timed: lanbox's time includes opening the read
//! transaction, decrypting the hits and cutting snippets; FTS5's includes `snippet()`. Sizes:
//! lanbox's index tables as redb counts their pages, FTS5's index tables (`dbstat`), and the
//! files. Without `--bench` (as under `cargo test --benches`) it runs a small smoke workload.
//! Results and analysis: `docs/benchmarks.md`, section "Search".

#[path = "common/mod.rs"]
mod common;
#[path = "search/fts5.rs"]
mod fts5;
#[path = "search/queries.rs"]
mod queries;

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use lanbox::ingest::{NoIndex, Pipeline};
use lanbox::search::{Query, SearchIndex, index_size, search};
use lanbox::store::new_account::{self as accounts, NewAccount};
use lanbox::store::{DB_FILE, Store, StoreOptions};

use common::measure::peak_rss_kb;
use common::words::Gen;
use fts5::Fts;
use queries::{BenchQuery, CLASSES};

type Res<T> = Result<T, Box<dyn Error>>;

const GOAL_P99_MS: f64 = 10.0;
const LIMIT: usize = 20;

#[derive(Parser, Debug)]
struct Args {
    /// Changes to ingest (default 1,000,000; 3,000 without --bench, as a smoke test).
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
    /// Timed passes over the 200 queries.
    #[arg(long)]
    rounds: Option<usize>,
    /// Skip the pipeline without index.
    #[arg(long)]
    no_baseline: bool,
    /// Parent directory for the databases (default: cargo's target/tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the databases after the run.
    #[arg(long)]
    keep: bool,
    /// Run only the queries of this class (term1, term2, term3, phrase, prefix, filtered).
    #[arg(long)]
    only: Option<String>,
    /// Print every query with its hits and latencies (to stderr).
    #[arg(long)]
    verbose: bool,
    /// Passed by `cargo bench`; without it the default workload is a smoke test.
    #[arg(long, hide = true)]
    bench: bool,
}

fn open_store(dir: &Path, accounts: u64) -> Res<Store> {
    let opts = StoreOptions {
        credentials_dir: None,
        ..StoreOptions::default()
    };
    let store = Store::open(dir, &opts)?;
    for i in 1..=accounts {
        let spec = NewAccount {
            channel: "telegram".into(),
            name: format!("bot {i}"),
            ..NewAccount::default()
        };
        accounts::create_blocking(&store, spec)?;
    }
    Ok(store)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[derive(Default)]
struct Build {
    generate: Duration,
    base: Duration,
    index: Duration,
    fts: Duration,
    fts_optimize: Duration,
    /// Bytes each engine caused to be written to storage while it built (`/proc/self/io`).
    base_written: u64,
    index_written: u64,
    fts_written: u64,
}

/// Bytes this process has caused to be written to storage so far (Linux `write_bytes`; 0
/// elsewhere).
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() -> Res<()> {
    let args = Args::parse();
    let total = args
        .messages
        .unwrap_or(if args.bench { 1_000_000 } else { 3_000 });
    let rounds = args.rounds.unwrap_or(if args.bench { 5 } else { 1 });
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .join(format!("search-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    eprintln!(
        "search benchmark: {total} changes, batch {}, in {}",
        args.batch,
        root.display()
    );

    let base = (!args.no_baseline)
        .then(|| {
            open_store(&root.join("baseline"), args.accounts).map(|s| Pipeline::new(s, Arc::new(NoIndex)))
        })
        .transpose()?;
    let indexed = Pipeline::new(
        open_store(&root.join("lanbox"), args.accounts)?,
        Arc::new(SearchIndex::new()),
    );
    let mut fts = Fts::open(&root.join("fts5.db"))?;

    let mut g = Gen::new(args.seed, args.accounts, args.chats);
    let mut b = Build::default();
    let (mut done, mut next_report) = (0u64, total / 10);
    // The totals at the previous progress line, for the rate of each tenth on its own (does
    // the cost per change grow with the corpus?).
    let mut last = (0u64, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    while done < total {
        let n = (total - done).min(args.batch as u64) as usize;
        let t = Instant::now();
        let batch = g.batch(n);
        b.generate += t.elapsed();
        if let Some(p) = &base {
            let (t, w) = (Instant::now(), written());
            p.submit_blocking(batch.clone())?;
            b.base += t.elapsed();
            b.base_written += written() - w;
        }
        let (t, w) = (Instant::now(), written());
        indexed.submit_blocking(batch.clone())?;
        b.index += t.elapsed();
        b.index_written += written() - w;
        let (t, w) = (Instant::now(), written());
        fts.apply(&batch)?;
        b.fts += t.elapsed();
        b.fts_written += written() - w;
        done += n as u64;
        if done >= next_report && done < total {
            let step = (done - last.0) as f64;
            eprintln!(
                "  {done} changes: pipeline {:.0}/s, pipeline+index {:.0}/s, FTS5 {:.0}/s \
                 (these last {:.0}: {:.0}/s, {:.0}/s, {:.0}/s; peak RSS {} MB)",
                done as f64 / b.base.as_secs_f64(),
                done as f64 / b.index.as_secs_f64(),
                done as f64 / b.fts.as_secs_f64(),
                step,
                step / (b.base - last.1).as_secs_f64(),
                step / (b.index - last.2).as_secs_f64(),
                step / (b.fts - last.3).as_secs_f64(),
                peak_rss_kb() / 1024,
            );
            last = (done, b.base, b.index, b.fts);
            next_report += total / 10;
        }
    }
    let t = Instant::now();
    fts.optimize()?;
    b.fts_optimize = t.elapsed();
    let build_peak_kb = peak_rss_kb();
    let base_file = base.map(|p| {
        drop(p);
        file_size(&root.join("baseline").join(DB_FILE))
    });

    let reader = indexed.store().reader()?;
    let stored = reader.all_message_keys()?.len();
    let tables = index_size(&reader)?;
    drop(reader);
    let fts_sizes = fts.sizes()?;
    let lanbox_file = file_size(&root.join("lanbox").join(DB_FILE));

    let mut qs = queries::queries(&g, args.accounts);
    if let Some(only) = &args.only {
        qs.retain(|q| q.class == only.as_str());
    }
    let allowed: Vec<u64> = (1..=args.accounts).collect();
    let to_query = |q: &BenchQuery| Query {
        text: q.text.clone(),
        allowed_accounts: allowed.clone(),
        filter: q.filter.clone(),
        limit: LIMIT as u32,
        cursor: None,
    };
    // Warm-up pass: first pages of both, compared as FTS5 rowids.
    let mut same = vec![0usize; CLASSES.len()];
    let mut first_pages = Vec::new();
    let (mut lanbox_errors, mut fts_errors) = (Vec::new(), Vec::new());
    let (mut lanbox_hits, mut fts_hits) = (0usize, 0usize);
    for q in &qs {
        let page = search(&indexed.store().reader()?, &to_query(q));
        let mine: Vec<i64> = match page {
            Ok(p) => p
                .hits
                .iter()
                .filter_map(|h| fts.rowid(h.key.scope, h.key.chat, h.key.msg))
                .collect(),
            Err(e) => {
                lanbox_errors.push(format!("{} ({}): {e}", q.class, q.text));
                Vec::new()
            }
        };
        let theirs = fts.query(q, LIMIT).unwrap_or_else(|e| {
            fts_errors.push(format!("{} ({}): {e}", q.class, q.fts));
            Vec::new()
        });
        lanbox_hits += mine.len();
        fts_hits += theirs.len();
        first_pages.push((mine.len(), theirs.len(), mine == theirs));
        if args.verbose && mine != theirs {
            let only = |a: &[i64], b: &[i64]| a.iter().find(|r| !b.contains(r)).copied();
            for (side, row) in [("lanbox", only(&mine, &theirs)), ("FTS5", only(&theirs, &mine))] {
                if let Some(row) = row {
                    let body = fts.body(row).unwrap_or_default();
                    eprintln!("  {} only in {side}: rowid {row}: {body:?}", q.text);
                }
            }
        }
        if mine == theirs {
            same[CLASSES.iter().position(|c| *c == q.class).expect("known class")] += 1;
        }
    }
    let mut lat_lanbox: Vec<(usize, f64)> = Vec::new();
    let mut lat_fts: Vec<(usize, f64)> = Vec::new();
    for _ in 0..rounds {
        for q in &qs {
            let class = CLASSES.iter().position(|c| *c == q.class).expect("known class");
            let query = to_query(q);
            let t = Instant::now();
            let _ = search(&indexed.store().reader()?, &query);
            lat_lanbox.push((class, t.elapsed().as_secs_f64() * 1e3));
            let t = Instant::now();
            let _ = fts.query(q, LIMIT);
            lat_fts.push((class, t.elapsed().as_secs_f64() * 1e3));
        }
    }
    if args.verbose {
        for (i, q) in qs.iter().enumerate() {
            let med = |lat: &[(usize, f64)]| {
                let mut v: Vec<f64> = lat.iter().skip(i).step_by(qs.len()).map(|x| x.1).collect();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (m, t, eq) = first_pages[i];
            eprintln!(
                "{:<8} {:>8.2} ms {:>8.2} ms  hits {m:>2} {t:>2} {}  {} | {}{}",
                q.class,
                med(&lat_lanbox),
                med(&lat_fts),
                if eq { "=" } else { "≠" },
                q.text,
                q.fts,
                queries::fts_where(&q.filter)
            );
        }
    }

    // Sizes after compaction: without the pages copy-on-write left free in the files.
    drop(indexed);
    eprintln!("compacting the redb files...");
    let compacted = |dir: &str| -> Res<u64> {
        let path = root.join(dir).join(DB_FILE);
        let mut db = redb::Database::open(&path)?;
        db.compact()?;
        drop(db);
        Ok(file_size(&path))
    };
    let lanbox_compact = compacted("lanbox")?;
    let base_compact = base_file.map(|_| compacted("baseline")).transpose()?;

    // ---- report ----
    let c = g.counts;
    let mb = |b: u64| b as f64 / 1e6;
    let index_alloc: u64 = tables.iter().map(|t| t.allocated_bytes).sum();
    println!(
        "\n## Search benchmark: {total} changes ({} new, {} edits, {} deletes; {} media), {stored} messages stored",
        c.new, c.edits, c.deletes, c.media
    );
    println!(
        "seed {}, {} accounts, {} chats, batch {}; {} queries x {rounds} rounds, first page of {LIMIT}\n",
        args.seed,
        args.accounts,
        args.chats,
        args.batch,
        qs.len()
    );
    println!("| build | time (s) | changes/s | bytes written per change |\n|---|---:|---:|---:|");
    let row = |name: &str, d: Duration, w: u64| {
        println!(
            "| {name} | {:.1} | {:.0} | {:.0} |",
            d.as_secs_f64(),
            total as f64 / d.as_secs_f64(),
            w as f64 / total as f64
        )
    };
    if base_file.is_some() {
        row("lanbox pipeline, no index", b.base, b.base_written);
    }
    row("lanbox pipeline + SearchIndex", b.index, b.index_written);
    if base_file.is_some() {
        println!(
            "| *of which indexing (difference)* | {:.1} | |",
            (b.index.saturating_sub(b.base)).as_secs_f64()
        );
    }
    row("SQLite FTS5 (text + index)", b.fts, b.fts_written);
    println!(
        "| SQLite FTS5 `optimize` | {:.1} | |",
        b.fts_optimize.as_secs_f64()
    );
    println!(
        "(generator: {:.1} s, not counted; peak RSS of the whole process after the build, all three engines: {:.0} MB)\n",
        b.generate.as_secs_f64(),
        build_peak_kb as f64 / 1e3
    );
    let (base_rate, index_rate, fts_rate) = (
        total as f64 / b.base.as_secs_f64(),
        total as f64 / b.index.as_secs_f64(),
        total as f64 / b.fts.as_secs_f64(),
    );

    println!("| size | MB |\n|---|---:|");
    for t in &tables {
        println!(
            "| lanbox `{}` ({} rows, {:.1} MB of keys and values) | {:.1} |",
            t.name,
            t.rows,
            mb(t.stored_bytes),
            mb(t.allocated_bytes)
        );
    }
    println!("| **lanbox index, all tables** | **{:.1}** |", mb(index_alloc));
    println!(
        "| **FTS5 index** (`msg_data`, `_idx`, `_docsize`, `_config`) | **{:.1}** |",
        mb(fts_sizes.index)
    );
    println!(
        "| FTS5 stored text and columns (`msg_content`) | {:.1} |",
        mb(fts_sizes.content)
    );
    println!(
        "| lanbox redb file, with index: as built / compacted | {:.1} / {:.1} |",
        mb(lanbox_file),
        mb(lanbox_compact)
    );
    if let (Some(f), Some(c)) = (base_file, base_compact) {
        println!(
            "| lanbox redb file, without index: as built / compacted | {:.1} / {:.1} |",
            mb(f),
            mb(c)
        );
        println!(
            "| *what the index adds to the compacted file* | *{:.1}* |",
            mb(lanbox_compact.saturating_sub(c))
        );
    }
    println!("| FTS5 database file | {:.1} |\n", mb(fts_sizes.file));

    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(f64::total_cmp);
        v.get(((v.len().max(1) - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let stats = |lat: &[(usize, f64)], class: Option<usize>| {
        let mut v: Vec<f64> = lat
            .iter()
            .filter(|(c, _)| class.is_none_or(|k| k == *c))
            .map(|x| x.1)
            .collect();
        (pct(&mut v, 0.5), pct(&mut v, 0.99), pct(&mut v, 1.0))
    };
    println!(
        "| queries (ms) | n | lanbox p50 | lanbox p99 | FTS5 p50 | FTS5 p99 | same first page |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (i, class) in CLASSES.iter().enumerate() {
        let n = qs.iter().filter(|q| q.class == *class).count();
        if n == 0 {
            continue;
        }
        let (l50, l99, _) = stats(&lat_lanbox, Some(i));
        let (f50, f99, _) = stats(&lat_fts, Some(i));
        println!(
            "| {class} | {n} | {l50:.2} | {l99:.2} | {f50:.2} | {f99:.2} | {}/{n} |",
            same[i]
        );
    }
    let (l50, l99, lmax) = stats(&lat_lanbox, None);
    let (f50, f99, fmax) = stats(&lat_fts, None);
    let n_same: usize = same.iter().sum();
    println!(
        "| **all** | {} | **{l50:.2}** | **{l99:.2}** | **{f50:.2}** | **{f99:.2}** | {n_same}/{} |",
        qs.len(),
        qs.len()
    );
    println!(
        "\nmax: lanbox {lmax:.2} ms, FTS5 {fmax:.2} ms; hits on first pages: lanbox {lanbox_hits}, FTS5 {fts_hits}"
    );
    for e in lanbox_errors.iter().take(10) {
        println!("lanbox error: {e}");
    }
    for e in fts_errors.iter().take(10) {
        println!("FTS5 error: {e}");
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    if base_file.is_some() {
        println!(
            "\ngoal build with index >= 50% of the pipeline without: {} ({:.0}%)",
            verdict(index_rate >= 0.5 * base_rate),
            100.0 * index_rate / base_rate
        );
    }
    println!(
        "goal build with index >= FTS5's: {} ({:.0}%)",
        verdict(index_rate >= fts_rate),
        100.0 * index_rate / fts_rate
    );
    if total < 1_000_000 {
        println!("\n(goals are for 1,000,000 changes; this run is smaller)");
    }
    println!("\ngoal p99 < {GOAL_P99_MS} ms: {}", verdict(l99 < GOAL_P99_MS));
    println!("goal p99 not slower than FTS5: {}", verdict(l99 <= f99));
    println!(
        "goal index no larger than FTS5's: {}",
        verdict(index_alloc <= fts_sizes.index)
    );

    drop(fts);
    if !args.keep {
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}
