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
    /// Add, list, change or remove channel accounts (Telegram bots and people's own Telegram
    /// accounts).
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
    /// Make an encrypted backup (database, keys, configuration). On a stopped box it opens the
    /// data directory itself; while `lanbox serve` runs it asks the service over HTTPS (an admin
    /// API token in LANBOX_TOKEN). Without --out it goes where `[backup]` says (the S3 bucket
    /// when configured, else DIR/backups). See docs/backups.md.
    #[command(args_conflicts_with_subcommands = true)]
    Backup {
        #[command(subcommand)]
        command: Option<BackupCommand>,
        /// Write the backup to this file (verified, then renamed into place).
        #[arg(long, conflicts_with = "s3")]
        out: Option<PathBuf>,
        /// Send it to the configured S3 bucket (under backups/).
        #[arg(long)]
        s3: bool,
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Restore a backup into a new data directory (the passphrase from the terminal, one line
    /// of standard input, or LANBOX_BACKUP_PASSPHRASE). Nothing is written unless the whole
    /// backup decrypts and checks.
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The new data directory (must not exist, or be empty).
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Check a stopped box's data without changing it: every page checksum, every record of
    /// every table, every sealed record opened with its key. Prints counts of good and damaged
    /// records (never their contents); exits 1 when anything is damaged. See
    /// docs/data-safety.md.
    Check {
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Seal the master key with a passphrase (sealed boot: the box then opens nothing until an
    /// admin unlocks it on its web page), or unseal it again. See docs/data-safety.md.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Development tools.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Wrap DIR/master.key with a passphrase (argon2id) into DIR/master.key.sealed and remove
    /// the plain file. The passphrase from LANBOX_UNLOCK_PASSPHRASE, one line of standard
    /// input, or the terminal (asked twice). Stop the box first.
    Seal {
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Turn DIR/master.key.sealed back into a plain DIR/master.key (with the passphrase).
    Unseal {
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Say whether the master key is sealed.
    Status {
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
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
    /// Serve an MTProto simulator (one Telegram user account, for `lanbox account add-user` and
    /// Settings -> Accounts) until Ctrl-C or SIGTERM. It prints the two settings that point a
    /// box at it (`LANBOX_TELEGRAM_DEV_SIMULATOR` and `..._KEY`; development only).
    MtprotoSim {
        #[arg(long, default_value = "127.0.0.1:8082")]
        listen: std::net::SocketAddr,
        /// The account's phone number.
        #[arg(long, default_value = "15550100")]
        phone: String,
        /// The account holder's first name.
        #[arg(long, default_value = "Agent")]
        first_name: String,
        /// The login code every login gets (the Telegram app would show it).
        #[arg(long, default_value = "12345")]
        code: String,
        /// A 2FA password the login then needs.
        #[arg(long)]
        password: Option<String>,
        /// Once the account signs in, a person named Ann writes this to it.
        #[arg(long)]
        welcome: Option<String>,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Set the backup passphrase (from the terminal, one line of standard input, or
    /// LANBOX_BACKUP_PASSPHRASE). The box keeps only the key derived from it, wrapped by its
    /// master key; a restore needs the passphrase itself, so keep it somewhere safe off the box.
    SetPassphrase {
        #[arg(long, env = "LANBOX_DATA", default_value = "./lanbox-data")]
        data: PathBuf,
    },
    /// Decrypt and check a backup file without restoring it (needs the passphrase).
    Verify {
        #[arg(long)]
        from: PathBuf,
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
    /// Add a person's own Telegram account (a user account, over MTProto): Telegram sends a
    /// code to their Telegram app, which this asks for, then the account's 2FA password if it
    /// has one (or set LANBOX_TELEGRAM_PASSWORD). Needs the box's [telegram] api_id and
    /// api_hash (docs/user-accounts.md). Run it while `lanbox serve` is stopped; while it runs,
    /// use Settings -> Accounts or POST /api/v1/account-logins.
    AddUser {
        /// The account's phone number with its country code (+49 30 1234567).
        #[arg(long)]
        phone: String,
        /// Label shown in the inbox (default: the person's first name).
        #[arg(long)]
        name: Option<String>,
        /// Redact login codes (messages from Telegram's chat 777000).
        #[arg(long)]
        rented: bool,
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
    /// Remove an account: its token is erased (a user account is logged out on Telegram) and
    /// it stops receiving. Its stored messages stay (sealed, still searchable by those granted
    /// it) unless --release is given.
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
        Command::Backup {
            command,
            out,
            s3,
            data,
        } => backup(command, out, s3, &data),
        Command::Restore { from, data_dir } => restore(&from, &data_dir),
        Command::Check { data } => check(&data),
        Command::Key { command } => key(command),
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

/// What to do about a damaged file of the data directory (the store refused to open it).
fn damaged_hint(data: &Path, e: lanbox::store::StoreError) -> AnyError {
    use lanbox::store::StoreError;
    match e {
        e @ StoreError::Damaged { .. } => format!(
            "refusing to start: {e}.\n\
             Nothing was changed: keep {dir} as it is (a copy of it is the evidence).\n\
             Next: `lanbox check --data {dir}` says what is damaged (it writes nothing), and \
             `lanbox restore --from BACKUP --data-dir NEW_DIR` brings back a backup into a new directory \
             (docs/data-safety.md)",
            dir = data.display()
        )
        .into(),
        other => in_use_hint(data, other),
    }
}

const UNLOCK_ENV: &str = "LANBOX_UNLOCK_PASSPHRASE";

/// `lanbox key ...`: sealed boot's master key.
fn key(command: KeyCommand) -> Result<(), AnyError> {
    use lanbox::store::sealed_key;
    match command {
        KeyCommand::Seal { data } => {
            let pass = zeroize::Zeroizing::new(lanbox::auth::prompt::secret(
                UNLOCK_ENV,
                "Unlock passphrase: ",
                true,
            )?);
            sealed_key::seal(&data, &pass)?;
            println!(
                "master key sealed in {}; `lanbox serve` now waits for an admin to unlock the box on its web page",
                data.join(sealed_key::SEALED_MASTER_KEY_FILE).display()
            );
        }
        KeyCommand::Unseal { data } => {
            let pass = zeroize::Zeroizing::new(lanbox::auth::prompt::secret(
                UNLOCK_ENV,
                "Unlock passphrase: ",
                false,
            )?);
            sealed_key::unseal_to_file(&data, &pass)?;
            println!(
                "master key unsealed into {}",
                data.join(lanbox::store::keyring::MASTER_KEY_FILE).display()
            );
        }
        KeyCommand::Status { data } => {
            if sealed_key::is_sealed(&data) {
                println!(
                    "sealed ({})",
                    data.join(sealed_key::SEALED_MASTER_KEY_FILE).display()
                );
            } else {
                println!("not sealed");
            }
        }
    }
    Ok(())
}

/// Creates what is missing in `data` and reads the configuration.
fn load_config(data: &Path) -> Result<Config, AnyError> {
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cfg_path = Config::path(data, &env);
    if !cfg_path.exists() && cfg_path == data.join(CONFIG_FILE) {
        std::fs::write(&cfg_path, Config::default_file())
            .map_err(|e| format!("writing {}: {e}", cfg_path.display()))?;
    }
    let loaded = Config::load(data, env).map_err(config_hint)?;
    init_logging(&loaded.config.log.level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    Ok(loaded.config)
}

/// The store's options; for a sealed box, the master key opened with LANBOX_UNLOCK_PASSPHRASE
/// when that is set (a command run by an operator; `serve` without it shows the unlock page).
fn store_options(data: &Path, config: &Config) -> Result<lanbox::store::StoreOptions, AnyError> {
    let mut opts = config.store_options();
    if lanbox::store::sealed_key::is_sealed(data)
        && let Ok(pass) = std::env::var(UNLOCK_ENV)
    {
        let pass = zeroize::Zeroizing::new(pass);
        opts.master_key = Some(lanbox::store::sealed_key::unseal(data, &pass)?);
    }
    Ok(opts)
}

/// Creates what is missing in `data` and opens the store.
fn init(data: &Path) -> Result<(Store, Config), AnyError> {
    let config = load_config(data)?;
    let store = Store::open(data, &store_options(data, &config)?).map_err(|e| damaged_hint(data, e))?;
    tracing::info!(
        dir = %data.display(),
        cipher = ?store.cipher(),
        master_key = ?store.master_key_source(),
        "store ready"
    );
    Ok((store, config))
}

/// A configuration file that does not read or parse: say what to do.
fn config_hint(e: lanbox::config::ConfigError) -> AnyError {
    use lanbox::config::ConfigError;
    match e {
        ConfigError::Read { .. } | ConfigError::Parse { .. } => format!(
            "refusing to start: {e}.\n\
             Next: correct the file, or bring it back from a backup (`lanbox restore` restores it with the rest; \
             docs/data-safety.md)"
        )
        .into(),
        other => other.into(),
    }
}

/// `lanbox check`: the report, and failure when anything is damaged.
fn check(data: &Path) -> Result<(), AnyError> {
    init_logging("warn");
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cfg_path = Config::path(data, &env);
    let config = match Config::load(data, env) {
        Ok(_) => format!("{}: ok", cfg_path.display()),
        Err(e) => format!("{e} (DAMAGED)"),
    };
    let config_ok = !config.ends_with("(DAMAGED)");
    let credentials = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    let report = lanbox::backup::check::check(data, credentials.as_deref()).map_err(|e| match e {
        lanbox::backup::BackupError::Store(s) => damaged_hint(data, s),
        other => other.into(),
    })?;
    println!("configuration: {config}");
    println!("master key: {}: read", report.master_key.display());
    println!(
        "database: {}: pages {}{}",
        report.database.display(),
        if report.pages_clean {
            "ok (every checksum verified)"
        } else {
            "DAMAGED (checksums fail; read below as redb would recover it, from an older commit)"
        },
        if report.needed_recovery {
            "; not closed cleanly (recovered on the next start)"
        } else {
            ""
        }
    );
    for t in &report.tables {
        match &t.error {
            None => println!("  table {}: {} records", t.name, t.records),
            Some(e) => println!(
                "  table {}: {} records read, then DAMAGED: {e}",
                t.name, t.records
            ),
        }
    }
    if !report.unknown_tables.is_empty() {
        println!(
            "  tables this lanbox does not know: {}",
            report.unknown_tables.join(", ")
        );
    }
    let s = &report.sealed;
    for (what, c) in [
        ("accounts (data keys, tokens)", s.accounts),
        ("chats (titles)", s.chats),
        ("messages (contents)", s.messages),
        ("reactions", s.reactions),
        ("events", s.events),
    ] {
        println!("  {what}: {} good, {} damaged", c.good, c.damaged);
    }
    if report.damaged() || !config_ok {
        return Err(format!(
            "damage found in {}; nothing was changed. Keep a copy of the directory, and restore a backup into a \
             new one (`lanbox restore --from BACKUP --data-dir NEW_DIR`); see docs/data-safety.md",
            data.display()
        )
        .into());
    }
    println!("no damage found");
    Ok(())
}

fn init_logging(level: &str) {
    // rustls warns once per connection about odd client hellos (an IP address as SNI, say):
    // harmless, but a flood on an SD card. Its errors still show.
    let filter = std::env::var("LANBOX_LOG").unwrap_or_else(|_| format!("{level},rustls=error"));
    // Whatever the level, MTProto's library never logs message text (see the constant).
    let filter = format!("{filter},{}", lanbox::channels::mtproto::LOG_DIRECTIVES);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

fn serve(data: &Path) -> Result<(), AnyError> {
    // A backup restored from the first-run page waits in DIR/restore-staged.
    lanbox::backup::staged::apply(data)?;
    let mut config = load_config(data)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        tracing::info!("lanbox running; stop with SIGTERM or Ctrl-C");
        let listeners = lanbox::app::Listeners::from_config(&config)?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutting down");
            let _ = stop_tx.send(true);
        });
        loop {
            let opts = store_options(data, &config)?;
            let outcome = lanbox::app::run(data, config, opts, &listeners, stop_rx.clone())
                .await
                .map_err(|e| match e.downcast::<lanbox::store::StoreError>() {
                    Ok(e) => damaged_hint(data, *e),
                    Err(e) => e,
                })?;
            match outcome {
                lanbox::app::Outcome::Stopped => return Ok(()),
                lanbox::app::Outcome::Restart => {
                    lanbox::backup::staged::apply(data)?;
                    config = load_config(data)?;
                }
            }
        }
    })
}

fn account(command: AccountCommand) -> Result<(), AnyError> {
    use lanbox::channels::telegram::bots::{self, AccountChanges, AddBot};
    use lanbox::channels::telegram::client::{Token, http_client};
    let data = match &command {
        AccountCommand::Add { data, .. }
        | AccountCommand::AddUser { data, .. }
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
            AccountCommand::AddUser {
                phone, name, rented, ..
            } => {
                let app = config.telegram_app()?.ok_or(
                    "this box has no Telegram application: set [telegram] api_id and api_hash \
                     (or LANBOX_TELEGRAM_API_ID and LANBOX_TELEGRAM_API_HASH; see docs/user-accounts.md)",
                )?;
                let phone = lanbox::channels::mtproto::normalise_phone(&phone)?;
                let id = add_user(&store, app.login_spec(phone, name, rented)).await?;
                let all = lanbox::channels::mtproto::accounts::list(&store).await?;
                let added: Vec<_> = all.into_iter().filter(|a| a.id == id).collect();
                println!("{}", lanbox::channels::mtproto::accounts::table(&added));
            }
            AccountCommand::List { json, .. } => {
                use lanbox::channels::mtproto::accounts as user_accounts;
                let all = bots::list(&store).await?;
                let users = user_accounts::list(&store).await?;
                if json {
                    for a in &all {
                        println!("{}", serde_json::to_string(a)?);
                    }
                    for a in &users {
                        println!("{}", serde_json::to_string(a)?);
                    }
                } else if all.is_empty() && users.is_empty() {
                    println!(
                        "no accounts yet: add one with `lanbox account add telegram --token ...` \
                         or `lanbox account add-user --phone ...`"
                    );
                } else {
                    if !all.is_empty() {
                        println!("{}", bots::table(&all));
                    }
                    if !users.is_empty() {
                        if !all.is_empty() {
                            println!();
                        }
                        println!("{}", user_accounts::table(&users));
                    }
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
                let limit = if no_daily_limit {
                    Some(None)
                } else {
                    daily_limit.map(Some)
                };
                let user = store
                    .read(move |r| r.account(id))
                    .await?
                    .as_ref()
                    .and_then(lanbox::channels::mtproto::accounts::summary);
                if user.is_some() {
                    if webhook.is_some() || polling {
                        return Err("a user account has no mode: it always receives over MTProto".into());
                    }
                    use lanbox::channels::mtproto::accounts as user_accounts;
                    let changed = user_accounts::update(&store, id, name, rented, limit)
                        .await?
                        .ok_or_else(|| format!("no account {id}"))?;
                    println!("{}", user_accounts::table(&[changed]));
                    return Ok(());
                }
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
                let user = store
                    .read(move |r| r.account(id))
                    .await?
                    .as_ref()
                    .and_then(lanbox::channels::mtproto::accounts::summary);
                if let Some(u) = user {
                    // Logged out on Telegram first: the session stops working there too.
                    if u.signed_in {
                        lanbox::channels::mtproto::logout(&store, id).await?;
                        println!("account {id} logged out on Telegram");
                    } else {
                        return Err(format!("account {id} has no session to log out").into());
                    }
                } else {
                    match bots::remove(&store, id).await {
                        Err(bots::AccountError::NotFound(_)) if release || pending => {}
                        other => other?,
                    }
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

/// Logs a user account in on the terminal: the code (asked again after a wrong one), then
/// the 2FA password when the account has one. Standard input is read on a blocking thread, so
/// the login's connection keeps being served while the person types.
async fn add_user(store: &Store, spec: lanbox::channels::mtproto::LoginSpec) -> Result<u64, AnyError> {
    use lanbox::auth::prompt;
    use lanbox::channels::mtproto::{self, LoginError};
    const TRIES: usize = 3;
    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, String> + Send + 'static,
    ) -> Result<T, AnyError> {
        Ok(tokio::task::spawn_blocking(f).await??)
    }
    let pending = mtproto::begin(store, spec).await?;
    eprintln!("Telegram sent a login code to the account's Telegram app (or by SMS).");
    let mut tries = 0;
    let account = loop {
        tries += 1;
        let code = blocking(|| prompt::line("Login code: "))
            .await?
            .ok_or("no login code given")?;
        match pending.submit_code(&code).await {
            Ok(id) => break Some(id),
            Err(LoginError::PasswordRequired) => break None,
            Err(LoginError::CodeInvalid) if tries < TRIES => {
                eprintln!("lanbox: the code is wrong; try again")
            }
            Err(e) => return Err(e.into()),
        }
    };
    if let Some(id) = account {
        return Ok(id);
    }
    eprintln!("The account has a 2FA password.");
    let mut tries = 0;
    loop {
        tries += 1;
        let password = zeroize::Zeroizing::new(
            blocking(|| prompt::secret("LANBOX_TELEGRAM_PASSWORD", "2FA password: ", false)).await?,
        );
        match pending.submit_password(&password).await {
            Ok(id) => return Ok(id),
            Err(LoginError::PasswordInvalid)
                if tries < TRIES && std::env::var_os("LANBOX_TELEGRAM_PASSWORD").is_none() =>
            {
                eprintln!("lanbox: the 2FA password is wrong; try again")
            }
            Err(e) => return Err(e.into()),
        }
    }
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

const PASSPHRASE_ENV: &str = "LANBOX_BACKUP_PASSPHRASE";

fn backup(
    command: Option<BackupCommand>,
    out: Option<PathBuf>,
    s3: bool,
    data: &Path,
) -> Result<(), AnyError> {
    use lanbox::backup::{self, BackupError};
    match command {
        Some(BackupCommand::Verify { from }) => {
            let pass = lanbox::auth::prompt::secret(PASSPHRASE_ENV, "Backup passphrase: ", false)?;
            let file = std::fs::File::open(&from).map_err(|e| format!("{}: {e}", from.display()))?;
            let sum = backup::snapshot::verify_with_passphrase(std::io::BufReader::new(file), &pass)?;
            println!(
                "{}: intact ({} bytes; {} records, {} files, {} attachment files copied, {} referenced in S3; made {} by lanbox {})",
                from.display(),
                sum.bytes,
                sum.records,
                sum.files,
                sum.attachment_files,
                sum.manifest.attachments_in_s3,
                sum.manifest.created_at,
                sum.manifest.lanbox_version
            );
            return Ok(());
        }
        Some(BackupCommand::SetPassphrase { data }) => {
            let Some((store, _)) = open_for_backup(&data)? else {
                return Err(format!(
                    "{} is in use by the running service: set the passphrase in Settings -> System -> Backup \
                     (PUT /api/v1/backups/passphrase), or stop the service first",
                    data.join(lanbox::store::DB_FILE).display()
                )
                .into());
            };
            let pass = lanbox::auth::prompt::secret(PASSPHRASE_ENV, "New backup passphrase: ", true)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(backup::key::set_passphrase(&store, pass))?;
            println!(
                "backup passphrase set (only the key derived from it is stored, wrapped by the master key)"
            );
            return Ok(());
        }
        None => {}
    }
    let Some((store, config)) = open_for_backup(data)? else {
        return backup_online(data, out, s3);
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut opts = config.backup_options(Some(Config::path(data, &env)));
    if s3 {
        opts.s3 = config.attachment_options().s3;
        if opts.s3.is_none() {
            return Err("--s3: no [s3] endpoint is configured in lanbox.toml".into());
        }
    }
    let started = std::time::Instant::now();
    if let Some(out) = out {
        let sources = backup::Sources::of(&store, &opts);
        let sum = backup::write_verified(&store, &sources, &out)?;
        println!(
            "backup written and verified: {} ({} bytes, {} records, {} attachment files copied, {} referenced in S3) in {:.1} s",
            out.display(),
            sum.bytes,
            sum.records,
            sum.attachment_files,
            sum.manifest.attachments_in_s3,
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let backups = backup::Backups::new(store, opts)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let made = rt.block_on(backups.create()).map_err(|e| -> AnyError {
        match e {
            BackupError::NoPassphrase => {
                "no backup passphrase is set: run `lanbox backup set-passphrase` first".into()
            }
            other => other.into(),
        }
    })?;
    let place = match made.info.location {
        "s3" => format!("s3 backups/{}", made.info.name),
        _ => backups.dir().join(&made.info.name).display().to_string(),
    };
    println!(
        "backup written and verified: {place} ({} bytes, {} records) in {:.1} s",
        made.info.bytes,
        made.records,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Opens the store for a backup command; `None` when the running service holds it.
fn open_for_backup(data: &Path) -> Result<Option<(Store, Config)>, AnyError> {
    if !data.join(lanbox::store::DB_FILE).exists() {
        return Err(format!("{} has no database: nothing to back up", data.display()).into());
    }
    let env: Vec<(String, String)> = std::env::vars().collect();
    let loaded = Config::load(data, env)?;
    init_logging(&loaded.config.log.level);
    match Store::open(data, &store_options(data, &loaded.config)?) {
        Ok(store) => Ok(Some((store, loaded.config))),
        Err(lanbox::store::StoreError::Db(redb::Error::DatabaseAlreadyOpen)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `lanbox backup` while the service runs: asks it over HTTPS on loopback (pinning the box's
/// own certificate) with the admin API token in LANBOX_TOKEN, and downloads the result for
/// --out.
fn backup_online(data: &Path, out: Option<PathBuf>, s3: bool) -> Result<(), AnyError> {
    let token = std::env::var("LANBOX_TOKEN").map_err(|_| {
        format!(
            "{} is in use by the running service: set LANBOX_TOKEN to an admin's API token (Settings -> API tokens) \
             so `lanbox backup` can ask it, or use Settings -> System -> Backup (POST /api/v1/backups)",
            data.join(lanbox::store::DB_FILE).display()
        )
    })?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = Config::load(data, env)?.config;
    let fp = lanbox::system::tls::CertStore::load(lanbox::app::cert_source(data, &config))?.fingerprint();
    let port = config.server.listen.parse::<std::net::SocketAddr>()?.port();
    let base = format!("https://127.0.0.1:{port}/api/v1/backups");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(lanbox::system::tls::client_config(
            Some(&fp),
            &[&rustls::version::TLS13],
        ))
        .build()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let started = std::time::Instant::now();
        let res = client.post(&base).bearer_auth(&token).send().await?;
        let status = res.status();
        let body: serde_json::Value = res.json().await?;
        if status != reqwest::StatusCode::CREATED {
            let msg = body["error"]["message"].as_str().unwrap_or("no detail").to_string();
            return Err(format!("the running service refused the backup ({status}): {msg}").into());
        }
        let name = body["name"].as_str().ok_or("the service's answer has no backup name")?.to_string();
        let bytes = body["bytes"].as_u64().unwrap_or(0);
        let location = body["location"].as_str().unwrap_or("local").to_string();
        if s3 && location != "s3" {
            return Err(format!(
                "the running box keeps backups locally ({name} is in its backup directory); set [backup] target = \"s3\" with [s3] configured"
            )
            .into());
        }
        let Some(out) = out else {
            println!("backup written and verified by the running service: {location} {name} ({bytes} bytes) in {:.1} s", started.elapsed().as_secs_f64());
            return Ok::<(), AnyError>(());
        };
        let mut res = client.get(format!("{base}/{name}")).bearer_auth(&token).send().await?;
        if !res.status().is_success() {
            return Err(format!("downloading {name}: {}", res.status()).into());
        }
        let part = out.with_extension("part");
        let mut file = std::fs::File::create(&part).map_err(|e| format!("{}: {e}", part.display()))?;
        let mut got = 0u64;
        while let Some(chunk) = res.chunk().await? {
            std::io::Write::write_all(&mut file, &chunk)?;
            got += chunk.len() as u64;
        }
        file.sync_all()?;
        if got != bytes {
            let _ = std::fs::remove_file(&part);
            return Err(format!("downloaded {got} of {bytes} bytes of {name}").into());
        }
        std::fs::rename(&part, &out)?;
        println!(
            "backup written and verified by the running service, downloaded to {} ({bytes} bytes) in {:.1} s",
            out.display(),
            started.elapsed().as_secs_f64()
        );
        Ok(())
    })
}

fn restore(from: &Path, data_dir: &Path) -> Result<(), AnyError> {
    init_logging("warn");
    let file = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let pass = lanbox::auth::prompt::secret(PASSPHRASE_ENV, "Backup passphrase: ", false)?;
    let started = std::time::Instant::now();
    let sum = lanbox::backup::snapshot::restore(
        std::io::BufReader::with_capacity(256 << 10, file),
        &pass,
        data_dir,
    )
    .map_err(|e| {
        format!(
            "{}: {e}; nothing was written to {}",
            from.display(),
            data_dir.display()
        )
    })?;
    println!(
        "restored into {} in {:.1} s: {} records, {} files, {} attachment files; {} attachments are referenced in S3{}",
        data_dir.display(),
        started.elapsed().as_secs_f64(),
        sum.records,
        sum.files,
        sum.attachment_files,
        sum.manifest.attachments_in_s3,
        sum.manifest
            .s3_bucket
            .as_deref()
            .map(|b| format!(" (bucket {b}: give this box access to it in [s3])"))
            .unwrap_or_default()
    );
    println!("start it with: lanbox serve --data {}", data_dir.display());
    Ok(())
}

fn dev(command: DevCommand) -> Result<(), AnyError> {
    use lanbox::dev::simulator::{SimConfig, Simulator};
    let (listen, tokens, strict, enforce_limits) = match command {
        DevCommand::TelegramSim {
            listen,
            tokens,
            strict,
            enforce_limits,
        } => (listen, tokens, strict, enforce_limits),
        DevCommand::MtprotoSim {
            listen,
            phone,
            first_name,
            code,
            password,
            welcome,
        } => {
            let config = lanbox::dev::mtproto::MtSimConfig {
                phone: lanbox::channels::mtproto::normalise_phone(&phone)?,
                first_name,
                code: Some(code),
                password,
                ..Default::default()
            };
            return mtproto_sim(listen, config, welcome);
        }
    };
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

/// `lanbox dev mtproto-sim`: the simulator on `listen`, with a fresh auth key, printed with
/// its address for `[telegram] dev_simulator`.
fn mtproto_sim(
    listen: std::net::SocketAddr,
    config: lanbox::dev::mtproto::MtSimConfig,
    welcome: Option<String>,
) -> Result<(), AnyError> {
    use lanbox::dev::mtproto::MtSimulator;
    init_logging("info");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let stop = shutdown_signal();
        tokio::pin!(stop);
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("binding {listen}: {e}"))?;
        let mut key = [0u8; 256];
        getrandom::fill(&mut key).map_err(|e| format!("random source: {e}"))?;
        let (phone, code) = (config.phone.clone(), config.code.clone().unwrap_or_default());
        let sim = MtSimulator::serve(listener, config, key)?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        println!(
            "MTProto simulator at {} (phone {phone}, login code {code})",
            sim.addr()
        );
        println!("LANBOX_TELEGRAM_DEV_SIMULATOR={}", sim.addr());
        println!("LANBOX_TELEGRAM_DEV_SIMULATOR_KEY={hex}");
        if let Some(text) = welcome {
            let ann = sim.add_user("Ann");
            // The simulator announces no sign-in: look twice a second (a development tool).
            // After the login has read its starting state (`updates.getState`), so the message
            // comes after it.
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
            let signed_in = || sim.authorized() && sim.calls().iter().any(|c| c == "updates.getState");
            tokio::select! {
                _ = async {
                    while !signed_in() {
                        tick.tick().await;
                    }
                } => {
                    sim.message_from(&ann, &text);
                    println!("Ann wrote to the account");
                    (&mut stop).await;
                }
                _ = &mut stop => {}
            }
        } else {
            stop.await;
        }
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
