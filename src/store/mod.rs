//! The store: one redb file in the data directory, sealed records, one writer.
//!
//! - [`tables`]: every table, typed, with its key encoding.
//! - [`new_account`]: an account's record and its fresh data key.
//! - [`records`] and [`codec`]: the stored values and their versioned postcard encoding.
//! - [`seal`] and [`keyring`]: per-account data keys under a master key.
//! - [`writer`] and [`ctx`]: the single writer thread and what a job sees of its transaction.
//! - [`read`]: read transactions, opened on the blocking pool by async callers.
//! - [`faults`]: a disk that fills on demand, for tests of the writer's failure handling.
//! - [`preflight`]: the checks before the files are opened for writing (an empty database
//!   beside a key, damaged pages, a master key that opens no data key), and the read-only
//!   shadow of the database file they and `lanbox check` read through.
//! - [`inspect`]: a stopped box's store opened read-only, every sealed record opened and
//!   counted (for `lanbox check`).
//!
//! [`Store`] is a cheap-to-clone handle. Dropping the last clone closes the queue; the writer
//! finishes what is queued and the database closes.
//!
//! Writes: [`Store::write`] for a job that fails only with [`StoreError`], [`Store::try_write`]
//! for one with its own error type: either way an error rolls back everything the job wrote.
//! [`Store::health`] says whether writes work (for `/api/v1/health`); after a storage failure
//! the writer reopens the database and recovers on its own once the disk takes writes again.

pub mod codec;
pub mod ctx;
mod error;
pub mod faults;
pub mod inspect;
pub mod keyring;
pub mod new_account;
pub mod passkey;
pub mod preflight;
pub mod read;
pub mod records;
pub mod scrub;
pub mod seal;
pub mod sealed_key;
pub mod tables;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use ctx::{ChatState, WriteCtx};
pub use error::StoreError;
pub use keyring::MasterKeySource;
pub use read::Reader;
pub use tables::{ChatKey, MsgKey};

use crate::model::{EventRecord, Message};
pub use keyring::Keyring;
use seal::{Cipher, SecretKey};
use writer::{DbSlot, Job, JobError, Writer};

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "lanbox.redb";

/// An event committed to the log, as handed to live subscribers. `message` is the (already
/// redacted) message for created/updated events: plaintext in memory only.
#[derive(Debug, Clone)]
pub struct Published {
    pub event: EventRecord,
    pub message: Option<Arc<Message>>,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// redb page cache in bytes.
    pub cache_bytes: usize,
    /// Cipher for new records; `None` picks by CPU.
    pub cipher: Option<Cipher>,
    /// systemd's `$CREDENTIALS_DIRECTORY`, where a `master-key` credential may be.
    pub credentials_dir: Option<PathBuf>,
    /// Writer queue length in jobs (bounded: producers wait when it is full).
    pub queue_jobs: usize,
    /// Upper bound on the summed weight (changes) of jobs committed together.
    pub max_batch_weight: usize,
    /// Capacity of the live broadcast; a subscriber further behind is told it lagged.
    pub publish_capacity: usize,
    /// Tests only: writes to the database file fail with `ENOSPC` while this switch is on.
    pub disk_faults: Option<faults::DiskFaults>,
    /// Before opening an existing database: verify every page checksum (reads the whole file
    /// once) and that the master key opens every account's data key (see [`preflight`]). Off
    /// only for tests that build stores with made-up keys.
    pub check_on_open: bool,
    /// The master key, unsealed with the operator's passphrase (sealed boot): used instead of
    /// reading `master.key`. Without it, a sealed box's store refuses to open.
    pub master_key: Option<SecretKey>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            // 64 MiB: a quarter of what a 2 GB board can spare for lanbox.
            cache_bytes: 64 << 20,
            cipher: None,
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            queue_jobs: 64,
            max_batch_weight: 4096,
            publish_capacity: 4096,
            disk_faults: None,
            check_on_open: true,
            master_key: None,
        }
    }
}

