//! Read transactions: decoding and opening sealed records for the layers above.
//!
//! Every method blocks on the disk; async code reaches them through [`super::Store::read`].

use std::sync::Arc;

use redb::{ReadTransaction, ReadableTable};

use tokio::sync::watch;

use super::keyring::Keyring;
use super::records::{AccountRecord, ChatMeta, ChatRecord, StoredMessage};
use super::seal::Sealer;
use super::tables::*;
use super::{StoreError, StoreHealth};
use crate::model::{Chat, EventRecord, Message, MessageContent, Reactions};

pub struct Reader {
    txn: ReadTransaction,
    keyring: Arc<Keyring>,
    /// Where damage met while reading is counted (`None` for `lanbox check`, which counts its own).
    health: Option<Arc<watch::Sender<StoreHealth>>>,
}

/// A chat with its metadata opened.
#[derive(Debug, Clone)]
pub struct ChatView {
    pub key: ChatKey,
    pub record: ChatRecord,
    pub meta: ChatMeta,
}

impl ChatView {
    pub fn chat(&self) -> Chat {
        Chat {
            id: self.key.chat,
            kind: self.record.kind,
            title: self.meta.title.clone(),
            username: self.meta.username.clone(),
            is_forum: self.record.is_forum,
        }
    }
}

impl Reader {
    pub(super) fn new(
        txn: ReadTransaction,
        keyring: Arc<Keyring>,
        health: Option<Arc<watch::Sender<StoreHealth>>>,
    ) -> Reader {
        Reader { txn, keyring, health }
    }

    /// Counts a damaged record that a reader skipped (it shows in `/api/v1/health`).
    pub fn note_damage(&self) {
        if let Some(h) = &self.health {
            super::note_damage(h);
        }
    }

