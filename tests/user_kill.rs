//! A `lanbox serve` process SIGKILLed at random points while a Telegram *user* account's update
//! stream runs (issue 16, point 9): messages keep coming from the MTProto simulator, some of
//! them never pushed (gaps the connector must fill from `updates.getDifference`), some in a
//! supergroup (its own pts, `updates.getChannelDifference`), while the box is killed and started
//! again several times. At the end every message is stored exactly once: none lost, none
//! doubled, counters equal to the messages.
//!
//! The update state (pts, qts, seq, each channel's pts) only moves in the transaction that
//! stored what it covers, so a kill before the commit makes the next start ask Telegram (the
//! simulator) for the same updates again, and the dedup key makes a repeat harmless. Seeded
//! (printed; `LANBOX_KILL_SEED` replays a run's choices).

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lanbox::auth::{NewUser, Role, credentials, users};
use lanbox::channels::mtproto::{self, LoginSpec, StoredSession, connector};
use lanbox::dev::mtproto::{MtSimConfig, MtSimulator, SimChatKind};
use lanbox::store::{Store, StoreOptions};
use serde_json::Value;
use support::binary::{self, Serving};
use support::rng::Rng;

/// Messages in all; kills while they arrive.
const MESSAGES: usize = 600;
const KILLS: usize = 6;

fn text(n: usize) -> String {
    format!("message number {n} of the user-account kill test")
}

/// `lanbox ARGS --data DATA` with the box's Telegram application pointed at the simulator.
fn command(args: &[&str], data: &Path, sim: &MtSimulator) -> Command {
    let key: String = sim.auth_key().iter().map(|b| format!("{b:02x}")).collect();
    let mut c = binary::command(args, data);
    c.env("LANBOX_SERVER_MDNS", "false")
        .env("LANBOX_TELEGRAM_API_ID", "12345")
        .env("LANBOX_TELEGRAM_API_HASH", "0123456789abcdef0123456789abcdef")
        .env("LANBOX_TELEGRAM_DEV_SIMULATOR", sim.addr().to_string())
        .env("LANBOX_TELEGRAM_DEV_SIMULATOR_KEY", key);
    c
}

