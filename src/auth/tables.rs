//! The auth tables, declared once, with value types that own their encoding (see
//! [`crate::store::codec::Rec`]): users, their unique names, API tokens and browser sessions.
//! Secrets are never stored: tokens and sessions are keyed by the SHA-256 of what the client
//! holds.
//!
//! Names follow `key_value`.

use redb::TableDefinition;

use super::records::{SessionRecord, TokenRecord, UserRecord};
use crate::store::codec::Rec;

/// `user -> UserRecord`: name, role, password hash, account grants.
pub const USER_RECORD: TableDefinition<u64, Rec<UserRecord>> = TableDefinition::new("user_record");
/// `user name -> user`: the unique login name.
pub const USERNAME_USER: TableDefinition<&str, u64> = TableDefinition::new("username_user");
/// `SHA-256 of an API token -> TokenRecord`. The token itself is never stored.
pub const TOKENHASH_TOKEN: TableDefinition<&[u8; 32], Rec<TokenRecord>> =
    TableDefinition::new("tokenhash_token");
/// `SHA-256 of a session cookie -> SessionRecord`. The cookie value is never stored.
pub const SESSIONHASH_SESSION: TableDefinition<&[u8; 32], Rec<SessionRecord>> =
    TableDefinition::new("sessionhash_session");
