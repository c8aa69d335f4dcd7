//! A user account's MTProto session as lanbox keeps it: the home data centre, each data centre's
//! address and auth key, and the signed-in user. It is stored only sealed, inside the account
//! record's secret (the account's data key, itself wrapped by the master key), exactly like a
//! bot token; `Debug` never prints a key.
//!
//! The update state is not part of it: that commits with the messages ([`super::state`]), and
//! is put into the grammers session when the connector starts.

use std::collections::HashMap;
use std::net::{SocketAddrV4, SocketAddrV6};

use grammers_session::storages::MemorySession;
use grammers_session::types::{DcOption, PeerAuth, PeerId, PeerInfo, UpdatesState};
use grammers_session::{Session, SessionData};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

/// One data centre: where it is and, once a key was made or given, the auth key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredDc {
    pub id: i32,
    pub ipv4: SocketAddrV4,
    pub ipv6: SocketAddrV6,
    #[serde(with = "serde_bytes")]
    pub auth_key: Option<Vec<u8>>,
}

impl Drop for StoredDc {
    fn drop(&mut self) {
        if let Some(k) = self.auth_key.as_mut() {
            k.zeroize();
        }
    }
}

/// The sealed part of a user account.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoredSession {
    pub home_dc: i32,
    pub dcs: Vec<StoredDc>,
    /// The signed-in user: ID and access hash.
    pub me: Option<(i64, i64)>,
}

impl std::fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSession")
            .field("home_dc", &self.home_dc)
            .field("dcs", &self.dcs.iter().map(|d| d.id).collect::<Vec<_>>())
            .field("signed_in", &self.me.is_some())
            .finish()
    }
}

/// Telegram's test network: data centre, IPv4, IPv6 (core.telegram.org/api/datacenter).
const TEST_DCS: [(i32, [u8; 4], [u16; 8]); 3] = [
    (
        1,
        [149, 154, 175, 10],
        [0x2001, 0xb28, 0xf23d, 0xf001, 0, 0, 0, 0xe],
    ),
    (
        2,
        [149, 154, 167, 40],
        [0x2001, 0x67c, 0x4e8, 0xf002, 0, 0, 0, 0xe],
    ),
    (
        3,
        [149, 154, 175, 117],
        [0x2001, 0xb28, 0xf23d, 0xf003, 0, 0, 0, 0xe],
    ),
];

impl StoredSession {
    /// A new session for Telegram's own data centres: home DC 2 at its known address, no key
    /// yet (grammers makes one on first connect; `PHONE_MIGRATE` moves the home DC).
    pub fn telegram() -> StoredSession {
        from_data(&SessionData::default(), None)
    }

    /// A new session for Telegram's test servers (data centres 1 to 3 of the test network,
    /// at the addresses Telegram publishes for it; grammers knows the test network's RSA key,
    /// so it makes auth keys there as on the real network).
    pub fn telegram_test() -> StoredSession {
        let dc_options = TEST_DCS
            .iter()
            .map(|&(id, v4, v6)| {
                let option = DcOption {
                    id,
                    ipv4: SocketAddrV4::new(v4.into(), 443),
                    ipv6: SocketAddrV6::new(v6.into(), 443, 0, 0),
                    auth_key: None,
                };
                (id, option)
            })
            .collect();
        let data = SessionData {
            dc_options,
            ..SessionData::default()
        };
        from_data(&data, None)
    }

    /// A session that reaches `home_dc` at `addr` with a key both ends already hold (the
    /// simulator's case); the other data centres keep Telegram's addresses.
    pub fn preshared(home_dc: i32, addr: SocketAddrV4, auth_key: [u8; 256]) -> StoredSession {
        let mut data = SessionData {
            home_dc,
            ..SessionData::default()
        };
        data.dc_options.insert(
            home_dc,
            DcOption {
                id: home_dc,
                ipv4: addr,
                ipv6: SocketAddrV6::new(addr.ip().to_ipv6_mapped(), addr.port(), 0, 0),
                auth_key: Some(auth_key),
            },
        );
        from_data(&data, None)
    }

