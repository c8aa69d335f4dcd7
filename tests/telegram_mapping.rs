//! Telegram update mapping, on the third-party captures in `tests/fixtures/telegram/` (see
//! `ATTRIBUTION.md` there) and on hostile input.
//!
//! Hostile payloads carry [`CANARY`] where message text would be; no error, reason or note may
//! ever repeat it.

mod support;

use lanbox::channels::telegram::map::{MAX_TEXT_BYTES, NOT_STORED, POSTBACK_ID_BASE};
use lanbox::channels::telegram::{Mapped, map_raw, parse_update, split_updates};
use lanbox::ingest::Change;
use lanbox::model::{
    Body, ChatKind, Direction, ForwardOrigin, Media, MediaKind, Message, Reaction, ReactionTally, Sender,
    ServiceEvent, Status,
};
use support::updates::{fixture, fixtures};

/// Stands in for message text in hostile payloads. Upper case and a dash, so it can never pass
/// for a Telegram field name (those are reported by name).
const CANARY: &str = "CANARY-7f3a";

fn map(name: &str) -> Mapped {
    map_raw(1, &fixture(name))
}

/// The single `New` change of a fixture.
fn new_message(name: &str) -> Message {
    match map(name).changes.as_slice() {
        [Change::New(m)] => m.clone(),
        other => panic!("{name}: expected one New, got {other:?}"),
    }
}

fn media(name: &str) -> Media {
    match new_message(name).content.body {
        Body::Media(m) => m,
        other => panic!("{name}: expected media, got {other:?}"),
    }
}

/// Everything the mapper wrote about a payload rather than from it.
fn diagnostics(mapped: &Mapped) -> Vec<String> {
    let mut out = Vec::new();
    for change in &mapped.changes {
        match change {
            Change::New(m) | Change::Edit(m) => {
                out.extend(m.content.notes.iter().cloned());
                if let Body::Unsupported { update_type, reason } = &m.content.body {
                    out.push(update_type.clone());
                    out.push(reason.clone());
                }
            }
            Change::Rejected {
                update_type, reason, ..
            } => {
                out.push(update_type.clone());
                out.push(reason.clone());
            }
            _ => {}
        }
    }
    out
}

fn assert_no_canary(mapped: &Mapped) {
    for d in diagnostics(mapped) {
        assert!(!d.contains(CANARY), "diagnostic repeats payload text: {d}");
    }
}

fn unsupported_reason(mapped: &Mapped) -> String {
    match mapped.changes.as_slice() {
        [Change::New(m)] => match &m.content.body {
            Body::Unsupported { reason, .. } => reason.clone(),
            other => panic!("expected Unsupported, got {other:?}"),
        },
        other => panic!("expected one New, got {other:?}"),
    }
}

#[test]
fn every_fixture_parses_and_maps() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 52, "fixture files missing: {}", fixtures.len());
    for (name, raw) in fixtures {
        if let Err(e) = parse_update(&raw) {
            panic!("{name}: a real capture must parse: {e}");
        }
        let mapped = map_raw(1, &raw);
        assert!(!mapped.changes.is_empty(), "{name}: no change");
        assert!(mapped.update_id.is_some(), "{name}: update_id lost");
    }
}

#[test]
fn private_text() {
    let mapped = map("illemius__private_text");
    assert_eq!(mapped.update_id, Some(128526));
    let m = new_message("illemius__private_text");
    assert_eq!((m.account, m.message_id, m.date), (1, 11223, 1508709711));
    assert_eq!(m.chat.kind, ChatKind::Private);
    assert_eq!(m.chat.id, 12345678);
    assert_eq!(m.chat.title.as_deref(), Some("FirstName LastName"));
    assert_eq!(m.direction, Direction::Incoming);
    assert_eq!(m.status, Status::Delivered);
    assert_eq!((m.topic, m.edited_at), (None, None));
    assert!(matches!(&m.content.sender, Sender::User(u) if u.id == 12345678 && !u.is_bot));
    assert!(matches!(&m.content.body, Body::Text(t) if t.text == "Hi, world!"));
    assert!(m.content.notes.is_empty());
    // 2015 capture: no `is_bot` yet.
    let old = new_message("nadia__private_text_2015");
    assert!(matches!(&old.content.sender, Sender::User(u) if !u.is_bot && u.first_name == "Yu"));
}

