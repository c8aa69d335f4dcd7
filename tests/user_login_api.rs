//! Adding a Telegram user account through the API (issue 16, point 1), over real HTTPS, against
//! the MTProto simulator over real TCP: an admin starts a login with a phone number, sends the
//! code (a wrong one first) and, when the account has one, the 2FA password (a wrong one
//! first); the account then lists as a user account and receives a pushed message without a
//! restart; the same person cannot be added twice; removing it logs it out on Telegram. FLOOD_WAIT (with `Retry-After`), an expired
//! code, a banned number, a box without a Telegram application and agents are refused
//! clearly; logins in progress are bounded and expire. The phone number, the code and the
//! password never reach the log.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use lanbox::auth::Role;
use lanbox::channels::mtproto::{self, Endpoint, TelegramApp};
use lanbox::dev::mtproto::{MtSimConfig, MtSimulator};
use lanbox::service::ServiceOptions;
use serde_json::{Value, json};
use support::poll;
use support::server::{TestServer, get, post, request};

const WAIT: Duration = Duration::from_secs(20);

struct Rig {
    s: TestServer,
    sim: MtSimulator,
    root: String,
}

fn app(sim: &MtSimulator) -> TelegramApp {
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

async fn rig_with(config: MtSimConfig, options: ServiceOptions) -> Rig {
    // Every test of this binary logs into the capture, at trace level, with the caps
    // `lanbox serve` puts on grammers; the canary test reads it.
    support::logs::capture(&format!("trace,{}", mtproto::LOG_DIRECTIVES));
    let sim = MtSimulator::start(config).await.unwrap();
    let s = TestServer::start_with(ServiceOptions {
        telegram_app: Some(app(&sim)),
        ..options
    })
    .await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    Rig { s, sim, root }
}

async fn rig() -> Rig {
    rig_with(MtSimConfig::default(), ServiceOptions::default()).await
}

/// Starts a login for the simulator's number (written as a person would); its ID.
async fn begin(r: &Rig) -> String {
    let (st, v) = post(
        &r.s,
        &r.root,
        "/api/v1/account-logins",
        json!({"phone": "+1 555-0100", "rented": true}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["next"], "code");
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    v["login"].as_str().unwrap().to_string()
}

async fn code(r: &Rig, login: &str, code: &str) -> (u16, Value) {
    post(
        &r.s,
        &r.root,
        &format!("/api/v1/account-logins/{login}/code"),
        json!({ "code": code }),
    )
    .await
}

async fn password(r: &Rig, login: &str, password: &str) -> (u16, Value) {
    post(
        &r.s,
        &r.root,
        &format!("/api/v1/account-logins/{login}/password"),
        json!({ "password": password }),
    )
    .await
}

fn wrong(code: &str) -> &'static str {
    if code == "00000" { "11111" } else { "00000" }
}

/// The accounts the admin sees.
async fn accounts(r: &Rig) -> Vec<Value> {
    let (st, v) = get(&r.s, &r.root, "/api/v1/accounts").await;
    assert_eq!(st, 200, "{v}");
    v.as_array().unwrap().clone()
}

/// Waits until the admin's chats hold a message with `text`.
async fn wait_for_text(r: &Rig, text: &str) {
    poll::until_ok(WAIT, || async {
        let (_, chats) = get(&r.s, &r.root, "/api/v1/chats").await;
        for c in chats["chats"].as_array().into_iter().flatten() {
            let chat = c["id"].as_str().expect("chat IDs are strings");
            let (_, m) = get(&r.s, &r.root, &format!("/api/v1/chats/{chat}/messages")).await;
            if m["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["text"] == text)
            {
                return Ok(());
            }
        }
        Err(format!("no message {text:?} yet"))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_with_a_code_adds_a_user_account_that_receives_at_once_and_removal_logs_it_out() {
    let r = rig().await;
    let login = begin(&r).await;
    let sent = r.sim.login_code().expect("the simulator sent a code");

    // A wrong code is refused clearly; the same login takes the right one after it.
    let (st, v) = code(&r, &login, wrong(&sent)).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("code_invalid")),
        "{v}"
    );
    assert!(!r.sim.authorized());
    let (st, v) = code(&r, &login, &sent).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["status"], "signed_in");
    let account = v["account"]["id"].as_u64().unwrap();
    assert_eq!(v["account"]["kind"], "user");
    assert_eq!(v["account"]["channel"], mtproto::CHANNEL);
    assert_eq!(v["account"]["user_id"], r.sim.me().id);
    assert_eq!(v["account"]["name"], "Agent", "named after the person");
    assert_eq!(v["account"]["rented"], true);
    assert!(r.sim.authorized());

    // Listed as a user account, and its connector runs without a restart.
    poll::until_ok(WAIT, || async {
        let all = accounts(&r).await;
        match all.iter().find(|a| a["id"] == account) {
            Some(a) if a["status"] == "online" && a["kind"] == "user" && a["mode"] == "mtproto" => Ok(()),
            other => Err(format!("account: {other:?}")),
        }
    })
    .await;
    let ann = r.sim.add_user("Ann");
    r.sim.message_from(&ann, "hello from Ann's phone");
    wait_for_text(&r, "hello from Ann's phone").await;

    // The same person logged in a second time is refused, and that second session ended.
    let again = begin(&r).await;
    let (st, v) = code(&r, &again, &r.sim.login_code().unwrap()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("already_added")),
        "{v}"
    );
    assert_eq!(accounts(&r).await.len(), 1);
    assert_eq!(r.sim.calls().iter().filter(|c| *c == "auth.logOut").count(), 1);
    // (The simulator has one auth key for all sessions, so that logged the first one out too;
    // on Telegram each session has its own.)

    // Its label and rented flag change like a bot's; it has no mode to switch.
    let path = format!("/api/v1/accounts/{account}");
    let (st, v) = request(
        &r.s,
        "PATCH",
        &r.root,
        &path,
        Some(json!({"name": "Support", "rented": false})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["name"].as_str(), v["rented"].as_bool()),
        (Some("Support"), Some(false))
    );
    let (st, v) = request(&r.s, "PATCH", &r.root, &path, Some(json!({"mode": "polling"}))).await;
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("bad_mode")), "{v}");

    // The finished login is gone.
    let (st, v) = code(&r, &login, &sent).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (404, Some("login_not_found")),
        "{v}"
    );

    // Removing the account ends its session on Telegram, and it is no longer listed.
    let (st, v) = request(
        &r.s,
        "DELETE",
        &r.root,
        &format!("/api/v1/accounts/{account}"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert!(!r.sim.authorized(), "auth.logOut reached Telegram");
    assert!(r.sim.calls().iter().any(|c| c == "auth.logOut"));
    assert!(accounts(&r).await.iter().all(|a| a["id"] != account));
    let (st, _) = request(
        &r.s,
        "DELETE",
        &r.root,
        &format!("/api/v1/accounts/{account}"),
        None,
    )
    .await;
    assert_eq!(st, 404, "removed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_2fa_needs_its_password_and_a_wrong_one_can_be_retried() {
    let r = rig_with(
        MtSimConfig {
            password: Some("hunter2 but longer".into()),
            ..MtSimConfig::default()
        },
        ServiceOptions::default(),
    )
    .await;
    let login = begin(&r).await;
    let (st, v) = code(&r, &login, &r.sim.login_code().unwrap()).await;
    assert_eq!(
        (st, v["status"].as_str()),
        (200, Some("password_required")),
        "{v}"
    );
    assert!(v.get("account").is_none());
    assert!(accounts(&r).await.is_empty(), "no account before the password");

    let (st, v) = password(&r, &login, "hunter3").await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("password_invalid")),
        "{v}"
    );
    let (st, v) = password(&r, &login, "hunter2 but longer").await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["account"]["kind"], "user");
    assert!(r.sim.authorized());
    assert_eq!(accounts(&r).await.len(), 1);
}

