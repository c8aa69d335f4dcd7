//! Privacy at rest: a canary string ingested in every place message content can hold (text,
//! captions, file names, sender and chat names, contacts, venues, polls, an edited-away
//! version, a deleted message) never appears in any byte of the data directory, nor in the log
//! output at the most verbose level.

mod support;

use std::sync::Arc;

use lanbox::ingest::{Batch, Change, NoIndex, Pipeline};
use lanbox::model::*;
use support::canary::scan;
use support::logs;
use support::messages::*;

const CANARY: &str = "CanaryZebra7Q";
const CANARY_CYRILLIC: &str = "КанарейкаЖёлтая";

fn media(kind: MediaKind, name: &str) -> Body {
    Body::Media(Media {
        kind,
        file: Attachment {
            file_id: "AgAD-file".into(),
            file_name: Some(format!("{name}.pdf")),
            mime_type: Some("application/pdf".into()),
            size: Some(1234),
            ..Attachment::default()
        },
        thumbnail: None,
        caption: Some(Text::plain(format!("caption {name}"))),
        title: Some(format!("title {name}")),
        performer: None,
        emoji: None,
        spoiler: false,
    })
}

fn bodies(c: &str) -> Vec<Body> {
    vec![
        Body::Text(Text::plain(format!("hello {c} there"))),
        media(MediaKind::File, c),
        media(MediaKind::Image, c),
        Body::Contact {
            phone: "+15550100".into(),
            first_name: c.into(),
            last_name: Some(c.into()),
            user_id: Some(5),
            vcard: Some(format!("BEGIN:VCARD\nFN:{c}\nEND:VCARD")),
        },
        Body::Venue {
            location: Location {
                latitude: 52.3,
                longitude: 4.9,
                accuracy_m: None,
                live_period_s: None,
            },
            title: c.into(),
            address: format!("{c} street 1"),
        },
        Body::Poll {
            question: format!("{c}?"),
            options: vec![PollOption {
                text: c.into(),
                votes: 1,
            }],
            total_voters: 1,
            anonymous: true,
            quiz: false,
            multiple_answers: false,
            closed: false,
        },
        Body::InteractiveReply {
            text: c.into(),
            payload: c.into(),
        },
    ]
}

#[test]
fn canary_never_reaches_disk_or_logs() {
    let logs = logs::capture("trace");

    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let a = account(&store, "clinic", false);
        let p = Pipeline::new(store, Arc::new(NoIndex));
        let mut id = 0;
        let mut changes = Vec::new();
        for c in [CANARY, CANARY_CYRILLIC] {
            let group = Chat {
                id: -100_777,
                kind: ChatKind::Supergroup,
                title: Some(format!("group {c}")),
                username: Some(format!("grp_{c}")),
                is_forum: false,
            };
            for body in bodies(c) {
                id += 1;
                let mut m = text_message(a, &group, id, "");
                m.content.body = body;
                m.content.sender = user(7, c);
                m.content.reply_to = Some(ReplyTo {
                    message_id: 1,
                    chat_id: None,
                    quote: Some(c.into()),
                });
                m.content.forward = Some(ForwardOrigin::HiddenUser {
                    name: c.into(),
                    date: 1,
                });
                changes.push(Change::New(m));
            }
        }
        // A message edited away from the canary, and a deleted one.
        let dm = chat(99, ChatKind::Private, "Patient");
        changes.push(Change::New(text_message(
            a,
            &dm,
            1,
            &format!("old {CANARY} text"),
        )));
        let mut edited = text_message(a, &dm, 1, "harmless new text");
        edited.edited_at = Some(1_900_000_000);
        changes.push(Change::Edit(edited));
        changes.push(Change::New(text_message(a, &dm, 2, &format!("deleted {CANARY}"))));
        changes.push(Change::Delete {
            account: a,
            chat: dm.clone(),
            message_ids: vec![2],
        });
        let out = p
            .submit_blocking(Batch {
                account: a,
                changes,
                position: Some(1),
            })
            .unwrap();
        assert_eq!(out.created, 16);
        tracing::info!(?out, "ingested");

        // Reading back works: the content is there, only sealed.
        let r = p.store().reader().unwrap();
        let k = lanbox::store::ChatKey {
            scope: 0,
            chat: -100_777,
        }
        .msg(1);
        assert!(body_text(&r.message(k).unwrap().unwrap()).contains(CANARY));
    }
    // The scanner finds plaintext when it is there.
    let control = tempfile::tempdir().unwrap();
    std::fs::write(control.path().join("x"), format!("..{CANARY}..")).unwrap();
    let mut control_hits = Vec::new();
    scan(control.path(), &[CANARY], &mut control_hits);
    assert_eq!(control_hits.len(), 1);

    // The store is closed (writer joined): everything is on disk.
    let mut hits = Vec::new();
    let lower = CANARY.to_lowercase();
    let needles = [CANARY, CANARY_CYRILLIC, lower.as_str(), "harmless new text"];
    scan(dir.path(), &needles, &mut hits);
    assert!(hits.is_empty(), "plaintext found at rest: {hits:?}");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(files.iter().any(|f| f == "lanbox.redb"), "{files:?}");

    let log = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("ingested"), "the log capture works");
    for n in needles {
        assert!(!log.contains(n), "log output contains {n}");
    }
}
