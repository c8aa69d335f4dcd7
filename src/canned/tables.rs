//! The canned replies' redb tables, declared once (see the store's `tables` module for the
//! conventions). Names follow `key_value`, prefixed `canned_`.

use redb::TableDefinition;

use super::CannedRecord;
use crate::store::codec::Rec;
use crate::store::seal::Sealed;

/// `reply id -> CannedRecord`: who may see it in the clear, its shortcut and text sealed.
pub const CANNED_REPLY: TableDefinition<u64, Rec<CannedRecord>> = TableDefinition::new("canned_reply");
/// `name -> wrapped key`: the team key (`"team"`) that seals every reply, wrapped by the
/// master key.
pub const CANNED_KEY: TableDefinition<&str, Rec<Sealed>> = TableDefinition::new("canned_key");
