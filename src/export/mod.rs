//! Conversation export: a typeset PDF transcript of a chat, the chat as JSON Lines in the API's
//! own message shape, and an account's whole archive (JSON Lines plus decrypted attachments in
//! one streamed tar) so a team can leave lanbox with its data (docs/export.md).
//!
//! - [`fonts`]: the Noto fonts read from files on the box, and the error naming the package.
//! - [`layout`]: shaping, bidi ordering, UAX #14 line breaking, font fallback.
//! - [`pdf`]: the transcript drawn with krilla in volumes; [`merge`] splices the volumes into
//!   one streamed file; [`describe`] words a message's parts (sender, poll, location, ...).
//! - [`source`]: the visible messages of a chat, oldest first, read in batches with the
//!   caller's grants (the read model decides what is visible, as for every route).
//! - [`archive`]: JSON Lines and the streamed tar.
//!
//! Every export runs on a blocking thread (`spawn_blocking`) and hands its output in pieces over
//! a bounded channel to the HTTP body, so a slow client slows the export instead of growing a
//! buffer, and other requests keep their worker threads. Nothing is written to disk: thumbnails
//! and attachments are decrypted in memory while they stream. No message text reaches a log or
//! an error string.

pub mod archive;
pub mod describe;
pub mod fonts;
pub mod layout;
pub mod merge;
pub mod pdf;
pub mod source;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::store::StoreError;

/// `[export]` settings.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Where the fonts are looked for (three levels deep).
    pub fonts_dir: PathBuf,
    /// An IANA time zone (`Europe/Berlin`) for the times in transcripts; empty for the box's
    /// own (`/etc/localtime`, else UTC).
    pub time_zone: String,
    /// The box's name, shown in the transcript's header.
    pub box_name: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            fonts_dir: PathBuf::from("/usr/share/fonts"),
            time_zone: String::new(),
            box_name: "lanbox.local".into(),
        }
    }
}

impl ExportOptions {
    /// The configured time zone; an unknown name is refused when the configuration is read.
    pub fn zone(&self) -> Result<jiff::tz::TimeZone, String> {
        if self.time_zone.is_empty() {
            return Ok(jiff::tz::TimeZone::try_system().unwrap_or(jiff::tz::TimeZone::UTC));
        }
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|_| format!("unknown time zone {:?}", self.time_zone))
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    #[error("the fonts for PDF export are missing from {dir}: install the Debian packages {packages}")]
    FontsMissing { packages: String, dir: String },
    #[error("font file {file} cannot be read: {detail}")]
    FontUnreadable { file: &'static str, detail: String },
    #[error("PDF: {0}")]
    Pdf(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("attachment: {0}")]
    Attachment(String),
    /// The client went away; the export stops.
    #[error("the client closed the download")]
    Closed,
}

/// Exports allowed to run at once (each holds the fonts, about 40 MB, and one volume); one
/// more is refused with 429 until one ends.
pub const MAX_RUNNING: u32 = 2;

/// The exports running now: a cheap-to-clone handle (a 32-bit atomic: fine on 32-bit ARM).
#[derive(Clone, Default)]
pub struct Exports {
    running: Arc<AtomicU32>,
}

/// One running export; dropping it (when the job ends, however it ends) frees its place.
pub struct Running(Arc<AtomicU32>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Exports {
    /// A place for one more export, or `None` when [`MAX_RUNNING`] are running.
    pub fn start(&self) -> Option<Running> {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_RUNNING).then_some(n + 1)
            })
            .ok()
            .map(|_| Running(self.running.clone()))
    }

    pub fn running(&self) -> u32 {
        self.running.load(Ordering::Acquire)
    }
}

/// Formats Unix seconds in a zone as `2026-12-05 09:14`.
pub fn local_time(zone: &jiff::tz::TimeZone, t: i64) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => ts
            .to_zoned_datetime(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_the_configured_zone() {
        let o = |tz: &str| ExportOptions {
            time_zone: tz.into(),
            ..ExportOptions::default()
        };
        let tokyo = o("Asia/Tokyo").zone().unwrap();
        assert_eq!(local_time(&tokyo, 1_700_000_000), "2023-11-15 07:13 JST");
        assert_eq!(
            local_time(&o("UTC").zone().unwrap(), 1_700_000_000),
            "2023-11-14 22:13 UTC"
        );
        assert!(o("Mars/Olympus").zone().is_err());
        assert!(o("").zone().is_ok(), "empty: the box's own zone");
    }
}
