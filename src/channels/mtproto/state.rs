//! A user account's MTProto update state (`pts`, `qts`, `date`, `seq` and each channel's `pts`)
//! in its own table, written by the connector in the same transaction as the messages it
//! delivered ([`crate::ingest::Pipeline::submit_with`]), as the Bot API offset is. Catch-up after
//! a restart starts from it, so a crash never loses or doubles a message.

use grammers_session::types::{ChannelState, UpdatesState};
use grammers_session::updates::{MessageBox, State};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::store::codec::{Rec, Record, Stored};
use crate::store::{Reader, Store, StoreError, WriteCtx};

/// `account -> MtState`.
pub const ACCOUNT_MTSTATE: TableDefinition<u64, Rec<MtState>> = TableDefinition::new("mtproto_account_state");

/// What `updates.getDifference` needs to continue where the account stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtState {
    pub pts: i32,
    pub qts: i32,
    pub date: i32,
    pub seq: i32,
    /// `(channel ID, pts)`.
    pub channels: Vec<(i64, i32)>,
}

impl Record for MtState {
    const NAME: &'static str = "mtproto state";
    const VERSION: u8 = 1;
}

impl MtState {
    /// Moves forward by what one update carried ([`State`] is "up to and including" it).
    pub fn advance(&mut self, s: &State) {
        self.date = self.date.max(s.date);
        self.seq = self.seq.max(s.seq);
        match s.message_box {
            Some(MessageBox::Common { pts }) => self.pts = self.pts.max(pts),
            Some(MessageBox::Secondary { qts }) => self.qts = self.qts.max(qts),
            Some(MessageBox::Channel { channel_id, pts }) => {
                match self.channels.iter_mut().find(|(id, _)| *id == channel_id) {
                    Some(c) => c.1 = c.1.max(pts),
                    None => self.channels.push((channel_id, pts)),
                }
            }
            None => {}
        }
    }

    pub fn to_grammers(&self) -> UpdatesState {
        UpdatesState {
            pts: self.pts,
            qts: self.qts,
            date: self.date,
            seq: self.seq,
            channels: self
                .channels
                .iter()
                .map(|&(id, pts)| ChannelState { id, pts })
                .collect(),
        }
    }
}

/// Inside a write job: records `state` for `account` (the caller's batch commits with it).
pub fn put(ctx: &mut WriteCtx<'_>, account: u64, state: &MtState) -> Result<(), StoreError> {
    ctx.txn()
        .open_table(ACCOUNT_MTSTATE)?
        .insert(account, Stored::new(state)?)?;
    Ok(())
}

/// Drops `account`'s state, its messages' chats ([`super::message_chat`]) and its channels'
/// access hashes ([`super::channel_access`]), after a logout
/// or when the account is released.
pub async fn forget(store: &Store, account: u64) -> Result<(), StoreError> {
    store
        .write(1, move |ctx| {
            ctx.txn().open_table(ACCOUNT_MTSTATE)?.remove(account)?;
            super::message_chat::forget(ctx, account)?;
            super::backfill::forget(ctx, account)?;
            super::channel_access::forget(ctx, account)
        })
        .await
}

/// The committed state of `account`, if it ever had one.
pub fn get(r: &Reader, account: u64) -> Result<Option<MtState>, StoreError> {
    let t = match r.txn().open_table(ACCOUNT_MTSTATE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    t.get(account)?.map(|v| v.value().get()).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_takes_each_box_forward_only() {
        let mut s = MtState::default();
        let at = |mb| State {
            date: 10,
            seq: 2,
            message_box: Some(mb),
        };
        s.advance(&at(MessageBox::Common { pts: 5 }));
        s.advance(&at(MessageBox::Common { pts: 4 }));
        s.advance(&at(MessageBox::Secondary { qts: 3 }));
        s.advance(&at(MessageBox::Channel {
            channel_id: 7,
            pts: 9,
        }));
        s.advance(&at(MessageBox::Channel {
            channel_id: 7,
            pts: 11,
        }));
        assert_eq!(
            s,
            MtState {
                pts: 5,
                qts: 3,
                date: 10,
                seq: 2,
                channels: vec![(7, 11)]
            }
        );
        assert_eq!(s.to_grammers().channels[0].pts, 11);
    }
}
