//! Model builders: chats, users and text messages, and a store opened the way the tests open
//! one (no credentials directory).

use lanbox::model::*;
use lanbox::store::new_account::{self as accounts, NewAccount};
use lanbox::store::{Store, StoreOptions};

pub fn open(dir: &std::path::Path) -> Store {
    Store::open(
        dir,
        &StoreOptions {
            credentials_dir: None,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

pub fn account(store: &Store, name: &str, rented: bool) -> u64 {
    accounts::create_blocking(
        store,
        NewAccount {
            channel: "telegram".into(),
            name: name.into(),
            rented,
            ..Default::default()
        },
    )
    .unwrap()
    .id
}

pub fn chat(id: i64, kind: ChatKind, title: &str) -> Chat {
    Chat {
        id,
        kind,
        title: Some(title.into()),
        username: None,
        is_forum: false,
    }
}

pub fn user(id: i64, name: &str) -> Sender {
    Sender::User(UserRef {
        id,
        is_bot: false,
        first_name: name.into(),
        last_name: None,
        username: None,
        language_code: None,
    })
}

pub fn text_message(account: u64, chat: &Chat, id: i64, text: &str) -> Message {
    Message {
        account,
        chat: chat.clone(),
        message_id: id,
        topic: None,
        direction: Direction::Incoming,
        date: 1_700_000_000 + id,
        edited_at: None,
        status: Status::Delivered,
        content: MessageContent {
            sender: user(42, "Alice"),
            reply_to: None,
            forward: None,
            media_group: None,
            body: Body::Text(Text::plain(text)),
            notes: Vec::new(),
        },
    }
}

pub fn body_text(m: &Message) -> String {
    match &m.content.body {
        Body::Text(t) => t.text.clone(),
        other => format!("<{:?}>", other.kind()),
    }
}

/// A batch of `n` text messages of about 1 KiB each (ids from `from` + 1) in one private chat,
/// with the position after them: what fills a small disk quickly.
pub fn filler_batch(account: u64, from: u64, n: u64) -> lanbox::ingest::Batch {
    let c = chat(1001, ChatKind::Private, "Customer");
    let filler = "lorem ipsum dolor sit amet ".repeat(40);
    lanbox::ingest::Batch {
        account,
        changes: (from..from + n)
            .map(|i| {
                lanbox::ingest::Change::New(text_message(account, &c, i as i64 + 1, &format!("{i} {filler}")))
            })
            .collect(),
        position: Some(from + n),
    }
}

/// Blocks until the store's writes work again (no failure counted, the database open), or
/// panics after `within`. For tests whose store runs outside a tokio runtime.
/// Submits filler batches of `batch` messages from `pos` until one is refused (at most
/// `rounds`): the position reached, and the refusal (`None` if every batch was stored).
pub fn fill_until_refused(
    p: &lanbox::ingest::Pipeline,
    account: u64,
    mut pos: u64,
    batch: u64,
    rounds: usize,
) -> (u64, Option<lanbox::store::StoreError>) {
    for _ in 0..rounds {
        match p.submit_blocking(filler_batch(account, pos, batch)) {
            Ok(_) => pos += batch,
            Err(e) => return (pos, Some(e)),
        }
    }
    (pos, None)
}

pub fn wait_writes_work(store: &Store, within: std::time::Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut health = store.watch_health();
    rt.block_on(async {
        tokio::time::timeout(
            within,
            health.wait_for(|h| h.write_failures == 0 && h.database_open),
        )
        .await
        .expect("the store did not recover once space returned")
        .map(|_| ())
    })
    .unwrap();
}
