//! Full-text search through the real pipeline and store: what is found (scripts, fields, emoji,
//! hashtags, numbers), query syntax, filters, order and cursors, grants, edits and deletes
//! reflected at commit, account removal, bad input, and no plaintext term at rest.

mod support;

use std::sync::Arc;

use lanbox::ingest::{Batch, Change, Pipeline};
use lanbox::model::*;
use lanbox::search::docrow::DocRow;
use lanbox::search::tables::*;
use lanbox::search::{Filter, Query, SearchError, SearchIndex, SearchPage, search};
use redb::{ReadableTable, TableDefinition};
use support::messages::*;

fn setup() -> (tempfile::TempDir, Pipeline) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    (dir, Pipeline::new(store, Arc::new(SearchIndex::new())))
}

fn submit(p: &Pipeline, account: u64, changes: Vec<Change>) {
    p.submit_blocking(Batch {
        account,
        changes,
        position: None,
    })
    .unwrap();
}

fn run(p: &Pipeline, q: &Query) -> Result<SearchPage, SearchError> {
    search(&p.store().reader().unwrap(), q)
}

/// Message IDs found for `text` by a caller allowed `allowed`.
fn ids(p: &Pipeline, text: &str, allowed: &[u64]) -> Vec<i64> {
    let page = run(p, &Query::new(text, allowed)).unwrap_or_else(|e| panic!("query {text:?}: {e}"));
    page.hits.iter().map(|h| h.message_id).collect()
}

fn with_body(account: u64, chat: &Chat, id: i64, body: Body) -> Message {
    let mut m = text_message(account, chat, id, "");
    m.content.body = body;
    m
}

fn media(kind: MediaKind, caption: &str, file_name: &str) -> Body {
    Body::Media(Media {
        kind,
        file: Attachment {
            file_id: "AgAD".into(),
            file_name: Some(file_name.into()),
            ..Attachment::default()
        },
        thumbnail: None,
        caption: Some(Text::plain(caption)),
        title: None,
        performer: None,
        emoji: None,
        spoiler: false,
    })
}

#[test]
fn finds_words_of_every_script_and_field() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    #[rustfmt::skip]
    let texts = [
        "Le café est fermé", "Встреча завтра в клинике", "مرحبا، الأسبوع القادم", "Καλημέρα φίλε",
        "שָׁלוֹם עֲלֵיכֶם", "明天的会议记录在这里", "お願いします、バージョンを確認", "great job 👍🏽 🇯🇵",
        "see #Urgent and ping @Support_Bot", "docs at https://www.example.org/docs/v2?x=1 ok",
        "call me +1 555-010-0123 about order ORD10023",
    ];
    let mut changes: Vec<Change> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Change::New(text_message(a, &dm, i as i64 + 1, t)))
        .collect();
    changes.push(Change::New(with_body(
        a,
        &dm,
        20,
        media(MediaKind::File, "signed copy", "Договор_№17.pdf"),
    )));
    let contact = Body::Contact {
        phone: "+44 20 7946 0958".into(),
        first_name: "Zoë".into(),
        last_name: Some("Kowalski".into()),
        user_id: None,
        vcard: None,
    };
    changes.push(Change::New(with_body(a, &dm, 21, contact)));
    let venue = Body::Venue {
        location: Location {
            latitude: 1.0,
            longitude: 2.0,
            accuracy_m: None,
            live_period_s: None,
        },
        title: "Riverside Clinic".into(),
        address: "Baker Street 221b".into(),
    };
    changes.push(Change::New(with_body(a, &dm, 22, venue)));
    submit(&p, a, changes);

    #[rustfmt::skip]
    let cases: &[(&str, i64)] = &[
        ("cafe", 1), ("FERME", 1), ("клинике", 2), ("ВСТРЕЧА", 2), ("الاسبوع", 3),
        ("καλημερα", 4), ("שלום", 5), ("会议", 6), ("会议记录", 6), ("记", 6), ("バージョン", 7),
        ("👍", 8), ("#urgent", 9), ("urgent", 9), ("@support_bot", 9), ("example.org", 10),
        ("https://example.org/docs/v2?x=1", 10), ("0123", 11), ("555-010-0123", 11),
        ("15550100123", 11), ("10023", 11), ("договор", 20), ("signed", 20), ("zoe", 21),
        ("7946", 21), ("riverside", 22), ("baker", 22),
    ];
    for &(q, want) in cases {
        assert_eq!(ids(&p, q, &[a]), [want], "query {q:?}");
    }
    let page = run(&p, &Query::new("клинике", &[a])).unwrap();
    assert_eq!(
        page.hits[0].snippet.marked("«", "»"),
        "Встреча завтра в «клинике»"
    );
    assert_eq!(page.hits[0].kind, BodyKind::Text);
}

