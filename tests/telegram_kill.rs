//! A `lanbox serve` process SIGKILLed while it long-polls the Bot API simulator loses nothing and
//! doubles nothing: updates keep arriving while it is killed and restarted several times, and at
//! the end the store holds every update exactly once (same texts, counters equal to messages).
//!
//! The offset only moves in the transaction that stored the updates, so a kill before the commit
//! makes "Telegram" (the simulator) deliver them again, and the dedup key makes the redelivery
//! harmless. Seeded (printed; `LANBOX_KILL_SEED` replays a run).

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lanbox::dev::simulator::{SimBot, Simulator};
use lanbox::store::{ChatKey, Store, StoreOptions};
use support::binary::{self, Serving};
use support::rng::Rng;
use support::updates;

const CHATS: i64 = 5;
const UPDATES: i64 = 1_500;
const KILLS: usize = 6;

/// `lanbox ARGS --data DATA` without mDNS.
fn command(args: &[&str], data: &Path) -> Command {
    let mut c = binary::command(args, data);
    c.env("LANBOX_SERVER_MDNS", "false");
    c
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
        bot.inject(updates::private_text(
            chat,
            "K",
            n / CHATS + 1,
            updates::DATE + n,
            &text(n),
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_polling_lose_nothing_and_double_nothing() {
    let seed = support::rng::seed("LANBOX_KILL_SEED");
    let mut rng = Rng(seed);
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("kill_bot");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    {
        let (data, token, api) = (data.clone(), bot.token().to_owned(), sim.api_base());
        tokio::task::spawn_blocking(move || {
            binary::run(&mut command(&["init"], &data));
            binary::run(&mut command(
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
            ));
        })
        .await
        .unwrap();
    }

    let per_round = UPDATES / KILLS as i64;
    for round in 0..KILLS as i64 {
        inject(&bot, round * per_round, (round + 1) * per_round);
        let mut child = serve(&data);
        // Let it start and poll for a while, then kill it mid-stream.
        tokio::time::sleep(Duration::from_millis(150 + rng.below(900) as u64)).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    inject(&bot, KILLS as i64 * per_round, UPDATES);
    // A last, clean run drains what is left; SIGTERM (once it is up) stops it.
    let serving = {
        let mut c = command(&["serve"], &data);
        c.stderr(Stdio::null());
        tokio::task::spawn_blocking(move || Serving::start(&mut c))
            .await
            .unwrap()
    };
    let drained = bot
        .wait_until(Duration::from_secs(60), |b| b.pending() == 0)
        .await;
    let status = tokio::task::spawn_blocking(move || serving.stop()).await.unwrap();
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
