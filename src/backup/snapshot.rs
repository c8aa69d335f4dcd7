//! What a backup holds and how it is written, checked and restored.
//!
//! Inside the encrypted stream ([`super::format`]), items follow each other:
//!
//! ```text
//! 'M' len u32 | manifest (JSON: when, which lanbox, schema, tables and their record counts)
//! 'T' name len u16 | name | records u64, then per record: key len u32 | key | value len u32 | value
//! 'F' name len u16 | name | length u64 | bytes      (master key, config, TLS files, attachments)
//! 'E' len u32 | trailer (JSON: attachment files copied)
//! ```
//!
//! Records are copied as redb stores them: sealed where they say anything, so the backup never
//! holds plaintext that was sealed at rest (and the whole stream is encrypted again on top).
//! They all come from one read transaction, so the snapshot is consistent while ingest goes
//! on, and they stream one at a time: memory stays at a chunk and a record whatever the size of
//! the store. Attachments already in the bucket are referenced (their records), not copied;
//! files only on this box are copied, still encrypted as they are on disk.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::BackupError;
use super::format::{Decryptor, Encryptor, Header, Kdf};
use super::tables::{self, CopyTable};
use crate::store::Reader;
use crate::store::seal::SecretKey;

pub const MASTER_KEY: &str = "master.key";
/// A sealed box's master key (sealed boot), restored as it was.
pub const SEALED_MASTER_KEY: &str = crate::store::sealed_key::SEALED_MASTER_KEY_FILE;
pub const CONFIG: &str = "lanbox.toml";
const TLS_FILES: [&str; 2] = ["tls/cert.pem", "tls/key.pem"];
/// Largest record or file name a restore accepts (far above anything lanbox writes).
const MAX_RECORD: usize = 256 << 20;
/// Records restored per write transaction: bounds the restore's memory on a large store.
const RESTORE_BATCH: u64 = 20_000;

/// Where the box's files are.
#[derive(Debug, Clone)]
pub struct Sources {
    pub data_dir: PathBuf,
    /// The master key file (or systemd credential) in use.
    pub master_key: PathBuf,
    /// The configuration file in use (`LANBOX_CONFIG`, else `DIR/lanbox.toml`).
    pub config: PathBuf,
    /// The bucket attachments are referenced in, for the manifest (never the credentials).
    pub s3: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u16,
    pub created_at: i64,
    pub lanbox_version: String,
    pub schema_version: u64,
    pub last_seq: u64,
    pub tables: Vec<TableCount>,
    /// Attachments whose encrypted files are in the bucket: referenced, not copied.
    pub attachments_in_s3: u64,
    pub s3_endpoint: Option<String>,
    pub s3_bucket: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    pub name: String,
    pub records: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Trailer {
    files: u64,
    attachment_files: u64,
}

/// What a backup was found to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub manifest: Manifest,
    pub records: u64,
    pub files: u64,
    pub attachment_files: u64,
    /// Size of the backup file.
    pub bytes: u64,
}

fn w(e: std::io::Error) -> BackupError {
    BackupError::from_io(e, true)
}

fn put_name(out: &mut impl Write, tag: u8, name: &str) -> Result<(), BackupError> {
    out.write_all(&[tag]).map_err(w)?;
    out.write_all(&(name.len() as u16).to_be_bytes()).map_err(w)?;
    out.write_all(name.as_bytes()).map_err(w)
}

fn put_blob(out: &mut impl Write, tag: u8, json: &[u8]) -> Result<(), BackupError> {
    out.write_all(&[tag]).map_err(w)?;
    out.write_all(&(json.len() as u32).to_be_bytes()).map_err(w)?;
    out.write_all(json).map_err(w)
}

fn put_file(out: &mut impl Write, name: &str, len: u64, body: &mut impl Read) -> Result<(), BackupError> {
    put_name(out, b'F', name)?;
    out.write_all(&len.to_be_bytes()).map_err(w)?;
    let copied = std::io::copy(&mut body.take(len), out).map_err(|e| BackupError::from_io(e, false))?;
    if copied != len {
        return Err(BackupError::Read(format!("{name} shrank while it was copied")));
    }
    Ok(())
}

