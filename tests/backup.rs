//! Backups and restore: a backup taken through the API while ingest goes on is a consistent
//! snapshot; restored into a fresh data directory it holds every message, chat, user, grant,
//! outbox item and attachment reference of the source; a wrong passphrase or a damaged,
//! truncated or zeroed file is refused with a clear error and writes nothing; the commands
//! work on a stopped box.

mod support;

use std::path::Path;

use lanbox::backup::BackupError;
use lanbox::backup::snapshot;
use lanbox::backup::tables::ALL;
use lanbox::model::ChatKind;
use lanbox::store::{ChatKey, Store};
use support::messages::{chat, text_message};
use support::server::*;

const PASSPHRASE: &str = "a long backup passphrase";

/// A table's name and its records as (key, value) bytes.
type Rows = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Every record of every table, raw, through the same copier a backup uses.
fn dump(store: &Store) -> Vec<Rows> {
    let r = store.reader().unwrap();
    ALL.iter()
        .map(|t| {
            let mut rows = Vec::new();
            t.dump(r.txn(), &mut |k, v| {
                rows.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
            (t.name().to_string(), rows)
        })
        .collect()
}

fn open_restored(dir: &Path) -> Store {
    support::messages::open(dir)
}

/// Nothing but `keep` in `dir`: no restored directory, no temporary one left behind.
fn only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, keep, "left behind in {}", dir.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_ingesting_restores_every_record() {
    let (s, a, b) = workspace().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;

    // No passphrase yet: refused with its own code; agents may not even look.
    let (status, body) = post(&s, &root, "/api/v1/backups", serde_json::json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("backup_passphrase_unset"))
    );
    assert_eq!(get(&s, &alice, "/api/v1/backups").await.0, 403);
    let (status, body) = request(
        &s,
        "PUT",
        &root,
        "/api/v1/backups/passphrase",
        Some(serde_json::json!({"passphrase": "short"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("weak_passphrase"))
    );
    let (status, _) = request(
        &s,
        "PUT",
        &root,
        "/api/v1/backups/passphrase",
        Some(serde_json::json!({"passphrase": PASSPHRASE})),
    )
    .await;
    assert_eq!(status, 204);

    // An attachment only on this box (copied into the backup) and a queued outbox item.
    let file_id = upload(
        &s,
        &root,
        a,
        "notes.txt",
        "text/plain",
        b"attachment body words".to_vec(),
    )
    .await;
    s.store
        .write(1, move |ctx| {
            lanbox::outbox::jobs::enqueue(
                ctx,
                &lanbox::outbox::jobs::NewItem {
                    account: a,
                    chat: ChatKey { scope: a, chat: 1001 },
                    chat_kind: ChatKind::Private,
                    user: 1,
                    token: None,
                    reply_to: Some(1),
                    text: zeroize::Zeroizing::new("queued reply words".into()),
                    idempotency_key: Some("k1".into()),
                    attachment: None,
                    entities: Vec::new(),
                },
            )
        })
        .await
        .unwrap();

    // Ingest keeps going while the backup is taken.
    let busy = chat(-100900, ChatKind::Supergroup, "Busy room");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let pipeline = s.state.pipeline.clone();
    let ingest = tokio::spawn(async move {
        let mut id = 1;
        while !*stop_rx.borrow_and_update() {
            let batch = lanbox::ingest::Batch {
                account: b,
                changes: (0..20)
                    .map(|i| lanbox::ingest::Change::New(text_message(b, &busy, id + i, "busy words")))
                    .collect(),
                position: None,
            };
            pipeline.submit(batch).await.unwrap();
            id += 20;
            tokio::task::yield_now().await;
        }
        id - 1
    });
    let (status, made) = post(&s, &root, "/api/v1/backups", serde_json::json!({})).await;
    stop_tx.send(true).unwrap();
    let ingested = ingest.await.unwrap();
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["verified"], true);
    assert_eq!(made["location"], "local");
    assert_eq!(made["attachment_files"], 1);
    let name = made["name"].as_str().unwrap().to_string();

    let (status, state) = get(&s, &root, "/api/v1/backups").await;
    assert_eq!(status, 200);
    assert_eq!(state["passphrase_set"], true);
    assert_eq!(state["backups"][0]["name"], name.as_str());
    let res = s
        .client()
        .get(s.url(&format!("/api/v1/backups/{name}")))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap().to_vec();
    assert_eq!(bytes.len() as u64, made["bytes"].as_u64().unwrap());
    assert_eq!(
        bytes,
        std::fs::read(s.dir.path().join("backups").join(&name)).unwrap()
    );
    for text in [
        "alpha hello",
        "bravo secret",
        "busy words",
        "queued reply",
        "attachment body",
    ] {
        assert!(
            !bytes.windows(text.len()).any(|w| w == text.as_bytes()),
            "{text} in the backup"
        );
    }

    // The concurrent backup is one consistent snapshot: the busy chat's messages are a prefix
    // of what was ingested, and the event log ends where the snapshot's sequence says.
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("first");
    let sum = snapshot::restore(&bytes[..], PASSPHRASE, &first).unwrap();
    assert_eq!(sum.attachment_files, 1);
    let restored = open_restored(&first);
    let r = restored.reader().unwrap();
    let busy_ids: Vec<i64> = r
        .all_message_keys()
        .unwrap()
        .into_iter()
        .filter(|k| k.chat == -100900)
        .map(|k| k.msg)
        .collect();
    assert!(busy_ids.len() as i64 <= ingested);
    assert_eq!(
        busy_ids,
        (1..=busy_ids.len() as i64).collect::<Vec<_>>(),
        "a torn snapshot"
    );
    assert_eq!(busy_ids.len() % 20, 0, "a batch split by the snapshot");
    let last = r.last_seq().unwrap();
    assert_eq!(r.events_after(last, 10).unwrap().len(), 0);
    assert_eq!(sum.manifest.last_seq, last);
    drop(r);
    drop(restored);

    // With ingest stopped, a second backup restores to exactly the source: every table, record
    // for record, and opened with the restored master key, every message, user, grant, outbox
    // item and attachment as the source shows them.
    let (status, made) = loop {
        let (status, made) = post(&s, &root, "/api/v1/backups", serde_json::json!({})).await;
        // Two backups in one second share a name: the second is refused as busy.
        if made["error"]["code"] != "backup_running" {
            break (status, made);
        }
        tokio::task::yield_now().await;
    };
    assert_eq!(status, 201, "{made}");
    let path = s.dir.path().join("backups").join(made["name"].as_str().unwrap());
    let second = work.path().join("second");
    snapshot::restore(std::fs::File::open(&path).unwrap(), PASSPHRASE, &second).unwrap();
    let restored = open_restored(&second);
    let (src, dst) = (dump(&s.store), dump(&restored));
    let changing = ["attachment_meta", "outbox_meta", "sessionhash_session"];
    let mut compared = 0;
    for ((name, a_rows), (_, b_rows)) in src.iter().zip(&dst) {
        if changing.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(a_rows, b_rows, "table {name} differs after restore");
        compared += a_rows.len();
    }
    assert!(compared > 100, "{compared} records compared");
    let (rs, rd) = (s.store.reader().unwrap(), restored.reader().unwrap());
    let keys = rs.all_message_keys().unwrap();
    assert_eq!(keys, rd.all_message_keys().unwrap());
    for k in keys {
        assert_eq!(rs.message(k).unwrap(), rd.message(k).unwrap());
    }
    for (k, _) in rs.chat_records().unwrap() {
        assert_eq!(
            rs.chat(k).unwrap().unwrap().meta,
            rd.chat(k).unwrap().unwrap().meta
        );
    }
    let users = lanbox::auth::users::list(&rs).unwrap();
    assert_eq!(users, lanbox::auth::users::list(&rd).unwrap());
    assert!(users.iter().any(|u| u.name == "alice" && u.grants == vec![a]));
    drop((rs, rd));
    let files = s.state.attachments.clone();
    assert_eq!(
        files.record(file_id).await.unwrap(),
        lanbox::attachments::Attachments::open_default_http(restored.clone(), Default::default())
            .await
            .unwrap()
            .record(file_id)
            .await
            .unwrap()
    );
    let att = format!("attachments/{file_id:016x}.lba");
    assert_eq!(
        std::fs::read(s.dir.path().join(&att)).unwrap(),
        std::fs::read(second.join(&att)).unwrap()
    );
    assert_eq!(
        std::fs::read(s.dir.path().join("master.key")).unwrap(),
        std::fs::read(second.join("master.key")).unwrap()
    );
}

#[tokio::test]
async fn a_wrong_passphrase_or_a_damaged_file_restores_nothing() {
    let (s, _, _) = workspace().await;
    lanbox::backup::key::set_passphrase(&s.store, PASSPHRASE.into())
        .await
        .unwrap();
    let good = s.state.backups.create().await.unwrap();
    let file = std::fs::read(s.dir.path().join("backups").join(&good.info.name)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("box");
    let restore = |bytes: &[u8], pass: &str| snapshot::restore(bytes, pass, &target);

    let e = restore(&file, "not the passphrase at all").unwrap_err();
    assert!(matches!(e, BackupError::WrongPassphrase), "{e}");
    assert!(e.to_string().contains("wrong passphrase"), "{e}");
    only(work.path(), &[]);

    let cuts = [file.len() / 2, file.len() - 1, file.len() - 20, 30];
    for cut in cuts {
        let e = restore(&file[..cut], PASSPHRASE).unwrap_err();
        assert!(matches!(e, BackupError::Truncated(_)), "cut at {cut}: {e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        only(work.path(), &[]);
    }
    for at in [200, file.len() / 2, file.len() - 5] {
        let mut bad = file.clone();
        bad[at] ^= 1;
        let e = restore(&bad, PASSPHRASE).unwrap_err();
        assert!(matches!(e, BackupError::Damaged(_)), "flip at {at}: {e}");
        only(work.path(), &[]);
    }
    let mut zeroed = file.clone();
    zeroed[4096..].fill(0);
    assert!(restore(&zeroed, PASSPHRASE).is_err());
    only(work.path(), &[]);
    let e = restore(&vec![0; 4096], PASSPHRASE).unwrap_err();
    assert!(matches!(e, BackupError::NotABackup), "{e}");

    // A data directory that already holds something is never written into.
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("lanbox.redb"), b"keep me").unwrap();
    let e = restore(&file, PASSPHRASE).unwrap_err();
    assert!(matches!(e, BackupError::TargetNotEmpty(_)), "{e}");
    assert_eq!(std::fs::read(target.join("lanbox.redb")).unwrap(), b"keep me");
    only(&target, &["lanbox.redb"]);
    std::fs::remove_dir_all(&target).unwrap();
    restore(&file, PASSPHRASE).unwrap();
    only(work.path(), &["box"]);
}

/// The commands on a stopped box: set the passphrase, back up to a file, verify it, restore it,
/// and a second restore into the same directory is refused.
#[test]
fn the_commands_back_up_verify_and_restore_a_stopped_box() {
    use support::binary::{command, describe, run};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = support::messages::open(&data);
        let a = support::messages::account(&store, "alpha", false);
        let anna = chat(1001, ChatKind::Private, "Anna");
        let index = std::sync::Arc::new(lanbox::search::SearchIndex::new());
        let pipeline = lanbox::ingest::Pipeline::new(store.clone(), index);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            pipeline
                .submit(lanbox::ingest::Batch {
                    account: a,
                    changes: (1..=50)
                        .map(|i| lanbox::ingest::Change::New(text_message(a, &anna, i, "stopped box words")))
                        .collect(),
                    position: None,
                })
                .await
                .unwrap();
        });
    }
    let out = dir.path().join("box.lbk");
    let no_pass = command(&["backup", "--out", out.to_str().unwrap()], &data)
        .output()
        .unwrap();
    assert!(!no_pass.status.success());
    assert!(
        describe(&no_pass).contains("passphrase"),
        "{}",
        describe(&no_pass)
    );
    run(command(&["backup", "set-passphrase"], &data).env("LANBOX_BACKUP_PASSPHRASE", PASSPHRASE));
    let said = run(&mut command(&["backup", "--out", out.to_str().unwrap()], &data));
    assert!(said.contains("written and verified"), "{said}");
    let mut verify = std::process::Command::new(support::binary::BIN);
    verify
        .args(["backup", "verify", "--from", out.to_str().unwrap()])
        .env("LANBOX_BACKUP_PASSPHRASE", PASSPHRASE);
    assert!(run(&mut verify).contains("intact"));
    let restored = dir.path().join("restored");
    let mut restore = std::process::Command::new(support::binary::BIN);
    restore
        .args([
            "restore",
            "--from",
            out.to_str().unwrap(),
            "--data-dir",
            restored.to_str().unwrap(),
        ])
        .env("LANBOX_BACKUP_PASSPHRASE", PASSPHRASE);
    assert!(run(&mut restore).contains("lanbox serve --data"));
    let again = restore.output().unwrap();
    assert!(!again.status.success());
    assert!(describe(&again).contains("not empty"), "{}", describe(&again));
    let store = support::messages::open(&restored);
    assert_eq!(store.reader().unwrap().all_message_keys().unwrap().len(), 50);
}
