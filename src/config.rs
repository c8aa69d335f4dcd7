//! Configuration: `DIR/lanbox.toml`, then `LANBOX_<SECTION>_<KEY>` environment variables on top,
//! parsed once into validated types. Unknown keys (in the file or the environment) produce
//! warnings, not failures, so a config written for a newer release still starts an older one.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::store::StoreOptions;
use crate::store::seal::Cipher;

pub const CONFIG_FILE: &str = "lanbox.toml";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub store: StoreSection,
    pub server: ServerSection,
    pub log: LogSection,
    pub events: EventsSection,
    pub outbox: OutboxSection,
    pub attachments: crate::attachments::config::AttachmentsSection,
    pub s3: crate::attachments::config::S3Section,
    pub backup: BackupSection,
    pub export: ExportSection,
    pub update: UpdateSection,
    pub telegram: TelegramSection,
}

/// `[update]`: how the box installs updates with RAUC (see docs/updates.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpdateSection {
    /// The `rauc` program.
    pub rauc: String,
    /// Largest bundle an admin may upload, MiB.
    pub max_bundle_mb: u64,
    /// The command that reboots the box when an admin confirms, split on spaces.
    pub reboot: String,
    /// RAUC system configuration and keyring other than the image's (for tests; empty: RAUC's
    /// own, `/etc/rauc/system.conf` and the keyring it names).
    pub conf: String,
    pub keyring: String,
}

impl Default for UpdateSection {
    fn default() -> Self {
        let d = crate::system::update::UpdateOptions::default();
        UpdateSection {
            rauc: d.rauc.display().to_string(),
            max_bundle_mb: d.max_bundle >> 20,
            reboot: d.reboot.join(" "),
            conf: String::new(),
            keyring: String::new(),
        }
    }
}

/// `[telegram]`: the box's own Telegram application, which user accounts (MTProto) log in
/// with (see docs/user-accounts.md: a team creates one at my.telegram.org). Bots need none.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelegramSection {
    /// The application's api_id (a number); 0 when the box has none.
    pub api_id: i64,
    /// The application's api_hash (32 hex characters).
    pub api_hash: String,
    /// Development and tests only: log user accounts in at an MTProto simulator at this
    /// address (`127.0.0.1:PORT`) instead of Telegram's data centres. Empty in production.
    pub dev_simulator: String,
    /// Development and tests only: the simulator's auth key (512 hex characters).
    pub dev_simulator_key: String,
    /// Log user accounts in at Telegram's public *test* servers (test phone numbers, see
    /// docs/user-accounts.md, "A smoke test against Telegram"), not the real network. Off in
    /// production.
    pub test_servers: bool,
}

/// `[export]`: PDF transcripts (see docs/export.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportSection {
    /// Where the Noto fonts are found (Debian: fonts-noto-core, fonts-noto-cjk,
    /// fonts-noto-color-emoji).
    pub fonts_dir: String,
    /// IANA time zone of the times in transcripts (`Europe/Berlin`); empty for the box's own
    /// (`/etc/localtime`, else UTC).
    pub time_zone: String,
}

impl Default for ExportSection {
    fn default() -> Self {
        let d = crate::export::ExportOptions::default();
        ExportSection {
            fonts_dir: d.fonts_dir.display().to_string(),
            time_zone: d.time_zone,
        }
    }
}

/// `[backup]`: where the running box puts backups and how often (see docs/backups.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupSection {
    /// `auto` (the S3 bucket when `[s3]` is configured, else `DIR/backups`), `local` or `s3`.
    pub target: String,
    /// Local backup directory; empty for `DIR/backups`.
    pub dir: String,
    /// Generations kept; older ones are deleted once a new one is verified.
    pub keep: u32,
    /// `auto` (daily when `[s3]` is configured, else off), `off`, `daily` or `hourly`.
    pub schedule: String,
}