/// Writes a backup of the snapshot `r` (one read transaction) and the files of `src` to `out`,
/// encrypted under `key`. Blocking: run it on a blocking thread.
pub fn write<W: Write>(
    r: &Reader,
    src: &Sources,
    key: &SecretKey,
    kdf: Kdf,
    out: W,
) -> Result<(W, Summary), BackupError> {
    let txn = r.txn();
    let unknown = tables::unknown(txn)?;
    if !unknown.is_empty() {
        return Err(BackupError::UnknownTables(unknown.join(", ")));
    }
    let mut counts = Vec::new();
    for t in tables::ALL {
        counts.push(TableCount {
            name: t.name().to_string(),
            records: t.len(txn)?,
        });
    }
    let (copy, in_s3) = attachment_files(r)?;
    let manifest = Manifest {
        format: super::format::VERSION,
        created_at: crate::store::ctx::unix_now(),
        lanbox_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_version: meta(r, crate::store::tables::META_SCHEMA_VERSION)?,
        last_seq: r.last_seq()?,
        tables: counts,
        attachments_in_s3: in_s3,
        s3_endpoint: src.s3.as_ref().map(|s| s.0.clone()),
        s3_bucket: src.s3.as_ref().map(|s| s.1.clone()),
    };
    let mut enc = Encryptor::new(std::io::BufWriter::with_capacity(256 << 10, out), key, kdf)?;
    put_blob(
        &mut enc,
        b'M',
        &serde_json::to_vec(&manifest).expect("manifest serialises"),
    )?;
    let mut records = 0;
    for (t, count) in tables::ALL.iter().zip(&manifest.tables) {
        put_name(&mut enc, b'T', t.name())?;
        enc.write_all(&count.records.to_be_bytes()).map_err(w)?;
        let mut n = 0u64;
        t.dump(txn, &mut |k, v| {
            enc.write_all(&(k.len() as u32).to_be_bytes()).map_err(w)?;
            enc.write_all(k).map_err(w)?;
            enc.write_all(&(v.len() as u32).to_be_bytes()).map_err(w)?;
            enc.write_all(v).map_err(w)?;
            n += 1;
            Ok(())
        })?;
        if n != count.records {
            return Err(BackupError::Read(format!(
                "table {} changed inside one snapshot",
                t.name()
            )));
        }
        records += n;
    }
    let mut trailer = Trailer::default();
    let master = std::fs::read(&src.master_key).map_err(|e| BackupError::file(&src.master_key, e))?;
    let name = if src.master_key.ends_with(SEALED_MASTER_KEY) {
        SEALED_MASTER_KEY
    } else {
        MASTER_KEY
    };
    put_file(&mut enc, name, master.len() as u64, &mut &master[..])?;
    trailer.files += 1;
    let mut small = vec![(CONFIG.to_string(), src.config.clone())];
    small.extend(TLS_FILES.iter().map(|f| (f.to_string(), src.data_dir.join(f))));
    for (name, path) in small {
        match std::fs::File::open(&path) {
            Ok(mut f) => {
                let len = f.metadata().map_err(|e| BackupError::file(&path, e))?.len();
                put_file(&mut enc, &name, len, &mut f)?;
                trailer.files += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::file(&path, e)),
        }
    }
    for id in copy {
        let name = attachment_name(id);
        let path = src.data_dir.join(&name);
        // A file deleted since the snapshot belongs to a message deleted since: leave it out.
        let Ok(mut f) = std::fs::File::open(&path) else {
            continue;
        };
        let len = f.metadata().map_err(|e| BackupError::file(&path, e))?.len();
        put_file(&mut enc, &name, len, &mut f)?;
        trailer.attachment_files += 1;
    }
    put_blob(
        &mut enc,
        b'E',
        &serde_json::to_vec(&trailer).expect("trailer serialises"),
    )?;
    let (buffered, bytes) = enc.finish()?;
    let out = buffered
        .into_inner()
        .map_err(|e| BackupError::from_io(e.into_error(), true))?;
    Ok((
        out,
        Summary {
            manifest,
            records,
            files: trailer.files,
            attachment_files: trailer.attachment_files,
            bytes,
        },
    ))
}

fn meta(r: &Reader, name: &str) -> Result<u64, BackupError> {
    let t = r
        .txn()
        .open_table(crate::store::tables::META)
        .map_err(|e| BackupError::Store(crate::store::StoreError::Db(e.into())))?;
    Ok(t.get(name)
        .map_err(|e| BackupError::Store(e.into()))?
        .map(|v| v.value())
        .unwrap_or(0))
}

