//! The box's update, as the System page drives it: a bundle staged on the data partition,
//! checked by RAUC, installed into the other slot with progress over the WebSocket, then a
//! reboot when an admin confirms ([`crate::system::update`] makes the RAUC calls).
//!
//! One bundle at a time lives in `DIR/update/bundle.raucb` (the data partition survives
//! updates; the bundle is removed once installed or discarded). After an install,
//! `DIR/update/last.json` records what went into which slot, so after the reboot the page can
//! say whether the box runs the new version or came back on the old one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::live::{Ephemeral, Hub};
use crate::system::update::{self, BundleInfo, Progress, UpdateError, UpdateOptions};

/// The staged bundle's file name under `DIR/update`.
pub const BUNDLE: &str = "bundle.raucb";
const LAST: &str = "last.json";

/// Where an install stands.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Install {
    /// `idle`, `installing`, `installed` (reboot to use it) or `failed`.
    pub state: &'static str,
    pub percent: u8,
    pub message: String,
    pub error: Option<String>,
}

impl Install {
    fn idle() -> Install {
        Install {
            state: "idle",
            percent: 0,
            message: String::new(),
            error: None,
        }
    }
}

/// What the last install wrote, kept across the reboot.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Last {
    version: String,
    /// Bootname of the slot written (`B`).
    slot: Option<String>,
    /// Bootname of the slot running when it was written.
    from: Option<String>,
    at: i64,
    /// The kernel's boot ID when it was written: the outcome is known only after a reboot.
    #[serde(default)]
    boot: String,
}

/// This boot's ID (`/proc/sys/kernel/random/boot_id`; empty where there is none).
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

struct State {
    staged: Option<BundleInfo>,
    install: Install,
}

/// Updates of this box. Cheap to clone.
#[derive(Clone)]
pub struct Updates {
    opts: Arc<UpdateOptions>,
    dir: PathBuf,
    hub: Hub,
    state: Arc<Mutex<State>>,
}

impl Updates {
    pub fn new(opts: UpdateOptions, data_dir: &Path, hub: Hub) -> Updates {
        let dir = data_dir.join("update");
        // A staged bundle or a broken-off upload does not outlive the process: uploaded again,
        // it is checked again. (`last.json` stays: it says how the last update went.)
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(BUNDLE) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Updates {
            opts: Arc::new(opts),
            dir,
            hub,
            state: Arc::new(Mutex::new(State {
                staged: None,
                install: Install::idle(),
            })),
        }
    }

    pub fn options(&self) -> &UpdateOptions {
        &self.opts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A file of its own for an upload, written before it is checked (two admins uploading at
    /// once do not write into the same file).
    pub async fn prepare_upload(&self) -> Result<PathBuf, UpdateError> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if self.lock().install.state == "installing" {
            return Err(UpdateError::Refused("an install is running".into()));
        }
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| UpdateError::Io(format!("{}: {e}", self.dir.display())))?;
        Ok(self.dir.join(format!("{BUNDLE}.{n}.part")))
    }

    /// Checks an uploaded bundle (signature, board, version) and stages it; a refused one is
    /// deleted and nothing else changes.
    pub async fn stage(&self, uploaded: &Path) -> Result<BundleInfo, UpdateError> {
        let checked = async {
            let info = update::info(&self.opts, uploaded).await?;
            match update::status(&self.opts).await {
                Ok(system) => update::check_takes(&system, &info)?,
                // Checked and signed, but this system cannot install: said by `status`.
                Err(UpdateError::NotAvailable(_)) => {}
                Err(e) => return Err(e),
            }
            Ok(info)
        }
        .await;
        let info = match checked {
            Ok(info) => info,
            Err(e) => {
                let _ = tokio::fs::remove_file(uploaded).await;
                return Err(e);
            }
        };
        let mut st = self.lock();
        if st.install.state == "installing" {
            return Err(UpdateError::Refused("an install is running".into()));
        }
        std::fs::rename(uploaded, self.dir.join(BUNDLE)).map_err(|e| UpdateError::Io(e.to_string()))?;
        st.staged = Some(info.clone());
        st.install = Install::idle();
        Ok(info)
    }

    /// Removes the staged bundle.
    pub async fn discard(&self) -> Result<(), UpdateError> {
        let mut st = self.lock();
        if st.install.state == "installing" {
            return Err(UpdateError::Refused("an install is running".into()));
        }
        st.staged = None;
        st.install = Install::idle();
        match std::fs::remove_file(self.dir.join(BUNDLE)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(UpdateError::Io(e.to_string())),
        }
    }