impl Default for BackupSection {
    fn default() -> Self {
        BackupSection {
            target: "auto".into(),
            dir: String::new(),
            keep: 7,
            schedule: "auto".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSection {
    /// HTTPS address, used when systemd passes no socket named `https`.
    pub listen: String,
    /// Plain HTTP address that only redirects to HTTPS; empty for none (systemd's `http` socket
    /// is used when passed).
    pub redirect_listen: String,
    /// The box's name on the LAN (mDNS) and in its self-signed certificate.
    pub name: String,
    /// Announce `name` and the HTTPS service over mDNS.
    pub mdns: bool,
    /// Operator-supplied certificate chain and key (PEM). Empty: self-signed in `DIR/tls/`.
    pub tls_cert: String,
    pub tls_key: String,
    /// Client connections open at once (WebSockets included); 0: derived from the process's
    /// open-files limit, at most 1024. More needs as many open files.
    pub max_connections: u32,
    /// Connections open at once from one client address; 0: derived (half the total, at
    /// most 64).
    pub max_connections_per_client: u32,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            listen: "0.0.0.0:8443".into(),
            redirect_listen: String::new(),
            name: "lanbox.local".into(),
            mdns: true,
            tls_cert: String::new(),
            tls_key: String::new(),
            max_connections: 0,
            max_connections_per_client: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSection {
    /// redb page cache, MiB. 64 suits a 2 GB board; see `board/*.toml` for others.
    pub cache_mb: u32,
    /// `auto` (AES-256-GCM with AES instructions, else ChaCha20-Poly1305), `aes-256-gcm`, or
    /// `chacha20-poly1305`.
    pub cipher: String,
    /// Most changes committed in one transaction.
    pub batch_max: u32,
    /// Writer queue length, in batches.
    pub queue: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSection {
    /// A tracing filter: `info`, `lanbox=debug`, ...
    pub level: String,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            cache_mb: 64,
            cipher: "auto".into(),
            batch_max: 4096,
            queue: 64,
        }
    }
}

/// How much of the event log (what WebSocket clients resume from) to keep; older events are
/// trimmed in the background. A client resuming from before the oldest kept event reloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventsSection {
    /// Most events kept; 0 for no limit by count.
    pub keep_max: u64,
    /// Days an event is kept; 0 for no limit by age.
    pub keep_days: u32,
}

impl Default for EventsSection {
    fn default() -> Self {
        let d = crate::live::retention::Retention::default();
        EventsSection {
            keep_max: d.max_events.unwrap_or(0),
            keep_days: d.max_age.map(|a| (a.as_secs() / 86_400) as u32).unwrap_or(0),
        }
    }
}

impl EventsSection {
    pub fn retention(&self) -> crate::live::retention::Retention {
        crate::live::retention::Retention {
            max_events: (self.keep_max > 0).then_some(self.keep_max),
            max_age: (self.keep_days > 0)
                .then(|| std::time::Duration::from_secs(u64::from(self.keep_days) * 86_400)),
            ..Default::default()
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { level: "info".into() }
    }
}

/// `[outbox]`: sending limits after Telegram's published guidance; 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OutboxSection {
    /// Requests a second per bot.
    pub bot_per_second: u32,
    /// Messages a second per private chat.
    pub private_per_second: f64,
    /// Messages a private chat may get in a burst.
    pub private_burst: u32,
    /// Messages a minute per group, supergroup or channel.
    pub group_per_minute: u32,
    /// Requests in flight at once per bot (never two for one chat).
    pub concurrency: u32,
    /// Retries after a failed request (5xx, network, timeout).
    pub retries: u32,
    /// 429 answers one message rides out before it fails.
    pub max_rate_limited: u32,
    /// Timeout of each Bot API request, seconds.
    pub request_timeout_s: u32,
    /// Messages found in flight at start-up: true sends them again (they may arrive twice),
    /// false marks them failed with "outcome unknown".
    pub resend_interrupted: bool,
}

impl Default for OutboxSection {
    fn default() -> Self {
        let d = crate::outbox::OutboxOptions::default();
        OutboxSection {
            bot_per_second: d.bot_per_second,
            private_per_second: d.private_per_second,
            private_burst: d.private_burst,
            group_per_minute: d.group_per_minute,
            concurrency: d.concurrency,
            retries: d.retries,
            max_rate_limited: d.max_rate_limited,
            request_timeout_s: d.request_timeout.as_secs() as u32,
            resend_interrupted: d.resend_interrupted,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Parse { path: String, detail: String },
    #[error("{key}: {detail}")]
    Invalid { key: String, detail: String },
}

/// A loaded configuration with the warnings met on the way.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads `dir/lanbox.toml` (absent means defaults) and applies `env`.
    /// Reads `dir/lanbox.toml`, or the file `LANBOX_CONFIG` names (the package's
    /// `/etc/lanbox/lanbox.toml`), then applies the `LANBOX_*` variables of `env`.
    pub fn load(dir: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Loaded, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let path = Self::path(dir, &env);
        let text = match std::fs::read_to_string(&path) {
            // A file that exists but holds nothing (or only zero bytes) was cut short, not
            // written that way: starting on defaults would silently drop its settings.
            Ok(t)
                if t.trim_matches(|c: char| c == '\0' || c.is_whitespace())
                    .is_empty() =>
            {
                return Err(ConfigError::Parse {
                    path: path.display().to_string(),
                    detail: "the file is empty (truncated or zeroed?); a configuration with no settings \
                             needs at least a comment line"
                        .into(),
                });
            }
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        Self::from_parts(&text, &path.display().to_string(), env)
    }

    /// Where the configuration file is: `LANBOX_CONFIG`, else `dir/lanbox.toml`.
    pub fn path(dir: &Path, env: &[(String, String)]) -> std::path::PathBuf {
        env.iter()
            .find(|(k, v)| k == "LANBOX_CONFIG" && !v.is_empty())
            .map(|(_, v)| std::path::PathBuf::from(v))
            .unwrap_or_else(|| dir.join(CONFIG_FILE))
    }

    pub fn from_parts(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Loaded, ConfigError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| parse_error(origin, Some(text), &e))?;
        let known = toml::Table::try_from(Config::default()).expect("defaults serialise");
        let mut warnings = Vec::new();
        for (section, value) in &table {
            match (known.get(section), value.as_table()) {
                (Some(toml::Value::Table(k)), Some(t)) => {
                    for key in t.keys() {
                        if !k.contains_key(key) {
                            warnings.push(format!("{origin}: unknown key {section}.{key} ignored"));
                        }
                    }
                }
                _ => warnings.push(format!("{origin}: unknown section {section} ignored")),
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("LANBOX_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let hit = known.iter().find_map(|(section, keys)| {
                let key = rest.strip_prefix(section.as_str())?.strip_prefix('_')?;
                keys.as_table()?
                    .get(key)
                    .map(|default| (section.clone(), key.to_string(), default.clone()))
            });
            match hit {
                Some((section, key, default)) => {
                    let v = env_value(&value, &default).ok_or_else(|| ConfigError::Invalid {
                        key: name.clone(),
                        detail: format!("expected {}", with_article(default.type_str())),
                    })?;
                    table
                        .entry(section)
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                        .as_table_mut()
                        .map(|t| t.insert(key, v));
                }
                None if is_reserved_env(&name) => {}
                None => warnings.push(format!("environment: unknown variable {name} ignored")),
            }
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| parse_error(origin, None, &e))?;
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if Cipher::parse(&self.store.cipher).is_none() {
            return Err(ConfigError::Invalid {
                key: "store.cipher".into(),
                detail: "must be auto, aes-256-gcm or chacha20-poly1305".into(),
            });
        }
        if !(4..=4096).contains(&self.store.cache_mb) {
            return Err(ConfigError::Invalid {
                key: "store.cache_mb".into(),
                detail: "must be 4..=4096".into(),
            });
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(ConfigError::Invalid {
                key: "server.listen".into(),
                detail: "must be an address like 0.0.0.0:8443".into(),
            });
        }
        if !self.server.redirect_listen.is_empty()
            && self
                .server
                .redirect_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return Err(ConfigError::Invalid {
                key: "server.redirect_listen".into(),
                detail: "must be empty or an address like 0.0.0.0:80".into(),
            });
        }
        if self.server.tls_cert.is_empty() != self.server.tls_key.is_empty() {
            return Err(ConfigError::Invalid {
                key: "server.tls_cert".into(),
                detail: "tls_cert and tls_key go together".into(),
            });
        }
        let o = &self.outbox;
        if !(1..=300).contains(&o.request_timeout_s)
            || !(0.0..=1000.0).contains(&o.private_per_second)
            || o.retries > 10
        {
            return Err(ConfigError::Invalid {
                key: "outbox".into(),
                detail: "request_timeout_s must be 1..=300, private_per_second 0..=1000, retries at most 10"
                    .into(),
            });
        }
        if let Err(detail) = self.export_options().zone() {
            return Err(ConfigError::Invalid {
                key: "export.time_zone".into(),
                detail,
            });
        }
        crate::attachments::config::validate(&self.attachments, &self.s3)
            .map_err(|(key, detail)| ConfigError::Invalid { key, detail })?;
        let b = &self.backup;
        if !matches!(b.target.as_str(), "auto" | "local" | "s3") {
            return Err(ConfigError::Invalid {
                key: "backup.target".into(),
                detail: "must be auto, local or s3".into(),
            });
        }
        if b.target == "s3" && self.s3.endpoint.is_empty() {
            return Err(ConfigError::Invalid {
                key: "backup.target".into(),
                detail: "s3 needs an [s3] endpoint".into(),
            });
        }
        if !matches!(b.schedule.as_str(), "auto" | "off" | "daily" | "hourly") {
            return Err(ConfigError::Invalid {
                key: "backup.schedule".into(),
                detail: "must be auto, off, daily or hourly".into(),
            });
        }
        if !(1..=1000).contains(&b.keep) {
            return Err(ConfigError::Invalid {
                key: "backup.keep".into(),
                detail: "must be 1..=1000".into(),
            });
        }
        self.telegram_app()?;
        if self.store.batch_max == 0 || self.store.queue == 0 {
            return Err(ConfigError::Invalid {
                key: "store".into(),
                detail: "batch_max and queue must be positive".into(),
            });
        }
        Ok(())
    }

    /// The box's Telegram application (`[telegram]`), checked; `None` when none is set.
    pub fn telegram_app(&self) -> Result<Option<crate::channels::mtproto::TelegramApp>, ConfigError> {
        use crate::channels::mtproto::{Endpoint, TelegramApp};
        let t = &self.telegram;
        let invalid = |key: &str, detail: &str| ConfigError::Invalid {
            key: format!("telegram.{key}"),
            detail: detail.into(),
        };
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if t.api_id < 0 || t.api_id > i64::from(i32::MAX) {
            return Err(invalid(
                "api_id",
                "must be the number my.telegram.org shows (or 0 for none)",
            ));
        }
        if !t.api_hash.is_empty() && !hex(&t.api_hash, 32) {
            // The detail never repeats the value: the hash is not for logs.
            return Err(invalid(
                "api_hash",
                "must be the 32 hex characters my.telegram.org shows",
            ));
        }
        if (t.api_id == 0) != t.api_hash.is_empty() {
            return Err(invalid("api_id", "api_id and api_hash go together"));
        }
        let endpoint = match (t.dev_simulator.is_empty(), t.dev_simulator_key.is_empty()) {
            (true, true) if t.test_servers => Endpoint::TestServers,
            (true, true) => Endpoint::Telegram,
            _ if t.test_servers => {
                return Err(invalid(
                    "test_servers",
                    "Telegram's test servers or the simulator, not both",
                ));
            }
            (false, false) => {
                let addr = t
                    .dev_simulator
                    .parse()
                    .map_err(|_| invalid("dev_simulator", "must be an IPv4 address like 127.0.0.1:4242"))?;
                let mut key = Box::new([0u8; 256]);
                if !hex(&t.dev_simulator_key, 512) {
                    return Err(invalid("dev_simulator_key", "must be 512 hex characters"));
                }
                for (i, b) in key.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&t.dev_simulator_key[2 * i..2 * i + 2], 16)
                        .expect("checked as hex");
                }
                Endpoint::Preshared { addr, auth_key: key }
            }
            _ => {
                return Err(invalid(
                    "dev_simulator",
                    "dev_simulator and dev_simulator_key go together",
                ));
            }
        };
        Ok((t.api_id != 0).then(|| TelegramApp {
            api_id: t.api_id as i32,
            api_hash: t.api_hash.clone(),
            endpoint,
        }))
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            cache_bytes: (self.store.cache_mb as usize) << 20,
            cipher: Cipher::parse(&self.store.cipher).flatten(),
            max_batch_weight: self.store.batch_max as usize,
            queue_jobs: self.store.queue as usize,
            ..StoreOptions::default()
        }
    }

    pub fn outbox_options(&self) -> crate::outbox::OutboxOptions {
        let o = &self.outbox;
        crate::outbox::OutboxOptions {
            bot_per_second: o.bot_per_second,
            private_per_second: o.private_per_second,
            private_burst: o.private_burst.max(1),
            group_per_minute: o.group_per_minute,
            concurrency: o.concurrency.clamp(1, 64),
            retries: o.retries,
            max_rate_limited: o.max_rate_limited.max(1),
            request_timeout: std::time::Duration::from_secs(u64::from(o.request_timeout_s)),
            resend_interrupted: o.resend_interrupted,
            ..crate::outbox::OutboxOptions::default()
        }
    }

    /// The service's tunables this file sets (the rest keep their defaults).
    pub fn service_options(&self) -> crate::service::ServiceOptions {
        crate::service::ServiceOptions {
            outbox: self.outbox_options(),
            attachments: self.attachment_options(),
            retention: self.events.retention(),
            backup: self.backup_options(None),
            export: self.export_options(),
            update: self.update_options(),
            // Checked by `validate` when the configuration was loaded.
            telegram_app: self.telegram_app().ok().flatten(),
            ..crate::service::ServiceOptions::default()
        }
    }

    /// Updates through RAUC (`[update]`).
    pub fn update_options(&self) -> crate::system::update::UpdateOptions {
        let u = &self.update;
        let path = |v: &str| (!v.is_empty()).then(|| std::path::PathBuf::from(v));
        crate::system::update::UpdateOptions {
            rauc: u.rauc.clone().into(),
            keyring: path(&u.keyring),
            conf: path(&u.conf),
            max_bundle: u.max_bundle_mb.saturating_mul(1 << 20),
            reboot: u.reboot.split_whitespace().map(str::to_string).collect(),
        }
    }

    /// Backups of the running box (`[backup]`); `config_file` is the file this was read from.
    pub fn backup_options(&self, config_file: Option<std::path::PathBuf>) -> crate::backup::BackupOptions {
        let b = &self.backup;
        let has_s3 = !self.s3.endpoint.is_empty();
        let to_s3 = match b.target.as_str() {
            "s3" => true,
            "auto" => has_s3,
            _ => false,
        };
        let day = std::time::Duration::from_secs(86_400);
        let every = match b.schedule.as_str() {
            "daily" => Some(day),
            "hourly" => Some(std::time::Duration::from_secs(3600)),
            "auto" if has_s3 => Some(day),
            _ => None,
        };
        crate::backup::BackupOptions {
            dir: (!b.dir.is_empty()).then(|| b.dir.clone().into()),
            config_file,
            s3: if to_s3 { self.attachment_options().s3 } else { None },
            keep: b.keep,
            every,
        }
    }

    pub fn export_options(&self) -> crate::export::ExportOptions {
        crate::export::ExportOptions {
            fonts_dir: self.export.fonts_dir.clone().into(),
            time_zone: self.export.time_zone.clone(),
            box_name: self.server.name.clone(),
        }
    }

    pub fn attachment_options(&self) -> crate::attachments::AttachmentOptions {
        let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(std::path::PathBuf::from);
        crate::attachments::config::options(&self.attachments, &self.s3, creds.as_deref())
    }

    /// The file `lanbox init` writes: the defaults, commented.
    pub fn default_file() -> String {
        let body = toml::to_string_pretty(&Config::default()).expect("defaults serialise");
        format!("# lanbox configuration. Every key can also be set as LANBOX_<SECTION>_<KEY>.\n\n{body}")
    }
}

