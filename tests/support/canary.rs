//! Plaintext at rest: every file under a directory, read raw, searched for needles (message
//! text, file contents, tokens) that may only ever be stored sealed.

use std::io::ErrorKind;
use std::path::Path;

/// Searches every file under `dir` for each of `needles`, pushing `"PATH contains NEEDLE"` to
/// `hits` for each find; returns how many files it read. A file or directory that disappears
/// while the scan runs (a background worker's) is skipped; any other read error fails.
pub fn scan<N: AsRef<[u8]>>(dir: &Path, needles: &[N], hits: &mut Vec<String>) -> usize {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return 0,
        Err(e) => panic!("reading {}: {e}", dir.display()),
    };
    let mut files = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files += scan(&path, needles, hits);
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => panic!("reading {}: {e}", path.display()),
        };
        files += 1;
        for n in needles {
            let n = n.as_ref();
            if !n.is_empty() && bytes.windows(n.len()).any(|w| w == n) {
                hits.push(format!(
                    "{} contains {}",
                    path.display(),
                    String::from_utf8_lossy(n)
                ));
            }
        }
    }
    files
}

/// Asserts that some file under `dir` was read and none holds any of `needles`.
pub fn assert_absent<N: AsRef<[u8]>>(dir: &Path, needles: &[N]) {
    let mut hits = Vec::new();
    let files = scan(dir, needles, &mut hits);
    assert!(files > 0, "nothing scanned in {}", dir.display());
    assert!(hits.is_empty(), "plaintext at rest: {hits:?}");
}

/// Whether any file under `dir` holds `needle`.
pub fn found(dir: &Path, needle: impl AsRef<[u8]>) -> bool {
    let mut hits = Vec::new();
    scan(dir, &[needle], &mut hits);
    !hits.is_empty()
}