/// Whether the store's writes work, as its writer last saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    /// The writer thread runs (false only once it ended: when the store closes, or if it died).
    pub writer_running: bool,
    /// The database is open (false while reopening it after a failure has not yet worked).
    pub database_open: bool,
    /// Storage failures since the last write that committed (0: writes work).
    pub write_failures: u32,
    /// What caused those failures: the latest one's kind, except that an I/O error or a closed
    /// database after a known cause counts as its echo (redb's "previous I/O error").
    pub last_failure: Option<WriteFailure>,
    /// Damaged records met since the store opened (a sealed record that fails authentication,
    /// a record that does not decode, a corrupted page): each read or write that met one counts.
    pub damaged: u64,
    /// When the last of them was met (Unix seconds).
    pub last_damage_at: Option<i64>,
}

impl Default for StoreHealth {
    fn default() -> Self {
        StoreHealth {
            writer_running: true,
            database_open: true,
            write_failures: 0,
            last_failure: None,
            damaged: 0,
            last_damage_at: None,
        }
    }
}

impl StoreHealth {
    /// Why the store is not healthy, as the stable reason codes of `/api/v1/health` (empty when
    /// it is): `writer_stopped`, `store_write_failing` (with `disk_full` when the disk refused
    /// the writes), `store_damaged`.
    pub fn reasons(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.writer_running {
            out.push("writer_stopped");
        }
        if self.write_failures > 0 || !self.database_open {
            out.push("store_write_failing");
            if self.last_failure == Some(WriteFailure::DiskFull) {
                out.push("disk_full");
            }
        }
        if self.damaged > 0 {
            out.push("store_damaged");
        }
        out
    }
}

/// Counts damage met while running, into [`StoreHealth`].
pub(crate) fn note_damage(health: &watch::Sender<StoreHealth>) {
    tracing::warn!(
        "a damaged record was met (skipped or refused); run `lanbox check` when the box is stopped"
    );
    health.send_modify(|h| {
        h.damaged = h.damaged.saturating_add(1);
        h.last_damage_at = Some(ctx::unix_now());
    });
}

/// What kind of storage failure stopped writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteFailure {
    /// The filesystem refused to grow the file (full, or over a quota).
    DiskFull,
    /// Another I/O error (or redb's state after one).
    Io,
    /// The database is closed after a failure and could not be opened yet.
    Closed,
    /// The writer panicked.
    Panic,
}

#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
}

