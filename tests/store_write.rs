//! The store's writer against a real redb file: a job's own error rolls back what it wrote, a
//! panicking job is answered and the writer goes on, and a disk that fills up and empties again
//! (through the store's fault switch, which makes the file's writes fail with `ENOSPC` as a full
//! filesystem does) degrades the store's health and recovers it without a restart.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lanbox::store::faults::DiskFaults;
use lanbox::store::new_account::{NewAccount, create_in};
use lanbox::store::{Store, StoreError, StoreHealth, StoreOptions, WriteFailure};
use tokio::sync::oneshot;

fn open_with(dir: &std::path::Path, faults: Option<DiskFaults>) -> Store {
    Store::open(
        dir,
        &StoreOptions {
            credentials_dir: None,
            disk_faults: faults,
            ..StoreOptions::default()
        },
    )
    .unwrap()
}

fn named(name: &str) -> NewAccount {
    NewAccount {
        channel: "telegram".into(),
        name: name.into(),
        ..Default::default()
    }
}

async fn add(store: &Store, name: &'static str) {
    store
        .write(1, move |ctx| create_in(ctx, &named(name)))
        .await
        .unwrap();
}

fn account_names(store: &Store) -> Vec<String> {
    let mut names: Vec<String> = store
        .reader()
        .unwrap()
        .accounts()
        .unwrap()
        .into_iter()
        .map(|a| a.name)
        .collect();
    names.sort();
    names
}

/// A job's own error in these tests.
#[derive(Debug, PartialEq)]
enum Refusal {
    NotAllowed,
    Store(String),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::Store(e.to_string())
    }
}

/// Holds the writer inside a job until `release` is sent, so the jobs queued meanwhile are
/// taken together as the next round. Returns once the writer is inside the job.
async fn hold_writer(store: &Store) -> (std::sync::mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
    let (entered_tx, entered) = oneshot::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let mut entered_tx = Some(entered_tx);
    let s = store.clone();
    let held = tokio::spawn(async move {
        s.write(1, move |_| {
            if let Some(t) = entered_tx.take() {
                let _ = t.send(());
            }
            let _ = released.recv();
            Ok(())
        })
        .await
        .unwrap()
    });
    entered.await.unwrap();
    (release, held)
}

/// Polls a write once: far enough to put its job in the writer's queue (which has room, and
/// `unconstrained` keeps tokio's budget from deferring the send), not to wait for its answer.
async fn enqueue<F: Future + Unpin>(write: &mut F) {
    tokio::select! {
        biased;
        _ = write => panic!("answered while the writer was held"),
        () = std::future::ready(()) => {}
    }
}

/// Waits (on the store's own notifications) until its health satisfies `ok`.
async fn health_until(store: &Store, ok: impl FnMut(&StoreHealth) -> bool) -> StoreHealth {
    let mut rx = store.watch_health();
    tokio::time::timeout(Duration::from_secs(60), rx.wait_for(ok))
        .await
        .expect("store health did not change in time")
        .unwrap()
        .clone()
}

