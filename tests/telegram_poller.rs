//! The long-polling connector against the Bot API simulator over real sockets, into a real
//! store through the real pipeline: every update ingested once, the offset committed with the
//! updates, restarts that neither lose nor repeat, 429/5xx/hangs survived, 401 and 409 stopping
//! the account visibly.
//!
//! Real time throughout, not paused tokio time: the gaps are measured where Telegram would see
//! them, at the simulator, which stamps calls with `std::time::Instant`; and while a commit runs
//! on the store's writer thread the runtime is idle, so paused time would jump to the next
//! timer (a request or test timeout) mid-commit.

mod support;

use std::sync::Arc;
use std::time::Duration;

use lanbox::channels::telegram::client::{BotClient, SetWebhook, Token, http_client};
use lanbox::channels::telegram::map_raw;
use lanbox::channels::telegram::poller::{
    ALLOWED_UPDATES, AccountStatus, Backoff, Poller, PollerConfig, StopReason,
};
use lanbox::channels::telegram::pollers::Pollers;
use lanbox::dev::simulator::{Call, Fault, SimBot, Simulator};
use lanbox::ingest::{Batch, NoIndex, Pipeline};
use lanbox::store::Store;
use serde_json::{Value, json};
use support::messages::open;
use support::{bots, updates};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(20);

/// Short polls and short backoffs, so failures resolve in a test's time.
fn fast() -> PollerConfig {
    PollerConfig {
        poll_timeout: 1,
        request_margin: Duration::from_millis(500),
        limit: 100,
        backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
        },
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    store: Store,
    pipeline: Pipeline,
    sim: Simulator,
    bot: SimBot,
    account: u64,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("inbox_bot");
    let account = bots::add(&store, &sim, &bot, None).await;
    let pipeline = Pipeline::new(store.clone(), Arc::new(NoIndex));
    Rig {
        _dir: dir,
        store,
        pipeline,
        sim,
        bot,
        account,
    }
}

/// A running poller: its status, a stop switch and its task.
struct Running {
    status: watch::Receiver<AccountStatus>,
    stop: watch::Sender<bool>,
    task: JoinHandle<StopReason>,
}

impl Running {
    async fn stop(self) -> StopReason {
        self.stop.send_replace(true);
        self.task.await.unwrap()
    }
}

fn start(rig: &Rig, config: PollerConfig) -> Running {
    let client = BotClient::new(
        http_client().unwrap(),
        &rig.sim.api_base(),
        Token::new(rig.bot.token()).unwrap(),
    );
    let (status_tx, status) = watch::channel(AccountStatus::Starting);
    let (stop, mut stopped) = watch::channel(false);
    let poller = Poller {
        account: rig.account,
        client,
        pipeline: rig.pipeline.clone(),
        config,
        status: status_tx,
    };
    let task = tokio::spawn(poller.run(async move {
        let _ = stopped.wait_for(|v| *v).await;
    }));
    Running { status, stop, task }
}

async fn position(store: &Store, account: u64) -> Option<u64> {
    store.read(move |r| r.position(account)).await.unwrap()
}

fn fixtures() -> Vec<(String, Value)> {
    let out: Vec<_> = updates::fixtures()
        .into_iter()
        .map(|(name, raw)| (name, serde_json::from_slice(&raw).unwrap()))
        .collect();
    assert!(out.len() > 20, "fixtures missing");
    out
}

fn text_update(chat: i64, id: i64) -> Value {
    updates::private_text(chat, "Ann", id, updates::DATE + id, &format!("message {id}"))
}

fn get_updates(calls: &[Call]) -> Vec<&Call> {
    calls.iter().filter(|c| c.method == "getUpdates").collect()
}

/// Waits until every injected update has been confirmed by a later offset, which the poller
/// sends only after committing them.
async fn drained(bot: &SimBot) {
    assert!(
        bot.wait_until(WAIT, |b| b.pending() == 0).await,
        "updates not confirmed"
    );
}

async fn wait_status(status: &mut watch::Receiver<AccountStatus>, pred: impl Fn(&AccountStatus) -> bool) {
    let got = tokio::time::timeout(WAIT, status.wait_for(|s| pred(s)))
        .await
        .map(|r| r.is_ok());
    assert_eq!(got, Ok(true), "status never came; last: {:?}", *status.borrow());
}

