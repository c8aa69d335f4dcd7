//! TLS: rustls, TLS 1.3 only.
//!
//! On first start lanbox generates a self-signed certificate whose SANs cover the host name,
//! `lanbox.local` (or the configured mDNS name), `localhost` and the machine's addresses, and
//! keeps it in `DIR/tls/` (key mode 0600). Its SHA-256 fingerprint is printed at start and shown
//! by the API, so an operator can compare what the browser shows with the box's console. An
//! operator-supplied certificate and key (config `tls.cert` / `tls.key`) replace it; both are
//! read again on SIGHUP through [`CertStore::reload`], without dropping connections.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Pem { path: String, detail: String },
    #[error("certificate generation: {0}")]
    Generate(String),
    #[error("tls configuration: {0}")]
    Config(String),
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Generated (once) in this directory.
    SelfSigned { dir: PathBuf, names: Vec<String> },
    /// Supplied by the operator.
    Files { cert: PathBuf, key: PathBuf },
}

/// The current certificate, swappable at runtime.
#[derive(Debug)]
pub struct CertStore {
    source: CertSource,
    current: RwLock<Arc<Loaded>>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    fingerprint: String,
}

impl CertStore {
    pub fn load(source: CertSource) -> Result<Arc<CertStore>, TlsError> {
        let loaded = load(&source)?;
        Ok(Arc::new(CertStore {
            source,
            current: RwLock::new(Arc::new(loaded)),
        }))
    }

    /// SHA-256 of the leaf certificate, as colon-separated upper-case hex (what browsers show).
    pub fn fingerprint(&self) -> String {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .fingerprint
            .clone()
    }

    /// The leaf certificate as PEM (what Telegram needs to trust a self-signed webhook).
    pub fn cert_pem(&self) -> String {
        use base64::Engine;
        let loaded = self.current.read().unwrap_or_else(|p| p.into_inner()).clone();
        let b64 = base64::engine::general_purpose::STANDARD.encode(loaded.key.cert[0].as_ref());
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }

    /// Reads the certificate again (SIGHUP). On error the old one stays in use.
    pub fn reload(&self) -> Result<String, TlsError> {
        let loaded = load(&self.source)?;
        let fp = loaded.fingerprint.clone();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(fp)
    }

