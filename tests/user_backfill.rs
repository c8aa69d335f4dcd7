//! History backfill of Telegram user accounts (issue 16, point 4), through the real path: the
//! MTProto simulator answers `messages.getDialogs` and `messages.getHistory` over TCP, under
//! MTProto encryption, to lanbox's connector, whose backfill task commits through the real
//! pipeline into a real store; the test reads the store (and, for the settings and progress,
//! the REST API on a real TLS socket).
//!
//! - several dialogs (private, basic group, supergroup, channel) are backfilled back to the
//!   account's day limit and no further (older pages are never asked for);
//! - "everything" stores every message once, although some also arrive through the catch-up
//!   and a live push during the backfill, which is stored promptly, before the backfill ends;
//! - a backfill stopped half-way continues from its cursor after a restart, not from the newest,
//!   and one done for 30 days continues below it when the limit becomes "everything";
//! - `FLOOD_WAIT` is honoured (progress `paused`, no call before the wait is over);
//! - the setting and the progress are in the accounts API.
//!
//! Real time: the client and simulator talk over sockets; waits are on stored state (polled)
//! or on the simulator's record of calls. `backfill_rate` (ignored) measures messages/s.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanbox::auth::Role;
use lanbox::channels::mtproto::backfill::{self, BackfillLimit, BackfillOptions, BackfillState, Progress};
use lanbox::channels::mtproto::{self, LoginSpec, StoredSession, UserConnector, UserStatus};
use lanbox::dev::mtproto::{MtSimConfig, MtSimulator, SimChat, SimChatKind, SimUser};
use lanbox::ingest::{NoIndex, Pipeline};
use lanbox::model::Body;
use lanbox::service::ServiceOptions;
use lanbox::store::Store;
use serde_json::{Value, json};
use support::messages::open;
use support::poll;
use support::server::{TestServer, get, request};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);
const HOUR: i32 = 3600;

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    pipeline: Pipeline,
    sim: MtSimulator,
}

async fn rig() -> Rig {
    support::logs::capture(&format!("info,{}", mtproto::LOG_DIRECTIVES));
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let pipeline = Pipeline::new(store.clone(), Arc::new(NoIndex));
    let sim = MtSimulator::start(MtSimConfig::default()).await.unwrap();
    Rig {
        _dir: dir,
        store,
        pipeline,
        sim,
    }
}

/// Logs the simulator's account in and gives it `options`.
async fn login(r: &Rig, options: BackfillOptions) -> u64 {
    let SocketAddr::V4(addr) = r.sim.addr() else {
        panic!("the simulator listens on IPv4")
    };
    let spec = LoginSpec {
        api_id: 12345,
        api_hash: "0123456789abcdef0123456789abcdef".into(),
        phone: r.sim.me().phone.unwrap(),
        name: None,
        rented: false,
        session: StoredSession::preshared(2, addr, r.sim.auth_key()),
    };
    let pending = mtproto::begin(&r.store, spec).await.unwrap();
    let account = pending.submit_code(&r.sim.login_code().unwrap()).await.unwrap();
    assert!(
        mtproto::accounts::set_backfill(&r.store, account, options)
            .await
            .unwrap()
    );
    account
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<String>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        assert_eq!(self.task.await.unwrap(), "shut down");
    }
}