/// Sends a raw request: status, `Retry-After` and the JSON body.
async fn raw_post(r: &Rig, path: &str, body: Value) -> (u16, Option<String>, Value) {
    let res =
        r.s.client()
            .post(r.s.url(path))
            .bearer_auth(&r.root)
            .json(&body)
            .send()
            .await
            .unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, res.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_an_expired_code_and_a_banned_number_are_clear_errors() {
    let r = rig().await;
    let start = json!({"phone": "15550100"});

    r.sim.fail_next("auth.sendCode", 420, "FLOOD_WAIT_42");
    let (st, retry, v) = raw_post(&r, "/api/v1/account-logins", start.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (429, Some("flood_wait")),
        "{v}"
    );
    assert_eq!(retry.as_deref(), Some("42"));
    assert!(v["error"]["message"].as_str().unwrap().contains("42 s"), "{v}");

    r.sim.fail_next("auth.sendCode", 400, "PHONE_NUMBER_BANNED");
    let (st, v) = post(&r.s, &r.root, "/api/v1/account-logins", start.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (403, Some("phone_banned")),
        "{v}"
    );

    let (st, v) = post(
        &r.s,
        &r.root,
        "/api/v1/account-logins",
        json!({"phone": "call me"}),
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("bad_phone")), "{v}");
    let (st, v) = post(
        &r.s,
        &r.root,
        "/api/v1/account-logins",
        json!({"phone": "4930123456"}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (400, Some("phone_invalid")),
        "{v}"
    );

    // A number that lives in another data centre (PHONE_MIGRATE_n) is followed there.
    r.sim.fail_next("auth.sendCode", 303, "PHONE_MIGRATE_2");
    // FLOOD_WAIT on the code keeps the login: the same code works after the wait.
    let login = begin(&r).await;
    assert_eq!(
        r.sim.calls().iter().filter(|c| *c == "auth.sendCode").count(),
        5,
        "FLOOD_WAIT, banned, refused number, PHONE_MIGRATE, then asked again there: {:?}",
        r.sim.calls()
    );
    let sent = r.sim.login_code().unwrap();
    r.sim.fail_next("auth.signIn", 420, "FLOOD_WAIT_7");
    let (st, retry, v) = raw_post(
        &r,
        &format!("/api/v1/account-logins/{login}/code"),
        json!({"code": sent}),
    )
    .await;
    assert_eq!((st, retry.as_deref()), (429, Some("7")), "{v}");
    // An expired code ends the login.
    r.sim.expire_code();
    let (st, v) = code(&r, &login, &sent).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (410, Some("code_expired")),
        "{v}"
    );
    let (st, v) = code(&r, &login, &sent).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (404, Some("login_not_found")),
        "{v}"
    );
    assert!(accounts(&r).await.is_empty());

    // Telegram out of reach: a clear 502, and nothing is left pending.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let SocketAddr::V4(gone) = closed.local_addr().unwrap() else {
        unreachable!()
    };
    drop(closed);
    let unreachable = TestServer::start_with(ServiceOptions {
        telegram_app: Some(TelegramApp {
            endpoint: Endpoint::Preshared {
                addr: gone,
                auth_key: Box::new(r.sim.auth_key()),
            },
            ..app(&r.sim)
        }),
        ..ServiceOptions::default()
    })
    .await;
    unreachable.user("root", Role::Admin, &[]).await;
    let root = unreachable.token("root").await;
    let (st, v) = post(&unreachable, &root, "/api/v1/account-logins", start.clone()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (502, Some("telegram_unavailable")),
        "{v}"
    );
    assert!(unreachable.state.logins.is_empty());

    // Agents may not log accounts in.
    r.s.user("ivy", Role::Agent, &[]).await;
    let ivy = r.s.token("ivy").await;
    let (st, _) = post(&r.s, &ivy, "/api/v1/account-logins", start.clone()).await;
    assert_eq!(st, 403);

    // A box without a Telegram application says what to configure.
    let bare = TestServer::start().await;
    bare.user("root", Role::Admin, &[]).await;
    let root = bare.token("root").await;
    let (st, v) = post(&bare, &root, "/api/v1/account-logins", start).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("telegram_app_unset")),
        "{v}"
    );
    assert!(v["error"]["message"].as_str().unwrap().contains("api_id"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_in_progress_are_bounded_cancellable_and_expire() {
    let r = rig_with(
        MtSimConfig::default(),
        ServiceOptions {
            user_logins_max: 2,
            user_login_ttl: Duration::from_millis(1500),
            ..ServiceOptions::default()
        },
    )
    .await;
    let first = begin(&r).await;
    let _second = begin(&r).await;
    let (st, v) = post(
        &r.s,
        &r.root,
        "/api/v1/account-logins",
        json!({"phone": "15550100"}),
    )
    .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (429, Some("too_many_logins")),
        "{v}"
    );

    let (st, _) = request(
        &r.s,
        "DELETE",
        &r.root,
        &format!("/api/v1/account-logins/{first}"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (st, v) = request(
        &r.s,
        "DELETE",
        &r.root,
        &format!("/api/v1/account-logins/{first}"),
        None,
    )
    .await;
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("login_not_found")));
    let third = begin(&r).await;

    // Nobody finishes them: they are forgotten after their time, and their places free up.
    poll::until("the logins expire", WAIT, || async {
        r.s.state.logins.is_empty()
    })
    .await;
    let (st, v) = code(&r, &third, &r.sim.login_code().unwrap()).await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (404, Some("login_not_found")),
        "{v}"
    );
    begin(&r).await;
    assert!(accounts(&r).await.is_empty());
}

