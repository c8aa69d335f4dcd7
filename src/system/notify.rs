//! systemd notifications (`sd_notify`): READY, STATUS and WATCHDOG over `$NOTIFY_SOCKET`.
//! A no-op when not started by systemd.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<std::path::PathBuf>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").map(std::path::PathBuf::from);
        Notifier { socket }
    }

    pub fn send(&self, state: &str) {
        #[cfg(unix)]
        if let Some(path) = &self.socket {
            use std::os::unix::net::UnixDatagram;
            let Ok(sock) = UnixDatagram::unbound() else { return };
            let bytes = path.as_os_str().as_encoded_bytes();
            let _ = if bytes.first() == Some(&b'@') {
                // Abstract socket namespace.
                #[cfg(target_os = "linux")]
                {
                    use std::os::linux::net::SocketAddrExt;
                    match std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..]) {
                        Ok(addr) => sock.send_to_addr(state.as_bytes(), &addr),
                        Err(e) => Err(e),
                    }
                }
                #[cfg(not(target_os = "linux"))]
                Ok(0)
            } else {
                sock.send_to(state.as_bytes(), path)
            };
        }
    }

    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={status}"));
    }

    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// Half the watchdog interval systemd asked for, if it asked.
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        let pid_ok = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
        (pid_ok && usec > 0).then(|| Duration::from_micros(usec / 2))
    }

    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }
}
