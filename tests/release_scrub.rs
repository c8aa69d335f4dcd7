//! Nothing of a released account can be read back from the raw database file, nor from a backup
//! taken after the release (issue 18, point 5).
//!
//! Regression: redb does not zero the pages it frees, so after a release old copies of the
//! account's sealed messages and of its wrapped data key stayed in free pages of `lanbox.redb`
//! (where the master key could still unwrap the key), and its outbox items stayed as live rows.

mod support;

use std::collections::HashSet;
use std::path::Path;

use lanbox::model::ChatKind;
use lanbox::store::{ChatKey, DB_FILE, Store};
use support::messages::{chat, text_message};
use support::server::*;

const PASSPHRASE: &str = "a long backup passphrase";
const WINDOW: usize = 16;

/// 16-byte pieces of sealed bytes (random-looking: a chance match in a few MB is impossible).
fn needles(sealed: &[Vec<u8>]) -> HashSet<[u8; WINDOW]> {
    sealed
        .iter()
        .flat_map(|c| c.chunks_exact(WINDOW).map(|w| w.try_into().unwrap()))
        .collect()
}

/// How many of `needles` occur anywhere in the file at `path`.
fn found_in(path: &Path, needles: &HashSet<[u8; WINDOW]>) -> usize {
    let bytes = std::fs::read(path).unwrap();
    let mut seen = HashSet::new();
    for w in bytes.windows(WINDOW) {
        let w: [u8; WINDOW] = w.try_into().unwrap();
        if needles.contains(&w) {
            seen.insert(w);
        }
    }
    seen.len()
}

/// The sealed bytes `account` has in `store`: its wrapped data key, its messages, its outbox.
fn sealed_of(store: &Store, account: u64, chat: ChatKey, messages: &[i64], item: u64) -> Vec<Vec<u8>> {
    let r = store.reader().unwrap();
    let mut out = vec![r.account(account).unwrap().unwrap().wrapped_key.ciphertext];
    for &m in messages {
        out.push(r.stored_message(chat.msg(m)).unwrap().unwrap().content.ciphertext);
    }
    let rec = lanbox::outbox::jobs::read_item(r.txn(), item).unwrap().unwrap();
    out.push(rec.text.unwrap().ciphertext);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_account_leaves_nothing_in_the_file_or_a_later_backup() {
    let (s, a, b) = workspace().await;
    let root = s.token("root").await;
    set_backup_passphrase(&s, &root, PASSPHRASE).await;

    // A private chat of 3,000 messages (several release chunks) and a queued reply.
    let dm = chat(3001, ChatKind::Private, "Dora");
    for from in (1..=3000).step_by(500) {
        s.ingest(
            a,
            (from..from + 500)
                .map(|i| text_message(a, &dm, i, &format!("released words {i} {}", "x".repeat(200))))
                .collect(),
        )
        .await;
    }
    let item = s
        .store
        .write(1, move |ctx| {
            lanbox::outbox::jobs::enqueue(
                ctx,
                &lanbox::outbox::jobs::NewItem {
                    account: a,
                    chat: ChatKey { scope: a, chat: 3001 },
                    chat_kind: ChatKind::Private,
                    user: 1,
                    token: None,
                    reply_to: Some(1),
                    text: zeroize::Zeroizing::new("a queued reply to go".into()),
                    idempotency_key: Some("k1".into()),
                    attachment: None,
                    entities: Vec::new(),
                },
            )
        })
        .await
        .unwrap();
    let item = match item {
        lanbox::outbox::jobs::Enqueued::New(rec) => rec.id,
        _ => panic!("the item was not queued"),
    };
    let dm_key = ChatKey { scope: a, chat: 3001 };
    let sample: Vec<i64> = (1..=3000).step_by(97).collect();
    let needles = needles(&sealed_of(&s.store, a, dm_key, &sample, item));
    let file = s.dir.path().join(DB_FILE);
    assert!(
        found_in(&file, &needles) > 0,
        "the scan finds the sealed bytes before the release"
    );

    // The release's steps as the service runs them (`service::lifecycle::release_account`),
    // with a look at the raw file before the last one.
    s.state.pollers.stop(a);
    s.state.outbox.stop(a);
    s.store.mark_scrub_pending().await.unwrap();
    lanbox::ingest::release::begin(&s.store, a).await.unwrap();
    assert_eq!(
        lanbox::outbox::release::release_account(&s.store, a)
            .await
            .unwrap(),
        1
    );
    s.state.pipeline.release_account(a).await.unwrap();
    assert!(s.store.reader().unwrap().account(a).unwrap().is_none());
    assert!(
        lanbox::outbox::jobs::read_item(s.store.reader().unwrap().txn(), item)
            .unwrap()
            .is_none(),
        "the outbox item is gone"
    );
    let left = found_in(&file, &needles);
    assert!(
        left > 0,
        "without the scrub, old copies stay in free pages (the bug)"
    );

    let scrub = s.store.scrub_free_pages().await.unwrap();
    assert!(scrub.bytes_written > 0);
    assert!(!s.store.scrub_pending().unwrap(), "the scrub owed is done");
    eprintln!(
        "{left} of {} pieces left before the scrub; {scrub:?}",
        needles.len()
    );
    assert_eq!(
        found_in(&file, &needles),
        0,
        "after the scrub, none of the {left} pieces found before is left in {}",
        file.display()
    );
    // What another account has is untouched.
    let r = s.store.reader().unwrap();
    let boris = ChatKey { scope: b, chat: 2001 };
    assert_eq!(r.chat(boris).unwrap().unwrap().record.messages, 3);
    drop(r);

    // A backup taken after the release holds none of it either (restored, then scanned).
    let (status, made) = post(&s, &root, "/api/v1/backups", serde_json::json!({})).await;
    assert_eq!(status, 201, "{made}");
    let path = s.dir.path().join("backups").join(made["name"].as_str().unwrap());
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("restored");
    lanbox::backup::snapshot::restore(std::fs::File::open(&path).unwrap(), PASSPHRASE, &target).unwrap();
    assert_eq!(found_in(&target.join(DB_FILE), &needles), 0);
    let restored = support::messages::open(&target);
    let r = restored.reader().unwrap();
    assert!(r.account(a).unwrap().is_none());
    assert!(r.chat(dm_key).unwrap().is_none());
    assert_eq!(r.chat(boris).unwrap().unwrap().record.messages, 3);
}
