//! [`WriteCtx`]: what a writer job sees of the open write transaction.
//!
//! It opens each table once per job, caches the chats and accounts a job touches (a batch of a
//! thousand messages in one chat rewrites that chat's record once, not a thousand times), and
//! keeps two invariants in one place:
//! - every account's unread counter equals the sum of the unread counts of its chats
//!   ([`WriteCtx::update_chat`] applies the difference, whatever the closure changed);
//! - every change appends to the event log under the next workspace sequence number
//!   ([`WriteCtx::append_event`]), in the same transaction.

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use redb::{ReadableTable, Table, WriteTransaction};

use super::codec::{Rec, Stored};
use super::keyring::Keyring;
use super::records::{
    AccountRecord, ActivityRecord, ChatMeta, ChatRecord, ConversationRecord, StoredMessage,
};
use super::seal::Sealer;
use super::tables::*;
use super::{Published, StoreError};
use crate::model::{EventRecord, Message, MessageContent, Reactions};

/// Writes a layer above the store gathers in memory during a transaction and makes once,
/// just before it commits: the search index collects a round's postings and writes each
/// posting block once, instead of once per message. It lives as long as the transaction (every
/// job of a writer round sees it), and goes with it when the transaction is rolled back.
pub trait Deferred: Any + Send {
    /// Makes the gathered writes, in the transaction about to commit.
    fn flush(self: Box<Self>, txn: &WriteTransaction) -> Result<(), StoreError>;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A chat record with its metadata opened, as cached during a job.
#[derive(Debug, Clone)]
pub struct ChatState {
    pub record: ChatRecord,
    pub meta: ChatMeta,
    pub meta_changed: bool,
}

pub struct WriteCtx<'t> {
    txn: &'t WriteTransaction,
    keyring: &'t Keyring,
    messages: Table<'t, MsgKey, Rec<StoredMessage>>,
    chats: Table<'t, ChatKey, Rec<ChatRecord>>,
    events: Table<'t, u64, Rec<EventRecord>>,
    meta: Table<'t, &'static str, u64>,
    accounts: Table<'t, u64, Rec<AccountRecord>>,
    account_unread: Table<'t, u64, u64>,
    positions: Table<'t, u64, u64>,
    rejected: Table<'t, u64, u64>,
    last_seq: u64,
    seq_dirty: bool,
    /// `None` marks a chat removed during this job.
    chat_cache: HashMap<ChatKey, Option<ChatState>>,
    account_cache: HashMap<u64, AccountRecord>,
    unread_delta: HashMap<u64, i64>,
    /// Users' own read state per chat touched in this job, written back in `finish` (an
    /// incoming message moves every reader's count: in memory, not a table write each).
    user_reads: HashMap<ChatKey, UserReads>,
    /// Conversation records read in this job (`None`: the chat has none). Writes go through.
    conversations: HashMap<ChatKey, Option<ConversationRecord>>,
    published: Vec<Published>,
    /// What higher layers defer to the commit (at most one of each type).
    deferred: Vec<Box<dyn Deferred>>,
    pub now: i64,
}

/// One chat's per-user read rows as a job holds them.
#[derive(Default)]
struct UserReads {
    rows: Vec<(u64, i64, u32)>,
    dirty: bool,
    /// The rows in the table go first (the chat's read state was dropped).
    cleared: bool,
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl<'t> WriteCtx<'t> {
    pub(super) fn open(txn: &'t WriteTransaction, keyring: &'t Keyring) -> Result<Self, StoreError> {
        let meta = txn.open_table(META)?;
        let last_seq = meta.get(META_LAST_SEQ)?.map(|v| v.value()).unwrap_or(0);
        Ok(WriteCtx {
            txn,
            keyring,
            messages: txn.open_table(CHAT_MESSAGE)?,
            chats: txn.open_table(CHAT_RECORD)?,
            events: txn.open_table(SEQ_EVENT)?,
            meta,
            accounts: txn.open_table(ACCOUNT_RECORD)?,
            account_unread: txn.open_table(ACCOUNT_UNREAD)?,
            positions: txn.open_table(ACCOUNT_POSITION)?,
            rejected: txn.open_table(ACCOUNT_REJECTED)?,
            last_seq,
            seq_dirty: false,
            chat_cache: HashMap::new(),
            account_cache: HashMap::new(),
            unread_delta: HashMap::new(),
            user_reads: HashMap::new(),
            conversations: HashMap::new(),
            published: Vec::new(),
            deferred: Vec::new(),
            now: unix_now(),
        })
    }

    /// The transaction, for tables other layers own (the search index).
    pub fn txn(&self) -> &'t WriteTransaction {
        self.txn
    }