/// What a store holds, for comparing two stores: message keys, events, rejections, position.
async fn contents(store: &Store, account: u64) -> (Vec<String>, Vec<String>, u64, Option<u64>) {
    store
        .read(move |r| {
            let keys = r.all_message_keys()?.iter().map(|k| format!("{k:?}")).collect();
            let events = r
                .events_after(0, usize::MAX)?
                .iter()
                .map(|e| format!("{:?} {} {:?} {:?}", e.kind, e.chat_id, e.message_key, e.from_chat))
                .collect();
            Ok((keys, events, r.rejected(account)?, r.position(account)?))
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_update_is_ingested_once_across_restarts() {
    let rig = rig().await;
    let fixtures = fixtures();
    let half = fixtures.len() / 2;
    let mut injected = Vec::new();
    for (_, update) in &fixtures[..half] {
        injected.push(rig.bot.inject(update.clone()));
    }
    // One update whose payload does not parse: it must not take its neighbours down.
    injected.push(rig.bot.inject_raw(|id| {
        format!(
            r#"{{"update_id":{id},"message":{{"message_id":"seven","chat":{{"id":5,"type":"private"}}}}}}"#
        )
    }));
    injected.push(rig.bot.inject(text_update(77, 1)));
    assert_eq!(position(&rig.store, rig.account).await, None);

    let first = start(&rig, fast());
    drained(&rig.bot).await;
    let first_last = *injected.last().unwrap();
    assert_eq!(
        position(&rig.store, rig.account).await,
        Some(first_last as u64 + 1)
    );
    assert_eq!(first.stop().await, StopReason::Shutdown);

    // Injected while the poller is down: held by "Telegram" until the next start.
    for (_, update) in &fixtures[half..] {
        injected.push(rig.bot.inject(update.clone()));
    }
    injected.push(rig.bot.inject(text_update(77, 2)));
    let calls_before = rig.bot.calls().len();
    let second = start(&rig, fast());
    drained(&rig.bot).await;
    assert_eq!(second.stop().await, StopReason::Shutdown);

    let last = *injected.last().unwrap();
    assert_eq!(position(&rig.store, rig.account).await, Some(last as u64 + 1));
    let calls = rig.bot.calls();
    // The restart resumed from the committed position...
    let resumed = get_updates(&calls[calls_before..])[0];
    assert_eq!(resumed.params["offset"], json!(first_last + 1));
    assert_eq!(resumed.params["allowed_updates"], json!(ALLOWED_UPDATES));
    // ...and on the wire every update went out once to each run. (The first run's last long
    // poll may still answer after its client went away: Telegram then delivers those updates
    // again, since no offset confirmed them. So the first run counts up to its last update.)
    let once = |calls: &[Call], up_to: i64| {
        let mut ids: Vec<i64> = get_updates(calls)
            .iter()
            .flat_map(|c| c.delivered.clone())
            .filter(|id| *id <= up_to)
            .collect();
        ids.sort();
        ids
    };
    let first_len = half + 2;
    assert_eq!(once(&calls[..calls_before], first_last), injected[..first_len]);
    assert_eq!(once(&calls[calls_before..], i64::MAX), injected[first_len..]);

    // The store holds exactly what ingesting each update once, directly, gives.
    let ref_dir = tempfile::tempdir().unwrap();
    let reference = open(ref_dir.path());
    let ref_account = bots::add(&reference, &rig.sim, &rig.bot, None).await;
    assert_eq!(ref_account, rig.account);
    let ref_pipeline = Pipeline::new(reference.clone(), Arc::new(NoIndex));
    let mut texts: Vec<Vec<u8>> = fixtures[..half]
        .iter()
        .map(|(_, u)| u.to_string().into_bytes())
        .collect();
    texts.push(
        br#"{"update_id":1,"message":{"message_id":"seven","chat":{"id":5,"type":"private"}}}"#.to_vec(),
    );
    texts.push(text_update(77, 1).to_string().into_bytes());
    texts.extend(fixtures[half..].iter().map(|(_, u)| u.to_string().into_bytes()));
    texts.push(text_update(77, 2).to_string().into_bytes());
    for (text, id) in texts.iter().zip(&injected) {
        let mut changes = map_raw(ref_account, text).changes;
        ref_pipeline
            .submit(Batch {
                account: ref_account,
                changes: std::mem::take(&mut changes),
                position: Some(*id as u64 + 1),
            })
            .await
            .unwrap();
    }
    let got = contents(&rig.store, rig.account).await;
    let want = contents(&reference, ref_account).await;
    assert!(!got.0.is_empty() && got.2 > 0, "nothing stored: {got:?}");
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_exactly() {
    let rig = rig().await;
    rig.bot.fail("getUpdates", Fault::RetryAfter(1), 1);
    let id = rig.bot.inject(text_update(5, 1));
    let mut running = start(&rig, fast());
    wait_status(
        &mut running.status,
        |s| matches!(s, AccountStatus::BackingOff { reason, .. } if reason.contains("retry after 1")),
    )
    .await;
    drained(&rig.bot).await;
    running.stop().await;
    let calls = rig.bot.calls();
    let polls = get_updates(&calls);
    assert_eq!(polls[0].status, Some(429));
    assert_eq!(polls[1].delivered, [id]);
    // Measured where Telegram would measure it: between the 429 and the next call.
    let gap = polls[1].at - polls[0].at;
    assert!(gap >= Duration::from_secs(1), "next call after {gap:?}");
    assert!(gap < Duration::from_secs(3), "next call after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_back_off_then_recover() {
    let rig = rig().await;
    rig.bot.fail("getUpdates", Fault::Status(500), 2);
    rig.bot.fail("getUpdates", Fault::Status(502), 1);
    rig.bot
        .fail("getUpdates", Fault::Slow(Duration::from_millis(200)), 1);
    let id = rig.bot.inject(text_update(5, 1));
    let mut running = start(&rig, fast());
    drained(&rig.bot).await;
    wait_status(&mut running.status, |s| *s == AccountStatus::Running).await;
    running.stop().await;
    let calls = rig.bot.calls();
    let polls = get_updates(&calls);
    let statuses: Vec<_> = polls.iter().take(4).map(|c| c.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(502), Some(200)]);
    assert_eq!(polls[3].delivered, [id]);
    // Exponential: at least half of 100, 200 and 400 ms (capped) between the tries.
    for (i, min_ms) in [(1, 50), (2, 100), (3, 200)] {
        let gap = polls[i].at - polls[i - 1].at;
        assert!(gap >= Duration::from_millis(min_ms), "retry {i} after {gap:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_call_times_out_then_recovers() {
    let rig = rig().await;
    rig.bot.fail("getUpdates", Fault::Hang, 1);
    let id = rig.bot.inject(text_update(5, 1));
    let mut running = start(&rig, fast());
    wait_status(
        &mut running.status,
        |s| matches!(s, AccountStatus::BackingOff { reason, .. } if reason.contains("timed out")),
    )
    .await;
    drained(&rig.bot).await;
    running.stop().await;
    let calls = rig.bot.calls();
    let polls = get_updates(&calls);
    assert_eq!(polls[0].status, None, "the hung call was never answered");
    assert_eq!(polls[1].delivered, [id]);
    // The request timeout is the long poll's 1 s plus the 500 ms margin.
    let gap = polls[1].at - polls[0].at;
    assert!(gap >= Duration::from_millis(1500), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_stops_the_account_visibly() {
    let rig = rig().await;
    let (shutdown_tx, shutdown) = watch::channel(false);
    let pollers = Pollers::new(rig.pipeline.clone(), http_client().unwrap(), fast(), shutdown);
    assert_eq!(pollers.start_all().await.unwrap(), 1);
    let mut status = pollers.watch(rig.account).unwrap();
    let id = rig.bot.inject(text_update(5, 1));
    drained(&rig.bot).await;
    assert_eq!(position(&rig.store, rig.account).await, Some(id as u64 + 1));

    rig.bot.revoke();
    wait_status(&mut status, |s| {
        matches!(
            s,
            AccountStatus::Stopped {
                reason: StopReason::Unauthorized
            }
        )
    })
    .await;
    // The task has ended, so no call can follow the 401.
    let calls = rig.bot.calls().len();
    assert_eq!(pollers.join().await, [(rig.account, StopReason::Unauthorized)]);
    assert_eq!(rig.bot.calls().len(), calls);
    assert_eq!(rig.bot.calls().last().unwrap().status, Some(401));
    drop(shutdown_tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_conflict_stops_the_account_visibly() {
    let rig = rig().await;
    let client = BotClient::new(
        http_client().unwrap(),
        &rig.sim.api_base(),
        Token::new(rig.bot.token()).unwrap(),
    );
    let hook = SetWebhook {
        url: "https://elsewhere.example/hook".into(),
        ..SetWebhook::default()
    };
    client.set_webhook(&hook).await.unwrap();
    let (shutdown_tx, shutdown) = watch::channel(false);
    let pollers = Pollers::new(rig.pipeline.clone(), http_client().unwrap(), fast(), shutdown);
    pollers.start_all().await.unwrap();
    let mut status = pollers.watch(rig.account).unwrap();
    wait_status(
        &mut status,
        |s| matches!(s, AccountStatus::Stopped { reason: StopReason::Conflict(d) } if d.contains("webhook")),
    )
    .await;
    // After the operator removes the webhook, a restart polls again.
    client.delete_webhook(false).await.unwrap();
    assert!(pollers.start(rig.account).await.unwrap());
    let id = rig.bot.inject(text_update(5, 1));
    drained(&rig.bot).await;
    assert_eq!(position(&rig.store, rig.account).await, Some(id as u64 + 1));
    shutdown_tx.send_replace(true);
    assert_eq!(pollers.join().await, [(rig.account, StopReason::Shutdown)]);
}
