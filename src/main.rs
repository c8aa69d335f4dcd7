//! The `lanbox` command: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lanbox::config::{CONFIG_FILE, Config};
use lanbox::store::Store;

#[derive(Parser)]
#[command(
    name = "lanbox",
    version,
    about = "A private, on-premises unified inbox for Telegram"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Data directory (database, master key, lanbox.toml).
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Create the data directory, master key and configuration without starting.
    Init {
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Add, list, change or remove channel accounts (Telegram bots).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Add and list the people who use the inbox (admins and agents), and their grants.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Over-the-air updates (RAUC).
    Update {
        #[command(subcommand)]
        command: UpdateCommand,
    },
    /// Create API tokens for integrations.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Try lanbox without a bot token: a simulated Telegram with two bots and customers
    /// writing in several languages, a demo admin, and the inbox (in a temporary data
    /// directory, deleted on exit).
    Demo {
        /// HTTPS address to serve the inbox on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: std::net::SocketAddr,
    },
    /// Development tools.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Serve a Telegram Bot API simulator (plain HTTP; see the README for its control API)
    /// until Ctrl-C or SIGTERM.
    TelegramSim {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// A bot token to register (`<digits>:<35 characters>`); repeatable. Without any, one
        /// is generated.
        #[arg(long = "token")]
        tokens: Vec<String>,
        /// Refuse tokens not given with --token (otherwise well-formed unknown tokens are
        /// registered on first use).
        #[arg(long)]
        strict: bool,
        /// Answer 429 to sends over Telegram's rate limits.
        #[arg(long)]
        enforce_limits: bool,
    },
}

