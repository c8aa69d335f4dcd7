//! A full disk for real, not through the store's fault switch: the test re-runs this binary as
//! a child whose file-size limit (`RLIMIT_FSIZE`, with `SIGXFSZ` ignored) stops the database
//! file from growing, so the kernel answers the writer's writes with `EFBIG`, as a full
//! filesystem answers `ENOSPC`. No root, no mount. The limit is per process, hence the child:
//! the other tests of this binary keep writing their own files meanwhile.
//!
//! Regression (issue 18): with the data directory's filesystem full, ingest stopped, but after
//! space returned every write still failed for as long as the process lived (redb's "previous
//! I/O error" until the database is reopened), while health said ok.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lanbox::ingest::{Batch, Change, NoIndex, Pipeline};
use lanbox::model::ChatKind;
use lanbox::store::WriteFailure;
use support::messages::{
    account, chat, fill_until_refused, filler_batch, open, text_message, wait_writes_work,
};

const CHILD_ENV: &str = "LANBOX_DISK_FULL_CHILD_DIR";
const BATCH: u64 = 50;

fn set_fsize_limit(soft: libc::rlim_t) -> std::io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_FSIZE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        lim.rlim_cur = soft.min(lim.rlim_max);
        if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The child: fills the "disk", checks what the store does, frees it, checks it recovers.
#[test]
fn disk_full_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    // SAFETY: ignoring a signal; without this, growing a file past the limit kills the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let store = open(&dir);
    let a = account(&store, "alpha", false);
    let p = Pipeline::new(store.clone(), Arc::new(NoIndex));
    p.submit_blocking(filler_batch(a, 0, BATCH)).unwrap();
    let mut pos = BATCH;

    let size = std::fs::metadata(dir.join("lanbox.redb")).unwrap().len();
    if let Err(e) = set_fsize_limit(size + (256 << 10)) {
        println!("skip: cannot set RLIMIT_FSIZE here: {e}");
        return;
    }
    let (reached, refused) = fill_until_refused(&p, a, pos, BATCH, 10_000);
    pos = reached;
    let refused = refused.expect("the file-size limit never stopped a write");
    eprintln!("full after {pos} messages: {refused}");
    let h = store.health();
    assert!(h.write_failures > 0, "{h:?}");
    assert_eq!(h.last_failure, Some(WriteFailure::DiskFull), "{h:?}");
    // Reads go on; the refused batch's messages and position were not committed, so Telegram
    // would hand those updates out again.
    let r = store.reader().unwrap();
    assert_eq!(
        r.position(a).unwrap(),
        Some(pos),
        "the position moved past what was stored"
    );
    assert_eq!(r.all_message_keys().unwrap().len() as u64, pos);
    drop(r);
    // Still full: still refused, never a false success.
    assert!(p.submit_blocking(filler_batch(a, pos, BATCH)).is_err());
    // A small write may still fit in the file's free pages. Regression: its success cleared
    // `disk_full`, so health (and the browser's banner) flickered back to ok while every real
    // batch was refused. Only the writer's probe, which makes room for batches, clears it.
    let c = chat(1002, ChatKind::Private, "Other");
    let tiny = Batch {
        account: a,
        changes: vec![Change::New(text_message(a, &c, 1, "tiny"))],
        position: None,
    };
    let mut extra = 0;
    if p.submit_blocking(tiny).is_ok() {
        extra = 1;
        let h = store.health();
        assert_eq!(h.last_failure, Some(WriteFailure::DiskFull), "{h:?}");
        assert!(h.write_failures > 0, "{h:?}");
    }
    eprintln!("a small write while full fitted: {}", extra == 1);

    // Space returns: the writer finds out by itself (its probe), with no restart.
    set_fsize_limit(libc::RLIM_INFINITY).unwrap();
    wait_writes_work(&store, Duration::from_secs(90));
    p.submit_blocking(filler_batch(a, pos, BATCH))
        .expect("writes work again");
    pos += BATCH;
    let r = store.reader().unwrap();
    assert_eq!(r.position(a).unwrap(), Some(pos));
    assert_eq!(
        r.all_message_keys().unwrap().len() as u64,
        pos + extra,
        "each message stored once"
    );
    println!("child ok {}", pos + extra);
}

#[test]
fn a_full_file_system_stops_writes_and_they_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "disk_full_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = Vec::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        lines.push(std::mem::take(&mut line));
    }
    let status = child.wait().unwrap();
    let all = lines.concat();
    assert!(status.success(), "the child failed ({status}):\n{all}");
    if let Some(skip) = all.lines().find(|l| l.starts_with("skip: ")) {
        eprintln!("{skip}");
        return;
    }
    assert!(all.contains("child ok"), "the child failed:\n{all}");

    // And the file is sound for the next start (the page check passes, every message is there).
    let store = open(dir.path());
    let r = store.reader().unwrap();
    let n = r.all_message_keys().unwrap().len() as u64;
    assert!(
        all.contains(&format!("child ok {n}")),
        "{n} messages after reopening:\n{all}"
    );
}

/// Live clients (agents too, who cannot read `/api/v1/health` details elsewhere) hear when the
/// disk fills and when writes work again, so the browser can show and drop its banner; a
/// client connecting meanwhile finds the state in its `hello`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_clients_hear_when_the_disk_fills_and_when_it_recovers() {
    use lanbox::auth::Role;
    use lanbox::service::ServiceOptions;
    use lanbox::store::StoreOptions;
    use lanbox::store::faults::DiskFaults;
    use serde_json::json;
    use support::server::{TestServer, call, next_of, ws_connect, ws_token};

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
    s.user("agent", Role::Agent, &[]).await;
    let token = s.token("agent").await;
    let mut ws = ws_token(&s, &token).await;
    call(&mut ws, json!({"type": "subscribe"})).await;

    faults.set_full(true);
    let refused = s.store.write(1, |ctx| ctx.set_meta_flag("probe", Some(1))).await;
    assert!(refused.is_err(), "{refused:?}");
    let ev = next_of(&mut ws, "store.status").await;
    assert_eq!(ev["status"], "degraded", "{ev}");
    assert!(
        ev["reasons"].as_array().unwrap().contains(&json!("disk_full")),
        "{ev}"
    );

    // A client connecting now sees it at once. (Connecting reads its token from the store:
    // with the fault switch even redb's reopen is refused, so this read is served by the
    // store's read-only view of the file; it used to answer 500.)
    let proto = format!("lanbox.v1, {token}");
    let (mut late, _) = ws_connect(&s, "/api/v1/ws", &[("sec-websocket-protocol", &proto)])
        .await
        .unwrap();
    let hello = support::server::recv(&mut late).await;
    assert_eq!(hello["store"]["status"], "degraded", "{hello}");
    assert!(
        hello["store"]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("disk_full")),
        "{hello}"
    );

    faults.set_full(false);
    let ev = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let ev = next_of(&mut ws, "store.status").await;
            if ev["status"] == "ok" {
                return ev;
            }
        }
    })
    .await
    .expect("no store.status ok once writes worked again");
    assert_eq!(ev["reasons"], json!([]), "{ev}");
}
