//! Sealed boot (issue 18, point 6), through the real binary: `lanbox key seal` wraps the master
//! key with a passphrase and removes the plain file; `serve` then opens nothing and answers only
//! its unlock page (health `sealed`, every other route `503 sealed`) until an admin unlocks it
//! over HTTPS; a wrong passphrase is refused and slows the next attempt; after the unlock the
//! same address serves the inbox; the key is never written back to disk; commands need the
//! passphrase too.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use support::binary::{self, FINGERPRINT_LINE, LISTENING_LINE, read_until};
use support::server::HOST;

const PASS: &str = "correct horse battery staple";
const SEALED_LINE: &str = "lanbox is sealed: open https://";

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_box_opens_nothing_until_an_admin_unlocks_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    binary::run(&mut binary::command(&["init"], data));
    let key = std::fs::read(data.join("master.key")).unwrap();
    assert_eq!(key.len(), 32);

    // Sealing: a short passphrase is refused; then the plain key is gone.
    let short = binary::command(&["key", "seal"], data)
        .env("LANBOX_UNLOCK_PASSPHRASE", "short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr).contains("at least 12"),
        "{}",
        binary::describe(&short)
    );
    binary::run(binary::command(&["key", "seal"], data).env("LANBOX_UNLOCK_PASSPHRASE", PASS));
    assert!(!data.join("master.key").exists());
    assert!(binary::run(&mut binary::command(&["key", "status"], data)).starts_with("sealed"));

    // A command without the passphrase says what to do; with it, it works.
    let refused = binary::command(&["user", "list"], data)
        .env_remove("LANBOX_UNLOCK_PASSPHRASE")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("LANBOX_UNLOCK_PASSPHRASE"),
        "{}",
        binary::describe(&refused)
    );
    binary::run(
        binary::command(&["user", "add", "root", "--role", "admin"], data)
            .env("LANBOX_UNLOCK_PASSPHRASE", PASS)
            .env("LANBOX_PASSWORD", "a long root password"),
    );

    // serve: the unlock page only.
    let mut child = binary::command(&["serve"], data)
        .env_remove("LANBOX_UNLOCK_PASSPHRASE")
        .env("LANBOX_SERVER_MDNS", "false")
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("SEALED_DEBUG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = tokio::task::block_in_place(|| read_until(&mut lines, SEALED_LINE));
    let fp = printed
        .iter()
        .find_map(|l| l.strip_prefix(FINGERPRINT_LINE))
        .expect("the fingerprint is printed")
        .to_string();
    let addr: SocketAddr = printed
        .last()
        .unwrap()
        .strip_prefix(SEALED_LINE)
        .and_then(|r| r.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let http = binary::client(&fp, addr);
    let url = |p: &str| format!("https://{HOST}:{}{p}", addr.port());

    let health = http.get(url("/api/v1/health")).send().await.unwrap();
    assert_eq!(health.status(), 503);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "sealed");
    let chats = http.get(url("/api/v1/chats")).send().await.unwrap();
    assert_eq!(chats.status(), 503);
    let chats: serde_json::Value = chats.json().await.unwrap();
    assert_eq!(chats["error"]["code"], "sealed");
    let setup: serde_json::Value = http
        .get(url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (setup["sealed"].as_bool(), setup["certificate_sha256"].as_str()),
        (Some(true), Some(fp.as_str()))
    );
    let page = http.get(url("/")).send().await.unwrap();
    assert_eq!(
        page.status(),
        200,
        "the browser app is served to show the unlock form"
    );

    let unlock = |pass: &'static str| {
        let (http, url) = (http.clone(), url("/api/v1/unlock"));
        async move {
            let res = http
                .post(url)
                .json(&serde_json::json!({ "passphrase": pass }))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: serde_json::Value = res.json().await.unwrap();
            (status, body)
        }
    };
    let (status, body) = unlock("not the passphrase").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("wrong_passphrase"))
    );
    // The next attempt, right away, is not even heard.
    let (status, _) = unlock(PASS).await;
    assert_eq!(status, 429);
    // Once the wait is over (the server says how long), the right passphrase opens the box.
    let (status, body) = loop {
        let (status, body) = unlock(PASS).await;
        if status != 429 {
            break (status, body);
        }
        tokio::task::yield_now().await;
    };
    assert_eq!((status, body["status"].as_str()), (200, Some("unlocked")));

    // The service starts on the same address: a normal box, which knows its users.
    let printed = tokio::task::block_in_place(|| read_until(&mut lines, LISTENING_LINE));
    assert!(
        printed.last().unwrap().ends_with(&addr.to_string()),
        "{printed:?}"
    );
    let health = http.get(url("/api/v1/health")).send().await.unwrap();
    let status = health.status();
    let said = health.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{said}");
    let setup: serde_json::Value = http
        .get(url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (setup["sealed"].as_bool(), setup["needed"].as_bool()),
        (Some(false), Some(false))
    );
    let login = http
        .post(url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "root", "password": "a long root password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the user added while sealed signs in");

    // The key never went back to disk: no file of the data directory holds it.
    for f in files(data) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(32).any(|w| w == key.as_slice()),
            "{} holds the master key",
            f.display()
        );
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());

    // Unsealing with the passphrase gives the very key back.
    binary::run(binary::command(&["key", "unseal"], data).env("LANBOX_UNLOCK_PASSPHRASE", PASS));
    assert_eq!(std::fs::read(data.join("master.key")).unwrap(), key);
}

