//! The `lanbox` binary: `init` creates the data directory, `serve` starts on it and stops
//! cleanly on SIGTERM.

mod support;

use std::process::Stdio;

use support::binary::{self, Serving};

#[test]
fn init_creates_key_config_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = binary::command(&["init"], &data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in ["lanbox.redb", "master.key", "lanbox.toml"] {
        assert!(data.join(f).exists(), "{f} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key = std::fs::read(data.join("master.key")).unwrap();
    // A second init keeps the existing key.
    let out = binary::command(&["init"], &data).output().unwrap();
    assert!(out.status.success());
    assert_eq!(std::fs::read(data.join("master.key")).unwrap(), key);
}

#[test]
fn unknown_config_keys_warn_and_bad_values_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lanbox.toml"),
        "[store]\ncache_mb = 16\ncolour = \"blue\"\n",
    )
    .unwrap();
    let out = binary::command(&["init"], dir.path()).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.colour"));

    let out = binary::command(&["init"], dir.path())
        .env("LANBOX_STORE_CACHE_MB", "huge")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LANBOX_STORE_CACHE_MB"));
}

#[cfg(unix)]
#[test]
fn serve_starts_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(binary::command(&["serve"], dir.path()).stderr(Stdio::null()));
    let status = serving.stop();
    assert!(status.success(), "{status:?}");
}

/// The packaged /etc/lanbox/lanbox.toml (in scripts/build-deb.sh) must stay a valid, complete
/// configuration: it parses without warnings and equals the defaults.
#[test]
fn packaged_config_matches_the_defaults() {
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/build-deb.sh")).unwrap();
    let start = script.find("lanbox.toml\" <<'EOF'\n").expect("heredoc") + "lanbox.toml\" <<'EOF'\n".len();
    let body = &script[start..start + script[start..].find("\nEOF\n").unwrap()];
    let loaded = lanbox::config::Config::from_parts(body, "package", Vec::new()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config, lanbox::config::Config::default());
}

#[test]
fn lanbox_config_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc.toml");
    std::fs::write(&etc, "[store]\ncache_mb = 16\nfrom_etc = 1\n").unwrap();
    let out = binary::command(&["init"], &dir.path().join("data"))
        .env("LANBOX_CONFIG", &etc)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("store.from_etc"),
        "the named file was read"
    );
    assert!(
        !dir.path().join("data/lanbox.toml").exists(),
        "no second config written"
    );
}
