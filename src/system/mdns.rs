//! LAN discovery over mDNS: the box answers for its name (`lanbox.local` by default) and
//! announces an `_https._tcp` service, so a browser on the LAN finds it without knowing its
//! address. `mdns-sd` runs its own small thread; dropping [`Announcer`] withdraws the records.

use mdns_sd::{ServiceDaemon, ServiceInfo};

pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("fullname", &self.fullname)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("mDNS: {0}")]
pub struct MdnsError(String);

/// Starts answering for `name` (e.g. `lanbox.local`) and announces HTTPS on `port`, with every
/// address of the machine's interfaces.
pub fn announce(name: &str, port: u16) -> Result<Announcer, MdnsError> {
    let host = format!("{}.", name.trim_end_matches('.'));
    if !host.ends_with(".local.") {
        return Err(MdnsError(format!("{name} must end in .local")));
    }
    let instance = host.trim_end_matches(".local.").to_string();
    let daemon = ServiceDaemon::new().map_err(|e| MdnsError(e.to_string()))?;
    let info = ServiceInfo::new(
        "_https._tcp.local.",
        &instance,
        &host,
        (),
        port,
        &[("path", "/")][..],
    )
    .map_err(|e| MdnsError(e.to_string()))?
    .enable_addr_auto();
    let fullname = info.get_fullname().to_string();
    daemon.register(info).map_err(|e| MdnsError(e.to_string()))?;
    Ok(Announcer { daemon, fullname })
}

impl Drop for Announcer {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