#[derive(Subcommand)]
enum UpdateCommand {
    /// After booting an updated slot: check the local service's health over HTTPS and, only
    /// if it is healthy, tell RAUC to mark the booted slot good (`rauc status mark-good`).
    MarkGood {
        /// Loopback address of the HTTPS listener to probe.
        #[arg(long, default_value = "127.0.0.1:443")]
        health: std::net::SocketAddr,
        /// The rauc command.
        #[arg(long, default_value = "rauc")]
        rauc: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from the terminal (or one line of standard input, or
    /// LANBOX_PASSWORD), never from the command line.
    Add {
        name: String,
        /// `admin` sees every account; `agent` sees the accounts granted.
        #[arg(long, default_value = "agent")]
        role: lanbox::auth::Role,
        /// Accounts an agent may see, comma-separated IDs (see `lanbox account list`).
        #[arg(long, value_delimiter = ',')]
        accounts: Vec<u64>,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// List users (never shows password hashes).
    List {
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Replace an agent's grants.
    Grant {
        name: String,
        /// Accounts the agent may see, comma-separated IDs; empty for none.
        #[arg(long, value_delimiter = ',', num_args = 0..)]
        accounts: Vec<u64>,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user. It acts with that user's role and grants, and is shown
    /// once: only its hash is stored.
    Create {
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Days until it stops working (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Channel {
    Telegram,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Add an account. The token is checked with Telegram (getMe) first and stored sealed.
    Add {
        channel: Channel,
        /// Bot token from @BotFather (or set LANBOX_BOT_TOKEN, which keeps it out of `ps`).
        #[arg(long, env = "LANBOX_BOT_TOKEN", hide_env_values = true)]
        token: String,
        /// Label shown in the inbox (default: the bot's username).
        #[arg(long)]
        name: Option<String>,
        /// Redact login codes (messages from Telegram's chat 777000).
        #[arg(long)]
        rented: bool,
        /// Most messages sent per day.
        #[arg(long)]
        daily_limit: Option<u32>,
        /// Bot API server (a self-hosted one, or a simulator).
        #[arg(long, default_value = lanbox::channels::telegram::client::DEFAULT_API_BASE)]
        api_base: String,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// List accounts (never shows tokens).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Change an account's label, rented flag or daily limit.
    Update {
        /// Account ID, as `account list` shows it.
        id: u64,
        /// New label.
        #[arg(long)]
        name: Option<String>,
        /// Redact login codes (true) or not (false).
        #[arg(long, action = clap::ArgAction::Set)]
        rented: Option<bool>,
        /// Most messages sent per day.
        #[arg(long, conflicts_with = "no_daily_limit")]
        daily_limit: Option<u32>,
        /// Remove the daily limit.
        #[arg(long)]
        no_daily_limit: bool,
        /// Switch to webhook mode: Telegram delivers to this public https:// base URL (which must
        /// reach this box's HTTPS port) at /telegram/webhook/ID. Only for boxes with a public
        /// address; polling, the default, needs none.
        #[arg(long, value_name = "URL", conflicts_with = "polling")]
        webhook: Option<String>,
        /// With --webhook: upload this box's self-signed certificate so Telegram trusts it.
        #[arg(long, requires = "webhook")]
        self_signed: bool,
        /// Switch back to long polling (removes the webhook at Telegram).
        #[arg(long)]
        polling: bool,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Remove an account: its token is erased and it stops receiving. Its stored messages stay
    /// (sealed, still searchable by those granted it) unless --release is given.
    Remove {
        /// Account ID, as `account list` shows it.
        id: u64,
        /// Also delete everything only this account received and destroy its data key; what it
        /// shares with other accounts stays with them. Cannot be undone.
        #[arg(long)]
        release: bool,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init { data } => init(&data).map(|_| ()),
        Command::Serve { data } => serve(&data),
        Command::Account { command } => account(command),
        Command::User { command } => user(command),
        Command::Token { command } => token(command),
        Command::Update { command } => update(command),
        Command::Dev { command } => dev(command),
        Command::Demo { listen } => demo(listen),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lanbox: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

fn update(command: UpdateCommand) -> Result<(), AnyError> {
    match command {
        UpdateCommand::MarkGood { health, rauc } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = rt.block_on(lanbox::system::ota::mark_good(health, &rauc))?;
            println!("slot marked good: {out}");
            Ok(())
        }
    }
}

/// A database held by another process is almost always the running service: say so, and
/// where the same can be done while it runs.
fn in_use_hint(data: &Path, e: lanbox::store::StoreError) -> AnyError {
    use lanbox::store::StoreError;
    match e {
        StoreError::Db(redb::Error::DatabaseAlreadyOpen) => format!(
            "{} is in use by another lanbox process (is `lanbox serve` running, e.g. `systemctl status lanbox`?). \
             Stop it first, or do this while it runs from the web inbox (Settings: accounts, people) \
             or the REST API (POST /api/v1/accounts, /api/v1/users, /api/v1/tokens)",
            data.join(lanbox::store::DB_FILE).display()
        )
        .into(),
        other => other.into(),
    }
}

/// Creates what is missing in `data` and opens the store.
fn init(data: &Path) -> Result<(Store, Config), AnyError> {
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cfg_path = Config::path(data, &env);
    if !cfg_path.exists() && cfg_path == data.join(CONFIG_FILE) {
        std::fs::write(&cfg_path, Config::default_file())
            .map_err(|e| format!("writing {}: {e}", cfg_path.display()))?;
    }
    let loaded = Config::load(data, env)?;
    init_logging(&loaded.config.log.level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let store = Store::open(data, &loaded.config.store_options()).map_err(|e| in_use_hint(data, e))?;
    tracing::info!(
        dir = %data.display(),
        cipher = ?store.cipher(),
        master_key = ?store.master_key_source(),
        "store ready"
    );
    Ok((store, loaded.config))
}

fn init_logging(level: &str) {
    // rustls warns once per connection about odd client hellos (an IP address as SNI, say):
    // harmless, but a flood on an SD card. Its errors still show.
    let filter = std::env::var("LANBOX_LOG").unwrap_or_else(|_| format!("{level},rustls=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

fn serve(data: &Path) -> Result<(), AnyError> {
    let (store, config) = init(data)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        tracing::info!("lanbox running; stop with SIGTERM or Ctrl-C");
        let stop = shutdown_signal();
        lanbox::app::run(store, config, async {
            stop.await;
            tracing::info!("shutting down");
        })
        .await
    })
}

fn account(command: AccountCommand) -> Result<(), AnyError> {
    use lanbox::channels::telegram::bots::{self, AccountChanges, AddBot};
    use lanbox::channels::telegram::client::{Token, http_client};
    let data = match &command {
        AccountCommand::Add { data, .. }
        | AccountCommand::List { data, .. }
        | AccountCommand::Update { data, .. }
        | AccountCommand::Remove { data, .. } => data.clone(),
    };
    let (store, config) = init(&data)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            AccountCommand::Add {
                channel: Channel::Telegram,
                token,
                name,
                rented,
                daily_limit,
                api_base,
                ..
            } => {
                let spec = AddBot {
                    token: Token::new(token)?,
                    name,
                    rented,
                    daily_limit,
                    api_base: Some(api_base),
                };
                let a = bots::add(&store, http_client()?, spec).await?;
                println!("{}", bots::table(&[a]));
            }
            AccountCommand::List { json, .. } => {
                let all = bots::list(&store).await?;
                if json {
                    for a in &all {
                        println!("{}", serde_json::to_string(a)?);
                    }
                } else if all.is_empty() {
                    println!("no accounts yet: add one with `lanbox account add telegram --token ...`");
                } else {
                    println!("{}", bots::table(&all));
                }
            }
            AccountCommand::Update {
                id,
                name,
                rented,
                daily_limit,
                no_daily_limit,
                webhook,
                self_signed,
                polling,
                ..
            } => {
                use lanbox::channels::telegram::webhook as hook;
                if let Some(base) = webhook {
                    let cert = if self_signed {
                        Some(
                            std::fs::read(data.join("tls").join("cert.pem"))
                                .map_err(|e| format!("--self-signed: reading this box's certificate: {e}"))?,
                        )
                    } else {
                        None
                    };
                    let a = hook::switch_to_webhook(&store, http_client()?, id, &base, cert).await?;
                    println!(
                        "webhook set: Telegram delivers to {}",
                        a.webhook_url.as_deref().unwrap_or("?")
                    );
                } else if polling {
                    hook::switch_to_polling(&store, http_client()?, id).await?;
                    println!("webhook removed: account {id} polls again");
                }
                let limit = if no_daily_limit {
                    Some(None)
                } else {
                    daily_limit.map(Some)
                };
                let changes = AccountChanges {
                    name,
                    rented,
                    daily_limit: limit,
                };
                println!("{}", bots::table(&[bots::update(&store, id, changes).await?]));
            }
            AccountCommand::Remove { id, release, .. } => {
                // A tombstoned account can still be released (e.g. to finish an interrupted one).
                let pending = lanbox::ingest::release::pending(&store)?.contains(&id);
                match bots::remove(&store, id).await {
                    Err(bots::AccountError::NotFound(_)) if release || pending => {}
                    other => other?,
                }
                if release || pending {
                    let index = std::sync::Arc::new(lanbox::search::SearchIndex::new());
                    let pipeline = lanbox::ingest::Pipeline::new(store.clone(), index);
                    let files =
                        lanbox::attachments::Attachments::open_default_http(store.clone(), config.attachment_options())
                            .await?;
                    let done = lanbox::service::lifecycle::release_account(&pipeline, &files, id).await?;
                    println!(
                        "account {id} released: {} messages deleted, {} kept for other accounts ({} re-sealed), {} chats deleted; its key is destroyed",
                        done.messages_deleted, done.messages_kept, done.messages_resealed, done.chats_deleted
                    );
                } else {
                    println!("account {id} removed (token erased; its messages stay; --release deletes them)");
                }
            }
        }
        Ok::<(), AnyError>(())
    })
}

fn user(command: UserCommand) -> Result<(), AnyError> {
    use lanbox::auth::{NewUser, prompt, users};
    let data = match &command {
        UserCommand::Add { data, .. } | UserCommand::List { data } | UserCommand::Grant { data, .. } => {
            data.clone()
        }
    };
    let (store, _config) = init(&data)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match command {
            UserCommand::Add {
                name, role, accounts, ..
            } => {
                users::validate_name(&name)?;
                let password = prompt::new_password(&name)?;
                let u = users::add(
                    &store,
                    NewUser {
                        name,
                        role,
                        password,
                        grants: accounts,
                    },
                )
                .await?;
                println!("{}", users::table(&[u]));
            }
            UserCommand::List { .. } => {
                let all = store.read(users::list).await?;
                println!("{}", users::table(&all));
            }
            UserCommand::Grant { name, accounts, .. } => {
                println!(
                    "{}",
                    users::table(&[users::set_grants(&store, &name, accounts).await?])
                );
            }
        }
        Ok::<(), AnyError>(())
    })
}

fn token(command: TokenCommand) -> Result<(), AnyError> {
    let TokenCommand::Create {
        user,
        label,
        expires_days,
        data,
    } = command;
    let (store, _config) = init(&data)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let expires_at = expires_days.map(|d| lanbox::store::ctx::unix_now() + i64::from(d) * 86_400);
        let (token, _) = lanbox::auth::credentials::create_token(&store, &user, &label, expires_at).await?;
        eprintln!("API token for {user} (shown once; only its hash is stored):");
        println!("{token}");
        Ok::<(), AnyError>(())
    })
}

fn dev(command: DevCommand) -> Result<(), AnyError> {
    use lanbox::dev::simulator::{SimConfig, Simulator};
    let DevCommand::TelegramSim {
        listen,
        tokens,
        strict,
        enforce_limits,
    } = command;
    init_logging("info");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let stop = shutdown_signal();
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("binding {listen}: {e}"))?;
        let config = SimConfig {
            strict,
            enforce_limits,
            ..SimConfig::default()
        };
        let sim = Simulator::start_with(listener, config)?;
        let mut bots = Vec::new();
        for t in &tokens {
            let bot = sim
                .add_bot_with_token(t, "sim_bot")
                .ok_or("a --token must look like <digits>:<35 letters, digits, _ or ->")?;
            bots.push(bot);
        }
        if bots.is_empty() {
            bots.push(sim.add_bot("sim_bot"));
        }
        println!("Bot API simulator at {}", sim.api_base());
        for b in &bots {
            println!("token {}", b.token());
        }
        if !strict {
            println!("(other well-formed tokens are registered on first use)");
        }
        stop.await;
        sim.stop().await?;
        Ok::<(), AnyError>(())
    })
}

fn demo(listen: std::net::SocketAddr) -> Result<(), AnyError> {
    let dir = std::env::temp_dir().join(format!("lanbox-demo-{}", std::process::id()));
    // A fresh directory: a demo never mixes with a box's data.
    let _ = std::fs::remove_dir_all(&dir);
    let (store, config) = init(&dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async move {
        let stop = shutdown_signal();
        lanbox::dev::demo::run(store, config, listen, stop).await
    });
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives during start-up is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
