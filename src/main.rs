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
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Remove an account: its token is erased and it stops receiving. Its stored messages stay
    /// until release is implemented.
    Remove {
        /// Account ID, as `account list` shows it.
        id: u64,
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
    let store = Store::open(data, &loaded.config.store_options())?;
    tracing::info!(
        dir = %data.display(),
        cipher = ?store.cipher(),
        master_key = ?store.master_key_source(),
        "store ready"
    );
    Ok((store, loaded.config))
}

fn init_logging(level: &str) {
    let filter = std::env::var("LANBOX_LOG").unwrap_or_else(|_| level.to_string());
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
        lanbox::app::serve(store, config, async {
            stop.await;
            tracing::info!("shutting down");
        })
        .await
    })
}

fn account(command: AccountCommand) -> Result<(), AnyError> {
    use lanbox::channels::telegram::accounts::{self as bots, AccountChanges, AddBot};
    use lanbox::channels::telegram::client::{Token, http_client};
    let data = match &command {
        AccountCommand::Add { data, .. }
        | AccountCommand::List { data, .. }
        | AccountCommand::Update { data, .. }
        | AccountCommand::Remove { data, .. } => data.clone(),
    };
    let (store, _config) = init(&data)?;
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
                ..
            } => {
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
            AccountCommand::Remove { id, .. } => {
                bots::remove(&store, id).await?;
                println!("account {id} removed (token erased; its messages stay until release)");
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