/// Variables that start with `LANBOX_` but are not configuration keys.
fn is_reserved_env(name: &str) -> bool {
    matches!(
        name,
        "LANBOX_DATA"
            | "LANBOX_LOG"
            | "LANBOX_CONFIG"
            | "LANBOX_PASSWORD"
            | "LANBOX_BOT_TOKEN"
            | "LANBOX_TOKEN"
            | "LANBOX_BACKUP_PASSPHRASE"
            | "LANBOX_UNLOCK_PASSPHRASE"
            | "LANBOX_TELEGRAM_PASSWORD"
    )
}

/// A TOML error that says where: the line, column and token when the text is at hand (a
/// duplicate key, a syntax error), else the key (a value of the wrong type).
fn parse_error(origin: &str, text: Option<&str>, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim();
    let detail = match (text, e.span()) {
        (Some(t), Some(span)) if span.start <= t.len() && t.is_char_boundary(span.start) => {
            let before = &t[..span.start];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
            let token = t
                .get(span.clone())
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 80);
            match token {
                Some(tok) => format!("line {line}, column {column}: {message} (`{tok}`)"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        _ => {
            let shown = e.to_string();
            let key = shown.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("in `")?
                    .strip_suffix('`')
                    .map(str::to_string)
            });
            match key {
                Some(k) => format!("{k}: {message}"),
                None => message.to_string(),
            }
        }
    };
    ConfigError::Parse {
        path: origin.to_string(),
        detail,
    }
}