    /// `Ok(None)` (counted) for damage, so one damaged record does not fail a whole page.
    pub fn skip_damaged<T>(&self, r: Result<T, StoreError>) -> Result<Option<T>, StoreError> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_damage() => {
                self.note_damage();
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub fn account(&self, id: u64) -> Result<Option<AccountRecord>, StoreError> {
        let t = self.txn.open_table(ACCOUNT_RECORD)?;
        t.get(id)?.map(|v| v.value().get()).transpose()
    }

    pub fn accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let t = self.txn.open_table(ACCOUNT_RECORD)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(row?.1.value().get()?);
        }
        Ok(out)
    }

    /// The read transaction, for tables other layers own (the search index).
    pub fn txn(&self) -> &ReadTransaction {
        &self.txn
    }

    /// The master key's keyring (for keys wrapped outside account records).
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The account's data key (cached after the first use).
    pub fn sealer(&self, account: u64) -> Result<Arc<Sealer>, StoreError> {
        if let Some(k) = self.keyring.cached(account) {
            return Ok(k);
        }
        let rec = self
            .account(account)?
            .ok_or(StoreError::UnknownAccount(account))?;
        self.keyring.data_key(account, &rec.wrapped_key)
    }

    pub fn account_unread(&self, account: u64) -> Result<u64, StoreError> {
        let t = self.txn.open_table(ACCOUNT_UNREAD)?;
        Ok(t.get(account)?.map(|v| v.value()).unwrap_or(0))
    }

    /// A user's own read position and unread count in a chat; `None` when they share the
    /// chat's (see [`CHAT_USER_READ`]).
    pub fn user_read(&self, chat: ChatKey, user: u64) -> Result<Option<(i64, u32)>, StoreError> {
        let t = self.txn.open_table(CHAT_USER_READ)?;
        Ok(t.get((chat.scope, chat.chat, user))?.map(|v| v.value()))
    }

    /// The chats where Telegram user `sender` wrote to `account`, with the date of the first
    /// such message (see [`SENDER_CHAT`]); at most `limit`.
    pub fn sender_chats(
        &self,
        account: u64,
        sender: i64,
        limit: usize,
    ) -> Result<Vec<(ChatKey, i64)>, StoreError> {
        let t = self.txn.open_table(SENDER_CHAT)?;
        let mut out = Vec::new();
        for row in t
            .range((account, sender, 0, i64::MIN)..=(account, sender, u64::MAX, i64::MAX))?
            .take(limit)
        {
            let (k, v) = row?;
            let (_, _, scope, chat) = k.value();
            out.push((ChatKey { scope, chat }, v.value()));
        }
        Ok(out)
    }

    pub fn position(&self, account: u64) -> Result<Option<u64>, StoreError> {
        let t = self.txn.open_table(ACCOUNT_POSITION)?;
        Ok(t.get(account)?.map(|v| v.value()))
    }

    pub fn rejected(&self, account: u64) -> Result<u64, StoreError> {
        let t = self.txn.open_table(ACCOUNT_REJECTED)?;
        Ok(t.get(account)?.map(|v| v.value()).unwrap_or(0))
    }

    pub fn last_seq(&self) -> Result<u64, StoreError> {
        let t = self.txn.open_table(META)?;
        Ok(t.get(META_LAST_SEQ)?.map(|v| v.value()).unwrap_or(0))
    }

    /// A chat with its metadata opened. Metadata that fails to open (damaged) reads as none
    /// (no title), counted, so the chat's messages stay readable.
    pub fn chat(&self, key: ChatKey) -> Result<Option<ChatView>, StoreError> {
        let t = self.txn.open_table(CHAT_RECORD)?;
        let Some(v) = t.get(key)? else { return Ok(None) };
        let record = v.value().get()?;
        let opened = self
            .sealer(record.owner)
            .and_then(|s| s.open_record(&record.meta, &key.aad()));
        let meta = self.skip_damaged(opened)?.unwrap_or_default();
        Ok(Some(ChatView { key, record, meta }))
    }

    /// Every chat (keys and records, metadata still sealed), in key order.
    pub fn chat_records(&self) -> Result<Vec<(ChatKey, ChatRecord)>, StoreError> {
        let t = self.txn.open_table(CHAT_RECORD)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value(), v.value().get()?));
        }
        Ok(out)
    }

    pub fn stored_message(&self, key: MsgKey) -> Result<Option<StoredMessage>, StoreError> {
        let t = self.txn.open_table(CHAT_MESSAGE)?;
        t.get(key)?.map(|v| v.value().get()).transpose()
    }

    pub fn open_content(&self, key: MsgKey, msg: &StoredMessage) -> Result<MessageContent, StoreError> {
        self.sealer(msg.owner)?.open_record(&msg.content, &key.aad())
    }

    /// A message's reactions (empty when none). `owner` is the message's owner, who sealed them.
    pub fn reactions(&self, key: MsgKey, owner: u64) -> Result<Reactions, StoreError> {
        let t = self.txn.open_table(MESSAGE_REACTIONS)?;
        let Some(sealed) = t.get(key)?.map(|v| v.value().get()).transpose()? else {
            return Ok(Reactions::default());
        };
        self.sealer(owner)?.open_record(&sealed, &key.reactions_aad())
    }

    /// Reactions of several messages (`(key, owner)` each), each as [`Reader::reactions`]
    /// answers it, with the table opened once (a page of a chat).
    pub fn reactions_each(
        &self,
        msgs: &[(MsgKey, u64)],
    ) -> Result<Vec<Result<Reactions, StoreError>>, StoreError> {
        let t = self.txn.open_table(MESSAGE_REACTIONS)?;
        let one = |key: MsgKey, owner: u64| -> Result<Reactions, StoreError> {
            let Some(sealed) = t.get(key)?.map(|v| v.value().get()).transpose()? else {
                return Ok(Reactions::default());
            };
            self.sealer(owner)?.open_record(&sealed, &key.reactions_aad())
        };
        Ok(msgs.iter().map(|&(key, owner)| one(key, owner)).collect())
    }

    /// Rebuilds the normalised message, as seen by its owner account.
    pub fn message(&self, key: MsgKey) -> Result<Option<Message>, StoreError> {
        let Some(stored) = self.stored_message(key)? else {
            return Ok(None);
        };
        let chat = match self.chat(key.chat_key())? {
            Some(c) => c.chat(),
            None => Chat {
                id: key.chat,
                kind: stored.chat_kind,
                title: None,
                username: None,
                is_forum: false,
            },
        };
        Ok(Some(self.assemble(key, stored, chat)?))
    }

    /// Opens a stored message already read (pages of a chat), with its chat given by the caller.
    pub fn open_message(
        &self,
        key: MsgKey,
        stored: StoredMessage,
        chat: Chat,
    ) -> Result<Message, StoreError> {
        self.assemble(key, stored, chat)
    }

    fn assemble(&self, key: MsgKey, stored: StoredMessage, chat: Chat) -> Result<Message, StoreError> {
        // The record is ours: its ciphertext is decrypted where it lies.
        let content = self
            .sealer(stored.owner)?
            .open_record_owned(stored.content, &key.aad())?;
        Ok(Message {
            account: stored.owner,
            chat,
            message_id: stored.message_id,
            topic: stored.topic,
            direction: stored.direction,
            date: stored.date,
            edited_at: stored.edited_at,
            status: stored.status,
            content,
        })
    }

    /// Stored messages of a chat with keys in `range`, oldest first, at most `limit`. A record
    /// that does not decode (damaged) comes as `None`, counted, so a page walks past it.
    pub fn chat_stored(
        &self,
        chat: ChatKey,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(MsgKey, Option<StoredMessage>)>, StoreError> {
        let t = self.txn.open_table(CHAT_MESSAGE)?;
        let mut out = Vec::new();
        for row in t.range(chat.msg(from)..=chat.msg(to))?.take(limit) {
            let (k, v) = row?;
            out.push((k.value(), self.skip_damaged(v.value().get())?));
        }
        Ok(out)
    }

    /// Stored messages of a chat with keys in `from..=to`, newest first, at most `limit`. A
    /// record that does not decode (damaged) comes as `None`, counted.
    pub fn chat_stored_rev(
        &self,
        chat: ChatKey,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(MsgKey, Option<StoredMessage>)>, StoreError> {
        let t = self.txn.open_table(CHAT_MESSAGE)?;
        let mut out = Vec::new();
        for row in t.range(chat.msg(from)..=chat.msg(to))?.rev().take(limit) {
            let (k, v) = row?;
            out.push((k.value(), self.skip_damaged(v.value().get())?));
        }
        Ok(out)
    }

    /// Every stored message key in the store (for consistency checks and tests).
    pub fn all_message_keys(&self) -> Result<Vec<MsgKey>, StoreError> {
        let t = self.txn.open_table(CHAT_MESSAGE)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            out.push(row?.0.value());
        }
        Ok(out)
    }

    /// Events with a sequence number above `after`, oldest first, at most `limit`.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let t = self.txn.open_table(SEQ_EVENT)?;
        let mut out = Vec::new();
        for row in t.range(after.saturating_add(1)..)?.take(limit) {
            out.push(row?.1.value().get()?);
        }
        Ok(out)
    }

    /// The oldest sequence number still in the log (`None` when empty).
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        let t = self.txn.open_table(SEQ_EVENT)?;
        Ok(t.first()?.map(|(k, _)| k.value()))
    }
}
