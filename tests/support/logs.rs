//! lanbox's log output captured in memory, so a test can check what the log never says (message
//! text, tokens). One subscriber per test binary: the first [`capture`] installs it with its
//! filter, later calls share it (and its filter).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything written to the log so far.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The log so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The test binary's log, filtered by `directives` (`EnvFilter` syntax: `"trace"` is every
/// crate at the most verbose level). Panics if another subscriber was installed first, since a
/// capture that sees nothing would pass every "never logged" check.
pub fn capture(directives: &str) -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let c = Captured::default();
        let w = c.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
            .with_writer(move || w.clone())
            .with_ansi(false)
            .try_init()
            .expect("the log capture is this test binary's only subscriber");
        c
    })
}
