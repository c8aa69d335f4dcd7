//! Updates through the API with the real RAUC (Debian's `rauc`): bundles made and signed by
//! RAUC itself in the test, with keys made by openssl, uploaded over HTTPS.
//!
//! What a machine without A/B slots can show: RAUC checks each upload's signature against the
//! box's keyring; an unsigned file, a bundle signed by another key and one over the size
//! limit are refused and leave the staged bundle as it was; agents cannot touch updates; an
//! install is started and, since this machine has no RAUC service or slots, fails with RAUC's
//! reason on the admins' WebSocket and in the state. Installing into a real slot, the reboot
//! and the fallback run under qemu (docs/updates.md).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use lanbox::auth::Role;
use lanbox::service::ServiceOptions;
use lanbox::system::update::UpdateOptions;
use serde_json::json;
use support::server::{TestServer, call, get, next_of, post, request, ws_token};

const COMPATIBLE: &str = "lanbox-test";

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed signing certificate and its key (RAUC takes such a certificate as keyring).
fn keys(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.cert.pem")),
        dir.join(format!("{name}.key.pem")),
    );
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30"])
        .args([
            "-subj",
            &format!("/CN=lanbox {name}"),
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]));
    (cert, key)
}

/// A verity bundle of a small "rootfs", version `version`, signed with `(cert, key)`.
fn bundle(dir: &Path, version: &str, signer: &(PathBuf, PathBuf)) -> PathBuf {
    let content = dir.join(format!("content-{version}"));
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        format!(
            "[update]\ncompatible={COMPATIBLE}\nversion={version}\n\n[bundle]\nformat=verity\n\n\
             [image.rootfs]\nfilename=rootfs.ext4\n"
        ),
    )
    .unwrap();
    // Incompressible bytes: RAUC wants a squashfs larger than one block.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let image: Vec<u8> = (0..256 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(content.join("rootfs.ext4"), image).unwrap();
    let out = dir.join(format!(
        "lanbox-{version}-{}.raucb",
        signer.0.file_stem().unwrap().to_string_lossy()
    ));
    run(Command::new("rauc").args([
        "bundle",
        &format!("--cert={}", signer.0.display()),
        &format!("--key={}", signer.1.display()),
        content.to_str().unwrap(),
        out.to_str().unwrap(),
    ]));
    out
}

