//! Messages with more than text: media, a reply, a forward, an album, or a service action.
//!
//! A [`Rich`] rides on the logged step, so the message carries it wherever it is built (a
//! push, a difference, an edit). The builders make the TL objects Telegram sends (photos with
//! two sizes, documents with the attributes of each kind, polls, places, contacts); the file
//! references and access hashes are made up, as nothing downloads them yet.

use std::sync::Arc;

use grammers_tl_types as tl;

pub use super::rich::Rich;
use super::world::{Logged, SimChat, SimChatKind};
use super::{MtSimulator, SimUser, tl_build};

impl MtSimulator {
    /// `from` writes to the account: `text` (a caption, with media) plus `rich`; the message ID.
    /// Pushed as an `updates` with `updateNewMessage` (Telegram has no short form for media).
    pub fn rich_from(&self, from: &SimUser, text: &str, rich: Rich) -> i32 {
        self.rich_step(None, from.id, false, text, rich)
            .expect("a private message")
            .message_id
    }

    /// `from` writes in `chat` (a channel's post when `chat` is a broadcast channel).
    pub fn rich_in(&self, chat: &SimChat, from: &SimUser, text: &str, rich: Rich) -> i32 {
        let from = if chat.kind == SimChatKind::Channel {
            0
        } else {
            from.id
        };
        self.rich_step(Some(chat.id), from, false, text, rich)
            .expect("the account is in the chat")
            .message_id
    }

    /// Like [`MtSimulator::rich_from`], but not pushed: the client gets it only through
    /// `updates.getDifference`, which carries the media as well.
    pub fn rich_from_unpushed(&self, from: &SimUser, text: &str, rich: Rich) -> i32 {
        let mut w = self.shared.lock();
        let e = w.append_common(None, from.id, false, text);
        if let Some(last) = w.log.back_mut() {
            last.rich = Some(Arc::new(rich));
        }
        e.message_id
    }

    fn rich_step(&self, chat: Option<i64>, from: i64, out: bool, text: &str, rich: Rich) -> Option<Logged> {
        let mut w = self.shared.lock();
        let rich = Arc::new(rich);
        let channel = chat
            .and_then(|id| w.chats.get(&id))
            .is_some_and(|c| c.is_channel());
        let mut e = match chat {
            Some(id) => w.append_chat_message(id, from, out, text)?,
            None => w.append_common(None, from, out, text),
        };
        e.rich = Some(rich.clone());
        // The step is logged already; it gets its rich part where it lies.
        let log = if channel { &mut w.channel_log } else { &mut w.log };
        if let Some(last) = log.back_mut() {
            last.rich = Some(rich.clone());
        }
        let (mut users, chats) = tl_build::peers_of(&w, [&e]);
        for id in &rich.users {
            if let Some(u) = w.users.get(id)
                && !users.iter().any(|x| x.id() == *id)
            {
                users.push(tl_build::user(u, false));
            }
        }
        let sim_chat = chat.and_then(|id| w.chats.get(&id));
        let push = tl::types::Updates {
            updates: vec![tl_build::update(&e, w.me.id, sim_chat)],
            users,
            chats,
            date: e.date,
            seq: w.seq,
        };
        let _ = self.pushes.send(Arc::new(push.into()));
        Some(e)
    }
}

/// A photo with two sizes, `m` (320 wide) and `y` (`w` × `h`, `size` bytes).
pub fn photo(id: i64, w: i32, h: i32, size: i32) -> tl::enums::MessageMedia {
    tl::types::MessageMediaPhoto {
        spoiler: false,
        live_photo: false,
        photo: Some(
            tl::types::Photo {
                has_stickers: false,
                id,
                access_hash: id ^ 0x5a5a,
                file_reference: vec![1, 2, 3, 0xfe],
                date: 1,
                sizes: vec![
                    tl::types::PhotoStrippedSize {
                        r#type: "i".into(),
                        bytes: vec![1, 2],
                    }
                    .into(),
                    tl::types::PhotoSize {
                        r#type: "m".into(),
                        w: 320,
                        h: 240,
                        size: 9_000,
                    }
                    .into(),
                    tl::types::PhotoSize {
                        r#type: "y".into(),
                        w,
                        h,
                        size,
                    }
                    .into(),
                ],
                video_sizes: None,
                dc_id: 2,
            }
            .into(),
        ),
        ttl_seconds: None,
        video: None,
    }
    .into()
}

/// A document of `mime`, `size` bytes, with `attributes` (`round` and `voice` set the media's
/// flags as Telegram does for video notes and voice notes) and a 90×90 thumbnail `s`.
pub fn document(
    id: i64,
    mime: &str,
    size: i64,
    attributes: Vec<tl::enums::DocumentAttribute>,
    round: bool,
    voice: bool,
) -> tl::enums::MessageMedia {
    tl::types::MessageMediaDocument {
        nopremium: false,
        spoiler: false,
        video: false,
        round,
        voice,
        document: Some(
            tl::types::Document {
                id,
                access_hash: id ^ 0x5a5a,
                file_reference: vec![9, 8, 7],
                date: 1,
                mime_type: mime.into(),
                size,
                thumbs: (!voice).then(|| {
                    vec![
                        tl::types::PhotoSize {
                            r#type: "s".into(),
                            w: 90,
                            h: 90,
                            size: 1_000,
                        }
                        .into(),
                    ]
                }),
                video_thumbs: None,
                dc_id: 2,
                attributes,
            }
            .into(),
        ),
        alt_documents: None,
        video_cover: None,
        video_timestamp: None,
        ttl_seconds: None,
    }
    .into()
}

