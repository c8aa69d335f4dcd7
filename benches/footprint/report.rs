//! What the bench prints: the figures as Markdown tables (as `docs/benchmarks.md` shows them),
//! the goals, the ARM binaries found, and the machine.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::stores::{Prepared, thousands};
use super::{GOAL_READY, GOAL_RSS_BYTES, Sample, sizes};

pub fn report(rows: &[(&Prepared, &str, Vec<Sample>)], full: bool) {
    println!(
        "\n| store | page cache | runs | ready ms (median, range) | idle VmRSS | idle VmHWM | idle CPU | after reads VmRSS | VmHWM | RssAnon / RssFile | threads | reads (requests, total ms, slowest ms) | stop ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rss_ok = true;
    let mut ready_ok = true;
    for (store, cache, samples) in rows {
        let pick = |f: &dyn Fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        let ready: Vec<f64> = samples.iter().map(|s| ms(s.ready)).collect();
        let (lo, hi) = (
            ready.iter().cloned().fold(f64::MAX, f64::min),
            ready.iter().cloned().fold(0.0, f64::max),
        );
        let after_rss = pick(&|s| s.after.rss_kb as f64);
        let idle_rss = pick(&|s| s.idle.rss_kb as f64);
        rss_ok &= after_rss.max(idle_rss) * 1024.0 < GOAL_RSS_BYTES;
        let ready_med = median(ready.clone());
        if store.changes > 0 {
            ready_ok &= ready_med < ms(GOAL_READY);
        }
        println!(
            "| {} ({}) | {cache} | {} | **{:.0}** ({:.0}–{:.0}) | **{:.1} MiB** | {:.1} MiB | {:.0}% | **{:.1} MiB** | {:.1} MiB | {:.1} / {:.1} MiB | {:.0} | {:.0}, {:.0}, {:.0} | {:.0} |",
            store.name,
            size(store.db_bytes),
            samples.len(),
            ready_med,
            lo,
            hi,
            kib_mib(idle_rss as u64),
            kib_mib(pick(&|s| s.idle.hwm_kb as f64) as u64),
            pick(&|s| s.idle_cpu),
            kib_mib(after_rss as u64),
            kib_mib(pick(&|s| s.after.hwm_kb as f64) as u64),
            kib_mib(pick(&|s| s.after.anon_kb as f64) as u64),
            kib_mib(pick(&|s| s.after.file_kb as f64) as u64),
            pick(&|s| s.after.threads as f64),
            pick(&|s| f64::from(s.reads.requests)),
            pick(&|s| ms(s.reads.total)),
            pick(&|s| ms(s.reads.slowest)),
            pick(&|s| ms(s.stop)),
        );
    }
    if !full {
        println!("\nsmoke run (small store, one start each): goals not evaluated");
        return;
    }
    println!(
        "\nGOAL idle RSS under 25 MB (medians, before and after the reads, every store): {}",
        if rss_ok { "met" } else { "MISSED" }
    );
    println!(
        "GOAL ready in under 1 s with the corpus store (median, warm and cold): {}",
        if ready_ok { "met" } else { "MISSED" }
    );
}

pub fn arm_sizes(extra: &[PathBuf], tmp: &Path, root: &Path) {
    let mut dirs: Vec<PathBuf> = tmp.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(d.into());
    }
    dirs.extend(extra.iter().cloned());
    let found = sizes::arm_builds(&dirs, &root.join("strip"));
    println!("| ARM build | file | modified (UTC) | linking | size | stripped |");
    println!("|---|---|---|---|---:|---:|");
    for (triple, b) in &found {
        println!(
            "| {triple} | {} | {} | {} | {:.2} MiB | **{}** |",
            b.path.display(),
            utc(b.modified),
            b.linking,
            mib(b.bytes),
            b.stripped.map_or("?".into(), |s| format!(
                "{:.2} MiB ({} bytes)",
                mib(s),
                thousands(s)
            ))
        );
    }
    for t in sizes::ARM_TRIPLES {
        if !found.iter().any(|(f, _)| f == t) {
            println!("| {t} | not built: `scripts/build-arm.sh {t}` | | | | |");
        }
    }
    println!();
}

pub fn machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "machine: {cpu}, {cores} cores, Linux {}, load average {}\n",
        kernel.trim(),
        super::common::measure::load_average()
    );
}

pub fn utc(secs: u64) -> String {
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y}-{m:02}-{d:02} {:02}:{:02}", rem / 3600, rem % 3600 / 60)
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Clock ticks to milliseconds (Linux reports 100 ticks per second).
pub fn ticks_ms(ticks: u64) -> f64 {
    ticks as f64 * 10.0
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

pub fn size(bytes: u64) -> String {
    if bytes < 1 << 20 {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{:.0} MiB", mib(bytes))
    }
}

pub fn kib_mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}
