//! The local attachment store: encrypted files under `DIR/attachments/`, the embedded default
//! (lanbox needs no S3). A file is written to `ID.part`, flushed, then renamed into place, so a
//! crash leaves either nothing or a whole file; stale `.part` files are removed at start.
//! With S3 configured this directory is a cache: [`LocalStore::usage`] lets the syncer evict.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::AttachmentError;

#[derive(Debug, Clone)]
pub struct LocalStore {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AttachmentError + '_ {
    move |source| AttachmentError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl LocalStore {
    pub fn open(dir: PathBuf) -> Result<LocalStore, AttachmentError> {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().is_some_and(|e| e == "part") {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(LocalStore { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:016x}.lba"))
    }

    pub fn exists(&self, id: u64) -> bool {
        self.path(id).exists()
    }

    /// Starts writing the file of `id`.
    pub fn create(&self, id: u64) -> Result<PartFile, AttachmentError> {
        let tmp = self.dir.join(format!("{id:016x}.part"));
        let file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        Ok(PartFile {
            file: std::io::BufWriter::with_capacity(256 << 10, file),
            tmp,
            dest: self.path(id),
            written: 0,
        })
    }

    pub fn remove(&self, id: u64) -> Result<(), AttachmentError> {
        let p = self.path(id);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&p)(e)),
        }
    }

    /// Bytes held (encrypted files only).
    pub fn usage(&self) -> Result<u64, AttachmentError> {
        let mut total = 0;
        for entry in std::fs::read_dir(&self.dir).map_err(io(&self.dir))? {
            let entry = entry.map_err(io(&self.dir))?;
            if entry.path().extension().is_some_and(|e| e == "lba") {
                total += entry.metadata().map_err(io(&self.dir))?.len();
            }
        }
        Ok(total)
    }
}

/// A file being written; [`PartFile::commit`] makes it visible.
pub struct PartFile {
    file: std::io::BufWriter<std::fs::File>,
    tmp: PathBuf,
    dest: PathBuf,
    written: u64,
}

impl PartFile {
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), AttachmentError> {
        self.written += bytes.len() as u64;
        self.file.write_all(bytes).map_err(io(&self.tmp))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes to disk and renames into place.
    pub fn commit(self) -> Result<(), AttachmentError> {
        let file = self
            .file
            .into_inner()
            .map_err(|e| io(&self.tmp)(e.into_error()))?;
        file.sync_data().map_err(io(&self.tmp))?;
        std::fs::rename(&self.tmp, &self.dest).map_err(io(&self.dest))?;
        Ok(())
    }

    pub fn abort(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}
