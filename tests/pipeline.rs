//! The ingest pipeline against a real store in a temporary directory: dedup keys, edits,
//! deletes, login-code redaction, unread counters, migration, event log, publishing and the
//! upstream position.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lanbox::ingest::{Batch, Change, IndexHook, Pipeline};
use lanbox::model::*;
use lanbox::store::records::StoredMessage;
use lanbox::store::{ChatKey, MsgKey, StoreError, WriteCtx};
use support::canary;
use support::messages::*;

/// An index hook that remembers what it was given, to check the stage runs with the right
/// (redacted, current) content and is told about every removal.
#[derive(Default)]
struct Recorder(Mutex<HashMap<MsgKey, String>>);

impl IndexHook for Recorder {
    fn put(
        &self,
        _: &mut WriteCtx<'_>,
        key: MsgKey,
        _: &StoredMessage,
        c: &MessageContent,
    ) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap()
            .insert(key, c.body.searchable_text().join(" "));
        Ok(())
    }
    fn remove(
        &self,
        _: &mut WriteCtx<'_>,
        key: MsgKey,
        _: &StoredMessage,
        _: &MessageContent,
    ) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(&key);
        Ok(())
    }
}

fn setup() -> (tempfile::TempDir, Pipeline, Arc<Recorder>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let rec = Arc::new(Recorder::default());
    (dir, Pipeline::new(store, rec.clone()), rec)
}

fn batch(account: u64, changes: Vec<Change>, position: Option<u64>) -> Batch {
    Batch {
        account,
        changes,
        position,
    }
}

#[test]
fn dedup_key_is_global_in_supergroups_and_per_account_in_private_chats() {
    let (_d, p, _) = setup();
    let a = account(p.store(), "a", false);
    let b = account(p.store(), "b", false);
    let sg = chat(-100123, ChatKind::Supergroup, "Support");
    let dm = chat(555, ChatKind::Private, "Bob");

    for acc in [a, b] {
        let out = p
            .submit_blocking(batch(
                acc,
                vec![
                    Change::New(text_message(acc, &sg, 10, "same message in the supergroup")),
                    Change::New(text_message(acc, &dm, 10, "private message 10")),
                ],
                None,
            ))
            .unwrap();
        if acc == a {
            assert_eq!((out.created, out.duplicates), (2, 0));
        } else {
            assert_eq!(
                (out.created, out.duplicates),
                (1, 1),
                "supergroup message shown once"
            );
        }
    }
    let r = p.store().reader().unwrap();
    let keys = r.all_message_keys().unwrap();
    assert_eq!(keys.len(), 3);
    let sg_msg = r
        .stored_message(
            ChatKey {
                scope: 0,
                chat: sg.id,
            }
            .msg(10),
        )
        .unwrap()
        .unwrap();
    assert_eq!(sg_msg.seen_by, vec![a, b]);
    assert!(
        r.stored_message(
            ChatKey {
                scope: a,
                chat: dm.id
            }
            .msg(10)
        )
        .unwrap()
        .is_some()
    );
    assert!(
        r.stored_message(
            ChatKey {
                scope: b,
                chat: dm.id
            }
            .msg(10)
        )
        .unwrap()
        .is_some()
    );
    let sg_chat = r
        .chat(ChatKey {
            scope: 0,
            chat: sg.id,
        })
        .unwrap()
        .unwrap();
    assert_eq!(sg_chat.record.accounts, vec![a, b]);
    // Both accounts count the one unread supergroup message, plus their own private one.
    assert_eq!(r.account_unread(a).unwrap(), 2);
    assert_eq!(r.account_unread(b).unwrap(), 2);

    // Replaying a whole batch changes nothing.
    let out = p
        .submit_blocking(batch(
            a,
            vec![Change::New(text_message(a, &dm, 10, "private message 10"))],
            None,
        ))
        .unwrap();
    assert_eq!(out.duplicates, 1);
    assert_eq!(p.store().reader().unwrap().all_message_keys().unwrap().len(), 3);
}

