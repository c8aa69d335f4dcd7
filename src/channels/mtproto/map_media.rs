//! The media of an MTProto message (`messageMedia*`) as the model's [`Body`], the same variants
//! the Bot API path produces: photos, documents (files, audio, voice, video, video notes,
//! animations, stickers: what a `document`'s attributes say it is), polls, locations, venues,
//! contacts and dice. Link previews (`messageMediaWebPage`) leave the message a text message.
//!
//! # File references
//!
//! An [`Attachment`]'s `file_id` for a user account's file is a string of this module's
//! design, holding what `upload.getFile` needs to build its `InputFileLocation`:
//!
//! ```text
//! mtproto:1:photo:<dc_id>:<id>:<access_hash>:<file_reference as lowercase hex>:<size type>
//! mtproto:1:document:<dc_id>:<id>:<access_hash>:<file_reference as lowercase hex>:<thumb size type or empty>
//! ```
//!
//! `id`, `access_hash` and `dc_id` are decimal (signed, as in the TL types). A photo names the
//! size it stands for (`inputPhotoFileLocation.thumb_size`: the largest for the main file,
//! the smallest for the thumbnail); a document's main file has an empty size type, its
//! thumbnail the thumbnail's type (`inputDocumentFileLocation.thumb_size`). A file reference
//! expires: the download refreshes it by fetching the message again. `file_unique_id` is
//! `mtproto:photo:<id>:<size type>` or `mtproto:document:<id>[:<thumb size type>]`: the same
//! for every account that sees the file. The Bot API's own file IDs never start with
//! `mtproto:` ([`is_user_file`]).

use grammers_tl_types as tl;

use crate::model::{Attachment, Body, Location, Media, MediaKind, PollOption, Text};

/// The prefix of every user-account file reference.
pub const FILE_PREFIX: &str = "mtproto:";

/// Whether `file_id` is a user account's file reference (see the module documentation).
pub fn is_user_file(file_id: &str) -> bool {
    file_id.starts_with(FILE_PREFIX)
}

