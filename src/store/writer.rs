//! The single writer. Every change to the database goes through one thread that takes jobs off
//! a bounded queue and runs as many as are waiting (up to a weight limit) in one write
//! transaction, so a burst of ingested messages costs one commit (one fsync on the SD card), not
//! one per message. It is an OS thread, not an async task, because redb's `begin_write` and
//! `commit` block (redb issue #30); async callers await a oneshot reply.
//!
//! A job that fails (with the store's error or its own, see [`JobError`]) or panics rolls back
//! the whole transaction, is answered with its error, and the other jobs of that round run
//! again in a fresh transaction: one bad batch never takes its neighbours down with it, and
//! nothing a failed job wrote is ever committed. Jobs are `FnMut` for that reason.
//!
//! # Storage failures and panics
//!
//! After an I/O failure redb refuses every further transaction ("previous I/O error") until the
//! database is closed and opened again, and after a panic its state is not to be trusted. So
//! the writer then takes the database out of its [`DbSlot`] (the last handle drops and redb
//! closes the file), opens it again, and goes on; while the disk still refuses, it retries with
//! a growing pause, probing with a real page write, and every job is answered with an error in
//! the meantime. What it sees is kept in [`StoreHealth`] for `/api/v1/health`.
//!
//! A panic is caught around each job and around each round, so the thread itself never dies of
//! one: the job (or, for a panic outside any job, the round) is answered with
//! [`StoreError::WriterPanicked`] and the writer goes on with a reopened database. (A build with
//! `panic = "abort"`, such as the `small` profile for boards, ends the process on a panic
//! instead, and systemd's `Restart=on-failure` starts it again.) Should the thread end anyway
//! while the store is open, the health says `writer_running: false`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use redb::{Database, ReadableTable};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::ctx::WriteCtx;
use super::keyring::Keyring;
use super::tables::{META, META_LAST_SEQ, SPACE_PROBE};
use super::{Published, StoreError, StoreHealth, WriteFailure};

/// Why a job did not commit.
pub(super) enum JobError {
    /// The store's own error.
    Store(StoreError),
    /// The job's own (domain) error, a boxed `E` of [`super::Store::try_write`].
    Domain(Box<dyn Any + Send>),
}

impl JobError {
    /// Boxes a job's error; a [`StoreError`] stays one, so the writer sees storage failures.
    pub fn from_job<E: Send + 'static>(e: E) -> JobError {
        let boxed: Box<dyn Any + Send> = Box::new(e);
        match boxed.downcast::<StoreError>() {
            Ok(store) => JobError::Store(*store),
            Err(other) => JobError::Domain(other),
        }
    }
}