/// "an integer", "a string": TOML's type names with their article.
fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

fn env_value(raw: &str, like: &toml::Value) -> Option<toml::Value> {
    Some(match like {
        toml::Value::Integer(_) => toml::Value::Integer(raw.trim().parse().ok()?),
        toml::Value::Boolean(_) => toml::Value::Boolean(raw.trim().parse().ok()?),
        toml::Value::Float(_) => toml::Value::Float(raw.trim().parse().ok()?),
        _ => toml::Value::String(raw.to_string()),
    })
}

#[cfg(test)]
mod tests {
    /// Regression: a duplicate key named neither the key nor the line, a value of the wrong
    /// type named no key, and a bad variable said "expected a integer".
    #[test]
    fn errors_name_the_line_the_key_and_read_well() {
        let dup = "[server]\nlisten = \"0.0.0.0:8443\"\nlisten = \"0.0.0.0:9443\"\n";
        let e = Config::from_parts(dup, "lanbox.toml", Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("duplicate key") && e.contains("`listen`"),
            "{e}"
        );
        let wrong = "[store]\ncache_mb = \"lots\"\n";
        let e = Config::from_parts(wrong, "lanbox.toml", Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("store.cache_mb"), "{e}");
        let env = vec![("LANBOX_STORE_CACHE_MB".to_string(), "lots".to_string())];
        let e = Config::from_parts("", "lanbox.toml", env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("LANBOX_STORE_CACHE_MB") && e.contains("expected an integer"),
            "{e}"
        );
    }

