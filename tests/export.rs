//! Conversation export end to end: the PDF transcript of a chat in many scripts checked with
//! poppler (`pdftotext`, `pdftoppm`), the chat as JSON Lines, the account archive as a tar,
//! grants, and the error for missing fonts.

mod support;

use std::path::Path;
use std::time::Duration;

use lanbox::auth::Role;
use lanbox::dev::simulator::Simulator;
use lanbox::export::ExportOptions;
use lanbox::export::fonts::Fonts;
use lanbox::export::layout::{Attr, Shaper, Stats};
use lanbox::model::{
    Attachment, Body, ChatKind, Entity, EventKind, Location, Media, MediaKind, Message, PollOption, ReplyTo,
    ServiceEvent, Text, UserRef,
};
use lanbox::service::ServiceOptions;
use support::server::{TestServer, get, post};
use support::{bots, messages};

const LATIN: &str = "Hello team, the quarterly report is ready.";
const CYRILLIC: &str = "Привет команда, отчёт готов.";
const ARABIC: &str = "مرحبا بالفريق التقرير جاهز";
const CHINESE: &str = "你好团队报告已经准备好了";
const JAPANESE: &str = "こんにちはチームの皆さん報告書の準備ができました";
const EMOJI: &str = "Great work 🎉👍";
/// Bidi inside one paragraph: Arabic in an English sentence, English and digits in Arabic.
const MIXED_LTR: &str = "The greeting مرحبا بكم means welcome.";
const MIXED_RTL: &str = "السعر 250 دولار عند ACME اليوم";

fn token_1000() -> String {
    "abcdefghij".repeat(100)
}

