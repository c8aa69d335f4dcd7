//! The box around the inbox: TLS certificates, listening sockets (systemd socket activation),
//! systemd notifications.

pub mod listen;
pub mod mdns;
pub mod notify;
pub mod ota;
pub mod tls;
