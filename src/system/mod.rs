//! The box around the inbox: TLS certificates, listening sockets (systemd socket activation),
//! systemd notifications, free disk space.

pub mod disk;
pub mod listen;
pub mod mdns;
pub mod notify;
pub mod ota;
pub mod tls;
pub mod update;

/// Makes a file-size limit (`RLIMIT_FSIZE`, a quota) an error rather than death: by default the
/// kernel kills a process with `SIGXFSZ` when it writes past its limit; ignored, the write fails
/// with `EFBIG`, which the store treats like a full disk (stops writing, keeps serving reads,
/// recovers by itself once writes work again; `docs/data-safety.md`).
pub fn ignore_file_size_signal() {
    // SAFETY: setting a signal's disposition to SIG_IGN has no handler to be unsafe in.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
