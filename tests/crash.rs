//! Exactly once across crashes.
//!
//! Guards against: a crash between storing messages and recording the upstream position losing
//! or doubling messages, and counters or the event log drifting from the messages they count.
//!
//! The test re-runs this test binary as a child (`crash_child`), which ingests a deterministic
//! stream of updates in batches, recording after each batch the position it reached, exactly as
//! a connector does. The parent kills it with SIGKILL at 100 random moments, reopens the store
//! after each kill, and checks it against a model of the stream up to the committed position:
//! every message of a committed batch present once with its latest text, nothing beyond the
//! position, unread counters equal to the messages, the event log replaying to the same set.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use lanbox::ingest::{Batch, Change, NoIndex, Pipeline};
use lanbox::model::*;
use lanbox::store::{ChatKey, MsgKey};
use support::messages::*;

const CHILD_ENV: &str = "LANBOX_CRASH_CHILD_DIR";
const STREAM_LEN: u64 = 1_000_000;
const CHATS: u64 = 16;

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn chat_of(msg: u64) -> Chat {
    let c = mix(msg ^ 0xC4A7) % CHATS;
    let kind = match c % 4 {
        0 => ChatKind::Private,
        1 => ChatKind::Group,
        2 => ChatKind::Supergroup,
        _ => ChatKind::Channel,
    };
    let id = if kind == ChatKind::Private {
        1000 + c as i64
    } else {
        -(1_000_000 + c as i64)
    };
    chat(id, kind, &format!("chat {c}"))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    New(u64),
    Edit(u64),
    Delete(u64),
}

/// Update `i` of the stream. Message IDs are update indexes, so each is unique per chat.
fn op(i: u64) -> Op {
    let h = mix(i);
    let back = 1 + (h >> 8) % 40;
    match h % 100 {
        0..=74 => Op::New(i),
        75..=84 if i >= back => Op::New(i - back), // a replay: dedup must hold
        85..=94 if i >= back => Op::Edit(i - back),
        95..=99 if i >= back => Op::Delete(i - back),
        _ => Op::New(i),
    }
}

fn text_of(msg: u64, version: u64) -> String {
    format!("message {msg} version {version}")
}

fn change(account: u64, i: u64) -> Change {
    match op(i) {
        Op::New(m) => Change::New(text_message(account, &chat_of(m), m as i64, &text_of(m, 0))),
        Op::Edit(m) => {
            let mut msg = text_message(account, &chat_of(m), m as i64, &text_of(m, i));
            msg.edited_at = Some(2_000_000_000 + i as i64);
            Change::Edit(msg)
        }
        Op::Delete(m) => Change::Delete {
            account,
            chat: chat_of(m),
            message_ids: vec![m as i64],
        },
    }
}

fn key_of(account: u64, m: u64) -> MsgKey {
    let c = chat_of(m);
    let scope = if c.kind.ids_per_account() { account } else { 0 };
    ChatKey { scope, chat: c.id }.msg(m as i64)
}

/// The child: ingest from the committed position onwards until killed.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let store = open(std::path::Path::new(&dir));
    let account = match store.reader().unwrap().accounts().unwrap().first() {
        Some(a) => a.id,
        None => account(&store, "stream", false),
    };
    let mut pos = store.reader().unwrap().position(account).unwrap().unwrap_or(0);
    let p = Pipeline::new(store, std::sync::Arc::new(NoIndex));
    println!("ready {pos}");
    while pos < STREAM_LEN {
        let n = 1 + mix(pos ^ 0xBA7C) % 60;
        let changes = (pos..pos + n).map(|i| change(account, i)).collect();
        p.submit_blocking(Batch {
            account,
            changes,
            position: Some(pos + n),
        })
        .unwrap();
        pos += n;
    }
}

/// What the store must hold after the stream up to `pos`: key -> text.
fn expected(account: u64, pos: u64) -> BTreeMap<MsgKey, String> {
    let mut want = BTreeMap::new();
    for i in 0..pos {
        match op(i) {
            Op::New(m) => {
                want.entry(key_of(account, m)).or_insert_with(|| text_of(m, 0));
            }
            Op::Edit(m) => {
                want.insert(key_of(account, m), text_of(m, i));
            }
            Op::Delete(m) => {
                want.remove(&key_of(account, m));
            }
        }
    }
    want
}

fn verify(dir: &std::path::Path) -> u64 {
    let store = open(dir);
    let r = store.reader().unwrap();
    let Some(account) = r.accounts().unwrap().first().map(|a| a.id) else {
        return 0;
    };
    let pos = r.position(account).unwrap().unwrap_or(0);
    let want = expected(account, pos);
    let keys: BTreeSet<MsgKey> = r.all_message_keys().unwrap().into_iter().collect();
    let want_keys: BTreeSet<MsgKey> = want.keys().copied().collect();
    assert_eq!(
        keys, want_keys,
        "messages differ from the stream up to position {pos}"
    );
    for (k, text) in &want {
        assert_eq!(
            &body_text(&r.message(*k).unwrap().unwrap()),
            text,
            "content of {k:?} at {pos}"
        );
    }
    // Counters agree with the messages (all incoming, none read).
    let mut per_chat: BTreeMap<ChatKey, u32> = BTreeMap::new();
    for k in &keys {
        *per_chat.entry(k.chat_key()).or_default() += 1;
    }
    let mut total = 0u64;
    for (ck, rec) in r.chat_records().unwrap() {
        let n = per_chat.get(&ck).copied().unwrap_or(0);
        assert_eq!(
            (rec.messages, rec.unread),
            (n, n),
            "chat {ck:?} counters at {pos}"
        );
        total += u64::from(rec.unread);
    }
    assert_eq!(
        r.account_unread(account).unwrap(),
        total,
        "account unread at {pos}"
    );
    // The event log replays to the same set, with contiguous sequence numbers.
    let events = r.events_after(0, usize::MAX).unwrap();
    assert_eq!(events.len() as u64, r.last_seq().unwrap());
    let mut live = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        let k = ChatKey {
            scope: e.scope,
            chat: e.chat_id,
        }
        .msg(e.message_key.unwrap());
        match e.kind {
            EventKind::MessageCreated => assert!(live.insert(k), "created twice: {k:?}"),
            EventKind::MessageUpdated => assert!(live.contains(&k)),
            EventKind::MessageDeleted => assert!(live.remove(&k)),
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(live, keys, "event log disagrees with messages at {pos}");
    pos
}

#[test]
fn sigkill_at_100_random_points_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let seed = support::rng::seed("LANBOX_CRASH_SEED");
    let mut last_pos = 0;
    let mut advanced = 0;
    for round in 0..100u64 {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // Wait until the child has opened the store, then let it ingest for a random while.
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        while !line.contains("ready ") {
            line.clear();
            if out.read_line(&mut line).unwrap() == 0 {
                panic!("child exited before ready: {:?}", child.wait().unwrap());
            }
        }
        std::thread::sleep(Duration::from_micros(2_000 + mix(seed ^ round) % 60_000));
        child.kill().unwrap();
        child.wait().unwrap();
        let pos = verify(dir.path());
        assert!(pos >= last_pos, "position went back from {last_pos} to {pos}");
        if pos > last_pos {
            advanced += 1;
        }
        last_pos = pos;
    }
    eprintln!("100 kills; final position {last_pos}; the position advanced in {advanced} rounds");
    assert!(advanced > 50, "the child should make progress in most rounds");
}