    use super::*;

    #[test]
    fn file_env_and_unknown_keys() {
        let text = "[store]\ncache_mb = 32\nbogus = 1\n[nope]\nx = 1\n";
        let env = vec![
            ("LANBOX_STORE_CIPHER".to_string(), "chacha20-poly1305".to_string()),
            ("LANBOX_STORE_CACHE_MB".to_string(), "48".to_string()),
            ("LANBOX_WHAT".to_string(), "1".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let l = Config::from_parts(text, "t.toml", env).unwrap();
        assert_eq!(l.config.store.cache_mb, 48, "environment wins over the file");
        assert_eq!(l.config.store.cipher, "chacha20-poly1305");
        assert_eq!(l.warnings.len(), 3, "{:?}", l.warnings);
        assert!(l.warnings.iter().any(|w| w.contains("store.bogus")));
    }

    #[test]
    fn the_telegram_app_is_checked_and_set_from_the_environment() {
        let hash = "0123456789abcdef0123456789ABCDEF";
        let env = vec![
            ("LANBOX_TELEGRAM_API_ID".to_string(), "12345".to_string()),
            ("LANBOX_TELEGRAM_API_HASH".to_string(), hash.to_string()),
        ];
        let l = Config::from_parts("", "t", env).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let app = l.config.telegram_app().unwrap().unwrap();
        assert_eq!((app.api_id, app.api_hash.as_str()), (12345, hash));
        assert!(app.endpoint == crate::channels::mtproto::Endpoint::Telegram);
        assert!(
            Config::default().telegram_app().unwrap().is_none(),
            "none by default"
        );
        let key = "ab".repeat(256);
        let sim = format!(
            "[telegram]\napi_id = 1\napi_hash = \"{hash}\"\ndev_simulator = \"127.0.0.1:4242\"\ndev_simulator_key = \"{key}\"\n"
        );
        let app = Config::from_parts(&sim, "t", Vec::new())
            .unwrap()
            .config
            .telegram_app()
            .unwrap()
            .unwrap();
        assert!(
            matches!(app.endpoint, crate::channels::mtproto::Endpoint::Preshared { auth_key, .. } if auth_key[0] == 0xab)
        );
        let env = vec![
            ("LANBOX_TELEGRAM_API_ID".to_string(), "12345".to_string()),
            ("LANBOX_TELEGRAM_API_HASH".to_string(), hash.to_string()),
            ("LANBOX_TELEGRAM_TEST_SERVERS".to_string(), "true".to_string()),
        ];
        let app = Config::from_parts("", "t", env).unwrap().config.telegram_app();
        assert!(app.unwrap().unwrap().endpoint == crate::channels::mtproto::Endpoint::TestServers);
        let both = format!("{sim}test_servers = true\n");
        let e = Config::from_parts(&both, "t", Vec::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("telegram.test_servers"), "{e}");
        for (text, key) in [
            ("[telegram]\napi_id = 1\n", "telegram.api_id"),
            ("[telegram]\napi_id = -1\n", "telegram.api_id"),
            (
                "[telegram]\napi_id = 1\napi_hash = \"secretsecret\"\n",
                "telegram.api_hash",
            ),
            (
                "[telegram]\ndev_simulator = \"127.0.0.1:1\"\n",
                "telegram.dev_simulator",
            ),
        ] {
            let e = Config::from_parts(text, "t", Vec::new()).unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
            assert!(!e.contains("secretsecret"), "the hash is not repeated: {e}");
        }
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let e = Config::from_parts("[store]\ncipher = \"rot13\"\n", "t", Vec::new()).unwrap_err();
        assert!(e.to_string().contains("store.cipher"), "{e}");
        let e =
            Config::from_parts("", "t", vec![("LANBOX_STORE_CACHE_MB".into(), "lots".into())]).unwrap_err();
        assert!(e.to_string().contains("LANBOX_STORE_CACHE_MB"), "{e}");
        assert!(Config::from_parts("[store\n", "t", Vec::new()).is_err());
        let d = Config::from_parts(&Config::default_file(), "t", Vec::new()).unwrap();
        assert_eq!(d.config, Config::default());
        assert!(d.warnings.is_empty());
    }
}
