//! The `lanbox` command: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lanbox::config::{CONFIG_FILE, Config};
use lanbox::store::Store;

#[derive(Parser)]
#[command(name = "lanbox", version, about = "A private, on-premises unified inbox for Telegram")]
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init { data } => init(&data).map(|_| ()),
        Command::Serve { data } => serve(&data),
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
        std::fs::write(&cfg_path, Config::default_file()).map_err(|e| format!("writing {}: {e}", cfg_path.display()))?;
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
    let (store, _config) = init(data)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        tracing::info!("lanbox running; stop with SIGTERM or Ctrl-C");
        shutdown_signal().await;
        tracing::info!("shutting down");
        drop(store);
    });
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