fn attachment_name(id: u64) -> String {
    format!("attachments/{id:016x}.lba")
}

/// Attachments whose file is only on this box (copied), and the number in the bucket.
fn attachment_files(r: &Reader) -> Result<(Vec<u64>, u64), BackupError> {
    use crate::attachments::tables::{ATTACHMENT_RECORD, State};
    let t = match r.txn().open_table(ATTACHMENT_RECORD) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok((Vec::new(), 0)),
        Err(e) => return Err(BackupError::Store(crate::store::StoreError::Db(e.into()))),
    };
    let (mut copy, mut in_s3) = (Vec::new(), 0);
    for row in t.iter().map_err(|e| BackupError::Store(e.into()))? {
        let rec = row.map_err(|e| BackupError::Store(e.into()))?.1.value().get()?;
        if rec.synced {
            in_s3 += 1;
        } else if rec.local && rec.state == State::Ready {
            copy.push(rec.id);
        }
    }
    Ok((copy, in_s3))
}

/// Reads the items of a decrypted backup.
struct Items<R: Read> {
    input: Decryptor<R>,
}

enum Item {
    Manifest(Manifest),
    Table { name: String, records: u64 },
    File { name: String, len: u64 },
    End(Trailer),
}

fn r(e: std::io::Error) -> BackupError {
    BackupError::from_io(e, false)
}

impl<R: Read> Items<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], BackupError> {
        let mut b = [0u8; N];
        self.input.read_exact(&mut b).map_err(r)?;
        Ok(b)
    }

    fn vec(&mut self, len: usize) -> Result<Vec<u8>, BackupError> {
        if len > MAX_RECORD {
            return Err(BackupError::Damaged(
                "a record is larger than any lanbox writes".into(),
            ));
        }
        let mut v = vec![0u8; len];
        self.input.read_exact(&mut v).map_err(r)?;
        Ok(v)
    }

    fn name(&mut self) -> Result<String, BackupError> {
        let len = u16::from_be_bytes(self.bytes()?) as usize;
        String::from_utf8(self.vec(len)?).map_err(|_| BackupError::Damaged("a name is not UTF-8".into()))
    }

    fn json<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, BackupError> {
        let len = u32::from_be_bytes(self.bytes()?) as usize;
        serde_json::from_slice(&self.vec(len)?)
            .map_err(|_| BackupError::Damaged("the manifest or trailer does not parse".into()))
    }

    fn next(&mut self) -> Result<Item, BackupError> {
        let [tag] = self.bytes()?;
        Ok(match tag {
            b'M' => Item::Manifest(self.json()?),
            b'T' => Item::Table {
                name: self.name()?,
                records: u64::from_be_bytes(self.bytes()?),
            },
            b'F' => Item::File {
                name: self.name()?,
                len: u64::from_be_bytes(self.bytes()?),
            },
            b'E' => Item::End(self.json()?),
            _ => return Err(BackupError::Damaged("an unknown item".into())),
        })
    }

    fn record(&mut self) -> Result<(Vec<u8>, Vec<u8>), BackupError> {
        let kl = u32::from_be_bytes(self.bytes()?) as usize;
        let k = self.vec(kl)?;
        let vl = u32::from_be_bytes(self.bytes()?) as usize;
        let v = self.vec(vl)?;
        Ok((k, v))
    }

    /// After the end item: the final chunk must have been the last thing in the file.
    fn at_end(&mut self) -> Result<(), BackupError> {
        let mut probe = [0u8; 1];
        match self.input.read(&mut probe).map_err(r)? {
            0 if self.input.finished() => Ok(()),
            0 => Err(BackupError::Truncated("the final chunk is missing".into())),
            _ => Err(BackupError::Damaged(
                "data follows the end of the contents".into(),
            )),
        }
    }
}

/// What each item of a backup is handed to while it is read.
trait Visit {
    fn manifest(&mut self, m: &Manifest) -> Result<(), BackupError>;
    /// Consumes exactly `records` records from `next`.
    fn table(
        &mut self,
        name: &str,
        records: u64,
        next: &mut dyn FnMut() -> Result<(Vec<u8>, Vec<u8>), BackupError>,
    ) -> Result<(), BackupError>;
    /// Consumes exactly `len` bytes from `body`.
    fn file(&mut self, name: &str, len: u64, body: &mut dyn Read) -> Result<(), BackupError>;
}

