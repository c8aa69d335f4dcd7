//! Free space of the filesystem under a directory (`statvfs`): the attachment stats show it to
//! admins, and the store's writer asks it before it probes a full disk with a real write (no
//! point writing megabytes to an SD card that plainly has no room).

use std::path::Path;

/// The space of one filesystem, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// What an unprivileged process may still write (`f_bavail`: root's reserve excluded).
    pub available: u64,
    pub total: u64,
}

/// The space of the filesystem holding `dir`.
#[allow(clippy::unnecessary_cast)] // the field types differ between targets
pub fn space(dir: &Path) -> std::io::Result<Space> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` points to writable memory of the right
    // type, which statvfs fills completely when it returns 0.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    let unit = if st.f_frsize > 0 { st.f_frsize } else { st.f_bsize } as u64;
    Ok(Space {
        available: st.f_bavail as u64 * unit,
        total: st.f_blocks as u64 * unit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_of_a_real_directory() {
        let s = space(&std::env::temp_dir()).unwrap();
        assert!(s.total > 0 && s.available <= s.total, "{s:?}");
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        assert!(space(Path::new("/nonexistent/lanbox-disk-test")).is_err());
    }
}
