//! Privacy at rest: a canary string ingested in every place message content can hold (text,
//! captions, file names, sender and chat names, contacts, venues, polls, an edited-away
//! version, a deleted message) never appears in any byte of the data directory, nor in the log
//! output at the most verbose level.
//!
//! The second test does the same for every record kind the running box writes, through its
//! real API and the Bot API simulator: accounts, users and their passwords, API tokens,
//! sessions, chats and messages received over the Bot API, fetched media, uploads, outbox items
//! (sent, failed, with files), edits. A field stored in the clear on purpose is listed there
//! with its reason, and checked to be found (so the list stays true).

mod support;

use std::sync::Arc;
use std::time::Duration;

use lanbox::ingest::{Batch, Change, NoIndex, Pipeline};
use lanbox::model::*;
use support::canary::scan;
use support::logs;
use support::messages::*;
use support::server::upload;

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

/// Every test's log, at the most verbose level (the simulator, standing in for Telegram, is
/// left out: it is not lanbox). One capture per test binary, so both tests use this.
fn logs() -> &'static logs::Captured {
    logs::capture("trace,lanbox::dev::simulator=off")
}

#[test]
fn canary_never_reaches_disk_or_logs() {
    let logs = logs();

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

    let log = logs.text();
    assert!(log.contains("ingested"), "the log capture works");
    for n in needles {
        assert!(!log.contains(n), "log output contains {n}");
    }
}

/// Fields of the store that hold what people wrote and are stored in the clear on purpose,
/// each with its reason. Anything else a person or a chat can put into lanbox is sealed.
const CLEAR_BY_DESIGN: &[(&str, &str)] = &[
    (
        LOGIN_NAME,
        "a user's login name: the key of the name index a login looks up, before any key \
         is open ([a-z0-9._-] only)",
    ),
    (
        TOKEN_LABEL,
        "an API token's label: the operator's note on a credential, listed to admins; not \
         conversation content, and not under any account's data key",
    ),
    (
        ACCOUNT_NAME,
        "an account's name: the operator's label for it, shown before any key is open",
    ),
    (
        BOT_USERNAME,
        "a bot's username: public on Telegram, from getMe, kept with the connector options",
    ),
];

const LOGIN_NAME: &str = "logincanaryq30";
const TOKEN_LABEL: &str = "TokenLabelCanaryQ31";
const ACCOUNT_NAME: &str = "AccountNameCanaryQ32";
const BOT_USERNAME: &str = "botusercanaryq33_bot";

/// Every sealed field the test writes, with a canary of its own (so a hit names the field).
const SEALED: &[(&str, &str)] = &[
    ("received text", "InTextCanaryQ1"),
    ("received caption", "InCaptionCanaryQ2"),
    ("received file name", "InFileNameCanaryQ3"),
    ("received MIME type", "application/x-inmimecanaryq4"),
    ("received file's bytes", "InFileBytesCanaryQ5"),
    ("sender's first name", "SenderFirstCanaryQ6"),
    ("sender's last name", "SenderLastCanaryQ7"),
    ("sender's username", "senderusercanaryq8"),
    ("chat title", "ChatTitleCanaryQ9"),
    ("chat username", "chatusercanaryq10"),
    ("received text edited away", "EditedAwayCanaryQ11"),
    ("contact's name", "ContactCanaryQ12"),
    ("sent text (edited since)", "OutTextCanaryQ13"),
    ("sent text's edit", "OutEditCanaryQ14"),
    ("sent file's caption", "OutCaptionCanaryQ15"),
    ("uploaded file's name", "UpNameCanaryQ16"),
    ("uploaded file's MIME type", "application/x-upmimecanaryq17"),
    ("uploaded file's bytes", "UpBytesCanaryQ18"),
    ("idempotency key", "IdemKeyCanaryQ19"),
    ("failed file send's caption", "FailedCaptionCanaryQ20"),
    ("failed file send's file name", "FailedNameCanaryQ21"),
    ("text being sent", "SendingTextCanaryQ22"),
    ("user's password", "PasswordCanaryQ23 horse battery"),
    ("bot token's secret", BOT_SECRET),
];

/// The bot token's secret part (35 characters, as BotFather issues them).
const BOT_SECRET: &str = "AATokenSecretCanaryQ24xxxxxxxxxxxxx";
const SG: i64 = -1_001_234_567_890;