#[test]
fn all_terms_phrases_and_prefixes() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    let texts = [
        "please send the invoice",
        "send invoice please",
        "invoices are late",
        "the invitation",
    ];
    let changes = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Change::New(text_message(a, &dm, i as i64 + 1, t)))
        .collect();
    submit(&p, a, changes);
    assert_eq!(ids(&p, "send invoice", &[a]), [2, 1]);
    assert_eq!(ids(&p, "\"send invoice\"", &[a]), [2]);
    assert_eq!(ids(&p, "\"send the invoice\"", &[a]), [1]);
    assert_eq!(ids(&p, "invoice late", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "invoice*", &[a]), [3, 2, 1]);
    assert_eq!(ids(&p, "inv*", &[a]), [4, 3, 2, 1]);
    assert_eq!(ids(&p, "the invi*", &[a]), [4]);
    assert_eq!(
        ids(&p, "invitation*", &[a]),
        [4],
        "longer than the dictionary's prefixes"
    );
    let page = run(&p, &Query::new("\"send invoice\"", &[a])).unwrap();
    assert_eq!(
        page.hits[0].snippet.marked("<mark>", "</mark>"),
        "<mark>send</mark> <mark>invoice</mark> please"
    );
}

#[test]
fn filters_order_and_cursor() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let c1 = chat(10, ChatKind::Private, "One");
    let c2 = chat(-1005, ChatKind::Supergroup, "Two");
    let mut changes = Vec::new();
    // Dates deliberately out of ingestion order: the page must still be newest first.
    let dates = [50, 10, 40, 30, 20, 60, 5];
    for (i, &d) in dates.iter().enumerate() {
        let id = i as i64 + 1;
        let c = if i % 2 == 0 { &c1 } else { &c2 };
        let mut m = text_message(a, c, id, &format!("ticket number {id}"));
        m.date = 1_700_000_000 + d;
        if id == 3 {
            m.direction = Direction::Outgoing;
        }
        if id == 5 {
            m.content.sender = user(77, "Bob");
            m.content.body = media(MediaKind::Image, "ticket photo", "img.jpg");
        }
        changes.push(Change::New(m));
    }
    submit(&p, a, changes);
    assert_eq!(ids(&p, "ticket", &[a]), [6, 1, 3, 4, 5, 2, 7]);

    let mut seen = Vec::new();
    let mut q = Query::new("ticket", &[a]);
    q.limit = 3;
    loop {
        let page = run(&p, &q).unwrap();
        seen.extend(page.hits.iter().map(|h| h.message_id));
        match page.next {
            Some(c) => q.cursor = Some(c.to_string().parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, [6, 1, 3, 4, 5, 2, 7]);

    let filtered = |f: Filter| {
        let mut q = Query::new("ticket", &[a]);
        q.filter = f;
        run(&p, &q)
            .unwrap()
            .hits
            .iter()
            .map(|h| h.message_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        filtered(Filter {
            chats: vec![-1005],
            ..Filter::default()
        }),
        [6, 4, 2]
    );
    assert_eq!(
        filtered(Filter {
            senders: vec![77],
            ..Filter::default()
        }),
        [5]
    );
    assert_eq!(
        filtered(Filter {
            kinds: vec![BodyKind::Image],
            ..Filter::default()
        }),
        [5]
    );
    assert_eq!(
        filtered(Filter {
            direction: Some(Direction::Outgoing),
            ..Filter::default()
        }),
        [3]
    );
    let (since, until) = (Some(1_700_000_020), Some(1_700_000_040));
    assert_eq!(
        filtered(Filter {
            since,
            until,
            ..Filter::default()
        }),
        [3, 4, 5]
    );
    assert_eq!(
        filtered(Filter {
            accounts: vec![a + 1],
            ..Filter::default()
        }),
        Vec::<i64>::new()
    );
}

/// Guards the block-skipping walk (date filters and cursors jump over blocks of 1024
/// documents): across several blocks, with dates partly out of ingestion order, every page
/// must be exactly the next slice of the full, date-ordered answer.
#[test]
fn date_ranges_and_deep_pages_across_many_blocks() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    let date = |i: i64| 1_700_000_000 + if i % 10 == 0 { (i * 7919) % 3500 } else { i };
    for chunk in (1..=3500i64).collect::<Vec<_>>().chunks(500) {
        let changes = chunk
            .iter()
            .map(|&i| {
                let mut m = text_message(a, &dm, i, if i % 3 == 0 { "needle hay" } else { "hay" });
                m.date = date(i);
                Change::New(m)
            })
            .collect();
        submit(&p, a, changes);
    }
    let (since, until) = (1_700_001_000, 1_700_002_600);
    let mut want: Vec<(i64, i64)> = (1..=3500i64)
        .filter(|i| i % 3 == 0 && (since..=until).contains(&date(*i)))
        .map(|i| (date(i), i))
        .collect();
    want.sort_by(|x, y| y.cmp(x));
    let mut q = Query::new("needle", &[a]);
    q.filter.since = Some(since);
    q.filter.until = Some(until);
    q.limit = 37;
    let mut got = Vec::new();
    loop {
        let page = run(&p, &q).unwrap();
        got.extend(page.hits.iter().map(|h| (h.date, h.message_id)));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got.len(), want.len());
    // Equal dates may come in either message order; dates must match exactly.
    let dates = |v: &[(i64, i64)]| v.iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(dates(&got), dates(&want));
    let mut ids: Vec<i64> = got.iter().map(|x| x.1).collect();
    ids.sort_unstable();
    let mut want_ids: Vec<i64> = want.iter().map(|x| x.1).collect();
    want_ids.sort_unstable();
    assert_eq!(ids, want_ids);
}

#[test]
fn callers_see_only_their_accounts_and_shared_messages_follow_seen_by() {
    let (_d, p) = setup();
    let (a, b, c) = (
        account(p.store(), "a", false),
        account(p.store(), "b", false),
        account(p.store(), "c", false),
    );
    let dm = chat(10, ChatKind::Private, "Client");
    let sg = chat(-1009, ChatKind::Supergroup, "Shared");
    submit(
        &p,
        a,
        vec![
            Change::New(text_message(a, &dm, 1, "secret plan")),
            Change::New(text_message(a, &sg, 5, "shared plan")),
        ],
    );
    // b receives the same supergroup message: stored once (owned by a), seen by both.
    submit(&p, b, vec![Change::New(text_message(b, &sg, 5, "shared plan"))]);
    // c is in the supergroup too, but joined later and never received message 5.
    submit(&p, c, vec![Change::New(text_message(c, &sg, 6, "unrelated"))]);
    assert_eq!(ids(&p, "plan", &[a]), [5, 1]);
    assert_eq!(ids(&p, "plan", &[b]), [5]);
    assert_eq!(ids(&p, "plan", &[c]), Vec::<i64>::new());
    assert_eq!(ids(&p, "secret", &[b, c]), Vec::<i64>::new());
    assert_eq!(ids(&p, "plan", &[]), Vec::<i64>::new());
    let mut q = Query::new("plan", &[a, b]);
    q.filter.accounts = vec![b];
    assert_eq!(run(&p, &q).unwrap().hits.len(), 1);
}

#[test]
fn nothing_indexed_yet_and_group_migration() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    assert_eq!(
        ids(&p, "anything", &[a]),
        Vec::<i64>::new(),
        "no index tables yet"
    );
    let g = chat(-42, ChatKind::Group, "Old group");
    let sg = chat(-100_042, ChatKind::Supergroup, "Old group");
    submit(&p, a, vec![Change::New(text_message(a, &g, 7, "moved along"))]);
    let migrate = Change::Migrate {
        account: a,
        from_group: -42,
        to_supergroup: sg.clone(),
    };
    submit(&p, a, vec![migrate]);
    let page = run(&p, &Query::new("moved", &[a])).unwrap();
    assert_eq!(page.hits.len(), 1, "indexed once, under its new key");
    assert_eq!((page.hits[0].chat_id, page.hits[0].message_id), (-100_042, 7));
    let mut q = Query::new("moved", &[a]);
    q.filter.chats = vec![-42];
    assert!(run(&p, &q).unwrap().hits.is_empty());
    q.filter.chats = vec![-100_042];
    assert_eq!(run(&p, &q).unwrap().hits.len(), 1);
}

