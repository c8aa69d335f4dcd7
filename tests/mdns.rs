//! The box answers mDNS queries for its name on the LAN. A second, independent mDNS stack in
//! the test resolves the name the way a laptop on the LAN would.

use std::time::{Duration, Instant};

use mdns_sd::{HostnameResolutionEvent, ServiceDaemon};

#[test]
fn name_resolves_over_multicast_dns() {
    let name = format!("lanbox-test-{}.local", std::process::id());
    let _announcer = lanbox::system::mdns::announce(&name, 8443).unwrap();
    let resolver = ServiceDaemon::new().unwrap();
    let rx = resolver
        .resolve_hostname(&format!("{name}."), Some(8000))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = None;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(HostnameResolutionEvent::AddressesFound(_, addrs)) => {
                found = Some(addrs);
                break;
            }
            Ok(HostnameResolutionEvent::SearchTimeout(_)) => break,
            _ => {}
        }
    }
    let _ = resolver.shutdown();
    let addrs = found.expect("the name was not resolved over mDNS");
    assert!(!addrs.is_empty());
}

#[test]
fn names_outside_local_are_refused() {
    assert!(lanbox::system::mdns::announce("lanbox.example.com", 8443).is_err());
}
