//! Password hashing under a fixed memory budget.
//!
//! Each argon2id computation needs 19 MiB of working memory and a core for about 0.1 s on a
//! Pi 4. Left to the allocator, a flood of logins made glibc's heap grow by that much per
//! request (the small allocations of the waiting connections land in the freed holes, so the
//! next 19 MiB no longer fits) and never shrink: 200 parallel logins took the box to 1 GB.
//! So:
//!
//! - at most `concurrent` computations run at once, and at most `queued` more wait for a turn;
//!   any further request is refused at once (the caller answers 429 with `Retry-After`) rather
//!   than queued without bound;
//! - the working memory is a small pool of blocks mapped straight from the kernel (`mmap`), one
//!   per permitted computation, reused by every computation and never handed to the allocator;
//! - when the last admitted computation finishes, the pool's pages are given back to the kernel
//!   (`madvise(MADV_DONTNEED)`), so an idle box holds none of it. The next computation faults
//!   the pages in again (a few milliseconds, against the hash's 100).
//!
//! [`Hashing::admit`] takes a place (running or waiting); [`Admitted::run`] waits for a turn and
//! runs the work on the blocking pool with a block of the pool. A place left before its turn (the
//! client went away) is given back; a computation that started runs to its end even then, and
//! its block returns to the pool only when it is done.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Block;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AuthError;

/// What a refused request is told to wait: a queued computation is done within a second.
pub const BUSY_RETRY: Duration = Duration::from_secs(1);

/// The bounded hashing service: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Hashing {
    shared: Arc<Shared>,
}

struct Shared {
    /// Turns: one permit per computation that may run at once.
    turns: Arc<Semaphore>,
    /// Requests holding a place, running or waiting for a turn.
    admitted: AtomicUsize,
    max_admitted: usize,
    /// Blocks of working memory, each `blocks` long, not in use now. A std `Mutex`, not a tokio
    /// one: nothing awaits while it is held.
    idle: Mutex<Vec<Memory>>,
    blocks: usize,
    computed: AtomicU64,
}

impl Hashing {
    /// `concurrent` computations at once (at least one), `queued` more waiting, each with
    /// `blocks` KiB of working memory.
    pub fn new(concurrent: usize, queued: usize, blocks: usize) -> Hashing {
        let concurrent = concurrent.max(1);
        Hashing {
            shared: Arc::new(Shared {
                turns: Arc::new(Semaphore::new(concurrent)),
                admitted: AtomicUsize::new(0),
                max_admitted: concurrent.saturating_add(queued),
                idle: Mutex::new(Vec::with_capacity(concurrent)),
                blocks,
                computed: AtomicU64::new(0),
            }),
        }
    }

    /// A place to run or wait, or `Err(retry_after)` when every place is taken.
    pub fn admit(&self) -> Result<Admitted, Duration> {
        let s = &self.shared;
        s.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < s.max_admitted).then_some(n + 1)
            })
            .map_err(|_| BUSY_RETRY)?;
        Ok(Admitted {
            place: Place(self.shared.clone()),
        })
    }

    /// Computations finished since the start (the admin stats and the tests read it).
    pub fn computed(&self) -> u64 {
        self.shared.computed.load(Ordering::Relaxed)
    }
}

/// A place among the admitted requests; given back on drop.
struct Place(Arc<Shared>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An admitted request, before its turn.
#[must_use]
pub struct Admitted {
    place: Place,
}

impl Admitted {
    /// Waits for a turn, then runs `work` on the blocking pool with a block of working memory.
    pub async fn run<T, F>(self, work: F) -> Result<T, AuthError>
    where
        T: Send + 'static,
        F: FnOnce(&mut [Block]) -> T + Send + 'static,
    {
        let shared = self.place.0.clone();
        let turn = shared
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthError::Internal("hashing closed".into()))?;
        let pooled = shared.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let memory = match pooled {
            Some(m) => m,
            None => Memory::new(shared.blocks)?,
        };
        let mut lease = Lease {
            shared,
            place: Some(self.place),
            memory: Some(memory),
            _turn: turn,
        };
        tokio::task::spawn_blocking(move || {
            let out = work(lease.memory().blocks());
            lease.shared.computed.fetch_add(1, Ordering::Relaxed);
            out
        })
        .await
        .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))
    }
}

