//! The running box: [`run`] opens the service the configuration describes on its sockets;
//! [`serve`] takes an opened [`Service`], its listeners and a shutdown signal (as mini-redis's
//! `server::run(listener, shutdown)` does), starts it, serves HTTPS until shutdown, keeping
//! systemd informed (READY, STATUS, WATCHDOG) and reloading the certificate on SIGHUP, and
//! stops it in order. The integration tests start the box through [`serve`] too.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use crate::api;
use crate::config::Config;
use crate::service::Service;
use crate::store::seal::SecretKey;
use crate::store::{Store, StoreOptions, sealed_key};
use crate::system::listen;
use crate::system::notify::Notifier;
use crate::system::tls::{self, CertSource, CertStore};

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// The certificate source the configuration asks for.
pub fn cert_source(data: &Path, config: &Config) -> CertSource {
    if config.server.tls_cert.is_empty() {
        CertSource::SelfSigned {
            dir: data.join("tls"),
            names: tls::default_names(&config.server.name),
        }
    } else {
        CertSource::Files {
            cert: config.server.tls_cert.clone().into(),
            key: config.server.tls_key.clone().into(),
        }
    }
}

/// The sockets the service answers on: HTTPS, and optionally plain HTTP that only redirects.
pub struct Listeners {
    pub https: std::net::TcpListener,
    pub http: Option<std::net::TcpListener>,
}

impl Listeners {
    /// Second handles on the same sockets (a restart serves on them again; the unlock page
    /// serves on one before the service does).
    pub fn try_clone(&self) -> std::io::Result<Listeners> {
        Ok(Listeners {
            https: self.https.try_clone()?,
            http: self.http.as_ref().map(|l| l.try_clone()).transpose()?,
        })
    }

    /// The sockets systemd passed (named `https` and `http`, or the first one for HTTPS), else
    /// the configured addresses, bound now.
    pub fn from_config(config: &Config) -> Result<Listeners, AnyError> {
        let mut passed = listen::from_systemd();
        let mut take = |name: &str| {
            passed
                .iter()
                .position(|(n, _)| n == name)
                .map(|i| passed.remove(i).1)
        };
        let https = take("https");
        let http = take("http");
        let https = match https.or_else(|| (!passed.is_empty()).then(|| passed.remove(0).1)) {
            Some(l) => l,
            None => listen::bind(config.server.listen.parse::<SocketAddr>()?)?,
        };
        let http = match http {
            Some(l) => Some(l),
            None if !config.server.redirect_listen.is_empty() => Some(listen::bind(
                config.server.redirect_listen.parse::<SocketAddr>()?,
            )?),
            None => None,
        };
        Ok(Listeners { https, http })
    }
}

/// How the HTTP side of the box answers and announces itself (`[server]`).
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Answer mDNS for `<name>.local` and announce `_https._tcp`.
    pub mdns: Option<String>,
    /// Connection caps and timeouts (defaults follow the file-descriptor limit).
    pub limits: crate::server::Limits,
}

/// How [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `stop` was set: the process ends.
    Stopped,
    /// The service asked to start again on its data directory (a first-run restore was
    /// staged there): put it in place (`crate::backup::staged::apply`) and call [`run`] again
    /// on the same listeners.
    Restart,
}

