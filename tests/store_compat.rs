//! Typed table values against stores written before them.
//!
//! Regression guard: the tables were declared `TableDefinition<K, &[u8]>` and every call site
//! encoded and decoded the record bytes by hand. They are now typed (`Rec<T>`), and redb checks
//! a table's stored value type name when it opens it: had `Rec` a type name of its own, every
//! existing `lanbox.redb` would fail to open with `TableTypeMismatch`, and had its bytes changed,
//! every record in it would fail to decode.

use lanbox::attachments::tables::{ATTACHMENT_KEY, ATTACHMENT_RECORD, AttachmentRecord, Role, State};
use lanbox::auth::records::{Role as UserRole, SessionRecord, TokenRecord, UserRecord};
use lanbox::auth::tables::{SESSIONHASH_SESSION, TOKENHASH_TOKEN, USER_RECORD};
use lanbox::model::{BodyKind, ChatKind, Direction, EventKind, EventRecord, Status};
use lanbox::store::codec::{self, Bare, Record, Stored};
use lanbox::store::records::{AccountRecord, ChatRecord, StoredMessage};
use lanbox::store::seal::{Cipher, Sealed};
use lanbox::store::tables::{CHAT_MESSAGE, MESSAGE_REACTIONS};
use lanbox::store::{ChatKey, MsgKey, Store, StoreError, StoreOptions};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

// The tables as the release before typed values declared them.
const RAW_ACCOUNT_RECORD: TableDefinition<u64, &[u8]> = TableDefinition::new("account_record");
const RAW_CHAT_RECORD: TableDefinition<ChatKey, &[u8]> = TableDefinition::new("chat_record");
const RAW_CHAT_MESSAGE: TableDefinition<MsgKey, &[u8]> = TableDefinition::new("chat_message");
const RAW_MESSAGE_REACTIONS: TableDefinition<MsgKey, &[u8]> = TableDefinition::new("message_reactions");
const RAW_SEQ_EVENT: TableDefinition<u64, &[u8]> = TableDefinition::new("seq_event");
const RAW_USER_RECORD: TableDefinition<u64, &[u8]> = TableDefinition::new("user_record");
const RAW_TOKENHASH_TOKEN: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("tokenhash_token");
const RAW_SESSIONHASH_SESSION: TableDefinition<&[u8; 32], &[u8]> =
    TableDefinition::new("sessionhash_session");
const RAW_OUTBOX_ITEM_RECORD: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_item_record");
const RAW_OUTBOX_SEQ_STATUS: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox_seq_status");
const RAW_ATTACHMENT_RECORD: TableDefinition<u64, &[u8]> = TableDefinition::new("attachment_record");
const RAW_ATTACHMENT_KEY: TableDefinition<&str, &[u8]> = TableDefinition::new("attachment_key");

fn sealed(fill: u8) -> Sealed {
    Sealed {
        cipher: Cipher::ChaCha20Poly1305,
        nonce: [fill; 12],
        ciphertext: vec![fill; 20],
    }
}

fn enc<T: Record>(value: &T) -> Vec<u8> {
    codec::encode(value).unwrap()
}

fn opts() -> StoreOptions {
    StoreOptions {
        credentials_dir: None,
        // The samples' wrapped keys are made up: the start-up check would refuse them.
        check_on_open: false,
        ..StoreOptions::default()
    }
}

struct Sample {
    account: AccountRecord,
    chat_key: ChatKey,
    chat: ChatRecord,
    msg_key: MsgKey,
    message: StoredMessage,
    reactions: Sealed,
    event: EventRecord,
    user: UserRecord,
    token: TokenRecord,
    session: SessionRecord,
    attachment: AttachmentRecord,
    signing_key: Sealed,
}