#[test]
fn edits_replace_text_and_stale_edits_are_ignored() {
    let (_d, p, rec) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(7, ChatKind::Private, "Bob");
    p.submit_blocking(batch(
        a,
        vec![Change::New(text_message(a, &dm, 1, "first version"))],
        None,
    ))
    .unwrap();
    let mut edit = text_message(a, &dm, 1, "second version");
    edit.edited_at = Some(1_800_000_000);
    let out = p
        .submit_blocking(batch(a, vec![Change::Edit(edit.clone())], None))
        .unwrap();
    assert_eq!(out.updated, 1);
    let mut stale = text_message(a, &dm, 1, "stale version");
    stale.edited_at = Some(1_700_000_500);
    let out = p
        .submit_blocking(batch(a, vec![Change::Edit(stale)], None))
        .unwrap();
    assert_eq!((out.updated, out.duplicates), (0, 1));

    let key = ChatKey { scope: a, chat: 7 }.msg(1);
    let m = p.store().reader().unwrap().message(key).unwrap().unwrap();
    assert_eq!(body_text(&m), "second version");
    assert_eq!(m.edited_at, Some(1_800_000_000));
    assert_eq!(
        rec.0.lock().unwrap()[&key],
        "second version",
        "index follows the edit"
    );
    let r = p.store().reader().unwrap();
    let kinds: Vec<_> = r.events_after(0, 100).unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::MessageCreated, EventKind::MessageUpdated]);
    assert_eq!(
        r.account_unread(a).unwrap(),
        1,
        "an edit is not a new unread message"
    );

    // An edit of a message never seen stores it.
    let mut unseen = text_message(a, &dm, 2, "edited before we saw it");
    unseen.edited_at = Some(1_800_000_001);
    assert_eq!(
        p.submit_blocking(batch(a, vec![Change::Edit(unseen)], None))
            .unwrap()
            .created,
        1
    );
}

#[test]
fn deletes_leave_nothing_behind_and_fix_counters() {
    let (_d, p, rec) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(7, ChatKind::Private, "Bob");
    let msgs = (1..=3)
        .map(|i| Change::New(text_message(a, &dm, i, &format!("m{i}"))))
        .collect();
    p.submit_blocking(batch(a, msgs, None)).unwrap();
    let out = p
        .submit_blocking(batch(
            a,
            vec![Change::Delete {
                account: a,
                chat: dm.clone(),
                message_ids: vec![3, 2, 99],
            }],
            None,
        ))
        .unwrap();
    assert_eq!(out.deleted, 2, "an unknown ID is not an error");
    let r = p.store().reader().unwrap();
    let ck = ChatKey { scope: a, chat: 7 };
    assert!(r.stored_message(ck.msg(3)).unwrap().is_none());
    assert!(r.stored_message(ck.msg(2)).unwrap().is_none());
    let c = r.chat(ck).unwrap().unwrap();
    assert_eq!(
        (c.record.messages, c.record.unread, c.record.last_key),
        (1, 1, Some(1))
    );
    assert_eq!(r.account_unread(a).unwrap(), 1);
    assert_eq!(
        rec.0.lock().unwrap().len(),
        1,
        "index entries of deleted messages are gone"
    );
    let last = r.events_after(0, 100).unwrap().pop().unwrap();
    assert_eq!(
        (last.kind, last.message_key),
        (EventKind::MessageDeleted, Some(2))
    );
}