#[test]
fn cyrillic_and_emoji_entity_offsets() {
    // The capture "Лол кек 😂" with entities added: UTF-16 offsets, where 😂 counts two units.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("teloxide__private_text_cyrillic_emoji")).unwrap();
    v["message"]["entities"] = serde_json::json!([
        {"type": "bold", "offset": 0, "length": 3},
        {"type": "italic", "offset": 4, "length": 3},
        {"type": "text_link", "offset": 8, "length": 2, "url": "https://example.org/"},
    ]);
    let mapped = map_raw(1, &serde_json::to_vec(&v).unwrap());
    let [Change::New(m)] = mapped.changes.as_slice() else {
        panic!("{mapped:?}")
    };
    let Body::Text(t) = &m.content.body else {
        panic!("{m:?}")
    };
    let slices: Vec<&str> = t
        .entities
        .iter()
        .map(|e| &t.text[e.start as usize..e.end as usize])
        .collect();
    assert_eq!(slices, ["Лол", "кек", "😂"]);
    assert_eq!(t.entities[2].url.as_deref(), Some("https://example.org/"));
    assert!(m.content.notes.is_empty());
    // The caption entity of another capture, ASCII.
    let caption = media("teloxide__private_photo_caption_url_entity")
        .caption
        .unwrap();
    assert_eq!(caption.entities.len(), 1);
    assert_eq!((caption.entities[0].start, caption.entities[0].end), (0, 15));
}

#[test]
fn photo_largest_is_file_smallest_is_thumbnail() {
    let p = media("teloxide__private_photo_3sizes");
    assert_eq!(p.kind, MediaKind::Image);
    assert_eq!((p.file.width, p.file.height), (Some(962), Some(719)));
    assert!(p.file.file_id.ends_with("A3kAAyTcBAABFgQ"));
    assert_eq!(p.file.size, Some(75245));
    let thumb = p.thumbnail.unwrap();
    assert_eq!((thumb.width, thumb.height), (Some(320), Some(239)));

    let p = media("illemius__photo_4sizes_caption");
    assert_eq!(p.file.width, Some(950));
    assert_eq!(p.thumbnail.unwrap().width, Some(90));
    assert_eq!(p.caption.unwrap().text, "photo description");

    // The largest size has no file_size: still the largest, size unknown.
    let p = media("nadia__private_photo_largest_no_file_size");
    assert_eq!((p.file.width, p.file.size), (Some(1090), None));
    assert_eq!(p.thumbnail.unwrap().width, Some(160));
}

#[test]
fn media_group_video() {
    let m = new_message("teloxide__private_video_media_group");
    assert_eq!(m.content.media_group.as_deref(), Some("12543417770506682"));
    let Body::Media(v) = m.content.body else { panic!() };
    assert_eq!(v.kind, MediaKind::Video);
    assert_eq!(v.file.mime_type.as_deref(), Some("video/mp4"));
    assert_eq!(v.file.duration, Some(13));
    assert_eq!(v.thumbnail.unwrap().width, Some(256));
    // Legacy `thumb`.
    let v = media("illemius__video_caption");
    assert_eq!(v.thumbnail.unwrap().width, Some(90));
    assert_eq!(v.caption.unwrap().text, "description");
}

#[test]
fn forward_origin_and_legacy_forward_agree() {
    let new = new_message("teloxide__supergroup_anon_admin_forward_origin");
    let old = new_message("teloxide__supergroup_anon_admin_forward_legacy");
    let expected = ForwardOrigin::Chat {
        chat_id: -1001160242915,
        title: Some("a".into()),
        signature: Some("TITLE".into()),
        date: 1640359544,
    };
    assert_eq!(new.content.forward, Some(expected.clone()));
    assert_eq!(old.content.forward, Some(expected));
    for m in [&new, &old] {
        assert_eq!(
            m.content.sender,
            Sender::AnonymousAdmin {
                chat_id: -1001160242915,
                signature: Some("TITLE2".into())
            }
        );
    }
    let m = new_message("illemius__forward_from_legacy");
    assert!(
        matches!(&m.content.forward, Some(ForwardOrigin::User { user, date: 1508912176 }) if user.id == 12345678)
    );
    let m = new_message("tgbotnet__forward_origin_hidden_user_nulls");
    assert_eq!(
        m.content.forward,
        Some(ForwardOrigin::HiddenUser {
            name: "Test username".into(),
            date: 1526315997
        })
    );
}

