//! `lanbox account add-user` against the MTProto simulator: the binary takes the box's
//! Telegram application and the simulator's address from `LANBOX_TELEGRAM_*`, asks for the
//! code (a wrong one first) and the 2FA password (a wrong one first) on standard input, and
//! adds a user account that `account list` shows and `account remove` logs out on Telegram.
//! Without an application it says what to configure. `lanbox dev mtproto-sim` prints what
//! points a box at it.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use lanbox::dev::mtproto::{MtSimConfig, MtSimulator};
use support::binary;

const PASSWORD: &str = "correct horse battery staple";

fn with_app(mut c: Command, sim: &MtSimulator) -> Command {
    let key: String = sim.auth_key().iter().map(|b| format!("{b:02x}")).collect();
    c.env("LANBOX_TELEGRAM_API_ID", "12345")
        .env("LANBOX_TELEGRAM_API_HASH", "0123456789abcdef0123456789abcdef")
        .env("LANBOX_TELEGRAM_DEV_SIMULATOR", sim.addr().to_string())
        .env("LANBOX_TELEGRAM_DEV_SIMULATOR_KEY", key)
        .env_remove("LANBOX_TELEGRAM_PASSWORD");
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_user_asks_for_the_code_and_the_password_and_remove_logs_out() {
    let sim = MtSimulator::start(MtSimConfig {
        password: Some(PASSWORD.into()),
        ..MtSimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();

    // Without [telegram], the command says what is missing.
    let out = binary::output(binary::command(
        &["account", "add-user", "--phone", "+1 555 0100"],
        &data,
    ))
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("api_id") && err.contains("api_hash"), "{err}");

    let mut c = with_app(
        binary::command(
            &["account", "add-user", "--phone", "+1 555 0100", "--name", "Sales"],
            &data,
        ),
        &sim,
    );
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // The code exists once the binary has asked Telegram for it.
    let code = support::poll::until_ok(Duration::from_secs(30), || async {
        sim.login_code()
            .ok_or_else(|| "no code asked for yet".to_string())
    })
    .await;
    let wrong = if code == "00000" { "11111" } else { "00000" };
    let mut stdin = child.stdin.take().unwrap();
    write!(stdin, "{wrong}\n{code}\nnot the password\n{PASSWORD}\n").unwrap();
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", binary::describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("Sales") && stdout.contains(&sim.me().id.to_string()),
        "{stdout}"
    );
    assert!(stderr.contains("the code is wrong; try again"), "{stderr}");
    assert!(
        stderr.contains("the 2FA password is wrong; try again"),
        "{stderr}"
    );
    for secret in [code.as_str(), PASSWORD, "15550100"] {
        assert!(!stderr.contains(secret), "{secret:?} in the output: {stderr}");
    }
    assert!(sim.authorized());

    let listed = binary::output(binary::command(&["account", "list", "--json"], &data)).await;
    let listed = String::from_utf8(listed.stdout).unwrap();
    let user: serde_json::Value = listed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "user")
        .unwrap_or_else(|| panic!("no user account listed: {listed}"));
    assert_eq!(
        (user["name"].as_str(), user["signed_in"].as_bool()),
        (Some("Sales"), Some(true))
    );
    let id = user["id"].to_string();

    let out = binary::output(binary::command(
        &["account", "update", &id, "--name", "Support", "--rented", "true"],
        &data,
    ))
    .await;
    assert!(out.status.success(), "{}", binary::describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Support"),
        "{}",
        binary::describe(&out)
    );

    let out = binary::output(binary::command(&["account", "remove", &id], &data)).await;
    assert!(out.status.success(), "{}", binary::describe(&out));
    assert!(!sim.authorized(), "auth.logOut reached Telegram");
    let listed = binary::output(binary::command(&["account", "list"], &data)).await;
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("no accounts yet"),
        "{}",
        binary::describe(&listed)
    );
}

/// `lanbox dev mtproto-sim` prints the settings that point a box at it, and a box given them
/// logs the simulated account in with the code it printed.
#[test]
fn the_dev_simulator_prints_the_settings_a_box_logs_in_with() {
    use std::io::{BufRead, BufReader};
    /// Ends the simulator however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut sim = Command::new(binary::BIN)
        .args(["dev", "mtproto-sim", "--listen", "127.0.0.1:0", "--code", "24680"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sim.stdout.take().unwrap()).lines();
    let _sim = Killed(sim);
    let mut settings = Vec::new();
    while settings.len() < 2 {
        let line = lines.next().expect("the simulator prints its settings").unwrap();
        if let Some((k, v)) = line.split_once('=') {
            settings.push((k.to_string(), v.to_string()));
        } else {
            assert!(line.contains("login code 24680"), "{line}");
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut c = binary::command(&["account", "add-user", "--phone", "15550100"], dir.path());
    c.envs(settings)
        .env("LANBOX_TELEGRAM_API_ID", "1")
        .env("LANBOX_TELEGRAM_API_HASH", "ffffffffffffffffffffffffffffffff")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    // The code is fixed, so it can go in before it is asked for.
    child.stdin.take().unwrap().write_all(b"24680\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", binary::describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Agent"),
        "{}",
        binary::describe(&out)
    );
}