/// The phone number, the code and the password of a login, right and wrong, reach neither the
/// log (at trace level) nor any error, whatever step fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_number_code_and_password_never_reach_the_log() {
    const PHONE: &str = "4915209876543";
    const CODE: &str = "Qx7CanaryCode";
    const WRONG_CODE: &str = "Qx7WrongCanary";
    const PASSWORD: &str = "Qx7-canary-password";
    const WRONG_PASSWORD: &str = "Qx7-wrong-canary-password";
    let r = rig_with(
        MtSimConfig {
            phone: PHONE.into(),
            code: Some(CODE.into()),
            password: Some(PASSWORD.into()),
            ..MtSimConfig::default()
        },
        ServiceOptions::default(),
    )
    .await;
    let mut replies = Vec::new();
    let (_, v) = post(
        &r.s,
        &r.root,
        "/api/v1/account-logins",
        json!({"phone": "+49 1520 9876544"}),
    )
    .await;
    replies.push(v);
    let (st, v) = post(
        &r.s,
        &r.root,
        "/api/v1/account-logins",
        json!({"phone": format!("+{PHONE}")}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let login = v["login"].as_str().unwrap().to_string();
    replies.push(v);
    for (c, want) in [(WRONG_CODE, 400), (CODE, 200)] {
        let (st, v) = code(&r, &login, c).await;
        assert_eq!(st, want, "{v}");
        replies.push(v);
    }
    // A body that does not fit: serde's message would quote the value.
    let (_, v) = post(
        &r.s,
        &r.root,
        &format!("/api/v1/account-logins/{login}/password"),
        json!({"password": [PASSWORD]}),
    )
    .await;
    replies.push(v);
    for (p, want) in [(WRONG_PASSWORD, 400), (PASSWORD, 201)] {
        let (st, v) = password(&r, &login, p).await;
        assert_eq!(st, want, "{v}");
        replies.push(v);
    }
    let log = support::logs::capture("").text();
    assert!(log.contains("Telegram user account added"), "the capture works");
    let replies = serde_json::to_string(&replies).unwrap();
    for secret in [PHONE, "9876544", CODE, WRONG_CODE, PASSWORD, WRONG_PASSWORD] {
        assert!(!log.contains(secret), "{secret:?} is in the log");
        assert!(!replies.contains(secret), "{secret:?} is in a reply: {replies}");
    }
}