/// A running computation's place, turn and memory. On drop the memory goes back to the pool
/// (and the pool's pages to the kernel when nobody else is admitted), then the turn is freed.
struct Lease {
    shared: Arc<Shared>,
    place: Option<Place>,
    memory: Option<Memory>,
    _turn: OwnedSemaphorePermit,
}

impl Lease {
    fn memory(&mut self) -> &mut Memory {
        self.memory.as_mut().expect("taken only on drop")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Leave first, then look: whichever computation returns its block last sees no one
        // admitted (unless a new request came) and releases every block.
        drop(self.place.take());
        let mut idle = self.shared.idle.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = self.memory.take() {
            idle.push(m);
        }
        if self.shared.admitted.load(Ordering::Acquire) == 0 {
            idle.iter_mut().for_each(Memory::release);
        }
        // `_turn` is dropped after this body: a waiting request finds the block in the pool.
    }
}

/// Working memory for one argon2 computation, mapped from the kernel rather than taken from the
/// allocator, so that its pages can be returned without unmapping it.
pub struct Memory {
    ptr: NonNull<Block>,
    blocks: usize,
}

// SAFETY: the mapping belongs to this value alone; `&mut self` guards every access.
unsafe impl Send for Memory {}

impl Memory {
    /// `blocks` blocks of 1 KiB, reading as zeros, not yet resident.
    pub fn new(blocks: usize) -> Result<Memory, AuthError> {
        let len = blocks
            .checked_mul(Block::SIZE)
            .filter(|&l| l > 0)
            .ok_or_else(|| AuthError::Internal("hash memory size".into()))?;
        // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(AuthError::Internal(format!(
                "mapping hash memory: {}",
                std::io::Error::last_os_error()
            )));
        }
        let ptr = NonNull::new(p.cast::<Block>())
            .ok_or_else(|| AuthError::Internal("mapping hash memory: null".into()))?;
        Ok(Memory { ptr, blocks })
    }

    pub fn blocks(&mut self) -> &mut [Block] {
        // SAFETY: the mapping is `blocks * Block::SIZE` bytes, page-aligned (so aligned for
        // `Block`), readable and writable, and any bytes are a valid `Block`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.blocks) }
    }

    /// Gives the pages back to the kernel; the mapping stays and reads as zeros again.
    pub fn release(&mut self) {
        // SAFETY: the range is exactly our mapping, and no reference into it is alive
        // (`&mut self`). Advice only: a failure leaves the pages resident, nothing else.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().cast(),
                self.blocks * Block::SIZE,
                libc::MADV_DONTNEED,
            );
        }
    }
}

impl Drop for Memory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`; no reference into it outlives this.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.blocks * Block::SIZE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn places_are_bounded_and_given_back() {
        let h = Hashing::new(1, 1, 4);
        let a = h.admit().unwrap();
        let b = h.admit().unwrap();
        assert_eq!(
            h.admit().err(),
            Some(BUSY_RETRY),
            "one running, one waiting, no more"
        );
        drop(b);
        let c = h.admit().expect("a place left before its turn is given back");
        let n = a.run(|m| m.len()).await.unwrap();
        assert_eq!(n, 4);
        assert_eq!(h.computed(), 1);
        let d = h.admit().expect("a finished computation gives its place back");
        drop((c, d));
    }

    #[tokio::test]
    async fn the_pool_reuses_its_blocks() {
        let h = Hashing::new(2, 0, 8);
        let first = h.admit().unwrap().run(|m| m.as_ptr() as usize).await.unwrap();
        let again = h.admit().unwrap().run(|m| m.as_ptr() as usize).await.unwrap();
        assert_eq!(first, again, "the same block, not a new allocation");
    }

    #[test]
    fn released_memory_reads_as_zeros_and_is_usable() {
        let mut m = Memory::new(3).unwrap();
        m.blocks()[2].as_mut()[5] = 7;
        m.release();
        assert_eq!(m.blocks()[2].as_ref()[5], 0);
        m.blocks()[2].as_mut()[5] = 9;
        assert_eq!(m.blocks()[2].as_ref()[5], 9);
    }
}