struct Shared {
    db: Arc<DbSlot>,
    keyring: Arc<Keyring>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    publish: broadcast::Sender<Arc<Published>>,
    health: Arc<watch::Sender<StoreHealth>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    master_source: MasterKeySource,
    dir: PathBuf,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain it and exit; joining makes "dropped" mean
        // "everything queued is committed".
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, creating the master key on first start.
    ///
    /// A damaged or missing file of an existing box is refused with [`StoreError::Damaged`]
    /// naming it, before anything is written (see [`preflight`]).
    pub fn open(dir: &Path, opts: &StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let db_path = dir.join(DB_FILE);
        preflight::files(dir, &db_path)?;
        let cipher = opts.cipher.unwrap_or_else(Cipher::for_this_cpu);
        let (keyring, master_source) = match &opts.master_key {
            Some(key) => Keyring::unsealed(key.clone(), dir.join(sealed_key::SEALED_MASTER_KEY_FILE), cipher),
            None if sealed_key::is_sealed(dir) => return Err(StoreError::Sealed),
            None => Keyring::load_or_create(dir, opts.credentials_dir.as_deref(), cipher)?,
        };
        let existing = std::fs::metadata(&db_path).is_ok_and(|m| m.len() > 0);
        if opts.check_on_open && existing {
            let found = preflight::pages(&db_path, opts.cache_bytes, &keyring, master_source.path())?;
            if found.needed_recovery {
                tracing::warn!(file = %db_path.display(), "the database was not closed cleanly; recovering its last commit");
            }
        }
        let open_db = {
            let (path, cache_bytes, faults) = (db_path.clone(), opts.cache_bytes, opts.disk_faults.clone());
            move || open_db(&path, cache_bytes, faults.as_ref())
        };
        let db = open_db()?;
        init_schema(&db)?;
        let open_read_only = {
            let (path, cache_bytes) = (db_path.clone(), opts.cache_bytes);
            move || preflight::read_only(&path, cache_bytes)
        };
        let db = Arc::new(DbSlot::new(db, Box::new(open_db), Box::new(open_read_only)));
        let keyring = Arc::new(keyring);
        let (tx, rx) = mpsc::channel(opts.queue_jobs.max(1));
        let (publish, _) = broadcast::channel(opts.publish_capacity.max(16));
        let health = Arc::new(watch::Sender::new(StoreHealth::default()));
        let writer = Writer {
            slot: db.clone(),
            keyring: keyring.clone(),
            jobs: rx,
            publish: publish.clone(),
            health: health.clone(),
            max_weight: opts.max_batch_weight.max(1),
            reopen_after: None,
            probe_at: None,
            dir: dir.to_path_buf(),
        };
        let handle = std::thread::Builder::new()
            .name("lanbox-writer".into())
            .spawn(move || writer.run())
            .map_err(|source| StoreError::Io {
                path: "writer thread".into(),
                source,
            })?;
        Ok(Store {
            shared: Arc::new(Shared {
                db,
                keyring,
                jobs: Mutex::new(Some(tx)),
                publish,
                health,
                writer: Mutex::new(Some(handle)),
                master_source,
                dir: dir.to_path_buf(),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn master_key_source(&self) -> &MasterKeySource {
        &self.shared.master_source
    }

    pub fn cipher(&self) -> Cipher {
        self.shared.keyring.cipher()
    }

    /// The master key's keyring, for keys wrapped outside account records (the backup key).
    pub fn keyring(&self) -> &Keyring {
        &self.shared.keyring
    }

    /// Whether writes work, as the writer last saw.
    pub fn health(&self) -> StoreHealth {
        self.shared.health.borrow().clone()
    }

    /// Every change of [`Store::health`].
    pub fn watch_health(&self) -> watch::Receiver<StoreHealth> {
        self.shared.health.subscribe()
    }

    /// Live events, published after each commit.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Published>> {
        self.shared.publish.subscribe()
    }

    fn sender(&self) -> Result<mpsc::Sender<Job>, StoreError> {
        self.shared
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::WriterGone)
    }

    /// Runs `f` inside the writer's next transaction. `f` may run more than once (when a
    /// neighbouring job fails and the round is retried), so it must not have side effects
    /// outside the transaction. An error rolls back everything `f` wrote.
    pub async fn write<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.try_write(weight, f).await
    }

    /// [`Store::write`] for a job with its own error type: when `f` returns `Err`, whatever it
    /// wrote is rolled back (its neighbours in the round still commit) and the caller gets
    /// that error back. The store's own failures reach the caller through `E::from`.
    pub async fn try_write<T, E, F>(&self, weight: usize, mut f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut WriteCtx<'_>) -> Result<T, E> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            run: Box::new(move |ctx| match f(ctx) {
                Ok(v) => Ok(Box::new(v) as Box<dyn std::any::Any + Send>),
                Err(e) => Err(JobError::from_job(e)),
            }),
            weight,
            reply,
        };
        self.sender()?
            .send(job)
            .await
            .map_err(|_| StoreError::WriterGone)?;
        // A reply dropped unanswered: a panic unwound through the writer's round.
        match rx.await.map_err(|_| StoreError::WriterPanicked)? {
            Ok(out) => Ok(*out.downcast::<T>().expect("writer returns what the job produced")),
            Err(JobError::Store(e)) => Err(E::from(e)),
            Err(JobError::Domain(e)) => Err(*e.downcast::<E>().expect("a job fails with its own error type")),
        }
    }

    /// Blocking form of [`Store::write`], for threads outside the runtime (tools, benchmarks).
    pub fn write_blocking<T, F>(&self, weight: usize, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&mut WriteCtx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        futures_lite_block_on(self.write(weight, f))
    }

    /// A read transaction. Blocking: async code calls [`Store::read`].
    pub fn reader(&self) -> Result<Reader, StoreError> {
        let txn = self.shared.db.with(|db| Ok(db.begin_read()?))?;
        Ok(Reader::new(
            txn,
            self.shared.keyring.clone(),
            Some(self.shared.health.clone()),
        ))
    }

    /// Counts damage met outside a read or write of the store (see [`StoreHealth::damaged`]).
    pub fn note_damage(&self) {
        note_damage(&self.shared.health);
    }

    /// Runs a read on the blocking pool, so async workers never wait on the disk.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, StoreError> + Send + 'static,
    {
        self.try_read(f).await
    }

    /// [`Store::read`] for a read with its own error type (the store's reach it through
    /// `E::from`).
    pub async fn try_read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Reader) -> Result<T, E> + Send + 'static,
    {
        let store = self.clone();
        let out = tokio::task::spawn_blocking(move || f(&store.reader()?))
            .await
            .map_err(|_| StoreError::WriterGone)?;
        if let Err(e) = &out
            && (e as &dyn std::any::Any)
                .downcast_ref::<StoreError>()
                .is_some_and(StoreError::is_damage)
        {
            self.note_damage();
        }
        out
    }
}

