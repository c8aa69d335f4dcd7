//! What a Telegram message says, as a normalised [`Body`]. Part of the mapper ([`super::map`]).
//!
//! Precedence follows what Telegram sends together: text first; `animation` over the `document`
//! Telegram sends with it; `venue` over its accompanying `location`; then the other kinds,
//! service messages, and finally content lanbox cannot show yet, as [`Body::Unsupported`].

use crate::model::text::utf16_range_to_utf8;
use crate::model::{
    Attachment, Body, Entity, Location, Media, MediaKind, PollOption, ServiceEvent, Text, UserRef,
};

use super::wire::{self, PhotoSize};

/// Longest message text accepted, in UTF-8 bytes (Telegram's own limit is 4096 characters).
pub const MAX_TEXT_BYTES: usize = 65_536;
/// Longest caption accepted, in UTF-8 bytes (Telegram: 1024 characters, 4096 for premium).
pub const MAX_CAPTION_BYTES: usize = 16_384;
/// Most entities accepted on a text or a caption.
pub const MAX_ENTITIES: usize = 1_000;

pub(super) fn body(kind: &str, m: &wire::Message, notes: &mut Vec<String>) -> Body {
    let unsupported = |reason: &str| Body::Unsupported {
        update_type: kind.to_owned(),
        reason: reason.to_owned(),
    };
    if m.text.as_ref().is_some_and(|t| t.len() > MAX_TEXT_BYTES) {
        return unsupported("text too long");
    }
    if m.caption.as_ref().is_some_and(|c| c.len() > MAX_CAPTION_BYTES) {
        return unsupported("caption too long");
    }
    if m.entities.len() > MAX_ENTITIES || m.caption_entities.len() > MAX_ENTITIES {
        return unsupported("too many entities");
    }
    if let Some(text) = &m.text {
        return Body::Text(text_with_entities(text, &m.entities, "text", notes));
    }
    if m.photo.as_ref().is_some_and(Vec::is_empty) {
        return unsupported("photo without sizes");
    }
    if let Some(mut media) = media_of(m) {
        media.caption = m
            .caption
            .as_ref()
            .map(|c| text_with_entities(c, &m.caption_entities, "caption", notes));
        media.spoiler = m.has_media_spoiler;
        return Body::Media(media);
    }
    if let Some(v) = &m.venue {
        return Body::Venue {
            location: location(&v.location),
            title: v.title.clone(),
            address: v.address.clone(),
        };
    }
    if let Some(l) = &m.location {
        return Body::Location(location(l));
    }
    if let Some(c) = &m.contact {
        return Body::Contact {
            phone: c.phone_number.clone(),
            first_name: c.first_name.clone(),
            last_name: c.last_name.clone(),
            user_id: c.user_id,
            vcard: c.vcard.clone(),
        };
    }
    if let Some(p) = &m.poll {
        return Body::Poll {
            question: p.question.clone(),
            options: poll_options(p),
            total_voters: p.total_voter_count,
            anonymous: p.is_anonymous,
            quiz: p.kind.as_deref() == Some("quiz"),
            multiple_answers: p.allows_multiple_answers,
            closed: p.is_closed,
        };
    }
    if let Some(d) = &m.dice {
        return Body::Dice {
            emoji: d.emoji.clone(),
            value: d.value,
        };
    }
    if let Some(w) = &m.web_app_data {
        return Body::InteractiveReply {
            text: w.button_text.clone(),
            payload: w.data.clone(),
        };
    }
    if let Some(event) = service(m) {
        return Body::Service(event);
    }
    match m.unsupported_content() {
        Some(name) => unsupported(&format!("unsupported content: {name}")),
        None => unsupported("empty message"),
    }
}

fn thumb(current: &Option<PhotoSize>, legacy: &Option<PhotoSize>) -> Option<Attachment> {
    current.as_ref().or(legacy.as_ref()).map(photo_attachment)
}

