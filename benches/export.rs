//! Export benchmark: the PDF transcript of one very long conversation, and its JSON Lines.
//!
//! ```text
//! cargo bench --bench export                        # 100,000 messages in one chat
//! cargo bench --bench export -- --messages 20000    # a quicker run
//! ```
//!
//! A store gets one private chat of `--messages` messages (mixed Latin, Cyrillic, Arabic, CJK
//! and emoji texts of varied length, some with bold and link entities, one in ten a reply),
//! ingested through the pipeline as in production. Then the export jobs run exactly as the
//! routes run them (a blocking thread, output over the bounded channel to a consumer task that
//! counts and drops the bytes, like a fast client): first the PDF, then the JSON Lines. Figures:
//! time, pages, pages and messages per second, output size, and the process's peak RSS during
//! each export (VmHWM reset after ingest; the fonts, about 40 MB of files, are read by the
//! export and count in it). Without `--bench` (as under `cargo test --benches`) it runs 1,500
//! messages as a smoke test. Results: `docs/benchmarks.md`, section "Export".

#[path = "common/mod.rs"]
mod common;

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use lanbox::attachments::{AttachmentOptions, Attachments};
use lanbox::auth::Grants;
use lanbox::export::ExportOptions;
use lanbox::export::archive::{self, AHEAD, PdfJob};
use lanbox::export::fonts::Fonts;
use lanbox::export::source::{self, Period};
use lanbox::ingest::{Batch, Change, NoIndex, Pipeline};
use lanbox::model::*;
use lanbox::store::new_account::{self as accounts, NewAccount};
use lanbox::store::{ChatKey, Store, StoreOptions};

use common::measure::{load_average, peak_rss_kb, reset_peak_rss};

type Res<T> = Result<T, Box<dyn Error>>;

#[derive(Parser, Debug)]
struct Args {
    /// Messages in the chat (default 100,000; 1,500 without --bench).
    #[arg(long)]
    messages: Option<i64>,
    /// Parent directory for the store (default: cargo's target/tmp).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    #[arg(long, hide = true)]
    bench: bool,
}

const TEXTS: &[&str] = &[
    "Good morning, the delivery for order 4411 is scheduled for Thursday between 9 and 12.",
    "Здравствуйте! Подскажите, пожалуйста, когда будет готов счёт за прошлый месяц?",
    "مرحبا، هل يمكنكم تأكيد موعد الزيارة يوم الخميس؟ شكرا لكم",
    "您好，我们已经收到您的付款，发票将在三个工作日内发送。",
    "お世話になっております。来週の打ち合わせの件でご連絡しました。",
    "Thanks! 👍🎉 See you then.",
    "ok",
    "Could you send the signed contract again? The scan I received was cut off at the bottom of page 3, and the stamp is not readable. Please use the portal link or reply here with a PDF.",
];

fn message(account: u64, chat: &Chat, id: i64) -> Message {
    let t = TEXTS[(id as usize * 7 + id as usize / 3) % TEXTS.len()];
    let mut text = Text::plain(t);
    if id % 5 == 0 && t.is_ascii() && t.len() > 20 {
        text.entities.push(Entity {
            kind: "bold".into(),
            start: 0,
            end: 4,
            url: None,
            user_id: None,
            language: None,
            custom_emoji_id: None,
        });
        text.entities.push(Entity {
            kind: "text_link".into(),
            start: 5,
            end: 12,
            url: Some("https://example.com/orders".into()),
            user_id: None,
            language: None,
            custom_emoji_id: None,
        });
    }
    Message {
        account,
        chat: chat.clone(),
        message_id: id,
        topic: None,
        direction: if id % 3 == 0 {
            Direction::Outgoing
        } else {
            Direction::Incoming
        },
        date: 1_700_000_000 + id * 37,
        edited_at: (id % 17 == 0).then_some(1_700_000_000 + id * 37 + 60),
        status: Status::Delivered,
        content: MessageContent {
            sender: Sender::User(UserRef {
                id: 42 + id % 2,
                is_bot: false,
                first_name: ["Amira", "Boris"][id as usize % 2].into(),
                last_name: None,
                username: None,
                language_code: None,
            }),
            reply_to: (id % 10 == 0 && id > 1).then(|| ReplyTo {
                message_id: id - 1,
                chat_id: None,
                quote: None,
            }),
            forward: None,
            media_group: None,
            body: Body::Text(text),
            notes: Vec::new(),
        },
    }
}

