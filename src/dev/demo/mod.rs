//! `lanbox demo`: the whole product without a bot token. It starts the Bot API simulator in
//! process (real HTTP on loopback, Telegram's wire format), registers two demo bots as
//! accounts, creates a demo admin and an agent with printed passwords, and plays a script of
//! customers writing in several languages ([`script`]), while serving the real inbox.
//!
//! Everything lives in a data directory the caller provides (`main` uses a fresh temporary one
//! and deletes it afterwards): a demo never mixes with a real box's data.

pub mod png;
pub mod script;

use std::net::SocketAddr;

use tokio::sync::watch;

use crate::app::{Listeners, ServeOptions};
use crate::auth::users::{self, NewUser};
use crate::auth::{Role, secrets};
use crate::channels::telegram::bots::{self, AddBot};
use crate::channels::telegram::client::{Token, http_client};
use crate::config::Config;
use crate::dev::simulator::{SimConfig, Simulator};
use crate::service::Service;
use crate::store::Store;
use crate::system::tls::CertStore;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// A password people can type: 16 base64url characters (96 bits).
fn password() -> Result<String, AnyError> {
    let v = secrets::random_value().map_err(|e| e.to_string())?;
    Ok(v.chars().filter(char::is_ascii_alphanumeric).take(16).collect())
}

/// Runs the demo until `shutdown` resolves. `store` must be empty.
pub async fn run(
    store: Store,
    config: Config,
    listen: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AnyError> {
    // The port first: a busy one must fail before anything is printed or created.
    let https = std::net::TcpListener::bind(listen).map_err(|e| {
        format!(
            "cannot listen on {listen}: {e}. Another program (a running lanbox, perhaps) uses it: \
             choose a free address with `lanbox demo --listen 127.0.0.1:8444`"
        )
    })?;
    let listen = https.local_addr()?;
    let sim = Simulator::start_with(
        tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        SimConfig::default(),
    )?;
    let support = sim.add_bot("acme_support_bot");
    let sales = sim.add_bot("acme_sales_bot");
    let http = http_client()?;
    let mut ids = Vec::new();
    for (bot, name, limit) in [(&support, "Support", None), (&sales, "Sales", Some(500))] {
        let a = bots::add(
            &store,
            http.clone(),
            AddBot {
                token: Token::new(bot.token())?,
                name: Some(name.into()),
                rented: false,
                daily_limit: limit,
                api_base: Some(sim.api_base()),
            },
        )
        .await?;
        ids.push(a.id);
    }
    let admin = password()?;
    let agent = password()?;
    for (name, role, pw, grants) in [
        ("demo", Role::Admin, &admin, Vec::new()),
        ("agent", Role::Agent, &agent, vec![ids[0]]),
    ] {
        users::add(
            &store,
            NewUser {
                name: name.into(),
                role,
                password: pw.clone(),
                grants,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    println!(
        "lanbox demo: a simulated Telegram with two bots (Support, Sales) at {}",
        sim.api_base()
    );
    println!("  sign in as `demo` (admin), password: {admin}");
    println!("  or as `agent` (sees only Support), password: {agent}");
    println!(
        "  open https://{listen}/ (accept the self-signed certificate); Ctrl-C stops and deletes the demo"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let script = script::Script::new(support, sales, sim.api_base(), http);
    let player = tokio::spawn(script::play(script, stop_rx));
    let certs = CertStore::load(crate::app::cert_source(store.dir(), &config))?;
    let service = Service::open(store, certs, config.service_options()).await?;
    let listeners = Listeners { https, http: None };
    let served = crate::app::serve(service, listeners, ServeOptions::default(), async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    })
    .await;
    let _ = player.await;
    sim.stop().await?;
    served
}
