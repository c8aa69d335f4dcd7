//! A `lanbox serve` process SIGKILLed while it long-polls the Bot API simulator loses nothing and
//! doubles nothing: updates keep arriving while it is killed and restarted several times, and at
//! the end the store holds every update exactly once (same texts, counters equal to messages).
//!
//! The offset only moves in the transaction that stored the updates, so a kill before the commit
//! makes "Telegram" (the simulator) deliver them again, and the dedup key makes the redelivery
//! harmless. Seeded (printed; `LANBOX_KILL_SEED` replays a run).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lanbox::dev::simulator::{SimBot, Simulator};
use lanbox::store::{ChatKey, Store, StoreOptions};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_lanbox");
const CHATS: i64 = 5;
const UPDATES: i64 = 1_500;
const KILLS: usize = 6;

fn command(args: &[&str], data: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .arg("--data")
        .arg(data)
        .env("LANBOX_SERVER_LISTEN", "127.0.0.1:0")
        .env("LANBOX_SERVER_MDNS", "false")
        .env_remove("LANBOX_BOT_TOKEN")
        .stdin(Stdio::null());
    c
}

fn run(args: &[&str], data: &Path) {
    let out = command(args, data).output().unwrap();
    assert!(
        out.status.success(),
        "lanbox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn serve(data: &Path) -> Child {
    command(&["serve"], data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn text(n: i64) -> String {
    format!("update number {n} of the kill test")
}

fn inject(bot: &SimBot, from: i64, to: i64) {
    for n in from..to {
        let chat = 1000 + n % CHATS;
        bot.inject(
            json!({"message": {"message_id": n / CHATS + 1, "date": 1_700_000_000 + n,
            "chat": {"id": chat, "type": "private", "first_name": "K"},
            "from": {"id": chat, "is_bot": false, "first_name": "K"}, "text": text(n)}}),
        );
    }
}

/// xorshift64*, enough for kill times.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % below
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_polling_lose_nothing_and_double_nothing() {
    let seed = std::env::var("LANBOX_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("LANBOX_KILL_SEED={seed}");
    let mut rng = Rng(seed);
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("kill_bot");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    {
        let (data, token, api) = (data.clone(), bot.token().to_owned(), sim.api_base());
        tokio::task::spawn_blocking(move || {
            run(&["init"], &data);
            run(
                &[
                    "account",
                    "add",
                    "telegram",
                    "--token",
                    &token,
                    "--api-base",
                    &api,
                ],
                &data,
            );
        })
        .await
        .unwrap();
    }

    let per_round = UPDATES / KILLS as i64;
    for round in 0..KILLS as i64 {
        inject(&bot, round * per_round, (round + 1) * per_round);
        let mut child = serve(&data);
        // Let it start and poll for a while, then kill it mid-stream.
        tokio::time::sleep(Duration::from_millis(150 + rng.next(900))).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    inject(&bot, KILLS as i64 * per_round, UPDATES);
    // A last, clean run drains what is left; SIGTERM (once it is up) stops it.
    let mut child = command(&["serve"], &data)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.starts_with("lanbox listening on"))
    });
    assert!(ready.await.unwrap(), "serve did not start");
    let drained = bot
        .wait_until(Duration::from_secs(60), |b| b.pending() == 0)
        .await;
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(drained, "the simulator still holds {} updates", bot.pending());
    assert!(status.success(), "serve did not stop cleanly: {status:?}");

    let store = Store::open(&data, &StoreOptions::default()).unwrap();
    let r = store.reader().unwrap();
    let mut total = 0u32;
    for c in 0..CHATS {
        let key = ChatKey {
            scope: 1,
            chat: 1000 + c,
        };
        let chat = r.chat(key).unwrap().expect("chat stored");
        let rows = r.chat_stored(key, i64::MIN, i64::MAX, usize::MAX).unwrap();
        assert_eq!(
            chat.record.messages as usize,
            rows.len(),
            "counter equals messages"
        );
        assert_eq!(
            chat.record.unread as usize,
            rows.len(),
            "all unread, counted once"
        );
        for (k, _) in &rows {
            let m = r.message(*k).unwrap().unwrap();
            let n = (k.msg - 1) * CHATS + c;
            let lanbox::model::Body::Text(t) = &m.content.body else {
                panic!("text body")
            };
            assert_eq!(t.text, text(n), "message {k:?} holds its own update");
        }
        total += chat.record.messages;
    }
    assert_eq!(total as i64, UPDATES, "every update stored exactly once");
    assert_eq!(r.account_unread(1).unwrap(), UPDATES as u64);
    let delivered: usize = bot
        .calls()
        .iter()
        .filter(|c| c.method == "getUpdates")
        .map(|c| c.delivered.len())
        .sum();
    eprintln!("{UPDATES} updates, {delivered} deliveries over {KILLS} kills");
}
