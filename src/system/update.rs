//! Updating the box with RAUC: what lanbox asks of it, through its command line.
//!
//! lanbox does not write its own updater. RAUC checks a bundle's signature against the
//! keyring of the running image, installs it into the slot that is not booted, and switches
//! the bootloader to try it once; `lanbox update mark-good` ([`super::ota`]) keeps it after a
//! healthy boot, and the bootloader falls back by itself otherwise. This module wraps the
//! four calls lanbox makes: `rauc info` (is this bundle signed by our key, for this board, and
//! what is in it), `rauc status` (the slots, their versions, which one booted), `rauc install`
//! (with its progress lines) and the reboot.
//!
//! lanbox adds one rule RAUC leaves to the integrator: versions only go up. A bundle whose
//! version is not newer than the booted slot's is refused before RAUC is asked to install it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// How lanbox reaches RAUC (`[update]` in the configuration).
#[derive(Clone, Debug)]
pub struct UpdateOptions {
    /// The `rauc` program.
    pub rauc: PathBuf,
    /// A keyring other than the one in RAUC's system configuration (tests; boxes never set it).
    pub keyring: Option<PathBuf>,
    /// A RAUC system configuration other than `/etc/rauc/system.conf`.
    pub conf: Option<PathBuf>,
    /// Largest bundle accepted, bytes.
    pub max_bundle: u64,
    /// The command that reboots the box, when an admin confirms.
    pub reboot: Vec<String>,
}

impl Default for UpdateOptions {
    fn default() -> Self {
        UpdateOptions {
            rauc: "rauc".into(),
            keyring: None,
            conf: None,
            max_bundle: 1 << 30,
            reboot: vec!["systemctl".into(), "reboot".into()],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// RAUC is not installed or this system has no A/B slots (a .deb install, a laptop).
    #[error("updates are not available on this system: {0}")]
    NotAvailable(String),
    /// The bundle is not one this box takes (signature, board, version); nothing was touched.
    #[error("{0}")]
    Refused(String),
    #[error("the bundle is larger than this box accepts ({max} bytes)")]
    TooLarge { max: u64 },
    /// RAUC ran and failed.
    #[error("rauc: {0}")]
    Rauc(String),
    #[error("{0}")]
    Io(String),
}

/// What a bundle says about itself, once RAUC has checked its signature.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BundleInfo {
    pub compatible: String,
    pub version: String,
    pub description: Option<String>,
    pub build: Option<String>,
    /// The slot classes it writes (`rootfs`, ...).
    pub images: Vec<String>,
}

/// One slot as `rauc status` reports it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Slot {
    /// RAUC's name (`rootfs.0`).
    pub name: String,
    pub class: String,
    /// The bootloader's name for it (`A`, `B`).
    pub bootname: Option<String>,
    /// `booted`, `active` or `inactive`.
    pub state: String,
    /// `good` or `bad`, as the bootloader has it.
    pub boot_status: Option<String>,
    /// Version of the bundle last installed into it.
    pub version: Option<String>,
    pub installed_at: Option<String>,
}

/// The system as `rauc status` reports it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SystemStatus {
    pub compatible: String,
    /// The booted slot's bootname (`A`).
    pub booted: Option<String>,
    /// The slot the bootloader starts next.
    pub boot_primary: Option<String>,
    pub slots: Vec<Slot>,
}

impl SystemStatus {
    /// The booted root filesystem's version, if RAUC recorded one (it has none for the slot a
    /// freshly flashed box booted: RAUC did not write it).
    pub fn booted_version(&self) -> Option<&str> {
        self.slots
            .iter()
            .find(|s| s.state == "booted" && s.class == "rootfs")
            .and_then(|s| s.version.as_deref())
    }

    /// The running version: RAUC's record of the booted slot, else the image's own
    /// `IMAGE_VERSION` (`/etc/os-release`, as image/ writes it).
    pub fn running_version(&self) -> Option<String> {
        self.booted_version().map(str::to_string).or_else(|| {
            ["/etc/os-release", "/usr/lib/os-release"]
                .iter()
                .find_map(|p| image_version(&std::fs::read_to_string(p).ok()?))
        })
    }

    /// The root filesystem slot an install writes: the one not booted.
    pub fn target(&self) -> Option<&Slot> {
        self.slots
            .iter()
            .find(|s| s.class == "rootfs" && s.state != "booted")
    }
}

fn command(opts: &UpdateOptions) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(&opts.rauc);
    if let Some(conf) = &opts.conf {
        c.arg(format!("--conf={}", conf.display()));
    }
    if let Some(k) = &opts.keyring {
        c.arg(format!("--keyring={}", k.display()));
    }
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// RAUC's complaint, cut to its last line that says something (RAUC prints what it tried first).
fn complaint(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("failed without a message");
    line.chars().take(300).collect()
}

