//! The `[attachments]` and `[s3]` configuration sections and their translation into
//! [`AttachmentOptions`]. S3 is off unless `s3.endpoint` is set. The secret key may come from
//! the systemd credential `s3-secret-key` (`$CREDENTIALS_DIRECTORY/s3-secret-key`), which wins
//! over the file, like the master key.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{AttachmentOptions, S3Config};

pub const S3_SECRET_CREDENTIAL: &str = "s3-secret-key";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachmentsSection {
    /// Downloads from Telegram running at once.
    pub workers: u32,
    /// Largest upload accepted for sending, MiB.
    pub upload_limit_mb: u64,
    /// Local bytes kept once files are in S3, MiB.
    pub cache_mb: u64,
    /// Bot API servers that enforce the 20 MB download limit (Telegram's own). Files from any
    /// other (self-hosted) server are fetched in full.
    pub limited_api_bases: Vec<String>,
    /// Validity of signed download URLs, seconds.
    pub url_ttl_s: u64,
}

impl Default for AttachmentsSection {
    fn default() -> Self {
        let d = AttachmentOptions::default();
        AttachmentsSection {
            workers: d.workers as u32,
            upload_limit_mb: d.upload_limit >> 20,
            cache_mb: d.cache_bytes >> 20,
            limited_api_bases: d.limited_api_bases,
            url_ttl_s: d.url_ttl.as_secs(),
        }
    }
}

/// `[s3]`: an S3-compatible server (MinIO, SeaweedFS, AWS). Empty `endpoint`: no S3.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Section {
    /// `https://minio.lan:9000` (path-style); empty turns S3 off.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key: String,
    /// Prefer the `s3-secret-key` systemd credential.
    pub secret_key: String,
    /// PEM file of a private CA for an `https` endpoint; empty for the public roots.
    pub ca_file: String,
    /// Multipart part size, MiB (at least 5).
    pub part_mb: u64,
    pub create_bucket: bool,
}

impl std::fmt::Debug for S3Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Section")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl Default for S3Section {
    fn default() -> Self {
        let d = S3Config::default();
        S3Section {
            endpoint: String::new(),
            bucket: d.bucket,
            region: d.region,
            access_key: String::new(),
            secret_key: String::new(),
            ca_file: String::new(),
            part_mb: d.part_size >> 20,
            create_bucket: d.create_bucket,
        }
    }
}

/// Checks the two sections; the error names the key.
pub fn validate(a: &AttachmentsSection, s: &S3Section) -> Result<(), (String, String)> {
    if !(1..=16).contains(&a.workers) {
        return Err(("attachments.workers".into(), "must be 1..=16".into()));
    }
    if !(60..=7 * 86_400).contains(&a.url_ttl_s) {
        return Err(("attachments.url_ttl_s".into(), "must be 60..=604800".into()));
    }
    if s.endpoint.is_empty() {
        return Ok(());
    }
    let url: url::Url = s.endpoint.parse().map_err(|_| {
        (
            "s3.endpoint".to_string(),
            "must be an http:// or https:// URL".to_string(),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(("s3.endpoint".into(), "must be an http:// or https:// URL".into()));
    }
    if s.bucket.is_empty() || s.access_key.is_empty() {
        return Err((
            "s3".into(),
            "bucket and access_key are required with an endpoint".into(),
        ));
    }
    if s.part_mb < 5 {
        return Err(("s3.part_mb".into(), "must be at least 5".into()));
    }
    Ok(())
}

/// The options the sections describe. `credentials_dir` is systemd's `$CREDENTIALS_DIRECTORY`.
pub fn options(a: &AttachmentsSection, s: &S3Section, credentials_dir: Option<&Path>) -> AttachmentOptions {
    let s3 = (!s.endpoint.is_empty()).then(|| {
        let secret = credentials_dir
            .and_then(|d| std::fs::read_to_string(d.join(S3_SECRET_CREDENTIAL)).ok())
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| s.secret_key.clone());
        S3Config {
            endpoint: s.endpoint.clone(),
            bucket: s.bucket.clone(),
            access_key: s.access_key.clone(),
            secret_key: secret,
            region: s.region.clone(),
            ca_file: (!s.ca_file.is_empty()).then(|| s.ca_file.clone()),
            part_size: s.part_mb << 20,
            create_bucket: s.create_bucket,
        }
    });
    AttachmentOptions {
        workers: a.workers as usize,
        upload_limit: a.upload_limit_mb << 20,
        cache_bytes: a.cache_mb << 20,
        limited_api_bases: a.limited_api_bases.clone(),
        url_ttl: Duration::from_secs(a.url_ttl_s),
        s3,
        ..AttachmentOptions::default()
    }
}