#[test]
fn group_migration_both_sides() {
    let to = map("teloxide__group_migrate_to_chat_id");
    let [
        Change::New(old_group),
        Change::Migrate {
            from_group,
            to_supergroup,
            ..
        },
    ] = to.changes.as_slice()
    else {
        panic!("{to:?}")
    };
    assert_eq!(old_group.chat.kind, ChatKind::Group);
    assert_eq!(
        old_group.content.body,
        Body::Service(ServiceEvent::MigratedTo { to: -1001555296434 })
    );
    assert_eq!((*from_group, to_supergroup.id), (-599075523, -1001555296434));
    assert_eq!(to_supergroup.kind, ChatKind::Supergroup);

    let from = map("teloxide__supergroup_migrate_from_chat_id");
    let [
        Change::New(new_group),
        Change::Migrate {
            from_group,
            to_supergroup,
            ..
        },
    ] = from.changes.as_slice()
    else {
        panic!("{from:?}")
    };
    assert_eq!(
        new_group.content.body,
        Body::Service(ServiceEvent::MigratedFrom { from: -599075523 })
    );
    assert_eq!((*from_group, to_supergroup.id), (-599075523, -1001555296434));
    assert!(matches!(new_group.content.sender, Sender::AnonymousAdmin { .. }));
}

#[test]
fn forum_topics() {
    let m = new_message("teloxide__forum_topic_created");
    assert_eq!(m.topic, Some(4));
    assert!(m.chat.is_forum);
    assert_eq!(
        m.content.body,
        Body::Service(ServiceEvent::TopicCreated {
            name: "???".into(),
            icon_color: Some(9367192)
        })
    );
    let m = new_message("teloxide__forum_topic_closed_cyrillic");
    assert_eq!(m.content.body, Body::Service(ServiceEvent::TopicClosed));
    assert!(matches!(&m.content.sender, Sender::User(u) if u.first_name == "Владислав"));
    // A plain message in a topic: Telegram says it replies to the topic's opening message;
    // that is the thread, not a reply.
    let m = new_message("teloxide__forum_topic_text_reply");
    assert_eq!((m.topic, m.content.reply_to), (Some(4), None));
    // Not a forum: message_thread_id is a reply thread, and the reply is real.
    let m = new_message("teloxide__supergroup_reply_thread_command");
    assert_eq!(m.topic, None);
    assert_eq!(m.content.reply_to.map(|r| r.message_id), Some(134545));
    let m = new_message("illemius__reply_to_message");
    assert_eq!(m.content.reply_to.map(|r| r.message_id), Some(12345));
}

#[test]
fn dice_venue_contact_location() {
    let m = new_message("teloxide__supergroup_dice");
    assert_eq!(
        m.content.body,
        Body::Dice {
            emoji: "🎲".into(),
            value: 2
        }
    );
    // The venue wins over the top-level location Telegram sends with it.
    let Body::Venue {
        location,
        title,
        address,
    } = new_message("nadia__private_venue").content.body
    else {
        panic!()
    };
    assert_eq!((title.as_str(), address.as_str()), ("Test", "teststreet"));
    assert_eq!((location.latitude, location.longitude), (1.0, 1.999999));
    let Body::Contact {
        phone, first_name, ..
    } = new_message("nadia__private_contact").content.body
    else {
        panic!()
    };
    assert_eq!((phone.as_str(), first_name.as_str()), ("10123800555", "Test"));
    assert!(matches!(
        new_message("illemius__location").content.body,
        Body::Location(l) if l.latitude == 55.693416
    ));
}

#[test]
fn video_note_voice_audio_document() {
    let v = media("aiogram__private_video_note");
    assert_eq!(v.kind, MediaKind::VideoNote);
    assert_eq!(
        (v.file.width, v.file.height, v.file.duration),
        (Some(240), Some(240), Some(4))
    );
    assert_eq!(v.file.size, Some(186562));
    assert_eq!(v.thumbnail.unwrap().width, Some(90));

    let v = media("illemius__voice");
    assert_eq!(v.kind, MediaKind::Voice);
    assert_eq!(v.file.mime_type.as_deref(), Some("audio/ogg"));
    assert_eq!(v.file.duration, Some(1));

    assert_eq!(media("illemius__audio").kind, MediaKind::Audio);
    let d = media("illemius__document_caption");
    assert_eq!(d.kind, MediaKind::File);
    assert_eq!(d.file.file_name.as_deref(), Some("test.docx"));
    assert_eq!(d.caption.unwrap().text, "doc description");
    // An image sent as a file stays a file.
    assert_eq!(media("nadia__group_document_jpg").kind, MediaKind::File);
}