fn file(file_id: &str, file_unique_id: &str, size: Option<u64>) -> Attachment {
    Attachment {
        file_id: file_id.to_owned(),
        file_unique_id: file_unique_id.to_owned(),
        size,
        ..Attachment::default()
    }
}

/// The media of a message, without its caption.
fn media_of(m: &wire::Message) -> Option<Media> {
    if let Some(a) = &m.animation {
        let mut f = file(&a.file_id, &a.file_unique_id, a.file_size);
        f.file_name = a.file_name.clone();
        f.mime_type = a.mime_type.clone();
        (f.width, f.height, f.duration) = (a.width, a.height, a.duration);
        return Some(media(MediaKind::Animation, f, thumb(&a.thumbnail, &a.thumb)));
    }
    if let Some(sizes) = m.photo.as_deref().filter(|s| !s.is_empty()) {
        // Telegram lists sizes smallest first, but old captures do not promise it: compare.
        let largest = sizes.iter().max_by_key(|p| p.area_key())?;
        let smallest = sizes.iter().min_by_key(|p| p.area_key())?;
        let thumbnail = (!std::ptr::eq(largest, smallest)).then(|| photo_attachment(smallest));
        return Some(media(MediaKind::Image, photo_attachment(largest), thumbnail));
    }
    if let Some(v) = &m.video {
        let mut f = file(&v.file_id, &v.file_unique_id, v.file_size);
        f.file_name = v.file_name.clone();
        f.mime_type = v.mime_type.clone();
        (f.width, f.height, f.duration) = (v.width, v.height, v.duration);
        return Some(media(MediaKind::Video, f, thumb(&v.thumbnail, &v.thumb)));
    }
    if let Some(v) = &m.video_note {
        let mut f = file(&v.file_id, &v.file_unique_id, v.file_size);
        (f.width, f.height, f.duration) = (v.length, v.length, v.duration);
        return Some(media(MediaKind::VideoNote, f, thumb(&v.thumbnail, &v.thumb)));
    }
    if let Some(v) = &m.voice {
        let mut f = file(&v.file_id, &v.file_unique_id, v.file_size);
        f.mime_type = v.mime_type.clone();
        f.duration = v.duration;
        return Some(media(MediaKind::Voice, f, None));
    }
    if let Some(a) = &m.audio {
        let mut f = file(&a.file_id, &a.file_unique_id, a.file_size);
        f.file_name = a.file_name.clone();
        f.mime_type = a.mime_type.clone();
        f.duration = a.duration;
        let mut out = media(MediaKind::Audio, f, thumb(&a.thumbnail, &a.thumb));
        out.title = a.title.clone();
        out.performer = a.performer.clone();
        return Some(out);
    }
    if let Some(d) = &m.document {
        let mut f = file(&d.file_id, &d.file_unique_id, d.file_size);
        f.file_name = d.file_name.clone();
        f.mime_type = d.mime_type.clone();
        return Some(media(MediaKind::File, f, thumb(&d.thumbnail, &d.thumb)));
    }
    if let Some(s) = &m.sticker {
        let mut f = file(&s.file_id, &s.file_unique_id, s.file_size);
        // Telegram gives no MIME type for stickers; their format follows from the flags.
        f.mime_type = Some(
            match (s.is_animated, s.is_video) {
                (true, _) => "application/x-tgsticker",
                (false, true) => "video/webm",
                (false, false) => "image/webp",
            }
            .to_owned(),
        );
        (f.width, f.height) = (s.width, s.height);
        let mut out = media(MediaKind::Sticker, f, thumb(&s.thumbnail, &s.thumb));
        out.emoji = s.emoji.clone();
        out.title = s.set_name.clone();
        return Some(out);
    }
    None
}

