//! A small S3 client: requests are presigned with SigV4 by `rusty-s3` (pure Rust, sans-IO)
//! and sent with reqwest over rustls (ring), so it works against MinIO, SeaweedFS or AWS and
//! cross-compiles statically. Bodies stream from the local encrypted file; files above
//! `part_size` go up as multipart uploads whose parts stream too, so memory stays at a read
//! buffer whatever the size.
//!
//! Object names are `att/<id hex>`: no names, no account, nothing about content. Objects are
//! the encrypted files byte for byte, so the bucket only ever holds ciphertext.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header;
use rusty_s3::actions::{CompleteMultipartUpload, CreateMultipartUpload};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

/// How long a presigned request stays valid (they are used at once).
const SIGN_TTL: Duration = Duration::from_secs(600);
/// Read buffer when streaming a file up.
const READ_BUF: usize = 256 << 10;

/// Where the bucket is. `Debug` never shows the secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http://host:port` or `https://host:port` (path-style addressing).
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// PEM file of an extra CA to trust for an `https` endpoint (a private MinIO).
    pub ca_file: Option<String>,
    /// Files larger than this are uploaded in parts of this size (S3 minimum: 5 MiB).
    pub part_size: u64,
    /// Create the bucket when it does not exist.
    pub create_bucket: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: String::new(),
            bucket: "lanbox".into(),
            access_key: String::new(),
            secret_key: String::new(),
            region: "us-east-1".into(),
            ca_file: None,
            part_size: 16 << 20,
            create_bucket: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum S3Error {
    #[error("bad S3 configuration: {0}")]
    Config(String),
    #[error("S3 request failed: {0}")]
    Network(String),
    #[error("S3 answered HTTP {status} to {op}")]
    Status { op: &'static str, status: u16 },
    #[error("S3 response not understood ({0})")]
    BadResponse(&'static str),
    #[error("reading the local file: {0}")]
    Io(String),
}

impl S3Error {
    /// Worth retrying (server down, 5xx, throttling).
    pub fn is_transient(&self) -> bool {
        match self {
            S3Error::Network(_) | S3Error::Io(_) => true,
            S3Error::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            _ => false,
        }
    }
}

#[derive(Clone)]
pub struct S3 {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: Bucket,
    creds: Credentials,
    http: reqwest::Client,
    cfg: S3Config,
}

fn net(e: reqwest::Error) -> S3Error {
    // Without the URL: a presigned URL carries a signature.
    S3Error::Network(e.without_url().to_string())
}

fn check(op: &'static str, resp: &reqwest::Response) -> Result<(), S3Error> {
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(S3Error::Status {
            op,
            status: resp.status().as_u16(),
        })
    }
}

impl S3 {
    pub fn new(cfg: S3Config) -> Result<S3, S3Error> {
        let url: url::Url = cfg
            .endpoint
            .parse()
            .map_err(|_| S3Error::Config("endpoint is not a URL".into()))?;
        if cfg.part_size < 5 << 20 {
            return Err(S3Error::Config("part_size must be at least 5 MiB".into()));
        }
        let bucket = Bucket::new(url, UrlStyle::Path, cfg.bucket.clone(), cfg.region.clone())
            .map_err(|e| S3Error::Config(e.to_string()))?;
        let creds = Credentials::new(cfg.access_key.clone(), cfg.secret_key.clone());
        let http = http_client(cfg.ca_file.as_deref())?;
        Ok(S3 {
            inner: Arc::new(Inner {
                bucket,
                creds,
                http,
                cfg,
            }),
        })
    }

    pub fn config(&self) -> &S3Config {
        &self.inner.cfg
    }

    pub fn object_key(id: u64) -> String {
        format!("att/{id:016x}")
    }

    fn creds(&self) -> Option<&Credentials> {
        Some(&self.inner.creds)
    }

    /// Creates the bucket unless it exists (when configured to).
    pub async fn ensure_bucket(&self) -> Result<(), S3Error> {
        let url = self.inner.bucket.head_bucket(self.creds()).sign(SIGN_TTL);
        let resp = self.inner.http.head(url).send().await.map_err(net)?;
        if resp.status().is_success() {
            return Ok(());
        }
        if resp.status().as_u16() != 404 || !self.inner.cfg.create_bucket {
            return Err(S3Error::Status {
                op: "HeadBucket",
                status: resp.status().as_u16(),
            });
        }
        let action = self.inner.bucket.create_bucket(&self.inner.creds);
        let resp = self
            .inner
            .http
            .put(action.sign(SIGN_TTL))
            .send()
            .await
            .map_err(net)?;
        // 409: created by someone else meanwhile.
        if resp.status().as_u16() == 409 {
            return Ok(());
        }
        check("CreateBucket", &resp)
    }

    /// Uploads the file at `path` as object `key`, in parts when it is large.
    pub async fn upload_file(&self, key: &str, path: &Path) -> Result<(), S3Error> {
        let len = tokio::fs::metadata(path)
            .await
            .map_err(|e| S3Error::Io(e.kind().to_string()))?
            .len();
        if len <= self.inner.cfg.part_size {
            let url = self.inner.bucket.put_object(self.creds(), key).sign(SIGN_TTL);
            let body = file_body(path, 0, len).await?;
            let resp = self
                .inner
                .http
                .put(url)
                .header(header::CONTENT_LENGTH, len)
                .body(body)
                .send()
                .await
                .map_err(net)?;
            return check("PutObject", &resp);
        }
        self.multipart(key, path, len).await
    }

    async fn multipart(&self, key: &str, path: &Path, len: u64) -> Result<(), S3Error> {
        let url = self
            .inner
            .bucket
            .create_multipart_upload(self.creds(), key)
            .sign(SIGN_TTL);
        let resp = self.inner.http.post(url).send().await.map_err(net)?;
        check("CreateMultipartUpload", &resp)?;
        let text = resp.text().await.map_err(net)?;
        let created = CreateMultipartUpload::parse_response(&text)
            .map_err(|_| S3Error::BadResponse("CreateMultipartUpload"))?;
        let upload_id = created.upload_id().to_owned();
        match self.parts(key, path, len, &upload_id).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let url = self
                    .inner
                    .bucket
                    .abort_multipart_upload(self.creds(), key, &upload_id)
                    .sign(SIGN_TTL);
                let _ = self.inner.http.delete(url).send().await;
                Err(e)
            }
        }
    }

    async fn parts(&self, key: &str, path: &Path, len: u64, upload_id: &str) -> Result<(), S3Error> {
        let part = self.inner.cfg.part_size;
        let mut etags = Vec::new();
        let mut offset = 0;
        let mut number: u16 = 1;
        while offset < len {
            let n = part.min(len - offset);
            let url = self
                .inner
                .bucket
                .upload_part(self.creds(), key, number, upload_id)
                .sign(SIGN_TTL);
            let resp = self
                .inner
                .http
                .put(url)
                .header(header::CONTENT_LENGTH, n)
                .body(file_body(path, offset, n).await?)
                .send()
                .await
                .map_err(net)?;
            check("UploadPart", &resp)?;
            let etag = resp
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .ok_or(S3Error::BadResponse("UploadPart without ETag"))?
                .to_owned();
            etags.push(etag);
            offset += n;
            number = number.checked_add(1).ok_or(S3Error::Config(
                "file needs more than 65535 parts; raise part_size".into(),
            ))?;
        }
        self.complete(key, upload_id, &etags).await
    }

    /// Uploads `len` bytes arriving on `rx` as object `key` while they are produced (the
    /// fetcher tees its ciphertext here, so syncing overlaps fetching). Parts stream straight
    /// from the channel: nothing is buffered beyond the channel. Fewer than `len` bytes (the
    /// producer gave up) aborts the upload.
    pub async fn upload_stream(
        &self,
        key: &str,
        len: u64,
        mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    ) -> Result<(), S3Error> {
        let mut carry = bytes::Bytes::new();
        if len <= self.inner.cfg.part_size {
            let url = self.inner.bucket.put_object(self.creds(), key).sign(SIGN_TTL);
            let (ptx, prx) = tokio::sync::mpsc::channel(4);
            let send = self
                .inner
                .http
                .put(url)
                .header(header::CONTENT_LENGTH, len)
                .body(channel_body(prx))
                .send();
            let (resp, fed) = tokio::join!(send, feed(&mut rx, &mut carry, ptx, len));
            fed?;
            return check("PutObject", &resp.map_err(net)?);
        }
        let url = self
            .inner
            .bucket
            .create_multipart_upload(self.creds(), key)
            .sign(SIGN_TTL);
        let resp = self.inner.http.post(url).send().await.map_err(net)?;
        check("CreateMultipartUpload", &resp)?;
        let text = resp.text().await.map_err(net)?;
        let created = CreateMultipartUpload::parse_response(&text)
            .map_err(|_| S3Error::BadResponse("CreateMultipartUpload"))?;
        let upload_id = created.upload_id().to_owned();
        let result = async {
            let mut etags = Vec::new();
            let mut offset = 0;
            let mut number: u16 = 1;
            while offset < len {
                let n = self.inner.cfg.part_size.min(len - offset);
                let url = self
                    .inner
                    .bucket
                    .upload_part(self.creds(), key, number, &upload_id)
                    .sign(SIGN_TTL);
                let (ptx, prx) = tokio::sync::mpsc::channel(4);
                let send = self
                    .inner
                    .http
                    .put(url)
                    .header(header::CONTENT_LENGTH, n)
                    .body(channel_body(prx))
                    .send();
                let (resp, fed) = tokio::join!(send, feed(&mut rx, &mut carry, ptx, n));
                fed?;
                let resp = resp.map_err(net)?;
                check("UploadPart", &resp)?;
                etags.push(
                    resp.headers()
                        .get(header::ETAG)
                        .and_then(|v| v.to_str().ok())
                        .ok_or(S3Error::BadResponse("UploadPart without ETag"))?
                        .to_owned(),
                );
                offset += n;
                number = number.checked_add(1).ok_or(S3Error::Config(
                    "file needs more than 65535 parts; raise part_size".into(),
                ))?;
            }
            self.complete(key, &upload_id, &etags).await
        }
        .await;
        if result.is_err() {
            let url = self
                .inner
                .bucket
                .abort_multipart_upload(self.creds(), key, &upload_id)
                .sign(SIGN_TTL);
            let _ = self.inner.http.delete(url).send().await;
        }
        result
    }

    async fn complete(&self, key: &str, upload_id: &str, etags: &[String]) -> Result<(), S3Error> {
        let action: CompleteMultipartUpload<'_, _> = self.inner.bucket.complete_multipart_upload(
            self.creds(),
            key,
            upload_id,
            etags.iter().map(String::as_str),
        );
        let url = action.sign(SIGN_TTL);
        let resp = self
            .inner
            .http
            .post(url)
            .body(action.body())
            .send()
            .await
            .map_err(net)?;
        check("CompleteMultipartUpload", &resp)?;
        // S3 may answer 200 with an error document.
        let text = resp.text().await.map_err(net)?;
        if text.contains("<Error>") {
            return Err(S3Error::BadResponse("CompleteMultipartUpload returned an error"));
        }
        Ok(())
    }

    /// Bytes `start..start+len` of an object, streamed.
    pub async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<reqwest::Response, S3Error> {
        let url = self.inner.bucket.get_object(self.creds(), key).sign(SIGN_TTL);
        let resp = self
            .inner
            .http
            .get(url)
            .header(header::RANGE, format!("bytes={}-{}", start, start + len - 1))
            .send()
            .await
            .map_err(net)?;
        check("GetObject", &resp)?;
        Ok(resp)
    }

    /// Size of an object (`None` when it does not exist).
    pub async fn head(&self, key: &str) -> Result<Option<u64>, S3Error> {
        let url = self.inner.bucket.head_object(self.creds(), key).sign(SIGN_TTL);
        let resp = self.inner.http.head(url).send().await.map_err(net)?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        check("HeadObject", &resp)?;
        Ok(resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Objects whose key starts with `prefix`, with their sizes (every page of the listing).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, S3Error> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = self.inner.bucket.list_objects_v2(self.creds());
            action.with_prefix(prefix);
            if let Some(t) = &token {
                action.with_continuation_token(t.clone());
            }
            let url = action.sign(SIGN_TTL);
            let resp = self.inner.http.get(url).send().await.map_err(net)?;
            check("ListObjectsV2", &resp)?;
            let text = resp.text().await.map_err(net)?;
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&text)
                .map_err(|_| S3Error::BadResponse("ListObjectsV2"))?;
            out.extend(page.contents.into_iter().map(|c| (c.key, c.size.unwrap_or(0))));
            match page.next_continuation_token {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }

    /// Deletes an object (deleting a missing one succeeds).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let url = self.inner.bucket.delete_object(self.creds(), key).sign(SIGN_TTL);
        let resp = self.inner.http.delete(url).send().await.map_err(net)?;
        if resp.status().as_u16() == 404 {
            return Ok(());
        }
        check("DeleteObject", &resp)
    }
}

