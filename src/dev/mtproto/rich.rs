//! What a simulated message carries beyond its text (`media.rs` builds it), and how it dresses
//! the message Telegram sends: kept apart so the log (`world.rs`) and the TL builders
//! (`tl_build.rs`) can name it without depending on `media.rs`.

use grammers_tl_types as tl;

/// What a message carries beyond its text.
#[derive(Debug, Clone, Default)]
pub struct Rich {
    pub media: Option<tl::enums::MessageMedia>,
    /// The ID of the message replied to (in the same chat); a pin's pinned message.
    pub reply_to: Option<i32>,
    pub fwd_from: Option<tl::enums::MessageFwdHeader>,
    /// The album's ID.
    pub grouped_id: Option<i64>,
    /// Makes the message a `messageService` with this action.
    pub action: Option<tl::enums::MessageAction>,
    /// Users the push must describe besides the sender (a forward's origin, members added).
    pub users: Vec<i64>,
}

/// A logged step's message, with its [`Rich`] part if it has one.
pub(super) fn dress(mut m: tl::types::Message, rich: Option<&Rich>) -> tl::enums::Message {
    let Some(r) = rich else {
        return m.into();
    };
    let reply_to = r.reply_to.map(|id| {
        tl::types::MessageReplyHeader {
            reply_to_scheduled: false,
            forum_topic: false,
            quote: false,
            reply_to_ephemeral: false,
            reply_to_msg_id: Some(id),
            reply_to_peer_id: None,
            reply_from: None,
            reply_media: None,
            reply_to_top_id: None,
            quote_text: None,
            quote_entities: None,
            quote_offset: None,
            todo_item_id: None,
            poll_option: None,
        }
        .into()
    });
    if let Some(action) = &r.action {
        return tl::types::MessageService {
            out: m.out,
            mentioned: false,
            media_unread: false,
            reactions_are_possible: false,
            silent: false,
            post: m.post,
            legacy: false,
            id: m.id,
            from_id: m.from_id,
            peer_id: m.peer_id,
            saved_peer_id: None,
            reply_to,
            date: m.date,
            action: action.clone(),
            reactions: None,
            ttl_period: None,
        }
        .into();
    }
    m.media = r.media.clone();
    m.reply_to = reply_to;
    m.fwd_from = r.fwd_from.clone();
    m.grouped_id = r.grouped_id;
    m.into()
}