fn main() -> Res<()> {
    let args = Args::parse();
    let n = args.messages.unwrap_or(if args.bench { 100_000 } else { 1_500 });
    let root = args
        .dir
        .clone()
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .join(format!("export-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = Store::open(
        &root,
        &StoreOptions {
            credentials_dir: None,
            ..StoreOptions::default()
        },
    )?;
    let account = accounts::create_blocking(
        &store,
        NewAccount {
            channel: "telegram".into(),
            name: "front desk".into(),
            ..NewAccount::default()
        },
    )?
    .id;
    let chat = Chat {
        id: 5001,
        kind: ChatKind::Private,
        title: Some("Long conversation".into()),
        username: None,
        is_forum: false,
    };
    let pipeline = Pipeline::new(store.clone(), Arc::new(NoIndex));
    let t0 = Instant::now();
    let mut id = 1;
    while id <= n {
        let end = (id + 999).min(n);
        let changes = (id..=end)
            .map(|i| Change::New(message(account, &chat, i)))
            .collect();
        pipeline.submit_blocking(Batch {
            account,
            changes,
            position: None,
        })?;
        id = end + 1;
    }
    println!("ingested {n} messages in {:.1} s", t0.elapsed().as_secs_f64());
    let attachments = rt.block_on(Attachments::open_default_http(
        store.clone(),
        AttachmentOptions::default(),
    ))?;
    let key = ChatKey {
        scope: account,
        chat: 5001,
    };
    let head = source::chat_head(&store, &Grants::All, key)?.ok_or("chat")?;
    let options = ExportOptions::default();

    // PDF.
    reset_peak_rss();
    let rss_before = peak_rss_kb();
    let t = Instant::now();
    let fonts = Fonts::load(&options.fonts_dir)?;
    let job = PdfJob {
        store: store.clone(),
        attachments,
        grants: Grants::All,
        chat: head.clone(),
        period: Period::default(),
        thumbnails: true,
        notes: false,
        exported_by: "bench".into(),
        options: options.clone(),
        rt: rt.handle().clone(),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
    let consumer = rt.spawn(drain(rx));
    let rendered = rt.block_on(rt.spawn_blocking(move || archive::pdf(job, &fonts, &tx)))??;
    let bytes = rt.block_on(consumer)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "pdf: {n} messages, {} pages, {:.1} MB in {secs:.1} s: {:.0} pages/s, {:.0} messages/s; peak RSS {} MB (before: {} MB); notdef {}, replaced {}, overflow {}",
        rendered.pages,
        bytes as f64 / 1e6,
        f64::from(rendered.pages) / secs,
        n as f64 / secs,
        peak_rss_kb() / 1024,
        rss_before / 1024,
        rendered.layout.notdef,
        rendered.layout.replaced,
        rendered.overflow,
    );
    assert_eq!(rendered.overflow, 0);
    assert_eq!(rendered.messages, n as u64);

    // JSON Lines.
    reset_peak_rss();
    let t = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(AHEAD);
    let consumer = rt.spawn(drain(rx));
    let s2 = store.clone();
    let lines = rt.block_on(
        rt.spawn_blocking(move || archive::jsonl(s2, Grants::All, &head, Period::default(), &tx)),
    )??;
    let bytes = rt.block_on(consumer)?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "jsonl: {lines} messages, {:.1} MB in {secs:.1} s: {:.0} messages/s; peak RSS {} MB",
        bytes as f64 / 1e6,
        lines as f64 / secs,
        peak_rss_kb() / 1024,
    );
    println!("load average: {}", load_average());
    drop(store);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

async fn drain(mut rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>) -> u64 {
    let mut n = 0;
    while let Some(b) = rx.recv().await {
        n += b.map(|b| b.len() as u64).unwrap_or(0);
    }
    n
}