fn sample() -> Sample {
    let chat_key = ChatKey { scope: 1, chat: 5 };
    Sample {
        account: AccountRecord {
            id: 1,
            channel: "telegram".into(),
            name: "support".into(),
            rented: false,
            daily_limit: Some(100),
            wrapped_key: sealed(1),
            secret: Some(sealed(2)),
            options: "{}".into(),
            created_at: 1_700_000_000,
        },
        chat_key,
        chat: ChatRecord {
            kind: ChatKind::Private,
            is_forum: false,
            owner: 1,
            accounts: vec![1],
            meta: sealed(3),
            read_up_to: 0,
            unread: 1,
            messages: 1,
            last_key: Some(10),
            last_date: 1_700_000_100,
            migrated_to: None,
        },
        msg_key: chat_key.msg(10),
        message: StoredMessage {
            owner: 1,
            seen_by: vec![1],
            chat_kind: ChatKind::Private,
            message_id: 10,
            topic: None,
            direction: Direction::Incoming,
            date: 1_700_000_100,
            edited_at: None,
            status: Status::Delivered,
            body_kind: BodyKind::Text,
            sender_id: 42,
            content: sealed(4),
        },
        reactions: sealed(5),
        event: EventRecord {
            seq: 1,
            kind: EventKind::MessageCreated,
            accounts: vec![1],
            scope: 1,
            chat_id: 5,
            message_key: Some(10),
            from_chat: None,
            unread: Some(1),
            at: 1_700_000_100,
        },
        user: UserRecord {
            id: 1,
            name: "ann".into(),
            role: UserRole::Admin,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            grants: vec![],
            disabled: false,
            created_at: 1_700_000_000,
        },
        token: TokenRecord {
            user: 1,
            label: "crm sync".into(),
            prefix: "lbx_AbCd".into(),
            created_at: 1_700_000_000,
            expires_at: None,
        },
        session: SessionRecord {
            user: 1,
            created_at: 2,
            expires_at: 3,
        },
        attachment: AttachmentRecord {
            id: 7,
            owner: 1,
            accounts: vec![1],
            msg: Some((1, 5, 10)),
            role: Role::Main,
            kind: None,
            state: State::Ready,
            size: Some(3),
            announced: None,
            synced: false,
            local: true,
            attempts: 0,
            created_at: 1_700_000_100,
            meta: None,
        },
        signing_key: sealed(6),
    }
}

