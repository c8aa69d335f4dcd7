//! The `lanbox` binary as the tests run it: one command line (a data directory, a loopback
//! listener on port 0, no bot token taken from the environment), runs that must succeed, and
//! `serve` read up to the certificate fingerprint and address it prints.

use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_lanbox");

/// What `serve` prints once it has its certificate, before it listens.
pub const FINGERPRINT_LINE: &str = "lanbox certificate SHA-256 fingerprint: ";
/// What `serve` prints once it answers.
pub const LISTENING_LINE: &str = "lanbox listening on https://";

/// `lanbox ARGS --data DATA`, listening on `127.0.0.1:0`, without `LANBOX_BOT_TOKEN`, stdin
/// closed. (mDNS stays as configured: set `LANBOX_SERVER_MDNS=false` to keep it off.)
pub fn command(args: &[&str], data: &Path) -> Command {
    with(Command::new(BIN), args, data)
}

/// Configures `c` like [`command`]: `c` is the binary, or a runner (qemu-user) whose first
/// argument is the binary.
pub fn with(mut c: Command, args: &[&str], data: &Path) -> Command {
    c.args(args)
        .arg("--data")
        .arg(data)
        .env("LANBOX_SERVER_LISTEN", "127.0.0.1:0")
        .env_remove("LANBOX_BOT_TOKEN")
        .stdin(Stdio::null());
    c
}

/// Runs `c` to its end and asserts it succeeded; its stdout.
pub fn run(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        c.get_args().collect::<Vec<_>>(),
        describe(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `c` to its end on a blocking thread, so the runtime (and a simulator on it) keeps
/// serving meanwhile.
pub async fn output(mut c: Command) -> Output {
    tokio::task::spawn_blocking(move || c.output().unwrap())
        .await
        .unwrap()
}

/// Exit status, stdout and stderr, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A `lanbox serve` process that is listening. Dropping it kills the process if it still runs.
pub struct Serving {
    child: Child,
    pub addr: SocketAddr,
    /// The certificate's SHA-256 fingerprint, as printed.
    pub fingerprint: String,
    /// What it printed up to and including the listening line.
    pub printed: Vec<String>,
}

impl Serving {
    /// Spawns `c` (a `serve` command) with its stdout piped and reads that until the box
    /// listens; the rest of its stdout is drained on a thread. Blocks: from async code, call it
    /// in `spawn_blocking`.
    pub fn start(c: &mut Command) -> Serving {
        let mut child = c.stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut fingerprint, mut addr) = (None, None);
        let mut printed = Vec::new();
        while addr.is_none() {
            let Some(line) = lines.next() else {
                panic!("serve exited before listening: {:?}", child.wait());
            };
            let line = line.unwrap();
            if let Some(f) = line.trim().strip_prefix(FINGERPRINT_LINE) {
                fingerprint = Some(f.to_string());
            }
            if let Some(a) = line.trim().strip_prefix(LISTENING_LINE) {
                addr = Some(a.parse().unwrap());
            }
            printed.push(line);
        }
        std::thread::spawn(move || lines.for_each(drop));
        Serving {
            child,
            addr: addr.unwrap(),
            fingerprint: fingerprint.expect("the fingerprint is printed before listening"),
            printed,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the process to end (blocks): its exit status.
    pub fn stop(mut self) -> ExitStatus {
        // SAFETY: signalling our own child process, which has not been waited for yet.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
        self.child.wait().unwrap()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads `lines` (a `serve`'s stdout) until one starts with `prefix`; every line read, in order.
/// For a `serve` whose output goes on past its first listening line (a sealed box, a restart).
pub fn read_until(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve ended before printing {prefix:?}; it printed {seen:?}"))
            .unwrap();
        let done = line.starts_with(prefix);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

/// An HTTPS client for a `serve` at `addr`, pinned to the certificate fingerprint it printed
/// (requests go to `https://lanbox.local:PORT/...`).
pub fn client(fingerprint: &str, addr: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(super::tls::config(fingerprint))
        .resolve(super::tls::HOST, addr)
        .build()
        .unwrap()
}
