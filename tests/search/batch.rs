//! Indexing in batches (issue 17): the index gathers a transaction's writes and makes them
//! once at commit. What a batch leaves must be what the same changes leave one at a time, and
//! edits and deletes inside the batch must be exact.

use super::*;

/// A mixed batch: new messages (a common word, rare words, names), edits and deletes of
/// messages of the same batch and of earlier ones.
fn changes(a: u64, dm: &Chat, round: i64) -> Vec<Change> {
    let mut out = Vec::new();
    let base = round * 1000;
    for i in 0..120 {
        let id = base + i;
        let text = format!("common word{} rare{id} group{} 会议", i % 7, i % 13);
        let mut m = text_message(a, dm, id, &text);
        m.content.sender = user(100 + i % 5, &format!("Person{}", i % 5));
        out.push(Change::New(m));
        if i % 10 == 3 {
            let mut e = text_message(a, dm, id, &format!("edited{id} common"));
            e.content.sender = user(100 + i % 5, &format!("Person{}", i % 5));
            e.edited_at = Some(1_800_000_000);
            out.push(Change::Edit(e));
        }
        if i % 17 == 5 {
            out.push(Change::Delete {
                account: a,
                chat: dm.clone(),
                message_ids: vec![id],
            });
        }
        if round > 0 && i % 9 == 0 {
            let old = base - 1000 + i;
            let mut e = text_message(a, dm, old, &format!("again{old} common"));
            e.content.sender = user(100 + i % 5, &format!("Person{}", i % 5));
            e.edited_at = Some(1_800_000_000);
            out.push(Change::Edit(e));
            out.push(Change::Delete {
                account: a,
                chat: dm.clone(),
                message_ids: vec![old + 1],
            });
        }
    }
    out
}

fn all_ids(p: &Pipeline, text: &str, a: u64) -> Vec<i64> {
    let mut q = Query::new(text, &[a]);
    q.limit = 100;
    let mut out = Vec::new();
    loop {
        let page = run(p, &q).unwrap();
        out.extend(page.hits.iter().map(|h| h.message_id));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

#[test]
fn a_batch_leaves_what_its_changes_leave_one_at_a_time() {
    let (_d1, batched) = setup();
    let (_d2, single) = setup();
    let a = account(batched.store(), "a", false);
    assert_eq!(account(single.store(), "a", false), a);
    let dm = chat(10, ChatKind::Private, "Client");
    for round in 0..3 {
        let cs = changes(a, &dm, round);
        for c in cs.clone() {
            submit(&single, a, vec![c]);
        }
        submit(&batched, a, cs);
    }
    for q in [
        "common",
        "\"common\"",
        "word3",
        "rare1005",
        "edited2013",
        "again1009",
        "group5 common",
        "会议",
        "person2",
        "from:person4 word",
        "\"rare5 group5\"",
    ] {
        let (b, s) = (all_ids(&batched, q, a), all_ids(&single, q, a));
        assert_eq!(b, s, "query {q}");
    }
    assert!(!all_ids(&batched, "common", a).is_empty());
    assert_eq!(index_rows(&batched, a), index_rows(&single, a));
    assert_eq!(
        rows_of(&batched, NAME_SENDERS, a),
        rows_of(&single, NAME_SENDERS, a)
    );
}

#[test]
fn edits_and_deletes_inside_one_batch_are_exact() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    let mut edit = text_message(a, &dm, 1, "bravo charlie");
    edit.edited_at = Some(1_800_000_000);
    submit(
        &p,
        a,
        vec![
            Change::New(text_message(a, &dm, 1, "alpha")),
            Change::New(text_message(a, &dm, 2, "alpha delta")),
            Change::Edit(edit),
            Change::Delete {
                account: a,
                chat: dm.clone(),
                message_ids: vec![2],
            },
        ],
    );
    assert_eq!(ids(&p, "\"alpha\"", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "\"delta\"", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "\"charlie\"", &[a]), [1]);
    submit(
        &p,
        a,
        vec![
            Change::New(text_message(a, &dm, 3, "echo")),
            Change::Delete {
                account: a,
                chat: dm.clone(),
                message_ids: vec![1, 3],
            },
        ],
    );
    assert_eq!(index_rows(&p, a), [0; 4], "nothing left behind");
    assert_eq!(rows_of(&p, NAME_SENDERS, a), 0);
}
