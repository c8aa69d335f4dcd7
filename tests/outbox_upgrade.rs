//! Outbox records written before file names were sealed (format version 1: the file's name and
//! MIME type in the clear) are still read, sent with their file as it was named, and sealed at
//! the next start; one of an account since released loses the file's reference instead.

mod support;

use lanbox::model::ChatKind;
use lanbox::outbox::record::{AttachmentRef, ItemState, OutboxRecord, StoredFile, text_aad};
use lanbox::outbox::{Outbox, jobs, tables};
use lanbox::store::codec::Record;
use lanbox::store::seal::Sealed;
use serde::Serialize;
use support::messages::{account, open};

const CANARY: &str = "OldFileNameCanaryQ40";
const MIME: &str = "application/x-oldmimecanaryq41";

/// The layout release 1 wrote, field for field.
#[derive(Serialize)]
struct V1 {
    id: u64,
    account: u64,
    scope: u64,
    chat_id: i64,
    chat_kind: ChatKind,
    user: u64,
    reply_to: Option<i64>,
    attachment: Option<AttachmentRef>,
    text: Option<Sealed>,
    state: ItemState,
    attempts: u32,
    rate_limited: u32,
    created_at: i64,
    updated_at: i64,
    seq: u64,
}

fn file(n: u64) -> AttachmentRef {
    AttachmentRef {
        id: n.to_string(),
        file_name: format!("{CANARY}-{n}.pdf"),
        mime_type: MIME.into(),
        size: 1000 + n,
    }
}

/// The outbox item table as raw bytes: the typed table's bytes are these (same redb type
/// name), so a test can write what an older release wrote.
const RAW_ITEMS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("outbox_item_record");

fn v1_bytes(rec: &V1) -> Vec<u8> {
    let mut out = vec![1u8];
    out.extend(postcard::to_allocvec(rec).unwrap());
    out
}

/// The raw value of item `id`.
async fn raw(store: &lanbox::store::Store, id: u64) -> Vec<u8> {
    store
        .read(move |r| {
            let t = r.txn().open_table(RAW_ITEMS)?;
            Ok(t.get(id)?.map(|v| v.value().to_vec()).unwrap())
        })
        .await
        .unwrap()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

// Regression: outbox items kept the name and MIME type of the file they send in the clear.
// Records written that way must stay readable (and sendable), and be sealed at the next start.
#[tokio::test]
async fn old_records_are_read_and_their_files_sealed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a = account(&store, "alpha", false);
    let released = a + 41;
    // Item 1: queued, with a file; item 2: sent, with a file; item 3: text only; item 4:
    // queued with a file, of an account that no longer exists.
    store
        .write(1, move |ctx| {
            tables::create_all(ctx.txn())?;
            let sealer = ctx.sealer(a)?;
            let mut t = ctx.txn().open_table(RAW_ITEMS)?;
            for (id, owner, state, with_file) in [
                (1, a, ItemState::Queued, true),
                (
                    2,
                    a,
                    ItemState::Sent {
                        telegram_id: 7,
                        key: 7,
                    },
                    true,
                ),
                (3, a, ItemState::Queued, false),
                (4, released, ItemState::Queued, true),
            ] {
                let rec = V1 {
                    id,
                    account: owner,
                    scope: owner,
                    chat_id: 5005,
                    chat_kind: ChatKind::Private,
                    user: 1,
                    reply_to: None,
                    attachment: with_file.then(|| file(id)),
                    text: Some(sealer.seal(b"the caption", &text_aad(id))?),
                    state,
                    attempts: 0,
                    rate_limited: 0,
                    created_at: 1_700_000_000,
                    updated_at: 1_700_000_000,
                    seq: 0,
                };
                t.insert(id, v1_bytes(&rec).as_slice())?;
            }
            Ok(())
        })
        .await
        .unwrap();
    assert!(holds(&raw(&store, 1).await, CANARY), "the old shape, as written");

    // Read as they are, before the upgrade: the file as it was.
    let before = store
        .read(|r| jobs::read_item(r.txn(), 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before.attachment, Some(StoredFile::Clear(file(1))));

    // The start: every old file sealed.
    Outbox::ensure_tables(&store).await.unwrap();
    for id in [1, 2] {
        let bytes = raw(&store, id).await;
        assert_eq!(
            bytes[0],
            OutboxRecord::VERSION,
            "item {id} rewritten in the current format"
        );
        assert!(!holds(&bytes, CANARY) && !holds(&bytes, MIME), "item {id}");
        let (rec, opened) = store
            .read(move |r| {
                let rec = jobs::read_item(r.txn(), id)?.unwrap();
                let sealer = r.sealer(a)?;
                let opened = rec.attachment.as_ref().unwrap().open(&sealer, id)?;
                Ok((rec, opened))
            })
            .await
            .unwrap();
        assert!(matches!(rec.attachment, Some(StoredFile::Sealed { .. })));
        assert_eq!(opened, file(id), "the same file, name and type");
    }
    // Text only: left in the old format (nothing to seal), still read.
    assert_eq!(raw(&store, 3).await[0], 1);
    let three = store
        .read(|r| jobs::read_item(r.txn(), 3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((three.id, three.attachment), (3, None));
    // The released account's item: no key to seal under, so the reference is gone.
    let four = raw(&store, 4).await;
    assert!(!holds(&four, CANARY) && !holds(&four, MIME));
    let four = store
        .read(|r| jobs::read_item(r.txn(), 4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(four.attachment, None);

    // The sender gets the file and text as they were queued.
    let begun = store
        .write(1, |ctx| jobs::begin_send(ctx, 1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(begun.file, Some(file(1)));
    assert_eq!(begun.text.as_str(), "the caption");
    assert_eq!(begun.rec.state, ItemState::Sending);

    // Done once: later starts skip the walk.
    let flag = store
        .read(|r| {
            let t = r.txn().open_table(tables::META)?;
            Ok(t.get(tables::META_FILES_SEALED)?.map(|v| v.value()))
        })
        .await
        .unwrap();
    assert_eq!(flag, Some(1));
}
