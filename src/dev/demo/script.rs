//! What the demo's customers say: a few people writing in their own languages to two bots, a
//! history to start from (text with links, replies, a location, a contact, a poll, photos, a
//! document, a group with a join event), then a lively trickle of new messages, corrections
//! (edits), photos, and an answer whenever an agent replies from the inbox.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::png;
use crate::dev::simulator::SimBot;

/// Which demo bot a chat belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bot {
    Support,
    Sales,
}

/// One customer (or, with `group`, one group chat the customer writes in).
pub struct Persona {
    pub id: i64,
    pub first: &'static str,
    pub last: Option<&'static str>,
    pub bot: Bot,
    pub group: Option<(i64, &'static str)>,
    pub lines: &'static [&'static str],
    /// A line sent, then corrected a few seconds later: (first, corrected).
    pub typo: (&'static str, &'static str),
    pub thanks: &'static str,
    pub photo_caption: &'static str,
}

pub const PEOPLE: &[Persona] = &[
    Persona {
        id: 7001,
        first: "Ann",
        last: Some("Lee"),
        bot: Bot::Support,
        group: None,
        lines: &[
            "Hi! My parcel 7731 still shows “in transit” since Monday. Any news?",
            "The tracking page is https://example.org/track/7731 if that helps.",
            "Could you leave it with the neighbour at number 12 if I'm out?",
            "Also, is Saturday delivery possible?",
            "Great, thanks for checking so quickly.",
        ],
        typo: (
            "I'll be home after 5 pm tomorow",
            "I'll be home after 5 pm tomorrow",
        ),
        thanks: "Perfect, thank you! 🙏",
        photo_caption: "This is the label on the box",
    },
    Persona {
        id: 7002,
        first: "María",
        last: Some("García"),
        bot: Bot::Sales,
        group: None,
        lines: &[
            "¡Hola! ¿Tenéis la mesa de roble en 180 cm?",
            "¿Cuánto tarda el envío a Madrid?",
            "Vale, ¿y se puede pagar a plazos?",
            "Me interesa también la versión en nogal.",
        ],
        typo: ("Necesito 6 sillas a juego", "Necesito 8 sillas a juego"),
        thanks: "¡Genial, muchas gracias!",
        photo_caption: "Así es el espacio del comedor",
    },
    Persona {
        id: 7003,
        first: "Jürgen",
        last: Some("Weiß"),
        bot: Bot::Support,
        group: Some((-1_001_234_567_890, "Lager Berlin")),
        lines: &[
            "Moin zusammen, die Lieferung für Halle 3 ist da.",
            "Palette 14 hat einen Transportschaden, Foto folgt.",
            "Wer kann heute die Retouren übernehmen?",
            "Der Gabelstapler ist wieder frei.",
        ],
        typo: ("Abholung morgen um 8:30 Uhr", "Abholung morgen um 9:30 Uhr"),
        thanks: "Danke, passt!",
        photo_caption: "Palette 14 – Ecke eingedrückt",
    },
    Persona {
        id: 7004,
        first: "Олена",
        last: Some("Коваль"),
        bot: Bot::Support,
        group: None,
        lines: &[
            "Добрий день! Замовлення 5520 прийшло неповним.",
            "Бракує двох коробок з посудом.",
            "Можу надіслати фото накладної.",
            "Дякую, чекаю на відповідь.",
        ],
        typo: (
            "Мій номер для кур'єра нижче",
            "Мій номер для кур'єра — у контакті нижче",
        ),
        thanks: "Щиро дякую! 🌻",
        photo_caption: "Накладна до замовлення 5520",
    },
    Persona {
        id: 7005,
        first: "花子",
        last: Some("佐藤"),
        bot: Bot::Sales,
        group: None,
        lines: &[
            "こんにちは！ソファの色見本を送っていただけますか？",
            "グレーとベージュで迷っています。",
            "配送は週末でも大丈夫ですか？",
        ],
        typo: ("明日の午後に電話します", "明後日の午後に電話します"),
        thanks: "ありがとうございます！",
        photo_caption: "リビングの写真です",
    },
    Persona {
        id: 7006,
        first: "Karim",
        last: Some("Haddad"),
        bot: Bot::Sales,
        group: None,
        lines: &[
            "مرحبا، هل يتوفر هذا المنتج باللون الأسود؟",
            "أحتاج فاتورة باسم الشركة من فضلك.",
            "Thanks — I can also continue in English if easier.",
        ],
        typo: (
            "The company name is Haddad Trading LLC",
            "The company name is Haddad Trading FZ-LLC",
        ),
        thanks: "شكرا جزيلا!",
        photo_caption: "The corner where it should go",
    },
];

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A small xorshift generator: the demo needs variety, not secrecy.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng(seed | 1)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