pub(super) type JobOutput = Result<Box<dyn Any + Send>, JobError>;
pub(super) type JobFn = Box<dyn FnMut(&mut WriteCtx<'_>) -> JobOutput + Send>;

pub(super) struct Job {
    pub run: JobFn,
    /// How much work the job is (changes in a batch), to bound one transaction's size.
    pub weight: usize,
    pub reply: oneshot::Sender<JobOutput>,
}

/// Opens the database file (the first time and after a failure).
pub(super) type OpenDb = Box<dyn Fn() -> Result<Database, StoreError> + Send + Sync>;

/// The open database, or none while it is being (or could not be) reopened.
pub(super) struct DbSlot {
    /// A std RwLock, not a tokio one: nothing awaits while it is held. Readers hold it only
    /// while they begin a transaction, so when the writer takes the database out, its handle
    /// is the last one and redb closes the file.
    current: RwLock<Option<Arc<Database>>>,
    /// While the database cannot be reopened for writing (a full disk that refuses even redb's
    /// open), reads go to the file opened read-only through the preflight's shadow, so the
    /// inbox stays readable. Never handed to the writer.
    fallback: RwLock<Option<Arc<Database>>>,
    open: OpenDb,
    open_read_only: OpenDb,
    /// True while the writer closes the database and opens it again: a read that finds no
    /// handle then waits for the reopen (at most [`READ_WAIT`]) rather than fail.
    reopening: Mutex<bool>,
    reopened: Condvar,
    /// Reads waiting for a reopen now (for tests to know one is parked).
    waiting: AtomicUsize,
}

/// The longest a read waits for the writer to reopen the database (opening repairs the file
/// after a failure, which takes a moment on a large database and a slow card).
const READ_WAIT: Duration = Duration::from_secs(10);

impl DbSlot {
    pub fn new(db: Database, open: OpenDb, open_read_only: OpenDb) -> DbSlot {
        DbSlot {
            current: RwLock::new(Some(Arc::new(db))),
            fallback: RwLock::new(None),
            open,
            open_read_only,
            reopening: Mutex::new(false),
            reopened: Condvar::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the open database (or, while it cannot be reopened, its read-only view) with
    /// the slot held, so the database cannot close meanwhile. Only for quick calls (beginning a
    /// read transaction).
    ///
    /// While the writer is reopening the database neither handle is there for a moment; the
    /// read waits for it (bounded) instead of failing with [`StoreError::Unavailable`].
    pub fn with<T>(&self, f: impl FnOnce(&Database) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let deadline = Instant::now() + READ_WAIT;
        let mut looked_again = false;
        loop {
            {
                let guard = self.current.read().unwrap_or_else(|p| p.into_inner());
                if let Some(db) = guard.as_ref() {
                    return f(db);
                }
            }
            {
                let guard = self.fallback.read().unwrap_or_else(|p| p.into_inner());
                if let Some(db) = guard.as_ref() {
                    return f(db);
                }
            }
            let busy = self.reopening.lock().unwrap_or_else(|p| p.into_inner());
            if !*busy {
                // No reopen under way: look once more (one may have just ended), then say so.
                if looked_again {
                    return Err(StoreError::Unavailable);
                }
                looked_again = true;
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let (busy, _) = self
                .reopened
                .wait_timeout_while(busy, left, |b| *b)
                .unwrap_or_else(|p| p.into_inner());
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            if *busy {
                return Err(StoreError::Unavailable);
            }
        }
    }

    /// Marks a reopen under way (true) or over (false), waking the reads that wait for it.
    fn set_reopening(&self, on: bool) {
        *self.reopening.lock().unwrap_or_else(|p| p.into_inner()) = on;
        if !on {
            self.reopened.notify_all();
        }
    }

    fn set_fallback(&self, db: Option<Database>) {
        *self.fallback.write().unwrap_or_else(|p| p.into_inner()) = db.map(Arc::new);
    }

    fn get(&self) -> Option<Arc<Database>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn take(&self) -> Option<Arc<Database>> {
        self.current.write().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn put(&self, db: Database) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(db));
    }
}

/// A reopen under way, over when dropped (a panic inside redb's open included).
struct Reopening<'a>(&'a DbSlot);

impl<'a> Reopening<'a> {
    fn start(slot: &'a DbSlot) -> Reopening<'a> {
        slot.set_reopening(true);
        Reopening(slot)
    }
}

impl Drop for Reopening<'_> {
    fn drop(&mut self) {
        self.0.set_reopening(false);
    }
}

/// How much room a probe after a full disk makes sure of before writes count as working again:
/// several batches' worth (a batch of 1,000 messages with its index is about 5 MB).
const HEADROOM: usize = 8 << 20;

/// The size of one value the probe writes to make [`HEADROOM`].
const PROBE_VALUE: usize = 1000;

/// First pause before retrying a failed database (doubled per failure, up to [`RETRY_MAX`]).
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(30);

pub(super) struct Writer {
    pub slot: Arc<DbSlot>,
    pub keyring: Arc<Keyring>,
    pub jobs: mpsc::Receiver<Job>,
    pub publish: broadcast::Sender<Arc<Published>>,
    pub health: Arc<watch::Sender<StoreHealth>>,
    pub max_weight: usize,
    /// After a failed reopen, none is tried again before this (opening repairs the file, which
    /// can take a while; jobs meanwhile are answered at once).
    pub reopen_after: Option<Instant>,
    /// While writes fail: when the next probe runs, whether or not jobs keep coming.
    pub probe_at: Option<Instant>,
    /// The data directory, whose filesystem's free space a probe after a full disk asks first.
    pub dir: PathBuf,
}

/// How one round went wrong.
enum RoundFailure {
    /// The transaction could not begin: nothing of the round ran.
    Begin(StoreError),
    /// Job `i` failed; its writes and its neighbours' are rolled back.
    Job(usize, JobError),
    /// Job `i` panicked; likewise rolled back.
    Panicked(usize),
    /// The transaction or its commit failed: nothing of the round is stored.
    Whole(StoreError),
}

/// What the writer waits for next.
enum Next {
    Job(Job),
    /// The queue closed: the store is being dropped.
    Closed,
    /// Time to retry a failed database (no job came meanwhile).
    Retry,
}

/// Marks the writer stopped when its thread ends, however it ends.
struct Running(Arc<watch::Sender<StoreHealth>>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.send_modify(|h| h.writer_running = false);
    }
}

impl Writer {
    pub fn run(mut self) {
        let _running = Running(self.health.clone());
        loop {
            let first = match self.next_job() {
                Next::Job(job) => job,
                Next::Closed => break,
                Next::Retry => {
                    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.probe())) {
                        self.after_panic(panic);
                    }
                    continue;
                }
            };
            let mut round = vec![first];
            let mut weight = round[0].weight;
            while weight < self.max_weight {
                match self.jobs.try_recv() {
                    Ok(job) => {
                        weight += job.weight;
                        round.push(job);
                    }
                    Err(_) => break,
                }
            }
            // A panic outside the per-job guards (inside redb's commit, say) drops the round's
            // replies, whose callers then get `WriterPanicked`; the writer itself goes on.
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| self.commit_round(round))) {
                self.after_panic(panic);
            }
        }
    }

    /// The pause before retrying after `failures` failures in a row.
    fn pause(failures: u32) -> Duration {
        RETRY_FIRST
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(RETRY_MAX)
    }

    fn next_job(&mut self) -> Next {
        let failures = self.health.borrow().write_failures;
        if failures == 0 {
            self.probe_at = None;
            return self.jobs.blocking_recv().map_or(Next::Closed, Next::Job);
        }
        // Jobs that come meanwhile are tried, but they do not postpone the probe: after a full
        // disk, small jobs may fit in free pages, and only the probe says there is room again.
        let now = Instant::now();
        let due = *self.probe_at.get_or_insert(now + Writer::pause(failures));
        if now >= due {
            self.probe_at = None;
            return Next::Retry;
        }
        match recv_timeout(&mut self.jobs, due - now) {
            Some(Some(job)) => Next::Job(job),
            Some(None) => Next::Closed,
            None => {
                self.probe_at = None;
                Next::Retry
            }
        }
    }

    fn after_panic(&mut self, _panic: Box<dyn Any + Send>) {
        // The panic's own message went to stderr through the panic hook; it may quote data.
        tracing::error!("the store writer panicked; reopening the database");
        self.failed(WriteFailure::Panic);
        self.reopen();
    }

    fn commit_round(&mut self, mut round: Vec<Job>) {
        let mut reopened = false;
        while !round.is_empty() {
            let Some(db) = self.database() else {
                // Said as the reason it is closed: a person signing in while the disk is full
                // reads "the disk is full", not "retry shortly".
                let full = self.health.borrow().last_failure == Some(WriteFailure::DiskFull);
                for job in round.drain(..) {
                    let e = if full {
                        StoreError::WaitingForSpace
                    } else {
                        StoreError::Unavailable
                    };
                    let _ = job.reply.send(Err(JobError::Store(e)));
                }
                return;
            };
            let outcome = self.try_round(&db, &mut round);
            drop(db);
            match outcome {
                Ok((results, published)) => {
                    // After a full disk, a round that fit in the file's free pages does not
                    // mean there is room again: the probe decides (see [`Writer::probe`]).
                    if self.health.borrow().last_failure != Some(WriteFailure::DiskFull) {
                        self.succeeded();
                    }
                    for (job, result) in round.drain(..).zip(results) {
                        let _ = job.reply.send(Ok(result));
                    }
                    for p in published {
                        // No receivers is fine: nobody is listening yet.
                        let _ = self.publish.send(Arc::new(p));
                    }
                }
                Err(RoundFailure::Begin(e)) if !reopened && failure_of(&e).is_some() => {
                    // Latched by an earlier failure (redb refuses every transaction until the
                    // database is reopened): reopen, and run this round once more.
                    self.storage_failed(&e);
                    reopened = true;
                }
                Err(RoundFailure::Begin(err) | RoundFailure::Whole(err)) => {
                    if err.is_damage() {
                        super::note_damage(&self.health);
                    }
                    self.storage_failed(&err);
                    // Nothing of this round is stored.
                    let mut first = Some(err);
                    for job in round.drain(..) {
                        let e = first.take().unwrap_or(StoreError::BatchAborted);
                        let _ = job.reply.send(Err(JobError::Store(e)));
                    }
                }
                Err(RoundFailure::Job(i, err)) => {
                    if let JobError::Store(e) = &err {
                        if e.is_damage() {
                            super::note_damage(&self.health);
                        }
                        self.storage_failed(e);
                    }
                    let job = round.remove(i);
                    let _ = job.reply.send(Err(err));
                    // The rest run again without it.
                }
                Err(RoundFailure::Panicked(i)) => {
                    tracing::error!("a store write job panicked; it was rolled back");
                    let job = round.remove(i);
                    let _ = job.reply.send(Err(JobError::Store(StoreError::WriterPanicked)));
                    self.failed(WriteFailure::Panic);
                    self.reopen();
                }
            }
        }
    }

    /// Runs every job of the round in one transaction; on failure says what failed.
    #[allow(clippy::type_complexity)]
    fn try_round(
        &self,
        db: &Database,
        round: &mut [Job],
    ) -> Result<(Vec<Box<dyn Any + Send>>, Vec<Published>), RoundFailure> {
        let txn = db.begin_write().map_err(|e| RoundFailure::Begin(e.into()))?;
        let mut results = Vec::with_capacity(round.len());
        let mut published = Vec::new();
        // Writes deferred to the commit (the search index's postings), passed from job to job.
        let mut deferred = Vec::new();
        for (i, job) in round.iter_mut().enumerate() {
            let mut ctx = WriteCtx::open(&txn, &self.keyring).map_err(RoundFailure::Whole)?;
            ctx.set_deferred(std::mem::take(&mut deferred));
            let out = catch_unwind(AssertUnwindSafe(|| {
                let r = (job.run)(&mut ctx)?;
                let p = ctx.finish().map_err(JobError::Store)?;
                Ok::<_, JobError>((r, p))
            }));
            match out {
                Ok(Ok((r, p))) => {
                    results.push(r);
                    published.extend(p);
                    deferred = ctx.take_deferred();
                }
                // Returning drops `ctx` and then `txn` uncommitted: redb rolls it back.
                Ok(Err(e)) => return Err(RoundFailure::Job(i, e)),
                Err(_) => return Err(RoundFailure::Panicked(i)),
            }
        }
        for d in deferred {
            d.flush(&txn).map_err(RoundFailure::Whole)?;
        }
        txn.commit().map_err(|e| RoundFailure::Whole(e.into()))?;
        Ok((results, published))
    }

    /// The open database, reopening it first when a failure closed it.
    fn database(&mut self) -> Option<Arc<Database>> {
        if let Some(db) = self.slot.get() {
            return Some(db);
        }
        if self.reopen_after.is_some_and(|t| Instant::now() < t) {
            return None;
        }
        self.reopen();
        self.slot.get()
    }

    /// Closes the database and opens it again (redb's way out of a latched I/O failure).
    fn reopen(&mut self) {
        let slot = self.slot.clone();
        let _under_way = Reopening::start(&slot);
        self.reopen_now();
    }

    fn reopen_now(&mut self) {
        // The writer holds no handle here, and readers hold the slot only while they begin a
        // transaction, so this drop closes the file and releases redb's locks on it. Read
        // transactions still running get "database closed".
        drop(self.slot.take());
        // The read-only view holds shared locks on the file: it goes first, or the open fails.
        self.slot.set_fallback(None);
        match (self.slot.open)() {
            Ok(db) => {
                self.slot.put(db);
                self.reopen_after = None;
                self.health.send_modify(|h| h.database_open = true);
                tracing::info!("database reopened");
            }
            Err(e) => {
                tracing::error!(error = %e, "reopening the database failed; retrying");
                let kind = failure_of(&e).unwrap_or(WriteFailure::Io);
                self.health.send_modify(|h| h.database_open = false);
                self.failed(kind);
                let failures = self.health.borrow().write_failures;
                self.reopen_after = Some(Instant::now() + Writer::pause(failures));
                match (self.slot.open_read_only)() {
                    Ok(view) => self.slot.set_fallback(Some(view)),
                    Err(e) => tracing::error!(error = %e, "reads fail too until the database reopens"),
                }
            }
        }
    }

    /// When no job comes while the database is failing: a real page write (the last sequence
    /// number rewritten with its own value) shows whether the disk takes writes again. After a
    /// full disk that is not enough: redb's file has free pages inside, so a small write fits
    /// where the refused batch did not, and the health would flicker between ok and
    /// `disk_full` while every batch is still refused. So then the probe also grows the file by
    /// [`HEADROOM`] (a scratch table written, committed, then dropped; the pages stay in the
    /// file, free for the next batches): writes count as working again only once there is room.
    ///
    /// Before writing its headroom the probe asks the filesystem: while it has less free than
    /// the headroom, the probe writes nothing (megabytes every few seconds for as long as a disk
    /// stays full would wear an SD card) and comes again at the same pace. A limit the
    /// filesystem does not show (a quota, `RLIMIT_FSIZE`) is found by the write itself.
    fn probe(&mut self) {
        let headroom = self.health.borrow().last_failure == Some(WriteFailure::DiskFull);
        if headroom
            && let Ok(space) = crate::system::disk::space(&self.dir)
            && space.available < HEADROOM as u64
        {
            return;
        }
        let Some(db) = self.database() else { return };
        let result = (|| -> Result<(), StoreError> {
            let txn = db.begin_write()?;
            {
                let mut meta = txn.open_table(META)?;
                let seq = meta.get(META_LAST_SEQ)?.map(|v| v.value());
                meta.insert(META_LAST_SEQ, seq.unwrap_or(0))?;
                if headroom {
                    // Small values, several to a page: redb gives a large value pages of its
                    // own rounded up to a power of two, which would ask the disk for about
                    // twice the headroom (seen on a 32 MiB filesystem with 12 MiB free).
                    let mut scratch = txn.open_table(SPACE_PROBE)?;
                    let chunk = [0u8; PROBE_VALUE];
                    for i in 0..(HEADROOM / PROBE_VALUE) as u64 {
                        scratch.insert(i, chunk.as_slice())?;
                    }
                }
            }
            txn.commit()?;
            if headroom {
                let txn = db.begin_write()?;
                txn.delete_table(SPACE_PROBE)?;
                txn.commit()?;
            }
            Ok(())
        })();
        drop(db);
        match result {
            Ok(()) => self.succeeded(),
            Err(e) => self.storage_failed(&e),
        }
    }

    fn succeeded(&self) {
        self.health.send_if_modified(|h| {
            if h.write_failures == 0 {
                return false;
            }
            tracing::info!(failures = h.write_failures, "store writes work again");
            h.write_failures = 0;
            h.last_failure = None;
            true
        });
    }

    /// Records a failure if `e` is one of storage (not of one job's data), then reopens.
    fn storage_failed(&mut self, e: &StoreError) {
        let Some(kind) = failure_of(e) else { return };
        tracing::error!(error = %e, "store write failed");
        self.failed(kind);
        self.reopen();
    }

    fn failed(&self, kind: WriteFailure) {
        self.health.send_modify(|h| {
            h.write_failures = h.write_failures.saturating_add(1);
            // "Previous I/O error" and "closed" only echo the failure that caused them.
            let echo = matches!(kind, WriteFailure::Io | WriteFailure::Closed) && h.last_failure.is_some();
            if !echo {
                h.last_failure = Some(kind);
            }
        });
    }
}

