//! Login limits over real TLS sockets: the throttle counts parallel guesses like sequential
//! ones, a burst does not lock the real user out, a flood of logins is refused quickly instead
//! of queueing (and hashing) without bound. The throttle's timing with made-up instants is
//! tested in `src/auth/throttle.rs`; the pool's memory in `src/auth/hashing.rs`; the memory of
//! the real binary under a flood is a benchmark (`benches/login.rs`).

mod support;

use std::net::IpAddr;
use std::time::Duration;

use lanbox::auth::throttle::{ADDR_FREE_FAILURES, FREE_FAILURES, NAME_MAX_WAIT};
use lanbox::auth::{AuthError, Role};
use serde_json::Value;
use support::server::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

/// `n` logins sent at once: every connection is opened (TLS included) first, then every request
/// written, so the server has them all before it can finish a single password check.
async fn burst(s: &TestServer, creds: impl Fn(usize) -> (String, String), n: usize) -> Vec<Answer> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(s.raw().await);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let (name, password) = creds(i);
        let body = serde_json::json!({"username": name, "password": password}).to_string();
        let req = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        c.write_all(req.as_bytes()).await.unwrap();
    }
    let reads = conns.into_iter().map(|mut c| async move {
        let mut raw = Vec::new();
        // The server may close without close_notify; what arrived is the answer.
        let _ = c.read_to_end(&mut raw).await;
        parse(&raw)
    });
    futures_util::future::join_all(reads).await
}

fn parse(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let retry_after = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("retry-after")
            .then(|| v.trim().parse().unwrap())
    });
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

fn count(answers: &[Answer], status: u16) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

/// A refusal says how long to wait, in the header and in the message, and nothing else.
fn assert_refusal(a: &Answer, password: &str) {
    assert_eq!(a.status, 429);
    let secs = a.retry_after.expect("Retry-After on every refusal");
    assert!((1..=NAME_MAX_WAIT.as_secs()).contains(&secs), "{secs}");
    assert_eq!(a.body["error"]["code"], "too_many_requests", "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap();
    assert!(message.contains(&format!("retry in {secs} s")), "{message}");
    assert!(!a.body.to_string().contains(password));
}

/// Regression guard: 60 parallel wrong passwords for one name were all checked (59 hashed) and
/// only one refused, where a sequential guesser got 5; the burst then locked the name for 15
/// minutes, the real user included.
#[tokio::test]
async fn parallel_guesses_for_one_name_are_counted_before_hashing() {
    let s = TestServer::start().await;
    s.user("carol", Role::Admin, &[]).await;
    let hashed_before = s.state.auth.hashes_computed();
    let answers = burst(&s, |i| ("carol".into(), format!("wrong password {i}")), 60).await;
    let checked = count(&answers, 400);
    assert_eq!(
        checked, FREE_FAILURES as usize,
        "exactly the free attempts are checked"
    );
    assert_eq!(count(&answers, 429), 60 - checked);
    assert_eq!(
        s.state.auth.hashes_computed() - hashed_before,
        checked as u64,
        "refused guesses are not hashed"
    );
    for a in answers.iter().filter(|a| a.status == 429) {
        assert_refusal(a, "wrong password");
    }

    // The real user is told to wait briefly, not for 15 minutes.
    let c = s.client();
    let login = || {
        c.post(s.url("/api/v1/auth/login"))
            .json(&serde_json::json!({"username": "carol", "password": PASSWORD}))
            .send()
    };
    let r = login().await.unwrap();
    let wait = if r.status() == 429 {
        let secs: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(
            secs <= 2,
            "a burst of 60 costs the name about a second, not {secs} s"
        );
        Duration::from_secs(secs)
    } else {
        assert_eq!(r.status(), 200);
        Duration::ZERO
    };
    // The wait is the behaviour under test (the throttle's own clock, not tokio's), so the
    // test waits it out; at most two seconds.
    tokio::time::sleep(wait).await;
    let r = login().await.unwrap();
    assert_eq!(r.status(), 200, "the real user gets in after the wait");
}

/// Regression guard: a flood of logins of unknown names queued every request for a password
/// check (and on glibc grew the heap by 19 MiB per check, to a gigabyte for 200). Now a few
/// wait their turn and the rest are refused at once with `Retry-After`.
#[tokio::test]
async fn a_flood_of_unknown_names_is_refused_quickly_not_queued() {
    let s = TestServer::start().await;
    let hashed_before = s.state.auth.hashes_computed();
    let answers = burst(&s, |i| (format!("nobody-{i}"), format!("guess {i}")), 100).await;
    let (checked, refused) = (count(&answers, 400), count(&answers, 429));
    assert_eq!(
        checked + refused,
        100,
        "only wrong-credential answers and refusals"
    );
    let places = {
        let o = lanbox::auth::AuthOptions::default();
        o.concurrent_hashes + o.queued_hashes
    };
    assert!(checked >= places, "the places were used: {checked}");
    assert!(
        refused >= 50,
        "most of a burst of 100 are refused, not queued: {refused} refused"
    );
    for a in answers.iter().filter(|a| a.status == 429) {
        assert_refusal(a, "guess");
    }
    assert_eq!(
        s.state.auth.hashes_computed() - hashed_before,
        checked as u64,
        "every check of an unknown name is hashed against the dummy (no timing oracle); refused ones are not"
    );
}

/// Per client address (the login handler takes it from `ConnectInfo` when the server puts it
/// there; here through the auth handle): a guesser's address is slowed down across every name
/// it tries, while the real user from another address logs in at once.
#[tokio::test]
async fn a_guessing_address_is_slowed_down_and_others_are_not() {
    let s = TestServer::start().await;
    s.user("dora", Role::Agent, &[]).await;
    let auth = &s.state.auth;
    let guesser: IpAddr = "192.168.1.66".parse().unwrap();
    let real: IpAddr = "192.168.1.10".parse().unwrap();
    for i in 0..ADDR_FREE_FAILURES {
        let r = auth.login(&format!("name-{i}"), "guess", Some(guesser)).await;
        assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
    }
    let hashed = auth.hashes_computed();
    let r = auth.login("dora", "guess", Some(guesser)).await;
    assert!(
        matches!(r, Err(AuthError::Throttled(d)) if d == Duration::from_secs(1)),
        "{r:?}"
    );
    assert_eq!(auth.hashes_computed(), hashed, "a refused attempt is not hashed");
    let login = auth.login("dora", PASSWORD, Some(real)).await.unwrap();
    assert_eq!(login.caller.name, "dora");
}

/// Over HTTP, the client's address reaches the throttle: the server hands the peer address to
/// the login route, so a guesser trying a new name each time is refused after
/// `ADDR_FREE_FAILURES` wrong attempts, and a refused attempt is not hashed.
#[tokio::test]
async fn the_address_throttle_holds_over_http() {
    let s = TestServer::start().await;
    for i in 0..ADDR_FREE_FAILURES as usize {
        let a = burst(&s, |_| (format!("name-{i}"), "guess".into()), 1).await;
        assert_eq!(a[0].status, 400, "{}", a[0].body);
    }
    let hashed = s.state.auth.hashes_computed();
    let refused = burst(&s, |_| ("another-name".into(), "guess".into()), 1).await;
    assert_refusal(&refused[0], "guess");
    assert_eq!(
        s.state.auth.hashes_computed(),
        hashed,
        "a refused attempt is not hashed"
    );
}
