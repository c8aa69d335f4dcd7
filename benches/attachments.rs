//! Attachment benchmark: one large file fetched from the Bot API (simulator), encrypted while
//! it streams, stored and synced to a real S3-compatible server (SeaweedFS `weed mini`); in
//! the same run, the same number of bytes uploaded plain by the same S3 client, for
//! comparison.
//!
//! ```text
//! cargo bench --bench attachments                     # 2048 MiB
//! cargo bench --bench attachments -- --size-mb 512 --cipher chacha20-poly1305
//! ```
//!
//! Processes: the simulator runs in a child process of its own (this binary with
//! `--side sim`), holding the file in its memory, so the lanbox side's peak RSS
//! (`/proc/self/status` VmHWM, reset between phases through `/proc/self/clear_refs`) is
//! lanbox's alone. The lanbox side is this process: store, attachment subsystem, S3 client.
//!
//! Phases, each timed on its own:
//! 1. fetch + encrypt + store: from the ingest of the message to its `attachment.ready`;
//! 2. sync: from `attachment.ready` to the record saying the object is in the bucket;
//! 3. plain upload: the plaintext of the same size written to a local file (not timed), then
//!    uploaded by the same client (`S3::upload_file`, same part size), once before and once
//!    after phases 1-2 (the machine may be shared: the mean is the comparison).
//!
//! "Fetched, encrypted and synced" throughput is size / (1 + 2); the goal is at least 80% of
//! the plain upload's and a peak RSS under 64 MB. Without `--bench` (as under
//! `cargo test --benches`) it runs a 16 MiB smoke test. Results: `docs/benchmarks.md`.

#[path = "common/mod.rs"]
mod common;
#[path = "../tests/support/s3.rs"]
mod s3;

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use common::measure::{cpu_seconds, peak_rss_kb, reset_peak_rss};
use lanbox::attachments::{AttachmentOptions, Attachments, S3Config};
use lanbox::channels::telegram::bots::{self as accounts, AddBot};
use lanbox::channels::telegram::client::{Token, http_client};
use lanbox::ingest::{Batch, Change, Pipeline};
use lanbox::model::*;
use lanbox::search::SearchIndex;
use lanbox::store::seal::Cipher;
use lanbox::store::{MsgKey, Store, StoreOptions};
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(about = "lanbox attachment benchmark: fetch + encrypt + S3 sync against a plain upload")]
struct Args {
    /// File size in MiB (default 2048; 16 without --bench).
    #[arg(long)]
    size_mb: Option<u64>,
    /// `aes-256-gcm` or `chacha20-poly1305` (default: by CPU).
    #[arg(long)]
    cipher: Option<String>,
    /// Multipart part size, MiB.
    #[arg(long, default_value_t = 16)]
    part_mb: u64,
    /// Internal: which process this is.
    #[arg(long, hide = true)]
    side: Option<String>,
    /// Passed by `cargo bench`.
    #[arg(long)]
    bench: bool,
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Deterministic, incompressible-looking bytes (xorshift), `len` of them, in pieces.
fn for_each_piece(len: u64, mut f: impl FnMut(&[u8])) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = (left as usize).min(buf.len());
        for chunk in buf[..n].chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let b = x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        f(&buf[..n]);
        left -= n as u64;
    }
}

fn main() -> Res<()> {
    let args = Args::parse();
    let size = args.size_mb.unwrap_or(if args.bench { 2048 } else { 16 }) << 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    match args.side.as_deref() {
        Some("sim") => rt.block_on(sim_side(size)),
        _ => rt.block_on(lanbox_side(&args, size)),
    }
}

/// Child: a simulator holding the file; prints `api_base token file_id`, serves until stdin
/// closes.
async fn sim_side(size: u64) -> Res<()> {
    // A self-hosted Bot API server, as an installation that fetches big files needs.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sim = lanbox::dev::simulator::Simulator::start_with(
        listener,
        lanbox::dev::simulator::SimConfig {
            local_api: true,
            ..Default::default()
        },
    )?;
    let bot = sim.add_bot("benchbot");
    let mut bytes = Vec::with_capacity(size as usize);
    for_each_piece(size, |p| bytes.extend_from_slice(p));
    let file_id = bot.add_file(bytes);
    println!("{} {} {}", sim.api_base(), bot.token(), file_id);
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
    })
    .await?;
    Ok(())
}

