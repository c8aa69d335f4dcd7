//! Wiring of the running service: open the store, load TLS, take or bind the listeners, serve
//! until shutdown, keeping systemd informed (READY, STATUS, WATCHDOG) and reloading the
//! certificate on SIGHUP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::Config;
use crate::store::Store;
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

/// Runs the service until `shutdown` resolves.
pub async fn serve(
    store: Store,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AnyError> {
    let notifier = Notifier::from_env();
    let certs = CertStore::load(cert_source(store.dir(), &config))?;
    tracing::info!(sha256 = %certs.fingerprint(), "TLS certificate");
    println!("lanbox certificate SHA-256 fingerprint: {}", certs.fingerprint());

    let mut passed = listen::from_systemd();
    let take = |name: &str, passed: &mut Vec<(String, std::net::TcpListener)>| {
        passed
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| passed.remove(i).1)
    };
    let https = match take("https", &mut passed).or_else(|| (!passed.is_empty()).then(|| passed.remove(0).1))
    {
        Some(l) => {
            l.set_nonblocking(true)?;
            l
        }
        None => listen::bind(config.server.listen.parse::<SocketAddr>()?)?,
    };
    let http = match take("http", &mut passed) {
        Some(l) => {
            l.set_nonblocking(true)?;
            Some(l)
        }
        None if !config.server.redirect_listen.is_empty() => Some(listen::bind(
            config.server.redirect_listen.parse::<SocketAddr>()?,
        )?),
        None => None,
    };
    let https = tokio::net::TcpListener::from_std(https)?;
    let https_addr = https.local_addr()?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    if let Some(http) = http {
        let http = tokio::net::TcpListener::from_std(http)?;
        tracing::info!(addr = %http.local_addr()?, "redirecting plain HTTP to HTTPS");
        tokio::spawn(crate::server::redirect(
            http,
            https_addr.port(),
            stopped(stop_rx.clone()),
        ));
    }
    let _mdns = config.server.mdns.then(|| {
        match crate::system::mdns::announce(&config.server.name, https_addr.port()) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, "not announcing over mDNS");
                None
            }
        }
    });
    spawn_watchdog(notifier.clone(), stop_rx.clone());
    spawn_sighup(certs.clone());

    let options = api::ApiOptions {
        outbox: config.outbox_options(),
        attachments: config.attachment_options(),
        ..api::ApiOptions::default()
    };
    let state = AppState::with_options(store.clone(), certs.clone(), options).await?;
    if let Some(code) = state.setup.code() {
        // Only someone at the box's console sees this: the browser's first-run page asks for it.
        println!("lanbox has no users yet: open https://<this box>/ and enter the setup code {code}");
    }
    let outbox = state.outbox.clone();
    let hub = state.hub.clone();
    crate::live::retention::spawn(store.clone(), config.events.retention(), stop_rx.clone());
    let _attachment_tasks = state.attachments.start(stop_rx.clone());
    // Releases interrupted by a crash finish before anything polls again.
    for account in crate::ingest::release::pending(&store)? {
        tracing::info!(account, "finishing an interrupted release");
        release_account(&state.pipeline, &state.attachments, account).await?;
    }
    let pollers = state.pollers.clone();
    let started = pollers.start_all().await?;
    tracing::info!(accounts = started, "telegram pollers started");
    let senders = outbox.start_all().await?;
    tracing::info!(accounts = senders, "outbox senders started");
    for (account, _) in pollers.statuses() {
        api::accounts::forward_status(&state, account);
    }
    let channels = state.clone();
    let app = api::router(state);
    tracing::info!(addr = %https_addr, "serving HTTPS");
    println!("lanbox listening on https://{https_addr}");
    notifier.ready(&format!("serving on {https_addr}"));
    let server = crate::server::run(https, certs, app, stopped(stop_rx));
    tokio::spawn(async move {
        shutdown.await;
        // WebSockets are upgraded out of the server's graceful drain: close them explicitly.
        hub.shutdown();
        let _ = stop_tx.send(true);
        channels.stop_channels();
    });
    server.await?;
    notifier.stopping();
    // A message in flight stays "sending" and is reported at the next start (see `outbox`).
    outbox.shutdown().await;
    for (account, reason) in pollers.join().await {
        tracing::info!(account, %reason, "poller stopped");
    }
    Ok(())
}

/// Releases an account everywhere: its files first (they need no key, and a crash between the
/// two steps then leaves a release flag that finishes the rest), then its messages and key
/// ([`crate::ingest::release`]).
pub async fn release_account(
    pipeline: &crate::ingest::Pipeline,
    attachments: &crate::attachments::Attachments,
    account: u64,
) -> Result<crate::ingest::release::Released, AnyError> {
    let files = attachments
        .release_account(account)
        .await
        .map_err(|e| e.into_store())?;
    tracing::info!(account, files, "account files released");
    Ok(pipeline.release_account(account).await?)
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
