//! The corpus generator: a deterministic stream of batches, one account per batch like a
//! connector poll, 94% new messages, 5% edits and 1% deletes of earlier messages, in private
//! chats, groups, supergroups and channels; text in English, Russian, Arabic, Chinese and
//! Japanese with emoji, lengths skewed short (most 10–200 characters, a few up to 4096), 10%
//! media with plausible attachment fields, occasional entities, replies and forwards.

use lanbox::ingest::{Batch, Change};
use lanbox::model::*;

use super::words::*;

impl Gen {
    pub fn new(seed: u64, accounts: u64, chats: u32) -> Gen {
        let mut rng = Rng::new(seed);
        let mut specs = Vec::with_capacity(chats as usize);
        let mut by_account = vec![Vec::new(); accounts as usize];
        for i in 0..chats {
            let account = 1 + u64::from(i) % accounts;
            let script = Script::roll(&mut rng);
            let title_words = |rng: &mut Rng| {
                let n = rng.range(1, 4);
                let words: Vec<&str> = (0..n).map(|_| rng.pick(script.words())).collect();
                words.join(if script.spaced() { " " } else { "" })
            };
            let i64i = i64::from(i);
            let (kind, id, title, username, members, is_forum, next_msg) = match rng.below(100) {
                0..55 => {
                    let u = user(100_000_000 + i64i * 7);
                    let title = match &u.last_name {
                        Some(l) => format!("{} {l}", u.first_name),
                        None => u.first_name.clone(),
                    };
                    (ChatKind::Private, u.id, title, u.username, 1, false, 1)
                }
                55..65 => {
                    let t = title_words(&mut rng);
                    (
                        ChatKind::Group,
                        -(400_000_000 + i64i),
                        t,
                        None,
                        rng.range(3, 50),
                        false,
                        1,
                    )
                }
                65..90 => {
                    let t = title_words(&mut rng);
                    let un = rng.chance(300).then(|| rng.token("sg_", 10));
                    let forum = rng.chance(150);
                    let start = rng.range(1, 100_000) as i64;
                    (
                        ChatKind::Supergroup,
                        -1_001_000_000_000 - i64i,
                        t,
                        un,
                        rng.range(20, 2000),
                        forum,
                        start,
                    )
                }
                _ => {
                    let t = title_words(&mut rng);
                    let un = rng.chance(700).then(|| rng.token("ch_", 10));
                    let start = rng.range(1, 20_000) as i64;
                    (
                        ChatKind::Channel,
                        -1_002_000_000_000 - i64i,
                        t,
                        un,
                        1,
                        false,
                        start,
                    )
                }
            };
            by_account[(account - 1) as usize].push(i);
            specs.push(ChatSpec {
                account,
                chat: Chat {
                    id,
                    kind,
                    title: Some(title),
                    username,
                    is_forum,
                },
                script,
                member_base: if kind == ChatKind::Private {
                    id
                } else {
                    200_000_000 + i64i * 10_000
                },
                members,
                next_msg,
            });
        }
        Gen {
            rng,
            seed,
            accounts,
            chats: specs,
            by_account,
            pools: vec![Vec::new(); accounts as usize],
            positions: vec![800_000_000; accounts as usize],
            clock: BASE_DATE,
            batches: 0,
            counts: Counts::default(),
        }
    }

    /// One connector poll's worth of changes, all for one account (accounts take turns).
    pub fn batch(&mut self, size: usize) -> Batch {
        let account = 1 + self.batches % self.accounts;
        self.batches += 1;
        let a = (account - 1) as usize;
        let mut changes = Vec::with_capacity(size);
        for _ in 0..size {
            self.clock += self.rng.range(1, 20) as i64;
            let roll = self.rng.below(1000);
            let pool_len = self.pools[a].len() as u64;
            if roll < 10 && pool_len > 0 {
                let r = self.pools[a].swap_remove(self.rng.below(pool_len) as usize);
                self.counts.deletes += 1;
                changes.push(Change::Delete {
                    account,
                    chat: self.chats[r.chat as usize].chat.clone(),
                    message_ids: vec![i64::from(r.msg)],
                });
            } else if roll < 60 && pool_len > 0 {
                let r = self.pools[a][self.rng.below(pool_len) as usize];
                self.counts.edits += 1;
                let date = BASE_DATE + i64::from(r.date);
                let m = self.message(r.chat, i64::from(r.msg), date, Some(self.clock));
                changes.push(Change::Edit(m));
            } else {
                let list = &self.by_account[a];
                // Skewed: a few chats are busy, most are quiet.
                let ci = list[(self.rng.unit().powi(2) * list.len() as f64) as usize];
                let spec = &mut self.chats[ci as usize];
                let id = spec.next_msg;
                // Gaps: messages this bot never sees (other bots' commands, service messages).
                spec.next_msg += if self.rng.chance(50) {
                    self.rng.range(2, 4) as i64
                } else {
                    1
                };
                let m = self.message(ci, id, self.clock, None);
                self.counts.new += 1;
                if matches!(m.content.body, Body::Media(_)) {
                    self.counts.media += 1;
                }
                let r = Ref {
                    chat: ci,
                    msg: u32::try_from(id).expect("message IDs stay below 2^32"),
                    date: u32::try_from(self.clock - BASE_DATE).expect("clock fits"),
                };
                let pool = &mut self.pools[a];
                if pool.len() < POOL {
                    pool.push(r);
                } else {
                    let slot = self.rng.below(POOL as u64) as usize;
                    pool[slot] = r;
                }
                changes.push(Change::New(m));
            }
        }
        self.positions[a] += size as u64;
        Batch {
            account,
            changes,
            position: Some(self.positions[a]),
        }
    }

