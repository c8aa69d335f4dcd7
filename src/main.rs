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
        id: u64,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, action = clap::ArgAction::Set)]
        rented: Option<bool>,
        #[arg(long, conflicts_with = "no_daily_limit")]
        daily_limit: Option<u32>,
        #[arg(long)]
        no_daily_limit: bool,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Remove an account: its token is erased and it stops receiving. Its stored messages stay
    /// until release is implemented.
    Remove {
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

/// Creates what is missing in `data` and opens the store.
fn init(data: &Path) -> Result<(Store, Config), AnyError> {
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    let cfg_path = data.join(CONFIG_FILE);
    if !cfg_path.exists() {
        std::fs::write(&cfg_path, Config::default_file())
            .map_err(|e| format!("writing {}: {e}", cfg_path.display()))?;
    }
    let loaded = Config::load(data, std::env::vars())?;
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
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
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
                let limit = if no_daily_limit { Some(None) } else { daily_limit.map(Some) };
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