/// Reads a whole backup from `input` with the key from `passphrase` (or given directly),
/// handing its items to `v`; every chunk is authenticated, counts are checked against the
/// manifest, and the file must end right after its final chunk.
fn walk<R: Read>(
    input: R,
    key: KeySource<'_>,
    v: &mut dyn Visit,
) -> Result<(Manifest, Trailer, u64), BackupError> {
    let mut counted = Counted { inner: input, n: 0 };
    let header = Header::read(&mut counted)?;
    let key = match key {
        KeySource::Key(k) => k.clone(),
        KeySource::Passphrase(p) => header.kdf.derive(p)?,
    };
    let mut items = Items {
        input: Decryptor::new(&mut counted, &header, &key)?,
    };
    let Item::Manifest(manifest) = items.next()? else {
        return Err(BackupError::Damaged("the manifest is missing".into()));
    };
    if manifest.schema_version > crate::store::tables::SCHEMA_VERSION {
        return Err(BackupError::TooNew(manifest.lanbox_version.clone()));
    }
    v.manifest(&manifest)?;
    let mut tables_seen = 0;
    let trailer = loop {
        match items.next()? {
            Item::Manifest(_) => return Err(BackupError::Damaged("a second manifest".into())),
            Item::Table { name, records: n } => {
                let expected = manifest.tables.iter().find(|t| t.name == name).map(|t| t.records);
                if expected != Some(n) {
                    return Err(BackupError::Damaged(format!(
                        "table {name} does not match the manifest"
                    )));
                }
                let mut left = n;
                let mut next = || {
                    left = left
                        .checked_sub(1)
                        .ok_or_else(|| BackupError::Damaged("too many records".into()))?;
                    items.record()
                };
                v.table(&name, n, &mut next)?;
                if left != 0 {
                    return Err(BackupError::Damaged(format!(
                        "table {name} was not read to its end"
                    )));
                }
                tables_seen += 1;
            }
            Item::File { name, len } => {
                let mut body = (&mut items.input).take(len);
                v.file(&name, len, &mut body)?;
                if body.limit() != 0 {
                    return Err(BackupError::Truncated(format!("{name} is incomplete")));
                }
            }
            Item::End(t) => break t,
        }
    };
    if tables_seen != manifest.tables.len() {
        return Err(BackupError::Damaged("tables are missing".into()));
    }
    items.at_end()?;
    drop(items);
    Ok((manifest, trailer, counted.n))
}

