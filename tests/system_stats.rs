//! The admin system figures in `GET /api/v1/stats`: admins get `system` (storage use of the box,
//! attachment queues) with real numbers from the data directory and the attachment tables;
//! agents never see it. The counted figures (files, failed fetches) are reused for the cache's
//! period and recounted after it.

mod support;

use std::time::Duration;

use lanbox::attachments::State;
use lanbox::attachments::stats::StatsCache;
use lanbox::attachments::tables::{AttachmentRecord, Tables};
use support::server::*;

/// Records a fetch that was given up on and one still queued, as the fetcher would (copies of
/// the uploaded file's record, so this keeps up with new record fields).
async fn failed_and_queued(s: &TestServer, like: u64) {
    s.store
        .write(1, move |ctx| {
            let mut t = Tables::open(ctx.txn())?;
            let template = t.get(like)?.expect("the uploaded file's record");
            for (state, queued) in [(State::Failed("test".into()), false), (State::Pending, true)] {
                let id = t.next_id()?;
                t.put(&AttachmentRecord {
                    id,
                    state,
                    local: false,
                    size: None,
                    attempts: 8,
                    ..template.clone()
                })?;
                if queued {
                    t.fetch.insert(id, 0)?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn admins_get_system_figures_and_agents_do_not() {
    let (s, a, _) = workspace().await;
    let root = s.token("root").await;
    let alice = s.token("alice").await;
    let file = upload(
        &s,
        &root,
        a,
        "a.bin",
        "application/octet-stream",
        vec![7u8; 300_000],
    )
    .await;

    let (status, stats) = get(&s, &root, "/api/v1/stats").await;
    assert_eq!(status, 200);
    let sys = &stats["system"];
    let st = &sys["storage"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    let db_on_disk = std::fs::metadata(s.dir.path().join(lanbox::store::DB_FILE))
        .unwrap()
        .len();
    assert!(n(&st["database_bytes"]) > 0);
    assert_eq!(n(&st["database_bytes"]), db_on_disk);
    assert!(n(&st["disk_total_bytes"]) > 0);
    assert!(n(&st["disk_free_bytes"]) <= n(&st["disk_total_bytes"]));
    assert_eq!(n(&st["attachment_files"]), 1);
    // Encrypted: the plaintext plus per-chunk tags and a header.
    assert!(n(&st["attachment_bytes"]) > 300_000, "{st}");
    assert!(n(&st["attachment_bytes"]) < 310_000, "{st}");
    assert!(st["cache_limit_bytes"].is_null(), "no limit without S3");
    let q = &sys["attachments"];
    assert_eq!(q["s3_configured"], false);
    assert_eq!(n(&q["attachments"]), 1);
    for k in ["sync_backlog", "delete_backlog", "fetch_backlog", "failed"] {
        assert_eq!(n(&q[k]), 0, "{k}");
    }
    let now = lanbox::store::ctx::unix_now();
    assert!((now - 60..=now).contains(&sys["counted_at"].as_i64().unwrap()));

    // Agents see their own counts but nothing box-wide.
    let (status, stats) = get(&s, &alice, "/api/v1/stats").await;
    assert_eq!(status, 200);
    assert!(stats.get("system").is_none(), "{stats}");
    assert_eq!(stats["totals"]["chats"], 2);

    // Queue lengths are current; the counted figures wait for the cache period.
    failed_and_queued(&s, file).await;
    let (_, stats) = get(&s, &root, "/api/v1/stats").await;
    let q = &stats["system"]["attachments"];
    assert_eq!(n(&q["fetch_backlog"]), 1);
    assert_eq!(n(&q["attachments"]), 3);
    assert_eq!(n(&q["failed"]), 0, "reused within the period");

    // A fresh count sees the failed fetch.
    let fresh = StatsCache::new(Duration::ZERO)
        .system(&s.state.attachments)
        .await
        .unwrap();
    assert_eq!(fresh.attachments.failed, 1);
    assert_eq!(fresh.attachments.fetch_backlog, 1);
    assert_eq!(fresh.storage.attachment_files, 1);
}
