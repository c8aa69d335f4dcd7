//! Scheduled backups to a real S3 server (SeaweedFS): the schedule runs by itself, each backup
//! lands in the bucket under `backups/` (nothing stays on the box), only `keep` generations
//! remain, and one downloaded through the API restores the box's messages (issue 18, point 1).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use lanbox::attachments::S3Config;
use lanbox::attachments::s3::S3;
use lanbox::auth::Role;
use lanbox::backup::BackupOptions;
use lanbox::model::ChatKind;
use lanbox::service::ServiceOptions;
use lanbox::store::ChatKey;
use support::messages::{body_text, chat, text_message};
use support::s3;
use support::server::*;

const PASSPHRASE: &str = "a long backup passphrase";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_backups_go_to_the_bucket_and_keep_n_generations() {
    let weed = s3::Weed::start();
    let cfg = S3Config {
        endpoint: weed.endpoint(),
        bucket: "lanbox-backups".into(),
        access_key: s3::ACCESS_KEY.into(),
        secret_key: s3::SECRET_KEY.into(),
        ..S3Config::default()
    };
    let s = TestServer::start_with(ServiceOptions {
        backup: BackupOptions {
            s3: Some(cfg.clone()),
            keep: 2,
            // Backups are named by the second: one a second keeps the names apart.
            every: Some(Duration::from_millis(1100)),
            ..BackupOptions::default()
        },
        ..ServiceOptions::default()
    })
    .await;
    let a = s.account("alpha").await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let anna = chat(1001, ChatKind::Private, "Anna");
    s.ingest(
        a,
        (1..=50)
            .map(|i| text_message(a, &anna, i, &format!("scheduled words {i}")))
            .collect(),
    )
    .await;

    // The schedule runs once a passphrase is set.
    set_backup_passphrase(&s, &root, PASSPHRASE).await;

    // Watch the bucket until three different scheduled backups have been seen.
    let bucket = S3::new(cfg).unwrap();
    let mut seen = BTreeSet::new();
    let mut rx = s.store.subscribe();
    let mut next_id = 100;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while seen.len() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {seen:?} scheduled backups seen in two minutes"
        );
        let held: Vec<String> = bucket
            .list("backups/")
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // A new generation is uploaded and verified before the oldest goes: keep + 1 at most.
        assert!(
            held.len() <= 3,
            "more than keep = 2 generations (+ one being made): {held:?}"
        );
        seen.extend(held);
        // Something to back up next time, and a point to wake at (no sleeping on a clock).
        next_id += 1;
        s.ingest(a, vec![text_message(a, &anna, next_id, "more words")])
            .await;
        let _ = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    }
    // The first is pruned once later ones are made.
    let first = seen.iter().next().unwrap().clone();
    while bucket
        .list("backups/")
        .await
        .unwrap()
        .iter()
        .any(|(k, _)| *k == first)
    {
        assert!(tokio::time::Instant::now() < deadline, "{first} was never pruned");
        let _ = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await;
    }
    let (st, listed) = get(&s, &root, "/api/v1/backups").await;
    assert_eq!(st, 200);
    let listed = listed["backups"].as_array().unwrap().clone();
    assert!(!listed.is_empty() && listed.len() <= 3, "{listed:?}");
    assert!(listed.iter().all(|b| b["location"] == "s3"), "{listed:?}");
    // Nothing stayed on the box.
    let local = s.dir.path().join("backups");
    let left = std::fs::read_dir(&local).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "backup files left in {}", local.display());

    // The newest, downloaded through the API from the bucket, restores the messages.
    let name = listed[0]["name"].as_str().unwrap();
    let res = s
        .client()
        .get(s.url(&format!("/api/v1/backups/{name}")))
        .bearer_auth(&root)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bytes = res.bytes().await.unwrap().to_vec();
    assert!(bytes.starts_with(b"LANBOXBK"));
    assert!(
        !bytes.windows(15).any(|w| w == b"scheduled words"),
        "message text in the backup"
    );
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("restored");
    lanbox::backup::snapshot::restore(&bytes[..], PASSPHRASE, &target).unwrap();
    let restored = support::messages::open(&target);
    let r = restored.reader().unwrap();
    let key = ChatKey { scope: a, chat: 1001 };
    assert!(r.chat(key).unwrap().unwrap().record.messages >= 50);
    let m = r.message(key.msg(7)).unwrap().unwrap();
    assert_eq!(body_text(&m), "scheduled words 7");
}