enum KeySource<'a> {
    Key(&'a SecretKey),
    Passphrase(&'a str),
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// Counts and discards: what verifying needs.
#[derive(Default)]
struct Check {
    records: u64,
    files: u64,
}

impl Visit for Check {
    fn manifest(&mut self, _: &Manifest) -> Result<(), BackupError> {
        Ok(())
    }

    fn table(
        &mut self,
        _: &str,
        records: u64,
        next: &mut dyn FnMut() -> Result<(Vec<u8>, Vec<u8>), BackupError>,
    ) -> Result<(), BackupError> {
        for _ in 0..records {
            next()?;
        }
        self.records += records;
        Ok(())
    }

    fn file(&mut self, _: &str, _: u64, body: &mut dyn Read) -> Result<(), BackupError> {
        std::io::copy(body, &mut std::io::sink()).map_err(r)?;
        self.files += 1;
        Ok(())
    }
}

/// Decrypts and checks a whole backup without restoring anything: every chunk authenticates,
/// the file is complete, and the contents match the manifest. With the box's key (after
/// writing) or the passphrase (anywhere).
pub fn verify_with_key(input: impl Read, key: &SecretKey) -> Result<Summary, BackupError> {
    verify(input, KeySource::Key(key))
}

pub fn verify_with_passphrase(input: impl Read, passphrase: &str) -> Result<Summary, BackupError> {
    verify(input, KeySource::Passphrase(passphrase))
}

fn verify(input: impl Read, key: KeySource<'_>) -> Result<Summary, BackupError> {
    let mut c = Check::default();
    let (manifest, trailer, bytes) = walk(input, key, &mut c)?;
    if c.files != trailer.files + trailer.attachment_files {
        return Err(BackupError::Damaged(
            "the file count does not match the trailer".into(),
        ));
    }
    Ok(Summary {
        manifest,
        records: c.records,
        files: trailer.files,
        attachment_files: trailer.attachment_files,
        bytes,
    })
}

/// Writes what a backup holds into `dir` (a temporary directory, see [`restore`]).
struct Restore {
    dir: PathBuf,
    db: Option<redb::Database>,
    records: u64,
    files: u64,
}

fn is_restorable(name: &str) -> bool {
    if name == MASTER_KEY || name == SEALED_MASTER_KEY || name == CONFIG || TLS_FILES.contains(&name) {
        return true;
    }
    name.strip_prefix("attachments/")
        .and_then(|f| f.strip_suffix(".lba"))
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Visit for Restore {
    fn manifest(&mut self, _: &Manifest) -> Result<(), BackupError> {
        let path = self.dir.join(crate::store::DB_FILE);
        self.db = Some(redb::Database::create(&path).map_err(|e| BackupError::Store(e.into()))?);
        Ok(())
    }

    fn table(
        &mut self,
        name: &str,
        records: u64,
        next: &mut dyn FnMut() -> Result<(Vec<u8>, Vec<u8>), BackupError>,
    ) -> Result<(), BackupError> {
        let table: &dyn CopyTable =
            tables::by_name(name).ok_or_else(|| BackupError::UnknownTables(name.to_string()))?;
        let db = self.db.as_ref().expect("the manifest comes first");
        let mut left = records;
        let store = |e: redb::Error| BackupError::Store(crate::store::StoreError::Db(e));
        loop {
            let txn = db.begin_write().map_err(|e| store(e.into()))?;
            let mut batch = left.min(RESTORE_BATCH);
            left -= batch;
            table.load(&txn, &mut || {
                if batch == 0 {
                    return Ok(None);
                }
                batch -= 1;
                next().map(Some)
            })?;
            txn.commit().map_err(|e| store(e.into()))?;
            if left == 0 {
                break;
            }
        }
        self.records += records;
        Ok(())
    }

    fn file(&mut self, name: &str, _: u64, body: &mut dyn Read) -> Result<(), BackupError> {
        if !is_restorable(name) {
            return Err(BackupError::Damaged(
                "a file with a name lanbox never writes".into(),
            ));
        }
        let path = self.dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BackupError::file(parent, e))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&path).map_err(|e| BackupError::file(&path, e))?;
        std::io::copy(body, &mut f).map_err(|e| BackupError::from_io(e, false))?;
        f.sync_all().map_err(|e| BackupError::file(&path, e))?;
        self.files += 1;
        Ok(())
    }
}

/// Restores the backup in `input` into `target`, a data directory that must not exist yet (or
/// be empty). Everything is written into a temporary directory beside it, which is renamed to
/// `target` only once the whole backup has been read and checked: a wrong passphrase, a damaged
/// or truncated file leaves nothing behind. Blocking (argon2id, disk): run it on a blocking
/// thread.
pub fn restore(input: impl Read, passphrase: &str, target: &Path) -> Result<Summary, BackupError> {
    match std::fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(BackupError::TargetNotEmpty(target.display().to_string()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(BackupError::file(target, e)),
    }
    let name = target
        .file_name()
        .ok_or_else(|| BackupError::TargetNotEmpty(target.display().to_string()))?
        .to_string_lossy()
        .into_owned();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = parent.join(format!(".{name}.restoring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| BackupError::file(&tmp, e))?;
    let mut v = Restore {
        dir: tmp.clone(),
        db: None,
        records: 0,
        files: 0,
    };
    let result = walk(input, KeySource::Passphrase(passphrase), &mut v);
    let db = v.db.take();
    drop(db);
    let finished = result.and_then(|(manifest, trailer, bytes)| {
        if !tmp.join(MASTER_KEY).exists() && !tmp.join(SEALED_MASTER_KEY).exists() {
            return Err(BackupError::Damaged("the backup holds no master key".into()));
        }
        std::fs::rename(&tmp, target).map_err(|e| BackupError::file(target, e))?;
        Ok(Summary {
            manifest,
            records: v.records,
            files: trailer.files,
            attachment_files: trailer.attachment_files,
            bytes,
        })
    });
    if finished.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    finished
}