#[test]
fn rented_accounts_store_login_codes_as_placeholders() {
    let (_d, p, rec) = setup();
    let rented = account(p.store(), "rented", true);
    let own = account(p.store(), "own", false);
    let mut live = p.store().subscribe();
    let system = chat(TELEGRAM_SYSTEM_CHAT, ChatKind::Private, "Telegram");
    for acc in [rented, own] {
        p.submit_blocking(batch(
            acc,
            vec![Change::New(text_message(acc, &system, 5, "Login code: 12345"))],
            None,
        ))
        .unwrap();
    }
    let r = p.store().reader().unwrap();
    let red = r
        .message(
            ChatKey {
                scope: rented,
                chat: TELEGRAM_SYSTEM_CHAT,
            }
            .msg(5),
        )
        .unwrap()
        .unwrap();
    assert_eq!(red.content.body, Body::Redacted);
    let kept = r
        .message(
            ChatKey {
                scope: own,
                chat: TELEGRAM_SYSTEM_CHAT,
            }
            .msg(5),
        )
        .unwrap()
        .unwrap();
    assert_eq!(body_text(&kept), "Login code: 12345");
    let published = live.try_recv().unwrap();
    assert_eq!(
        published.message.as_ref().unwrap().content.body,
        Body::Redacted,
        "never published"
    );
    let idx = rec.0.lock().unwrap();
    assert_eq!(
        idx[&ChatKey {
            scope: rented,
            chat: TELEGRAM_SYSTEM_CHAT
        }
        .msg(5)],
        "",
        "never indexed"
    );
}

#[test]
fn unread_counters_and_mark_read() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_d, p, _) = setup();
    let a = account(p.store(), "a", false);
    let g = chat(-5, ChatKind::Group, "Team");
    let mut changes: Vec<Change> = (1..=5)
        .map(|i| Change::New(text_message(a, &g, i, "hi")))
        .collect();
    let mut ours = text_message(a, &g, 6, "our reply");
    ours.direction = Direction::Outgoing;
    changes.push(Change::New(ours));
    p.submit_blocking(batch(a, changes, None)).unwrap();
    let ck = ChatKey { scope: a, chat: -5 };
    assert_eq!(
        p.store()
            .reader()
            .unwrap()
            .chat(ck)
            .unwrap()
            .unwrap()
            .record
            .unread,
        5
    );
    assert_eq!(rt.block_on(p.mark_read(ck, 3)).unwrap(), Some(2));
    assert_eq!(
        rt.block_on(p.mark_read(ck, 2)).unwrap(),
        Some(2),
        "the read pointer never moves back"
    );
    let r = p.store().reader().unwrap();
    assert_eq!(r.account_unread(a).unwrap(), 2);
    let ev = r.events_after(0, 100).unwrap().pop().unwrap();
    assert_eq!((ev.kind, ev.unread), (EventKind::ChatRead, Some(2)));
    p.submit_blocking(batch(
        a,
        vec![Change::New(text_message(a, &g, 2, "late copy"))],
        None,
    ))
    .unwrap();
    assert_eq!(p.store().reader().unwrap().account_unread(a).unwrap(), 2);
}

#[test]
fn group_migration_moves_the_conversation() {
    let (_d, p, rec) = setup();
    let a = account(p.store(), "a", false);
    let g = chat(-42, ChatKind::Group, "Old group");
    let sg = chat(-100_042, ChatKind::Supergroup, "Old group");
    let msgs = (1..=3)
        .map(|i| Change::New(text_message(a, &g, i, &format!("group {i}"))))
        .collect();
    p.submit_blocking(batch(a, msgs, None)).unwrap();
    let migrate = Change::Migrate {
        account: a,
        from_group: -42,
        to_supergroup: sg.clone(),
    };
    let out = p
        .submit_blocking(batch(
            a,
            vec![
                migrate.clone(),
                Change::New(text_message(a, &sg, 1, "first in supergroup")),
            ],
            None,
        ))
        .unwrap();
    assert_eq!((out.migrated, out.created), (1, 1));
    assert_eq!(
        p.submit_blocking(batch(a, vec![migrate], None)).unwrap().migrated,
        0,
        "idempotent"
    );
    // A late update for the old group lands in the supergroup.
    p.submit_blocking(batch(
        a,
        vec![Change::New(text_message(a, &g, 4, "late group message"))],
        None,
    ))
    .unwrap();

    let r = p.store().reader().unwrap();
    let new = ChatKey {
        scope: 0,
        chat: -100_042,
    };
    let c = r.chat(new).unwrap().unwrap();
    assert_eq!((c.record.messages, c.record.unread), (5, 5));
    assert_eq!(r.account_unread(a).unwrap(), 5);
    let old = r.chat(ChatKey { scope: a, chat: -42 }).unwrap().unwrap();
    assert_eq!(old.record.migrated_to, Some(-100_042));
    assert_eq!((old.record.messages, old.record.unread), (0, 0));
    let texts: Vec<String> = r
        .chat_stored(new, i64::MIN, i64::MAX, 100)
        .unwrap()
        .into_iter()
        .map(|(k, _)| body_text(&r.message(k).unwrap().unwrap()))
        .collect();
    assert_eq!(
        texts,
        [
            "group 1",
            "group 2",
            "group 3",
            "late group message",
            "first in supergroup"
        ]
    );
    assert!(
        r.all_message_keys().unwrap().iter().all(|k| k.scope == 0),
        "nothing left under the old chat"
    );
    assert!(
        rec.0.lock().unwrap().keys().all(|k| k.scope == 0),
        "index moved too"
    );
    assert!(
        r.events_after(0, 100)
            .unwrap()
            .iter()
            .any(|e| e.kind == EventKind::ChatMigrated && e.from_chat == Some(-42))
    );
}

