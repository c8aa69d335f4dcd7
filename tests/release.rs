//! Releasing an account against a real store with the real search index: what only it has is
//! gone (messages, chats, index entries, counters, its key); what it shares with another account
//! stays readable, re-sealed under the other account's key; a release interrupted halfway
//! finishes when run again.

mod support;

use std::sync::Arc;

use lanbox::ingest::{Batch, Change, Pipeline};
use lanbox::model::*;
use lanbox::search::{Query, SearchIndex, search};
use lanbox::store::ChatKey;
use support::messages::*;

fn submit(p: &Pipeline, account: u64, changes: Vec<Change>) {
    p.submit_blocking(Batch {
        account,
        changes,
        position: Some(9),
    })
    .unwrap();
}

fn found(p: &Pipeline, text: &str, allowed: &[u64]) -> Vec<i64> {
    let page = search(&p.store().reader().unwrap(), &Query::new(text, allowed)).unwrap();
    page.hits.iter().map(|h| h.message_id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_deletes_what_is_only_its_own_and_reseals_what_is_shared() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let p = Pipeline::new(store.clone(), Arc::new(SearchIndex::new()));
    let a = account(&store, "a", false);
    let b = account(&store, "b", false);
    let dm = chat(7, ChatKind::Private, "Bob");
    let group = chat(-1005, ChatKind::Supergroup, "Shared");
    // a: a private chat (2500 messages: more than one release chunk) and two group messages.
    let mut changes: Vec<Change> = (1..=2500)
        .map(|i| Change::New(text_message(a, &dm, i, &format!("private aardvark {i}"))))
        .collect();
    changes.push(Change::New(text_message(
        a,
        &group,
        1,
        "only a saw this platypus",
    )));
    changes.push(Change::New(text_message(a, &group, 2, "both saw this wombat")));
    submit(&p, a, changes);
    // b sees message 2 too (and one of its own); a reacts on the shared one.
    submit(
        &p,
        b,
        vec![
            Change::New(text_message(b, &group, 2, "both saw this wombat")),
            Change::New(text_message(b, &group, 3, "only b saw this quokka")),
            Change::Reaction {
                account: b,
                chat: group.clone(),
                message_id: 2,
                actor: 99,
                reactions: vec![Reaction::Emoji("🔥".into())],
            },
        ],
    );
    assert_eq!(found(&p, "wombat", &[a, b]), vec![2]);
    assert!(!found(&p, "aardvark", &[a]).is_empty());

    let done = p.release_account(a).await.unwrap();
    assert_eq!(done.messages_deleted, 2501);
    assert_eq!((done.messages_kept, done.messages_resealed), (1, 1));
    assert_eq!(done.chats_deleted, 1);

    let r = store.reader().unwrap();
    assert!(
        r.account(a).unwrap().is_none(),
        "the record and its wrapped key are gone"
    );
    assert!(r.chat(ChatKey { scope: a, chat: 7 }).unwrap().is_none());
    assert!(r.position(a).unwrap().is_none());
    assert_eq!(r.account_unread(a).unwrap(), 0);
    let gk = ChatKey {
        scope: 0,
        chat: -1005,
    };
    assert!(r.stored_message(gk.msg(1)).unwrap().is_none());
    let shared = r.stored_message(gk.msg(2)).unwrap().unwrap();
    assert_eq!((shared.owner, shared.seen_by.clone()), (b, vec![b]));
    let m = r.message(gk.msg(2)).unwrap().unwrap();
    assert_eq!(body_text(&m), "both saw this wombat", "readable under b's key");
    assert_eq!(r.reactions(gk.msg(2), b).unwrap().tally().len(), 1);
    let c = r.chat(gk).unwrap().unwrap();
    assert_eq!((c.record.accounts.clone(), c.record.owner), (vec![b], b));
    assert_eq!(c.meta.title.as_deref(), Some("Shared"), "title re-sealed under b");
    assert_eq!(c.record.messages, 2);
    drop(r);

    assert!(found(&p, "aardvark", &[a, b]).is_empty());
    assert!(found(&p, "platypus", &[a, b]).is_empty());
    assert_eq!(
        found(&p, "wombat", &[b]),
        vec![2],
        "the shared message is found as b's"
    );
    assert_eq!(found(&p, "quokka", &[b]), vec![3]);
    assert!(lanbox::ingest::release::pending(&store).unwrap().is_empty());
    // Releasing again is an error, not a silent success.
    assert!(p.release_account(a).await.is_err());
}