#[test]
fn stickers() {
    let s = media("teloxide__private_sticker_animated");
    assert_eq!(s.kind, MediaKind::Sticker);
    assert_eq!(s.emoji.as_deref(), Some("😡"));
    assert_eq!(s.title.as_deref(), Some("AdvenTimeAnim"));
    assert_eq!(s.file.mime_type.as_deref(), Some("application/x-tgsticker"));
    assert_eq!(s.thumbnail.unwrap().width, Some(128));
    let s = media("illemius__sticker_static_2017");
    assert_eq!(s.file.mime_type.as_deref(), Some("image/webp"));
    assert!(
        s.thumbnail.unwrap().file_id.starts_with("AAQCABPA"),
        "legacy thumb"
    );
}

#[test]
fn animation_wins_over_its_document() {
    // No real capture of an animation message exists; Telegram sends `animation` and a
    // `document` describing the same file.
    let raw = br#"{"update_id": 1, "message": {"message_id": 9, "date": 5,
        "chat": {"id": 7, "type": "private", "first_name": "A"},
        "animation": {"file_id": "anim", "file_unique_id": "u", "width": 320, "height": 240,
                      "duration": 3, "mime_type": "video/mp4"},
        "document": {"file_id": "anim", "file_unique_id": "u", "mime_type": "video/mp4"},
        "caption": "gif", "has_media_spoiler": true}}"#;
    let mapped = map_raw(1, raw);
    let [Change::New(m)] = mapped.changes.as_slice() else {
        panic!()
    };
    let Body::Media(a) = &m.content.body else { panic!() };
    assert_eq!(a.kind, MediaKind::Animation);
    assert_eq!((a.file.width, a.file.duration), (Some(320), Some(3)));
    assert!(a.spoiler);
    assert_eq!(a.caption.as_ref().unwrap().text, "gif");
}

#[test]
fn edited_message_is_an_edit() {
    let mapped = map("illemius__edited_message");
    let [Change::Edit(m)] = mapped.changes.as_slice() else {
        panic!("{mapped:?}")
    };
    assert_eq!(m.edited_at, Some(1508825379));
    assert_eq!(m.date, 1508825372);
    assert!(matches!(&m.content.body, Body::Text(t) if t.text == "hi there (edited)"));
}

#[test]
fn service_messages() {
    let m = new_message("teloxide__supergroup_pinned_message");
    assert_eq!(
        m.content.body,
        Body::Service(ServiceEvent::Pinned { message_id: 20224 })
    );
    let m = new_message("teloxide__supergroup_video_chat_started");
    assert_eq!(
        m.content.body,
        Body::Service(ServiceEvent::Other("video_chat_started".into()))
    );
}

#[test]
fn callback_queries() {
    let mapped = map("telegram-rs__callback_query_channel_msg");
    let [Change::New(m)] = mapped.changes.as_slice() else {
        panic!("{mapped:?}")
    };
    assert_eq!(
        m.content.body,
        Body::Postback {
            payload: "test".into(),
            origin_message_id: Some(58)
        }
    );
    assert_eq!((m.chat.id, m.chat.kind), (-1001254477603, ChatKind::Channel));
    assert!(matches!(&m.content.sender, Sender::User(u) if u.id == 900963191));
    // Stable across redelivery, and never a real (32-bit) message id.
    assert_eq!(
        m.message_id,
        POSTBACK_ID_BASE | (3869607449858959801 & (POSTBACK_ID_BASE - 1))
    );
    assert!(m.message_id > i64::from(i32::MAX));
    assert_eq!(map("telegram-rs__callback_query_channel_msg"), mapped);

    let inline = map("nonebot__callback_query_inline_message");
    assert_eq!(
        inline.changes,
        [Change::Rejected {
            account: 1,
            update_type: "callback_query".into(),
            reason: "no chat".into()
        }]
    );
}