/// Regression: a write job could fail only with `StoreError`, so a domain error came back as
/// `Ok(Err(..))` and whatever the job had written before it still committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_error_rolls_back_what_the_job_wrote_and_spares_its_neighbours() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), None);
    let seq_before = store.reader().unwrap().last_seq().unwrap();

    let (release, held) = hold_writer(&store).await;
    let kept_runs = Arc::new(AtomicUsize::new(0));
    let runs = kept_runs.clone();
    let mut kept = Box::pin(tokio::task::unconstrained(store.try_write(1, move |ctx| {
        runs.fetch_add(1, Ordering::SeqCst);
        create_in(ctx, &named("kept")).map_err(Refusal::from)
    })));
    let mut refused = Box::pin(tokio::task::unconstrained(store.try_write(
        1,
        move |ctx| -> Result<u64, Refusal> {
            // Writes first, then refuses.
            let rec = create_in(ctx, &named("refused"))?;
            assert!(ctx.account(rec.id).is_ok(), "the job sees its own write");
            Err(Refusal::NotAllowed)
        },
    )));
    enqueue(&mut kept).await;
    enqueue(&mut refused).await;
    release.send(()).unwrap();
    held.await.unwrap();

    assert_eq!(
        refused.await,
        Err(Refusal::NotAllowed),
        "the caller gets its own error back"
    );
    let kept = kept.await.unwrap();
    assert_eq!(kept.name, "kept");
    assert_eq!(
        kept_runs.load(Ordering::SeqCst),
        2,
        "the neighbour shared the refused job's transaction and ran again without it"
    );
    assert_eq!(
        account_names(&store),
        ["kept"],
        "nothing of the refused job is stored"
    );
    let r = store.reader().unwrap();
    assert_eq!(r.account(kept.id).unwrap().unwrap().name, "kept");
    assert_eq!(r.last_seq().unwrap(), seq_before);
    assert_eq!(
        store.health().write_failures,
        0,
        "a job's own error is not a storage failure"
    );
}

/// Regression: a panic inside the writer thread killed it, and every later write failed while
/// the process lived on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_job_is_answered_and_the_writer_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(dir.path(), None);
    add(&store, "before").await;

    let (release, held) = hold_writer(&store).await;
    let mut neighbour = Box::pin(tokio::task::unconstrained(
        store.write(1, |ctx| create_in(ctx, &named("neighbour"))),
    ));
    let mut panics = Box::pin(tokio::task::unconstrained(store.write(1, |ctx| {
        create_in(ctx, &named("panicked"))?;
        panic!("a bug in a write job");
        #[allow(unreachable_code)]
        Ok(())
    })));
    enqueue(&mut neighbour).await;
    enqueue(&mut panics).await;
    release.send(()).unwrap();
    held.await.unwrap();

    assert!(matches!(panics.await, Err(StoreError::WriterPanicked)));
    neighbour.await.unwrap();
    // The writer lives on (with the database reopened) and commits the next write.
    add(&store, "after").await;
    assert_eq!(account_names(&store), ["after", "before", "neighbour"]);
    let h = store.health();
    assert!(h.writer_running && h.database_open, "{h:?}");
    assert_eq!(h.write_failures, 0, "writes work again: {h:?}");
}

/// Regression: with the data directory on a full filesystem, every write failed with redb's
/// "previous I/O error" even after space returned (redb needs the database closed and
/// reopened), while the health check said ok.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_fail_while_the_disk_is_full_and_recover_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let faults = DiskFaults::new();
    let store = open_with(dir.path(), Some(faults.clone()));
    add(&store, "before").await;
    assert_eq!(store.health(), StoreHealth::default());

    faults.set_full(true);
    let during = store.write(1, |ctx| create_in(ctx, &named("during"))).await;
    assert!(during.is_err(), "no write succeeds on a full disk: {during:?}");
    assert!(faults.refused() > 0, "the write reached the disk");
    let h = store.health();
    assert!(h.write_failures > 0, "{h:?}");
    assert_eq!(h.last_failure, Some(WriteFailure::DiskFull), "{h:?}");
    assert!(h.writer_running, "{h:?}");
    // Still full: still failing, never a false success.
    let again = store.write(1, |ctx| create_in(ctx, &named("again"))).await;
    assert!(again.is_err(), "{again:?}");
    assert!(store.health().write_failures > 0);

    // Space returns: the writer's own retry finds out, with no write asking.
    faults.set_full(false);
    let h = health_until(&store, |h| h.write_failures == 0).await;
    assert!(
        h.database_open && h.writer_running && h.last_failure.is_none(),
        "{h:?}"
    );
    add(&store, "after").await;
    assert_eq!(account_names(&store), ["after", "before"]);

    // And the file is sound for the next start.
    drop(store);
    let store = open_with(dir.path(), None);
    assert_eq!(account_names(&store), ["after", "before"]);
}