/// What kind of storage failure `e` is; `None` for an error of the data or the job.
pub(super) fn failure_of(e: &StoreError) -> Option<WriteFailure> {
    match e {
        StoreError::Db(redb::Error::Io(io)) => Some(if is_full(io) {
            WriteFailure::DiskFull
        } else {
            WriteFailure::Io
        }),
        StoreError::Db(
            redb::Error::PreviousIo
            | redb::Error::DatabaseClosed
            | redb::Error::LockPoisoned(_)
            | redb::Error::TransactionPoisoned
            | redb::Error::DatabaseAlreadyOpen
            | redb::Error::Corrupted(_),
        ) => Some(WriteFailure::Io),
        StoreError::Io { source, .. } if is_full(source) => Some(WriteFailure::DiskFull),
        StoreError::Io { .. } => Some(WriteFailure::Io),
        StoreError::Unavailable => Some(WriteFailure::Closed),
        StoreError::WaitingForSpace => Some(WriteFailure::DiskFull),
        StoreError::WriterPanicked => Some(WriteFailure::Panic),
        _ => None,
    }
}

fn is_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        e.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    )
}

/// [`mpsc::Receiver::blocking_recv`] with a deadline: `None` when it passed first. The writer
/// is a plain thread, so it parks, and the channel's waker unparks it.
fn recv_timeout(rx: &mut mpsc::Receiver<Job>, wait: Duration) -> Option<Option<Job>> {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let deadline = Instant::now() + wait;
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(job) = rx.poll_recv(&mut cx) {
            return Some(job);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableDatabase;

    fn slot(dir: &std::path::Path) -> DbSlot {
        let path = dir.join("t.redb");
        let db = Database::create(&path).unwrap();
        let open: OpenDb = Box::new(move || Ok(Database::create(&path)?));
        let none: OpenDb = Box::new(|| Err(StoreError::Unavailable));
        DbSlot::new(db, open, none)
    }

    // Regression: a read that came while the writer had closed the database to reopen it
    // failed at once with `Unavailable` (seen in CI as `store_unavailable` on an agent's
    // conversation while the disk was full). It waits for the reopen now.
    #[test]
    fn a_read_during_a_reopen_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let slot = Arc::new(slot(dir.path()));
        let guard = Reopening::start(&slot);
        let db = slot.take().unwrap();
        let reader = std::thread::spawn({
            let slot = slot.clone();
            move || slot.with(|db| Ok(db.begin_read().is_ok()))
        });
        // The reader finds no database and parks until the reopen ends.
        while slot.waiting.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        drop(db);
        slot.put((slot.open)().unwrap());
        drop(guard);
        assert!(reader.join().unwrap().unwrap());
    }

    #[test]
    fn with_no_database_and_no_reopen_a_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let slot = slot(dir.path());
        drop(slot.take());
        assert!(matches!(slot.with(|_| Ok(())), Err(StoreError::Unavailable)));
    }
}
