//! Reading a password on the command line: from a terminal without echo (asked twice), or one
//! line from a pipe. Passwords never go on the command line, where `ps` would show them.

use std::io::{BufRead, IsTerminal, Write};

/// Reads a new password: from `LANBOX_PASSWORD` if set, else from standard input.
pub fn new_password(for_user: &str) -> Result<String, String> {
    if let Ok(p) = std::env::var("LANBOX_PASSWORD") {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = ask(&format!("Password for {for_user}: "))?;
    let second = ask("Repeat it: ")?;
    if first != second {
        return Err("the passwords differ".into());
    }
    Ok(first)
}

/// Reads a secret that is not a user's password (the backup passphrase): from the variable
/// `env` if set, else one line of a pipe, else the terminal without echo (asked twice when
/// `confirm`).
pub fn secret(env: &str, prompt: &str, confirm: bool) -> Result<String, String> {
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the passphrase: {e}"))?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    let first = ask(prompt)?;
    if confirm && ask("Repeat it: ")? != first {
        return Err("the passphrases differ".into());
    }
    Ok(first)
}

/// Reads one line that is not secret (a login code): asks on the terminal with echo, or takes
/// the next line of a pipe. `None` at the end of the input.
pub fn line(prompt: &str) -> Result<Option<String>, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    let n = stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading standard input: {e}"))?;
    Ok((n > 0).then(|| line.trim_end_matches(['\r', '\n']).to_string()))
}

fn ask(prompt: &str) -> Result<String, String> {
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let _echo = EchoOff::new();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("reading the password: {e}"))?;
    eprintln!();
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Turns terminal echo off until dropped.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> EchoOff {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios they fill in; failure
            // (not a terminal) leaves echo as it was.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) != 0 {
                    return EchoOff { saved: None };
                }
                let saved = t;
                t.c_lflag &= !libc::ECHO;
                libc::tcsetattr(0, libc::TCSANOW, &t);
                EchoOff { saved: Some(saved) }
            }
        }
        #[cfg(not(unix))]
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(t) = &self.saved {
            // SAFETY: restores the settings read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}
