//! The TL objects the simulator answers with, built in one place: every layer bump adds fields
//! to these structs, and only this file then changes.

use std::net::SocketAddr;

use grammers_tl_types as tl;

use super::srp::{self, Challenge, Verifier};
use super::world::{Logged, SimChat, SimChatKind, SimUser, Step, World};

pub fn user(u: &SimUser, is_self: bool) -> tl::enums::User {
    tl::types::User {
        is_self,
        contact: false,
        mutual_contact: false,
        deleted: false,
        bot: false,
        bot_chat_history: false,
        bot_nochats: false,
        verified: false,
        restricted: false,
        min: false,
        bot_inline_geo: false,
        support: false,
        scam: false,
        apply_min_photo: false,
        fake: false,
        bot_attach_menu: false,
        premium: false,
        attach_menu_enabled: false,
        bot_can_edit: false,
        close_friend: false,
        stories_hidden: false,
        stories_unavailable: false,
        contact_require_premium: false,
        bot_business: false,
        bot_has_main_app: false,
        bot_forum_view: false,
        bot_forum_can_manage_topics: false,
        bot_can_manage_bots: false,
        bot_guestchat: false,
        bot_guard: false,
        id: u.id,
        access_hash: Some(u.access_hash),
        first_name: Some(u.first_name.clone()),
        last_name: u.last_name.clone(),
        username: u.username.clone(),
        phone: u.phone.clone(),
        photo: None,
        status: None,
        bot_info_version: None,
        restriction_reason: None,
        bot_inline_placeholder: None,
        lang_code: None,
        emoji_status: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        bot_active_users: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_community_id: None,
    }
    .into()
}

/// A message of a log as a full `message` (as getDifference carries it). In a private chat the
/// peer is the other person and `from_id` is set on outgoing messages only; in a group the
/// peer is the group and `from_id` the sender; a broadcast channel's posts have no `from_id`.
pub fn message(e: &Logged, me: i64, chat: Option<&SimChat>) -> tl::enums::Message {
    super::rich::dress(message_plain(e, me, chat), e.rich.as_deref())
}

fn message_plain(e: &Logged, me: i64, chat: Option<&SimChat>) -> tl::types::Message {
    let user = |user_id| -> tl::enums::Peer { tl::types::PeerUser { user_id }.into() };
    let (peer_id, from_id, post) = match chat {
        None => (user(e.from), e.out.then(|| user(me)), false),
        Some(c) => (
            peer(c),
            (c.kind != SimChatKind::Channel).then(|| user(if e.out { me } else { e.from })),
            c.kind == SimChatKind::Channel,
        ),
    };
    tl::types::Message {
        out: e.out,
        mentioned: false,
        media_unread: false,
        silent: false,
        post,
        from_scheduled: false,
        legacy: false,
        edit_hide: false,
        pinned: false,
        noforwards: false,
        invert_media: false,
        offline: false,
        video_processing_pending: false,
        paid_suggested_post_stars: false,
        paid_suggested_post_ton: false,
        id: e.message_id,
        from_id,
        from_boosts_applied: None,
        from_rank: None,
        peer_id,
        saved_peer_id: None,
        fwd_from: None,
        via_bot_id: None,
        via_business_bot_id: None,
        guestchat_via_from: None,
        reply_to: None,
        date: e.date,
        message: e.text.clone(),
        media: None,
        reply_markup: None,
        entities: None,
        views: None,
        forwards: None,
        replies: None,
        edit_date: e.edit_date,
        post_author: None,
        grouped_id: None,
        reactions: None,
        restriction_reason: None,
        ttl_period: None,
        quick_reply_shortcut_id: None,
        effect: None,
        factcheck: None,
        report_delivery_until_date: None,
        paid_message_stars: None,
        suggested_post: None,
        schedule_repeat_period: None,
        summary_from_language: None,
        rich_message: None,
    }
}

/// The peer of a group or channel.
pub fn peer(c: &SimChat) -> tl::enums::Peer {
    if c.is_channel() {
        tl::types::PeerChannel { channel_id: c.id }.into()
    } else {
        tl::types::PeerChat { chat_id: c.id }.into()
    }
}

