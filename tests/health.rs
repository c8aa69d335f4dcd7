//! `/api/v1/health` tells the truth, over real TLS: a full disk (the store's fault switch makes
//! the database file's writes fail with `ENOSPC`) turns it `degraded` (503) with reasons while
//! writes fail, and back to `ok` once the disk takes writes again, with no restart; a stopped
//! connector shows as `connector_down` with its account. The update probe
//! (`lanbox update mark-good`) refuses a degraded box.

mod support;

use std::time::Duration;

use lanbox::auth::Role;
use lanbox::channels::telegram::poller::{AccountStatus, StopReason};
use lanbox::dev::simulator::Simulator;
use lanbox::service::ServiceOptions;
use lanbox::store::StoreOptions;
use lanbox::store::faults::DiskFaults;
use serde_json::{Value, json};
use support::server::{PASSWORD, TestServer, get, post};

/// The reason codes in a health reply.
fn codes(v: &Value) -> Vec<&str> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect()
}

/// The reply fits the OpenAPI document's `Health` schema: documented fields only, and reason
/// codes from its list.
fn check_documented(v: &Value) {
    let doc: Value = serde_json::from_str(lanbox::api::OPENAPI).unwrap();
    let schemas = &doc["components"]["schemas"];
    let fields = schemas["Health"]["properties"].as_object().unwrap();
    for (k, _) in v.as_object().unwrap() {
        assert!(fields.contains_key(k), "undocumented field {k}");
    }
    let status = schemas["Health"]["properties"]["status"]["enum"]
        .as_array()
        .unwrap();
    assert!(status.contains(&v["status"]), "{v}");
    let known = schemas["HealthReason"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    for r in v["reasons"].as_array().unwrap() {
        assert!(known.contains(&r["code"]), "undocumented reason {r}");
    }
}

async fn login(s: &TestServer) -> u16 {
    s.client()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Regression: with the data directory's filesystem full, every write answered 500 while
/// `/api/v1/health` said ok, and after space returned every write still answered 500 (redb's
/// "previous I/O error" until the database is reopened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_degrades_health_until_writes_work_again() {
    let faults = DiskFaults::new();
    let s = TestServer::start_full(
        tempfile::tempdir().unwrap(),
        StoreOptions {
            disk_faults: Some(faults.clone()),
            ..StoreOptions::default()
        },
        ServiceOptions::default(),
    )
    .await;
    s.user("root", Role::Admin, &[]).await;
    let (st, v) = get(&s, "", "/api/v1/health").await;
    assert_eq!(
        (st, &v["status"], &v["reasons"]),
        (200, &json!("ok"), &json!([])),
        "{v}"
    );
    check_documented(&v);
    lanbox::system::ota::check_health(s.addr).await.unwrap();

    faults.set_full(true);
    assert_eq!(
        login(&s).await,
        507,
        "a login's session cannot be stored: the disk is full"
    );
    let (st, v) = get(&s, "", "/api/v1/health").await;
    assert_eq!((st, &v["status"]), (503, &json!("degraded")), "{v}");
    let found = codes(&v);
    assert!(
        found.contains(&"store_write_failing") && found.contains(&"disk_full"),
        "{v}"
    );
    check_documented(&v);
    assert!(
        matches!(
            lanbox::system::ota::check_health(s.addr).await,
            Err(lanbox::system::ota::OtaError::Unhealthy { .. })
        ),
        "a degraded box must not mark an update good"
    );

    // Space returns: the store finds out by itself, with no restart.
    faults.set_full(false);
    let mut health = s.store.watch_health();
    tokio::time::timeout(
        Duration::from_secs(60),
        health.wait_for(|h| h.write_failures == 0 && h.database_open),
    )
    .await
    .expect("the store did not recover")
    .unwrap();
    let (st, v) = get(&s, "", "/api/v1/health").await;
    assert_eq!(
        (st, &v["status"], &v["reasons"]),
        (200, &json!("ok"), &json!([])),
        "{v}"
    );
    assert!(v["last_seq"].is_u64(), "{v}");
    assert_eq!(login(&s).await, 200, "writes work again");
    lanbox::system::ota::check_health(s.addr).await.unwrap();
}

/// A connector that stopped (here: Telegram rejects the bot's token) shows as
/// `connector_down` with its account, where health used to say ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_connector_shows_as_down_with_its_account() {
    let s = TestServer::start().await;
    s.user("root", Role::Admin, &[]).await;
    let root = s.token("root").await;
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("desk_bot");
    let (st, v) = post(
        &s,
        &root,
        "/api/v1/accounts",
        json!({"token": bot.token(), "api_base": sim.api_base()}),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let id = v["id"].as_u64().unwrap();
    let mut status = s.state.pollers.watch(id).unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|st| *st == AccountStatus::Running),
    )
    .await
    .unwrap()
    .unwrap();
    let (st, v) = get(&s, "", "/api/v1/health").await;
    assert_eq!((st, &v["status"]), (200, &json!("ok")), "{v}");

    bot.revoke();
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|st| {
            *st == AccountStatus::Stopped {
                reason: StopReason::Unauthorized,
            }
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let (st, v) = get(&s, "", "/api/v1/health").await;
    assert_eq!((st, &v["status"]), (503, &json!("degraded")), "{v}");
    assert_eq!(v["reasons"], json!([{"code": "connector_down", "account": id}]));
    check_documented(&v);
}