fn service(m: &wire::Message) -> Option<ServiceEvent> {
    if let Some(users) = &m.new_chat_members {
        return Some(members_joined(users));
    }
    if let Some(u) = &m.left_chat_member {
        return Some(ServiceEvent::MemberLeft(user(u)));
    }
    if let Some(p) = &m.pinned_message {
        return Some(ServiceEvent::Pinned {
            message_id: p.message_id,
        });
    }
    if let Some(t) = &m.forum_topic_created {
        return Some(ServiceEvent::TopicCreated {
            name: t.name.clone(),
            icon_color: t.icon_color,
        });
    }
    if let Some(t) = &m.forum_topic_edited {
        return Some(ServiceEvent::TopicEdited { name: t.name.clone() });
    }
    if m.forum_topic_closed.is_some() {
        return Some(ServiceEvent::TopicClosed);
    }
    if m.forum_topic_reopened.is_some() {
        return Some(ServiceEvent::TopicReopened);
    }
    if let Some(to) = m.migrate_to_chat_id {
        return Some(ServiceEvent::MigratedTo { to });
    }
    if let Some(from) = m.migrate_from_chat_id {
        return Some(ServiceEvent::MigratedFrom { from });
    }
    if let Some(title) = &m.new_chat_title {
        return Some(ServiceEvent::TitleChanged { title: title.clone() });
    }
    if m.group_chat_created || m.supergroup_chat_created || m.channel_chat_created {
        return Some(ServiceEvent::ChatCreated);
    }
    m.other_service().map(|name| ServiceEvent::Other(name.to_owned()))
}

/// Converts Telegram's UTF-16 entity ranges. An entity whose range is outside the text or
/// splits a character is dropped with a note naming its position in the list (`what` is
/// `text` or `caption`).
fn text_with_entities(
    text: &str,
    entities: &[wire::MessageEntity],
    what: &str,
    notes: &mut Vec<String>,
) -> Text {
    let mut out = Vec::with_capacity(entities.len());
    for (i, e) in entities.iter().enumerate() {
        let range = u64::try_from(e.offset)
            .ok()
            .zip(u64::try_from(e.length).ok())
            .and_then(|(offset, length)| utf16_range_to_utf8(text, offset, length));
        match range {
            Some((start, end)) => out.push(Entity {
                kind: e.kind.clone(),
                start,
                end,
                url: e.url.clone(),
                user_id: e.user.as_ref().map(|u| u.id),
                language: e.language.clone(),
                custom_emoji_id: e.custom_emoji_id.clone(),
            }),
            None => notes.push(format!(
                "{what} entity {i} dropped: its UTF-16 range is outside the text or splits a \
                 character"
            )),
        }
    }
    Text {
        text: text.to_owned(),
        entities: out,
    }
}

fn photo_attachment(p: &PhotoSize) -> Attachment {
    Attachment {
        file_id: p.file_id.clone(),
        file_unique_id: p.file_unique_id.clone(),
        size: p.file_size,
        width: Some(p.width),
        height: Some(p.height),
        ..Attachment::default()
    }
}

fn location(l: &wire::Location) -> Location {
    Location {
        latitude: l.latitude,
        longitude: l.longitude,
        accuracy_m: l.horizontal_accuracy,
        live_period_s: l.live_period,
    }
}

fn poll_options(p: &wire::Poll) -> Vec<PollOption> {
    p.options
        .iter()
        .map(|o| PollOption {
            text: o.text.clone(),
            votes: o.voter_count,
        })
        .collect()
}

fn members_joined(users: &[wire::User]) -> ServiceEvent {
    ServiceEvent::MembersJoined(users.iter().map(user).collect())
}

/// A media body with no caption, labels or spoiler yet.
fn media(kind: MediaKind, file: Attachment, thumbnail: Option<Attachment>) -> Media {
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

/// A Telegram user as the model names them.
pub(super) fn user(u: &wire::User) -> UserRef {
    UserRef {
        id: u.id,
        is_bot: u.is_bot,
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        username: u.username.clone(),
        language_code: u.language_code.clone(),
    }
}
