//! Hostile input: wrong types, huge strings, deep nesting, impossible entity offsets, broken
//! JSON, and thousands of random mutations of the captures. Each payload must map to at least
//! one change, fail alone inside a getUpdates body, and never have its text repeated in a
//! diagnostic.

use super::*;
use crate::support::rng::Rng;
use crate::support::updates;

/// A getUpdates body made of the given elements.
fn body(elements: &[Vec<u8>]) -> Vec<u8> {
    let mut out = br#"{"ok":true,"result":["#.to_vec();
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.extend_from_slice(b"]}");
    out
}

/// Update `update_id`, a private text message with the same ID.
fn text_update(update_id: i64, text: &str) -> Vec<u8> {
    let update = updates::private_text(77, "P", update_id, 1, text);
    serde_json::to_vec(&updates::numbered(update, update_id)).unwrap()
}

fn assert_text(mapped: &Mapped, expected: &str) {
    assert!(
        matches!(&mapped.changes[..], [Change::New(m)] if matches!(&m.content.body, Body::Text(t) if t.text == expected)),
        "{mapped:?}"
    );
}

#[test]
fn wrong_types_fail_alone_and_say_where() {
    let raw = format!(
        r#"{{"update_id": 10, "message": {{"message_id": 3, "date": 1, "text": 5,
            "caption": "{CANARY}", "chat": {{"id": 77, "type": "private"}}}}}}"#
    );
    let err = parse_update(raw.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("message.text"), "{err}");
    assert!(err.contains("found integer"), "{err}");
    let mapped = map_raw(1, raw.as_bytes());
    assert_eq!(mapped.update_id, Some(10));
    assert!(unsupported_reason(&mapped).contains("message.text"));
    assert_no_canary(&mapped);

    // The wrong-typed value *is* the text: serde would quote it.
    let raw = format!(
        r#"{{"update_id": 11, "message": {{"message_id": "{CANARY}", "date": 1,
            "chat": {{"id": 77, "type": "private"}}}}}}"#
    );
    let err = parse_update(raw.as_bytes()).unwrap_err().to_string();
    assert!(
        !err.contains(CANARY) && err.contains("message.message_id"),
        "{err}"
    );
    let mapped = map_raw(1, raw.as_bytes());
    assert!(
        matches!(&mapped.changes[..], [Change::Rejected { update_type, .. }] if update_type == "message")
    );
    assert_no_canary(&mapped);

    // A chat type as an unknown string, a forward origin with an unknown type, a variant
    // name made of text: all tolerated or reported without the text.
    for raw in [
        format!(r#"{{"update_id": 12, "{CANARY}": {{"text": "{CANARY}"}}}}"#),
        format!(
            r#"{{"update_id": 13, "message": {{"message_id": 1, "chat": {{"id": 77, "type": "{CANARY}"}},
                "text": "x", "forward_origin": {{"type": "{CANARY}", "date": 1}}}}}}"#
        ),
        format!(
            r#"{{"update_id": 14, "message_reaction": {{"chat": {{"id": 1}}, "message_id": 1,
                "new_reaction": [{{"type": 5, "emoji": "{CANARY}"}}]}}}}"#
        ),
        format!(r#"{{"update_id": 15, "message": {{"message_id": 1, "chat": "{CANARY}"}}}}"#),
    ] {
        let mapped = map_raw(1, raw.as_bytes());
        assert!(!mapped.changes.is_empty());
        assert_no_canary(&mapped);
        if let Err(e) = parse_update(raw.as_bytes()) {
            assert!(!e.to_string().contains(CANARY), "{e}");
        }
    }
}