async fn lanbox_side(args: &Args, size: u64) -> Res<()> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--side", "sim", "--size-mb", &(size >> 20).to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (api_base, token, file_id) = (parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned());

    let weed = tokio::task::spawn_blocking(s3::Weed::start).await?;
    let dir = tempfile::tempdir()?;
    let cipher = match args.cipher.as_deref() {
        None => None,
        Some(c) => Cipher::parse(c).ok_or("unknown cipher")?,
    };
    let store = Store::open(
        dir.path(),
        &StoreOptions {
            cipher,
            credentials_dir: None,
            ..StoreOptions::default()
        },
    )?;
    let http = http_client()?;
    let account = accounts::add(
        &store,
        http.clone(),
        AddBot {
            token: Token::new(token)?,
            name: Some("bench".into()),
            rented: false,
            daily_limit: None,
            api_base: Some(api_base),
        },
    )
    .await?
    .id;
    let opts = AttachmentOptions {
        s3: Some(S3Config {
            endpoint: weed.endpoint(),
            bucket: "lanbox-bench".into(),
            access_key: s3::ACCESS_KEY.into(),
            secret_key: s3::SECRET_KEY.into(),
            part_size: args.part_mb << 20,
            ..S3Config::default()
        }),
        // Keep the local copy: eviction is not what is measured.
        cache_bytes: u64::MAX,
        ..AttachmentOptions::default()
    };
    let atts = Attachments::open(store.clone(), opts, http).await?;
    let s3c = atts.s3().expect("configured").clone();
    s3c.ensure_bucket().await?;
    let pipeline = Pipeline::new(store.clone(), Arc::new(SearchIndex::new()));
    let (_stop, stop_rx) = watch::channel(false);
    atts.start(stop_rx);

    let chat = Chat {
        id: 77,
        kind: ChatKind::Private,
        title: Some("bench".into()),
        username: None,
        is_forum: false,
    };
    let message = Message {
        account,
        chat,
        message_id: 1,
        topic: None,
        direction: Direction::Incoming,
        date: 1_700_000_000,
        edited_at: None,
        status: Status::Delivered,
        content: MessageContent {
            sender: Sender::Unknown,
            reply_to: None,
            forward: None,
            media_group: None,
            body: Body::Media(Media {
                kind: MediaKind::Video,
                file: Attachment {
                    file_id,
                    file_unique_id: "bench".into(),
                    mime_type: Some("video/mp4".into()),
                    size: Some(size),
                    ..Attachment::default()
                },
                thumbnail: None,
                caption: None,
                title: None,
                performer: None,
                emoji: None,
                spoiler: false,
            }),
            notes: Vec::new(),
        },
    };
    let key = MsgKey {
        scope: account,
        chat: 77,
        msg: 1,
    };
    // The same number of bytes, plain, by the same client.
    let plain = dir.path().join("plain.bin");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&plain)?);
        let mut err = None;
        for_each_piece(size, |p| {
            if let Err(e) = f.write_all(p) {
                err = Some(e);
            }
        });
        if let Some(e) = err {
            return Err(e.into());
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    reset_peak_rss();
    let cpu_b = cpu_seconds();
    let tb = Instant::now();
    s3c.upload_file("plain/before", &plain).await?;
    let t_plain_before = tb.elapsed();
    let cpu_plain_before = cpu_seconds() - cpu_b;
    let rss_plain_before = peak_rss_kb();

    let cpu0 = cpu_seconds();
    reset_peak_rss();
    let mut events = store.subscribe();
    let t0 = Instant::now();
    pipeline
        .submit(Batch {
            account,
            changes: vec![Change::New(message)],
            position: None,
        })
        .await?;
    loop {
        let p = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
        if let Ok(p) = p
            && p?.event.kind == EventKind::AttachmentReady
        {
            break;
        }
        // No event: make sure the fetch did not end another way.
        for (_, id) in store
            .read(move |r| lanbox::attachments::tables::read_of_message(r.txn(), key))
            .await?
        {
            if let Some(rec) = atts.record(id).await?
                && !matches!(
                    rec.state,
                    lanbox::attachments::State::Pending | lanbox::attachments::State::Ready
                )
            {
                return Err(format!("the fetch ended as {:?}", rec.state).into());
            }
        }
    }
    let t_fetch = t0.elapsed();
    let id = store
        .read(move |r| lanbox::attachments::tables::read_of_message(r.txn(), key))
        .await?[0]
        .1;
    loop {
        if atts.record(id).await?.is_some_and(|r| r.synced) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t_total = t0.elapsed();
    let cpu_pipeline = cpu_seconds() - cpu0;
    let rss_pipeline = peak_rss_kb();

    reset_peak_rss();
    let cpu1 = cpu_seconds();
    let t1 = Instant::now();
    s3c.upload_file("plain/after", &plain).await?;
    let t_plain = t1.elapsed();
    let cpu_plain = cpu_seconds() - cpu1;
    let rss_plain = peak_rss_kb();

    let mib = size as f64 / (1 << 20) as f64;
    let rate = |d: Duration| mib / d.as_secs_f64();
    println!(
        "attachments benchmark: {mib:.0} MiB, cipher {:?}, part {} MiB",
        store.cipher(),
        args.part_mb
    );
    println!(
        "  fetch+encrypt+store   {:>8.2} s  {:>7.1} MiB/s",
        t_fetch.as_secs_f64(),
        rate(t_fetch)
    );
    let sync = t_total - t_fetch;
    if sync < Duration::from_millis(100) {
        println!("  S3 sync               overlapped: the object was in the bucket when the fetch ended");
    } else {
        println!(
            "  S3 sync after fetch   {:>8.2} s  {:>7.1} MiB/s",
            sync.as_secs_f64(),
            rate(sync)
        );
    }
    println!(
        "  fetched+synced total  {:>8.2} s  {:>7.1} MiB/s  cpu {:.1} s  peak RSS {:.1} MiB",
        t_total.as_secs_f64(),
        rate(t_total),
        cpu_pipeline,
        rss_pipeline as f64 / 1024.0
    );
    println!(
        "  plain upload (before) {:>8.2} s  {:>7.1} MiB/s  cpu {:.1} s  peak RSS {:.1} MiB",
        t_plain_before.as_secs_f64(),
        rate(t_plain_before),
        cpu_plain_before,
        rss_plain_before as f64 / 1024.0
    );
    println!(
        "  plain upload (after)  {:>8.2} s  {:>7.1} MiB/s  cpu {:.1} s  peak RSS {:.1} MiB",
        t_plain.as_secs_f64(),
        rate(t_plain),
        cpu_plain,
        rss_plain as f64 / 1024.0
    );
    let plain_mean = (t_plain + t_plain_before).as_secs_f64() / 2.0;
    println!(
        "  ratio (total / mean plain upload throughput): {:.0}%",
        100.0 * plain_mean / t_total.as_secs_f64()
    );
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}
