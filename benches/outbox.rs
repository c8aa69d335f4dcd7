//! Outbox benchmark: sends per second through the outbox into the Bot API simulator, with the
//! rate limits turned off, against the same number of `sendMessage` calls made directly with a
//! `BotClient` (the floor: what the HTTP round trips alone cost).
//!
//! ```text
//! cargo bench --bench outbox                      # 2,000 messages over 50 chats, 3 runs
//! cargo bench --bench outbox -- --messages 5000 --chats 200 --runs 5
//! ```
//!
//! Outbox side, per run: a fresh store in a temporary directory, one bot account pointing at
//! the simulator, its sender started; then every message is queued with `Outbox::enqueue` (one
//! writer job each, as the API would) and the clock stops when the account's backlog is empty,
//! i.e. every item went through "sending" (a durable commit), `sendMessage`, and "sent" with the
//! message stored in its chat and indexed (a second commit). Direct side: the same number of
//! `send_message` calls, one after the other, like the sender makes them. Each side runs
//! `--runs` times; the median is reported. Without `--bench` (as under `cargo test --benches`)
//! a small smoke run. Results: `docs/benchmarks.md`, "Outbox".

#[path = "common/mod.rs"]
mod common;

use std::error::Error;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::measure::median;
use lanbox::channels::telegram::bots::{self as accounts, AddBot};
use lanbox::channels::telegram::client::{BotClient, SendMessage, Token, http_client};
use lanbox::dev::simulator::Simulator;
use lanbox::model::ChatKind;
use lanbox::outbox::{NewItem, Outbox, OutboxOptions, jobs};
use lanbox::search::SearchIndex;
use lanbox::store::{ChatKey, Store, StoreOptions};
use zeroize::Zeroizing;

type Res<T> = Result<T, Box<dyn Error>>;

#[derive(Parser, Debug, Clone)]
#[command(about = "lanbox outbox benchmark: sends/s through the outbox against direct calls")]
struct Args {
    /// Messages per run (default 2,000; 100 without --bench, as a smoke test).
    #[arg(long)]
    messages: Option<usize>,
    /// Private chats the messages go to, round robin.
    #[arg(long, default_value_t = 50)]
    chats: i64,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Tasks queueing messages at once (agents sending), each with its share.
    #[arg(long, default_value_t = 16)]
    producers: usize,
    /// The sender's requests in flight (`[outbox] concurrency`; default as configured).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Set by `cargo bench`.
    #[arg(long)]
    bench: bool,
}

fn text(i: usize) -> String {
    format!("benchmark reply number {i}: thanks, we will get back to you shortly")
}

struct OutboxFigures {
    /// Messages per second, first enqueue to empty backlog.
    sends: f64,
    /// Messages per second while queueing (the sender runs meanwhile).
    queued: f64,
}

async fn outbox_run(n: usize, chats: i64, producers: usize, concurrency: Option<u32>) -> Res<OutboxFigures> {
    let sim = Simulator::start().await?;
    let bot = sim.add_bot("bench_outbox_bot");
    let dir = tempfile::tempdir()?;
    let store = Store::open(
        dir.path(),
        &StoreOptions {
            credentials_dir: None,
            ..StoreOptions::default()
        },
    )?;
    let account = accounts::add(
        &store,
        http_client()?,
        AddBot {
            token: Token::new(bot.token())?,
            name: Some("bench".into()),
            rented: false,
            daily_limit: None,
            api_base: Some(sim.api_base()),
        },
    )
    .await?
    .id;
    Outbox::ensure_tables(&store).await?;
    let mut opts = OutboxOptions::unlimited();
    if let Some(c) = concurrency {
        opts.concurrency = c;
    }
    let outbox = Outbox::new(store.clone(), Arc::new(SearchIndex::new()), opts);
    outbox.start(account).await?;

    let start = Instant::now();
    let producers = producers.max(1);
    let mut tasks = Vec::new();
    for p in 0..producers {
        let outbox = outbox.clone();
        tasks.push(tokio::spawn(async move {
            for i in (p..n).step_by(producers) {
                let item = NewItem {
                    account,
                    chat: ChatKey {
                        scope: account,
                        chat: 10_000 + (i as i64 % chats),
                    },
                    chat_kind: ChatKind::Private,
                    user: 1,
                    token: None,
                    reply_to: None,
                    text: Zeroizing::new(text(i)),
                    idempotency_key: Some(format!("bench-{i}")),
                    attachment: None,
                    entities: Vec::new(),
                };
                outbox.enqueue(item).await.map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let queued = n as f64 / start.elapsed().as_secs_f64();
    loop {
        let (backlog, failed) = store
            .read(move |r| jobs::read_counts(r.txn(), &[account]))
            .await?;
        if backlog == 0 {
            if failed > 0 {
                return Err(format!("{failed} sends failed").into());
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    if bot.sent().len() != n {
        return Err(format!("simulator saw {} sends, expected {n}", bot.sent().len()).into());
    }
    outbox.shutdown().await;
    Ok(OutboxFigures {
        sends: n as f64 / secs,
        queued,
    })
}

async fn direct_run(n: usize, chats: i64) -> Res<f64> {
    let sim = Simulator::start().await?;
    let bot = sim.add_bot("bench_direct_bot");
    let client = BotClient::new(http_client()?, &sim.api_base(), Token::new(bot.token())?);
    let start = Instant::now();
    for i in 0..n {
        client
            .send_message(&SendMessage {
                chat_id: 10_000 + (i as i64 % chats),
                text: text(i),
                ..Default::default()
            })
            .await?;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(bot.sent().len(), n);
    Ok(n as f64 / secs)
}

fn main() -> Res<()> {
    let args = Args::parse();
    let n = args.messages.unwrap_or(if args.bench { 2000 } else { 100 });
    let runs = if args.bench { args.runs.max(1) } else { 1 };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let (mut through, mut queued, mut direct) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let d = rt.block_on(direct_run(n, args.chats))?;
        let o = rt.block_on(outbox_run(n, args.chats, args.producers, args.concurrency))?;
        println!(
            "run {run}: outbox {:.0} sends/s (queued at {:.0}/s), direct {d:.0} calls/s",
            o.sends, o.queued
        );
        through.push(o.sends);
        queued.push(o.queued);
        direct.push(d);
    }
    let (o, q, d) = (median(through), median(queued), median(direct));
    println!(
        "median of {runs}: {n} messages over {} chats, {} producers, limits off: outbox {o:.0} \
         sends/s (queued at {q:.0}/s), direct sendMessage {d:.0} calls/s (outbox at {:.1}% of direct)",
        args.chats,
        args.producers,
        100.0 * o / d
    );
    Ok(())
}