#[test]
fn huge_strings_hit_the_limits() {
    let huge = format!("{CANARY} {}", "ж".repeat(5 * 1024 * 1024)); // ~10 MB
    let mapped = map_raw(1, &text_update(20, &huge));
    assert_eq!(unsupported_reason(&mapped), "text too long");
    assert_no_canary(&mapped);
    // Just at the limit is fine.
    let at_limit = "a".repeat(MAX_TEXT_BYTES);
    assert_text(&map_raw(1, &text_update(21, &at_limit)), &at_limit);
    // A huge caption and a huge value in a field nobody reads.
    let raw = serde_json::to_vec(&serde_json::json!({"update_id": 22, "message": {
        "message_id": 1, "date": 1, "chat": {"id": 77, "type": "private"},
        "photo": [{"file_id": "f", "width": 1, "height": 1}], "caption": huge,
        "unknown_field": huge}}))
    .unwrap();
    let mapped = map_raw(1, &raw);
    assert_eq!(unsupported_reason(&mapped), "caption too long");
    assert_no_canary(&mapped);
    // Too many entities.
    let entities: Vec<_> = (0..1001)
        .map(|_| serde_json::json!({"type": "bold", "offset": 0, "length": 1}))
        .collect();
    let raw = serde_json::to_vec(&serde_json::json!({"update_id": 23, "message": {
        "message_id": 1, "date": 1, "chat": {"id": 77, "type": "private"},
        "text": CANARY, "entities": entities}}))
    .unwrap();
    assert_eq!(unsupported_reason(&map_raw(1, &raw)), "too many entities");
}

/// `depth` nested arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn deep_nesting_fails_alone() {
    let deep = nested(100_000);
    let bad = [
        // Deep in a field nobody reads: harmless.
        format!(
            r#"{{"update_id": 2, "message": {{"message_id": 2, "date": 1, "text": "{CANARY}",
                "chat": {{"id": 77, "type": "private"}}, "junk": {deep}}}}}"#
        ),
        // Deep where a struct is read: serde_json's depth limit stops it, the message id
        // and chat still make a placeholder.
        format!(
            r#"{{"update_id": 3, "message": {{"message_id": 3, "date": 1, "text": "{CANARY}",
                "chat": {{"id": 77, "type": "private"}}, "entities": {deep}}}}}"#
        ),
        format!(
            r#"{{"update_id": 4, "message": {{"message_id": 4, "chat": {{"id": 77}},
                "forward_origin": {{"type": "user", "sender_user": {deep}}}, "text": "{CANARY}"}}}}"#
        ),
        // The whole update.
        format!(r#"{{"update_id": 5, "message": {deep}}}"#),
        deep.clone(),
    ];
    let mut elements = vec![text_update(1, "before")];
    elements.extend(bad.iter().map(|b| b.as_bytes().to_vec()));
    elements.push(text_update(9, "after"));
    let body = body(&elements);
    let raws = split_updates(&body).unwrap();
    assert_eq!(raws.len(), elements.len());
    let mapped: Vec<Mapped> = raws.iter().map(|r| map_raw(1, r.0)).collect();
    assert_text(&mapped[0], "before");
    assert_text(mapped.last().unwrap(), "after");
    assert_text(&mapped[1], CANARY);
    assert!(unsupported_reason(&mapped[2]).contains("message.entities"));
    assert!(unsupported_reason(&mapped[3]).contains("recursion limit exceeded"));
    assert!(
        matches!(&mapped[4].changes[..], [Change::Rejected { update_type, .. }] if update_type == "message")
    );
    assert_eq!(mapped[4].update_id, Some(5));
    assert!(matches!(&mapped[5].changes[..], [Change::Rejected { .. }]));
    for m in &mapped {
        assert!(!m.changes.is_empty());
        assert_no_canary(m);
    }
}

#[test]
fn invalid_entity_offsets_are_dropped_with_a_note() {
    let text = format!("a👋b {CANARY}");
    let raw = serde_json::to_vec(&serde_json::json!({"update_id": 30, "message": {
    "message_id": 1, "date": 1, "chat": {"id": 77, "type": "private"}, "text": text,
    "entities": [
        {"type": "bold", "offset": 0, "length": 4},        // "a👋b": fine
        {"type": "bold", "offset": 2, "length": 1},        // inside the surrogate pair
        {"type": "bold", "offset": 0, "length": 2},        // ends inside it
        {"type": "bold", "offset": 500, "length": 1},      // beyond the end
        {"type": "bold", "offset": -1, "length": 1},       // negative
        {"type": "bold", "offset": 1, "length": i64::MAX}, // overflows
    ]}}))
    .unwrap();
    let mapped = map_raw(1, &raw);
    let [Change::New(m)] = mapped.changes.as_slice() else {
        panic!()
    };
    let Body::Text(t) = &m.content.body else { panic!() };
    assert_eq!(t.entities.len(), 1);
    assert_eq!(&t.text[..t.entities[0].end as usize], "a👋b");
    assert_eq!(m.content.notes.len(), 5, "{:?}", m.content.notes);
    assert!(m.content.notes[0].starts_with("text entity 1 dropped"));
    assert_no_canary(&mapped);
}