    /// The System page's view: the slots, the staged bundle, the install, the last update.
    pub async fn status(&self) -> Value {
        let system = update::status(&self.opts).await;
        let (staged, install) = {
            let st = self.lock();
            (st.staged.clone(), st.install.clone())
        };
        let last: Option<Last> = std::fs::read(self.dir.join(LAST))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let (available, reason, system) = match system {
            Ok(s) => (true, None, Some(s)),
            Err(UpdateError::NotAvailable(why)) => (false, Some(why), None),
            Err(e) => (false, Some(e.to_string()), None),
        };
        // Before the reboot: the same boot, or (where the boot ID cannot be read) this very
        // process installed it. An empty ID never counts as "the same boot".
        let now = boot_id();
        let same_boot = |l: &Last| {
            if l.boot.is_empty() || now.is_empty() {
                install.state == "installed"
            } else {
                l.boot == now
            }
        };
        let outcome = match (&last, &system) {
            (Some(l), _) if same_boot(l) => Some("waiting_for_reboot"),
            (Some(l), Some(s)) => Some(match (&l.slot, &s.booted) {
                (Some(slot), Some(booted)) if slot == booted => "running",
                (_, Some(booted)) if l.from.as_ref() == Some(booted) => "rolled_back",
                _ => "unknown",
            }),
            _ => None,
        };
        let target = system.as_ref().and_then(|s| s.target().cloned());
        json!({
            "available": available,
            "max_bundle": self.opts.max_bundle,
            "reason": reason,
            "system": system,
            "target": target,
            "bundle": staged,
            "install": install,
            "last": last.map(|l| json!({"version": l.version, "slot": l.slot, "from": l.from, "at": l.at, "outcome": outcome})),
        })
    }

    fn set_install(&self, install: Install) {
        self.hub.publish(Ephemeral::UpdateProgress {
            state: install.state,
            percent: install.percent,
            message: install.message.clone(),
            error: install.error.clone(),
        });
        self.lock().install = install;
    }

    /// Starts installing the staged bundle; progress goes to the admins' live clients.
    pub fn install(&self) -> Result<(), UpdateError> {
        let version = {
            let mut st = self.lock();
            let Some(info) = st.staged.clone() else {
                return Err(UpdateError::Refused(
                    "no bundle is staged: upload one first".into(),
                ));
            };
            if st.install.state == "installing" {
                return Err(UpdateError::Refused("an install is running".into()));
            }
            st.install = Install {
                state: "installing",
                percent: 0,
                message: "starting".into(),
                error: None,
            };
            info.version
        };
        let this = self.clone();
        tokio::spawn(async move {
            let bundle = this.dir.join(BUNDLE);
            let before = update::status(&this.opts).await.ok();
            let p = this.clone();
            let result = update::install(&this.opts, &bundle, move |Progress { percent, message }| {
                p.set_install(Install {
                    state: "installing",
                    percent,
                    message,
                    error: None,
                });
            })
            .await;
            match result {
                Ok(()) => {
                    let last = Last {
                        version,
                        slot: before
                            .as_ref()
                            .and_then(|s| s.target())
                            .and_then(|t| t.bootname.clone()),
                        from: before.as_ref().and_then(|s| s.booted.clone()),
                        at: crate::store::ctx::unix_now(),
                        boot: boot_id(),
                    };
                    if let Ok(b) = serde_json::to_vec(&last) {
                        let _ = std::fs::write(this.dir.join(LAST), b);
                    }
                    let _ = std::fs::remove_file(&bundle);
                    this.lock().staged = None;
                    tracing::info!(version = %last.version, "update installed; the new slot boots after a reboot");
                    this.set_install(Install {
                        state: "installed",
                        percent: 100,
                        message: "installed: reboot to use it".into(),
                        error: None,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "update install failed");
                    this.set_install(Install {
                        state: "failed",
                        percent: 0,
                        message: "the install failed; nothing changed on the running slot".into(),
                        error: Some(e.to_string()),
                    });
                }
            }
        });
        Ok(())
    }

    /// Reboots (after the answer has gone out), once an install is done.
    pub fn reboot(&self) -> Result<(), UpdateError> {
        if self.lock().install.state != "installed" {
            return Err(UpdateError::Refused("nothing is installed to reboot into".into()));
        }
        let opts = self.opts.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            tracing::info!("rebooting into the updated slot");
            if let Err(e) = update::reboot(&opts).await {
                tracing::error!(error = %e, "reboot failed");
            }
        });
        Ok(())
    }
}