impl Default for Rng {
    fn default() -> Self {
        Rng::new()
    }
}

/// The demo's conversations, talking to the simulator's two bots.
pub struct Script {
    pub support: SimBot,
    pub sales: SimBot,
    /// The simulator's base URL (photos go through its control API, as a test's would).
    pub api_base: String,
    pub http: reqwest::Client,
    /// Telegram message IDs for customer messages: far from the simulator's own counters,
    /// which number the bots' sends.
    next_id: i64,
    rng: Rng,
    /// Per persona: the last message it sent (for replies and corrections).
    last: Vec<Option<Value>>,
    /// Per persona: where in its lines it is.
    cursor: Vec<usize>,
}

impl Script {
    pub fn new(support: SimBot, sales: SimBot, api_base: String, http: reqwest::Client) -> Script {
        Script {
            support,
            sales,
            api_base,
            http,
            next_id: 100_000,
            rng: Rng::new(),
            last: vec![None; PEOPLE.len()],
            cursor: vec![0; PEOPLE.len()],
        }
    }

    fn bot(&self, p: &Persona) -> &SimBot {
        match p.bot {
            Bot::Support => &self.support,
            Bot::Sales => &self.sales,
        }
    }

    fn user(p: &Persona) -> Value {
        json!({"id": p.id, "is_bot": false, "first_name": p.first, "last_name": p.last, "language_code": "en"})
    }

    fn chat(p: &Persona) -> Value {
        match p.group {
            Some((id, title)) => json!({"id": id, "type": "supergroup", "title": title}),
            None => json!({"id": p.id, "type": "private", "first_name": p.first, "last_name": p.last}),
        }
    }

    /// A message ID for persona `i`'s chat: past the bot's own sends there (a chat has one
    /// sequence of IDs, as in Telegram).
    fn fresh_id(&mut self, i: usize) -> i64 {
        let p = &PEOPLE[i];
        let chat = p.group.map_or(p.id, |g| g.0);
        let used = self
            .bot(p)
            .sent()
            .iter()
            .filter(|s| s.chat_id == chat)
            .map(|s| s.message_id)
            .max()
            .unwrap_or(0);
        self.next_id = self.next_id.max(used) + 1;
        self.next_id
    }

    /// Sends a message from persona `i`; `fields` is the body (text, photo, ...).
    fn say(&mut self, i: usize, date: i64, fields: Value) -> Value {
        let id = self.fresh_id(i);
        let p = &PEOPLE[i];
        let mut m = json!({"message_id": id, "date": date, "chat": Self::chat(p), "from": Self::user(p)});
        if let (Some(o), Value::Object(f)) = (m.as_object_mut(), fields) {
            o.extend(f);
        }
        self.bot(p).inject(json!({"message": m.clone()}));
        self.last[i] = Some(m.clone());
        m
    }

    fn text(t: &str) -> Value {
        // Link entities for URLs, so they render as links (offsets in UTF-16 units).
        let mut entities = Vec::new();
        if let Some(start) = t.find("https://") {
            let url = t[start..].split_whitespace().next().unwrap_or("");
            let url = url.trim_end_matches(['.', ',']);
            entities.push(json!({"type": "url", "offset": t[..start].encode_utf16().count(), "length": url.encode_utf16().count()}));
        }
        json!({"text": t, "entities": entities})
    }

    fn edit(&mut self, i: usize, text: &str) {
        let Some(m) = self.last[i].clone() else { return };
        self.edit_message(i, m, text);
    }

    /// Persona `i` edits their message `m` to `text`.
    fn edit_message(&mut self, i: usize, mut m: Value, text: &str) {
        m["text"] = json!(text);
        m["edit_date"] = json!(now());
        self.bot(&PEOPLE[i]).inject(json!({"edited_message": m}));
    }

