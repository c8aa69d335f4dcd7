//! Telegram user accounts in a test server: the box's Telegram application pointed at an MTProto
//! simulator, an account signed in through the login routes, and a wait until its connector is
//! online.

use std::net::SocketAddr;
use std::time::Duration;

use lanbox::channels::mtproto::{Endpoint, TelegramApp};
use lanbox::dev::mtproto::MtSimulator;
use serde_json::json;

use super::poll;
use super::server::{TestServer, get, post};

/// The box's Telegram application, its logins sent to `sim`.
pub fn app(sim: &MtSimulator) -> TelegramApp {
    let SocketAddr::V4(addr) = sim.addr() else {
        panic!("the simulator listens on IPv4")
    };
    TelegramApp {
        api_id: 12345,
        api_hash: "0123456789abcdef0123456789abcdef".into(),
        endpoint: Endpoint::Preshared {
            addr,
            auth_key: Box::new(sim.auth_key()),
        },
    }
}

/// Signs the simulator's account in through `POST /api/v1/account-logins` and its code (as an
/// admin with `token`); the new account's ID.
pub async fn sign_in(s: &TestServer, token: &str, sim: &MtSimulator) -> u64 {
    let (st, v) = post(
        s,
        token,
        "/api/v1/account-logins",
        json!({"phone": sim.me().phone.unwrap()}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let login = v["login"].as_str().unwrap().to_string();
    let (st, v) = post(
        s,
        token,
        &format!("/api/v1/account-logins/{login}/code"),
        json!({ "code": sim.login_code().unwrap() }),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    v["account"]["id"].as_u64().unwrap()
}

/// Waits until `GET /api/v1/accounts` shows `account` online.
pub async fn wait_online(s: &TestServer, token: &str, account: u64, within: Duration) {
    poll::until_ok(within, || async {
        let (_, all) = get(s, token, "/api/v1/accounts").await;
        match all.as_array().into_iter().flatten().find(|a| a["id"] == account) {
            Some(a) if a["status"] == "online" => Ok(()),
            other => Err(format!("account: {other:?}")),
        }
    })
    .await
}