/// The status and body; status 0 when the server closed the connection while the body was
/// still going (it stops reading an upload over the limit, or one it refuses up front).
async fn put_bundle(s: &TestServer, token: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let res = match s
        .client()
        .put(s.url("/api/v1/system/update/bundle"))
        .bearer_auth(token)
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) if e.is_request() => return (0, serde_json::Value::Null),
        Err(e) => panic!("{e}"),
    };
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bundles_are_checked_by_rauc_and_refused_ones_change_nothing() {
    if !(have("rauc") && have("mksquashfs") && have("openssl")) {
        // scripts/install-deps.sh installs them; say so rather than pass quietly.
        println!(
            "skip: rauc, mksquashfs and openssl are needed (apt-get install rauc squashfs-tools openssl)"
        );
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let ours = keys(work.path(), "ours");
    let theirs = keys(work.path(), "theirs");
    let conf = work.path().join("system.conf");
    std::fs::write(
        &conf,
        format!(
            "[system]\ncompatible={COMPATIBLE}\nbootloader=noop\n\n[keyring]\npath={}\n\n\
             [slot.rootfs.0]\ndevice={0}.a\nbootname=A\n\n[slot.rootfs.1]\ndevice={0}.b\nbootname=B\n",
            ours.0.display()
        ),
    )
    .unwrap();
    let good = bundle(work.path(), "2026.12.2", &ours);
    let foreign = bundle(work.path(), "2026.12.3", &theirs);

    let s = TestServer::start_with(ServiceOptions {
        update: UpdateOptions {
            conf: Some(conf.clone()),
            keyring: Some(ours.0.clone()),
            max_bundle: 4 << 20,
            // Never reboot the machine running the tests.
            reboot: vec!["false".into()],
            ..UpdateOptions::default()
        },
        ..ServiceOptions::default()
    })
    .await;
    s.user("admin", Role::Admin, &[]).await;
    s.user("agent", Role::Agent, &[]).await;
    let (admin, agent) = (s.token("admin").await, s.token("agent").await);

    // Agents neither see nor upload updates.
    assert_eq!(get(&s, &agent, "/api/v1/system/update").await.0, 403);
    assert_eq!(put_bundle(&s, &agent, b"small".to_vec()).await.0, 403);

    // Ours: checked by RAUC, staged, its manifest shown.
    let (st, body) = put_bundle(&s, &admin, std::fs::read(&good).unwrap()).await;
    assert_eq!(st, 201, "{body}");
    assert_eq!(body["bundle"]["version"], "2026.12.2");
    assert_eq!(body["bundle"]["compatible"], COMPATIBLE);
    assert_eq!(body["bundle"]["images"], json!(["rootfs"]));
    let staged = s.store.dir().join("update").join("bundle.raucb");
    let staged_bytes = std::fs::read(&staged).unwrap();
    assert_eq!(staged_bytes, std::fs::read(&good).unwrap());

    // Signed by another key, not signed at all, too large: refused, nothing else changes.
    let (st, body) = put_bundle(&s, &admin, std::fs::read(&foreign).unwrap()).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["error"]["code"], "bundle_refused", "{body}");
    let (st, body) = put_bundle(&s, &admin, b"not a bundle at all".repeat(100)).await;
    assert_eq!(st, 400, "{body}");
    assert_eq!(body["error"]["code"], "bundle_refused", "{body}");
    // Over the limit: refused as soon as it is announced (Content-Length) or passed.
    let (st, body) = put_bundle(&s, &admin, vec![7u8; 5 << 20]).await;
    assert!(st == 413 || st == 0, "{st} {body}");
    assert_eq!(
        std::fs::read(&staged).unwrap(),
        staged_bytes,
        "a refused upload touched the staged bundle"
    );
    let left: Vec<_> = std::fs::read_dir(s.store.dir().join("update"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left,
        vec!["bundle.raucb".to_string()],
        "refused uploads left files behind"
    );

    let (st, state) = get(&s, &admin, "/api/v1/system/update").await;
    assert_eq!(st, 200);
    assert_eq!(state["bundle"]["version"], "2026.12.2");
    assert_eq!(state["install"]["state"], "idle");
    // Nothing installed yet: no reboot.
    let (st, body) = post(&s, &admin, "/api/v1/system/reboot", json!({})).await;
    assert_eq!(st, 400, "{body}");

    // The install runs RAUC; here RAUC has no service and no slots, so it fails, and the
    // admins hear it live with RAUC's reason.
    let mut ws = ws_token(&s, &admin).await;
    call(&mut ws, json!({"type": "subscribe"})).await;
    let (st, body) = post(&s, &admin, "/api/v1/system/update/install", json!({})).await;
    assert_eq!(st, 202, "{body}");
    let ev = loop {
        let ev = next_of(&mut ws, "update.progress").await;
        if ev["state"] != "installing" {
            break ev;
        }
    };
    assert_eq!(ev["state"], "failed", "{ev}");
    assert!(
        ev["error"].as_str().is_some_and(|e| e.starts_with("rauc: ")),
        "{ev}"
    );
    let (_, state) = get(&s, &admin, "/api/v1/system/update").await;
    assert_eq!(state["install"]["state"], "failed", "{state}");
    assert_eq!(
        state["bundle"]["version"], "2026.12.2",
        "a failed install keeps the bundle"
    );

    // Discarded: gone from disk and from the state.
    let (st, _) = request(&s, "DELETE", &admin, "/api/v1/system/update/bundle", None).await;
    assert_eq!(st, 204);
    assert!(!staged.exists());
    let (_, state) = get(&s, &admin, "/api/v1/system/update").await;
    assert!(state["bundle"].is_null(), "{state}");
}