/// Rows of `def` that belong to `account` (every index key starts with the account).
fn rows_of<K: redb::Key + 'static, V: redb::Value + 'static>(
    p: &Pipeline,
    def: TableDefinition<K, V>,
    account: u64,
) -> usize {
    let r = p.store().reader().unwrap();
    let Ok(t) = r.txn().open_table(def) else { return 0 };
    t.iter()
        .unwrap()
        .filter(|row| {
            let (k, _) = row.as_ref().unwrap();
            u64::from_be_bytes(K::as_bytes(&k.value()).as_ref()[..8].try_into().unwrap()) == account
        })
        .count()
}

fn index_rows(p: &Pipeline, account: u64) -> [usize; 4] {
    [
        rows_of(p, TERM_POSTINGS, account),
        rows_of(p, PREFIX_TERM, account),
        rows_of(p, DOCROW_MESSAGES, account),
        rows_of(p, DOCBLOCK_DATES, account),
    ]
}

#[test]
fn edits_reindex_and_deletes_leave_no_posting_behind() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    submit(
        &p,
        a,
        vec![Change::New(text_message(a, &dm, 1, "alpha bravo 会议"))],
    );
    assert_eq!(ids(&p, "alpha", &[a]), [1]);
    let mut edited = text_message(a, &dm, 1, "charlie delta");
    edited.edited_at = Some(1_800_000_000);
    submit(&p, a, vec![Change::Edit(edited)]);
    assert_eq!(
        ids(&p, "alpha", &[a]),
        Vec::<i64>::new(),
        "the old text is gone at commit"
    );
    assert_eq!(
        ids(&p, "alp*", &[a]),
        Vec::<i64>::new(),
        "and so are its prefixes"
    );
    assert_eq!(ids(&p, "会", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "charlie", &[a]), [1]);
    {
        let r = p.store().reader().unwrap();
        let rows = r.txn().open_table(DOCROW_MESSAGES).unwrap();
        let (_, row) = rows.first().unwrap().unwrap();
        assert_eq!(
            DocRow::len_of(row.value()),
            1,
            "the edit kept its document number"
        );
    }
    assert!(index_rows(&p, a).iter().all(|&n| n > 0));

    submit(
        &p,
        a,
        vec![Change::Delete {
            account: a,
            chat: dm.clone(),
            message_ids: vec![1],
        }],
    );
    assert_eq!(ids(&p, "charlie", &[a]), Vec::<i64>::new());
    assert_eq!(
        index_rows(&p, a),
        [0; 4],
        "postings, dictionary, documents, date blocks"
    );
}

#[test]
fn account_removal_leaves_nothing_and_spares_the_others() {
    let (_d, p) = setup();
    let (a, b) = (account(p.store(), "a", false), account(p.store(), "b", false));
    for acc in [a, b] {
        let dm = chat(10 + acc as i64, ChatKind::Private, "Client");
        let changes = (1..=50)
            .map(|i| Change::New(text_message(acc, &dm, i, &format!("report {i} #tag 明天"))))
            .collect();
        submit(&p, acc, changes);
    }
    let removed = p
        .store()
        .write_blocking(1, move |ctx| SearchIndex::new().remove_account(ctx, a))
        .unwrap();
    assert!(removed > 50, "{removed}");
    assert_eq!(index_rows(&p, a), [0; 4]);
    assert!(index_rows(&p, b).iter().all(|&n| n > 0), "b's index is untouched");
    assert_eq!(ids(&p, "report", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "report 50", &[b]), [50]);
}

#[path = "search/hostile.rs"]
mod hostile;

#[path = "search/people.rs"]
mod people;

#[path = "search/batch.rs"]
mod batch;