#[test]
fn empty_message_and_unsupported_content() {
    let m = new_message("teloxide__private_empty_message");
    assert_eq!((m.message_id, m.date), (875400, 0));
    assert_eq!(m.content.sender, Sender::Unknown);
    assert_eq!(
        m.content.body,
        Body::Unsupported {
            update_type: "message".into(),
            reason: "empty message".into()
        }
    );
    assert_eq!(
        unsupported_reason(&map("teloxide__supergroup_story")),
        "unsupported content: story"
    );
    // A channel post: the channel is the sender.
    let m = new_message("teloxide__channel_post_giveaway");
    assert!(matches!(
        m.content.sender,
        Sender::Chat {
            id: -1002236736395,
            ..
        }
    ));
    assert!(
        matches!(m.content.body, Body::Unsupported { ref reason, .. } if reason == "unsupported content: giveaway")
    );
}

#[test]
fn reactions_map_to_reaction_changes() {
    let [
        Change::Reaction {
            chat,
            message_id,
            actor,
            reactions,
            ..
        },
    ] = &map("teloxide__message_reaction_user").changes[..]
    else {
        panic!("one reaction change");
    };
    assert_eq!((chat.id, *message_id, *actor), (-1002184233434, 35, 1459074222));
    assert_eq!(reactions, &[Reaction::Emoji("🌭".into())]);
    // On behalf of a chat, withdrawn: the actor is the chat and the set is empty.
    let [Change::Reaction { actor, reactions, .. }] =
        &map("teloxide__message_reaction_actor_chat_cyrillic").changes[..]
    else {
        panic!("one reaction change");
    };
    assert_eq!(*actor, -1002199793788);
    assert!(reactions.is_empty());
    let [
        Change::ReactionCount {
            chat,
            message_id,
            totals,
            ..
        },
    ] = &map("teloxide__message_reaction_count_channel").changes[..]
    else {
        panic!("one reaction count change");
    };
    assert_eq!((chat.id, *message_id), (-1002236736395, 36));
    assert_eq!(
        totals,
        &[
            ReactionTally {
                reaction: Reaction::Emoji("🗿".into()),
                count: 2
            },
            ReactionTally {
                reaction: Reaction::Emoji("🌭".into()),
                count: 1
            },
        ]
    );
}

#[test]
fn non_message_updates_are_rejected_by_name() {
    for (name, kind) in [
        ("teloxide__my_chat_member_kicked", "my_chat_member"),
        ("tgbotnet__chat_member_kicked_nulls", "chat_member"),
        ("teloxide__chat_boost", "chat_boost"),
        ("teloxide__removed_chat_boost", "removed_chat_boost"),
        ("nonebot__inline_query_numeric_id", "inline_query"),
        ("telegram-rs__inline_query_2017", "inline_query"),
    ] {
        assert_eq!(
            map(name).changes,
            [Change::Rejected {
                account: 1,
                update_type: kind.into(),
                reason: NOT_STORED.into()
            }],
            "{name}"
        );
    }
    let unknown = map_raw(1, br#"{"update_id": 3, "some_future_update": {"x": 1}}"#);
    assert!(
        matches!(&unknown.changes[..], [Change::Rejected { update_type, .. }] if update_type == "some_future_update")
    );
    let nothing = map_raw(1, br#"{"update_id": 4}"#);
    assert!(matches!(&nothing.changes[..], [Change::Rejected { .. }]));
    assert_eq!(nothing.update_id, Some(4));
}

#[test]
fn business_deletions_and_new_content_types() {
    let raw = br#"{"update_id": 5, "deleted_business_messages": {"business_connection_id": "b",
        "chat": {"id": 42, "type": "private", "first_name": "A"}, "message_ids": [3, 4]}}"#;
    let mapped = map_raw(1, raw);
    assert!(matches!(&mapped.changes[..],
        [Change::Delete { chat, message_ids, .. }] if chat.id == 42 && message_ids == &[3, 4]));
    // A content type newer than the parser is named, not dropped.
    let raw = br#"{"update_id": 6, "business_message": {"message_id": 2, "date": 1,
        "chat": {"id": 42, "type": "private"}, "checklist": {"title": "x"},
        "reply_markup": {}}}"#;
    assert_eq!(
        unsupported_reason(&map_raw(1, raw)),
        "unsupported content: checklist"
    );
}

#[path = "telegram_mapping/hostile.rs"]
mod hostile;