fn start(r: &Rig, account: u64) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let c = UserConnector {
        account,
        pipeline: r.pipeline.clone(),
        status: watch::channel(UserStatus::Starting).0,
        retry: Duration::from_millis(100),
        typing: None,
        watchdog: lanbox::channels::mtproto::connector::WATCHDOG,
    };
    let task = tokio::spawn(c.run(async move {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

fn now() -> i32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i32
}

/// `n` old messages in a dialog, one every `every` seconds, the newest `newest` seconds ago
/// (oldest first); returns `(text, date)` of each.
fn seed(
    sim: &MtSimulator,
    chat: Option<&SimChat>,
    from: &SimUser,
    name: &str,
    n: i32,
    newest: i32,
    every: i32,
) -> Vec<(String, i32)> {
    let now = now();
    let items: Vec<(i32, String)> = (0..n)
        .rev()
        .map(|i| (now - newest - i * every, format!("{name} {i}")))
        .collect();
    sim.seed_history(chat, from, &items);
    items.into_iter().map(|(d, t)| (t, d)).collect()
}

/// Every stored message: `(chat, text)`.
async fn stored(store: &Store) -> Vec<(i64, String)> {
    store
        .read(|r| {
            let mut out = Vec::new();
            for key in r.all_message_keys()? {
                let m = r.message(key)?.expect("listed message exists");
                let Body::Text(t) = m.content.body else {
                    panic!("a text message")
                };
                out.push((key.chat, t.text));
            }
            out.sort();
            Ok(out)
        })
        .await
        .unwrap()
}

async fn progress(store: &Store, account: u64) -> Option<Progress> {
    store.read(move |r| backfill::progress(r, account)).await.unwrap()
}

async fn wait_done(store: &Store, account: u64) -> Progress {
    wait_done_within(store, account, WAIT).await
}

async fn wait_done_within(store: &Store, account: u64, within: Duration) -> Progress {
    poll::until_ok(within, || async {
        match progress(store, account).await {
            Some(p) if p.state == BackfillState::Done => Ok(p),
            other => Err(format!("backfill: {other:?}")),
        }
    })
    .await
}

fn options(limit: BackfillLimit, pace_ms: u32) -> BackfillOptions {
    BackfillOptions { limit, pace_ms }
}

/// The Bot API chat ID of a simulator chat.
fn chat_id(c: &SimChat) -> i64 {
    if c.is_channel() {
        -1_000_000_000_000 - c.id
    } else {
        -c.id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_dialog_is_backfilled_back_to_the_day_limit_and_no_further() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let bob = r.sim.add_user("Bob");
    let group = r.sim.add_chat("Team", SimChatKind::Group);
    let supergroup = r.sim.add_chat("Support", SimChatKind::Supergroup);
    let channel = r.sim.add_chat("News", SimChatKind::Channel);
    // 150 messages each, every 10 hours, the newest an hour old: 62 days of history.
    let dialogs = [
        (ann.id, seed(&r.sim, None, &ann, "ann", 150, HOUR, 10 * HOUR)),
        (
            -group.id,
            seed(&r.sim, Some(&group), &bob, "group", 150, HOUR, 10 * HOUR),
        ),
        (
            chat_id(&supergroup),
            seed(
                &r.sim,
                Some(&supergroup),
                &bob,
                "supergroup",
                150,
                HOUR,
                10 * HOUR,
            ),
        ),
        (
            chat_id(&channel),
            seed(&r.sim, Some(&channel), &bob, "channel", 150, HOUR, 10 * HOUR),
        ),
    ];
    let account = login(&r, options(BackfillLimit::Days { days: 30 }, 0)).await;
    let run = start(&r, account);
    let p = wait_done(&r.store, account).await;
    run.stop().await;

    let cutoff = now() - 30 * 86_400;
    let mut expected: Vec<(i64, String)> = Vec::new();
    for (chat, items) in &dialogs {
        let recent: Vec<_> = items.iter().filter(|(_, d)| *d >= cutoff).collect();
        assert_eq!(recent.len(), 72, "30 days of one every 10 hours");
        expected.extend(recent.into_iter().map(|(t, _)| (*chat, t.clone())));
    }
    expected.sort();
    assert_eq!(stored(&r.store).await, expected);
    assert_eq!((p.dialogs_done, p.dialogs_total, p.messages), (4, 4, 4 * 72));
    // One page each reached back past the limit: no dialog was asked for more.
    let calls = r.sim.history_calls();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert!(
        calls.iter().all(|c| c.offset_id == 0 && c.returned == 100),
        "{calls:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_is_stored_once_and_a_live_message_does_not_wait_for_the_backfill() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let bob = r.sim.add_user("Bob");
    let group = r.sim.add_chat("Team", SimChatKind::Group);
    let channel = r.sim.add_chat("News", SimChatKind::Channel);
    let mut count = 0;
    for (chat, name) in [
        (None, "ann"),
        (Some(&group), "group"),
        (Some(&channel), "channel"),
    ] {
        count += seed(
            &r.sim,
            chat,
            if chat.is_none() { &ann } else { &bob },
            name,
            250,
            HOUR,
            HOUR,
        )
        .len();
    }
    // Years old: "everything" reaches it.
    seed(&r.sim, None, &bob, "ancient", 3, 3 * 365 * 86_400, HOUR);
    count += 3;
    // Paced (200 ms a call): 1 + 3 + 3 + 3 + 1 calls take two seconds and more.
    let account = login(&r, options(BackfillLimit::All, 200)).await;
    // Sent while lanbox was not connected: it comes with the catch-up and with the history.
    r.sim.message_from_unpushed(&ann, "missed while down");
    let run = start(&r, account);
    poll::until("the backfill's first page", WAIT, || async {
        !r.sim.history_calls().is_empty()
    })
    .await;
    let pushed = Instant::now();
    r.sim.message_from(&bob, "live during the backfill");
    poll::until_ok(WAIT, || async {
        let all = stored(&r.store).await;
        if all.iter().any(|(_, t)| t == "live during the backfill") {
            Ok(())
        } else {
            Err(format!("{} stored, not the live one", all.len()))
        }
    })
    .await;
    let p = progress(&r.store, account).await.unwrap();
    assert_ne!(
        p.state,
        BackfillState::Done,
        "stored before the backfill ended ({:?} after the push)",
        pushed.elapsed()
    );
    let p = wait_done(&r.store, account).await;
    run.stop().await;

    let all = stored(&r.store).await;
    let mut texts: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
    texts.sort_unstable();
    let before = texts.len();
    texts.dedup();
    assert_eq!(before, texts.len(), "a text stored twice");
    assert_eq!(
        all.len(),
        count + 2,
        "every seeded message, the missed one and the live one"
    );
    assert!(texts.contains(&"ancient 0") && texts.contains(&"missed while down"));
    // The backfill fetched the missed message too (dedup absorbed it), and the live one when
    // its dialog's first page came after the push.
    let fetched = count as u64;
    assert!((fetched + 1..=fetched + 2).contains(&p.messages), "{p:?}");
    assert_eq!((p.dialogs_done, p.dialogs_total), (4, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_backfill_resumes_from_its_cursor() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    seed(&r.sim, None, &ann, "ann", 500, HOUR, 60);
    let account = login(&r, options(BackfillLimit::All, 150)).await;
    let run = start(&r, account);
    poll::until_ok(WAIT, || async {
        match progress(&r.store, account).await {
            Some(p) if p.messages >= 200 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    run.stop().await;
    let before = r.sim.history_calls().len();
    let cursor = r
        .store
        .read(move |rd| backfill::cursors(rd, account))
        .await
        .unwrap()[&ann.id];
    assert!(cursor.oldest_id > 0 && !cursor.complete, "{cursor:?}");
    assert!(stored(&r.store).await.len() < 500, "stopped half-way");

    let run = start(&r, account);
    let p = wait_done(&r.store, account).await;
    run.stop().await;
    let calls = r.sim.history_calls();
    let after = &calls[before..];
    assert!(
        after[0].offset_id > 0 && after[0].offset_id <= cursor.oldest_id,
        "continued below the cursor, not from the newest: {after:?}"
    );
    assert_eq!(
        calls.iter().filter(|c| c.offset_id == 0).count(),
        1,
        "the newest page was fetched once: {calls:?}"
    );
    assert_eq!(stored(&r.store).await.len(), 500);
    assert!(p.messages >= 500, "{p:?}");
}

// Regression: the cursor moved to the oldest message of the page that passed the limit, not
// to the oldest one kept, so a longer limit later skipped the rest of that page (70 messages).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_limit_continues_below_what_the_shorter_one_fetched() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    // 250 messages, one a day: 30 days take the newest 30 (one page, which passes the limit).
    let items = seed(&r.sim, None, &ann, "ann", 250, HOUR, 86_400);
    let account = login(&r, options(BackfillLimit::Days { days: 30 }, 0)).await;
    let run = start(&r, account);
    let p = wait_done(&r.store, account).await;
    run.stop().await;
    assert_eq!(p.messages, 30);
    let first = r.sim.history_calls();
    assert_eq!(first.len(), 1, "{first:?}");

    assert!(
        mtproto::accounts::set_backfill(&r.store, account, options(BackfillLimit::All, 0))
            .await
            .unwrap()
    );
    let run = start(&r, account);
    poll::until_ok(WAIT, || async {
        match progress(&r.store, account).await {
            Some(p) if p.state == BackfillState::Done && p.messages >= 250 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    run.stop().await;
    let calls = r.sim.history_calls();
    let more = &calls[first.len()..];
    assert!(
        more.iter().all(|c| c.offset_id > 0),
        "nothing asked from the newest again: {more:?}"
    );
    assert_eq!(stored(&r.store).await.len(), items.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_pauses_the_backfill_until_it_is_over() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    seed(&r.sim, None, &ann, "ann", 150, HOUR, 60);
    let account = login(&r, options(BackfillLimit::All, 0)).await;
    // grammers sleeps through the first (short) FLOOD_WAIT itself; the second reaches the
    // backfill, which waits it out.
    r.sim.fail_next("messages.getHistory", 420, "FLOOD_WAIT_1");
    r.sim.fail_next("messages.getHistory", 420, "FLOOD_WAIT_2");
    let started = Instant::now();
    let run = start(&r, account);
    let paused = poll::until_ok(WAIT, || async {
        match progress(&r.store, account).await {
            Some(p) if p.state == BackfillState::Paused => Ok(p),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let until = paused.flood_until.expect("paused until a time");
    assert!(
        (i64::from(now()) + 1..=i64::from(now()) + 2).contains(&until),
        "{paused:?}"
    );
    let p = wait_done(&r.store, account).await;
    run.stop().await;
    let calls = r.sim.history_calls();
    assert!(
        calls[0].at.duration_since(started) >= Duration::from_secs(3),
        "the first page came {:?} after the start: both waits (1 s + 2 s) were honoured",
        calls[0].at.duration_since(started)
    );
    assert_eq!(p.messages, 150);
    assert_eq!(stored(&r.store).await.len(), 150);
}

/// Settings: the account's backfill setting is changed through the API, and its progress is in
/// the account list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setting_and_the_progress_are_in_the_accounts_api() {
    support::logs::capture(&format!("info,{}", mtproto::LOG_DIRECTIVES));
    let sim = MtSimulator::start(MtSimConfig::default()).await.unwrap();
    let ann = sim.add_user("Ann");
    let team = sim.add_chat("Team", SimChatKind::Supergroup);
    // Recent (three days) and old (forty days and more): a week's limit takes the recent only.
    seed(&sim, None, &ann, "old ann", 20, 40 * 86_400, HOUR);
    seed(&sim, None, &ann, "ann", 30, HOUR, HOUR);
    seed(&sim, Some(&team), &ann, "old team", 20, 40 * 86_400, HOUR);
    seed(&sim, Some(&team), &ann, "team", 30, HOUR, HOUR);
    let s = TestServer::start_with(ServiceOptions {
        telegram_app: Some(support::users::app(&sim)),
        ..ServiceOptions::default()
    })
    .await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let (st, v) = request(
        &s,
        "POST",
        &root,
        "/api/v1/account-logins",
        Some(json!({"phone": sim.me().phone.unwrap()})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let login = v["login"].as_str().unwrap().to_string();
    let (st, v) = request(
        &s,
        "POST",
        &root,
        &format!("/api/v1/account-logins/{login}/code"),
        Some(json!({ "code": sim.login_code().unwrap() })),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let account = v["account"]["id"].as_u64().unwrap();
    assert_eq!(v["account"]["backfill"]["limit"], "days", "{v}");
    assert_eq!(v["account"]["backfill"]["days"], 30, "the default");
    assert_eq!(v["account"]["backfill"]["pace_ms"], 1000, "the default");

    let path = format!("/api/v1/accounts/{account}");
    let (st, v) = request(&s, "PATCH", &root, &path, Some(json!({"backfill": "weeks"}))).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("bad_backfill")),
        "{v}"
    );
    let (st, v) = request(
        &s,
        "PATCH",
        &root,
        &path,
        Some(json!({"backfill_days": 7, "backfill_pace_ms": 0})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            &v["backfill"]["limit"],
            &v["backfill"]["days"],
            &v["backfill"]["pace_ms"]
        ),
        (&json!("days"), &json!(7), &json!(0)),
        "{v}"
    );
    let done = poll::until_ok(WAIT, || async {
        let (_, all) = get(&s, &root, "/api/v1/accounts").await;
        let a = all
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == account)
            .cloned()
            .unwrap();
        if a["backfill"]["state"] == "done" {
            Ok(a)
        } else {
            Err(format!("{a}"))
        }
    })
    .await;
    assert_eq!(done["backfill"]["dialogs_done"], 2, "{done}");
    assert_eq!(done["backfill"]["dialogs_total"], 2, "{done}");
    assert_eq!(done["backfill"]["messages"], 60, "{done}");
    assert_eq!(done["backfill"]["flood_wait_until"], Value::Null);
    let texts: Vec<String> = stored(&s.store).await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts.len(), 60, "{texts:?}");
    assert!(!texts.iter().any(|t| t.starts_with("old")), "{texts:?}");
    let by_chat: HashMap<&str, usize> = texts.iter().fold(HashMap::new(), |mut m, t| {
        *m.entry(t.split(' ').next().unwrap()).or_default() += 1;
        m
    });
    assert_eq!(by_chat, HashMap::from([("ann", 30), ("team", 30)]));
}

/// The backfill rate (messages/s) without pacing and with the default pacing; prints the
/// figures for docs/user-accounts.md:
/// `cargo test --release --test user_backfill backfill_rate -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand"]
async fn backfill_rate() {
    for pace in [0, backfill::DEFAULT_PACE_MS] {
        let r = rig().await;
        let bob = r.sim.add_user("Bob");
        let mut n = 0;
        for i in 0..5 {
            let u = r.sim.add_user(&format!("person {i}"));
            let g = r.sim.add_chat(&format!("group {i}"), SimChatKind::Supergroup);
            n += seed(&r.sim, None, &u, &format!("p{i}"), 300, HOUR, 60).len();
            n += seed(&r.sim, Some(&g), &bob, &format!("g{i}"), 300, HOUR, 60).len();
        }
        let account = login(&r, options(BackfillLimit::All, pace)).await;
        let t = Instant::now();
        let run = start(&r, account);
        let p = wait_done_within(&r.store, account, Duration::from_secs(300)).await;
        let took = t.elapsed();
        run.stop().await;
        assert_eq!(p.messages, n as u64);
        println!(
            "pace {pace} ms: {n} messages in 10 dialogs, {} calls, in {took:.2?}: {:.0} messages/s",
            r.sim.history_calls().len() + 1,
            n as f64 / took.as_secs_f64()
        );
    }
}