/// Moves exactly `n` bytes from `rx` (after what `carry` holds) into `out`.
async fn feed(
    rx: &mut tokio::sync::mpsc::Receiver<bytes::Bytes>,
    carry: &mut bytes::Bytes,
    out: tokio::sync::mpsc::Sender<bytes::Bytes>,
    n: u64,
) -> Result<(), S3Error> {
    let mut left = n;
    while left > 0 {
        if carry.is_empty() {
            *carry = rx
                .recv()
                .await
                .ok_or(S3Error::Io("the producer stopped early".into()))?;
            continue;
        }
        let take = (carry.len() as u64).min(left) as usize;
        let piece = carry.split_to(take);
        left -= take as u64;
        if out.send(piece).await.is_err() {
            return Err(S3Error::Network("the request body was dropped".into()));
        }
    }
    Ok(())
}

fn channel_body(rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> reqwest::Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    reqwest::Body::wrap_stream(stream.boxed())
}

/// `len` bytes of a file from `offset`, as a streaming body.
async fn file_body(path: &Path, offset: u64, len: u64) -> Result<reqwest::Body, S3Error> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| S3Error::Io(e.kind().to_string()))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .await
        .map_err(|e| S3Error::Io(e.kind().to_string()))?;
    let stream = futures_util::stream::unfold((file, len), |(mut file, left)| async move {
        if left == 0 {
            return None;
        }
        let n = (left as usize).min(READ_BUF);
        let mut buf = vec![0u8; n];
        match file.read_exact(&mut buf).await {
            Ok(_) => Some((
                Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                (file, left - n as u64),
            )),
            Err(e) => Some((Err(e), (file, 0))),
        }
    });
    Ok(reqwest::Body::wrap_stream(stream.boxed()))
}

/// An HTTP client for S3: rustls with ring, Mozilla's roots plus an optional private CA.
fn http_client(ca_file: Option<&str>) -> Result<reqwest::Client, S3Error> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| S3Error::Config(format!("reading {path}: {e}")))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|_| S3Error::Config(format!("{path} is not PEM certificates")))?;
            roots
                .add(cert)
                .map_err(|e| S3Error::Config(format!("{path}: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| S3Error::Config("TLS configuration".into()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("lanbox/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| S3Error::Config(format!("HTTP client: {}", e.without_url())))
}