    async fn photo(&mut self, i: usize, date: i64, caption: &str) {
        let colours = [
            ([46, 111, 222], [250, 190, 90]),
            ([20, 140, 120], [240, 240, 200]),
            ([170, 60, 90], [250, 200, 160]),
        ];
        let (a, b) = colours[self.rng.below(colours.len() as u64) as usize];
        let bytes = png::gradient(480, 320, a, b);
        let size = bytes.len();
        let url = format!(
            "{}/_sim/bot{}/files?kind=photo&file_name=photo.png",
            self.api_base,
            self.bot(&PEOPLE[i]).token()
        );
        let r: Result<Value, _> = async { self.http.post(url).body(bytes).send().await?.json().await }.await;
        let Ok(r) = r else {
            tracing::warn!("demo: the simulator refused a photo");
            return;
        };
        let f = if r.get("result").is_some() {
            &r["result"]
        } else {
            &r
        };
        self.say(i, date, json!({"caption": caption, "photo": [{"file_id": f["file_id"], "file_unique_id": f["file_unique_id"], "width": 480, "height": 320, "file_size": size}]}));
    }

    /// The history the inbox opens with: a few messages per chat over the last hours.
    pub async fn backlog(&mut self) {
        let t = now() - 3 * 3600;
        let at = |k: i64| t + k * 97;
        let ann = self.say(0, at(1), Self::text(PEOPLE[0].lines[0]));
        self.say(0, at(2), Self::text(PEOPLE[0].lines[1]));
        self.say(
            0,
            at(3),
            json!({"text": "See my first message ☝️", "reply_to_message": ann}),
        );
        self.photo(0, at(4), PEOPLE[0].photo_caption).await;
        self.cursor[0] = 2;

        self.say(1, at(5), Self::text(PEOPLE[1].lines[0]));
        let loc = self.say(
            1,
            at(6),
            json!({"location": {"latitude": 40.416_775, "longitude": -3.703_790}}),
        );
        self.say(
            1,
            at(7),
            json!({"text": "Es aquí, ¿llegáis?", "reply_to_message": loc}),
        );
        self.cursor[1] = 1;

        if let Some((gid, title)) = PEOPLE[2].group {
            let id = self.fresh_id(2);
            let p = &PEOPLE[2];
            self.bot(p).inject(json!({"message": {
                "message_id": id, "date": at(8), "chat": {"id": gid, "type": "supergroup", "title": title},
                "from": Self::user(p), "new_chat_members": [Self::user(p), {"id": 7010, "is_bot": false, "first_name": "Aylin", "last_name": "Demir"}],
            }}));
        }
        self.say(2, at(9), Self::text(PEOPLE[2].lines[0]));
        self.photo(2, at(10), PEOPLE[2].photo_caption).await;
        self.cursor[2] = 1;

        self.say(3, at(11), Self::text(PEOPLE[3].lines[0]));
        self.say(3, at(12), Self::text(PEOPLE[3].typo.0));
        self.edit(3, PEOPLE[3].typo.1);
        self.say(3, at(13), json!({"contact": {"phone_number": "+380441234567", "first_name": "Олена", "last_name": "Коваль", "user_id": 7004}}));
        self.cursor[3] = 1;

        self.say(4, at(14), Self::text(PEOPLE[4].lines[0]));
        self.say(4, at(15), json!({"poll": {"id": "demo-poll-1", "question": "どちらの色が良いと思いますか？", "options": [
            {"text": "グレー", "voter_count": 3}, {"text": "ベージュ", "voter_count": 5}], "total_voter_count": 8,
            "is_closed": false, "is_anonymous": true, "type": "regular", "allows_multiple_answers": false}}));
        self.cursor[4] = 1;

        self.say(5, at(16), Self::text(PEOPLE[5].lines[0]));
        let list = "Order list\n- Chair, black x4\n- Desk 160 cm x2\n"
            .as_bytes()
            .to_vec();
        let url = format!(
            "{}/_sim/bot{}/files?kind=document&file_name=order-list.txt",
            self.api_base,
            self.sales.token()
        );
        if let Ok(r) = async {
            self.http
                .post(url)
                .body(list.clone())
                .send()
                .await?
                .json::<Value>()
                .await
        }
        .await
        {
            let f = if r.get("result").is_some() {
                r["result"].clone()
            } else {
                r
            };
            self.say(5, at(17), json!({"caption": "Our order list", "document": {"file_id": f["file_id"], "file_unique_id": f["file_unique_id"],
                "file_name": "order-list.txt", "mime_type": "text/plain", "file_size": list.len()}}));
        }
        self.cursor[5] = 1;
    }

