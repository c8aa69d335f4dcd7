//! What the console tells a new operator, through the real binary.

mod support;

use std::process::{Command, Stdio};

use support::binary::{self, BIN, Serving};

/// Regression: the console printed `open https://<this box>/` with no port and no address,
/// plain `http://BOX:8443` got an empty reply, and a CLI command while `serve` ran said only
/// "Database already open. Cannot acquire lock."
#[cfg(unix)]
#[test]
fn serve_prints_working_urls_and_a_cli_command_meanwhile_says_what_holds_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut serve = binary::command(&["serve"], dir.path());
    serve
        .env("LANBOX_SERVER_LISTEN", "127.0.0.1:0")
        .env("LANBOX_SERVER_MDNS", "false")
        .env("LANBOX_SERVER_REDIRECT_LISTEN", "")
        .stderr(Stdio::null());
    let serving = Serving::start(&mut serve);
    let lines = &serving.printed;
    let port = serving.addr.port();
    let url = format!("https://127.0.0.1:{port}/");
    assert!(
        lines.iter().any(|l| l.trim() == url),
        "{url} not printed: {lines:?}"
    );
    let setup = lines
        .iter()
        .find(|l| l.contains("setup code"))
        .expect("a setup code line");
    assert!(!setup.contains("<this box>"), "{setup}");

    // Plain HTTP on the HTTPS port gets a redirect, not an empty reply.
    let answer = {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
        write!(
            tcp,
            "GET /inbox?x=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(answer.starts_with("HTTP/1.1 308"), "{answer}");
    let location = format!("location: https://127.0.0.1:{port}/inbox?x=1");
    assert!(answer.to_ascii_lowercase().contains(&location), "{answer}");

    let out = Command::new(BIN)
        .args(["user", "list", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    serving.stop();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another lanbox process"), "{err}");
    assert!(
        err.contains("lanbox serve") && err.contains("/api/v1/users"),
        "{err}"
    );
}

/// Regression: `lanbox demo` on a busy port printed passwords and "open https://..." for the
/// real box, then `Address already in use` without naming the address or `--listen`.
#[test]
fn demo_on_a_busy_port_fails_first_and_says_what_to_do() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(BIN)
        .args(["demo", "--listen", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stdout.contains("password"), "printed before failing: {stdout}");
    assert!(stderr.contains(&addr) && stderr.contains("--listen"), "{stderr}");
}
