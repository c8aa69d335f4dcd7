//! Attachments end to end: files of incoming media messages are fetched from the Bot API
//! simulator in the background, stored encrypted, synced to a real S3-compatible server
//! (SeaweedFS, see `tests/support/s3.rs`), and downloaded through signed URLs with Range support.

mod support;

use std::time::Duration;

use lanbox::attachments::{AttachmentOptions, Attachments, S3Config, State};
use lanbox::auth::Role;
use lanbox::channels::telegram::client::http_client;
use lanbox::dev::simulator::{SimBot, Simulator};
use lanbox::ingest::Change;
use lanbox::model::{Attachment, Body, ChatKind, EventKind, Media, MediaKind, Message};
use lanbox::service::ServiceOptions;
use lanbox::store::MsgKey;
use support::server::{TestServer, get};
use support::{bots, canary, messages, poll, s3};
use tokio::sync::watch;

const CANARY: &[u8] = b"CANARY-7f3a-attachment-plaintext";

/// `len` bytes that are not all alike and carry the canary every 64 KiB or so.
fn file_bytes(len: usize, salt: u8) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| ((i * 7 + salt as usize) % 251) as u8).collect();
    let mut at = 100;
    while at + CANARY.len() < len {
        v[at..at + CANARY.len()].copy_from_slice(CANARY);
        at += 60_000;
    }
    v
}

struct Setup {
    s: TestServer,
    _sim: Simulator,
    bot: SimBot,
    account: u64,
}

async fn setup(opts: AttachmentOptions) -> Setup {
    setup_with(opts, true, false).await
}

/// `start`: run the background workers; `local_api`: the simulator acts as a self-hosted Bot
/// API server (no 20 MB download limit).
async fn setup_with(opts: AttachmentOptions, start: bool, local_api: bool) -> Setup {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("lanbox=info")
        .with_test_writer()
        .try_init();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start_with(
        listener,
        lanbox::dev::simulator::SimConfig {
            local_api,
            ..Default::default()
        },
    )
    .unwrap();
    let bot = sim.add_bot("filebot");
    // Without `start`, the test steps the follower itself: no background fetching.
    let opts = AttachmentOptions {
        workers: if start { opts.workers } else { 0 },
        ..opts
    };
    let s = TestServer::start_with(ServiceOptions {
        attachments: opts,
        ..ServiceOptions::default()
    })
    .await;
    let account = bots::add(&s.store, &sim, &bot, Some("files")).await;
    s.user("alice", Role::Agent, &[account]).await;
    s.user("nobody", Role::Agent, &[]).await;
    Setup {
        s,
        _sim: sim,
        bot,
        account,
    }
}

fn media_message(
    account: u64,
    id: i64,
    kind: MediaKind,
    file: Attachment,
    thumb: Option<Attachment>,
) -> Message {
    let chat = messages::chat(5001, ChatKind::Private, "Files");
    let mut m = messages::text_message(account, &chat, id, "");
    m.content.body = Body::Media(Media {
        kind,
        file,
        thumbnail: thumb,
        caption: None,
        title: None,
        performer: None,
        emoji: None,
        spoiler: false,
    });
    m
}

fn att(file_id: &str, size: u64, name: Option<&str>, mime: Option<&str>) -> Attachment {
    Attachment {
        file_id: file_id.into(),
        file_unique_id: format!("U{file_id}"),
        file_name: name.map(Into::into),
        mime_type: mime.map(Into::into),
        size: Some(size),
        ..Attachment::default()
    }
}

fn key(account: u64, id: i64) -> MsgKey {
    // Private chats are scoped per account.
    MsgKey {
        scope: account,
        chat: 5001,
        msg: id,
    }
}

/// Waits for `n` `attachment.ready` events about message `msg`.
async fn ready_events(rx: &mut Published, msg: i64, n: usize) {
    ready_all(rx, &vec![msg; n]).await
}

type Published = tokio::sync::broadcast::Receiver<std::sync::Arc<lanbox::store::Published>>;

