//! Search as people search (issue 17): the last word is typed, not finished; Arabic and Hebrew
//! attach the article and prefixes to the word; people look for who wrote, not only what.

use super::*;

fn page(p: &Pipeline, text: &str, allowed: &[u64]) -> SearchPage {
    run(p, &Query::new(text, allowed)).unwrap_or_else(|e| panic!("query {text:?}: {e}"))
}

#[test]
fn the_last_word_is_a_prefix_unless_quoted() {
    // Regression: `appoint` did not find "appointment" (only `appoint*` did), and nothing said
    // whether a query was taken as a prefix.
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    let texts = [
        "the appointment is tomorrow",
        "appoint a lawyer",
        "appointments moved to friday",
    ];
    let changes = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Change::New(text_message(a, &dm, i as i64 + 1, t)))
        .collect();
    submit(&p, a, changes);

    let typed = page(&p, "appoint", &[a]);
    assert!(typed.prefix, "the reply says the word was taken as a prefix");
    let found: Vec<i64> = typed.hits.iter().map(|h| h.message_id).collect();
    assert_eq!(found, [3, 2, 1]);
    assert_eq!(
        typed.hits[2].snippet.marked("[", "]"),
        "the [appointment] is tomorrow"
    );
    assert_eq!(ids(&p, "appoint*", &[a]), [3, 2, 1]);
    assert_eq!(ids(&p, "tomorrow appoint", &[a]), [1]);
    // Earlier words match whole.
    assert_eq!(ids(&p, "appoint tomorrow", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "appoint lawy", &[a]), [2]);
    // A quoted last word is whole.
    let quoted = page(&p, "\"appoint\"", &[a]);
    assert!(!quoted.prefix);
    assert_eq!(quoted.hits.iter().map(|h| h.message_id).collect::<Vec<_>>(), [2]);
    assert_eq!(ids(&p, "lawyer \"appoint\"", &[a]), [2]);
    // Too short to be a prefix: whole.
    let short = page(&p, "is", &[a]);
    assert!(!short.prefix);
    assert_eq!(short.hits.len(), 1);
}

#[test]
fn arabic_and_hebrew_prefixes_are_folded_both_ways() {
    // Regression: `استشارة` did not find `الاستشارة` (the article is written as part of the
    // word), nor the converse; Hebrew's `ה`, `ב`, `ל`, `ו` likewise.
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    let texts = [
        "موعد الاستشارة غدا",
        "استشارة مجانية للجميع",
        "وبالاستشارة نبدأ",
        "ראיתי את הבית",
        "בית חדש",
        "פכרה", // unrelated
        "فكرة جيدة",
    ];
    let changes = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Change::New(text_message(a, &dm, i as i64 + 1, t)))
        .collect();
    submit(&p, a, changes);
    assert_eq!(ids(&p, "استشارة", &[a]), [3, 2, 1], "bare finds prefixed");
    assert_eq!(ids(&p, "الاستشارة", &[a]), [3, 2, 1], "prefixed finds bare");
    assert_eq!(ids(&p, "\"الاستشارة\"", &[a]), [3, 2, 1], "whole words too");
    assert_eq!(ids(&p, "\"موعد استشارة\"", &[a]), [1], "in phrases");
    assert_eq!(ids(&p, "بيت", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "\"בית\"", &[a]), [5, 4]);
    assert_eq!(ids(&p, "\"לבית\"", &[a]), [5, 4]);
    assert_eq!(ids(&p, "\"كرة\"", &[a]), Vec::<i64>::new(), "فكرة is not ف + كرة");
    let hit = &page(&p, "\"استشارة\"", &[a]).hits[2];
    assert_eq!(hit.snippet.marked("[", "]"), "موعد [الاستشارة] غدا");
}

#[test]
fn sender_names_are_searchable() {
    // Regression: searching a contact's name ("Ann") found nothing.
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    let from = |id: i64, sender: Sender, text: &str| {
        let mut m = text_message(a, &dm, id, text);
        m.content.sender = sender;
        Change::New(m)
    };
    let ann = Sender::User(UserRef {
        id: 7,
        is_bot: false,
        first_name: "Ann".into(),
        last_name: Some("Smith".into()),
        username: Some("ann_s".into()),
        language_code: None,
    });
    submit(
        &p,
        a,
        vec![
            from(1, ann.clone(), "see you at the clinic"),
            from(2, user(8, "Bob"), "ask ann about the clinic"),
            from(3, user(8, "Bob"), "hello"),
            from(4, ann.clone(), "thanks"),
        ],
    );
    assert_eq!(ids(&p, "ann", &[a]), [4, 2, 1], "text and names, newest first");
    assert_eq!(ids(&p, "\"ann\"", &[a]), [4, 2, 1]);
    assert_eq!(ids(&p, "from:ann", &[a]), [4, 1], "names only");
    assert_eq!(ids(&p, "from:Smith clinic", &[a]), [1]);
    assert_eq!(ids(&p, "clinic from:bob", &[a]), [2]);
    assert_eq!(ids(&p, "from:nobody", &[a]), Vec::<i64>::new());
    assert_eq!(ids(&p, "smith", &[a]), [4, 1]);
    let hit = &page(&p, "\"smith\"", &[a]).hits[0];
    assert_eq!(
        hit.snippet.text, "thanks",
        "the snippet is the text, not the name"
    );

    // The name goes with the sender's last message.
    submit(
        &p,
        a,
        vec![Change::Delete {
            account: a,
            chat: dm.clone(),
            message_ids: vec![1, 4],
        }],
    );
    assert_eq!(ids(&p, "from:ann", &[a]), Vec::<i64>::new());
    let r = p.store().reader().unwrap();
    let names = r.txn().open_table(NAME_SENDERS).unwrap();
    let left = names.iter().unwrap().count();
    assert_eq!(left, 1, "only Bob's name is left");
}
