//! The corpus generator's randomness, vocabulary and types (`corpus.rs` has the generator):
//! splitmix64 from a fixed seed, so every benchmark that uses it, on every platform, sees the
//! same corpus for the same seed and shape.

use lanbox::model::*;

pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// splitmix64: tiny, fast, and the same sequence on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `per_mille`/1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    pub fn token(&mut self, prefix: &str, len: usize) -> String {
        const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut s = String::with_capacity(prefix.len() + len);
        s.push_str(prefix);
        for _ in 0..len {
            s.push(B64URL[self.below(64) as usize] as char);
        }
        s
    }
}

#[rustfmt::skip]
pub const EN: &[&str] = &[
    "the", "and", "meeting", "tomorrow", "please", "send", "invoice", "thanks", "order", "delivery",
    "price", "how", "are", "you", "today", "we", "need", "report", "by", "Friday", "call", "me", "when",
    "can", "document", "signed", "appointment", "confirmed", "at", "clinic", "office", "waiting", "for",
    "your", "reply", "okay", "great", "sorry", "late", "address", "is", "new", "version", "attached",
    "check", "link", "update", "status", "payment", "received", "question", "about", "contract", "schedule",
    "next", "week", "morning", "evening", "client", "ticket", "issue", "resolved", "hello", "team", "a",
    "to", "of",
];
#[rustfmt::skip]
pub const RU: &[&str] = &[
    "привет", "спасибо", "завтра", "встреча", "пожалуйста", "отправьте", "счёт", "заказ", "доставка",
    "цена", "как", "дела", "сегодня", "нужно", "отчёт", "до", "пятницы", "позвоните", "мне", "документ",
    "подписан", "запись", "подтверждена", "в", "клинике", "офис", "жду", "ответа", "хорошо", "отлично",
    "извините", "опоздаю", "адрес", "новая", "версия", "вложение", "проверьте", "ссылку", "оплата",
    "получена", "вопрос", "по", "договору", "расписание", "на", "следующей", "неделе", "утром", "вечером",
    "клиент", "заявка", "решена", "здравствуйте", "коллеги", "и", "что", "это",
];
#[rustfmt::skip]
pub const AR: &[&str] = &[
    "مرحبا", "شكرا", "غدا", "اجتماع", "من", "فضلك", "أرسل", "الفاتورة", "الطلب", "التوصيل", "السعر", "كيف",
    "حالك", "اليوم", "نحتاج", "التقرير", "قبل", "الجمعة", "اتصل", "بي", "المستند", "موقع", "الموعد", "مؤكد",
    "في", "العيادة", "المكتب", "أنتظر", "ردك", "حسنا", "ممتاز", "آسف", "العنوان", "النسخة", "الجديدة",
    "تحقق", "الرابط", "الدفع", "تم", "استلام", "سؤال", "حول", "العقد", "الأسبوع", "القادم", "صباحا", "مساء",
    "العميل",
];
#[rustfmt::skip]
pub const ZH: &[&str] = &[
    "你好", "谢谢", "明天", "会议", "请", "发送", "发票", "订单", "送货", "价格", "今天", "我们", "需要", "报告", "星期五", "之前", "给我",
    "打电话", "文件", "已签字", "预约", "已确认", "在", "诊所", "办公室", "等待", "你的", "回复", "好的", "太好了", "对不起", "地址", "新版本",
    "附件", "检查", "链接", "付款", "已收到", "问题", "关于", "合同", "下周", "早上", "晚上", "客户", "。", "，", "吗", "的",
];
#[rustfmt::skip]
pub const JA: &[&str] = &[
    "こんにちは", "ありがとう", "明日", "会議", "お願いします", "送って", "請求書", "注文", "配送", "価格", "今日", "私たち", "報告書", "金曜日",
    "までに", "電話して", "書類", "署名済み", "予約", "確認しました", "クリニック", "事務所", "返信", "待っています", "了解", "すみません", "住所", "新しい",
    "バージョン", "添付", "確認", "リンク", "支払い", "受け取りました", "質問", "契約", "来週", "朝", "夜", "お客様", "。", "、", "を", "は",
];
#[rustfmt::skip]
pub const EMOJI: &[&str] = &[
    "😀", "😂", "🙏", "👍", "👍🏽", "❤️", "🔥", "🎉", "😊", "😢", "🤔", "👋", "✅", "❌", "📎", "📅", "💰", "🚚", "☎️",
    "👨‍👩‍👧", "🏳️‍🌈", "🇷🇺", "🇸🇦", "🇯🇵", "🇨🇳", "🇬🇧", "😅", "🙈", "💯", "✨",
];
#[rustfmt::skip]
pub const FIRST: &[&str] = &[
    "Anna", "John", "Maria", "Ahmed", "Олег", "Наталья", "Дмитрий", "Ольга", "محمد", "فاطمة", "علي", "李娜",
    "王芳", "张伟", "ゆき", "さくら", "Sofia", "Lucas", "Emma", "Иван", "Chen", "Aisha",
];
#[rustfmt::skip]
pub const LAST: &[&str] = &[
    "Smith", "Иванова", "Петров", "الحسن", "العلي", "陈", "田中", "Garcia", "Müller", "Kowalski", "Nguyen",
];
pub const FILES: &[(&str, &str)] = &[
    ("Договор_№17.pdf", "application/pdf"),
    ("invoice-2024-03.pdf", "application/pdf"),
    (
        "report_q3.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("صورة_الهوية.jpg", "image/jpeg"),
    (
        "会议记录.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("scan0001.pdf", "application/pdf"),
    (
        "presentation final (2).pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("見積書.pdf", "application/pdf"),
    ("backup.zip", "application/zip"),
    ("анализы_крови.png", "image/png"),
];
pub const ENTITY_KINDS: &[&str] = &["bold", "italic", "code", "underline", "text_link", "text_mention"];

#[derive(Debug, Clone, Copy)]
pub enum Script {
    En,
    Ru,
    Ar,
    Zh,
    Ja,
}

impl Script {
    pub fn words(self) -> &'static [&'static str] {
        match self {
            Script::En => EN,
            Script::Ru => RU,
            Script::Ar => AR,
            Script::Zh => ZH,
            Script::Ja => JA,
        }
    }

    pub fn spaced(self) -> bool {
        !matches!(self, Script::Zh | Script::Ja)
    }

    pub fn roll(rng: &mut Rng) -> Script {
        match rng.below(100) {
            0..45 => Script::En,
            45..72 => Script::Ru,
            72..84 => Script::Ar,
            84..94 => Script::Zh,
            _ => Script::Ja,
        }
    }
}

pub struct ChatSpec {
    pub account: u64,
    pub chat: Chat,
    pub script: Script,
    /// Users who post here: `member_base..member_base + members`.
    pub member_base: i64,
    pub members: u64,
    pub next_msg: i64,
}

/// An earlier message that an edit or delete can target.
#[derive(Clone, Copy)]
pub struct Ref {
    pub chat: u32,
    pub msg: u32,
    /// Seconds after [`BASE_DATE`].
    pub date: u32,
}

/// Per-message facts that an edit must repeat, derived from (chat, message ID) alone.
pub struct Header {
    pub direction: Direction,
    pub sender: Sender,
    pub media: Option<MediaKind>,
    pub topic: Option<i64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub new: u64,
    pub edits: u64,
    pub deletes: u64,
    pub media: u64,
}

pub const BASE_DATE: i64 = 1_700_000_000;
/// Edit and delete targets remembered per account (recent-ish messages, randomly replaced).
pub const POOL: usize = 50_000;

pub struct Gen {
    pub rng: Rng,
    pub seed: u64,
    pub accounts: u64,
    pub chats: Vec<ChatSpec>,
    pub by_account: Vec<Vec<u32>>,
    pub pools: Vec<Vec<Ref>>,
    pub positions: Vec<u64>,
    pub clock: i64,
    pub batches: u64,
    pub counts: Counts,
}

pub fn user(id: i64) -> UserRef {
    let mut r = Rng::new(id as u64 ^ 0x5eed);
    UserRef {
        id,
        is_bot: false,
        first_name: r.pick(FIRST).to_string(),
        last_name: r.chance(500).then(|| r.pick(LAST).to_string()),
        username: r.chance(600).then(|| r.token("u_", 8)),
        language_code: r
            .chance(800)
            .then(|| r.pick(&["en", "ru", "ar", "zh-hans", "ja"]).to_string()),
    }
}

pub fn bot(account: u64) -> UserRef {
    UserRef {
        id: 7_000_000_000 + account as i64,
        is_bot: true,
        first_name: "Team Inbox".into(),
        last_name: None,
        username: Some(format!("team_inbox_{account}_bot")),
        language_code: None,
    }
}