/// A wrong passphrase on the command line is a clear error that changes nothing.
#[test]
fn unsealing_with_a_wrong_passphrase_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    binary::run(&mut binary::command(&["init"], data));
    binary::run(binary::command(&["key", "seal"], data).env("LANBOX_UNLOCK_PASSPHRASE", PASS));
    let sealed = std::fs::read(data.join("master.key.sealed")).unwrap();
    let out = Command::new(binary::BIN)
        .args(["key", "unseal", "--data"])
        .arg(data)
        .env("LANBOX_UNLOCK_PASSPHRASE", "wrong passphrase here")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{}",
        binary::describe(&out)
    );
    assert_eq!(std::fs::read(data.join("master.key.sealed")).unwrap(), sealed);
    assert!(!data.join("master.key").exists());
}

/// A backup of a sealed box carries the sealed key, never the plain one: restored, the box is
/// sealed by the same passphrase.
#[test]
fn a_backup_of_a_sealed_box_restores_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("box");
    binary::run(&mut binary::command(&["init"], &data));
    let key = std::fs::read(data.join("master.key")).unwrap();
    binary::run(binary::command(&["key", "seal"], &data).env("LANBOX_UNLOCK_PASSPHRASE", PASS));
    let backup_pass = "a long backup passphrase";
    binary::run(
        binary::command(&["backup", "set-passphrase"], &data)
            .env("LANBOX_UNLOCK_PASSPHRASE", PASS)
            .env("LANBOX_BACKUP_PASSPHRASE", backup_pass),
    );
    let file = dir.path().join("box.lbk");
    binary::run(
        binary::command(&["backup", "--out", file.to_str().unwrap()], &data)
            .env("LANBOX_UNLOCK_PASSPHRASE", PASS),
    );
    let target = dir.path().join("restored");
    let out = Command::new(binary::BIN)
        .args(["restore", "--from"])
        .arg(&file)
        .arg("--data-dir")
        .arg(&target)
        .env("LANBOX_BACKUP_PASSPHRASE", backup_pass)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", binary::describe(&out));
    assert!(!target.join("master.key").exists());
    assert!(binary::run(&mut binary::command(&["key", "status"], &target)).starts_with("sealed"));
    binary::run(binary::command(&["key", "unseal"], &target).env("LANBOX_UNLOCK_PASSPHRASE", PASS));
    assert_eq!(std::fs::read(target.join("master.key")).unwrap(), key);
}
