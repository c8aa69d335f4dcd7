//! Bot API updates as Telegram sends them: built text messages, and the third-party captures in
//! `tests/fixtures/telegram/` (see `ATTRIBUTION.md` there).

use serde_json::{Value, json};

/// The date (seconds since the epoch) the tests' messages are written around.
pub const DATE: i64 = 1_700_000_000;

/// The captured updates, one JSON file each.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/telegram");

/// Text message `message_id` in a private chat, from the person the chat is with (`chat` is
/// their user id, `name` their first name). Its `update_id` is 0: the simulator numbers what it
/// is given; see [`numbered`] for an update a test delivers itself.
pub fn private_text(chat: i64, name: &str, message_id: i64, date: i64, text: &str) -> Value {
    json!({"update_id": 0, "message": {
        "message_id": message_id, "date": date, "text": text,
        "from": {"id": chat, "is_bot": false, "first_name": name},
        "chat": {"id": chat, "type": "private", "first_name": name}}})
}

/// `update` as update `update_id`.
pub fn numbered(mut update: Value, update_id: i64) -> Value {
    update["update_id"] = json!(update_id);
    update
}

/// The fixture `name` (without `.json`), raw.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}.json")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every fixture, raw, with its name, in name order.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}
