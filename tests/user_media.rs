//! A Telegram user account's messages beyond text (issue 16, point 2), through the whole path:
//! the MTProto simulator pushes them over real TCP under MTProto encryption to a running lanbox
//! (logged in through the API), and the test reads them back through the REST API over TLS.
//!
//! - photos and documents (files, audio, voice, video, video notes, animations, stickers),
//!   polls, locations, venues and contacts arrive with the body the Bot API path gives them,
//!   and their file fields (size, MIME type, name, dimensions, duration, thumbnail);
//! - a reply points to its message, a forward names its origin, an album's items share their
//!   group;
//! - service actions show as the Bot API's service messages do;
//! - a media kind lanbox does not store is a counted rejection naming only its kind, with
//!   none of its text in the log or on disk.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use grammers_tl_types as tl;
use lanbox::auth::Role;
use lanbox::channels::mtproto::{self, Endpoint, TelegramApp};
use lanbox::dev::mtproto::media::{self, Rich};
use lanbox::dev::mtproto::{MtSimConfig, MtSimulator, SimChatKind};
use lanbox::service::ServiceOptions;
use serde_json::{Value, json};
use support::poll;
use support::server::{TestServer, get, post};

const WAIT: Duration = Duration::from_secs(20);

struct Rig {
    s: TestServer,
    sim: MtSimulator,
    root: String,
    account: u64,
}