    /// One step of the live trickle: usually the next line of someone, sometimes a photo or a
    /// typo. A typo returns its correction, which [`play`] sends a few seconds later without
    /// holding up anything else (answers to the agents least of all).
    pub async fn tick(&mut self) -> Option<Correction> {
        let i = self.rng.below(PEOPLE.len() as u64) as usize;
        let p = &PEOPLE[i];
        match self.rng.below(10) {
            0 => self.photo(i, now(), p.photo_caption).await,
            1 => {
                let message = self.say(i, now(), Self::text(p.typo.0));
                return Some(Correction {
                    at: tokio::time::Instant::now() + Duration::from_secs(4),
                    person: i,
                    message,
                    text: p.typo.1,
                });
            }
            _ => {
                let line = p.lines[self.cursor[i] % p.lines.len()];
                self.cursor[i] += 1;
                self.say(i, now(), Self::text(line));
            }
        }
        None
    }

    /// Answers the agents: each message a bot sent gets the customer's thanks, as a reply.
    pub fn answer(&mut self, seen: &mut [usize; 2]) {
        for (k, bot) in [Bot::Support, Bot::Sales].into_iter().enumerate() {
            let sent = match bot {
                Bot::Support => self.support.sent(),
                Bot::Sales => self.sales.sent(),
            };
            for s in sent.iter().skip(seen[k]) {
                let Some(i) = PEOPLE
                    .iter()
                    .position(|p| p.bot == bot && p.group.map_or(p.id, |g| g.0) == s.chat_id)
                else {
                    continue;
                };
                let reply = json!({"message_id": s.message_id, "date": now(), "chat": Self::chat(&PEOPLE[i]),
                    "from": {"id": 1, "is_bot": true, "first_name": "bot"}, "text": s.text});
                self.say(
                    i,
                    now(),
                    json!({"text": PEOPLE[i].thanks, "reply_to_message": reply}),
                );
            }
            seen[k] = sent.len();
        }
    }
}

/// A customer's correction of a typo (their `message`), due at `at`.
pub struct Correction {
    at: tokio::time::Instant,
    person: usize,
    message: Value,
    text: &'static str,
}

impl Script {
    fn correct(&mut self, c: Correction) {
        self.edit_message(c.person, c.message, c.text);
    }
}

/// Plays the script until `stop`: the backlog, then a message every few seconds. Nothing in
/// the loop sleeps: a due correction is one more branch, so answers to the agents' sends go
/// out on the next check, however busy the machine.
pub async fn play(mut s: Script, mut stop: watch::Receiver<bool>) {
    s.backlog().await;
    let mut seen = [0usize; 2];
    let mut next = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut check = tokio::time::interval(Duration::from_millis(1500));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut correction: Option<Correction> = None;
    loop {
        let due = correction.as_ref().map(|c| c.at);
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
            _ = check.tick() => s.answer(&mut seen),
            _ = async { tokio::time::sleep_until(due.unwrap_or(next)).await }, if due.is_some() => {
                if let Some(c) = correction.take() {
                    s.correct(c);
                }
            }
            _ = tokio::time::sleep_until(next) => {
                if let Some(c) = s.tick().await
                    && let Some(old) = correction.replace(c)
                {
                    s.correct(old);
                }
                next = tokio::time::Instant::now() + Duration::from_secs(6 + s.rng.below(10));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_persona_has_something_to_say() {
        for p in PEOPLE {
            assert!(!p.lines.is_empty() && !p.thanks.is_empty() && p.typo.0 != p.typo.1);
        }
    }

    #[test]
    fn links_get_entities_in_utf16_units() {
        let v = Script::text("Spur 🚚 https://example.org/x.");
        assert_eq!(v["entities"][0]["offset"], 8);
        assert_eq!(v["entities"][0]["length"], 21);
    }
}
