//! The stored values of the auth tables (declared in [`super::tables`]): users, API
//! tokens and browser sessions. Secrets never appear here: a user has an argon2id hash of the
//! password, tokens and sessions are keyed by the SHA-256 of the secret the client holds.

use serde::{Deserialize, Serialize};

use crate::store::codec::Record;

/// What a user may do. Admins see every account; agents see the accounts granted to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "agent" => Ok(Role::Agent),
            _ => Err(format!("unknown role `{s}` (admin or agent)")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: u64,
    /// Login name: lowercase ASCII letters, digits, `.`, `-`, `_`.
    pub name: String,
    pub role: Role,
    /// PHC string of the argon2id hash (`$argon2id$v=19$m=...`).
    pub password_hash: String,
    /// Accounts this user may see (agents; ignored for admins). Sorted, no duplicates.
    pub grants: Vec<u64>,
    /// A disabled user cannot log in and its tokens and sessions stop working.
    pub disabled: bool,
    pub created_at: i64,
}

impl Record for UserRecord {
    const NAME: &'static str = "user";
    const VERSION: u8 = 1;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub user: u64,
    /// The operator's label ("crm sync"), not a secret.
    pub label: String,
    /// First characters of the token (`lbx_AbCd`), so an operator can tell tokens apart.
    pub prefix: String,
    pub created_at: i64,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
}

impl Record for TokenRecord {
    const NAME: &'static str = "token";
    const VERSION: u8 = 1;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub user: u64,
    pub created_at: i64,
    /// Unix seconds; the session is refused (and later purged) after it.
    pub expires_at: i64,
}

impl Record for SessionRecord {
    const NAME: &'static str = "session";
    const VERSION: u8 = 1;
}
