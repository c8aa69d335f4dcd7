//! The data directories the bench starts `lanbox serve` on.
//!
//! - *empty*: `lanbox init`, one admin and an API token, made fresh on every run of the bench;
//! - *corpus*: the ingest benchmark's corpus (the search bench's copy of its generator, same
//!   seed and shape) ingested through the real pipeline with the real search index, as `serve`
//!   would have built it, then the same admin and token. Built once and cached under cargo's
//!   target directory (about 4 minutes and 1.2 GB for a million changes); a directory without
//!   its `footprint.done` marker is an interrupted build and is built again.
//!
//! The admin and the token are made with the binary under test (`lanbox user add`, `lanbox
//! token create`), as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use lanbox::dev::simulator::Simulator;
use lanbox::ingest::Pipeline;
use lanbox::search::SearchIndex;
use lanbox::store::new_account::{self as accounts, NewAccount};
use lanbox::store::{DB_FILE, Store, StoreOptions};

use super::Res;
use super::common::words::Gen;

const MARKER: &str = "footprint.done";
const ADMIN: &str = "bench";
const BOT_PREFIX: &str = "footprint bot ";

/// A data directory ready to serve, with an admin's API token.
pub struct Prepared {
    pub name: String,
    pub data: PathBuf,
    pub token: String,
    /// Changes ingested (0 for the empty store).
    pub changes: u64,
    pub db_bytes: u64,
}

/// The shape of the corpus.
pub struct Shape {
    pub changes: u64,
    pub batch: usize,
    pub accounts: u64,
    pub chats: u32,
    pub seed: u64,
}

pub fn empty(bin: &Path, root: &Path) -> Res<Prepared> {
    let dir = root.join("empty");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let data = dir.join("data");
    cli(bin, &data, &["init"], &[])?;
    let token = admin_token(bin, &data)?;
    Ok(Prepared {
        name: "empty".into(),
        db_bytes: file_size(&data.join(DB_FILE)),
        data,
        token,
        changes: 0,
    })
}

pub fn corpus(bin: &Path, root: &Path, shape: &Shape, rebuild: bool) -> Res<Prepared> {
    let dir = root.join(format!(
        "corpus-{}-b{}-a{}-c{}-s{}",
        shape.changes, shape.batch, shape.accounts, shape.chats, shape.seed
    ));
    let data = dir.join("data");
    let marker = dir.join(MARKER);
    if rebuild || !marker.exists() {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        build(&data, shape)?;
        let token = admin_token(bin, &data)?;
        std::fs::write(&marker, format!("{token}\n"))?;
    } else {
        eprintln!("footprint: using the cached corpus store {}", data.display());
    }
    let token = std::fs::read_to_string(&marker)?.trim().to_string();
    Ok(Prepared {
        name: format!("{} changes", thousands(shape.changes)),
        db_bytes: file_size(&data.join(DB_FILE)),
        data,
        token,
        changes: shape.changes,
    })
}

/// Ingests the corpus through `Pipeline` + `SearchIndex`, one batch per transaction.
fn build(data: &Path, shape: &Shape) -> Res<()> {
    eprintln!(
        "footprint: building a store of {} changes in {} (cached for later runs)",
        thousands(shape.changes),
        data.display()
    );
    let t0 = Instant::now();
    let opts = StoreOptions {
        credentials_dir: None,
        ..StoreOptions::default()
    };
    let store = Store::open(data, &opts)?;
    for i in 1..=shape.accounts {
        // The options `serve` expects of a Telegram account; no token, so no poller: live bots
        // are added per run (`add_bots`).
        let options = serde_json::json!({
            "api_base": lanbox::channels::telegram::client::DEFAULT_API_BASE,
            "bot_id": 7_000_000_000 + i as i64,
            "bot_username": format!("team_inbox_{i}_bot"),
        });
        let spec = NewAccount {
            channel: "telegram".into(),
            name: format!("bench bot {i}"),
            options: options.to_string(),
            ..NewAccount::default()
        };
        accounts::create_blocking(&store, spec)?;
    }
    let pipeline = Pipeline::new(store.clone(), Arc::new(SearchIndex::new()));
    let mut g = Gen::new(shape.seed, shape.accounts, shape.chats);
    let (mut done, mut next_report) = (0u64, shape.changes / 10);
    while done < shape.changes {
        let n = shape.batch.min((shape.changes - done) as usize);
        pipeline.submit_blocking(g.batch(n))?;
        done += n as u64;
        if done >= next_report && done < shape.changes {
            eprintln!(
                "footprint:   {} changes, {:.0} s",
                thousands(done),
                t0.elapsed().as_secs_f64()
            );
            next_report += shape.changes / 10;
        }
    }
    drop(pipeline);
    // The last handle: the writer drains and redb closes cleanly (no repair on the next open).
    drop(store);
    eprintln!(
        "footprint: built in {:.0} s, {:.0} MiB",
        t0.elapsed().as_secs_f64(),
        file_size(&data.join(DB_FILE)) as f64 / 1048576.0
    );
    Ok(())
}

/// Adds `n` bots of the simulator at `api_base` with `lanbox account add` (which checks each
/// token with getMe), after removing those an earlier run left. `serve` then runs one poller
/// per bot, long-polling the simulator, as a box's pollers wait on Telegram.
pub fn add_bots(bin: &Path, data: &Path, sim: &Simulator, n: u32) -> Res<()> {
    remove_bots(bin, data)?;
    for i in 1..=n {
        let bot = sim.add_bot(&format!("footprint_{i}_bot"));
        let api_base = sim.api_base();
        cli(
            bin,
            data,
            &[
                "account",
                "add",
                "telegram",
                "--api-base",
                &api_base,
                "--name",
                &format!("{BOT_PREFIX}{i}"),
            ],
            &[("LANBOX_BOT_TOKEN", bot.token())],
        )?;
    }
    Ok(())
}

/// Removes the accounts [`add_bots`] made, so a later run's pollers do not chase a simulator
/// that is gone.
pub fn remove_bots(bin: &Path, data: &Path) -> Res<()> {
    let out = cli(bin, data, &["account", "list", "--json"], &[])?;
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["name"].as_str().is_some_and(|n| n.starts_with(BOT_PREFIX)) {
            let id = v["id"].as_u64().ok_or("account without id")?.to_string();
            cli(bin, data, &["account", "remove", &id], &[])?;
        }
    }
    Ok(())
}

fn admin_token(bin: &Path, data: &Path) -> Res<String> {
    cli(
        bin,
        data,
        &["user", "add", ADMIN, "--role", "admin"],
        &[("LANBOX_PASSWORD", "footprint bench password")],
    )?;
    let out = cli(
        bin,
        data,
        &["token", "create", ADMIN, "--label", "footprint"],
        &[],
    )?;
    out.split_whitespace()
        .find(|w| w.starts_with("lbx_"))
        .map(str::to_string)
        .ok_or_else(|| "`lanbox token create` printed no token".into())
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

/// Drops the clean pages of `path` (a file, or every file in a directory tree) from the page
/// cache, so the next start reads them from the disk as after a reboot. Only these files are
/// affected, unlike `drop_caches`.
pub fn evict(path: &Path) -> Res<()> {
    if path.is_dir() {
        for e in std::fs::read_dir(path)? {
            evict(&e?.path())?;
        }
        return Ok(());
    }
    let f = std::fs::File::open(path)?;
    f.sync_all()?; // dirty pages cannot be dropped
    use std::os::fd::AsRawFd;
    // SAFETY: an advisory call on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(format!("posix_fadvise({}): error {rc}", path.display()).into());
    }
    Ok(())
}

pub fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