#[test]
fn event_log_position_and_publishing() {
    let (_d, p, _) = setup();
    let a = account(p.store(), "a", false);
    let mut live = p.store().subscribe();
    let dm = chat(9, ChatKind::Private, "Bob");
    p.submit_blocking(batch(
        a,
        vec![Change::New(text_message(a, &dm, 1, "x"))],
        Some(101),
    ))
    .unwrap();
    p.submit_blocking(batch(
        a,
        vec![Change::New(text_message(a, &dm, 2, "y"))],
        Some(100),
    ))
    .unwrap();
    p.submit_blocking(batch(
        a,
        vec![Change::Rejected {
            account: a,
            update_type: "inline_query".into(),
            reason: "not stored".into(),
        }],
        Some(105),
    ))
    .unwrap();
    let r = p.store().reader().unwrap();
    assert_eq!(r.position(a).unwrap(), Some(105), "positions only move forward");
    assert_eq!(r.rejected(a).unwrap(), 1);
    let seqs: Vec<u64> = r.events_after(0, 100).unwrap().iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(r.events_after(1, 100).unwrap()[0].message_key, Some(2));
    assert_eq!(live.try_recv().unwrap().event.seq, 1);
    assert_eq!(live.try_recv().unwrap().event.seq, 2);
}

#[test]
fn a_failing_batch_does_not_take_its_neighbours_down() {
    let (_d, p, _) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(9, ChatKind::Private, "Bob");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results = rt.block_on(async {
        let good1 = p.submit(batch(a, vec![Change::New(text_message(a, &dm, 1, "ok"))], None));
        // Account 999 does not exist: this job fails inside the shared transaction.
        let bad = p.submit(batch(
            999,
            vec![Change::New(text_message(999, &dm, 2, "bad"))],
            None,
        ));
        let good2 = p.submit(batch(a, vec![Change::New(text_message(a, &dm, 3, "ok"))], None));
        tokio::join!(good1, bad, good2)
    });
    assert!(results.0.is_ok() && results.2.is_ok());
    assert!(matches!(results.1, Err(StoreError::UnknownAccount(999))));
    assert_eq!(p.store().reader().unwrap().all_message_keys().unwrap().len(), 2);
}

