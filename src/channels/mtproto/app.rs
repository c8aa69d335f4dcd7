//! The box's Telegram application: the `api_id` and `api_hash` every login identifies itself
//! with (a team creates its own at my.telegram.org, see docs/user-accounts.md), and where logins
//! connect: Telegram's data centres, or, for development and tests only, the MTProto simulator
//! at a loopback address with the auth key it was started with.

use std::net::SocketAddrV4;

use super::login::LoginSpec;
use super::session::StoredSession;

/// `[telegram]` of lanbox.toml, validated.
#[derive(Clone, PartialEq, Eq)]
pub struct TelegramApp {
    pub api_id: i32,
    pub api_hash: String,
    pub endpoint: Endpoint,
}

/// Where a login connects.
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Telegram's own data centres (grammers makes an auth key with each).
    Telegram,
    /// Telegram's public test servers (`[telegram] test_servers`): a network of their own, with
    /// test phone numbers whose login code is fixed, for a smoke test by hand.
    TestServers,
    /// A data centre 2 whose auth key both ends already hold: the simulator
    /// (`[telegram] dev_simulator`, development and tests only).
    Preshared {
        addr: SocketAddrV4,
        auth_key: Box<[u8; 256]>,
    },
}

impl std::fmt::Debug for TelegramApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let endpoint = match &self.endpoint {
            Endpoint::Telegram => "telegram".to_string(),
            Endpoint::TestServers => "telegram test servers".to_string(),
            Endpoint::Preshared { addr, .. } => format!("simulator at {addr}"),
        };
        f.debug_struct("TelegramApp")
            .field("api_id", &self.api_id)
            .field("endpoint", &endpoint)
            .finish_non_exhaustive()
    }
}

impl TelegramApp {
    /// What [`super::begin`] needs to log `phone` in.
    pub fn login_spec(&self, phone: String, name: Option<String>, rented: bool) -> LoginSpec {
        LoginSpec {
            api_id: self.api_id,
            api_hash: self.api_hash.clone(),
            phone,
            name,
            rented,
            session: match &self.endpoint {
                Endpoint::Telegram => StoredSession::telegram(),
                Endpoint::TestServers => StoredSession::telegram_test(),
                Endpoint::Preshared { addr, auth_key } => StoredSession::preshared(2, *addr, **auth_key),
            },
        }
    }
}

/// A phone number as Telegram takes it: digits only (spaces, dashes, dots, brackets and a
/// leading `+` dropped), 5 to 20 of them. The error never repeats the number.
pub fn normalise_phone(raw: &str) -> Result<String, &'static str> {
    let digits: String = raw
        .trim()
        .trim_start_matches('+')
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if (5..=20).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err("a phone number is 5 to 20 digits, with the country code (+49 30 1234567)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_normalised_and_checked() {
        assert_eq!(normalise_phone(" +49 (30) 123-45.67 ").unwrap(), "49301234567");
        assert_eq!(normalise_phone("15550100").unwrap(), "15550100");
        for bad in [
            "",
            "+",
            "1234",
            "49301234567x",
            "+49 30 12 34 56 78 90 12 34 56 7",
        ] {
            assert!(normalise_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_shows_neither_hash_nor_key() {
        let app = TelegramApp {
            api_id: 7,
            api_hash: "0123456789abcdef0123456789abcdef".into(),
            endpoint: Endpoint::Preshared {
                addr: "127.0.0.1:4242".parse().unwrap(),
                auth_key: Box::new([9u8; 256]),
            },
        };
        let shown = format!("{app:?}");
        assert!(
            !shown.contains("0123456789abcdef") && !shown.contains("9, 9"),
            "{shown}"
        );
        assert!(shown.contains("127.0.0.1:4242"), "{shown}");
    }
}
