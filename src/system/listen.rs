//! Listening sockets: from systemd socket activation (`LISTEN_FDS`) when present, else bound
//! here. With `lanbox.socket` owning ports 443 and 80, the service needs no capabilities.

use std::net::{SocketAddr, TcpListener};

/// Sockets systemd passed to this process, by their `FileDescriptorName=` (or `fdN`).
pub fn from_systemd() -> Vec<(String, TcpListener)> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if !pid_ok || count <= 0 {
        return Vec::new();
    }
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|n| n.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    // The variables are for this process only; children must not inherit them.
    // SAFETY: called once at start-up before any other thread reads the environment.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let mut out = Vec::new();
    #[cfg(unix)]
    for i in 0..count {
        use std::os::fd::FromRawFd;
        let fd = 3 + i;
        // SAFETY: systemd guarantees fds 3..3+LISTEN_FDS are open sockets handed to us; each is
        // wrapped exactly once.
        let l = unsafe { TcpListener::from_raw_fd(fd) };
        let name = names
            .get(i as usize)
            .cloned()
            .unwrap_or_else(|| format!("fd{fd}"));
        out.push((name, l));
    }
    out
}

pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}