/// Writes `s` the way the release before typed values did: `&[u8]` tables, bytes encoded by
/// hand at the call site (the URL signing key as bare postcard).
fn write_as_previous_release(path: &std::path::Path, s: &Sample) {
    let db = Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        txn.open_table(RAW_ACCOUNT_RECORD)
            .unwrap()
            .insert(1, enc(&s.account).as_slice())
            .unwrap();
        txn.open_table(RAW_CHAT_RECORD)
            .unwrap()
            .insert(s.chat_key, enc(&s.chat).as_slice())
            .unwrap();
        txn.open_table(RAW_CHAT_MESSAGE)
            .unwrap()
            .insert(s.msg_key, enc(&s.message).as_slice())
            .unwrap();
        txn.open_table(RAW_MESSAGE_REACTIONS)
            .unwrap()
            .insert(s.msg_key, enc(&s.reactions).as_slice())
            .unwrap();
        txn.open_table(RAW_SEQ_EVENT)
            .unwrap()
            .insert(1, enc(&s.event).as_slice())
            .unwrap();
        txn.open_table(RAW_USER_RECORD)
            .unwrap()
            .insert(1, enc(&s.user).as_slice())
            .unwrap();
        txn.open_table(RAW_TOKENHASH_TOKEN)
            .unwrap()
            .insert(&[7; 32], enc(&s.token).as_slice())
            .unwrap();
        txn.open_table(RAW_SESSIONHASH_SESSION)
            .unwrap()
            .insert(&[8; 32], enc(&s.session).as_slice())
            .unwrap();
        txn.open_table(RAW_OUTBOX_ITEM_RECORD).unwrap();
        txn.open_table(RAW_OUTBOX_SEQ_STATUS).unwrap();
        txn.open_table(RAW_ATTACHMENT_RECORD)
            .unwrap()
            .insert(7, enc(&s.attachment).as_slice())
            .unwrap();
        txn.open_table(RAW_ATTACHMENT_KEY)
            .unwrap()
            .insert(
                "url_signing",
                postcard::to_allocvec(&s.signing_key).unwrap().as_slice(),
            )
            .unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn typed_tables_open_and_read_a_store_written_with_byte_tables() {
    let dir = tempfile::tempdir().unwrap();
    let s = sample();
    // The codec's layout itself is unchanged: version byte, then postcard (varints, zigzag).
    assert_eq!(codec::encode(&s.session).unwrap(), [1, 1, 4, 6]);
    write_as_previous_release(&dir.path().join(lanbox::store::DB_FILE), &s);

    // Opening creates the store's tables in a write transaction: a type name mismatch fails here.
    let store = Store::open(dir.path(), &opts()).unwrap();
    store
        .write_blocking(1, |ctx| {
            lanbox::outbox::tables::create_all(ctx.txn())?;
            lanbox::attachments::tables::ensure(ctx.txn())?;
            ctx.txn().open_table(USER_RECORD)?;
            ctx.txn().open_table(TOKENHASH_TOKEN)?;
            ctx.txn().open_table(SESSIONHASH_SESSION)?;
            Ok(())
        })
        .unwrap();

    let r = store.reader().unwrap();
    assert_eq!(r.accounts().unwrap(), std::slice::from_ref(&s.account));
    assert_eq!(r.chat_records().unwrap(), [(s.chat_key, s.chat.clone())]);
    assert_eq!(r.stored_message(s.msg_key).unwrap(), Some(s.message.clone()));
    assert_eq!(r.events_after(0, 10).unwrap(), std::slice::from_ref(&s.event));
    let t = r.txn().open_table(MESSAGE_REACTIONS).unwrap();
    assert_eq!(
        t.get(s.msg_key).unwrap().unwrap().value().get().unwrap(),
        s.reactions
    );
    let t = r.txn().open_table(CHAT_MESSAGE).unwrap();
    assert_eq!(t.len().unwrap(), 1);
    let t = r.txn().open_table(USER_RECORD).unwrap();
    assert_eq!(t.get(1).unwrap().unwrap().value().get().unwrap(), s.user);
    let t = r.txn().open_table(TOKENHASH_TOKEN).unwrap();
    assert_eq!(t.get(&[7; 32]).unwrap().unwrap().value().get().unwrap(), s.token);
    let t = r.txn().open_table(SESSIONHASH_SESSION).unwrap();
    assert_eq!(
        t.get(&[8; 32]).unwrap().unwrap().value().get().unwrap(),
        s.session
    );
    assert_eq!(
        lanbox::attachments::tables::read_record(r.txn(), 7).unwrap(),
        Some(s.attachment.clone())
    );
    let t = r.txn().open_table(ATTACHMENT_KEY).unwrap();
    assert_eq!(
        t.get("url_signing").unwrap().unwrap().value().get().unwrap(),
        s.signing_key
    );
    drop((t, r));

    // And the other way: what the typed tables write is what the byte tables held, so the
    // previous release still reads a store this one wrote.
    let (user2, key2) = (
        UserRecord {
            id: 2,
            name: "bob".into(),
            ..s.user.clone()
        },
        sealed(9),
    );
    let (u, k) = (user2.clone(), key2.clone());
    store
        .write_blocking(1, move |ctx| {
            ctx.txn().open_table(USER_RECORD)?.insert(2, Stored::new(&u)?)?;
            ctx.txn()
                .open_table(ATTACHMENT_KEY)?
                .insert("other", Stored::<Sealed, Bare>::new(&k)?)?;
            let mut t = ctx.txn().open_table(ATTACHMENT_RECORD)?;
            let mut rec = t.get(7)?.expect("attachment 7").value().get()?;
            rec.attempts = 3;
            t.insert(7, Stored::new(&rec)?)?;
            Ok(())
        })
        .unwrap();
    drop(store);
    let db = Database::open(dir.path().join(lanbox::store::DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let users = txn.open_table(RAW_USER_RECORD).unwrap();
    assert_eq!(
        users.get(2).unwrap().unwrap().value(),
        codec::encode(&user2).unwrap()
    );
    let keys = txn.open_table(RAW_ATTACHMENT_KEY).unwrap();
    assert_eq!(
        keys.get("other").unwrap().unwrap().value(),
        postcard::to_allocvec(&key2).unwrap()
    );
    let atts = txn.open_table(RAW_ATTACHMENT_RECORD).unwrap();
    let rec: AttachmentRecord = codec::decode(atts.get(7).unwrap().unwrap().value()).unwrap();
    assert_eq!(rec.attempts, 3);
}

/// A damaged record, or one a newer release wrote, is an error to the reader, never a panic
/// inside redb's `Value::from_bytes`.
#[test]
fn damaged_or_future_records_read_as_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &opts()).unwrap();
    drop(store);
    {
        let db = Database::open(dir.path().join(lanbox::store::DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(RAW_ACCOUNT_RECORD).unwrap();
            t.insert(1, [1u8, 0xff].as_slice()).unwrap();
            t.insert(2, [200u8, 1, 2, 3].as_slice()).unwrap();
            t.insert(3, [].as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path(), &opts()).unwrap();
    let r = store.reader().unwrap();
    for id in 1..=3 {
        let err = r.account(id).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Format {
                    record: "account",
                    ..
                }
            ),
            "{id}: {err}"
        );
    }
    assert!(r.accounts().is_err());
}
