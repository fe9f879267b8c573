//! How memfs asks the C allocator (glibc's malloc, behind Rust's `System`) to hold the
//! bytes it stores, so that its resident memory stays close to the bytes stored.
//!
//! Two things make glibc's defaults keep far more than memfs holds:
//! - **Arenas per thread.** A written file's bytes are allocated by the serving threads (the
//!   dirty layers' extents) and freed by a commit worker once they are chunked, while the
//!   chunks are allocated by the commit workers. Each thread allocates from an arena of its
//!   own, and memory freed into one arena is reused only by that arena's threads: the
//!   extents of a long write's backlog (up to about 160 MiB, see `commit.rs`) stayed
//!   resident, free, for the serving threads alone. One arena lets the chunks reuse them.
//!   The bench's phases (clone, untar, 1 GiB and 100 MiB writes) ended at 1.19× the bytes
//!   stored with the default and 1.06× with one arena, and a 1 GiB `dd` took as long (6
//!   interleaved runs). Small allocations still come from each thread's cache (tcache)
//!   without the arena's lock.
//! - **Free memory inside the heap is kept.** glibc returns memory to the kernel only from
//!   the top of its heap, so the extents of a write freed below chunks made after them stay
//!   resident: with one arena, a 300 MiB file left memfs at 444 MiB.
//!   [`give_back_free_memory`] returns the free pages (`malloc_trim`), which the commit
//!   workers do once they have been idle for [`IDLE_BEFORE_GIVING_BACK`] after some work
//!   (see `pending.rs`): a long write freed what it held twice, and the next request may
//!   not come for a long time. The same file then left memfs at 312 MiB.

use std::time::Duration;

/// How long the commit workers wait idle, after some work, before they give the memory it
/// freed back to the kernel. Memory given back costs a page fault per page when it is used
/// again: given back 100 ms after a 1 GiB write, the 100 MiB of small writes that followed
/// took 20% longer (5 interleaved runs). Bursts of work seconds apart reuse it; a mount
/// left idle gives it back.
pub const IDLE_BEFORE_GIVING_BACK: Duration = Duration::from_secs(5);

/// Makes every thread allocate from one arena. Call before any thread is started: glibc
/// gives a thread its own arena the first time it finds the shared one busy.
pub fn share_one_arena() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a parameter of the allocator.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns the allocator's free pages to the kernel. Costs a walk of the free lists and a
/// `madvise` per free run of pages, under the allocator's lock (22 ms after 1.3 GB of
/// mixed work), so call it after a burst of frees, not per free.
pub fn give_back_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