async fn run_json(opts: &UpdateOptions, args: &[&str]) -> Result<Value, UpdateError> {
    let out = command(opts)
        .args(args)
        .output()
        .await
        .map_err(|e| UpdateError::NotAvailable(format!("{}: {e}", opts.rauc.display())))?;
    if !out.status.success() {
        return Err(UpdateError::Rauc(complaint(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| UpdateError::Rauc(format!("unreadable output: {e}")))
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// Checks `bundle`'s signature (against the keyring) and reads its manifest.
pub async fn info(opts: &UpdateOptions, bundle: &Path) -> Result<BundleInfo, UpdateError> {
    let path = bundle.to_string_lossy().into_owned();
    let v = run_json(opts, &["info", "--output-format=json", &path])
        .await
        .map_err(|e| match e {
            UpdateError::Rauc(m) => UpdateError::Refused(format!("the bundle was refused: {m}")),
            e => e,
        })?;
    let images = v
        .get("images")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.as_object()?.keys().next().cloned())
                .collect()
        })
        .unwrap_or_default();
    Ok(BundleInfo {
        compatible: text(&v, "compatible").unwrap_or_default(),
        version: text(&v, "version").unwrap_or_default(),
        description: text(&v, "description"),
        build: text(&v, "build"),
        images,
    })
}

/// The slots and which one booted. [`UpdateError::NotAvailable`] when RAUC is missing or this
/// system has no slots.
pub async fn status(opts: &UpdateOptions) -> Result<SystemStatus, UpdateError> {
    let v = run_json(opts, &["status", "--detailed", "--output-format=json"])
        .await
        .map_err(|e| match e {
            UpdateError::Rauc(m) => UpdateError::NotAvailable(m),
            e => e,
        })?;
    Ok(parse_status(&v))
}

/// `rauc status --output-format=json`: `slots` is a list of one-key objects, name -> details.
fn parse_status(v: &Value) -> SystemStatus {
    let mut slots = Vec::new();
    for entry in v.get("slots").and_then(Value::as_array).into_iter().flatten() {
        let Some((name, s)) = entry.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let bundle = s.pointer("/slot_status/bundle");
        slots.push(Slot {
            name: name.clone(),
            class: text(s, "class").unwrap_or_default(),
            bootname: text(s, "bootname"),
            state: text(s, "state").unwrap_or_default(),
            boot_status: text(s, "boot_status"),
            version: bundle.and_then(|b| text(b, "version")),
            installed_at: s
                .pointer("/slot_status/installed/timestamp")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    SystemStatus {
        compatible: text(v, "compatible").unwrap_or_default(),
        booted: text(v, "booted"),
        boot_primary: text(v, "boot_primary"),
        slots,
    }
}

/// Whether version `new` is later than `old`: numbers compared as numbers, part by part
/// (`2026.12.10` > `2026.12.9`; `1.2` < `1.2.1`); anything else compared as text.
pub fn is_newer(new: &str, old: &str) -> bool {
    fn parts(v: &str) -> Vec<Result<u64, String>> {
        v.split(['.', '-', '+', '_'])
            .map(|p| p.parse::<u64>().map_err(|_| p.to_string()))
            .collect()
    }
    let (a, b) = (parts(new), parts(old));
    for i in 0..a.len().max(b.len()) {
        let ord = match (a.get(i), b.get(i)) {
            (Some(Ok(x)), Some(Ok(y))) => x.cmp(y),
            (Some(x), Some(y)) => format!("{x:?}").cmp(&format!("{y:?}")),
            (Some(_), None) => std::cmp::Ordering::Greater,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (None, None) => std::cmp::Ordering::Equal,
        };
        if ord != std::cmp::Ordering::Equal {
            return ord == std::cmp::Ordering::Greater;
        }
    }
    false
}

/// `IMAGE_VERSION` of an os-release file's text (quotes removed).
fn image_version(os_release: &str) -> Option<String> {
    os_release.lines().find_map(|l| {
        let v = l.strip_prefix("IMAGE_VERSION=")?.trim().trim_matches(['"', '\'']);
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// Whether this system takes `bundle`: same board (`compatible`), a newer version than the
/// booted one (when RAUC knows it).
pub fn check_takes(system: &SystemStatus, bundle: &BundleInfo) -> Result<(), UpdateError> {
    if !system.compatible.is_empty() && bundle.compatible != system.compatible {
        return Err(UpdateError::Refused(format!(
            "the bundle is for `{}`, this box is `{}`",
            bundle.compatible, system.compatible
        )));
    }
    if let Some(current) = system.running_version()
        && !is_newer(&bundle.version, &current)
    {
        return Err(UpdateError::Refused(format!(
            "the bundle's version {} is not newer than the running {current}: downgrades are refused",
            bundle.version
        )));
    }
    Ok(())
}

/// One step of an install: RAUC's percentage and what it is doing.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Progress {
    pub percent: u8,
    pub message: String,
}

/// A progress line of `rauc install` (`" 40% Copying image to rootfs.1"`).
fn progress_line(line: &str) -> Option<Progress> {
    let (n, rest) = line.trim().split_once('%')?;
    let percent = n.trim().parse::<u8>().ok()?.min(100);
    Some(Progress {
        percent,
        message: rest.trim().chars().take(200).collect(),
    })
}

/// Installs `bundle` into the other slot, calling `on_progress` with each step RAUC reports.
/// On success the bootloader tries the new slot on the next boot.
pub async fn install(
    opts: &UpdateOptions,
    bundle: &Path,
    mut on_progress: impl FnMut(Progress),
) -> Result<(), UpdateError> {
    let mut child = command(opts)
        .arg("install")
        .arg(bundle)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| UpdateError::NotAvailable(format!("{}: {e}", opts.rauc.display())))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    // stderr is read alongside, so a chatty RAUC never blocks on a full pipe.
    let errors = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut kept = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            if let Some(p) = progress_line(&l) {
                kept.push(format!("{}% {}", p.percent, p.message));
            } else if !l.trim().is_empty() {
                kept.push(l);
            }
            if kept.len() > 20 {
                kept.remove(0);
            }
        }
        kept
    });
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        if let Some(p) = progress_line(&l) {
            on_progress(p);
        }
    }
    let status = child.wait().await.map_err(|e| UpdateError::Io(e.to_string()))?;
    let errors = errors.await.unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(UpdateError::Rauc(complaint(errors.join("\n").as_bytes())))
    }
}