/// Waits for one `attachment.ready` event per entry of `msgs` (events may come in any order).
async fn ready_all(rx: &mut Published, msgs: &[i64]) {
    let mut left = msgs.to_vec();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !left.is_empty() {
        let p = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .unwrap_or_else(|_| panic!("attachment.ready for messages {left:?} in time"))
            .unwrap();
        if p.event.kind == EventKind::AttachmentReady
            && let Some(i) = left.iter().position(|m| Some(*m) == p.event.message_key)
        {
            left.remove(i);
        }
    }
}

/// How long a background worker gets for what has no event to wait on (polled on the store).
const EVENTUALLY: Duration = Duration::from_secs(90);

async fn list(s: &TestServer, token: &str, account: u64, msg: i64) -> (u16, serde_json::Value) {
    get(
        s,
        token,
        &format!("/api/v1/chats/{account}:5001/messages/{msg}/attachments"),
    )
    .await
}

async fn fetch_url(s: &TestServer, url: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = s.client().get(s.url(url));
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_in_background_encrypted_and_served_by_signed_url_with_ranges() {
    let t = setup(AttachmentOptions::default()).await;
    let (s, a) = (&t.s, t.account);
    let doc = file_bytes(3 * 1024 * 1024 + 77, 1);
    let thumb = file_bytes(5_000, 2);
    let doc_id = t.bot.add_file(doc.clone());
    let thumb_id = t.bot.add_file(thumb.clone());
    let mut rx = s.store.subscribe();
    s.ingest(
        a,
        vec![media_message(
            a,
            7,
            MediaKind::File,
            att(
                &doc_id,
                doc.len() as u64,
                Some("report \"Q3\"/../x.pdf"),
                Some("application/pdf"),
            ),
            Some(att(&thumb_id, thumb.len() as u64, None, Some("image/jpeg"))),
        )],
    )
    .await;
    // The message is there at once; its files come later.
    let alice = s.token("alice").await;
    let k = key(a, 7);
    assert!(s.store.read(move |r| r.message(k)).await.unwrap().is_some());
    ready_events(&mut rx, 7, 2).await;

    let (st, body) = list(s, &alice, a, 7).await;
    assert_eq!(st, 200, "{body}");
    let items = body["attachments"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let file = items.iter().find(|i| i["role"] == "file").unwrap();
    let th = items.iter().find(|i| i["role"] == "thumbnail").unwrap();
    assert_eq!(file["state"], "ready");
    assert_eq!(file["size"], doc.len() as u64);
    let url = file["url"].as_str().unwrap();

    let res = fetch_url(s, url, None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    let cd = res.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(cd.starts_with("attachment; filename=\""), "{cd}");
    assert!(!cd.contains('/') && !cd.contains("\\\""), "{cd}");
    assert_eq!(res.headers()["accept-ranges"], "bytes");
    assert_eq!(res.bytes().await.unwrap(), doc);

    let res = fetch_url(s, url, Some("bytes=65530-200000")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes 65530-200000/{}", doc.len()).as_str()
    );
    assert_eq!(res.bytes().await.unwrap(), doc[65530..=200000]);
    let res = fetch_url(s, url, Some("bytes=-10")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.bytes().await.unwrap(), doc[doc.len() - 10..]);
    let res = fetch_url(s, url, Some(&format!("bytes={}-", doc.len()))).await;
    assert_eq!(res.status(), 416);

    let res = fetch_url(s, th["url"].as_str().unwrap(), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline;")
    );
    assert_eq!(res.bytes().await.unwrap(), thumb);

    // An altered or expired URL gets 403.
    let id = file["id"].as_u64().unwrap();
    let altered = url.replace(&format!("/files/{id}?"), &format!("/files/{}?", id + 1));
    assert_eq!(fetch_url(s, &altered, None).await.status(), 403);
    let mut sig_flip = url.to_owned();
    let last = sig_flip.pop().unwrap();
    sig_flip.push(if last == '0' { '1' } else { '0' });
    assert_eq!(fetch_url(s, &sig_flip, None).await.status(), 403);
    let alice_id = url
        .split("u=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let past = lanbox::store::ctx::unix_now() as u64 - 1;
    let expired = format!(
        "/api/v1/files/{id}?{}",
        s.state.attachments.signer().query(id, past, alice_id)
    );
    assert_eq!(fetch_url(s, &expired, None).await.status(), 403);

    // Grants apply: no listing for a user without the account, and a URL signed for them is
    // refused too.
    let nobody = s.token("nobody").await;
    assert_eq!(list(s, &nobody, a, 7).await.0, 404);
    let (_, me) = get(s, &nobody, "/api/v1/me").await;
    let nobody_id = me["id"].as_u64().unwrap_or(alice_id + 1);
    let exp = lanbox::store::ctx::unix_now() as u64 + 600;
    let theirs = format!(
        "/api/v1/files/{id}?{}",
        s.state.attachments.signer().query(id, exp, nobody_id)
    );
    assert_eq!(fetch_url(s, &theirs, None).await.status(), 403);

    // Nothing readable on disk.
    canary::assert_absent(s.dir.path(), &[CANARY]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_bot_api_limit_is_marked_too_big_without_downloading() {
    let sim_base_later = |opts: &mut AttachmentOptions, base: String| {
        opts.limited_api_bases = vec![base];
        opts.bot_download_limit = 1 << 20;
    };
    // The simulator's address is only known once it runs: start it first via setup, then
    // re-open the subsystem with the limit pointing at it.
    let t = setup_with(AttachmentOptions::default(), false, false).await;
    let (s, a) = (&t.s, t.account);
    let mut opts = AttachmentOptions::default();
    sim_base_later(&mut opts, t._sim.api_base());
    let limited = Attachments::open(s.store.clone(), opts, http_client().unwrap())
        .await
        .unwrap();
    let big = t.bot.add_file(vec![1u8; 2 << 20]);
    let small = t.bot.add_file(vec![2u8; 1000]);
    s.ingest(
        a,
        vec![
            media_message(
                a,
                1,
                MediaKind::Video,
                att(&big, 2 << 20, None, Some("video/mp4")),
                None,
            ),
            media_message(a, 2, MediaKind::Voice, att(&small, 1000, None, None), None),
        ],
    )
    .await;
    // Drive the limited instance by hand: follow the log, then fetch both.
    lanbox::attachments::fetch::follow_once(&limited).await.unwrap();
    let ids: Vec<u64> = (1..=2)
        .map(|m| {
            let r = s.store.reader().unwrap();
            lanbox::attachments::tables::read_of_message(r.txn(), key(a, m)).unwrap()[0].1
        })
        .collect();
    for id in &ids {
        lanbox::attachments::fetch::fetch_and_record(&limited, *id).await;
    }
    let big_rec = limited.record(ids[0]).await.unwrap().unwrap();
    let small_rec = limited.record(ids[1]).await.unwrap().unwrap();
    assert_eq!(big_rec.state, State::TooBig);
    assert_eq!(small_rec.state, State::Ready);
    assert!(
        !t.bot.calls().iter().any(|c| c.method == "getFile"
            && c.params.get("file_id").and_then(|v| v.as_str()) == Some(big.as_str())),
        "a file known to be too big is not even asked for"
    );
}

fn s3_options(weed: &s3::Weed) -> AttachmentOptions {
    AttachmentOptions {
        s3: Some(S3Config {
            endpoint: weed.endpoint(),
            bucket: "lanbox-att".into(),
            access_key: s3::ACCESS_KEY.into(),
            secret_key: s3::SECRET_KEY.into(),
            part_size: 5 << 20,
            ..S3Config::default()
        }),
        retry_base: Duration::from_millis(200),
        retry_max: Duration::from_secs(1),
        ..AttachmentOptions::default()
    }
}

async fn synced(a: &Attachments, id: u64) -> bool {
    a.record(id).await.unwrap().is_some_and(|r| r.synced)
}

async fn ids_of(s: &TestServer, k: MsgKey) -> Vec<u64> {
    s.store
        .read(move |r| lanbox::attachments::tables::read_of_message(r.txn(), k))
        .await
        .unwrap()
        .into_iter()
        .map(|(_, id)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_round_trip_ciphertext_only_served_from_bucket_and_deleted_with_the_message() {
    let weed = s3::Weed::start();
    let mut opts = s3_options(&weed);
    opts.cache_bytes = 0; // Evict local copies as soon as they are in the bucket.
    let t = setup(opts).await;
    let (s, a) = (&t.s, t.account);
    let big = file_bytes(12 * 1024 * 1024 + 5, 3); // multipart (5 MiB parts)
    let small = file_bytes(200_000, 4);
    let big_id = t.bot.add_file(big.clone());
    let small_id = t.bot.add_file(small.clone());
    let mut rx = s.store.subscribe();
    s.ingest(
        a,
        vec![
            media_message(
                a,
                1,
                MediaKind::Video,
                att(&big_id, big.len() as u64, Some("clip.mp4"), Some("video/mp4")),
                None,
            ),
            media_message(
                a,
                2,
                MediaKind::Image,
                att(&small_id, small.len() as u64, None, None),
                None,
            ),
        ],
    )
    .await;
    ready_events(&mut rx, 1, 1).await;
    let atts = &s.state.attachments;
    let big_att = ids_of(s, key(a, 1)).await[0];
    let small_att = ids_of(s, key(a, 2)).await[0];
    poll::until("both synced and evicted", EVENTUALLY, || async {
        synced(atts, big_att).await
            && synced(atts, small_att).await
            && !atts.local().exists(big_att)
            && !atts.local().exists(small_att)
    })
    .await;

    // The bucket holds ciphertext only: read the objects raw, and scan weed's own files.
    let s3c = atts.s3().unwrap();
    for id in [big_att, small_att] {
        let key = lanbox::attachments::s3::S3::object_key(id);
        let len = s3c.head(&key).await.unwrap().expect("object exists");
        let raw = s3c.get_range(&key, 0, len).await.unwrap().bytes().await.unwrap();
        assert_eq!(raw.len() as u64, len);
        assert!(
            !raw.windows(CANARY.len()).any(|w| w == CANARY),
            "plaintext in the bucket"
        );
    }
    canary::assert_absent(weed.data_dir(), &[CANARY]);

    // Served from the bucket (no local copy left), ranges included.
    let alice = s.token("alice").await;
    let (_, body) = list(s, &alice, a, 1).await;
    let url = body["attachments"][0]["url"].as_str().unwrap().to_owned();
    let res = fetch_url(s, &url, Some("bytes=6000000-6200000")).await;
    assert_eq!(res.status(), 206);
    assert_eq!(res.headers()["content-type"], "video/mp4");
    assert_eq!(res.bytes().await.unwrap(), big[6_000_000..=6_200_000]);
    let res = fetch_url(s, &url, None).await;
    assert_eq!(res.bytes().await.unwrap(), big);

    // Deleting the message deletes its object.
    s.submit(
        a,
        vec![Change::Delete {
            account: a,
            chat: messages::chat(5001, ChatKind::Private, "Files"),
            message_ids: vec![1],
        }],
    )
    .await;
    let key1 = lanbox::attachments::s3::S3::object_key(big_att);
    poll::until("object deleted", EVENTUALLY, || async {
        s3c.head(&key1).await.unwrap().is_none()
    })
    .await;
    assert!(atts.record(big_att).await.unwrap().is_none());
    assert_eq!(fetch_url(s, &url, None).await.status(), 403);
    // The other one stays.
    assert!(
        s3c.head(&lanbox::attachments::s3::S3::object_key(small_att))
            .await
            .unwrap()
            .is_some()
    );

    // Releasing the account deletes the rest.
    assert_eq!(atts.release_account(a).await.unwrap(), 1);
    let key2 = lanbox::attachments::s3::S3::object_key(small_att);
    poll::until("object of the released account deleted", EVENTUALLY, || async {
        s3c.head(&key2).await.unwrap().is_none()
    })
    .await;
    assert!(atts.record(small_att).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_outage_loses_nothing_and_syncs_on_return_even_across_a_restart() {
    let mut weed = s3::Weed::start();
    let opts = s3_options(&weed);
    weed.stop();
    let t = setup(opts.clone()).await;
    let (s, a) = (&t.s, t.account);
    let files: Vec<Vec<u8>> = (0..3).map(|i| file_bytes(300_000 + i * 1000, i as u8)).collect();
    let mut rx = s.store.subscribe();
    let msgs = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let fid = t.bot.add_file(f.clone());
            media_message(
                a,
                10 + i as i64,
                MediaKind::File,
                att(&fid, f.len() as u64, None, None),
                None,
            )
        })
        .collect();
    s.ingest(a, msgs).await;
    ready_all(&mut rx, &[10, 11, 12]).await;
    let mut ids = Vec::new();
    for m in 10..13 {
        ids.extend(ids_of(s, key(a, m)).await);
    }
    // Stored and downloadable while S3 is down; nothing synced.
    let alice = s.token("alice").await;
    let (_, body) = list(s, &alice, a, 10).await;
    let res = fetch_url(s, body["attachments"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!(res.bytes().await.unwrap(), files[0]);
    for id in &ids {
        assert!(!synced(&s.state.attachments, *id).await);
    }
    // "Restart": stop this instance's workers, open a new one over the same store; the queue
    // is in redb, so it carries over.
    s.state.shutdown();
    let again = Attachments::open(s.store.clone(), opts, http_client().unwrap())
        .await
        .unwrap();
    let (_stop2, stop_rx2) = watch::channel(false);
    again.start(stop_rx2);
    weed.restart();
    for id in ids.clone() {
        let again = again.clone();
        poll::until("synced after the outage", EVENTUALLY, move || {
            let again = again.clone();
            async move { synced(&again, id).await }
        })
        .await;
    }
    let s3c = again.s3().unwrap();
    for (id, f) in ids.iter().zip(&files) {
        let key = lanbox::attachments::s3::S3::object_key(*id);
        let len = s3c.head(&key).await.unwrap().unwrap();
        assert_eq!(len, lanbox::attachments::crypt::ciphertext_len(f.len() as u64));
    }
}

/// The last bytes of the upload test's file (the sink stops reading there).
fn body_tail() -> Vec<u8> {
    let b = file_bytes(700_000, 9);
    b[b.len() - 64..].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_is_stored_encrypted_and_oversize_is_refused_before_the_body() {
    let t = setup(AttachmentOptions {
        upload_limit: 1 << 20,
        ..AttachmentOptions::default()
    })
    .await;
    let (s, a) = (&t.s, t.account);
    let alice = s.token("alice").await;
    let body = file_bytes(700_000, 9);
    let res = s
        .client()
        .post(s.url(&format!("/api/v1/attachments?account={a}&name=Q3%20report.pdf")))
        .bearer_auth(&alice)
        .header("content-type", "application/pdf")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let v: serde_json::Value = res.json().await.unwrap();
    let id = v["id"].as_u64().unwrap();
    assert_eq!(v["size"], body.len() as u64);
    let opened = s.state.attachments.open_plaintext(id).await.unwrap();
    let mut rx = opened.range(0, opened.len());
    let mut got = Vec::new();
    while let Some(p) = rx.recv().await {
        got.extend_from_slice(&p.unwrap());
    }
    assert_eq!(got, body);
    // What the outbox gets: the name and type given, and the plaintext as a request body.
    assert_eq!(opened.info.file_name.as_deref(), Some("Q3 report.pdf"));
    assert_eq!(opened.info.mime_type.as_deref(), Some("application/pdf"));
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let received = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut c, _) = sink.accept().await.unwrap();
        let mut all = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            let n = c.read(&mut buf).await.unwrap();
            all.extend_from_slice(&buf[..n]);
            if n == 0 || all.ends_with(&body_tail()) {
                break;
            }
        }
        c.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
        all
    });
    let res = http_client()
        .unwrap()
        .post(format!("http://{sink_addr}/"))
        .header("content-length", opened.len())
        .body(opened.body())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let raw = received.await.unwrap();
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&raw[at..], &body[..]);
    canary::assert_absent(s.dir.path(), &[CANARY]);

    // Declared 10 GB and never sent: the answer comes from the header alone.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = s.raw().await;
    let req = format!(
        "POST /api/v1/attachments?account={a} HTTP/1.1\r\nHost: lanbox.local\r\nAuthorization: Bearer {alice}\r\nContent-Length: 10000000000\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
        .await
        .expect("answered without the body")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // No grant, no upload.
    let nobody = s.token("nobody").await;
    let res = s
        .client()
        .post(s.url(&format!("/api/v1/attachments?account={a}")))
        .bearer_auth(&nobody)
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// Events trimmed from the log before the follower saw them: the follower skips ahead without
/// walking every message, the files of those messages are recorded when a client asks for
/// them, and attachments of messages deleted meanwhile are swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trimmed_event_log_skips_ahead_and_older_media_are_fetched_on_demand() {
    let t = setup_with(AttachmentOptions::default(), false, false).await;
    let (s, a) = (&t.s, t.account);
    let f = t.bot.add_file(vec![5u8; 1000]);
    let atts = &s.state.attachments;
    // Message 2's file is recorded, then the message deleted in a part of the log that will
    // be trimmed before the follower sees it.
    s.ingest(
        a,
        vec![media_message(
            a,
            2,
            MediaKind::Audio,
            att(&f, 1000, None, None),
            None,
        )],
    )
    .await;
    lanbox::attachments::fetch::follow_once(atts).await.unwrap();
    let orphan = ids_of(s, key(a, 2)).await;
    assert_eq!(orphan.len(), 1);
    s.submit(
        a,
        vec![Change::Delete {
            account: a,
            chat: messages::chat(5001, ChatKind::Private, "Files"),
            message_ids: vec![2],
        }],
    )
    .await;
    s.ingest(
        a,
        vec![media_message(
            a,
            3,
            MediaKind::Audio,
            att(&f, 1000, None, None),
            None,
        )],
    )
    .await;
    s.ingest(
        a,
        vec![messages::text_message(
            a,
            &messages::chat(5001, ChatKind::Private, "Files"),
            4,
            "later",
        )],
    )
    .await;
    // Trim everything but the newest event, as the retention task does.
    let keep_one = lanbox::live::retention::Retention {
        max_events: Some(1),
        max_age: None,
        ..Default::default()
    };
    assert!(lanbox::live::retention::trim(&s.store, &keep_one).await.unwrap() > 0);
    // The follower jumps to the first kept event instead of walking every message...
    lanbox::attachments::fetch::follow_once(atts).await.unwrap();
    lanbox::attachments::fetch::follow_once(atts).await.unwrap();
    assert!(ids_of(s, key(a, 3)).await.is_empty(), "nothing walked");
    // ...the sweep removes what belonged to messages deleted in the skipped part...
    assert!(atts.record(orphan[0]).await.unwrap().is_some());
    assert!(!lanbox::attachments::fetch::sweep_once(atts).await.unwrap());
    assert!(atts.record(orphan[0]).await.unwrap().is_none());
    assert!(ids_of(s, key(a, 2)).await.is_empty());
    // ...and the skipped message's file is recorded when a client asks for it.
    let alice = s.token("alice").await;
    let (st, body) = list(s, &alice, a, 3).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["attachments"][0]["state"], "pending", "{body}");
    let ids = ids_of(s, key(a, 3)).await;
    assert_eq!(ids.len(), 1, "the trimmed message's file is queued");
    lanbox::attachments::fetch::fetch_and_record(atts, ids[0]).await;
    assert_eq!(atts.record(ids[0]).await.unwrap().unwrap().state, State::Ready);
    let (_, body) = list(s, &alice, a, 3).await;
    let url = body["attachments"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(
        fetch_url(s, &url, None).await.bytes().await.unwrap(),
        vec![5u8; 1000]
    );
    // A text message has no attachments and records none.
    let (st, body) = list(s, &alice, a, 4).await;
    assert_eq!((st, body["attachments"].as_array().unwrap().len()), (200, 0));
}

/// Rows in the durable fetch queue.
async fn fetch_queue_len(s: &TestServer) -> u64 {
    use redb::ReadableTableMetadata;
    s.store
        .read(|r| {
            Ok(r.txn()
                .open_table(lanbox::attachments::tables::ATTACHMENT_FETCH)?
                .len()?)
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_queued_in_bounded_steps() {
    use lanbox::attachments::follow::{FETCH_QUEUE_CAP, FOLLOW_STEP};
    let t = setup_with(AttachmentOptions::default(), false, false).await;
    let (s, a) = (&t.s, t.account);
    let n = FETCH_QUEUE_CAP as i64 + 2 * FOLLOW_STEP as i64;
    let msgs = (1..=n)
        .map(|i| {
            media_message(
                a,
                i,
                MediaKind::Image,
                att(&format!("f{i}"), 10, None, None),
                None,
            )
        })
        .collect();
    s.ingest(a, msgs).await;
    let atts = &s.state.attachments;
    let mut steps = 0;
    while lanbox::attachments::fetch::follow_once(atts).await.unwrap() > 0 {
        steps += 1;
        assert!(steps < 100);
    }
    // The follower stopped at the cap, one step at most past it, with events left to read.
    let queued = fetch_queue_len(s).await;
    assert!(
        (FETCH_QUEUE_CAP..FETCH_QUEUE_CAP + FOLLOW_STEP as u64).contains(&queued),
        "{queued} queued"
    );
    assert!(queued < n as u64);
    // As fetches finish (here: fail for good, the files are unknown), it goes on, never past
    // the cap, until the whole backlog is recorded.
    loop {
        let n = lanbox::attachments::fetch::follow_once(atts).await.unwrap();
        assert!(fetch_queue_len(s).await < FETCH_QUEUE_CAP + FOLLOW_STEP as u64);
        if n > 0 {
            continue;
        }
        let queued = queued_ids(s, FOLLOW_STEP).await;
        if queued.is_empty() {
            break;
        }
        for id in queued {
            lanbox::attachments::fetch::fetch_and_record(atts, id).await;
        }
    }
    assert!(!ids_of(s, key(a, n)).await.is_empty(), "the last message reached");
}

/// The first `limit` attachment IDs in the fetch queue.
async fn queued_ids(s: &TestServer, limit: usize) -> Vec<u64> {
    s.store
        .read(move |r| {
            lanbox::attachments::tables::read_due(
                r.txn(),
                lanbox::attachments::tables::ATTACHMENT_FETCH,
                u64::MAX,
                limit,
            )
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_with_a_different_file_replaces_it_locally_and_in_the_bucket() {
    let weed = s3::Weed::start();
    let t = setup(s3_options(&weed)).await;
    let (s, a) = (&t.s, t.account);
    let (one, thumb, two, other) = (
        file_bytes(300_000, 5),
        file_bytes(4_000, 6),
        file_bytes(250_000, 7),
        file_bytes(1_000, 8),
    );
    let (one_id, thumb_id, two_id, other_id) = (
        t.bot.add_file(one.clone()),
        t.bot.add_file(thumb.clone()),
        t.bot.add_file(two.clone()),
        t.bot.add_file(other.clone()),
    );
    let first = media_message(
        a,
        9,
        MediaKind::Image,
        att(&one_id, one.len() as u64, None, Some("image/png")),
        Some(att(&thumb_id, thumb.len() as u64, None, None)),
    );
    let mut rx = s.store.subscribe();
    s.ingest(a, vec![first.clone()]).await;
    ready_events(&mut rx, 9, 2).await;
    let atts = &s.state.attachments;
    let old = ids_of(s, key(a, 9)).await;
    assert_eq!(old.len(), 2);
    poll::until("both synced", EVENTUALLY, || async {
        synced(atts, old[0]).await && synced(atts, old[1]).await
    })
    .await;

    // An edit of the caption only keeps the files (a later message shows the follower is past it).
    let mut captioned = first.clone();
    captioned.edited_at = Some(captioned.date + 60);
    if let Body::Media(m) = &mut captioned.content.body {
        m.caption = Some(lanbox::model::Text::plain("new caption"));
    }
    s.submit(a, vec![Change::Edit(captioned.clone())]).await;
    s.ingest(
        a,
        vec![media_message(
            a,
            10,
            MediaKind::Image,
            att(&other_id, 1_000, None, None),
            None,
        )],
    )
    .await;
    ready_events(&mut rx, 10, 1).await;
    assert_eq!(
        ids_of(s, key(a, 9)).await,
        old,
        "a caption edit refetches nothing"
    );

    // An edit bringing a different file (and no thumbnail): the new file is fetched and
    // announced, the old ones go from disk and bucket.
    let mut replaced = captioned;
    replaced.edited_at = Some(replaced.date + 120);
    if let Body::Media(m) = &mut replaced.content.body {
        m.file = att(&two_id, two.len() as u64, None, Some("image/png"));
        m.thumbnail = None;
    }
    s.submit(a, vec![Change::Edit(replaced)]).await;
    ready_events(&mut rx, 9, 1).await;
    let new = ids_of(s, key(a, 9)).await;
    assert_eq!(new.len(), 1);
    assert!(!old.contains(&new[0]));
    for id in &old {
        assert!(atts.record(*id).await.unwrap().is_none(), "old record {id} gone");
        assert!(!atts.local().exists(*id), "old file {id} gone from disk");
    }
    let s3c = atts.s3().unwrap();
    poll::until("old objects deleted, new one synced", EVENTUALLY, || async {
        let mut gone = true;
        for id in &old {
            let k = lanbox::attachments::s3::S3::object_key(*id);
            gone &= s3c.head(&k).await.unwrap().is_none();
        }
        gone && synced(atts, new[0]).await
    })
    .await;
    let alice = s.token("alice").await;
    let (_, body) = list(s, &alice, a, 9).await;
    let url = body["attachments"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(fetch_url(s, &url, None).await.bytes().await.unwrap(), two);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_refuses_big_files_and_a_self_hosted_server_serves_them_in_full() {
    let big = file_bytes(21 * 1024 * 1024, 6);
    // Telegram's own server (the simulator's default): getFile answers "file is too big",
    // here for a file whose size the message did not announce.
    let t = setup(AttachmentOptions::default()).await;
    let (s, a) = (&t.s, t.account);
    let fid = t.bot.add_file(big.clone());
    let mut unannounced = att(&fid, 0, None, None);
    unannounced.size = None;
    s.ingest(a, vec![media_message(a, 1, MediaKind::File, unannounced, None)])
        .await;
    let atts = s.state.attachments.clone();
    poll::until("the file is recorded", EVENTUALLY, || async {
        !ids_of(s, key(a, 1)).await.is_empty()
    })
    .await;
    let id = ids_of(s, key(a, 1)).await[0];
    poll::until("marked too big", EVENTUALLY, || {
        let atts = atts.clone();
        async move { atts.record(id).await.unwrap().unwrap().state == State::TooBig }
    })
    .await;
    let alice = s.token("alice").await;
    let (_, body) = list(s, &alice, a, 1).await;
    assert_eq!(body["attachments"][0]["state"], "too_big");
    assert!(body["attachments"][0]["url"].is_null());

    // A self-hosted Bot API server: fetched in full.
    let t = setup_with(AttachmentOptions::default(), true, true).await;
    let (s, a) = (&t.s, t.account);
    let fid = t.bot.add_file(big.clone());
    let mut rx = s.store.subscribe();
    s.ingest(
        a,
        vec![media_message(
            a,
            1,
            MediaKind::File,
            att(&fid, big.len() as u64, None, None),
            None,
        )],
    )
    .await;
    ready_events(&mut rx, 1, 1).await;
    let alice = s.token("alice").await;
    let (_, body) = list(s, &alice, a, 1).await;
    let res = fetch_url(s, body["attachments"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!(res.bytes().await.unwrap(), big);
}