/// What a message's media becomes. Not boxed: one lives at a time, and is moved into the
/// message right away (as [`Body`] itself is not boxed).
#[allow(clippy::large_enum_variant)]
pub enum Mapped {
    /// No media worth a body of its own (none, or a link preview): the message is its text.
    Text,
    Body(Body),
    /// A kind lanbox does not store: its TL name, never its content.
    Unsupported(&'static str),
}

/// The body of `media`, with `caption` (the message's text, empty when there is none).
pub fn body(media: &tl::enums::MessageMedia, caption: Option<Text>) -> Mapped {
    use tl::enums::MessageMedia as M;
    match media {
        M::Empty | M::WebPage(_) => Mapped::Text,
        M::Photo(p) => match p.photo.as_ref().and_then(photo) {
            Some((file, thumbnail)) => Mapped::Body(Body::Media(Media {
                spoiler: p.spoiler,
                caption,
                ..media_of(MediaKind::Image, file, thumbnail)
            })),
            // An expired self-destructing photo has none left.
            None => Mapped::Unsupported("messageMediaPhoto"),
        },
        M::Document(d) => match &d.document {
            Some(tl::enums::Document::Document(doc)) => {
                let mut m = document(doc, d.round, d.voice);
                m.spoiler = d.spoiler;
                m.caption = caption;
                Mapped::Body(Body::Media(m))
            }
            _ => Mapped::Unsupported("messageMediaDocument"),
        },
        M::Geo(g) => match location(&g.geo, None) {
            Some(l) => Mapped::Body(Body::Location(l)),
            None => Mapped::Unsupported("messageMediaGeo"),
        },
        M::GeoLive(g) => match location(&g.geo, u32::try_from(g.period).ok()) {
            Some(l) => Mapped::Body(Body::Location(l)),
            None => Mapped::Unsupported("messageMediaGeoLive"),
        },
        M::Venue(v) => match location(&v.geo, None) {
            Some(location) => Mapped::Body(Body::Venue {
                location,
                title: v.title.clone(),
                address: v.address.clone(),
            }),
            None => Mapped::Unsupported("messageMediaVenue"),
        },
        M::Contact(c) => Mapped::Body(Body::Contact {
            phone: c.phone_number.clone(),
            first_name: c.first_name.clone(),
            last_name: Some(c.last_name.clone()).filter(|l| !l.is_empty()),
            user_id: Some(c.user_id).filter(|&id| id != 0),
            vcard: Some(c.vcard.clone()).filter(|v| !v.is_empty()),
        }),
        M::Poll(p) => Mapped::Body(poll(p)),
        M::Dice(d) => Mapped::Body(Body::Dice {
            emoji: d.emoticon.clone(),
            value: u32::try_from(d.value).unwrap_or(0),
        }),
        M::Unsupported => Mapped::Unsupported("messageMediaUnsupported"),
        M::Game(_) => Mapped::Unsupported("messageMediaGame"),
        M::Invoice(_) => Mapped::Unsupported("messageMediaInvoice"),
        M::Story(_) => Mapped::Unsupported("messageMediaStory"),
        M::Giveaway(_) => Mapped::Unsupported("messageMediaGiveaway"),
        M::GiveawayResults(_) => Mapped::Unsupported("messageMediaGiveawayResults"),
        M::PaidMedia(_) => Mapped::Unsupported("messageMediaPaidMedia"),
        M::ToDo(_) => Mapped::Unsupported("messageMediaToDo"),
        M::VideoStream(_) => Mapped::Unsupported("messageMediaVideoStream"),
    }
}

fn media_of(kind: MediaKind, file: Attachment, thumbnail: Option<Attachment>) -> Media {
    Media {
        kind,
        file,
        thumbnail,
        caption: None,
        title: None,
        performer: None,
        emoji: None,
        spoiler: false,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A photo size with its dimensions and byte count (sizes with no file of their own, the
/// stripped, cached and path ones, are left out).
fn sized(s: &tl::enums::PhotoSize) -> Option<(&str, i32, i32, i32)> {
    match s {
        tl::enums::PhotoSize::Size(s) => Some((s.r#type.as_str(), s.w, s.h, s.size)),
        tl::enums::PhotoSize::Progressive(s) => Some((
            s.r#type.as_str(),
            s.w,
            s.h,
            s.sizes.iter().copied().max().unwrap_or(0),
        )),
        _ => None,
    }
}

fn dims(w: i32, h: i32) -> (Option<u32>, Option<u32>) {
    (u32::try_from(w).ok(), u32::try_from(h).ok())
}

/// The largest size of a photo as the file, its smallest as the thumbnail (when there are two).
fn photo(p: &tl::enums::Photo) -> Option<(Attachment, Option<Attachment>)> {
    let tl::enums::Photo::Photo(p) = p else {
        return None;
    };
    let sizes: Vec<_> = p.sizes.iter().filter_map(sized).collect();
    let area = |s: &&(&str, i32, i32, i32)| i64::from(s.1) * i64::from(s.2);
    let largest = sizes.iter().max_by_key(area)?;
    let smallest = sizes.iter().min_by_key(area)?;
    let reference = hex(&p.file_reference);
    let at = |&(kind, w, h, size): &(&str, i32, i32, i32)| {
        let (width, height) = dims(w, h);
        Attachment {
            file_id: format!(
                "{FILE_PREFIX}1:photo:{}:{}:{}:{reference}:{kind}",
                p.dc_id, p.id, p.access_hash
            ),
            file_unique_id: format!("{FILE_PREFIX}photo:{}:{kind}", p.id),
            size: u64::try_from(size).ok().filter(|&s| s > 0),
            width,
            height,
            ..Attachment::default()
        }
    };
    let thumbnail = (largest.0 != smallest.0).then(|| at(smallest));
    Some((at(largest), thumbnail))
}

fn document_ref(d: &tl::types::Document, thumb: &str) -> (String, String) {
    let id = format!(
        "{FILE_PREFIX}1:document:{}:{}:{}:{}:{thumb}",
        d.dc_id,
        d.id,
        d.access_hash,
        hex(&d.file_reference)
    );
    let unique = if thumb.is_empty() {
        format!("{FILE_PREFIX}document:{}", d.id)
    } else {
        format!("{FILE_PREFIX}document:{}:{thumb}", d.id)
    };
    (id, unique)
}

/// A document as the media kind its attributes make it (as Bot API clients tell them apart).
fn document(d: &tl::types::Document, round: bool, voice: bool) -> Media {
    use tl::enums::DocumentAttribute as A;
    let (file_id, file_unique_id) = document_ref(d, "");
    let mut file = Attachment {
        file_id,
        file_unique_id,
        mime_type: Some(d.mime_type.clone()).filter(|m| !m.is_empty()),
        size: u64::try_from(d.size).ok(),
        ..Attachment::default()
    };
    let (mut sticker, mut animated, mut video, mut audio) = (None, false, None, None);
    for a in &d.attributes {
        match a {
            A::Filename(f) => file.file_name = Some(f.file_name.clone()),
            A::ImageSize(s) => (file.width, file.height) = dims(s.w, s.h),
            A::Animated => animated = true,
            A::Sticker(s) => sticker = Some(s),
            A::Video(v) => video = Some(v),
            A::Audio(a) => audio = Some(a),
            _ => {}
        }
    }
    if let Some(v) = video {
        (file.width, file.height) = dims(v.w, v.h);
        file.duration = Some(v.duration.max(0.0).round() as u32);
    }
    if let Some(a) = audio {
        file.duration = u32::try_from(a.duration).ok();
    }
    let thumbnail = d
        .thumbs
        .iter()
        .flatten()
        .filter_map(sized)
        .min_by_key(|s| i64::from(s.1) * i64::from(s.2))
        .map(|(kind, w, h, size)| {
            let (file_id, file_unique_id) = document_ref(d, kind);
            let (width, height) = dims(w, h);
            Attachment {
                file_id,
                file_unique_id,
                size: u64::try_from(size).ok().filter(|&s| s > 0),
                width,
                height,
                ..Attachment::default()
            }
        });
    if let Some(s) = sticker {
        let mut m = media_of(MediaKind::Sticker, file, thumbnail);
        m.emoji = Some(s.alt.clone()).filter(|e| !e.is_empty());
        if let tl::enums::InputStickerSet::ShortName(n) = &s.stickerset {
            m.title = Some(n.short_name.clone());
        }
        return m;
    }
    if let Some(v) = video {
        let kind = if v.round_message || round {
            MediaKind::VideoNote
        } else if animated {
            MediaKind::Animation
        } else {
            MediaKind::Video
        };
        return media_of(kind, file, thumbnail);
    }
    if animated {
        return media_of(MediaKind::Animation, file, thumbnail);
    }
    if let Some(a) = audio {
        if a.voice || voice {
            return media_of(MediaKind::Voice, file, None);
        }
        let mut m = media_of(MediaKind::Audio, file, thumbnail);
        m.title = a.title.clone();
        m.performer = a.performer.clone();
        return m;
    }
    media_of(MediaKind::File, file, thumbnail)
}

fn location(g: &tl::enums::GeoPoint, live_period_s: Option<u32>) -> Option<Location> {
    let tl::enums::GeoPoint::Point(g) = g else {
        return None;
    };
    Some(Location {
        latitude: g.lat,
        longitude: g.long,
        accuracy_m: g.accuracy_radius.map(f64::from),
        live_period_s,
    })
}

fn poll(p: &tl::types::MessageMediaPoll) -> Body {
    let tl::enums::Poll::Poll(poll) = &p.poll;
    let tl::enums::PollResults::Results(results) = &p.results;
    let votes = |option: &[u8]| {
        results
            .results
            .iter()
            .flatten()
            .find_map(|r| {
                let tl::enums::PollAnswerVoters::Voters(r) = r;
                (r.option == option).then_some(r.voters)
            })
            .flatten()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    let text = |t: &tl::enums::TextWithEntities| {
        let tl::enums::TextWithEntities::Entities(t) = t;
        t.text.clone()
    };
    Body::Poll {
        question: text(&poll.question),
        options: poll
            .answers
            .iter()
            .filter_map(|a| match a {
                tl::enums::PollAnswer::Answer(a) => Some(PollOption {
                    text: text(&a.text),
                    votes: votes(&a.option),
                }),
                tl::enums::PollAnswer::InputPollAnswer(_) => None,
            })
            .collect(),
        total_voters: results
            .total_voters
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0),
        anonymous: !poll.public_voters,
        quiz: poll.quiz,
        multiple_answers: poll.multiple_choice,
        closed: poll.closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_references_are_recognised_and_hex_is_lowercase() {
        assert!(is_user_file("mtproto:1:photo:2:3:4:ab:y"));
        assert!(!is_user_file("AgACAgIAAxkBAAIB"));
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }

    fn size(kind: &str, w: i32, h: i32, size: i32) -> tl::enums::PhotoSize {
        tl::types::PhotoSize {
            r#type: kind.into(),
            w,
            h,
            size,
        }
        .into()
    }

    #[test]
    fn a_photo_names_its_largest_size_and_its_smallest_as_the_thumbnail() {
        let p: tl::enums::Photo = tl::types::Photo {
            has_stickers: false,
            id: 42,
            access_hash: -7,
            file_reference: vec![0x0f, 0xa0],
            date: 1,
            sizes: vec![
                size("y", 1280, 960, 90_000),
                size("s", 90, 67, 800),
                size("m", 320, 240, 9_000),
            ],
            video_sizes: None,
            dc_id: 4,
        }
        .into();
        let (file, thumb) = photo(&p).unwrap();
        assert_eq!(file.file_id, "mtproto:1:photo:4:42:-7:0fa0:y");
        assert_eq!(file.file_unique_id, "mtproto:photo:42:y");
        assert_eq!(
            (file.width, file.height, file.size),
            (Some(1280), Some(960), Some(90_000))
        );
        let thumb = thumb.unwrap();
        assert_eq!(thumb.file_id, "mtproto:1:photo:4:42:-7:0fa0:s");
        assert!(is_user_file(&thumb.file_id));
    }

    #[test]
    fn a_document_names_itself_and_its_thumbnail_by_size_type() {
        let d = tl::types::Document {
            id: 9,
            access_hash: 8,
            file_reference: vec![1],
            date: 1,
            mime_type: "application/pdf".into(),
            size: 5,
            thumbs: Some(vec![size("s", 90, 90, 100)]),
            video_thumbs: None,
            dc_id: 2,
            attributes: vec![
                tl::types::DocumentAttributeFilename {
                    file_name: "a.pdf".into(),
                }
                .into(),
            ],
        };
        let m = document(&d, false, false);
        assert_eq!(m.kind, MediaKind::File);
        assert_eq!(m.file.file_id, "mtproto:1:document:2:9:8:01:");
        assert_eq!(m.file.file_unique_id, "mtproto:document:9");
        assert_eq!(m.file.file_name.as_deref(), Some("a.pdf"));
        assert_eq!(m.thumbnail.unwrap().file_id, "mtproto:1:document:2:9:8:01:s");
    }
}