    /// A rustls server configuration that only speaks TLS 1.3 and offers HTTP/1.1 (ALPN).
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).key.clone())
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn load(source: &CertSource) -> Result<Loaded, TlsError> {
    match source {
        CertSource::Files { cert, key } => load_pair(cert, key),
        CertSource::SelfSigned { dir, names } => {
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !c.exists() || !k.exists() {
                generate(dir, names)?;
                return load_pair(&c, &k);
            }
            match load_pair(&c, &k) {
                // lanbox's own pair, unreadable: torn by a power cut while it was first written
                // (before it was written durably), or damaged since. A box that cannot serve
                // helps nobody, and a new certificate only changes the fingerprint: the old
                // files are kept aside as evidence, and the new fingerprint is logged.
                Err(TlsError::Pem { path, detail }) => {
                    let aside = dir.join(format!("damaged-{}", unix_now()));
                    tracing::warn!(
                        %path, %detail, aside = %aside.display(),
                        "the box's own TLS certificate is unreadable; moved aside, making a new one (its fingerprint changes)"
                    );
                    std::fs::create_dir_all(&aside).map_err(io(&aside))?;
                    for f in [&c, &k] {
                        if let Some(name) = f.file_name() {
                            std::fs::rename(f, aside.join(name)).map_err(io(f))?;
                        }
                    }
                    generate(dir, names)?;
                    load_pair(&c, &k)
                }
                other => other,
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn load_pair(cert_path: &Path, key_path: &Path) -> Result<Loaded, TlsError> {
    let (cert_path, key_path) = (cert_path.to_path_buf(), key_path.to_path_buf());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| TlsError::Pem {
            path: cert_path.display().to_string(),
            detail: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_path.display().to_string(),
            detail: e.to_string(),
        })?;
    let leaf = certs.first().ok_or_else(|| TlsError::Pem {
        path: cert_path.display().to_string(),
        detail: "no certificate".into(),
    })?;
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| TlsError::Pem {
        path: key_path.display().to_string(),
        detail: e.to_string(),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let certified =
        CertifiedKey::from_der(certs, key, &provider).map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Loaded {
        key: Arc::new(certified),
        fingerprint,
    })
}

pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn generate(dir: &Path, names: &[String]) -> Result<(), TlsError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let ck =
        rcgen::generate_simple_self_signed(names.to_vec()).map_err(|e| TlsError::Generate(e.to_string()))?;
    // Each file written whole and synced before it takes its name, then the directory synced:
    // a power cut leaves the old state or the new, never an empty or half file (found by the
    // image's boot test: a box cut off ~20 s after its first start had an empty cert.pem and
    // refused to start from then on).
    write_durably(
        &dir.join("key.pem"),
        ck.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_durably(&dir.join("cert.pem"), ck.cert.pem().as_bytes(), 0o644)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let tmp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io(path))
}

/// Names for a self-signed certificate: host name, the mDNS name, `localhost`, and every
/// address of this machine.
pub fn default_names(mdns_name: &str) -> Vec<String> {
    let mut names = vec![mdns_name.to_string(), "localhost".to_string()];
    if let Some(h) = hostname() {
        names.push(h);
    }
    names.extend(local_addresses().into_iter().map(|a| a.to_string()));
    names.push("127.0.0.1".into());
    names.push("::1".into());
    names.sort();
    names.dedup();
    names
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// Addresses of the machine's interfaces (getifaddrs), link-local IPv6 left out.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    #[cfg(unix)]
    // SAFETY: getifaddrs fills a linked list that we only read and then free with freeifaddrs;
    // each ifa_addr is checked for null and its family before being cast to the matching type.
    unsafe {
        let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
                        if (ip.segments()[0] & 0xffc0) != 0xfe80 {
                            out.push(IpAddr::V6(ip));
                        }
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// How a lanbox client (the update probe, tests, tools) trusts the box's certificate, which is
/// self-signed and in no trust store: by its SHA-256 fingerprint (what an operator compares with
/// the console), or not at all for a loopback probe that sends no credentials. Handshake
/// signatures are always verified, so a peer must hold the certificate's key.
#[derive(Debug)]
struct BoxCertVerifier {
    fingerprint: Option<String>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for BoxCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        match &self.fingerprint {
            Some(fp) if fingerprint(end_entity.as_ref()) != *fp => {
                Err(rustls::Error::General("certificate fingerprint mismatch".into()))
            }
            _ => Ok(rustls::client::danger::ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A client configuration that trusts only the certificate with this SHA-256 `fingerprint`
/// (`None`: any certificate; only for loopback probes that send nothing secret).
pub fn client_config(
    fingerprint: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = BoxCertVerifier {
        fingerprint: fingerprint.map(str::to_string),
        algorithms: provider.signature_verification_algorithms,
    };
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("ring supports every rustls protocol version")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(dir: &Path) -> CertSource {
        CertSource::SelfSigned {
            dir: dir.to_path_buf(),
            names: vec!["localhost".into()],
        }
    }

    #[test]
    fn the_own_certificate_is_kept_then_remade_when_torn() {
        let dir = tempfile::tempdir().unwrap();
        let first = CertStore::load(own(dir.path())).unwrap().fingerprint();
        assert_eq!(CertStore::load(own(dir.path())).unwrap().fingerprint(), first);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names.len(),
            2,
            "only cert.pem and key.pem, no temporary file left: {names:?}"
        );
        // Regression: a power cut right after the first start left an empty cert.pem, and the
        // box refused to start from then on.
        std::fs::write(dir.path().join("cert.pem"), b"").unwrap();
        let again = CertStore::load(own(dir.path())).unwrap().fingerprint();
        assert_ne!(again, first);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        assert_eq!(aside.len(), 1, "the damaged pair is kept aside");
        assert_eq!(std::fs::read(aside[0].join("cert.pem")).unwrap(), b"");
        assert!(aside[0].join("key.pem").exists());
    }

    #[test]
    fn an_operators_unreadable_certificate_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, b"").unwrap();
        std::fs::write(&key, b"").unwrap();
        assert!(matches!(
            CertStore::load(CertSource::Files {
                cert: cert.clone(),
                key
            }),
            Err(TlsError::Pem { .. })
        ));
        assert_eq!(std::fs::read(&cert).unwrap(), b"");
    }
}