/// A group or channel as the `chats` of an answer carry it.
pub fn chat(c: &SimChat) -> tl::enums::Chat {
    if !c.is_channel() {
        return tl::types::Chat {
            creator: false,
            left: false,
            deactivated: false,
            call_active: false,
            call_not_empty: false,
            noforwards: false,
            id: c.id,
            title: c.title.clone(),
            photo: tl::enums::ChatPhoto::Empty,
            participants_count: 2,
            date: 0,
            version: 1,
            migrated_to: None,
            admin_rights: None,
            default_banned_rights: None,
        }
        .into();
    }
    tl::types::Channel {
        creator: false,
        left: false,
        broadcast: c.kind == SimChatKind::Channel,
        verified: false,
        megagroup: c.kind == SimChatKind::Supergroup,
        restricted: false,
        signatures: false,
        min: false,
        scam: false,
        has_link: false,
        has_geo: false,
        slowmode_enabled: false,
        call_active: false,
        call_not_empty: false,
        fake: false,
        gigagroup: false,
        noforwards: false,
        join_to_send: false,
        join_request: false,
        forum: false,
        stories_hidden: false,
        stories_hidden_min: false,
        stories_unavailable: false,
        signature_profiles: false,
        autotranslation: false,
        broadcast_messages_allowed: false,
        monoforum: false,
        forum_tabs: false,
        id: c.id,
        access_hash: Some(c.access_hash),
        title: c.title.clone(),
        username: None,
        photo: tl::enums::ChatPhoto::Empty,
        date: 0,
        restriction_reason: None,
        admin_rights: None,
        banned_rights: None,
        default_banned_rights: None,
        participants_count: None,
        usernames: None,
        stories_max_id: None,
        color: None,
        profile_color: None,
        emoji_status: None,
        level: None,
        subscription_until_date: None,
        bot_verification_icon: None,
        send_paid_messages_stars: None,
        linked_monoforum_id: None,
        linked_community_id: None,
    }
    .into()
}

/// A step of a log as the update Telegram sends for it (in a push, or in a difference's
/// `other_updates`; a new message goes in a difference's `new_messages` instead).
pub fn update(e: &Logged, me: i64, chat: Option<&SimChat>) -> tl::enums::Update {
    let channel = chat.filter(|c| c.is_channel());
    match (&e.step, channel) {
        (Step::Message, None) if e.edit_date.is_none() => tl::types::UpdateNewMessage {
            message: message(e, me, chat),
            pts: e.pts,
            pts_count: 1,
        }
        .into(),
        (Step::Message, None) => tl::types::UpdateEditMessage {
            message: message(e, me, chat),
            pts: e.pts,
            pts_count: 1,
        }
        .into(),
        (Step::Message, Some(_)) if e.edit_date.is_none() => tl::types::UpdateNewChannelMessage {
            message: message(e, me, chat),
            pts: e.pts,
            pts_count: 1,
        }
        .into(),
        (Step::Message, Some(_)) => tl::types::UpdateEditChannelMessage {
            message: message(e, me, chat),
            pts: e.pts,
            pts_count: 1,
        }
        .into(),
        (Step::Deleted(ids), None) => tl::types::UpdateDeleteMessages {
            messages: ids.clone(),
            pts: e.pts,
            pts_count: ids.len() as i32,
        }
        .into(),
        (Step::Deleted(ids), Some(c)) => tl::types::UpdateDeleteChannelMessages {
            channel_id: c.id,
            messages: ids.clone(),
            pts: e.pts,
            pts_count: ids.len() as i32,
        }
        .into(),
        (Step::ReadOutbox, _) => tl::types::UpdateReadHistoryOutbox {
            peer: match chat {
                Some(c) => peer(c),
                None => tl::types::PeerUser { user_id: e.from }.into(),
            },
            max_id: e.message_id,
            pts: e.pts,
            pts_count: 1,
        }
        .into(),
    }
}

/// `updateChannelTooLong` for each `(channel, pts)`: the client catches the channel up from
/// that pts with `updates.getChannelDifference`.
pub fn channels_too_long(channels: &[(i64, i32)]) -> Vec<tl::enums::Update> {
    channels
        .iter()
        .map(|&(channel_id, pts)| {
            tl::types::UpdateChannelTooLong {
                channel_id,
                pts: Some(pts),
            }
            .into()
        })
        .collect()
}

/// The users and chats a set of steps names (the account itself first).
pub fn peers_of<'a>(
    w: &World,
    steps: impl IntoIterator<Item = &'a Logged>,
) -> (Vec<tl::enums::User>, Vec<tl::enums::Chat>) {
    let mut users = vec![user(&w.me, true)];
    let mut seen = vec![w.me.id];
    let mut chats = Vec::new();
    let mut seen_chats = Vec::new();
    for e in steps {
        if !seen.contains(&e.from)
            && let Some(u) = w.users.get(&e.from)
        {
            seen.push(e.from);
            users.push(user(u, false));
        }
        if let Some(id) = e.chat
            && !seen_chats.contains(&id)
            && let Some(c) = w.chats.get(&id)
        {
            seen_chats.push(id);
            chats.push(chat(c));
        }
    }
    (users, chats)
}

/// The push Telegram sends for one step: `updateShortMessage` for a new private message, an
/// `updates` with the step's update and the users and chats it names otherwise.
pub fn push(e: &Logged, w: &World) -> tl::enums::Updates {
    if e.chat.is_none() && e.step == Step::Message && e.edit_date.is_none() {
        return short_message(e);
    }
    let (users, chats) = peers_of(w, [e]);
    let chat = e.chat.and_then(|id| w.chats.get(&id));
    tl::types::Updates {
        updates: vec![update(e, w.me.id, chat)],
        users,
        chats,
        date: e.edit_date.unwrap_or(e.date),
        seq: w.seq,
    }
    .into()
}

