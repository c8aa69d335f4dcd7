//! Waiting for state that announces nothing (no event, broadcast or channel to wait on): the
//! condition is checked every [`EVERY`] until it holds or a deadline passes. Where there is an
//! event, wait on the event instead. Deadlines are tokio time, so paused time applies.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// How often a condition is checked.
pub const EVERY: Duration = Duration::from_millis(50);

/// Waits until `check` gives `Ok`, and returns its value. After `within`, fails the test with
/// the last `Err`, which should say what was seen instead.
pub async fn until_ok<T, F, Fut>(within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(seen) => assert!(Instant::now() < deadline, "not within {within:?}: {seen}"),
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Waits until `check` is true; after `within`, fails the test naming `what` it waited for.
pub async fn until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    until_ok(within, || {
        let fut = check();
        async move {
            if fut.await {
                Ok(())
            } else {
                Err(format!("waiting for {what}"))
            }
        }
    })
    .await
}