pub fn file_name(name: &str) -> tl::enums::DocumentAttribute {
    tl::types::DocumentAttributeFilename {
        file_name: name.into(),
    }
    .into()
}

pub fn video_attr(w: i32, h: i32, duration: f64, round: bool) -> tl::enums::DocumentAttribute {
    tl::types::DocumentAttributeVideo {
        round_message: round,
        supports_streaming: true,
        nosound: false,
        duration,
        w,
        h,
        preload_prefix_size: None,
        video_start_ts: None,
        video_codec: None,
    }
    .into()
}

pub fn audio_attr(
    duration: i32,
    voice: bool,
    title: Option<&str>,
    performer: Option<&str>,
) -> tl::enums::DocumentAttribute {
    tl::types::DocumentAttributeAudio {
        voice,
        duration,
        title: title.map(str::to_string),
        performer: performer.map(str::to_string),
        waveform: None,
    }
    .into()
}

pub fn sticker_attr(emoji: &str, set: &str) -> tl::enums::DocumentAttribute {
    tl::types::DocumentAttributeSticker {
        mask: false,
        alt: emoji.into(),
        stickerset: tl::types::InputStickerSetShortName {
            short_name: set.into(),
        }
        .into(),
        mask_coords: None,
    }
    .into()
}

pub fn image_size(w: i32, h: i32) -> tl::enums::DocumentAttribute {
    tl::types::DocumentAttributeImageSize { w, h }.into()
}

pub fn animated() -> tl::enums::DocumentAttribute {
    tl::enums::DocumentAttribute::Animated
}

fn geo(lat: f64, long: f64) -> tl::enums::GeoPoint {
    tl::types::GeoPoint {
        long,
        lat,
        access_hash: 1,
        accuracy_radius: Some(15),
    }
    .into()
}

pub fn location(lat: f64, long: f64) -> tl::enums::MessageMedia {
    tl::types::MessageMediaGeo { geo: geo(lat, long) }.into()
}

pub fn venue(lat: f64, long: f64, title: &str, address: &str) -> tl::enums::MessageMedia {
    tl::types::MessageMediaVenue {
        geo: geo(lat, long),
        title: title.into(),
        address: address.into(),
        provider: "foursquare".into(),
        venue_id: "v1".into(),
        venue_type: String::new(),
    }
    .into()
}

pub fn contact(phone: &str, first_name: &str, last_name: &str, user_id: i64) -> tl::enums::MessageMedia {
    tl::types::MessageMediaContact {
        phone_number: phone.into(),
        first_name: first_name.into(),
        last_name: last_name.into(),
        vcard: String::new(),
        user_id,
    }
    .into()
}

fn twe(text: &str) -> tl::enums::TextWithEntities {
    tl::types::TextWithEntities {
        text: text.into(),
        entities: Vec::new(),
    }
    .into()
}

/// An anonymous single-choice poll; `votes[i]` voters chose option `i`.
pub fn poll(question: &str, options: &[(&str, i32)]) -> tl::enums::MessageMedia {
    let total: i32 = options.iter().map(|o| o.1).sum();
    tl::types::MessageMediaPoll {
        poll: tl::types::Poll {
            id: 77,
            closed: false,
            public_voters: false,
            multiple_choice: false,
            quiz: false,
            open_answers: false,
            revoting_disabled: false,
            shuffle_answers: false,
            hide_results_until_close: false,
            creator: false,
            subscribers_only: false,
            question: twe(question),
            answers: options
                .iter()
                .enumerate()
                .map(|(i, (text, _))| {
                    tl::types::PollAnswer {
                        text: twe(text),
                        option: vec![i as u8],
                        media: None,
                        added_by: None,
                        date: None,
                    }
                    .into()
                })
                .collect(),
            close_period: None,
            close_date: None,
            countries_iso2: None,
            hash: 0,
        }
        .into(),
        results: tl::types::PollResults {
            min: false,
            has_unread_votes: false,
            can_view_stats: false,
            results: Some(
                options
                    .iter()
                    .enumerate()
                    .map(|(i, (_, votes))| {
                        tl::types::PollAnswerVoters {
                            chosen: false,
                            correct: false,
                            option: vec![i as u8],
                            voters: Some(*votes),
                            // Shares its flag with `voters`: both are sent, or neither.
                            recent_voters: Some(Vec::new()),
                        }
                        .into()
                    })
                    .collect(),
            ),
            total_voters: Some(total),
            recent_voters: None,
            solution: None,
            solution_entities: None,
            solution_media: None,
        }
        .into(),
        attached_media: None,
    }
    .into()
}

/// A forward header naming `user` as the origin.
pub fn forwarded_from(user: &SimUser, date: i32) -> tl::enums::MessageFwdHeader {
    tl::types::MessageFwdHeader {
        imported: false,
        saved_out: false,
        from_id: Some(tl::types::PeerUser { user_id: user.id }.into()),
        from_name: None,
        date,
        channel_post: None,
        post_author: None,
        saved_from_peer: None,
        saved_from_msg_id: None,
        saved_from_id: None,
        saved_from_name: None,
        saved_date: None,
        psa_type: None,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use grammers_tl_types::{Deserializable, Serializable};

    use super::*;

    #[test]
    fn built_media_survive_the_wire() {
        for m in [
            poll("q", &[("a", 1), ("b", 2)]),
            location(1.0, 2.0),
            venue(1.0, 2.0, "t", "a"),
            contact("1", "f", "l", 0),
            photo(1, 2, 3, 4),
        ] {
            let bytes = m.to_bytes();
            let back = tl::enums::MessageMedia::from_bytes(&bytes);
            assert!(back.is_ok(), "{m:?}: {back:?}");
        }
    }
}