#[test]
fn reactions_are_sealed_on_the_message_evented_and_follow_deletes() {
    let (d, p, _rec) = setup();
    let a = account(p.store(), "a", false);
    let group = chat(-1009, ChatKind::Supergroup, "Team");
    p.submit_blocking(batch(
        a,
        vec![Change::New(text_message(a, &group, 5, "hello"))],
        None,
    ))
    .unwrap();
    let react = |actor: i64, emoji: &[&str]| Change::Reaction {
        account: a,
        chat: group.clone(),
        message_id: 5,
        actor,
        reactions: emoji.iter().map(|e| Reaction::Emoji((*e).into())).collect(),
    };
    let canary = "ZZREACTIONCANARYZZ";
    let out = p
        .submit_blocking(batch(
            a,
            vec![react(1, &["👍"]), react(2, &["👍", canary]), react(1, &["🔥"])],
            None,
        ))
        .unwrap();
    assert_eq!(out.reactions, 3);
    let key = ChatKey {
        scope: 0,
        chat: -1009,
    }
    .msg(5);
    let r = p.store().reader().unwrap();
    let tally = r.reactions(key, a).unwrap().tally();
    assert_eq!(tally.len(), 3);
    assert!(tally.iter().all(|t| t.count == 1));
    let ev = r.events_after(0, 100).unwrap();
    assert_eq!(ev.iter().filter(|e| e.kind == EventKind::Reaction).count(), 3);
    // A reaction on a message lanbox never stored is counted, not invented.
    let out = p
        .submit_blocking(batch(
            a,
            vec![Change::Reaction {
                account: a,
                chat: group.clone(),
                message_id: 404,
                actor: 1,
                reactions: vec![Reaction::Paid],
            }],
            None,
        ))
        .unwrap();
    assert_eq!((out.reactions, out.rejected), (0, 1));
    drop(r);
    // Sealed: the reaction text is nowhere on disk in the clear.
    assert!(!canary::found(d.path(), canary));
    assert!(canary::found(d.path(), b"redb"), "the scan reads the store file");
    // Deleting the message deletes its reactions.
    p.submit_blocking(batch(
        a,
        vec![Change::Delete {
            account: a,
            chat: group.clone(),
            message_ids: vec![5],
        }],
        None,
    ))
    .unwrap();
    let r = p.store().reader().unwrap();
    assert!(r.reactions(key, a).unwrap().is_empty());
}

#[test]
fn button_presses_are_stored_and_announced_as_postbacks() {
    let (_d, p, _rec) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(7, ChatKind::Private, "Bob");
    let mut press = text_message(a, &dm, 1 << 62 | 5, "ignored");
    press.content.body = Body::Postback {
        payload: "buy:42".into(),
        origin_message_id: Some(3),
    };
    p.submit_blocking(batch(a, vec![Change::New(press)], None))
        .unwrap();
    let r = p.store().reader().unwrap();
    let last = r.events_after(0, 10).unwrap().pop().unwrap();
    assert_eq!(last.kind, EventKind::Postback);
    assert_eq!(last.kind.as_str(), "message.postback");
    let m = r
        .message(ChatKey { scope: a, chat: 7 }.msg(1 << 62 | 5))
        .unwrap()
        .unwrap();
    assert!(matches!(m.content.body, Body::Postback { ref payload, .. } if payload == "buy:42"));
}

/// Regression: when a second account received a supergroup message already stored, its
/// `seen_by` grew but no event was written, so an agent granted only that account never saw
/// the message on the live feed.
#[test]
fn a_second_account_seeing_a_stored_message_is_announced() {
    let (_d, p, _) = setup();
    let a = account(p.store(), "a", false);
    let b = account(p.store(), "b", false);
    let sg = chat(-100777, ChatKind::Supergroup, "Support");
    let mut live = p.store().subscribe();
    p.submit_blocking(batch(
        a,
        vec![Change::New(text_message(a, &sg, 5, "hello"))],
        None,
    ))
    .unwrap();
    assert_eq!(live.blocking_recv().unwrap().event.accounts, vec![a]);
    let out = p
        .submit_blocking(batch(
            b,
            vec![Change::New(text_message(b, &sg, 5, "hello"))],
            None,
        ))
        .unwrap();
    assert_eq!(out.duplicates, 1);
    // Published after the commit is answered: wait for it.
    let published = live.blocking_recv().expect("an event for the second account");
    assert_eq!(published.event.kind, EventKind::MessageCreated);
    assert_eq!(
        published.event.accounts,
        vec![b],
        "new to the second account only"
    );
    assert_eq!(published.event.message_key, Some(5));
    // A replay by either account announces nothing more.
    p.submit_blocking(batch(
        b,
        vec![Change::New(text_message(b, &sg, 5, "hello"))],
        None,
    ))
    .unwrap();
    assert!(live.try_recv().is_err());
}