/// What `lanbox serve` runs: the store opened (a sealed box's only once an admin has unlocked
/// it on the unlock page, served on the same socket meanwhile: [`unlock`]), then the service
/// the configuration describes on `listeners`, until `stop` is set or the service asks for a
/// restart.
pub async fn run(
    data: &Path,
    config: Config,
    mut store_options: StoreOptions,
    listeners: &Listeners,
    stop: watch::Receiver<bool>,
) -> Result<Outcome, AnyError> {
    crate::system::ignore_file_size_signal();
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if store_options.master_key.is_none() && sealed_key::is_sealed(data) {
        match unlock(data, &config, listeners, stopped(stop.clone())).await? {
            Some(key) => store_options.master_key = Some(key),
            None => return Ok(Outcome::Stopped),
        }
    }
    let dir = data.to_path_buf();
    let store = tokio::task::spawn_blocking(move || Store::open(&dir, &store_options)).await??;
    tracing::info!(
        dir = %data.display(),
        cipher = ?store.cipher(),
        master_key = ?store.master_key_source(),
        "store ready"
    );
    let certs = CertStore::load(cert_source(store.dir(), &config))?;
    let mut service_options = config.service_options();
    // Backups copy the configuration file this box was started with.
    let env: Vec<(String, String)> = std::env::vars().collect();
    service_options.backup.config_file = Some(Config::path(store.dir(), &env));
    let service = Service::open(store, certs, service_options).await?;
    let mut limits = crate::server::Limits::default();
    if config.server.max_connections > 0 {
        limits.max_connections = config.server.max_connections;
    }
    if config.server.max_connections_per_client > 0 {
        limits.max_per_client = config.server.max_connections_per_client;
    }
    let options = ServeOptions {
        mdns: config.server.mdns.then(|| config.server.name.clone()),
        limits,
    };
    let watcher = service.clone();
    let until = {
        let (watcher, stop) = (watcher.clone(), stop.clone());
        async move {
            tokio::select! {
                () = stopped(stop) => {}
                () = watcher.restart_wanted() => tracing::info!("restarting the box"),
            }
        }
    };
    serve(service, listeners.try_clone()?, options, until).await?;
    Ok(if watcher.restart_requested() && !*stop.borrow() {
        Outcome::Restart
    } else {
        Outcome::Stopped
    })
}

/// A sealed box before its unlock: the unlock page ([`api::unlock`]) on a copy of the HTTPS
/// socket, until an admin unlocks it (the master key) or `shutdown` resolves (`None`). Says so
/// on the console and to systemd, and keeps systemd's watchdog fed meanwhile.
pub async fn unlock(
    data: &Path,
    config: &Config,
    listeners: &Listeners,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<Option<SecretKey>, AnyError> {
    let certs = CertStore::load(cert_source(data, config))?;
    let https = listeners.https.try_clone()?;
    https.set_nonblocking(true)?;
    let https = tokio::net::TcpListener::from_std(https)?;
    let addr = https.local_addr()?;
    let page = api::unlock::Unlock::new(data.to_path_buf(), certs.fingerprint());
    let notifier = Notifier::from_env();
    let (done_tx, done_rx) = watch::channel(false);
    spawn_watchdog(notifier.clone(), done_rx.clone());
    notifier.status("sealed: waiting for an admin to unlock the box");
    tracing::warn!(addr = %addr, "the master key is sealed: nothing is opened or ingested until an admin unlocks the box");
    println!("lanbox certificate SHA-256 fingerprint: {}", certs.fingerprint());
    println!(
        "lanbox is sealed: open https://{addr}/ and enter the unlock passphrase (nothing is ingested until then)"
    );
    let stop = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let server = tokio::spawn(crate::server::run(
        https,
        certs,
        api::unlock::router(page.clone()),
        stop(done_rx),
    ));
    let key = tokio::select! {
        key = page.key() => Some(key),
        () = shutdown => None,
    };
    let _ = done_tx.send(true);
    server.await??;
    Ok(key)
}

/// Serves `service` on `listeners` until `shutdown` resolves: starts its background work and
/// accounts, answers HTTPS (and the plain-HTTP redirect), keeps systemd informed (READY,
/// STATUS, WATCHDOG), reloads the certificate on SIGHUP, then stops everything in order.
/// `lanbox serve`, `lanbox demo` and the integration tests all run this.
pub async fn serve(
    service: Service,
    listeners: Listeners,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AnyError> {
    let notifier = Notifier::from_env();
    let certs = service.tls.clone();
    tracing::info!(sha256 = %certs.fingerprint(), "TLS certificate");
    println!("lanbox certificate SHA-256 fingerprint: {}", certs.fingerprint());
    listeners.https.set_nonblocking(true)?;
    let https = tokio::net::TcpListener::from_std(listeners.https)?;
    let https_addr = https.local_addr()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if let Some(http) = listeners.http {
        http.set_nonblocking(true)?;
        let http = tokio::net::TcpListener::from_std(http)?;
        tracing::info!(addr = %http.local_addr()?, "redirecting plain HTTP to HTTPS");
        tokio::spawn(crate::server::redirect(
            http,
            https_addr.port(),
            stopped(stop_rx.clone()),
        ));
    }
    let _mdns =
        options.mdns.as_ref().and_then(
            |name| match crate::system::mdns::announce(name, https_addr.port()) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(error = %e, "not announcing over mDNS");
                    None
                }
            },
        );
    spawn_watchdog(notifier.clone(), stop_rx.clone());
    spawn_sighup(certs.clone());

    service.start().await?;
    let urls = urls(
        https_addr,
        options.mdns.as_deref(),
        &crate::system::tls::local_addresses(),
    );
    println!("lanbox is at:");
    for url in &urls {
        println!("  {url}");
    }
    if let Some(code) = service.setup.code() {
        // Only someone at the box's console sees this: the browser's first-run page asks for it.
        println!("lanbox has no users yet: open one of the addresses above and enter the setup code {code}");
    }
    let app = api::router(service.clone());
    tracing::info!(addr = %https_addr, "serving HTTPS");
    println!("lanbox listening on https://{https_addr}");
    notifier.ready(&format!("serving on {https_addr}"));
    let server = crate::server::run_with(https, certs, app, options.limits.clone(), stopped(stop_rx));
    let stopping = service.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        stopping.shutdown();
    });
    server.await?;
    notifier.stopping();
    service.join().await;
    Ok(())
}