    /// The grammers session to connect with, carrying the committed update state.
    pub fn to_memory(&self, state: UpdatesState) -> MemorySession {
        let mut data = SessionData {
            home_dc: self.home_dc,
            ..SessionData::default()
        };
        for d in &self.dcs {
            let auth_key = d.auth_key.as_deref().and_then(|k| <[u8; 256]>::try_from(k).ok());
            data.dc_options.insert(
                d.id,
                DcOption {
                    id: d.id,
                    ipv4: d.ipv4,
                    ipv6: d.ipv6,
                    auth_key,
                },
            );
        }
        if let Some((id, hash)) = self.me {
            let me = PeerInfo::User {
                id,
                auth: Some(PeerAuth::from_hash(hash)),
                bot: Some(false),
                is_self: Some(true),
            };
            data.peer_infos.insert(PeerId::self_user(), me.clone());
            data.peer_infos.insert(me.id(), me);
        }
        data.updates_state = state;
        MemorySession::from(data)
    }

    /// What `session` holds now (keys made or moved while connected), with `me` as signed in.
    pub fn capture(session: &MemorySession, me: Option<(i64, i64)>) -> StoredSession {
        let home_dc = session.home_dc_id().unwrap_or(2);
        let mut data = SessionData {
            home_dc,
            dc_options: HashMap::new(),
            ..SessionData::default()
        };
        for id in 1..=5 {
            if let Ok(Some(d)) = session.dc_option(id) {
                data.dc_options.insert(id, d);
            }
        }
        from_data(&data, me)
    }
}

fn from_data(data: &SessionData, me: Option<(i64, i64)>) -> StoredSession {
    let mut dcs: Vec<StoredDc> = data
        .dc_options
        .values()
        .map(|d| StoredDc {
            id: d.id,
            ipv4: d.ipv4,
            ipv6: d.ipv6,
            auth_key: d.auth_key.map(|k| k.to_vec()),
        })
        .collect();
    dcs.sort_by_key(|d| d.id);
    StoredSession {
        home_dc: data.home_dc,
        dcs,
        me,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[tokio::test]
    async fn a_test_server_session_reaches_only_the_test_network() {
        let s = StoredSession::telegram_test();
        let mem = s.to_memory(UpdatesState::default());
        let dc2 = mem.dc_option(2).unwrap().unwrap();
        assert_eq!(dc2.ipv4, "149.154.167.40:443".parse().unwrap());
        assert!(dc2.auth_key.is_none(), "a key is made on first connect");
        for (id, v4, _) in TEST_DCS {
            let dc = mem.dc_option(id).unwrap().unwrap();
            assert_eq!(dc.ipv4.ip().octets(), v4, "data centre {id}");
        }
        let real = StoredSession::telegram().to_memory(UpdatesState::default());
        assert_ne!(real.dc_option(2).unwrap().unwrap().ipv4, dc2.ipv4);
    }

    #[tokio::test]
    async fn a_session_survives_postcard_and_keeps_its_key_and_user() {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4242);
        let mut s = StoredSession::preshared(2, addr, [7u8; 256]);
        s.me = Some((42, -9));
        let bytes = postcard::to_allocvec(&s).unwrap();
        let back: StoredSession = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, s);
        let mem = back.to_memory(UpdatesState {
            pts: 5,
            ..UpdatesState::default()
        });
        let dc = mem.dc_option(2).unwrap().unwrap();
        assert_eq!((dc.ipv4, dc.auth_key), (addr, Some([7u8; 256])));
        assert_eq!(mem.updates_state().await.unwrap().pts, 5);
        assert!(mem.peer(PeerId::self_user()).await.unwrap().is_some());
        assert_eq!(StoredSession::capture(&mem, s.me), s);
        assert!(!format!("{s:?}").contains("7, 7"), "Debug shows no key");
    }
}