    // ---- who wrote where (the contact panel) ----

    /// Notes that Telegram user `sender` wrote to `account` in `chat` (kept from the first time:
    /// one lookup per message, a write only for a new pair).
    pub fn note_sender_chat(
        &mut self,
        account: u64,
        sender: i64,
        chat: ChatKey,
        date: i64,
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(SENDER_CHAT)?;
        let key = (account, sender, chat.scope, chat.chat);
        if t.get(key)?.is_none() {
            t.insert(key, date)?;
        }
        Ok(())
    }

    /// Forgets who wrote where to `account` (on release).
    pub fn drop_sender_chats(&mut self, account: u64) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(SENDER_CHAT)?;
        t.retain_in(
            (account, i64::MIN, 0, i64::MIN)..=(account, i64::MAX, u64::MAX, i64::MAX),
            |_, _| false,
        )?;
        Ok(())
    }

    // ---- per-user read state ----

    fn load_user_reads(&mut self, chat: ChatKey) -> Result<&mut UserReads, StoreError> {
        if !self.user_reads.contains_key(&chat) {
            let t = self.txn.open_table(CHAT_USER_READ)?;
            let mut rows = Vec::new();
            for row in t.range((chat.scope, chat.chat, 0)..=(chat.scope, chat.chat, u64::MAX))? {
                let (k, v) = row?;
                let (read_up_to, unread) = v.value();
                rows.push((k.value().2, read_up_to, unread));
            }
            self.user_reads.insert(
                chat,
                UserReads {
                    rows,
                    ..UserReads::default()
                },
            );
        }
        Ok(self.user_reads.get_mut(&chat).expect("loaded above"))
    }

    /// Every user's own read state in a chat: `(user, read_up_to, unread)`.
    pub fn user_reads(&mut self, chat: ChatKey) -> Result<Vec<(u64, i64, u32)>, StoreError> {
        Ok(self.load_user_reads(chat)?.rows.clone())
    }

    pub fn set_user_read(
        &mut self,
        chat: ChatKey,
        user: u64,
        read_up_to: i64,
        unread: u32,
    ) -> Result<(), StoreError> {
        let r = self.load_user_reads(chat)?;
        match r.rows.iter_mut().find(|row| row.0 == user) {
            Some(row) => *row = (user, read_up_to, unread),
            None => r.rows.push((user, read_up_to, unread)),
        }
        r.dirty = true;
        Ok(())
    }

    /// Moves the unread count of every user whose read position is below `msg` by `delta`
    /// (an incoming message arrived or went).
    pub fn count_for_readers(&mut self, chat: ChatKey, msg: i64, delta: i32) -> Result<(), StoreError> {
        let r = self.load_user_reads(chat)?;
        for row in r.rows.iter_mut().filter(|row| msg > row.1) {
            row.2 = row.2.saturating_add_signed(delta);
            r.dirty = true;
        }
        Ok(())
    }

    /// Forgets every user's read state in a chat (the chat is gone or moved).
    pub fn drop_user_reads(&mut self, chat: ChatKey) -> Result<(), StoreError> {
        self.user_reads.insert(
            chat,
            UserReads {
                rows: Vec::new(),
                dirty: true,
                cleared: true,
            },
        );
        Ok(())
    }

    fn flush_user_reads(&mut self) -> Result<(), StoreError> {
        let dirty: Vec<(ChatKey, UserReads)> = std::mem::take(&mut self.user_reads)
            .into_iter()
            .filter(|(_, r)| r.dirty)
            .collect();
        if dirty.is_empty() {
            return Ok(());
        }
        let mut t = self.txn.open_table(CHAT_USER_READ)?;
        for (chat, r) in dirty {
            if r.cleared {
                t.retain_in(
                    (chat.scope, chat.chat, 0)..=(chat.scope, chat.chat, u64::MAX),
                    |_, _| false,
                )?;
            }
            for (user, read_up_to, unread) in r.rows {
                t.insert((chat.scope, chat.chat, user), (read_up_to, unread))?;
            }
        }
        Ok(())
    }

    // ---- the team's state of a conversation ----

    /// Status, assignee and labels of a chat; `None` when nobody set any yet.
    pub fn conversation(&mut self, chat: ChatKey) -> Result<Option<ConversationRecord>, StoreError> {
        if let Some(c) = self.conversations.get(&chat) {
            return Ok(c.clone());
        }
        let t = self.txn.open_table(CHAT_CONVERSATION)?;
        let rec = t.get(chat)?.map(|v| v.value().get()).transpose()?;
        self.conversations.insert(chat, rec.clone());
        Ok(rec)
    }

    pub fn put_conversation(&mut self, chat: ChatKey, rec: &ConversationRecord) -> Result<(), StoreError> {
        self.txn
            .open_table(CHAT_CONVERSATION)?
            .insert(chat, Stored::new(rec)?)?;
        self.conversations.insert(chat, Some(rec.clone()));
        Ok(())
    }

    /// Adds an entry to a chat's activity trail under the sequence number of its event.
    pub fn put_activity(&mut self, chat: ChatKey, seq: u64, rec: &ActivityRecord) -> Result<(), StoreError> {
        self.txn
            .open_table(CHAT_ACTIVITY)?
            .insert((chat.scope, chat.chat, seq), Stored::new(rec)?)?;
        Ok(())
    }

    /// Forgets a chat's status, assignee, labels, activity trail and notes (the chat is gone).
    pub fn drop_conversation(&mut self, chat: ChatKey) -> Result<(), StoreError> {
        self.txn.open_table(CHAT_CONVERSATION)?.remove(chat)?;
        self.conversations.insert(chat, None);
        let range = (chat.scope, chat.chat, 0)..=(chat.scope, chat.chat, u64::MAX);
        self.txn
            .open_table(CHAT_ACTIVITY)?
            .retain_in(range.clone(), |_, _| false)?;
        self.txn.open_table(CHAT_NOTE)?.retain_in(range, |_, _| false)?;
        Ok(())
    }

    /// The transaction's deferred writes of type `T`, created empty on first use.
    pub fn deferred<T: Deferred + Default>(&mut self) -> &mut T {
        let at = match self.deferred.iter_mut().position(|d| d.as_any_mut().is::<T>()) {
            Some(i) => i,
            None => {
                self.deferred.push(Box::new(T::default()));
                self.deferred.len() - 1
            }
        };
        self.deferred[at]
            .as_any_mut()
            .downcast_mut::<T>()
            .expect("checked type")
    }

    /// Makes the deferred writes of type `T` now (before something that reads or replaces
    /// what they would write).
    pub fn flush_deferred<T: Deferred>(&mut self) -> Result<(), StoreError> {
        if let Some(i) = self.deferred.iter_mut().position(|d| d.as_any_mut().is::<T>()) {
            self.deferred.remove(i).flush(self.txn)?;
        }
        Ok(())
    }

    /// Hands the deferred writes to the next job of the round (the writer).
    pub(super) fn take_deferred(&mut self) -> Vec<Box<dyn Deferred>> {
        std::mem::take(&mut self.deferred)
    }

    pub(super) fn set_deferred(&mut self, d: Vec<Box<dyn Deferred>>) {
        self.deferred = d;
    }

    // ---- accounts and keys ----

    pub fn account(&mut self, id: u64) -> Result<&AccountRecord, StoreError> {
        if !self.account_cache.contains_key(&id) {
            let rec = self
                .accounts
                .get(id)?
                .map(|v| v.value().get())
                .transpose()?
                .ok_or(StoreError::UnknownAccount(id))?;
            self.account_cache.insert(id, rec);
        }
        Ok(&self.account_cache[&id])
    }

    pub fn put_account(&mut self, rec: AccountRecord) -> Result<(), StoreError> {
        self.accounts.insert(rec.id, Stored::new(&rec)?)?;
        self.account_cache.insert(rec.id, rec);
        Ok(())
    }

    /// Deletes an account's record, counters and position, and forgets its data key: whatever
    /// is still sealed under that key can no longer be opened (the last step of a release).
    pub fn destroy_account(&mut self, id: u64) -> Result<(), StoreError> {
        self.accounts.remove(id)?;
        self.account_unread.remove(id)?;
        self.unread_delta.remove(&id);
        self.positions.remove(id)?;
        self.rejected.remove(id)?;
        self.account_cache.remove(&id);
        self.keyring.forget(id);
        Ok(())
    }

    /// A flag in the meta table (e.g. a release in progress); `None` when absent.
    pub fn meta_flag(&self, name: &str) -> Result<Option<u64>, StoreError> {
        Ok(self.meta.get(name)?.map(|v| v.value()))
    }

    pub fn set_meta_flag(&mut self, name: &str, value: Option<u64>) -> Result<(), StoreError> {
        match value {
            Some(v) => self.meta.insert(name, v)?,
            None => self.meta.remove(name)?,
        };
        Ok(())
    }

    pub fn next_account_id(&mut self) -> Result<u64, StoreError> {
        let next = self.meta.get(META_NEXT_ACCOUNT)?.map(|v| v.value()).unwrap_or(1);
        self.meta.insert(META_NEXT_ACCOUNT, next + 1)?;
        Ok(next)
    }

    pub fn keyring(&self) -> &'t Keyring {
        self.keyring
    }

    pub fn sealer(&mut self, account: u64) -> Result<Arc<Sealer>, StoreError> {
        if let Some(k) = self.keyring.cached(account) {
            return Ok(k);
        }
        let wrapped = self.account(account)?.wrapped_key.clone();
        self.keyring.data_key(account, &wrapped)
    }

    // ---- messages ----

    pub fn get_message(&self, key: MsgKey) -> Result<Option<StoredMessage>, StoreError> {
        self.messages.get(key)?.map(|v| v.value().get()).transpose()
    }

    pub fn put_message(&mut self, key: MsgKey, msg: &StoredMessage) -> Result<(), StoreError> {
        self.messages.insert(key, Stored::new(msg)?)?;
        Ok(())
    }

    pub fn remove_message(&mut self, key: MsgKey) -> Result<Option<StoredMessage>, StoreError> {
        let old = self.messages.remove(key)?;
        old.map(|v| v.value().get()).transpose()
    }

    /// Keys and records of a chat's messages with keys in `from..=to`, oldest first.
    pub fn chat_messages(
        &self,
        chat: ChatKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<(MsgKey, StoredMessage)>, StoreError> {
        let mut out = Vec::new();
        for row in self.messages.range(chat.msg(from)..=chat.msg(to))? {
            let (k, v) = row?;
            out.push((k.value(), v.value().get()?));
        }
        Ok(out)
    }

    /// Up to `limit` keys and records of a chat's messages from key `from` on, oldest first.
    pub fn chat_messages_limit(
        &self,
        chat: ChatKey,
        from: i64,
        limit: usize,
    ) -> Result<Vec<(MsgKey, StoredMessage)>, StoreError> {
        let mut out = Vec::new();
        for row in self
            .messages
            .range(chat.msg(from)..=chat.msg(i64::MAX))?
            .take(limit)
        {
            let (k, v) = row?;
            out.push((k.value(), v.value().get()?));
        }
        Ok(out)
    }

    /// The newest message of a chat with a key below `below`.
    pub fn last_message_before(
        &self,
        chat: ChatKey,
        below: i64,
    ) -> Result<Option<(MsgKey, StoredMessage)>, StoreError> {
        if below == i64::MIN {
            return Ok(None);
        }
        match self
            .messages
            .range(chat.msg(i64::MIN)..chat.msg(below))?
            .next_back()
        {
            Some(row) => {
                let (k, v) = row?;
                Ok(Some((k.value(), v.value().get()?)))
            }
            None => Ok(None),
        }
    }

    pub fn seal_content(
        &mut self,
        owner: u64,
        key: MsgKey,
        content: &MessageContent,
    ) -> Result<super::seal::Sealed, StoreError> {
        let sealer = self.sealer(owner)?;
        sealer.seal_record(content, &key.aad())
    }

    pub fn open_content(&mut self, key: MsgKey, msg: &StoredMessage) -> Result<MessageContent, StoreError> {
        let sealer = self.sealer(msg.owner)?;
        sealer.open_record(&msg.content, &key.aad())
    }

    /// A message's reactions (empty when it has none). `owner` sealed them.
    pub fn reactions(&mut self, key: MsgKey, owner: u64) -> Result<Reactions, StoreError> {
        let table = self.txn.open_table(MESSAGE_REACTIONS)?;
        let Some(sealed) = table.get(key)?.map(|v| v.value().get()).transpose()? else {
            return Ok(Reactions::default());
        };
        let sealer = self.sealer(owner)?;
        sealer.open_record(&sealed, &key.reactions_aad())
    }

    /// Stores a message's reactions sealed under `owner`'s key; empty reactions remove the row.
    pub fn put_reactions(&mut self, key: MsgKey, owner: u64, r: &Reactions) -> Result<(), StoreError> {
        let mut table = self.txn.open_table(MESSAGE_REACTIONS)?;
        if r.is_empty() {
            table.remove(key)?;
            return Ok(());
        }
        let sealer = self.sealer(owner)?;
        let sealed = sealer.seal_record(r, &key.reactions_aad())?;
        table.insert(key, Stored::new(&sealed)?)?;
        Ok(())
    }

    /// Removes a message's reactions and returns them opened (to move or drop them).
    pub fn take_reactions(&mut self, key: MsgKey, owner: u64) -> Result<Reactions, StoreError> {
        let r = self.reactions(key, owner)?;
        self.txn.open_table(MESSAGE_REACTIONS)?.remove(key)?;
        Ok(r)
    }

    // ---- chats ----

    pub fn chat(&mut self, key: ChatKey) -> Result<Option<&ChatState>, StoreError> {
        self.load_chat(key)?;
        Ok(self.chat_cache.get(&key).and_then(|c| c.as_ref()))
    }

    fn load_chat(&mut self, key: ChatKey) -> Result<(), StoreError> {
        if self.chat_cache.contains_key(&key) {
            return Ok(());
        }
        let record = self.chats.get(key)?.map(|v| v.value().get()).transpose()?;
        let state = match record {
            None => None,
            Some(record) => {
                let sealer = self.sealer(record.owner)?;
                let meta = sealer.open_record(&record.meta, &key.aad())?;
                Some(ChatState {
                    record,
                    meta,
                    meta_changed: false,
                })
            }
        };
        self.chat_cache.insert(key, state);
        Ok(())
    }

    /// Creates a chat (it must not exist).
    pub fn insert_chat(&mut self, key: ChatKey, state: ChatState) -> Result<(), StoreError> {
        self.load_chat(key)?;
        for &a in &state.record.accounts {
            *self.unread_delta.entry(a).or_default() += i64::from(state.record.unread);
        }
        self.chat_cache.insert(key, Some(state));
        Ok(())
    }

    /// Changes a chat; per-account unread counters follow whatever `f` did to `accounts` and
    /// `unread`. Returns `None` when the chat does not exist.
    pub fn update_chat<R>(
        &mut self,
        key: ChatKey,
        f: impl FnOnce(&mut ChatState) -> R,
    ) -> Result<Option<R>, StoreError> {
        self.load_chat(key)?;
        let Some(Some(state)) = self.chat_cache.get_mut(&key) else {
            return Ok(None);
        };
        for &a in &state.record.accounts {
            *self.unread_delta.entry(a).or_default() -= i64::from(state.record.unread);
        }
        let r = f(state);
        for &a in &state.record.accounts {
            *self.unread_delta.entry(a).or_default() += i64::from(state.record.unread);
        }
        Ok(Some(r))
    }

    pub fn remove_chat(&mut self, key: ChatKey) -> Result<Option<ChatState>, StoreError> {
        self.drop_user_reads(key)?;
        self.drop_conversation(key)?;
        self.load_chat(key)?;
        let old = self.chat_cache.insert(key, None).flatten();
        if let Some(s) = &old {
            for &a in &s.record.accounts {
                *self.unread_delta.entry(a).or_default() -= i64::from(s.record.unread);
            }
        }
        Ok(old)
    }

    // ---- positions, counters, events ----

    pub fn position(&self, account: u64) -> Result<Option<u64>, StoreError> {
        Ok(self.positions.get(account)?.map(|v| v.value()))
    }

    /// Records the connector's upstream position. It only moves forward.
    pub fn set_position(&mut self, account: u64, pos: u64) -> Result<(), StoreError> {
        if self.position(account)?.is_none_or(|p| pos > p) {
            self.positions.insert(account, pos)?;
        }
        Ok(())
    }

    pub fn count_rejected(&mut self, account: u64) -> Result<(), StoreError> {
        let n = self.rejected.get(account)?.map(|v| v.value()).unwrap_or(0);
        self.rejected.insert(account, n + 1)?;
        Ok(())
    }

    /// Appends an event under the next sequence number and queues it for publishing after the
    /// commit. `event.seq` is filled in here.
    pub fn append_event(
        &mut self,
        mut event: EventRecord,
        message: Option<Arc<Message>>,
    ) -> Result<u64, StoreError> {
        self.last_seq += 1;
        self.seq_dirty = true;
        event.seq = self.last_seq;
        event.at = self.now;
        self.events.insert(event.seq, Stored::new(&event)?)?;
        self.published.push(Published { event, message });
        Ok(self.last_seq)
    }

    /// The event log table itself, for trimming its oldest end (`live::retention`).
    pub fn events_table(&mut self) -> &mut Table<'t, u64, Rec<EventRecord>> {
        &mut self.events
    }

    /// Writes back what the job cached; returns the events to publish once committed.
    pub(super) fn finish(&mut self) -> Result<Vec<Published>, StoreError> {
        self.flush_user_reads()?;
        self.conversations.clear();
        for (key, state) in std::mem::take(&mut self.chat_cache) {
            match state {
                None => {
                    self.chats.remove(key)?;
                }
                Some(mut s) => {
                    if s.meta_changed {
                        let sealer = self.sealer(s.record.owner)?;
                        s.record.meta = sealer.seal_record(&s.meta, &key.aad())?;
                    }
                    self.chats.insert(key, Stored::new(&s.record)?)?;
                }
            }
        }
        for (account, delta) in std::mem::take(&mut self.unread_delta) {
            if delta == 0 {
                continue;
            }
            let cur = self.account_unread.get(account)?.map(|v| v.value()).unwrap_or(0) as i64;
            let new = (cur + delta).max(0) as u64;
            self.account_unread.insert(account, new)?;
        }
        if self.seq_dirty {
            self.meta.insert(META_LAST_SEQ, self.last_seq)?;
            self.seq_dirty = false;
        }
        Ok(std::mem::take(&mut self.published))
    }
}