    pub fn header(&self, ci: u32, msg_id: i64) -> Header {
        let spec = &self.chats[ci as usize];
        let mut r = Rng::new(self.seed ^ mix(u64::from(ci) << 32) ^ (msg_id as u64));
        let outgoing = match spec.chat.kind {
            ChatKind::Private => r.chance(200),
            ChatKind::Group | ChatKind::Supergroup => r.chance(50),
            ChatKind::Channel => false,
        };
        let sender = if outgoing {
            Sender::User(bot(spec.account))
        } else {
            match spec.chat.kind {
                ChatKind::Channel => Sender::Chat {
                    id: spec.chat.id,
                    title: spec.chat.title.clone(),
                    username: spec.chat.username.clone(),
                    signature: r.chance(200).then(|| r.pick(FIRST).to_string()),
                },
                ChatKind::Supergroup if r.chance(10) => Sender::AnonymousAdmin {
                    chat_id: spec.chat.id,
                    signature: None,
                },
                _ => Sender::User(user(spec.member_base + r.below(spec.members) as i64)),
            }
        };
        let media = r.chance(100).then(|| match r.below(100) {
            0..45 => MediaKind::Image,
            45..65 => MediaKind::File,
            65..80 => MediaKind::Voice,
            80..95 => MediaKind::Video,
            _ => MediaKind::Audio,
        });
        let topic = spec.chat.is_forum.then(|| r.range(1, 12) as i64);
        Header {
            direction: if outgoing {
                Direction::Outgoing
            } else {
                Direction::Incoming
            },
            sender,
            media,
            topic,
        }
    }

    pub fn message(&mut self, ci: u32, msg_id: i64, date: i64, edited_at: Option<i64>) -> Message {
        let h = self.header(ci, msg_id);
        let spec = &self.chats[ci as usize];
        let (account, chat) = (spec.account, spec.chat.clone());
        // Most messages are in the chat's language, some are not.
        let script = if self.rng.chance(850) {
            spec.script
        } else {
            Script::roll(&mut self.rng)
        };
        let mut media_group = None;
        let body = match h.media {
            None => {
                let len = self.length();
                Body::Text(self.text(len, script))
            }
            Some(kind) => {
                if kind == MediaKind::Image && self.rng.chance(200) {
                    media_group = Some(
                        self.rng
                            .range(13_000_000_000_000_000, 14_000_000_000_000_000)
                            .to_string(),
                    );
                }
                Body::Media(self.media(kind, script))
            }
        };
        let reply_to = self.rng.chance(120).then(|| ReplyTo {
            message_id: (msg_id - 1 - self.rng.below(50) as i64).max(1),
            chat_id: None,
            quote: self.rng.chance(100).then(|| {
                let n = self.rng.range(5, 40) as usize;
                self.text(n, script).text
            }),
        });
        let forward = self.rng.chance(40).then(|| match self.rng.below(3) {
            0 => ForwardOrigin::User {
                user: user(300_000_000 + self.rng.below(100_000) as i64),
                date: date - self.rng.range(60, 86_400 * 30) as i64,
            },
            1 => ForwardOrigin::HiddenUser {
                name: self.rng.pick(FIRST).to_string(),
                date: date - self.rng.range(60, 86_400 * 30) as i64,
            },
            _ => ForwardOrigin::Channel {
                chat_id: -1_003_000_000_000 - self.rng.below(1000) as i64,
                title: Some(self.rng.pick(EN).to_string()),
                message_id: self.rng.range(1, 100_000) as i64,
                signature: None,
                date: date - self.rng.range(60, 86_400 * 30) as i64,
            },
        });
        Message {
            account,
            chat,
            message_id: msg_id,
            topic: h.topic,
            direction: h.direction,
            date,
            edited_at,
            status: if h.direction == Direction::Outgoing {
                Status::Sent
            } else {
                Status::Delivered
            },
            content: MessageContent {
                sender: h.sender,
                reply_to,
                forward,
                media_group,
                body,
                notes: Vec::new(),
            },
        }
    }

    /// Characters in a text message: most 10–200, a long tail up to Telegram's 4096.
    pub fn length(&mut self) -> usize {
        let (lo, hi) = match self.rng.below(100) {
            0..8 => (1, 9),
            8..58 => (10, 60),
            58..84 => (60, 200),
            84..95 => (200, 800),
            95..99 => (800, 2000),
            _ => (2000, 4070),
        };
        self.rng.range(lo, hi) as usize
    }

