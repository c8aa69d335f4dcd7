//! A full disk on a real small filesystem (issue 18, point 3): the test mounts a 32 MiB tmpfs
//! itself, in a mount namespace of its own (`unshare -Urm`: no root needed where user
//! namespaces are allowed, and nothing is left mounted), with a 12 MiB ballast file beside the
//! database. Ingest runs until the kernel answers `ENOSPC`; then the ballast is deleted, as an
//! operator frees space, and the store must resume by itself with nothing lost or doubled.
//! `tests/disk_full.rs` does the same with a file-size limit; where no tmpfs can be mounted
//! this test says so and skips.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lanbox::ingest::{NoIndex, Pipeline};
use lanbox::store::WriteFailure;
use support::messages::{account, fill_until_refused, filler_batch, open, wait_writes_work};

const CHILD_ENV: &str = "LANBOX_SMALL_FS_CHILD_DIR";
const BATCH: u64 = 50;

/// The child, inside its own user and mount namespace.
#[test]
fn small_filesystem_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    // The store's own account of its probes and reopens, for the parent to show on failure.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("lanbox=info")
        .try_init();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m", "lanbox-test"])
        .arg(&dir)
        .output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            println!(
                "skip: cannot mount a tmpfs here: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("skip: cannot run mount: {e}");
            return;
        }
    }
    let ballast = dir.join("ballast");
    std::fs::write(&ballast, vec![1u8; 12 << 20]).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let store = open(&dir.join("data"));
    let a = account(&store, "alpha", false);
    let p = Pipeline::new(store.clone(), Arc::new(NoIndex));
    let mut pos = 0;
    let (reached, refused) = fill_until_refused(&p, a, pos, BATCH, 100_000);
    pos = reached;
    let refused = refused.expect("the 32 MiB filesystem never filled");
    eprintln!("full after {pos} messages: {refused}");
    let h = store.health();
    assert_eq!(h.last_failure, Some(WriteFailure::DiskFull), "{h:?}");
    // Reads go on; the refused batch's position was not committed (Telegram would send it again).
    let r = store.reader().unwrap();
    assert_eq!(r.position(a).unwrap(), Some(pos));
    assert_eq!(r.all_message_keys().unwrap().len() as u64, pos);
    drop(r);
    assert!(
        p.submit_blocking(filler_batch(a, pos, BATCH)).is_err(),
        "still full, still refused"
    );

    // The operator frees space: the store finds out by itself, with no restart.
    std::fs::remove_file(&ballast).unwrap();
    let size = std::fs::metadata(dir.join("data").join("lanbox.redb"))
        .map(|m| m.len())
        .unwrap_or(0);
    let df = Command::new("df")
        .arg("-k")
        .arg(&dir)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    eprintln!("freed: database file {size} bytes; {df}");
    wait_writes_work(&store, Duration::from_secs(120));
    p.submit_blocking(filler_batch(a, pos, BATCH))
        .expect("writes work again");
    pos += BATCH;
    let r = store.reader().unwrap();
    assert_eq!(r.position(a).unwrap(), Some(pos));
    assert_eq!(
        r.all_message_keys().unwrap().len() as u64,
        pos,
        "each message stored once"
    );
    println!("child ok {pos}");
}

// Regression: on this filesystem the database filled at 14,550 messages with ENOSPC,
// cleanly, but after the ballast was deleted (12 MiB free) the store never cleared `disk_full`:
// its probe wrote its 8 MiB of headroom as 512 KiB values, which redb gives pages of their own
// rounded up to a power of two, so the probe asked for more than the disk had and kept failing.
#[test]
fn a_small_filesystem_fills_and_ingest_resumes_when_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "--propagation", "private"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "small_filesystem_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skip: cannot run unshare to mount a tmpfs: {e}");
            return;
        }
    };
    let stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    let mut out = String::new();
    for l in BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
    {
        out.push_str(&l);
        out.push('\n');
    }
    let status = child.wait().unwrap();
    let err = errors.join().unwrap();
    if !status.success() && err.contains("unshare:") {
        // No user namespaces here (a hardened kernel, a container): said, not failed.
        eprintln!(
            "skip: unshare refused: {}",
            err.lines().find(|l| l.contains("unshare:")).unwrap_or("")
        );
        return;
    }
    assert!(status.success(), "the child failed ({status}):\n{out}\n{err}");
    if let Some(skip) = out.lines().find(|l| l.starts_with("skip: ")) {
        eprintln!("{skip}");
        return;
    }
    assert!(out.contains("child ok"), "the child failed:\n{out}\n{err}");
}