/// Runs the configured reboot command.
pub async fn reboot(opts: &UpdateOptions) -> Result<(), UpdateError> {
    let Some((program, args)) = opts.reboot.split_first() else {
        return Err(UpdateError::NotAvailable(
            "no reboot command is configured".into(),
        ));
    };
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| UpdateError::Io(format!("{program}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(UpdateError::Io(format!("{program}: {}", complaint(&out.stderr))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert!(is_newer("2026.12.10", "2026.12.9"));
        assert!(is_newer("1.2.1", "1.2"));
        assert!(!is_newer("1.2", "1.2"));
        assert!(!is_newer("1.1.9", "1.2"));
        assert!(is_newer("2", "1.99"));
    }

    #[test]
    fn image_version_from_os_release() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nIMAGE_ID=lanbox\nIMAGE_VERSION=\"0.1.0.1796489909\"\n";
        assert_eq!(image_version(text).as_deref(), Some("0.1.0.1796489909"));
        assert_eq!(image_version("ID=debian\n"), None);
    }

    #[test]
    fn progress_lines_parse() {
        assert_eq!(
            progress_line(" 40% Copying image to rootfs.1"),
            Some(Progress {
                percent: 40,
                message: "Copying image to rootfs.1".into()
            })
        );
        assert_eq!(progress_line("installing"), None);
    }

    #[test]
    fn status_json_of_rauc() {
        // The shape of `rauc status --detailed --output-format=json` (RAUC 1.13).
        let v: Value = serde_json::from_str(
            r#"{"compatible":"lanbox-qemu-aarch64","variant":"","booted":"A","boot_primary":"rootfs.0",
            "slots":[{"rootfs.0":{"class":"rootfs","device":"/dev/vda2","type":"ext4","bootname":"A",
            "state":"booted","parent":null,"mountpoint":"/","boot_status":"good",
            "slot_status":{"bundle":{"compatible":"lanbox-qemu-aarch64","version":"2026.12.1"},
            "installed":{"timestamp":"2026-12-01T10:00:00Z","count":1}}}},
            {"rootfs.1":{"class":"rootfs","device":"/dev/vda3","type":"ext4","bootname":"B",
            "state":"inactive","parent":null,"mountpoint":null,"boot_status":"good","slot_status":{}}}]}"#,
        )
        .unwrap();
        let s = parse_status(&v);
        assert_eq!(s.booted.as_deref(), Some("A"));
        assert_eq!(s.booted_version(), Some("2026.12.1"));
        assert_eq!(s.target().map(|t| t.name.as_str()), Some("rootfs.1"));
        let older = BundleInfo {
            compatible: "lanbox-qemu-aarch64".into(),
            version: "2026.11.30".into(),
            description: None,
            build: None,
            images: vec!["rootfs".into()],
        };
        assert!(matches!(check_takes(&s, &older), Err(UpdateError::Refused(_))));
        let newer = BundleInfo {
            version: "2026.12.2".into(),
            ..older.clone()
        };
        assert!(check_takes(&s, &newer).is_ok());
        let other = BundleInfo {
            compatible: "lanbox-rpi4".into(),
            ..newer
        };
        assert!(matches!(check_takes(&s, &other), Err(UpdateError::Refused(_))));
    }
}