#[test]
fn invalid_json_in_one_element() {
    let broken = [
        // Missing comma after the chat: the id and chat before it are still read.
        format!(
            r#"{{"update_id": 41, "message": {{"message_id": 7, "chat": {{"id": 77, "type": "private"}} "text": "{CANARY}"}}}}"#
        ),
        format!(r#"{{"update_id": 42, "message": {{"message_id": 8, "text": "{CANARY}\q"}}}}"#),
        format!(r#"{{"update_id": 43, "message": tru, "x": "{CANARY}"}}"#),
        format!(r#""{CANARY}""#),
        "-".to_owned(),
    ];
    let mut elements = vec![text_update(40, "before")];
    elements.extend(broken.iter().map(|b| b.as_bytes().to_vec()));
    elements.push(text_update(49, "after"));
    let body = body(&elements);
    let mapped: Vec<Mapped> = split_updates(&body)
        .unwrap()
        .iter()
        .map(|r| map_raw(1, r.0))
        .collect();
    assert_eq!(mapped.len(), elements.len());
    assert_text(&mapped[0], "before");
    assert_text(&mapped[6], "after");
    assert!(unsupported_reason(&mapped[1]).starts_with("update could not be parsed: syntax error"));
    assert_eq!(mapped[2].update_id, Some(42));
    for m in &mapped {
        assert_eq!(m.changes.len(), 1);
        assert_no_canary(m);
    }
    // An envelope that cannot be split at all is an error of its own.
    let truncated = &body[..body.len() - 10];
    assert!(split_updates(truncated).is_err());
}

// ---- mutations -----------------------------------------------------------------------------

const TOKENS: &[&str] = &[
    "null",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "\\",
    ",",
    ":",
    "-1",
    "0",
    "1e999",
    "18446744073709551616",
    "true",
    "\"\\ud83d\"",
    "\"CANARY-7f3a\"",
    "{\"type\":\"CANARY-7f3a\"}",
    "[[[[[[[[",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(6) {
            0 if at < b.len() => b[at] = rng.next() as u8,
            1 => {
                let end = (at + rng.below(16)).min(b.len());
                b.drain(at..end);
            }
            2 => {
                let end = (at + rng.below(64)).min(b.len());
                let copy = b[at..end].to_vec();
                let to = rng.below(b.len() + 1);
                b.splice(to..to, copy);
            }
            3 => b.truncate(at),
            _ => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                b.splice(at..at, token.iter().copied());
            }
        }
    }
    b
}

/// Regression net for the parser and mapper: thousands of damaged captures must each map to at
/// least one change, without a panic and without repeating inserted text.
#[test]
fn mutated_fixtures_never_panic() {
    let fixtures: Vec<Vec<u8>> = fixtures().into_iter().map(|(_, raw)| raw).collect();
    let mut rng = Rng(0x1a2b_3c4d_5e6f_7081);
    let mut parsed = 0;
    for _ in 0..4000 {
        let pick = rng.below(fixtures.len());
        let raw = mutate(&mut rng, &fixtures[pick]);
        if parse_update(&raw).is_ok() {
            parsed += 1;
        }
        let mapped = map_raw(1, &raw);
        assert!(!mapped.changes.is_empty());
        assert_no_canary(&mapped);
    }
    // Some mutations must keep the update valid, or this only tests the error path.
    assert!(parsed > 200, "only {parsed} mutated updates parsed");

    // Whole getUpdates bodies, mutated.
    let good = body(&fixtures[..8]);
    for _ in 0..500 {
        let raw = mutate(&mut rng, &good);
        if let Ok(updates) = split_updates(&raw) {
            for u in updates {
                let mapped = map_raw(1, u.0);
                assert!(!mapped.changes.is_empty());
                assert_no_canary(&mapped);
            }
        }
    }
}