    /// About `target` characters of text (overshoots by less than a word; stays within 4096).
    pub fn text(&mut self, target: usize, script: Script) -> Text {
        let words = script.words();
        let mut s = String::with_capacity(target * 3);
        let mut chars = 0;
        let mut spans: Vec<(u32, u32)> = Vec::new();
        while chars < target {
            if !s.is_empty() {
                if self.rng.chance(15) {
                    s.push('\n');
                    chars += 1;
                } else if script.spaced() {
                    s.push(' ');
                    chars += 1;
                }
            }
            let w = if self.rng.chance(60) {
                self.rng.pick(EMOJI)
            } else {
                self.rng.pick(words)
            };
            let start = s.len() as u32;
            s.push_str(w);
            spans.push((start, s.len() as u32));
            chars += w.chars().count();
        }
        let mut entities = Vec::new();
        if self.rng.chance(100) {
            for _ in 0..self.rng.range(1, 3) {
                let (start, end) = spans[self.rng.below(spans.len() as u64) as usize];
                let kind = self.rng.pick(ENTITY_KINDS);
                entities.push(Entity {
                    kind: kind.to_string(),
                    start,
                    end,
                    url: (kind == "text_link").then(|| self.rng.token("https://example.org/d/", 12)),
                    user_id: (kind == "text_mention").then(|| 300_000_000 + self.rng.below(100_000) as i64),
                    language: None,
                    custom_emoji_id: None,
                });
            }
            entities.sort_by_key(|e| e.start);
        }
        Text { text: s, entities }
    }

    pub fn attachment(&mut self, prefix: &str, size: (u64, u64)) -> Attachment {
        let id_len = self.rng.range(50, 70) as usize;
        Attachment {
            file_id: self.rng.token(prefix, id_len),
            file_unique_id: self.rng.token("AQAD", 12),
            size: Some(self.rng.range(size.0, size.1)),
            ..Attachment::default()
        }
    }

    pub fn media(&mut self, kind: MediaKind, script: Script) -> Media {
        let caption_chance = match kind {
            MediaKind::Image => 500,
            MediaKind::Video => 400,
            MediaKind::File => 300,
            _ => 50,
        };
        let caption = self.rng.chance(caption_chance).then(|| {
            let n = self.rng.range(5, 200) as usize;
            self.text(n, script)
        });
        let mut thumbnail = None;
        let (mut title, mut performer) = (None, None);
        let file = match kind {
            MediaKind::Image => {
                let mut f = self.attachment("AgACAgIAAxkBAAI", (40_000, 3_000_000));
                let (w, h) =
                    self.rng
                        .pick(&[(1280, 960), (960, 1280), (1280, 720), (2560, 1920), (800, 800)]);
                (f.width, f.height) = (Some(w), Some(h));
                let mut t = self.attachment("AgACAgIAAxkBAAI", (1_000, 3_000));
                (t.width, t.height) = (Some(w / 14), Some(h / 14));
                thumbnail = Some(t);
                f
            }
            MediaKind::File => {
                let mut f = self.attachment("BQACAgIAAxkBAAI", (10_000, 20_000_000));
                let (name, mime) = self.rng.pick(FILES);
                f.file_name = Some(name.to_string());
                f.mime_type = Some(mime.to_string());
                if mime.starts_with("image/") || mime == "application/pdf" {
                    let mut t = self.attachment("AAMCAgADGQEAAg", (2_000, 12_000));
                    (t.width, t.height) = (Some(320), Some(240));
                    thumbnail = Some(t);
                }
                f
            }
            MediaKind::Voice => {
                let secs = self.rng.range(1, 120);
                let mut f = self.attachment("AwACAgIAAxkBAAI", (secs * 3_000, secs * 5_000));
                f.mime_type = Some("audio/ogg".into());
                f.duration = Some(secs as u32);
                f
            }
            MediaKind::Video => {
                let secs = self.rng.range(2, 600);
                let mut f = self.attachment("BAACAgIAAxkBAAI", (secs * 50_000, secs * 200_000));
                f.mime_type = Some("video/mp4".into());
                (f.width, f.height, f.duration) = (Some(1280), Some(720), Some(secs as u32));
                if self.rng.chance(500) {
                    f.file_name = Some(format!(
                        "VID_2024{:04}_{:06}.mp4",
                        self.rng.range(101, 1231),
                        self.rng.below(240000)
                    ));
                }
                let mut t = self.attachment("AAMCAgADGQEAAg", (2_000, 12_000));
                (t.width, t.height) = (Some(320), Some(180));
                thumbnail = Some(t);
                f
            }
            _ => {
                let secs = self.rng.range(90, 400);
                let mut f = self.attachment("CQACAgIAAxkBAAI", (secs * 16_000, secs * 40_000));
                f.mime_type = Some("audio/mpeg".into());
                f.duration = Some(secs as u32);
                f.file_name = Some("track.mp3".into());
                let n = self.rng.range(5, 30) as usize;
                title = Some(self.text(n, script).text);
                performer = Some(self.rng.pick(FIRST).to_string());
                f
            }
        };
        Media {
            kind,
            file,
            thumbnail,
            caption,
            title,
            performer,
            emoji: None,
            spoiler: self.rng.chance(10),
        }
    }
}