type Events = tokio::sync::broadcast::Receiver<Arc<lanbox::store::Published>>;

/// Waits for the next event the store publishes (a lagged receiver just goes on).
async fn next_event(rx: &mut Events) -> Arc<lanbox::store::Published> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Ok(p)) => return p,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            other => panic!("no event in time: {other:?}"),
        }
    }
}

/// Waits until outbox item `id` is sent or failed; returns its status.
async fn settled(s: &support::server::TestServer, rx: &mut Events, id: u64) -> String {
    loop {
        let rec = s.state.outbox.item(id).await.unwrap().expect("item");
        if !rec.state.is_pending() {
            return rec.state.as_str().to_owned();
        }
        next_event(rx).await;
    }
}

/// Where each needle occurs under `dir`: `(needle, file)` pairs, and how many files were read.
fn find_all(dir: &std::path::Path, needles: &[String]) -> (Vec<(String, String)>, usize) {
    let mut hits = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            files += 1;
            for n in needles {
                if bytes.windows(n.len()).any(|w| w == n.as_bytes()) {
                    hits.push((n.clone(), p.display().to_string()));
                }
            }
        }
    }
    (hits, files)
}

// Regression: a file the team sent kept its name and MIME type in the clear in its outbox
// record (a grep of lanbox.redb for the file name found it). Every field of every record kind
// that holds what someone wrote must be sealed, or listed in CLEAR_BY_DESIGN with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_kind_keeps_what_people_wrote_sealed() {
    use lanbox::auth::Role;
    use lanbox::dev::simulator::{Fault, Simulator};
    use serde_json::json;
    use support::server::{TestServer, get, post};

    let logs = logs();
    let sealed = |field: &str| SEALED.iter().find(|(f, _)| *f == field).unwrap().1;
    let sim = Simulator::start().await.unwrap();
    let bot = sim
        .add_bot_with_token(&format!("7700042:{BOT_SECRET}"), BOT_USERNAME)
        .unwrap();
    let s = TestServer::start().await;
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    s.state.attachments.start(stop_rx);
    let mut rx = s.store.subscribe();
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;

    // An account (its token sealed, its name and the bot's username in the clear).
    let (st, v) = post(
        &s,
        &root,
        "/api/v1/accounts",
        json!({"token": bot.token(), "api_base": sim.api_base(), "name": ACCOUNT_NAME}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let a = v["id"].as_u64().unwrap();
    // A user with a password, a session, an API token with a label.
    let password = sealed("user's password");
    let (st, v) = post(
        &s,
        &root,
        "/api/v1/users",
        json!({"name": LOGIN_NAME, "role": "agent", "password": password, "accounts": [a]}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let res = s
        .client()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": LOGIN_NAME, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_owned();
    let (st, v) = post(&s, &root, "/api/v1/tokens", json!({"label": TOKEN_LABEL})).await;
    assert_eq!(st, 201, "{v}");
    let api_token = v["token"].as_str().unwrap().to_owned();

    // Received over the Bot API: a text, a document (fetched in the background), an edit, a
    // contact, from a named sender in a named supergroup.
    let chat = json!({"id": SG, "type": "supergroup", "title": sealed("chat title"),
        "username": sealed("chat username")});
    let from = json!({"id": 4242, "is_bot": false, "first_name": sealed("sender's first name"),
        "last_name": sealed("sender's last name"), "username": sealed("sender's username")});
    let mut doc = b"%PDF-1.4 ".to_vec();
    doc.extend_from_slice(sealed("received file's bytes").as_bytes());
    doc.extend_from_slice(&[b'.'; 4000]);
    let file_id = bot.add_file(doc.clone());
    let msg = |id: i64, fields: serde_json::Value| {
        let mut m = json!({"message_id": id, "date": 1_700_000_000, "chat": chat, "from": from});
        m.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        m
    };
    bot.inject_all([
        json!({"message": msg(1, json!({"text": format!("hello {}", sealed("received text"))}))}),
        json!({"message": msg(2, json!({
            "document": {"file_id": file_id, "file_unique_id": "AgADdoc1",
                "file_name": format!("{}.pdf", sealed("received file name")),
                "mime_type": sealed("received MIME type"), "file_size": doc.len()},
            "caption": sealed("received caption")}))}),
        json!({"message": msg(3, json!({"text": sealed("received text edited away")}))}),
        json!({"edited_message": msg(3, json!({"text": "harmless words", "edit_date": 1_700_000_100}))}),
        json!({"message": msg(4, json!({"contact": {"phone_number": "+15550100",
            "first_name": sealed("contact's name"), "vcard": format!("FN:{}", sealed("contact's name"))}}))}),
    ]);
    loop {
        let p = next_event(&mut rx).await;
        if p.event.kind == EventKind::AttachmentReady && p.event.message_key == Some(2) {
            break;
        }
    }
    assert!(
        bot.wait_until(Duration::from_secs(20), |b| b.pending() == 0)
            .await
    );
    let sg = format!("0:{SG}");
    let (_, page) = get(&s, &root, &format!("/api/v1/chats/{sg}/messages")).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 4, "{page}");

    // Sent: a text, then edited; a file with a caption and an idempotency key; a file send
    // Telegram refuses (the failed item keeps its sealed text and file); a text still queued.
    let (st, item) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{sg}/messages"),
        json!({"text": sealed("sent text (edited since)")}),
    )
    .await;
    assert_eq!(st, 202, "{item}");
    let id = item["id"].as_u64().unwrap();
    assert_eq!(settled(&s, &mut rx, id).await, "sent");
    let tg = s
        .state
        .outbox
        .item(id)
        .await
        .unwrap()
        .unwrap()
        .message_key()
        .unwrap()
        .msg;
    let res = s
        .client()
        .patch(s.url(&format!("/api/v1/chats/{sg}/messages/{tg}")))
        .bearer_auth(&root)
        .json(&json!({"text": sealed("sent text's edit")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let mut up = sealed("uploaded file's bytes").as_bytes().to_vec();
    up.extend_from_slice(&[b'-'; 3000]);
    let upload_id = upload(
        &s,
        &root,
        a,
        &format!("{}.bin", sealed("uploaded file's name")),
        sealed("uploaded file's MIME type"),
        up,
    )
    .await;
    let (st, item) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{sg}/messages"),
        json!({"text": sealed("sent file's caption"), "attachment": upload_id,
               "idempotency_key": sealed("idempotency key")}),
    )
    .await;
    assert_eq!(st, 202, "{item}");
    assert_eq!(settled(&s, &mut rx, item["id"].as_u64().unwrap()).await, "sent");

    let failed_upload = upload(
        &s,
        &root,
        a,
        &format!("{}.txt", sealed("failed file send's file name")),
        "text/plain",
        b"a small file".to_vec(),
    )
    .await;
    bot.fail("sendDocument", Fault::Status(400), 1);
    let (st, item) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{sg}/messages"),
        json!({"text": sealed("failed file send's caption"), "attachment": failed_upload}),
    )
    .await;
    assert_eq!(st, 202, "{item}");
    let failed = item["id"].as_u64().unwrap();
    assert_eq!(settled(&s, &mut rx, failed).await, "failed");
    let rec = s.state.outbox.item(failed).await.unwrap().unwrap();
    assert!(
        rec.text.is_some() && rec.attachment.is_some(),
        "the failed item keeps its text and file, sealed"
    );

    // Held by Telegram: the item stays "sending", its text sealed, while the scan runs.
    bot.fail("sendMessage", Fault::Hang, 1);
    let (st, item) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{sg}/messages"),
        json!({"text": sealed("text being sent")}),
    )
    .await;
    assert_eq!(st, 202, "{item}");
    assert!(
        bot.wait_until(Duration::from_secs(20), |b| b
            .calls()
            .iter()
            .any(|c| c.method == "sendMessage" && c.status.is_none()))
            .await
    );
    let rec = s
        .state
        .outbox
        .item(item["id"].as_u64().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.state.as_str(), "sending");

    // Exports in progress: a PDF transcript of a long chat and the account's archive run as
    // the routes run them (a blocking thread, output over a bounded channel), but into
    // channels this test holds and reads one piece of, so both jobs are blocked mid-file,
    // deterministically, for the whole scan. Whatever they decrypted (texts, names, the
    // received file) must not have reached the disk, and other requests still get answers.
    let long_chat = lanbox::model::Chat {
        id: 9001,
        kind: ChatKind::Private,
        title: Some(sealed("chat title").into()),
        username: None,
        is_forum: false,
    };
    let mut seed = 7u64;
    let long: Vec<Message> = (1..=1500)
        .map(|i| {
            let noise: String = (0..300)
                .map(|k| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if k % 9 == 8 {
                        ' '
                    } else {
                        char::from(b'a' + (seed >> 59) as u8 % 26)
                    }
                })
                .collect();
            text_message(a, &long_chat, i, &format!("{} {noise}", sealed("received text")))
        })
        .collect();
    s.ingest(a, long).await;
    let (store, atts) = (s.store.clone(), s.state.attachments.clone());
    let key = lanbox::store::ChatKey { scope: a, chat: 9001 };
    let head = lanbox::export::source::chat_head(&store, &lanbox::auth::Grants::All, key)
        .unwrap()
        .unwrap();
    let job = lanbox::export::archive::PdfJob {
        store: store.clone(),
        attachments: atts.clone(),
        grants: lanbox::auth::Grants::All,
        chat: head,
        period: Default::default(),
        thumbnails: true,
        notes: true,
        exported_by: "root".into(),
        options: Default::default(),
        rt: tokio::runtime::Handle::current(),
    };
    let (pdf_tx, mut pdf_rx) = tokio::sync::mpsc::channel(1);
    let pdf_job = tokio::task::spawn_blocking(move || {
        let fonts = lanbox::export::fonts::Fonts::load(std::path::Path::new("/usr/share/fonts")).unwrap();
        lanbox::export::archive::pdf(job, &fonts, &pdf_tx).map(|_| ())
    });
    let (tar_tx, mut tar_rx) = tokio::sync::mpsc::channel(1);
    let rt = tokio::runtime::Handle::current();
    let tar_job = tokio::task::spawn_blocking(move || {
        lanbox::export::archive::account_tar(store, atts, a, ACCOUNT_NAME, rt, &tar_tx)
    });
    let first = pdf_rx.recv().await.unwrap().unwrap();
    assert!(first.starts_with(b"%PDF-"));
    assert!(tar_rx.recv().await.unwrap().is_ok());
    let (st, _) = get(&s, &root, "/api/v1/chats").await;
    assert_eq!(st, 200, "other requests are answered while exports run");
    assert!(
        !pdf_job.is_finished() && !tar_job.is_finished(),
        "both exports blocked mid-file"
    );

    // The scan: nothing sealed is found, in any case; everything listed as clear is.
    let mut needles: Vec<String> = Vec::new();
    for (_, c) in SEALED {
        needles.push((*c).to_owned());
        needles.push(c.to_lowercase());
    }
    // Secrets issued: stored as digests only.
    needles.push(api_token.clone());
    needles.push(session.clone());
    needles.sort();
    needles.dedup();
    let (hits, files) = find_all(s.dir.path(), &needles);
    // The spool holds the received document and the two uploads (at least).
    let (_, spool) = find_all(&s.dir.path().join("attachments"), &[]);
    assert!(
        spool >= 3 && files > spool,
        "{files} files scanned, {spool} in the spool"
    );
    let named: Vec<String> = hits
        .iter()
        .map(|(n, f)| {
            let field = SEALED
                .iter()
                .find(|(_, c)| c.eq_ignore_ascii_case(n))
                .map_or("API token or session cookie", |(f, _)| *f);
            format!("{field} ({n}) in {f}")
        })
        .collect();
    assert!(named.is_empty(), "plaintext found at rest: {named:#?}");
    assert!(
        !pdf_job.is_finished() && !tar_job.is_finished(),
        "the exports were still in progress when the scan ended"
    );
    // A client that goes away stops its export.
    drop((pdf_rx, tar_rx));
    assert!(matches!(
        pdf_job.await.unwrap(),
        Err(lanbox::export::ExportError::Closed)
    ));
    assert!(matches!(
        tar_job.await.unwrap(),
        Err(lanbox::export::ExportError::Closed)
    ));
    let clear: Vec<String> = CLEAR_BY_DESIGN.iter().map(|(c, _)| (*c).to_owned()).collect();
    let (found, _) = find_all(s.dir.path(), &clear);
    for (c, why) in CLEAR_BY_DESIGN {
        assert!(
            found.iter().any(|(n, f)| n == c && f.ends_with("lanbox.redb")),
            "{c} is listed as stored in the clear ({why}) but is not: move it to SEALED"
        );
    }

    let log = logs.text();
    assert!(log.contains("outbox"), "the log capture works");
    for n in &needles {
        assert!(!log.contains(n.as_str()), "the log holds {n}");
    }
}
