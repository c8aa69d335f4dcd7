//! One `lanbox serve` child process, driven the way systemd drives it: the bench binds a unix
//! datagram socket, passes it as `$NOTIFY_SOCKET`, and times the start until `READY=1` arrives
//! on it. Memory comes from `/proc/PID/status`; the child is stopped with SIGTERM and must exit
//! cleanly (an unclean stop would leave redb to repair the file on the next start).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Res;

/// How long a start may take before the bench gives up.
const START_TIMEOUT: Duration = Duration::from_secs(300);
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What the bench controls about one start.
pub struct Launch<'a> {
    pub bin: &'a Path,
    pub data: &'a Path,
    /// Holds the notify socket and the child's log.
    pub work: &'a Path,
    /// Extra `KEY=VALUE` variables (e.g. `LANBOX_STORE_CACHE_MB=16`).
    pub env: &'a [(String, String)],
    pub mdns: bool,
}

/// A running `lanbox serve`.
pub struct Serving {
    child: Option<Child>,
    pub pid: u32,
    /// From `spawn` to `READY=1` on the notify socket.
    pub ready: Duration,
    pub addr: SocketAddr,
    pub fingerprint: String,
    log: PathBuf,
}

/// The memory lines of `/proc/PID/status`, in KiB (and the thread count).
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    pub rss_kb: u64,
    pub hwm_kb: u64,
    pub anon_kb: u64,
    pub file_kb: u64,
    pub threads: u64,
    /// User + system CPU time of the whole process so far, in clock ticks.
    pub cpu_ticks: u64,
}

pub fn start(l: &Launch<'_>) -> Res<Serving> {
    let sock_path = l.work.join("notify.sock");
    let _ = std::fs::remove_file(&sock_path);
    let sock = UnixDatagram::bind(&sock_path)?;
    sock.set_read_timeout(Some(Duration::from_millis(50)))?;
    let log = l.work.join("serve.log");
    let mut cmd = Command::new(l.bin);
    cmd.arg("serve").arg("--data").arg(l.data);
    // Nothing from the bench's own environment may steer the child.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("LANBOX_") || k.starts_with("LISTEN_") || k.starts_with("WATCHDOG_") {
            cmd.env_remove(&k);
        }
    }
    cmd.env("NOTIFY_SOCKET", &sock_path)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("LANBOX_SERVER_LISTEN", "127.0.0.1:0")
        .env("LANBOX_SERVER_MDNS", if l.mdns { "true" } else { "false" })
        .envs(l.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?);

    let t0 = Instant::now();
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let lines = stdout_lines(child.stdout.take().expect("piped"));
    let mut buf = [0u8; 4096];
    let ready = loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]);
                if msg.lines().any(|l| l == "READY=1") {
                    break t0.elapsed();
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!("lanbox serve exited before READY=1 ({status}): {}", tail(&log)).into());
        }
        if t0.elapsed() > START_TIMEOUT {
            kill(&mut child);
            return Err(format!("no READY=1 within {START_TIMEOUT:?}: {}", tail(&log)).into());
        }
    };
    let _ = std::fs::remove_file(&sock_path);

    // Both lines are printed before READY=1 is sent.
    let (mut addr, mut fingerprint) = (None, String::new());
    while addr.is_none() {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(10)) else {
            kill(&mut child);
            return Err(format!("READY=1 but no \"listening\" line: {}", tail(&log)).into());
        };
        if let Some(f) = line.strip_prefix("lanbox certificate SHA-256 fingerprint: ") {
            fingerprint = f.trim().to_string();
        }
        if let Some(a) = line.strip_prefix("lanbox listening on https://") {
            addr = Some(a.trim().parse()?);
        }
    }
    Ok(Serving {
        child: Some(child),
        pid,
        ready,
        addr: addr.expect("loop ends with an address"),
        fingerprint,
        log,
    })
}

impl Serving {
    pub fn mem(&self) -> Res<Mem> {
        mem(self.pid)
    }

    /// SIGTERM, then waits for a clean exit; returns how long the stop took.
    pub fn stop(mut self) -> Res<Duration> {
        let mut child = self.child.take().expect("stopped once");
        let t0 = Instant::now();
        // SAFETY: plain kill(2) on our own child's PID, which we have not reaped yet.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    return Err(format!("lanbox serve stopped with {status}: {}", tail(&self.log)).into());
                }
                return Ok(t0.elapsed());
            }
            if t0.elapsed() > STOP_TIMEOUT {
                kill(&mut child);
                return Err(format!("lanbox serve did not stop within {STOP_TIMEOUT:?}").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill(&mut c);
        }
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn stdout_lines(out: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The last lines of the child's log, for error messages (lanbox never logs message text).
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

pub fn mem(pid: u32) -> Res<Mem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let fields: BTreeMap<&str, u64> = text
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k, v.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    let get = |k: &str| {
        fields
            .get(k)
            .copied()
            .ok_or_else(|| format!("no {k} in /proc/{pid}/status"))
    };
    Ok(Mem {
        rss_kb: get("VmRSS")?,
        hwm_kb: get("VmHWM")?,
        anon_kb: get("RssAnon")?,
        file_kb: get("RssFile")?,
        threads: get("Threads")?,
        cpu_ticks: cpu_ticks(pid)?,
    })
}

/// utime + stime from `/proc/PID/stat` (fields 14 and 15; the command name may hold spaces,
/// so count from its closing parenthesis).
fn cpu_ticks(pid: u32) -> Res<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Ok(f.iter().sum())
}
