//! Telegram polling benchmark: updates per second from the Bot API simulator, through the real
//! long-polling connector and the ingest pipeline, into a real store; against the rate at which
//! a bare HTTP client drains the same simulator without storing anything.
//!
//! ```text
//! cargo bench --bench telegram_poll                      # 200,000 updates, median of 3
//! cargo bench --bench telegram_poll -- --updates 50000 --runs 5
//! ```
//!
//! The workload cycles through the real captured updates in `tests/fixtures/telegram/` (texts,
//! photos, documents, voice, video, stickers, replies, forwards, edits, reactions, callback
//! queries, member changes, in private chats, groups, supergroups and channels), each copy given
//! its own message ID, so every message is new to the store. All updates are queued in the
//! simulator before the clock starts.
//!
//! - `pipeline`: `Poller::run` (getUpdates with limit 100 over HTTP, `split_updates`, `map_raw`,
//!   `Pipeline::submit` of each response as one batch with the offset, one durable commit per
//!   batch), timed until the simulator has seen every update confirmed by a later offset.
//! - `drain`: `BotClient::get_updates` in a loop with the next offset, reading only the last
//!   update's ID: the simulator's and HTTP's share of the time.
//!
//! Each run uses a fresh simulator and store. Without `--bench` (as under `cargo test
//! --benches`) it runs a small smoke workload once. Results: `docs/benchmarks.md`.

#[path = "common/mod.rs"]
mod common;

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::measure::median;
use lanbox::channels::telegram::bots::{self as accounts, AddBot};
use lanbox::channels::telegram::client::{BotClient, GetUpdates, Token, http_client};
use lanbox::channels::telegram::poller::{AccountStatus, Backoff, Poller, PollerConfig};
use lanbox::channels::telegram::split_updates;
use lanbox::dev::simulator::{SimBot, Simulator};
use lanbox::ingest::{NoIndex, Pipeline};
use lanbox::store::{Store, StoreOptions};
use serde_json::Value;
use tokio::sync::watch;

type Res<T> = Result<T, Box<dyn Error>>;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/telegram");

#[derive(Parser, Debug)]
#[command(about = "lanbox Telegram polling benchmark")]
struct Args {
    /// Updates per run (default 200,000; 2,000 without --bench).
    #[arg(long)]
    updates: Option<usize>,
    /// Runs of each side; the median is reported (default 3; 1 without --bench).
    #[arg(long)]
    runs: Option<usize>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

fn fixtures() -> Res<Vec<Value>> {
    let mut paths: Vec<_> = std::fs::read_dir(FIXTURES)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    paths
        .iter()
        .map(|p| Ok(serde_json::from_slice(&std::fs::read(p)?)?))
        .collect()
}

/// `n` updates cycling through the fixtures, each message with its own ID.
fn workload(fixtures: &[Value], n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let mut u = fixtures[i % fixtures.len()].clone();
            let id = (i / fixtures.len()) as i64 * 1000 + 1_000_000;
            for key in [
                "message",
                "edited_message",
                "channel_post",
                "edited_channel_post",
                "business_message",
            ] {
                if let Some(m) = u.get_mut(key).and_then(Value::as_object_mut) {
                    m.insert("message_id".into(), (id + (i % fixtures.len()) as i64).into());
                }
            }
            u
        })
        .collect()
}

fn store_options() -> StoreOptions {
    StoreOptions {
        credentials_dir: None,
        ..StoreOptions::default()
    }
}

