//! Encrypted backups of the whole box, taken while it runs, and their restore on a new box.
//!
//! - [`format`]: the file: a header, then ChaCha20-Poly1305 chunks under a key derived from the
//!   backup passphrase with argon2id (truncation, reordering and damage detected).
//! - [`key`]: the passphrase, kept only as the derived key wrapped by the master key.
//! - [`tables`]: every redb table of the box, copied record by record.
//! - [`check`]: `lanbox check`, every table and sealed record of a stopped box read and
//!   counted good or damaged, without writing.
//! - [`snapshot`]: what a backup holds (one read transaction's records, the master key, the
//!   configuration, the TLS files, attachment files not in the bucket), writing, verifying and
//!   restoring it.
//!
//! [`Backups`] is the running box's side: a backup now (to `DIR/backups/` or the S3 bucket,
//! verified after writing, the oldest beyond `keep` removed), the list, and the schedule. The
//! routes are `api::backups`; the commands `lanbox backup` and `lanbox restore`.
//!
//! Nothing here logs or returns record contents; errors name files, tables and chunks.

pub mod check;
pub mod format;
pub mod key;
pub mod snapshot;
pub mod staged;
pub mod tables;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::attachments::s3::{S3, S3Config, S3Error};
use crate::store::{Store, StoreError};
pub use snapshot::{Sources, Summary};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    #[error("no backup passphrase is set (`lanbox backup set-passphrase`, or Settings -> System -> Backup)")]
    NoPassphrase,
    #[error("the backup passphrase must be at least {} characters", key::MIN_PASSPHRASE)]
    WeakPassphrase,
    #[error("wrong passphrase for this backup (or its header is damaged)")]
    WrongPassphrase,
    #[error("not a lanbox backup (the file does not start with the backup header)")]
    NotABackup,
    #[error("the backup is truncated: {0}")]
    Truncated(String),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup was made by a newer lanbox ({0}); restore it with that version or later")]
    TooNew(String),
    #[error("tables this lanbox does not know: {0}")]
    UnknownTables(String),
    #[error("{0} is not empty: restore into a new data directory")]
    TargetNotEmpty(String),
    #[error("reading the backup: {0}")]
    Read(String),
    #[error("writing the backup: {0}")]
    Write(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the operating system's random source failed")]
    Random,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("S3: {0}")]
    S3(#[from] S3Error),
    #[error("a backup is already running")]
    Busy,
    #[error("no backup named {0}")]
    NotFound(String),
    #[error("lanbox is shutting down")]
    Stopped,
}

impl From<crate::store::passkey::KdfError> for BackupError {
    fn from(e: crate::store::passkey::KdfError) -> Self {
        match e {
            crate::store::passkey::KdfError::Random => BackupError::Random,
            crate::store::passkey::KdfError::Parameters(m) => BackupError::Damaged(m),
        }
    }
}

impl From<redb::StorageError> for BackupError {
    fn from(e: redb::StorageError) -> Self {
        BackupError::Store(e.into())
    }
}

impl BackupError {
    fn write(e: std::io::Error) -> BackupError {
        BackupError::from_io(e, true)
    }

    fn file(path: &Path, source: std::io::Error) -> BackupError {
        BackupError::File {
            path: path.display().to_string(),
            source,
        }
    }

    /// An I/O error that may carry a [`BackupError`] from the chunk layer underneath.
    pub fn from_io(e: std::io::Error, writing: bool) -> BackupError {
        if e.get_ref().is_some_and(|i| i.is::<BackupError>()) {
            return *e
                .into_inner()
                .expect("checked above")
                .downcast::<BackupError>()
                .expect("checked above");
        }
        match (writing, e.kind()) {
            // The contents end before an item does, although the final chunk authenticated.
            (false, std::io::ErrorKind::UnexpectedEof) => {
                BackupError::Damaged("the contents end inside an item".into())
            }
            (false, _) => BackupError::Read(e.to_string()),
            (true, _) => BackupError::Write(e.to_string()),
        }
    }
}

/// How the running box makes backups (`[backup]` in `lanbox.toml`).
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Where local backups go (`DIR/backups` unless configured).
    pub dir: Option<PathBuf>,
    /// The configuration file in use, copied into every backup.
    pub config_file: Option<PathBuf>,
    /// Send backups to this bucket (under `backups/`) instead of keeping them locally.
    pub s3: Option<S3Config>,
    /// Generations kept; older ones are removed after a new one is verified.
    pub keep: u32,
    /// How often a scheduled backup runs; `None` for none.
    pub every: Option<Duration>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            dir: None,
            config_file: None,
            s3: None,
            keep: 7,
            every: None,
        }
    }
}

/// A backup as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackupInfo {
    pub name: String,
    /// `local` (in the backup directory) or `s3` (in the bucket, under `backups/`).
    pub location: &'static str,
    pub bytes: u64,
    /// Unix seconds, from the name.
    pub created_at: i64,
}