/// lanbox with a Telegram application pointing at the simulator, and the simulator's account
/// logged in through the API and online.
async fn rig() -> Rig {
    support::logs::capture(&format!("info,{}", mtproto::LOG_DIRECTIVES));
    let sim = MtSimulator::start(MtSimConfig::default()).await.unwrap();
    let SocketAddr::V4(addr) = sim.addr() else {
        panic!("the simulator listens on IPv4")
    };
    let app = TelegramApp {
        api_id: 12345,
        api_hash: "0123456789abcdef0123456789abcdef".into(),
        endpoint: Endpoint::Preshared {
            addr,
            auth_key: Box::new(sim.auth_key()),
        },
    };
    let s = TestServer::start_with(ServiceOptions {
        telegram_app: Some(app),
        ..ServiceOptions::default()
    })
    .await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let (st, v) = post(
        &s,
        &root,
        "/api/v1/account-logins",
        json!({"phone": sim.me().phone.unwrap()}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let login = v["login"].as_str().unwrap().to_string();
    let (st, v) = post(
        &s,
        &root,
        &format!("/api/v1/account-logins/{login}/code"),
        json!({ "code": sim.login_code().unwrap() }),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let account = v["account"]["id"].as_u64().unwrap();
    let r = Rig {
        s,
        sim,
        root,
        account,
    };
    poll::until_ok(WAIT, || async {
        let (_, all) = get(&r.s, &r.root, "/api/v1/accounts").await;
        match all
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"] == r.account)
        {
            Some(a) if a["status"] == "online" => Ok(()),
            other => Err(format!("account: {other:?}")),
        }
    })
    .await;
    r
}

impl Rig {
    /// Every visible message.
    async fn messages(&self) -> Vec<Value> {
        let (st, v) = get(&self.s, &self.root, "/api/v1/chats").await;
        assert_eq!(st, 200, "{v}");
        let mut out = Vec::new();
        for c in v["chats"].as_array().unwrap() {
            let path = format!("/api/v1/chats/{}/messages", c["id"].as_str().unwrap());
            let (st, m) = get(&self.s, &self.root, &path).await;
            assert_eq!(st, 200, "{m}");
            out.extend(m["messages"].as_array().unwrap().iter().cloned());
        }
        out
    }

    /// The visible messages once there are `n`.
    async fn wait_count(&self, n: usize) -> Vec<Value> {
        poll::until_ok(WAIT, || async {
            let all = self.messages().await;
            if all.len() == n {
                Ok(all)
            } else {
                let seen: Vec<_> = all.iter().map(|m| (&m["telegram_id"], &m["kind"])).collect();
                Err(format!("{} of {n} messages: {seen:?}", all.len()))
            }
        })
        .await
    }
}

/// The one message with Telegram ID `id` in a private chat or basic group (a supergroup's
/// messages have their own numbering).
fn by_id(all: &[Value], id: i32) -> &Value {
    all.iter()
        .find(|m| m["telegram_id"] == id && !m["chat"].as_str().unwrap_or("").contains(":-100"))
        .unwrap_or_else(|| panic!("no message {id} in {all:?}"))
}

fn rich(media: tl::enums::MessageMedia) -> Rich {
    Rich {
        media: Some(media),
        ..Rich::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_media_kind_arrives_with_its_body_and_file_fields() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let sim = &r.sim;
    let photo = sim.rich_from(&ann, "x-ray result", rich(media::photo(11, 1280, 960, 150_000)));
    let file = sim.rich_from(
        &ann,
        "",
        rich(media::document(
            12,
            "application/pdf",
            52_000,
            vec![media::file_name("referral.pdf")],
            false,
            false,
        )),
    );
    let audio = sim.rich_from(
        &ann,
        "",
        rich(media::document(
            13,
            "audio/mpeg",
            3_000_000,
            vec![
                media::audio_attr(185, false, Some("Calm"), Some("Band")),
                media::file_name("calm.mp3"),
            ],
            false,
            false,
        )),
    );
    let voice = sim.rich_from(
        &ann,
        "",
        rich(media::document(
            14,
            "audio/ogg",
            20_000,
            vec![media::audio_attr(7, true, None, None)],
            false,
            true,
        )),
    );
    let video = sim.rich_from(
        &ann,
        "",
        rich(media::document(
            15,
            "video/mp4",
            900_000,
            vec![
                media::video_attr(640, 360, 12.4, false),
                media::file_name("knee.mp4"),
            ],
            false,
            false,
        )),
    );
    let note = sim.rich_from(
        &ann,
        "",
        rich(media::document(
            16,
            "video/mp4",
            300_000,
            vec![media::video_attr(384, 384, 9.0, true)],
            true,
            false,
        )),
    );
    let gif = sim.rich_from(
        &ann,
        "",
        rich(media::document(
            17,
            "video/mp4",
            80_000,
            vec![media::video_attr(320, 240, 3.0, false), media::animated()],
            false,
            false,
        )),
    );
    let sticker = sim.rich_from(
        &ann,
        "",
        rich(media::document(
            18,
            "image/webp",
            25_000,
            vec![
                media::image_size(512, 512),
                media::sticker_attr("👍", "ClinicPack"),
            ],
            false,
            false,
        )),
    );
    let poll = sim.rich_from(
        &ann,
        "",
        rich(media::poll("Which day?", &[("Monday", 2), ("Friday", 3)])),
    );
    let here = sim.rich_from(&ann, "", rich(media::location(52.52, 13.405)));
    let venue = sim.rich_from(
        &ann,
        "",
        rich(media::venue(52.5, 13.4, "North clinic", "Main street 1")),
    );
    let contact = sim.rich_from(&ann, "", rich(media::contact("+15550001", "Bea", "Stone", 0)));
    let all = r.wait_count(12).await;

    let m = by_id(&all, photo);
    assert_eq!(m["kind"], "image", "{m}");
    assert_eq!(m["text"], "x-ray result", "the caption");
    assert_eq!(
        (&m["media"]["width"], &m["media"]["height"], &m["media"]["size"]),
        (&json!(1280), &json!(960), &json!(150_000)),
        "the largest size: {m}"
    );
    assert_eq!(m["media"]["has_thumbnail"], true);

    let m = by_id(&all, file);
    assert_eq!(m["kind"], "file", "{m}");
    assert_eq!(m["text"], Value::Null, "no caption");
    assert_eq!(m["media"]["file_name"], "referral.pdf");
    assert_eq!(m["media"]["mime_type"], "application/pdf");
    assert_eq!(m["media"]["size"], 52_000);
    assert_eq!(m["media"]["has_thumbnail"], true);

    let m = by_id(&all, audio);
    assert_eq!(m["kind"], "audio", "{m}");
    assert_eq!(
        (
            &m["media"]["title"],
            &m["media"]["performer"],
            &m["media"]["duration"]
        ),
        (&json!("Calm"), &json!("Band"), &json!(185))
    );

    let m = by_id(&all, voice);
    assert_eq!(m["kind"], "voice", "{m}");
    assert_eq!(m["media"]["duration"], 7);
    assert_eq!(m["media"]["mime_type"], "audio/ogg");

    let m = by_id(&all, video);
    assert_eq!(m["kind"], "video", "{m}");
    assert_eq!(
        (
            &m["media"]["width"],
            &m["media"]["height"],
            &m["media"]["duration"]
        ),
        (&json!(640), &json!(360), &json!(12))
    );
    assert_eq!(m["media"]["file_name"], "knee.mp4");

    let m = by_id(&all, note);
    assert_eq!(m["kind"], "video_note", "{m}");
    assert_eq!(m["media"]["width"], 384);

    assert_eq!(by_id(&all, gif)["kind"], "animation");

    let m = by_id(&all, sticker);
    assert_eq!(m["kind"], "sticker", "{m}");
    assert_eq!(
        (&m["media"]["emoji"], &m["media"]["title"]),
        (&json!("👍"), &json!("ClinicPack"))
    );
    assert_eq!(m["media"]["width"], 512);

    let m = by_id(&all, poll);
    assert_eq!(m["kind"], "poll", "{m}");
    assert_eq!(m["text"], "Which day?");
    assert_eq!(
        m["poll"]["options"],
        json!([{"text": "Monday", "votes": 2}, {"text": "Friday", "votes": 3}])
    );
    assert_eq!(
        (&m["poll"]["total_voters"], &m["poll"]["anonymous"]),
        (&json!(5), &json!(true))
    );

    let m = by_id(&all, here);
    assert_eq!(m["kind"], "location", "{m}");
    assert_eq!(
        (&m["location"]["latitude"], &m["location"]["longitude"]),
        (&json!(52.52), &json!(13.405))
    );

    let m = by_id(&all, venue);
    assert_eq!(m["kind"], "venue", "{m}");
    assert_eq!(m["venue"]["address"], "Main street 1");
    assert_eq!(m["text"], "North clinic");

    let m = by_id(&all, contact);
    assert_eq!(m["kind"], "contact", "{m}");
    assert_eq!(
        (
            &m["contact"]["phone"],
            &m["contact"]["first_name"],
            &m["contact"]["last_name"]
        ),
        (&json!("+15550001"), &json!("Bea"), &json!("Stone"))
    );
    assert_eq!(r.s.store.read(move |s| s.rejected(r.account)).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_forwards_and_albums_keep_their_links() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let bob = r.sim.add_user("Bob");
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Supergroup);
    let question = r.sim.message_from(&ann, "is the lab open?");
    let answer = r.sim.rich_from(
        &ann,
        "never mind, found it",
        Rich {
            reply_to: Some(question),
            ..Rich::default()
        },
    );
    let fwd = r.sim.rich_from(
        &ann,
        "see what Bob wrote",
        Rich {
            fwd_from: Some(media::forwarded_from(&bob, 1_700_000_000)),
            users: vec![bob.id],
            ..Rich::default()
        },
    );
    let album: Vec<i32> = (0..2)
        .map(|i| {
            r.sim.rich_in(
                &group,
                &ann,
                "",
                Rich {
                    media: Some(media::photo(100 + i, 800, 600, 40_000)),
                    grouped_id: Some(4242),
                    ..Rich::default()
                },
            )
        })
        .collect();
    let all = r.wait_count(5).await;

    let m = by_id(&all, answer);
    assert_eq!(m["reply_to"]["message_id"], question, "{m}");
    assert_eq!(m["reply_to"]["chat_id"], Value::Null, "the same chat");
    assert_eq!(by_id(&all, question)["reply_to"], Value::Null);

    let m = by_id(&all, fwd);
    assert_eq!(
        (
            &m["forward"]["type"],
            &m["forward"]["name"],
            &m["forward"]["date"]
        ),
        (&json!("user"), &json!("Bob"), &json!(1_700_000_000)),
        "{m}"
    );

    let items: Vec<&Value> = all
        .iter()
        .filter(|m| m["chat"].as_str().unwrap().contains(":-100"))
        .collect();
    assert_eq!(items.len(), album.len());
    for m in items {
        assert!(
            album.contains(&(m["telegram_id"].as_i64().unwrap() as i32)),
            "{m}"
        );
        assert_eq!(
            (&m["kind"], &m["media_group"]),
            (&json!("image"), &json!("4242")),
            "{m}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_actions_show_as_the_bot_apis_service_messages() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let bob = r.sim.add_user("Bob");
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Group);
    let action = |a: tl::enums::MessageAction, reply_to: Option<i32>| Rich {
        action: Some(a),
        reply_to,
        users: vec![bob.id],
        ..Rich::default()
    };
    let created = r.sim.rich_in(
        &group,
        &ann,
        "",
        action(
            tl::types::MessageActionChatCreate {
                title: "Clinic staff".into(),
                users: vec![ann.id],
            }
            .into(),
            None,
        ),
    );
    let added = r.sim.rich_in(
        &group,
        &ann,
        "",
        action(
            tl::types::MessageActionChatAddUser { users: vec![bob.id] }.into(),
            None,
        ),
    );
    let renamed = r.sim.rich_in(
        &group,
        &ann,
        "",
        action(
            tl::types::MessageActionChatEditTitle {
                title: "Clinic team".into(),
            }
            .into(),
            None,
        ),
    );
    let note = r.sim.message_in(&group, &ann, "rota for Monday");
    let pinned = r.sim.rich_in(
        &group,
        &ann,
        "",
        action(tl::enums::MessageAction::PinMessage, Some(note)),
    );
    let left = r.sim.rich_in(
        &group,
        &ann,
        "",
        action(
            tl::types::MessageActionChatDeleteUser { user_id: bob.id }.into(),
            None,
        ),
    );
    let photo = r.sim.rich_in(
        &group,
        &ann,
        "",
        action(tl::enums::MessageAction::ChatDeletePhoto, None),
    );
    let all = r.wait_count(7).await;

    let service = |id| {
        let m = by_id(&all, id);
        assert_eq!(m["kind"], "service", "{m}");
        m["service"].clone()
    };
    assert_eq!(service(created), json!({"event": "chat_created"}));
    assert_eq!(
        service(added),
        json!({"event": "members_joined", "users": [{"id": bob.id, "name": "Bob"}]})
    );
    assert_eq!(
        service(renamed),
        json!({"event": "title_changed", "name": "Clinic team"})
    );
    assert_eq!(service(pinned), json!({"event": "pinned", "message_id": note}));
    assert_eq!(
        by_id(&all, pinned)["reply_to"],
        Value::Null,
        "a pin is not a reply"
    );
    assert_eq!(
        service(left),
        json!({"event": "member_left", "users": [{"id": bob.id, "name": "Bob"}]})
    );
    assert_eq!(service(photo), json!({"event": "delete_chat_photo"}));
    let m = by_id(&all, added);
    assert_eq!(m["sender"]["name"], "Ann", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmappable_media_and_actions_are_rejected_by_kind_without_their_text() {
    const CANARY: &str = "canary-media-7f3a91 do not log";
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    r.sim
        .rich_from(&ann, CANARY, rich(tl::enums::MessageMedia::Unsupported));
    r.sim.rich_from(
        &ann,
        "",
        Rich {
            action: Some(
                tl::types::MessageActionCustomAction {
                    message: CANARY.into(),
                }
                .into(),
            ),
            ..Rich::default()
        },
    );
    let after = r.sim.message_from(&ann, "after the unsupported ones");
    let all = r.wait_count(1).await;
    assert_eq!(by_id(&all, after)["text"], "after the unsupported ones");
    assert_eq!(r.s.store.read(move |s| s.rejected(r.account)).await.unwrap(), 2);
    let log = support::logs::capture("").text();
    assert!(!log.contains("canary-media-7f3a91"), "message text in the log");
    support::canary::assert_absent(r.s.dir.path(), &["canary-media-7f3a91"]);
}

/// The attachment fetcher speaks the Bot API only: a user account's file (an MTProto reference)
/// is refused at once (`failed`), main file and thumbnail, never retried there in a loop, until
/// MTProto downloads exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_account_files_are_refused_by_the_bot_api_fetcher_not_retried() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let id = r
        .sim
        .rich_from(&ann, "scan", rich(media::photo(21, 800, 600, 40_000)));
    let all = r.wait_count(1).await;
    let m = by_id(&all, id);
    let path = format!(
        "/api/v1/chats/{}/messages/{}/attachments",
        m["chat"].as_str().unwrap(),
        m["id"]
    );
    poll::until_ok(WAIT, || async {
        let (st, v) = get(&r.s, &r.root, &path).await;
        assert_eq!(st, 200, "{v}");
        let states: Vec<&Value> = v["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["state"])
            .collect();
        if states.len() == 2 && states.iter().all(|s| *s == "failed") {
            Ok(())
        } else {
            Err(format!("attachments: {v}"))
        }
    })
    .await;
}

/// A basic group's `messageActionChatMigrateTo` is the Bot API's `migrated_to` service message,
/// and the conversation moves into the supergroup as it does for a bot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_moves_the_basic_group_into_its_supergroup() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let group = r.sim.add_chat("Clinic staff", SimChatKind::Group);
    let sgroup = r.sim.add_chat("Clinic staff", SimChatKind::Supergroup);
    let to = -(1_000_000_000_000 + sgroup.id);
    r.sim.message_in(&group, &ann, "before the move");
    r.sim.rich_in(
        &group,
        &ann,
        "",
        Rich {
            action: Some(
                tl::types::MessageActionChatMigrateTo {
                    channel_id: sgroup.id,
                }
                .into(),
            ),
            ..Rich::default()
        },
    );
    let all = poll::until_ok(WAIT, || async {
        let all = r.messages().await;
        let moved = all.iter().filter(|m| m["chat"] == format!("0:{to}")).count();
        if all.len() == 2 && moved == 2 {
            Ok(all)
        } else {
            Err(format!("not moved yet: {all:?}"))
        }
    })
    .await;
    let service = all.iter().find(|m| m["kind"] == "service").unwrap();
    assert_eq!(service["service"], json!({"event": "migrated_to", "chat_id": to}));
}

/// A media message missed while live (not pushed) arrives with its media through
/// `updates.getDifference`, once a later push shows the gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_media_message_arrives_with_its_media_through_the_difference() {
    let r = rig().await;
    let ann = r.sim.add_user("Ann");
    let missed = r
        .sim
        .rich_from_unpushed(&ann, "missed scan", rich(media::photo(31, 640, 480, 20_000)));
    r.sim.message_from(&ann, "after the gap");
    let all = r.wait_count(2).await;
    let m = by_id(&all, missed);
    assert_eq!(
        (&m["kind"], &m["text"]),
        (&json!("image"), &json!("missed scan")),
        "{m}"
    );
    assert_eq!(m["media"]["width"], 640);
}