/// Drives a future to completion on the current thread. Only used by [`Store::write_blocking`],
/// whose future waits on channels fed by the writer thread, so no runtime is needed.
fn futures_lite_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// Opens (or creates) the database file, through the fault switch when a test gave one.
fn open_db(
    path: &Path,
    cache_bytes: usize,
    faults: Option<&faults::DiskFaults>,
) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    let Some(faults) = faults else {
        return Ok(builder.create(path)?);
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StoreError::Io {
            path: path.display().to_string(),
            source,
        })?;
    let backend = faults::FaultyFile {
        file: redb::backends::FileBackend::new(file)?,
        faults: faults.clone(),
    };
    Ok(builder.create_with_backend(backend)?)
}

fn init_schema(db: &Database) -> Result<(), StoreError> {
    use tables::*;
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        let found = meta.get(META_SCHEMA_VERSION)?.map(|v| v.value());
        match found {
            None => {
                meta.insert(META_SCHEMA_VERSION, SCHEMA_VERSION)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::SchemaTooNew {
                    found: v,
                    known: SCHEMA_VERSION,
                });
            }
            // Older schemas migrate here, one function per step, when there are any.
            Some(_) => {}
        }
        // Create every table so readers never meet a missing one.
        txn.open_table(ACCOUNT_RECORD)?;
        txn.open_table(ACCOUNT_UNREAD)?;
        txn.open_table(ACCOUNT_POSITION)?;
        txn.open_table(ACCOUNT_REJECTED)?;
        txn.open_table(CHAT_RECORD)?;
        txn.open_table(CHAT_MESSAGE)?;
        txn.open_table(SEQ_EVENT)?;
        txn.open_table(MESSAGE_REACTIONS)?;
        txn.open_table(CHAT_USER_READ)?;
        txn.open_table(CHAT_CONVERSATION)?;
        txn.open_table(CHAT_ACTIVITY)?;
        txn.open_table(LABEL_RECORD)?;
        txn.open_table(CHAT_NOTE)?;
        txn.open_table(SENDER_CHAT)?;
        if meta.get(META_SENDER_CHAT_BUILT)?.is_none() {
            build_sender_chat(&txn)?;
            meta.insert(META_SENDER_CHAT_BUILT, 1)?;
        }
    }
    txn.commit()?;
    Ok(())
}

/// Fills [`tables::SENDER_CHAT`] from the messages of a store written before it existed (once:
/// a flag in `meta` says it was done; ingest keeps it from then on). Only clear fields are read
/// (direction, sender ID, who received it): user IDs are positive, chats' negative. A record
/// that does not decode is left to `lanbox check` rather than stop the start.
fn build_sender_chat(txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    use crate::model::Direction;
    use tables::*;
    let messages = txn.open_table(CHAT_MESSAGE)?;
    let mut index = txn.open_table(SENDER_CHAT)?;
    for row in messages.iter()? {
        let (k, v) = row?;
        let (k, Ok(m)) = (k.value(), v.value().get()) else {
            continue;
        };
        if m.direction != Direction::Incoming || m.sender_id <= 0 {
            continue;
        }
        for &account in &m.seen_by {
            let key = (account, m.sender_id, k.scope, k.chat);
            if index.get(key)?.is_none_or(|d| d.value() > m.date) {
                index.insert(key, m.date)?;
            }
        }
    }
    Ok(())
}
