//! Hostile input and privacy at rest: bad and pathological queries end quickly with a clear
//! error or an empty page, and no plaintext term of indexed text reaches the data directory.

use std::time::{Duration, Instant};

use super::*;

#[test]
fn bad_input_is_a_clear_error_or_empty_within_bounded_time() {
    let (_d, p) = setup();
    let a = account(p.store(), "a", false);
    let dm = chat(10, ChatKind::Private, "Client");
    // Every message has both words, never side by side in the queried order (the pair sketch
    // rules them out unread), and a word sharing its first eight letters with a long prefix
    // query (every candidate must be decrypted, and none matches).
    let changes = (1..=2_100)
        .map(|i| Change::New(text_message(a, &dm, i, "beta x alpha the alphabetaxx")))
        .collect();
    submit(&p, a, changes);
    let thousand = (0..1000).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    let sixty = (0..60).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ");
    let word = "a".repeat(1024);
    let marks = "\u{301}".repeat(300);
    let cases: Vec<(&str, Option<&str>)> = vec![
        ("", Some("EmptyQuery")),
        ("   \t\n", Some("EmptyQuery")),
        ("?!. ,,, --", Some("EmptyQuery")),
        (&thousand, Some("QueryTooLong")),
        (&sixty, Some("TooManyTerms")),
        ("al*", Some("PrefixTooShort")),
        ("**", Some("MisplacedWildcard")),
        // All 2,100 texts are one text, so one sketch: it rules the pair out (no hits, no
        // decrypting), or, one time in seven, lets every candidate through to be checked.
        ("\"alpha beta\"", Some("Ok or TooExpensive")),
        ("alphabetic*", Some("TooExpensive")),
        (&word, None),
        (&marks, Some("EmptyQuery")),
        ("the the the the the the the the", None),
        ("\"\"\"\"\"\"", Some("EmptyQuery")),
    ];
    for (q, want) in cases {
        let t = Instant::now();
        let got = run(&p, &Query::new(q, &[a]));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "query took {:?}",
            t.elapsed()
        );
        match (got, want) {
            (Ok(_), None | Some("Ok or TooExpensive")) => {}
            (Err(SearchError::TooExpensive), Some("Ok or TooExpensive")) => {}
            (Err(e), Some(name)) => {
                assert!(format!("{e:?}").starts_with(name), "{e:?} is not {name}");
                assert!(!e.to_string().contains("alpha"), "errors never echo the query");
            }
            (other, want) => panic!(
                "{:?} for a query of {} bytes, wanted {want:?}",
                other.map(|p| p.hits.len()),
                q.len()
            ),
        }
    }
}

#[test]
fn no_plaintext_term_on_disk() {
    const CANARY: &str = "Zebracanary7Q";
    const CYRILLIC: &str = "Канарейкажёлтая";
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let a = account(&store, "a", false);
        let p = Pipeline::new(store, Arc::new(SearchIndex::new()));
        let dm = chat(10, ChatKind::Private, "Client");
        let changes = vec![
            Change::New(text_message(
                a,
                &dm,
                1,
                &format!("hello {CANARY} and {CYRILLIC} #{CANARY}"),
            )),
            Change::New(with_body(
                a,
                &dm,
                2,
                media(MediaKind::File, CANARY, &format!("{CANARY}.pdf")),
            )),
            Change::New(text_message(a, &dm, 3, &format!("deleted {CANARY}"))),
            Change::Delete {
                account: a,
                chat: dm.clone(),
                message_ids: vec![3],
            },
        ];
        submit(&p, a, changes);
        assert_eq!(
            ids(&p, CANARY, &[a]),
            [2, 1],
            "indexed: the scan below is meaningful"
        );
    }
    let mut needles: Vec<String> = vec![CANARY.into(), CANARY.to_lowercase(), CYRILLIC.into()];
    needles.extend([CYRILLIC.to_lowercase(), "канарейкажелтая".into()]);
    needles.push(CANARY.to_lowercase()[..8].to_string());
    needles.push(format!("#{}", CANARY.to_lowercase()));
    let mut hits = Vec::new();
    let files = crate::support::canary::scan(dir.path(), &needles, &mut hits);
    assert!(files > 0, "nothing scanned");
    assert!(hits.is_empty(), "plaintext terms at rest: {hits:?}");
}