/// A real PNG (stored deflate blocks), `w`×`h`, a colour gradient.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    fn crc(data: &[u8]) -> u32 {
        let mut c = 0xFFFF_FFFFu32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0);
        for x in 0..w {
            raw.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 160]);
        }
    }
    let mut z = vec![0x78, 0x01];
    for (i, block) in raw.chunks(65_535).enumerate() {
        let last = (i + 1) * 65_535 >= raw.len();
        z.push(u8::from(last));
        z.extend_from_slice(&(block.len() as u16).to_le_bytes());
        z.extend_from_slice(&(!(block.len() as u16)).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in &raw {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn entity(kind: &str, start: u32, end: u32, url: Option<&str>) -> Entity {
    Entity {
        kind: kind.into(),
        start,
        end,
        url: url.map(Into::into),
        user_id: None,
        language: None,
        custom_emoji_id: None,
    }
}

struct Setup {
    s: TestServer,
    _sim: Simulator,
    account: u64,
    photo: Vec<u8>,
}

fn chat() -> lanbox::model::Chat {
    messages::chat(5001, ChatKind::Private, "Export check")
}

fn text(account: u64, id: i64, t: &str) -> Message {
    messages::text_message(account, &chat(), id, t)
}

async fn setup(options: ServiceOptions) -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sim = Simulator::start_on(listener).unwrap();
    let bot = sim.add_bot("exportbot");
    let s = TestServer::start_with(options).await;
    let account = bots::add(&s.store, &sim, &bot, Some("front desk")).await;
    s.user("alice", Role::Agent, &[account]).await;
    s.user("nobody", Role::Agent, &[]).await;
    s.user("root", Role::Admin, &[]).await;

    let photo = png(64, 48);
    let main_id = bot.add_file(photo.clone());
    let thumb_id = bot.add_file(png(32, 24));
    let mut first = text(account, 1, LATIN);
    if let Body::Text(t) = &mut first.content.body {
        let at = |w: &str| {
            let s = LATIN.find(w).unwrap() as u32;
            (s, s + w.len() as u32)
        };
        let (bs, be) = at("quarterly");
        let (ls, le) = at("report");
        t.entities = vec![
            entity("bold", bs, be, None),
            entity("text_link", ls, le, Some("https://example.com/report")),
        ];
    }
    let mut photo_msg = text(account, 7, "");
    let att = |id: &str, len: usize, name: &str| Attachment {
        file_id: id.into(),
        file_unique_id: format!("U{id}"),
        file_name: Some(name.into()),
        mime_type: Some("image/png".into()),
        size: Some(len as u64),
        ..Attachment::default()
    };
    photo_msg.content.body = Body::Media(Media {
        kind: MediaKind::Image,
        file: att(&main_id, photo.len(), "site-photo.png"),
        thumbnail: Some(att(&thumb_id, 100, "thumb.png")),
        caption: Some(Text::plain("Photo of the site")),
        title: None,
        performer: None,
        emoji: None,
        spoiler: false,
    });
    let mut reply = text(account, 9, "Replying to the first message");
    reply.content.reply_to = Some(ReplyTo {
        message_id: 1,
        chat_id: None,
        quote: None,
    });
    let mut poll = text(account, 10, "");
    poll.content.body = Body::Poll {
        question: "Which day suits you?".into(),
        options: vec![
            PollOption {
                text: "Monday".into(),
                votes: 3,
            },
            PollOption {
                text: "Friday".into(),
                votes: 1,
            },
        ],
        total_voters: 4,
        anonymous: true,
        quiz: false,
        multiple_answers: false,
        closed: false,
    };
    let mut place = text(account, 11, "");
    place.content.body = Body::Location(Location {
        latitude: 52.52001,
        longitude: 13.40495,
        accuracy_m: None,
        live_period_s: None,
    });
    let mut contact = text(account, 12, "");
    contact.content.body = Body::Contact {
        phone: "+491701234567".into(),
        first_name: "Max".into(),
        last_name: Some("Muster".into()),
        user_id: None,
        vcard: None,
    };
    let mut joined = text(account, 13, "");
    joined.content.body = Body::Service(ServiceEvent::MembersJoined(vec![UserRef {
        id: 77,
        is_bot: false,
        first_name: "Nora".into(),
        last_name: None,
        username: None,
        language_code: None,
    }]));
    let mut edited = text(account, 14, "Corrected delivery date");
    edited.edited_at = Some(1_700_000_100);
    let mut rx = s.store.subscribe();
    s.ingest(
        account,
        vec![
            first,
            text(account, 2, CYRILLIC),
            text(account, 3, ARABIC),
            text(account, 4, CHINESE),
            text(account, 5, JAPANESE),
            text(account, 6, EMOJI),
            photo_msg,
            text(account, 8, &token_1000()),
            reply,
            poll,
            place,
            contact,
            joined,
            edited,
            text(account, 15, MIXED_LTR),
            text(account, 16, MIXED_RTL),
        ],
    )
    .await;
    let mut ready = 0;
    while ready < 2 {
        let p = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("attachments ready in time")
            .unwrap();
        if p.event.kind == EventKind::AttachmentReady {
            ready += 1;
        }
    }
    Setup {
        s,
        _sim: sim,
        account,
        photo,
    }
}

async fn fetch(s: &TestServer, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let res = s
        .client()
        .get(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ct, res.bytes().await.unwrap().to_vec())
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd} (Debian's poppler-utils) runs: {e}"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd} {args:?}: {err}");
    assert!(
        !err.contains("Error"),
        "{cmd} reads the file without complaint: {err}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Words of `pdftotext -bbox` output: (text, xMin, yMin, xMax, yMax, page).
fn words(html: &str) -> Vec<(String, f32, f32, f32, f32, u32)> {
    let mut out = Vec::new();
    let mut page = 0;
    for line in html.lines() {
        if line.contains("<page ") {
            page += 1;
        }
        let Some(at) = line.find("<word ") else { continue };
        let attr = |k: &str| -> f32 {
            let s = &line[line.find(&format!("{k}=\"")).unwrap() + k.len() + 2..];
            s[..s.find('"').unwrap()].parse().unwrap()
        };
        let text = &line[at..];
        let text = &text[text.find('>').unwrap() + 1..text.rfind("</word>").unwrap()];
        out.push((
            text.replace("&amp;", "&"),
            attr("xMin"),
            attr("yMin"),
            attr("xMax"),
            attr("yMax"),
            page,
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pdf_transcript_in_every_script_is_typeset_and_searchable() {
    let t = setup(ServiceOptions::default()).await;
    let alice = t.s.token("alice").await;
    let chat = format!("{}:5001", t.account);
    let (st, ct, pdf) = fetch(&t.s, &alice, &format!("/api/v1/chats/{chat}/export.pdf")).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&pdf));
    assert_eq!(ct, "application/pdf");
    assert!(pdf.starts_with(b"%PDF-") && pdf.ends_with(b"%%EOF\n"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let f = file.to_str().unwrap();
    if let Ok(keep) = std::env::var("LANBOX_EXPORT_KEEP") {
        std::fs::write(Path::new(&keep).join("transcript.pdf"), &pdf).unwrap();
    }

    // Every script's words come out of the text layer, in logical order.
    let txt = run("pdftotext", &["-enc", "UTF-8", f, "-"]);
    for needle in [
        "quarterly",
        "Export check",
        "front desk",
        "alice",
        "Привет команда",
        "готов",
        CHINESE,
        "こんにちは",
        "準備ができました",
        "site-photo.png",
        "Photo of the site",
        "Replying to the first message",
        // Polls, locations, contacts, service events, edited markers, page numbers.
        "Which day suits you?",
        "Monday — 3 votes",
        "Poll, 4 voters",
        "Location 52.52001, 13.40495",
        "Contact: Max Muster +491701234567",
        "Nora joined",
        "(edited)\n\nCorrected delivery date",
        "page 2",
    ] {
        assert!(txt.contains(needle), "{needle:?} in the text layer");
    }
    for word in ARABIC.split(' ') {
        assert!(
            txt.contains(word),
            "Arabic word {word:?} (logical order) in the text layer"
        );
    }
    assert!(
        txt.contains("🎉") || txt.contains('\u{1F389}'),
        "the emoji in the text layer"
    );
    let joined: String = txt.split_whitespace().collect();
    assert!(
        joined.contains(&token_1000()),
        "the 1,000-character token, wrapped, reads whole"
    );

    // Layout: the Arabic line runs right to left; nothing leaves the page.
    let html = run("pdftotext", &["-bbox", "-enc", "UTF-8", f, "-"]);
    let ws = words(&html);
    // poppler lists the glyphs of a right-to-left word in visual order in `-bbox` output.
    let x_of = |w: &str| {
        let rev: String = w.chars().rev().collect();
        ws.iter()
            .find(|x| x.0 == w || x.0 == rev)
            .unwrap_or_else(|| panic!("word {w:?} placed"))
            .1
    };
    let ar: Vec<&str> = ARABIC.split(' ').collect();
    assert!(
        x_of(ar[0]) > x_of(ar[1]) && x_of(ar[1]) > x_of(ar[3]),
        "Arabic words right to left"
    );
    assert!(x_of("Hello") < x_of("quarterly"), "Latin left to right");
    // Mixed: in the English sentence the Arabic phrase runs right to left between English
    // words; in the Arabic one, "250" and "ACME" keep their own order inside the RTL line.
    let on_line = |anchor: &str, w: &str| {
        let rev: String = w.chars().rev().collect();
        let y = ws.iter().find(|x| x.0 == anchor).unwrap().2;
        ws.iter()
            .find(|x| (x.0 == w || x.0 == rev) && (x.2 - y).abs() < 6.0)
            .unwrap_or_else(|| panic!("{w:?} on the line of {anchor:?}"))
            .1
    };
    let l = |w: &str| on_line("greeting", w);
    assert!(l("greeting") < l("بكم") && l("بكم") < l("مرحبا") && l("مرحبا") < l("means"));
    let r = |w: &str| on_line("ACME", w);
    assert!(r("السعر") > r("250") && r("250") > r("عند") && r("عند") > r("ACME") && r("ACME") > r("اليوم"));
    for (w, x0, y0, x1, y1, _) in &ws {
        assert!(
            *x0 >= 0.0 && *y0 >= 0.0 && *x1 <= 595.5 && *y1 <= 842.5,
            "{w:?} inside the page"
        );
        assert!(*x1 <= 595.0 - 40.0, "{w:?} inside the right margin");
    }
    // The link is a link.
    assert!(pdf.windows(26).any(|w| w == b"https://example.com/report"));

    // The pages render; keep one to look at.
    run(
        "pdftoppm",
        &[
            "-r",
            "70",
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            f,
            dir.path().join("page").to_str().unwrap(),
        ],
    );
    let png = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("page"))
        .expect("a rendered page");
    if let Ok(keep) = std::env::var("LANBOX_EXPORT_KEEP") {
        std::fs::copy(png.path(), Path::new(&keep).join("page1.png")).unwrap();
    }

    // No character of these scripts lacks a glyph (the renderer counts replacements and
    // `.notdef` glyphs; both must stay 0 with Debian's Noto fonts).
    let fonts = Fonts::load(&ExportOptions::default().fonts_dir).unwrap();
    let shaper = Shaper::new(&fonts);
    let mut stats = Stats::default();
    for t in [
        LATIN,
        CYRILLIC,
        ARABIC,
        CHINESE,
        JAPANESE,
        EMOJI,
        &token_1000(),
        "한국어 텍스트 👨‍👩‍👧 ❤️ שלום",
    ] {
        let laid = shaper.layout(t, &|_| Attr::default(), 10.0, 400.0, &mut stats);
        assert!(laid.lines.iter().all(|l| l.width <= 400.0 + 0.01), "lines fit");
    }
    // CJK breaks between characters: a long line of Chinese wraps into lines that fit.
    let long = CHINESE.repeat(10);
    let laid = shaper.layout(&long, &|_| Attr::default(), 10.0, 200.0, &mut stats);
    assert!(laid.lines.len() >= 5, "wrapped between characters");
    assert!(
        laid.lines
            .iter()
            .all(|l| l.width <= 200.0 + 0.01 && l.width > 150.0
                || l.pieces.is_empty()
                || std::ptr::eq(l, laid.lines.last().unwrap()))
    );
    assert_eq!((stats.notdef, stats.replaced), (0, 0), "no missing glyphs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_and_account_archive_carry_every_message_and_file() {
    let t = setup(ServiceOptions::default()).await;
    let alice = t.s.token("alice").await;
    let chat = format!("{}:5001", t.account);
    let (st, ct, body) = fetch(&t.s, &alice, &format!("/api/v1/chats/{chat}/export.json")).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/jsonl");
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 16);
    // The API's own message shape: each line is what GET .../messages/{id} answers.
    for l in &lines {
        let (_, one) = get(
            &t.s,
            &alice,
            &format!("/api/v1/chats/{chat}/messages/{}", l["id"]),
        )
        .await;
        assert_eq!(*l, one);
    }
    let (st, _, body) = fetch(
        &t.s,
        &alice,
        &format!("/api/v1/chats/{chat}/export.json?from=1700000003&to=1700000005"),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        std::str::from_utf8(&body).unwrap().lines().count(),
        3,
        "the period holds"
    );

    // The account archive: admins only.
    let (st, _, _) = fetch(
        &t.s,
        &alice,
        &format!("/api/v1/accounts/{}/export.tar", t.account),
    )
    .await;
    assert_eq!(st, 403);
    let root = t.s.token("root").await;
    let (st, ct, tar) = fetch(&t.s, &root, &format!("/api/v1/accounts/{}/export.tar", t.account)).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/x-tar");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.tar");
    std::fs::write(&file, &tar).unwrap();
    let out = std::process::Command::new("tar")
        .args(["-xf", file.to_str().unwrap(), "-C", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar reads it: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = dir.path().join(format!("chats/{}_5001", t.account));
    let jsonl = std::fs::read_to_string(base.join("messages-000001.jsonl")).unwrap();
    assert_eq!(jsonl.lines().count(), 16);
    assert!(
        std::fs::read_to_string(dir.path().join("chats.jsonl"))
            .unwrap()
            .contains("Export check")
    );
    let files: Vec<_> = std::fs::read_dir(base.join("files")).unwrap().flatten().collect();
    assert_eq!(files.len(), 2, "the photo and its thumbnail");
    let main = files
        .iter()
        .find(|f| f.file_name().to_string_lossy().contains("-file-"))
        .unwrap();
    assert_eq!(
        std::fs::read(main.path()).unwrap(),
        t.photo,
        "decrypted, byte for byte"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_hold_and_bad_parameters_are_refused() {
    let t = setup(ServiceOptions::default()).await;
    let nobody = t.s.token("nobody").await;
    let alice = t.s.token("alice").await;
    let chat = format!("{}:5001", t.account);
    for path in ["export.pdf", "export.json"] {
        let (st, _, _) = fetch(&t.s, &nobody, &format!("/api/v1/chats/{chat}/{path}")).await;
        assert_eq!(
            st, 404,
            "{path}: a chat the caller may not see does not exist for them"
        );
    }
    let (st, _, _) = fetch(&t.s, &alice, "/api/v1/chats/9:9/export.pdf").await;
    assert_eq!(st, 404);
    for q in ["media=all", "notes=maybe", "from=10&to=5"] {
        let (st, _, _) = fetch(&t.s, &alice, &format!("/api/v1/chats/{chat}/export.pdf?{q}")).await;
        assert_eq!(st, 400, "{q}");
    }
    let (st, ct, _) = fetch(
        &t.s,
        &alice,
        &format!("/api/v1/chats/{chat}/export.pdf?media=none&notes=exclude"),
    )
    .await;
    assert_eq!((st, ct.as_str()), (200, "application/pdf"));
    // At most two exports run at once; a third waits its turn.
    let places = (
        t.s.state.exports.start().unwrap(),
        t.s.state.exports.start().unwrap(),
    );
    assert!(t.s.state.exports.start().is_none());
    let (st, _, _) = fetch(&t.s, &alice, &format!("/api/v1/chats/{chat}/export.json")).await;
    assert_eq!(st, 429);
    drop(places);
    let (st, _, _) = fetch(&t.s, &alice, &format!("/api/v1/chats/{chat}/export.json")).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_fonts_name_the_package_and_give_no_pdf() {
    let empty = tempfile::tempdir().unwrap();
    let s = TestServer::start_with(ServiceOptions {
        export: ExportOptions {
            fonts_dir: empty.path().to_path_buf(),
            ..ExportOptions::default()
        },
        ..ServiceOptions::default()
    })
    .await;
    let a = s.account("alpha").await;
    s.user("alice", Role::Agent, &[a]).await;
    s.ingest(a, vec![text(a, 1, LATIN)]).await;
    let alice = s.token("alice").await;
    let (st, body) = get(&s, &alice, &format!("/api/v1/chats/{a}:5001/export.pdf")).await;
    assert_eq!(st, 503);
    assert_eq!(body["error"]["code"], "fonts_missing");
    let msg = body["error"]["message"].as_str().unwrap();
    for p in ["fonts-noto-core", "fonts-noto-cjk", "fonts-noto-color-emoji"] {
        assert!(msg.contains(p), "{msg} names {p}");
    }
}

/// A transcript longer than one volume: the volumes splice into one valid PDF whose pages are
/// numbered through, and every message is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_transcripts_splice_volumes_into_one_valid_pdf() {
    let s = TestServer::start().await;
    let a = s.account("alpha").await;
    s.user("alice", Role::Agent, &[a]).await;
    for part in 0..5 {
        let batch = (1..=500)
            .map(|i| {
                let n = part * 500 + i;
                text(
                    a,
                    n,
                    &format!(
                        "message number {n} says {}",
                        ["hello", "привет", "مرحبا بكم", "你好"][n as usize % 4]
                    ),
                )
            })
            .collect();
        s.ingest(a, batch).await;
    }
    let alice = s.token("alice").await;
    let (st, _, pdf) = fetch(&s, &alice, &format!("/api/v1/chats/{a}:5001/export.pdf")).await;
    assert_eq!(st, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let f = file.to_str().unwrap();
    let info = run("pdfinfo", &[f]);
    let pages: u32 = info
        .lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        pages > 2 * lanbox::export::pdf::VOLUME_PAGES,
        "{pages} pages: several volumes"
    );
    let txt = run("pdftotext", &["-enc", "UTF-8", f, "-"]);
    for n in [1, 777, 1500, 2500] {
        assert!(txt.contains(&format!("message number {n} says")), "message {n}");
    }
    let last = run(
        "pdftotext",
        &[
            "-enc",
            "UTF-8",
            "-f",
            &pages.to_string(),
            "-l",
            &pages.to_string(),
            f,
            "-",
        ],
    );
    assert!(
        last.contains(&format!("page {pages}")),
        "page numbers run through the volumes"
    );
    assert!(last.contains("message number 2500"));
}

/// Issue 19 points 1 and 6, once notes and the activity trail existed: a transcript draws the
/// conversation's private notes only when asked (`notes=include`), marked as such, and every
/// export is an entry of the conversation's activity trail.
#[tokio::test]
async fn notes_go_in_only_when_asked_and_each_export_is_in_the_trail() {
    let s = TestServer::start().await;
    let a = s.account("alpha").await;
    s.user("alice", Role::Agent, &[a]).await;
    s.ingest(a, vec![text(a, 1, "hello there"), text(a, 2, "second line")])
        .await;
    let alice = s.token("alice").await;
    let chat = format!("{a}:5001");
    let (st, n) = post(
        &s,
        &alice,
        &format!("/api/v1/chats/{chat}/notes"),
        serde_json::json!({"text": "Refund approved by finance"}),
    )
    .await;
    assert_eq!(st, 201, "{n}");
    for (q, want) in [("", false), ("?notes=exclude", false), ("?notes=include", true)] {
        let (st, _, pdf) = fetch(&s, &alice, &format!("/api/v1/chats/{chat}/export.pdf{q}")).await;
        assert_eq!(st, 200, "{q}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("notes.pdf");
        std::fs::write(&file, &pdf).unwrap();
        let txt = run("pdftotext", &["-enc", "UTF-8", file.to_str().unwrap(), "-"]);
        assert!(txt.contains("second line"), "{q}");
        assert_eq!(txt.contains("Refund approved by finance"), want, "{q}");
        assert_eq!(txt.contains("PRIVATE NOTE by alice"), want, "{q}");
    }
    let (st, _, _) = fetch(&s, &alice, &format!("/api/v1/chats/{chat}/export.json")).await;
    assert_eq!(st, 200);
    let (_, trail) = get(&s, &alice, &format!("/api/v1/chats/{chat}/activity")).await;
    let exports: Vec<(&str, &str)> = trail["activity"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "exported")
        .map(|e| (e["format"].as_str().unwrap(), e["by"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        exports,
        vec![
            ("jsonl", "alice"),
            ("pdf", "alice"),
            ("pdf", "alice"),
            ("pdf", "alice")
        ]
    );
}
