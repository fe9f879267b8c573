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
//!
//! Since chunks keep their bytes in the write buffers they were cut from (`store/pinned.rs`),
//! a sequential write's buffers become its chunks instead of being freed, so most buffers
//! are new memory. [`append_populated`] makes a large one's pages present in one call.

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

/// A copy this long or longer has its pages made present before it is made (see
/// [`append_populated`]). Writes of 1 MiB are the kernel's usual; a small file's are not
/// worth a system call.
const POPULATE_MIN: usize = 64 << 10;

/// Appends `bytes` to `dst`, which has room for them, usually in new memory. The pages of
/// a long append are made present first by one `madvise(MADV_POPULATE_WRITE)` rather than
/// by a page fault for each 4 KiB, each a trap that costs more in this kind of VM than the
/// page's zeroing: in a 1 GiB `dd` the ring thread spent 8.6% of memfs's CPU in the fault
/// entry alone. With it memfs's CPU for the `dd` fell from 1.72–1.83 s to 1.59–1.72 s (4
/// interleaved runs); filling 1 GiB of new memory alone went from 0.44 s to 0.31 s. Pages
/// already present (memory malloc reuses) cost only the walk of their page table; a kernel
/// older than 5.14 refuses the call, and the copy then faults as before.
pub fn append_populated(dst: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(dst.capacity() - dst.len() >= bytes.len(), "no room");
    if bytes.len() >= POPULATE_MIN {
        const PAGE: usize = 4096;
        let start = dst.as_mut_ptr() as usize + dst.len();
        let first = start.next_multiple_of(PAGE);
        let end = (start + bytes.len()) & !(PAGE - 1);
        if end > first {
            // SAFETY: whole pages inside the allocation's room, which nothing else uses;
            // MADV_POPULATE_WRITE only makes them present and changes no byte.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    end - first,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    dst.extend_from_slice(bytes);
}