/// A backup just made and verified.
#[derive(Debug, Clone, Serialize)]
pub struct Made {
    #[serde(flatten)]
    pub info: BackupInfo,
    /// Decrypted and checked chunk by chunk after writing.
    pub verified: bool,
    pub records: u64,
    /// Attachment files copied (not yet in the bucket).
    pub attachment_files: u64,
    /// Attachments referenced in the bucket, not copied.
    pub attachments_in_s3: u64,
}

/// The running box's backups: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Backups {
    store: Store,
    opts: Arc<BackupOptions>,
    /// One backup at a time. A tokio Mutex: it is held across the awaits of a whole backup.
    running: Arc<tokio::sync::Mutex<()>>,
    s3: Option<S3>,
}

impl std::fmt::Debug for Backups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backups")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

const PREFIX: &str = "lanbox-";
const SUFFIX: &str = ".lbk";
const S3_PREFIX: &str = "backups/";

impl Backups {
    pub fn new(store: Store, opts: BackupOptions) -> Result<Backups, BackupError> {
        let s3 = opts.s3.clone().map(S3::new).transpose()?;
        Ok(Backups {
            store,
            opts: Arc::new(opts),
            running: Arc::new(tokio::sync::Mutex::new(())),
            s3,
        })
    }

    pub fn options(&self) -> &BackupOptions {
        &self.opts
    }

    /// The local backup directory.
    pub fn dir(&self) -> PathBuf {
        self.opts
            .dir
            .clone()
            .unwrap_or_else(|| self.store.dir().join("backups"))
    }

    /// Whether a passphrase is set (the backup key is stored).
    pub async fn passphrase_set(&self) -> Result<bool, BackupError> {
        self.store
            .try_read(|r| Ok::<_, BackupError>(key::setting(r)?.is_some()))
            .await
    }

    pub async fn set_passphrase(&self, passphrase: String) -> Result<(), BackupError> {
        let _one = self.running.try_lock().map_err(|_| BackupError::Busy)?;
        key::set_passphrase(&self.store, passphrase).await
    }

    /// Makes a backup now, verifies it, and removes the oldest beyond `keep`.
    pub async fn create(&self) -> Result<Made, BackupError> {
        let _one = self.running.try_lock().map_err(|_| BackupError::Busy)?;
        let dir = self.dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| BackupError::file(&dir, e))?;
        let now = crate::store::ctx::unix_now();
        let name = format!("{PREFIX}{}{SUFFIX}", stamp(now));
        let path = dir.join(&name);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            // Two backups in one second: the second would replace the first.
            return Err(BackupError::Busy);
        }
        let sources = self.sources();
        let store = self.store.clone();
        let target = path.clone();
        let summary = tokio::task::spawn_blocking(move || write_verified(&store, &sources, &target))
            .await
            .map_err(|_| BackupError::Stopped)??;
        let mut info = BackupInfo {
            name: name.clone(),
            location: "local",
            bytes: summary.bytes,
            created_at: now,
        };
        if let Some(s3) = &self.s3 {
            let key = format!("{S3_PREFIX}{name}");
            let uploaded = async {
                s3.ensure_bucket().await?;
                s3.upload_file(&key, &path).await?;
                match s3.head(&key).await? {
                    Some(len) if len == summary.bytes => Ok(()),
                    _ => Err(S3Error::BadResponse("the uploaded backup has the wrong size")),
                }
            }
            .await;
            let _ = tokio::fs::remove_file(&path).await;
            uploaded?;
            info.location = "s3";
        }
        tracing::info!(name = %info.name, bytes = info.bytes, location = info.location, records = summary.records, "backup made and verified");
        self.prune().await?;
        Ok(Made {
            info,
            verified: true,
            records: summary.records,
            attachment_files: summary.attachment_files,
            attachments_in_s3: summary.manifest.attachments_in_s3,
        })
    }

    /// The files of this box a backup copies.
    pub fn sources(&self) -> Sources {
        Sources::of(&self.store, &self.opts)
    }

    /// Backups kept, newest first (local ones; with S3, those the bucket holds).
    pub async fn list(&self) -> Result<Vec<BackupInfo>, BackupError> {
        let mut out = Vec::new();
        if let Some(s3) = &self.s3 {
            for (key, bytes) in s3.list(S3_PREFIX).await? {
                let name = key.trim_start_matches(S3_PREFIX);
                if let Some(created_at) = parse_name(name) {
                    out.push(BackupInfo {
                        name: name.to_string(),
                        location: "s3",
                        bytes,
                        created_at,
                    });
                }
            }
        } else {
            let dir = self.dir();
            let mut rd = match tokio::fs::read_dir(&dir).await {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(BackupError::file(&dir, e)),
            };
            while let Some(e) = rd.next_entry().await.map_err(|e| BackupError::file(&dir, e))? {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(created_at) = parse_name(&name) {
                    let bytes = e.metadata().await.map(|m| m.len()).unwrap_or(0);
                    out.push(BackupInfo {
                        name,
                        location: "local",
                        bytes,
                        created_at,
                    });
                }
            }
        }
        out.sort_by(|a, b| b.name.cmp(&a.name));
        Ok(out)
    }

    async fn prune(&self) -> Result<(), BackupError> {
        let keep = self.opts.keep.max(1) as usize;
        for old in self.list().await?.into_iter().skip(keep) {
            match &self.s3 {
                Some(s3) => s3.delete(&format!("{S3_PREFIX}{}", old.name)).await?,
                None => {
                    let p = self.dir().join(&old.name);
                    tokio::fs::remove_file(&p)
                        .await
                        .map_err(|e| BackupError::file(&p, e))?;
                }
            }
        }
        Ok(())
    }

    /// A local backup's file, for download.
    pub async fn open_local(&self, name: &str) -> Result<(tokio::fs::File, u64), BackupError> {
        if parse_name(name).is_none() {
            return Err(BackupError::NotFound(name.to_string()));
        }
        let path = self.dir().join(name);
        let f = tokio::fs::File::open(&path)
            .await
            .map_err(|_| BackupError::NotFound(name.to_string()))?;
        let len = f.metadata().await.map_err(|e| BackupError::file(&path, e))?.len();
        Ok((f, len))
    }

    /// A backup in the bucket, for download: the response streaming its bytes.
    pub async fn open_s3(&self, name: &str) -> Result<Option<(reqwest::Response, u64)>, BackupError> {
        let Some(s3) = &self.s3 else { return Ok(None) };
        if parse_name(name).is_none() {
            return Err(BackupError::NotFound(name.to_string()));
        }
        let key = format!("{S3_PREFIX}{name}");
        let len = s3
            .head(&key)
            .await?
            .ok_or_else(|| BackupError::NotFound(name.to_string()))?;
        Ok(Some((s3.get_range(&key, 0, len).await?, len)))
    }

    /// Scheduled backups, when configured (and a passphrase is set): the first one an interval
    /// after start, then every interval. A failure is logged and retried at the next turn.
    pub fn start(&self, mut stop: watch::Receiver<bool>) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.opts.every?;
        let me = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                match me.create().await {
                    Ok(_) => {}
                    Err(BackupError::NoPassphrase) => {
                        tracing::warn!("scheduled backup skipped: no backup passphrase is set")
                    }
                    Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
                }
            }
        }))
    }
}