/// One pipeline run: seconds to ingest every update, and the messages stored.
async fn pipeline_run(updates: &[Value]) -> Res<(f64, u64)> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), &store_options())?;
    let sim = Simulator::start().await?;
    let bot = sim.add_bot("bench_bot");
    let spec = AddBot {
        token: Token::new(bot.token())?,
        name: None,
        rented: false,
        daily_limit: None,
        api_base: Some(sim.api_base()),
    };
    let account = accounts::add(&store, http_client()?, spec).await?.id;
    let pipeline = Pipeline::new(store.clone(), Arc::new(NoIndex));
    bot.inject_all(updates.iter().cloned());

    let client = BotClient::new(http_client()?, &sim.api_base(), Token::new(bot.token())?);
    let (status, _status_rx) = watch::channel(AccountStatus::Starting);
    let (stop, mut stopped) = watch::channel(false);
    let poller = Poller {
        account,
        client,
        pipeline,
        config: PollerConfig {
            poll_timeout: 1,
            request_margin: Duration::from_secs(5),
            limit: 100,
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_millis(500),
            },
        },
        status,
    };
    let started = Instant::now();
    let task = tokio::spawn(poller.run(async move {
        let _ = stopped.wait_for(|v| *v).await;
    }));
    let done = bot
        .wait_until(Duration::from_secs(3600), |b| b.pending() == 0)
        .await;
    let secs = started.elapsed().as_secs_f64();
    stop.send_replace(true);
    task.await?;
    if !done {
        return Err("updates not drained within an hour".into());
    }
    let stored = store.read(|r| Ok(r.all_message_keys()?.len() as u64)).await?;
    drop(sim);
    Ok((secs, stored))
}

/// One drain run: seconds for a bare client to read every update.
async fn drain_run(updates: &[Value]) -> Res<f64> {
    let sim = Simulator::start().await?;
    let bot: SimBot = sim.add_bot("bench_bot");
    let last = bot.inject_all(updates.iter().cloned()).ok_or("no updates")?;
    let client = BotClient::new(http_client()?, &sim.api_base(), Token::new(bot.token())?);
    let started = Instant::now();
    let mut offset = None;
    loop {
        let req = GetUpdates {
            offset,
            limit: 100,
            timeout: 0,
            allowed_updates: Vec::new(),
        };
        let body = client.get_updates(&req, Duration::from_secs(5)).await?;
        let raws = split_updates(&body)?;
        let Some(raw) = raws.last() else {
            break;
        };
        let id = serde_json::from_slice::<Value>(raw.0)?["update_id"]
            .as_i64()
            .ok_or("update without update_id")?;
        offset = Some(id + 1);
        if id == last {
            // Confirm the last batch too, as the poller does.
            client
                .get_updates(&GetUpdates { offset, ..req }, Duration::from_secs(5))
                .await?;
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    if bot.pending() != 0 {
        return Err("drain left updates behind".into());
    }
    Ok(secs)
}

fn main() -> Res<()> {
    let args = Args::parse();
    let n = args.updates.unwrap_or(if args.bench { 200_000 } else { 2_000 });
    let runs = args.runs.unwrap_or(if args.bench { 3 } else { 1 }).max(1);
    let fixtures = fixtures()?;
    let updates = workload(&fixtures, n);
    let bytes: usize = updates.iter().map(|u| u.to_string().len()).sum();
    println!(
        "{n} updates from {} fixtures, {:.0} bytes average; {runs} run(s) per side",
        fixtures.len(),
        bytes as f64 / n as f64
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut pipeline_rates = Vec::new();
    let mut drain_rates = Vec::new();
    for run in 1..=runs {
        let secs = rt.block_on(drain_run(&updates))?;
        println!(
            "run {run} drain:    {:>9.0} updates/s ({secs:.2} s)",
            n as f64 / secs
        );
        drain_rates.push(n as f64 / secs);
        let (secs, stored) = rt.block_on(pipeline_run(&updates))?;
        println!(
            "run {run} pipeline: {:>9.0} updates/s ({secs:.2} s, {stored} messages stored)",
            n as f64 / secs
        );
        pipeline_rates.push(n as f64 / secs);
    }
    let (p, d) = (median(pipeline_rates), median(drain_rates));
    println!("median drain (HTTP only):          {d:>9.0} updates/s");
    println!("median pipeline (poll+map+commit): {p:>9.0} updates/s");
    println!("pipeline / drain: {:.2}", p / d);
    Ok(())
}
