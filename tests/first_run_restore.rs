//! First run, the other way (issue 18, point 2): a new box restores a backup of another box
//! from its first-run routes, with the setup code from its console, through the real binary.
//! A wrong code, a wrong passphrase or a damaged file changes nothing; the good one is restored,
//! the box restarts on it on the same address, and the old box's admin signs in.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;

use support::binary::{self, FINGERPRINT_LINE, LISTENING_LINE, read_until};
use support::server::HOST;

const BACKUP_PASS: &str = "a long backup passphrase";
const ROOT_PASS: &str = "a long root password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_box_restores_a_backup_from_its_first_run_routes_and_restarts_on_it() {
    let dir = tempfile::tempdir().unwrap();
    // The old box: an admin, a backup passphrase, a backup.
    let old = dir.path().join("old");
    binary::run(&mut binary::command(&["init"], &old));
    binary::run(
        binary::command(&["user", "add", "root", "--role", "admin"], &old).env("LANBOX_PASSWORD", ROOT_PASS),
    );
    binary::run(
        binary::command(&["backup", "set-passphrase"], &old).env("LANBOX_BACKUP_PASSPHRASE", BACKUP_PASS),
    );
    let file = dir.path().join("old.lbk");
    binary::run(&mut binary::command(
        &["backup", "--out", file.to_str().unwrap()],
        &old,
    ));
    let backup = std::fs::read(&file).unwrap();

    // The new box, on its first run.
    let new = dir.path().join("new");
    let mut child = binary::command(&["serve"], &new)
        .env("LANBOX_SERVER_MDNS", "false")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = tokio::task::block_in_place(|| read_until(&mut lines, LISTENING_LINE));
    let fp = printed
        .iter()
        .find_map(|l| l.strip_prefix(FINGERPRINT_LINE))
        .unwrap()
        .to_string();
    let code = printed
        .iter()
        .find_map(|l| l.split("setup code ").nth(1))
        .expect("the setup code is printed")
        .trim()
        .to_string();
    let addr: SocketAddr = printed
        .last()
        .unwrap()
        .strip_prefix(LISTENING_LINE)
        .unwrap()
        .parse()
        .unwrap();
    let http = binary::client(&fp, addr);
    let url = |p: &str| format!("https://{HOST}:{}{p}", addr.port());
    let upload = |code: String, body: Vec<u8>| {
        let (http, url) = (http.clone(), url("/api/v1/setup/restore/upload"));
        async move {
            let res = http
                .post(url)
                .header("x-setup-code", code)
                .body(body)
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let restore = |code: String, pass: &'static str| {
        let (http, url) = (http.clone(), url("/api/v1/setup/restore"));
        async move {
            let res = http
                .post(url)
                .json(&serde_json::json!({"setup_code": code, "passphrase": pass}))
                .send()
                .await
                .unwrap();
            (
                res.status().as_u16(),
                res.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };

    let (st, body) = upload("WRONG-CODE".into(), backup.clone()).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (403, Some("bad_setup_code"))
    );
    let (st, body) = restore(code.clone(), BACKUP_PASS).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (409, Some("no_upload")),
        "{body}"
    );

    // A damaged file: refused, nothing staged.
    let mut damaged = backup.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;
    assert_eq!(upload(code.clone(), damaged).await.0, 201);
    let (st, body) = restore(code.clone(), BACKUP_PASS).await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("bad_backup")),
        "{body}"
    );
    assert!(!new.join("restore-staged").exists());

    // The real one, with a wrong passphrase first.
    assert_eq!(upload(code.clone(), backup.clone()).await.0, 201);
    let (st, body) = restore(code.clone(), "not the passphrase").await;
    assert_eq!(
        (st, body["error"]["code"].as_str()),
        (400, Some("wrong_passphrase")),
        "{body}"
    );
    assert!(!new.join("restore-staged").exists());
    let (st, body) = restore(code.clone(), BACKUP_PASS).await;
    assert_eq!((st, body["status"].as_str()), (200, Some("restored")), "{body}");

    // The box restarts on the restored data, on the same address (with the old box's
    // certificate when the backup holds one: this old box never served, so it keeps its own);
    // the old admin signs in; the new box's own files were kept aside.
    let printed = tokio::task::block_in_place(|| read_until(&mut lines, LISTENING_LINE));
    assert!(
        printed.last().unwrap().ends_with(&addr.to_string()),
        "{printed:?}"
    );
    let old_fp = printed
        .iter()
        .find_map(|l| l.strip_prefix(FINGERPRINT_LINE))
        .unwrap()
        .to_string();
    let http = binary::client(&old_fp, addr);
    let setup: serde_json::Value = http
        .get(url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(setup["needed"], false);
    let login = http
        .post(url("/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "root", "password": ROOT_PASS}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    assert_eq!(
        std::fs::read(new.join("master.key")).unwrap(),
        std::fs::read(old.join("master.key")).unwrap()
    );
    let aside: Vec<_> = std::fs::read_dir(&new)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("replaced-"))
        .collect();
    assert_eq!(aside.len(), 1, "the new box's own files are kept aside");
    assert!(new.join(&aside[0]).join("lanbox.redb").exists());
    assert!(!new.join("restore-upload.lbk").exists());
    // Once restored, the routes are closed. (A small body: the server answers 409 before it
    // reads one, and a large one still being sent then meets a closed connection, which
    // failed this test under load.)
    drop(backup);
    assert_eq!(upload(code.clone(), b"closed?".to_vec()).await.0, 409);

    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    assert!(child.wait().unwrap().success());
}