/// Every URL a browser can use: the mDNS name, then each address of the machine when the
/// socket listens on all of them, each with the port.
pub fn urls(addr: SocketAddr, mdns: Option<&str>, local: &[std::net::IpAddr]) -> Vec<String> {
    let port = addr.port();
    let with_port = |host: String| format!("https://{host}:{port}/");
    let ip = |a: &std::net::IpAddr| match a {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let mut out = Vec::new();
    if let Some(name) = mdns {
        out.push(with_port(name.trim_end_matches('.').to_string()));
    }
    if addr.ip().is_unspecified() {
        let v6 = addr.is_ipv6();
        let mut addrs: Vec<&std::net::IpAddr> = local
            .iter()
            // An IPv4 socket answers IPv4 only; an IPv6 one usually answers both.
            .filter(|a| v6 || a.is_ipv4())
            .collect();
        // LAN addresses first, loopback last.
        addrs.sort_by_key(|a| (a.is_loopback(), a.is_ipv6()));
        out.extend(addrs.into_iter().map(|a| with_port(ip(a))));
        if !local.iter().any(|a| a.is_loopback()) {
            out.push(with_port("127.0.0.1".into()));
        }
    } else {
        out.push(with_port(ip(&addr.ip())));
    }
    out.dedup();
    out
}

fn spawn_watchdog(notifier: Notifier, mut stop: watch::Receiver<bool>) {
    let Some(every) = Notifier::watchdog_interval() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = tick.tick() => notifier.watchdog(),
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    });
}

fn spawn_sighup(certs: Arc<CertStore>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match certs.reload() {
                Ok(fp) => tracing::info!(sha256 = %fp, "TLS certificate reloaded"),
                Err(e) => tracing::warn!(error = %e, "TLS certificate reload failed; keeping the old one"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the console said `https://<this box>/`, with no port, no LAN address and
    /// not `lanbox.local` although mDNS was on.
    #[test]
    fn every_url_that_works_is_printed_with_its_port() {
        let lan: std::net::IpAddr = "192.168.1.20".parse().unwrap();
        let lo: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let all = urls("0.0.0.0:8443".parse().unwrap(), Some("lanbox.local"), &[lo, lan]);
        assert_eq!(
            all,
            [
                "https://lanbox.local:8443/",
                "https://192.168.1.20:8443/",
                "https://127.0.0.1:8443/"
            ]
        );
        let one = urls("127.0.0.1:9000".parse().unwrap(), None, &[lo, lan]);
        assert_eq!(one, ["https://127.0.0.1:9000/"]);
    }
}
