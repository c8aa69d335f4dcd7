//! `lanbox account` against the Bot API simulator: a good token is checked with getMe and stored
//! sealed (never printed, never in the data directory's bytes); a bad token fails clearly and
//! stores nothing; update and remove change what `list` shows.

mod support;

use std::path::Path;
use std::process::Output;

use lanbox::dev::simulator::Simulator;
use serde_json::Value;
use support::binary::{self, describe};
use support::canary;

/// Runs the binary off the runtime's worker threads, so the simulator keeps serving.
async fn lanbox(data: &Path, args: &[&str]) -> Output {
    binary::output(binary::command(args, data)).await
}

async fn list(data: &Path) -> Vec<Value> {
    let out = lanbox(data, &["account", "list", "--json"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_checks_the_token_and_never_shows_or_stores_it_in_clear() {
    let sim = Simulator::start().await.unwrap();
    let bot = sim.add_bot("frontdesk_bot");
    let token = bot.token().to_owned();
    let secret = token.split_once(':').unwrap().1.to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api = sim.api_base();

    let add = [
        "account",
        "add",
        "telegram",
        "--token",
        &token,
        "--api-base",
        &api,
        "--rented",
    ];
    let out = lanbox(&data, &add).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(describe(&out).contains("@frontdesk_bot"), "{}", describe(&out));
    assert!(bot.calls().iter().any(|c| c.method == "getMe"));

    // Adding the same bot twice is refused.
    let out = lanbox(&data, &add).await;
    assert!(!out.status.success());
    assert!(describe(&out).contains("already account 1"), "{}", describe(&out));

    let out = lanbox(&data, &["account", "list"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(describe(&out).contains("@frontdesk_bot"), "{}", describe(&out));
    let accounts = list(&data).await;
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["bot_username"], "frontdesk_bot");
    assert_eq!(accounts[0]["name"], "frontdesk_bot");
    assert_eq!(accounts[0]["rented"], true);
    assert_eq!(accounts[0]["api_base"], api.as_str());

    let update = [
        "account",
        "update",
        "1",
        "--name",
        "Front desk",
        "--rented",
        "false",
        "--daily-limit",
        "500",
    ];
    let out = lanbox(&data, &update).await;
    assert!(out.status.success(), "{}", describe(&out));
    let accounts = list(&data).await;
    assert_eq!(
        (
            &accounts[0]["name"],
            &accounts[0]["rented"],
            &accounts[0]["daily_limit"]
        ),
        (&Value::from("Front desk"), &Value::from(false), &Value::from(500))
    );
    let out = lanbox(&data, &["account", "update", "1", "--no-daily-limit"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(list(&data).await[0]["daily_limit"], Value::Null);

    // The token is sealed: no file in the data directory holds it, nor its secret half.
    canary::assert_absent(&data, &[&secret]);

    let out = lanbox(&data, &["account", "remove", "1"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(list(&data).await.is_empty());
    let out = lanbox(&data, &["account", "remove", "1"]).await;
    assert!(!out.status.success());
    assert!(
        describe(&out).contains("no Telegram account 1"),
        "{}",
        describe(&out)
    );
    // A removed account can still be released: its key goes, and then nothing is left to do.
    let out = lanbox(&data, &["account", "remove", "1", "--release"]).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(describe(&out).contains("released"), "{}", describe(&out));
    let out = lanbox(&data, &["account", "remove", "1", "--release"]).await;
    assert!(!out.status.success(), "{}", describe(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_fails_clearly_and_stores_nothing() {
    let sim = Simulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let api = sim.api_base();

    let wrong = "123456:AAwrongwrongwrong";
    let out = lanbox(
        &data,
        &["account", "add", "telegram", "--token", wrong, "--api-base", &api],
    )
    .await;
    assert!(!out.status.success());
    let shown = describe(&out);
    assert!(shown.contains("rejected the bot token (401"), "{shown}");
    assert!(!shown.contains("AAwrongwrongwrong"), "{shown}");
    assert!(list(&data).await.is_empty());

    let out = lanbox(
        &data,
        &[
            "account",
            "add",
            "telegram",
            "--token",
            "not a token",
            "--api-base",
            &api,
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(describe(&out).contains("not a bot token"), "{}", describe(&out));
    assert!(!describe(&out).contains("not a token"), "{}", describe(&out));
    assert!(list(&data).await.is_empty());

    // Nothing listens here: a network error, which must not quote the URL (and so the token).
    let out = lanbox(
        &data,
        &[
            "account",
            "add",
            "telegram",
            "--token",
            wrong,
            "--api-base",
            "http://127.0.0.1:9",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(describe(&out).contains("network error"), "{}", describe(&out));
    assert!(
        !describe(&out).contains("AAwrongwrongwrong"),
        "{}",
        describe(&out)
    );
}
