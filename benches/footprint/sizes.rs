//! Binary sizes: the binary under test, and the ARM builds that `scripts/build-arm.sh` leaves
//! in a target directory (its stripped `dist/TRIPLE/lanbox`, else `TRIPLE/release/lanbox`
//! stripped into a temporary copy). Nothing is built here: an ARM build takes 15+ minutes.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Res;
use super::stores::file_size;

pub const ARM_TRIPLES: &[&str] = &["aarch64-unknown-linux-musl", "armv7-unknown-linux-musleabihf"];

/// One binary on disk.
pub struct Binary {
    pub path: PathBuf,
    pub bytes: u64,
    /// After `llvm-strip`/`strip` of a copy (the same as `bytes` when already stripped);
    /// `None` when no strip tool worked.
    pub stripped: Option<u64>,
    /// `static`, `static-pie`, `dynamic` or `not ELF`.
    pub linking: &'static str,
    /// Seconds since the epoch of the last modification.
    pub modified: u64,
}

pub fn describe(path: &Path, scratch: &Path) -> Res<Binary> {
    let modified = std::fs::metadata(path)?
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    Ok(Binary {
        path: path.to_path_buf(),
        bytes: file_size(path),
        stripped: stripped_size(path, scratch),
        linking: linking(path)?,
        modified,
    })
}

/// The ARM binaries found in `dirs` (target directories), newest first per triple.
pub fn arm_builds(dirs: &[PathBuf], scratch: &Path) -> Vec<(String, Binary)> {
    let mut out = Vec::new();
    for triple in ARM_TRIPLES {
        let mut found: Vec<Binary> = dirs
            .iter()
            .flat_map(|d| {
                [
                    d.join("dist").join(triple).join("lanbox"),
                    d.join(triple).join("release/lanbox"),
                ]
            })
            .filter(|p| p.is_file())
            .filter_map(|p| describe(&p, scratch).ok())
            .collect();
        found.sort_by_key(|b| std::cmp::Reverse(b.modified));
        if let Some(b) = found.into_iter().next() {
            out.push((triple.to_string(), b));
        }
    }
    out
}

fn stripped_size(path: &Path, scratch: &Path) -> Option<u64> {
    std::fs::create_dir_all(scratch).ok()?;
    let copy = scratch.join("stripped");
    for tool in ["llvm-strip", "strip"] {
        let _ = std::fs::remove_file(&copy);
        let ok = Command::new(tool)
            .arg("-o")
            .arg(&copy)
            .arg(path)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            let n = file_size(&copy);
            let _ = std::fs::remove_file(&copy);
            return Some(n);
        }
    }
    None
}

/// Static or dynamic, from the ELF program headers: a `PT_INTERP` entry means the kernel hands
/// the binary to a dynamic loader; `PT_DYNAMIC` alone is a static PIE (relocates itself).
fn linking(path: &Path) -> Res<&'static str> {
    let b = std::fs::read(path)?;
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return Ok("not ELF");
    }
    let is64 = b[4] == 2;
    let le = b[5] == 1;
    let rd = |at: usize, n: usize| -> u64 {
        let bytes = &b[at..at + n];
        let mut v = 0u64;
        for i in 0..n {
            let byte = if le { bytes[n - 1 - i] } else { bytes[i] };
            v = (v << 8) | u64::from(byte);
        }
        v
    };
    let (phoff, phentsize, phnum) = if is64 {
        (rd(0x20, 8) as usize, rd(0x36, 2) as usize, rd(0x38, 2) as usize)
    } else {
        (rd(0x1c, 4) as usize, rd(0x2a, 2) as usize, rd(0x2c, 2) as usize)
    };
    let (mut interp, mut dynamic) = (false, false);
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        if at + 4 > b.len() {
            break;
        }
        match rd(at, 4) {
            2 => dynamic = true, // PT_DYNAMIC
            3 => interp = true,  // PT_INTERP
            _ => {}
        }
    }
    Ok(match (interp, dynamic) {
        (true, _) => "dynamic",
        (false, true) => "static-pie",
        (false, false) => "static",
    })
}