/// A push of updates that have no pts (typing, a channel's read receipt), with the users and
/// chats they name.
pub fn push_plain(
    updates: Vec<tl::enums::Update>,
    w: &World,
    user_ids: &[i64],
    chat: Option<&SimChat>,
) -> tl::enums::Updates {
    let mut users = vec![user(&w.me, true)];
    users.extend(
        user_ids
            .iter()
            .filter_map(|id| w.users.get(id))
            .map(|u| user(u, false)),
    );
    tl::types::Updates {
        updates,
        users,
        chats: chat.map(|c| vec![self::chat(c)]).unwrap_or_default(),
        date: w.date.max(super::world::now()),
        seq: 0,
    }
    .into()
}

/// The push Telegram sends for one private message: `updateShortMessage`.
pub fn short_message(e: &Logged) -> tl::enums::Updates {
    tl::types::UpdateShortMessage {
        out: e.out,
        mentioned: false,
        media_unread: false,
        silent: false,
        id: e.message_id,
        user_id: e.from,
        message: e.text.clone(),
        pts: e.pts,
        pts_count: 1,
        date: e.date,
        fwd_from: None,
        via_bot_id: None,
        reply_to: None,
        entities: None,
        ttl_period: None,
    }
    .into()
}

pub fn state(pts: i32, date: i32, seq: i32) -> tl::enums::updates::State {
    tl::types::updates::State {
        pts,
        qts: 0,
        date,
        seq,
        unread_count: 0,
    }
    .into()
}

/// `help.getConfig`: this simulator is DC 2 at its own address.
pub fn config(addr: SocketAddr, date: i32) -> tl::enums::Config {
    let dc = tl::types::DcOption {
        ipv6: false,
        media_only: false,
        tcpo_only: false,
        cdn: false,
        r#static: true,
        this_port_only: false,
        id: 2,
        ip_address: addr.ip().to_string(),
        port: i32::from(addr.port()),
        secret: None,
    };
    tl::types::Config {
        default_p2p_contacts: false,
        preload_featured_stickers: false,
        revoke_pm_inbox: true,
        blocked_mode: false,
        force_try_ipv6: false,
        date,
        expires: date + 3600,
        test_mode: false,
        this_dc: 2,
        dc_options: vec![dc.into()],
        dc_txt_domain_name: String::new(),
        chat_size_max: 200,
        megagroup_size_max: 200_000,
        forwarded_count_max: 100,
        online_update_period_ms: 210_000,
        offline_blur_timeout_ms: 5_000,
        offline_idle_timeout_ms: 30_000,
        online_cloud_timeout_ms: 300_000,
        notify_cloud_delay_ms: 30_000,
        notify_default_delay_ms: 1_500,
        push_chat_period_ms: 60_000,
        push_chat_limit: 2,
        edit_time_limit: 172_800,
        revoke_time_limit: i32::MAX,
        revoke_pm_time_limit: i32::MAX,
        rating_e_decay: 2_419_200,
        stickers_recent_limit: 200,
        channels_read_media_period: 604_800,
        tmp_sessions: None,
        call_receive_timeout_ms: 20_000,
        call_ring_timeout_ms: 90_000,
        call_connect_timeout_ms: 30_000,
        call_packet_timeout_ms: 10_000,
        me_url_prefix: "https://t.me/".into(),
        autoupdate_url_prefix: None,
        gif_search_username: None,
        venue_search_username: None,
        img_search_username: None,
        static_maps_provider: None,
        caption_length_max: 1024,
        message_length_max: 4096,
        webfile_dc_id: 4,
        suggested_lang_code: None,
        lang_pack_version: None,
        base_lang_pack_version: None,
        reactions_default: None,
        autologin_token: None,
    }
    .into()
}

/// `account.password`: with a verifier, its SRP parameters and the challenge.
pub fn password(v: Option<&Verifier>, c: Option<&Challenge>) -> tl::enums::account::Password {
    let algo = |v: &Verifier| -> tl::enums::PasswordKdfAlgo {
        tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
            salt1: v.salt1.clone(),
            salt2: v.salt2.clone(),
            g: srp::G,
            p: srp::p_bytes(),
        }
        .into()
    };
    let mut secure_random = vec![0u8; 256];
    getrandom::fill(&mut secure_random).expect("the OS random source");
    tl::types::account::Password {
        has_recovery: false,
        has_secure_values: false,
        has_password: v.is_some(),
        current_algo: v.map(algo),
        srp_b: c.map(|c| c.g_b.to_vec()),
        srp_id: c.map(|c| c.srp_id),
        hint: None,
        email_unconfirmed_pattern: None,
        new_algo: tl::enums::PasswordKdfAlgo::Unknown,
        new_secure_algo: tl::enums::SecurePasswordKdfAlgo::Unknown,
        secure_random,
        pending_reset_date: None,
        login_email_pattern: None,
    }
    .into()
}
