//! Damaged files: `lanbox serve` refuses them, naming the file and the next step, and writes
//! nothing; `lanbox check` counts what is damaged without writing; while running, a damaged
//! record is skipped (the rest of its chat stays readable) and counted in `/api/v1/health`.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lanbox::auth::Role;
use lanbox::ingest::{Batch, Change, NoIndex, Pipeline};
use lanbox::model::ChatKind;
use lanbox::service::ServiceOptions;
use lanbox::store::{ChatKey, MsgKey};
use redb::ReadableTable;
use serde_json::Value;
use support::binary;
use support::messages::{account, chat, open, text_message};
use support::server::{TestServer, get};

const MESSAGES: i64 = 200;

/// A stopped box: `lanbox init`, one account, 200 messages in five chats.
fn source(root: &Path) -> PathBuf {
    let data = root.join("source");
    binary::run(&mut binary::command(&["init"], &data));
    let store = open(&data);
    let a = account(&store, "alpha", false);
    let p = Pipeline::new(store.clone(), Arc::new(NoIndex));
    let changes = (1..=MESSAGES)
        .map(|i| {
            let c = chat(1000 + i % 5, ChatKind::Private, "Customer");
            Change::New(text_message(a, &c, i, &format!("hello number {i}")))
        })
        .collect();
    p.submit_blocking(Batch {
        account: a,
        changes,
        position: Some(MESSAGES as u64),
    })
    .unwrap();
    drop(p);
    drop(store);
    data
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Every file under `dir` with its bytes: "nothing written" means this is unchanged.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                todo.push(e.path());
            } else {
                out.insert(e.path(), std::fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// Runs `lanbox ARGS --data DATA` to its end (killed after a minute: a `serve` that starts
/// instead of refusing).
fn run(args: &[&str], data: &Path) -> Output {
    let child = binary::command(args, data)
        .env("LANBOX_SERVER_MDNS", "false")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            // SAFETY: kill(2) on the child this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("`lanbox {args:?}` did not end: it started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

fn write_at(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

type Damage = fn(&Path);

/// Regression: a 0-byte `lanbox.redb` beside an existing master key started as a brand-new
/// box with a new setup code; a damaged database started without a warning (then answered
/// 500 for its chats, or refused later with "All roots are corrupted"); a damaged key or
/// configuration gave no hint of what to do. Each must refuse, name the file, say what to do
/// next, and leave every file as it was.
#[test]
fn serve_refuses_damaged_files_naming_them_and_writes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let src = source(root.path());
    let cases: &[(&str, Damage, &[&str])] = &[
        (
            "truncated database",
            |d| write_at(&d.join("lanbox.redb"), |b| b.truncate(b.len() / 2)),
            &["lanbox.redb"],
        ),
        (
            "zeroed database",
            |d| write_at(&d.join("lanbox.redb"), |b| b.fill(0)),
            &["lanbox.redb"],
        ),
        (
            "flipped bytes in pages",
            |d| {
                write_at(&d.join("lanbox.redb"), |b| {
                    for at in (4096 + 2048..b.len()).step_by(4096) {
                        b[at] ^= 0x5a;
                    }
                })
            },
            &["lanbox.redb"],
        ),
        (
            "empty database beside the key",
            |d| write_at(&d.join("lanbox.redb"), |b| b.clear()),
            &["lanbox.redb", "master.key"],
        ),
        (
            "missing database beside the key",
            |d| std::fs::remove_file(d.join("lanbox.redb")).unwrap(),
            &["lanbox.redb", "master.key"],
        ),
        (
            "truncated master key",
            |d| write_at(&d.join("master.key"), |b| b.truncate(31)),
            &["master.key"],
        ),
        (
            "flipped master key",
            |d| write_at(&d.join("master.key"), |b| b[7] ^= 0x01),
            &["master.key"],
        ),
        (
            "zeroed configuration",
            |d| write_at(&d.join("lanbox.toml"), |b| b.fill(0)),
            &["lanbox.toml"],
        ),
        (
            "empty configuration",
            |d| write_at(&d.join("lanbox.toml"), |b| b.clear()),
            &["lanbox.toml"],
        ),
        (
            "garbage configuration",
            |d| write_at(&d.join("lanbox.toml"), |b| b.iter_mut().for_each(|x| *x = 0xff)),
            &["lanbox.toml"],
        ),
    ];
    for (i, (what, damage, named)) in cases.iter().enumerate() {
        let data = root.path().join(format!("case{i}"));
        copy(&src, &data);
        damage(&data);
        let before = files(&data);
        let out = run(&["serve"], &data);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", binary::describe(&out));
        for f in *named {
            assert!(
                stderr.contains(&data.join(f).display().to_string()),
                "{what}: the message must name {f}: {stderr}"
            );
        }
        assert!(
            stderr.contains("lanbox restore") || stderr.contains("lanbox check"),
            "{what}: the message must say what to do next: {stderr}"
        );
        assert!(
            !stdout.contains("setup code") && !stdout.contains("listening"),
            "{what}: must not start: {stdout}"
        );
        assert!(
            !stderr.contains("hello number"),
            "{what}: no message text in errors"
        );
        assert!(files(&data) == before, "{what}: files were changed or created");
    }
}

/// `lanbox check` reads everything without writing: an intact box reports every record good
/// (exit 0); damaged pages, a damaged sealed record, a damaged key each exit 1 with counts.
#[test]
fn check_counts_good_and_damaged_records_without_writing() {
    let root = tempfile::tempdir().unwrap();
    let src = source(root.path());

    let intact = root.path().join("intact");
    copy(&src, &intact);
    let before = files(&intact);
    let out = run(&["check"], &intact);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", binary::describe(&out));
    assert!(
        stdout.contains(&format!("messages (contents): {MESSAGES} good, 0 damaged")),
        "{stdout}"
    );
    assert!(stdout.contains("chats (titles): 5 good, 0 damaged"), "{stdout}");
    assert!(stdout.contains("table chat_message: 200 records"), "{stdout}");
    assert!(stdout.contains("no damage found"), "{stdout}");
    assert!(files(&intact) == before, "check wrote to an intact box");

    // One sealed record damaged where the page checksums still hold (as a bad write or a bit
    // flipped in memory before the write would leave it).
    let sealed = root.path().join("sealed");
    copy(&src, &sealed);
    {
        let store = open(&sealed);
        let a = store.reader().unwrap().accounts().unwrap()[0].id;
        let key = MsgKey {
            scope: a,
            chat: 1001,
            msg: 6,
        };
        store
            .write_blocking(1, move |ctx| {
                let mut m = ctx.get_message(key)?.expect("message 6");
                m.content.ciphertext[3] ^= 0x10;
                ctx.put_message(key, &m)
            })
            .unwrap();
    }
    let before = files(&sealed);
    let out = run(&["check"], &sealed);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", binary::describe(&out));
    assert!(
        stdout.contains(&format!("messages (contents): {} good, 1 damaged", MESSAGES - 1)),
        "{stdout}"
    );
    assert!(files(&sealed) == before, "check wrote to the damaged box");

    let pages = root.path().join("pages");
    copy(&src, &pages);
    write_at(&pages.join("lanbox.redb"), |b| {
        for at in (4096 + 2048..b.len()).step_by(4096) {
            b[at] ^= 0x5a;
        }
    });
    let before = files(&pages);
    let out = run(&["check"], &pages);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{}", binary::describe(&out));
    assert!(
        all.contains("lanbox.redb") && all.contains("DAMAGED") || all.contains("not a readable"),
        "{all}"
    );
    assert!(files(&pages) == before, "check wrote to the damaged box");

    let key = root.path().join("key");
    copy(&src, &key);
    write_at(&key.join("master.key"), |b| b[0] ^= 1);
    let out = run(&["check"], &key);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", binary::describe(&out));
    assert!(
        stdout.contains("accounts (data keys, tokens): 0 good, 1 damaged"),
        "{stdout}"
    );
}

fn ids(v: &Value) -> Vec<i64> {
    v["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

/// Regression: a chat with a record that failed authentication answered 500 for every page,
/// and `/api/v1/health` said ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_skipped_and_counted_in_health() {
    // A box whose page checksums hold but some records do not: written by redb itself, as a
    // bad write (or a bit flipped in memory before it) would leave them.
    let dir = tempfile::tempdir().unwrap();
    let (a, anna, shared) = {
        let store = open(dir.path());
        let a = account(&store, "alpha", false);
        let p = Pipeline::new(store.clone(), Arc::new(NoIndex));
        let anna = chat(1001, ChatKind::Private, "Anna");
        let room = chat(-100700, ChatKind::Supergroup, "Shared room");
        let mut changes: Vec<Change> = (1..=4)
            .map(|i| Change::New(text_message(a, &anna, i, &format!("alpha hello {i}"))))
            .collect();
        changes.extend((20..=21).map(|i| Change::New(text_message(a, &room, i, "alpha room words"))));
        p.submit_blocking(Batch {
            account: a,
            changes,
            position: None,
        })
        .unwrap();
        (
            a,
            ChatKey { scope: a, chat: 1001 },
            ChatKey {
                scope: 0,
                chat: -100700,
            },
        )
    };
    {
        let db = redb::Database::create(dir.path().join("lanbox.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let raw: redb::TableDefinition<MsgKey, &[u8]> = redb::TableDefinition::new("chat_message");
            let mut t = txn.open_table(raw).unwrap();
            // Message 2's sealed content fails authentication; message 3 no longer decodes.
            let mut bytes = t.get(anna.msg(2)).unwrap().unwrap().value().to_vec();
            let n = bytes.len();
            bytes[n - 5] ^= 1;
            t.insert(anna.msg(2), bytes.as_slice()).unwrap();
            t.insert(anna.msg(3), [1u8, 0xff, 0xff].as_slice()).unwrap();
            // Reactions on message 1 that do not decode.
            let raw: redb::TableDefinition<MsgKey, &[u8]> = redb::TableDefinition::new("message_reactions");
            txn.open_table(raw)
                .unwrap()
                .insert(anna.msg(1), [1u8, 0xff].as_slice())
                .unwrap();
            // The shared room's title fails authentication.
            let raw: redb::TableDefinition<ChatKey, &[u8]> = redb::TableDefinition::new("chat_record");
            let mut t = txn.open_table(raw).unwrap();
            let mut bytes = t.get(shared).unwrap().unwrap().value().to_vec();
            let n = bytes.len();
            bytes[n - 40] ^= 1;
            t.insert(shared, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let s = TestServer::start_in(dir, ServiceOptions::default()).await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let (st, v) = get(&s, "", "/api/v1/health").await;
    assert_eq!((st, v["status"].as_str()), (200, Some("ok")), "{v}");

    let (st, v) = get(&s, &root, &format!("/api/v1/chats/{a}:1001/messages")).await;
    assert_eq!(st, 200, "the chat stays readable: {v}");
    assert_eq!(ids(&v), [1, 4], "the damaged messages are left out: {v}");
    let (st, v) = get(&s, &root, "/api/v1/chats").await;
    assert_eq!(st, 200, "the chat list stays readable: {v}");
    let (st, v) = get(&s, &root, "/api/v1/chats/0:-100700/messages").await;
    assert_eq!(st, 200, "a chat whose title is damaged stays readable: {v}");
    assert_eq!(ids(&v).len(), 2, "{v}");

    let (st, v) = get(&s, "", "/api/v1/health").await;
    assert_eq!((st, v["status"].as_str()), (503, Some("degraded")), "{v}");
    let reason = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["code"] == "store_damaged")
        .unwrap_or_else(|| panic!("{v}"))
        .clone();
    assert!(reason["count"].as_u64().unwrap() >= 4, "{v}");
    assert!(reason["last_at"].as_i64().unwrap() > 1_700_000_000, "{v}");
    assert!(!v.to_string().contains("alpha"), "no message text in health: {v}");
    let doc: Value = serde_json::from_str(lanbox::api::OPENAPI).unwrap();
    let fields = doc["components"]["schemas"]["HealthReason"]["properties"]
        .as_object()
        .unwrap();
    for k in reason.as_object().unwrap().keys() {
        assert!(fields.contains_key(k), "undocumented field {k}");
    }
}