fn serve(data: &Path, sim: &MtSimulator) -> Child {
    command(&["serve"], data, sim)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `updates.getDifference` calls the simulator has answered so far.
fn differences(sim: &MtSimulator) -> usize {
    sim.calls()
        .iter()
        .filter(|c| *c == "updates.getDifference")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_during_a_user_accounts_stream_with_gaps_lose_nothing_and_double_nothing() {
    let seed = support::rng::seed("LANBOX_KILL_SEED");
    let mut rng = Rng(seed);
    let sim = MtSimulator::start(MtSimConfig::default()).await.unwrap();
    let people = [sim.add_user("Ann"), sim.add_user("Bo"), sim.add_user("Cy")];
    let group = sim.add_chat("Kill test group", SimChatKind::Supergroup);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let init = binary::output(command(&["init"], &data, &sim)).await;
    assert!(init.status.success(), "{}", binary::describe(&init));

    // The account signs in (as the login routes would) and an admin gets a token, before any
    // `serve` holds the store.
    let (account, token) = {
        let store = Store::open(&data, &StoreOptions::default()).unwrap();
        let SocketAddr::V4(addr) = sim.addr() else {
            panic!("the simulator listens on IPv4")
        };
        let spec = LoginSpec {
            api_id: 12345,
            api_hash: "0123456789abcdef0123456789abcdef".into(),
            phone: sim.me().phone.unwrap(),
            name: None,
            rented: false,
            session: StoredSession::preshared(2, addr, sim.auth_key()),
        };
        let pending = mtproto::begin(&store, spec).await.unwrap();
        let account = pending.submit_code(&sim.login_code().unwrap()).await.unwrap();
        drop(pending);
        users::add(
            &store,
            NewUser {
                name: "root".into(),
                role: Role::Admin,
                password: "a long enough password".into(),
                grants: vec![],
            },
        )
        .await
        .unwrap();
        let (token, _) = credentials::create_token(&store, "root", "kill test", None)
            .await
            .unwrap();
        (account, token)
    };

    // Where each message went, by its text's number.
    let send = |n: usize, rng: &mut Rng| {
        match rng.below(8) {
            // A supergroup message (pushed as updateNewChannelMessage).
            0 | 1 => {
                sim.message_in(&group, &people[n % 3], &text(n));
            }
            // Never pushed: the next push shows a gap, or the next start's difference has it.
            2 => {
                sim.message_from_unpushed(&people[n % 3], &text(n));
            }
            _ => {
                sim.message_from(&people[n % 3], &text(n));
            }
        }
    };

    let mut sent = 0usize;
    // (committed pts, simulator's pts) at each kill.
    let mut committed = Vec::new();
    let per_round = MESSAGES / (KILLS + 1);
    for _ in 0..KILLS {
        let catch_ups = differences(&sim);
        let mut child = serve(&data, &sim);
        // A few arrive while it starts; then, once its connector is catching up, the rest
        // arrive one by one while it catches up and runs live. It is killed after a random
        // number of them, at whatever it was doing then.
        let early = rng.below(per_round / 4);
        for _ in 0..early {
            send(sent, &mut rng);
            sent += 1;
        }
        support::poll::until("the connector to catch up", Duration::from_secs(60), || async {
            differences(&sim) > catch_ups
        })
        .await;
        let kill_after = rng.below(per_round - early);
        for i in 0..per_round - early {
            if i == kill_after {
                child.kill().unwrap();
                child.wait().unwrap();
            }
            send(sent, &mut rng);
            sent += 1;
            tokio::time::sleep(Duration::from_millis(rng.below(4) as u64)).await;
        }
        if let Ok(None) = child.try_wait() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
        let store = Store::open(&data, &StoreOptions::default()).unwrap();
        let pts = connector::committed_state(&store, account)
            .await
            .unwrap()
            .map_or(0, |s| s.pts);
        committed.push((pts, sim.pts()));
    }
    while sent < MESSAGES {
        send(sent, &mut rng);
        sent += 1;
    }

    // A last, clean run catches up; the API shows every message once.
    let log = data.join("last-serve.log");
    let serving = {
        let mut c = command(&["serve"], &data, &sim);
        c.stderr(std::fs::File::create(&log).unwrap());
        tokio::task::spawn_blocking(move || Serving::start(&mut c))
            .await
            .unwrap()
    };
    let client = binary::client(&serving.fingerprint, serving.addr);
    let base = format!("https://{}", support::tls::HOST);
    let get = |path: String| {
        let (client, token, base) = (client.clone(), token.clone(), base.clone());
        async move {
            let r = client
                .get(format!("{base}{path}"))
                .bearer_auth(&token)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status();
            let v: Value = r.json().await.map_err(|e| e.to_string())?;
            if status.is_success() {
                Ok(v)
            } else {
                Err(format!("{status} {v}"))
            }
        }
    };
    // Texts by chat, with each chat's counters, once all are there.
    let chats = support::poll::until_ok(Duration::from_secs(120), || async {
        let list = get("/api/v1/chats".into()).await?;
        let mut chats = Vec::new();
        let mut total = 0;
        for c in list["chats"].as_array().into_iter().flatten() {
            let id = c["id"].as_str().unwrap_or_default().to_string();
            let page = get(format!("/api/v1/chats/{id}/messages?limit=200")).await?;
            let texts: Vec<String> = page["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["text"].as_str().map(str::to_string))
                .collect();
            total += texts.len();
            chats.push((c.clone(), texts));
        }
        if total >= MESSAGES {
            return Ok(chats);
        }
        let visible: Vec<&String> = chats.iter().flat_map(|(_, t)| t).collect();
        let missing: Vec<usize> = (0..MESSAGES)
            .filter(|n| !visible.contains(&&text(*n)))
            .take(10)
            .collect();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        Err(format!(
            "{total} of {MESSAGES} messages visible; missing {missing:?}; simulator pts {}; \
             the box's log, newest first:\n{}",
            sim.pts(),
            tail.join("\n")
        ))
    })
    .await;
    let status = tokio::task::spawn_blocking(move || serving.stop()).await.unwrap();
    assert!(status.success(), "serve did not stop cleanly: {status:?}");

    let mut seen: HashMap<String, usize> = HashMap::new();
    for (chat, texts) in &chats {
        assert_eq!(
            chat["messages"].as_u64(),
            Some(texts.len() as u64),
            "the chat's counter equals its messages: {chat}"
        );
        for t in texts {
            *seen.entry(t.clone()).or_default() += 1;
        }
    }
    for n in 0..MESSAGES {
        assert_eq!(seen.get(&text(n)), Some(&1), "message {n} stored exactly once");
    }
    assert_eq!(seen.len(), MESSAGES, "nothing but the messages sent");

    let store = Store::open(&data, &StoreOptions::default()).unwrap();
    let state = connector::committed_state(&store, account)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.pts, sim.pts(), "the committed pts is the simulator's");
    let difference_calls = sim
        .calls()
        .iter()
        .filter(|c| c.starts_with("updates.get"))
        .count();
    eprintln!(
        "{MESSAGES} messages over {KILLS} kills, {difference_calls} difference calls; \
         committed / simulator pts at each kill: {committed:?}"
    );
}