impl Sources {
    /// The files of the box `store` belongs to, as `opts` describe them.
    pub fn of(store: &Store, opts: &BackupOptions) -> Sources {
        let master_key = match store.master_key_source() {
            crate::store::MasterKeySource::Created(p)
            | crate::store::MasterKeySource::File(p)
            | crate::store::MasterKeySource::Credential(p)
            // A sealed box's backup holds the sealed key: the restored box is sealed by the same
            // passphrase.
            | crate::store::MasterKeySource::Unsealed(p) => p.clone(),
        };
        Sources {
            data_dir: store.dir().to_path_buf(),
            master_key,
            config: opts
                .config_file
                .clone()
                .unwrap_or_else(|| store.dir().join(snapshot::CONFIG)),
            s3: opts.s3.as_ref().map(|c| (c.endpoint.clone(), c.bucket.clone())),
        }
    }
}

/// Writes a backup of `store` to `path` (through `path.part`, renamed once verified) and checks
/// it by decrypting every chunk. Blocking.
pub fn write_verified(store: &Store, sources: &Sources, path: &Path) -> Result<Summary, BackupError> {
    let reader = store.reader()?;
    let (key, kdf) = key::load(&reader)?;
    let part = path.with_extension("part");
    let file = std::fs::File::create(&part).map_err(|e| BackupError::file(&part, e))?;
    let result = (|| {
        let (file, _) = snapshot::write(&reader, sources, &key, kdf, file)?;
        drop(reader);
        file.sync_all().map_err(|e| BackupError::file(&part, e))?;
        drop(file);
        let check = std::fs::File::open(&part).map_err(|e| BackupError::file(&part, e))?;
        let summary = snapshot::verify_with_key(std::io::BufReader::with_capacity(256 << 10, check), &key)?;
        std::fs::rename(&part, path).map_err(|e| BackupError::file(path, e))?;
        Ok(summary)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// `20240131T235959Z` for a Unix time (UTC).
fn stamp(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's `civil_from_days`).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The Unix time in a backup's name, `None` for a name that is not one.
fn parse_name(name: &str) -> Option<i64> {
    let s = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from civil (inverse of `civil`).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if mo > 2 { mo - 3 } else { mo + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t = days * 86_400 + h * 3600 + mi * 60 + se;
    (stamp(t) == s).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_time() {
        for t in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            let name = format!("{PREFIX}{}{SUFFIX}", stamp(t));
            assert_eq!(parse_name(&name), Some(t), "{name}");
        }
        assert_eq!(stamp(1_700_000_000), "20231114T221320Z");
        assert_eq!(parse_name("lanbox-20231314T221320Z.lbk"), None);
        assert_eq!(parse_name("../etc/passwd"), None);
    }
}
