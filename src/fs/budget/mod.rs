//! Bounded memory (`--max-memory`): what memfs holds, kept in atomic counters, against a cap.
//!
//! ```text
//! used = resident chunk bytes + BLOB_BYTES per chunk       the store's own counters
//!        (less write buffers a pending commit's chunks
//!        share with its layers: they are dirty bytes)
//!      + dirty bytes (written, not yet committed)         Budget::dirty
//!      + a metadata estimate                               Budget::meta
//! ```
//!
//! The metadata estimate is charged where metadata is made and released where it goes: per
//! inode, per directory entry and its name, per symlink target byte, per extended attribute
//! with its name and value, and per kept version with each piece of its recipe. The live
//! content's recipe is its newest version's, so it is counted once. No operation walks
//! anything to know the total.
//!
//! Growth that would take `used` past the cap fails with ENOSPC, but first memfs drops old
//! versions (oldest commit first, never a file's newest; `history::retention`) to make
//! room: history is best-effort. Shrinking never fails. A commit is checked on its result:
//! it stores its new chunks, and if the result does not fit it drops them again and leaves
//! the file's dirty data as it was, readable and committable later.
//!
//! `Budget` owns the counters, the cap and the prune lock; the operations charge and
//! release through it, and a repair or check recounts them from the inodes.

use std::ops::Deref;
use std::sync::Arc;

use crate::fs::error::Errno;
use crate::fs::namespace::inode::{Body, InodeData};
use crate::fs::namespace::Locked;
use crate::store::{ContentStore, Recipe};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Mutex, MutexGuard};

#[cfg(test)]
mod tests;

// What each thing costs, in heap bytes: measured with a counting allocator (glibc on x86-64,
// usable size plus malloc's 8-byte header) over 100,000 of each, then rounded up a little.
// The hash maps and B-trees are measured full-grown, so their spare slots are included.

/// An inode: the `Arc<Inode>` (identity, counters, lock, times and ids, the largest body: a
/// regular file's empty content and history) and its slot in the inode table. Measured:
/// 375 bytes for a file, 311 for a directory, before the Merkle hash's cell (at most 72
/// bytes, `namespace::merkle`) was added.
pub const INODE_BYTES: u64 = 448;
/// A directory entry: its slots in the directory's name hash map and cookie B-tree and the
/// header of its shared name allocation (measured 136). The name's bytes come on top.
pub const ENTRY_BYTES: u64 = 144;
/// An extended attribute: its B-tree slot and two boxed slices. Name and value bytes come on
/// top.
pub const XATTR_BYTES: u64 = 96;
/// The attribute map of an inode that has any: a boxed B-tree and its first node (a first
/// attribute measured 480 bytes with its 23 bytes of name and value).
pub const XATTR_MAP_BYTES: u64 = 384;
/// A kept version: its entry in the history and the recipe's `Arc` and vector headers.
pub const VERSION_BYTES: u64 = 128;
/// One piece of a recipe (offset, length, blob pointer: 24 bytes) with the vector's spare
/// capacity; measured 53 per piece for a version of 1,682 pieces, tail chunk included.
pub const PIECE_BYTES: u64 = 48;
/// One stored chunk besides its bytes: its shared entry (id, reference count, pointers) and
/// its slot in the store's index (measured 149 when the count was the `Arc`'s own; the
/// explicit count adds 8).
pub const BLOB_BYTES: u64 = 160;

/// The machine's physical memory in bytes (0 if unknown).
pub fn physical_memory() -> u64 {
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if pages > 0 && size > 0 {
        (pages as u64).saturating_mul(size as u64)
    } else {
        0
    }
}

/// The default cap: half of physical memory, as tmpfs sizes itself (1 TiB if unknown).
pub fn default_capacity() -> u64 {
    match physical_memory() {
        0 => 1 << 40,
        ram => ram / 2,
    }
}

/// Why an operation that needs room did not complete.
#[derive(Debug)]
pub enum Fail {
    Errno(Errno),
    /// It needed this many bytes more than the cap allows.
    Short(u64),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Fail {
        Fail::Errno(e)
    }
}

/// The metadata cost of a kept version.
pub fn version_cost(recipe: &Recipe) -> u64 {
    (recipe.pieces().len() as u64)
        .saturating_mul(PIECE_BYTES)
        .saturating_add(VERSION_BYTES)
}

/// The metadata cost of an extended attribute.
pub fn xattr_cost(name: usize, value: usize) -> u64 {
    XATTR_BYTES
        .saturating_add(name as u64)
        .saturating_add(value as u64)
}

/// The metadata cost of a directory entry named `name`.
pub fn entry_cost(name: &[u8]) -> u64 {
    ENTRY_BYTES.saturating_add(name.len() as u64)
}

/// The metadata an inode holds apart from the entries naming it: the inode, its extended
/// attributes, a symlink's target, a file's versions. Released when it is freed.
pub fn inode_meta(data: &InodeData) -> u64 {
    let xattrs: u64 = match &data.meta.xattrs {
        Some(map) => map
            .iter()
            .map(|(n, v)| xattr_cost(n.len(), v.len()))
            .fold(XATTR_MAP_BYTES, u64::saturating_add),
        None => 0,
    };
    let body = match &data.body {
        Body::Symlink(target) => target.len() as u64,
        Body::File(f) => f.history.versions().map(|v| version_cost(&v.recipe)).sum(),
        Body::Dir(_) | Body::Special => 0,
    };
    INODE_BYTES.saturating_add(xattrs).saturating_add(body)
}

/// What one inode adds to the counters: (metadata, dirty bytes, droppable versions). The
/// entries of a directory are counted with the directory.
fn counted_in(data: &InodeData) -> (u64, u64, u64) {
    let mut meta = inode_meta(data);
    let (mut dirty, mut prunable) = (0, 0);
    match &data.body {
        Body::Dir(d) => meta += d.entries().map(|e| entry_cost(&e.name)).sum::<u64>(),
        Body::File(f) => {
            dirty = f.content.dirty_bytes();
            prunable = f.history.len().saturating_sub(1) as u64;
        }
        _ => {}
    }
    (meta, dirty, prunable)
}

fn sub(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
        Some(v.saturating_sub(n))
    });
}

/// What memfs holds against its cap, kept in counters that every change charges or
/// releases as it goes (no operation walks anything to know the total).
pub struct Budget {
    capacity: u64,
    /// Whose chunks count (their bytes and overhead come from its own counters).
    store: Arc<dyn ContentStore>,
    /// Uncommitted bytes held by all file contents.
    dirty: AtomicU64,
    /// The metadata estimate.
    meta: AtomicU64,
    /// The metadata of whole-tree snapshots (their chunks count in the store).
    snapshots: AtomicU64,
    /// Kept versions that are not their file's newest: what `make_room` could drop.
    prunable: AtomicU64,
    /// Versions dropped to make room so far.
    dropped_for_space: AtomicU64,
    /// One `make_room` at a time.
    prune_lock: Mutex<()>,
}

impl Budget {
    /// A budget of `capacity` bytes over `store`, already charged for the root inode.
    pub fn new(capacity: u64, store: Arc<dyn ContentStore>) -> Budget {
        Budget {
            capacity,
            store,
            dirty: AtomicU64::new(0),
            meta: AtomicU64::new(INODE_BYTES),
            snapshots: AtomicU64::new(0),
            prunable: AtomicU64::new(0),
            dropped_for_space: AtomicU64::new(0),
            prune_lock: Mutex::new(()),
        }
    }

    /// The cap on what memfs holds, in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// What memfs holds against the cap: unique chunk bytes held in this process (all of
    /// them for the in-memory store; a remote store's not yet stored) and their overhead,
    /// dirty bytes and the metadata estimate.
    pub fn used(&self) -> u64 {
        let store = self.store.stats();
        // Write buffers shared by the chunks of a commit not installed yet are dirty bytes
        // too: counted there.
        store
            .resident_bytes
            .saturating_sub(store.held_twice_bytes)
            .saturating_add(store.chunks.saturating_mul(BLOB_BYTES))
            .saturating_add(self.dirty.load(Ordering::SeqCst))
            .saturating_add(self.meta.load(Ordering::SeqCst))
            .saturating_add(self.snapshots.load(Ordering::SeqCst))
    }

    /// The metadata part of `used`, blob overhead included.
    pub fn metadata(&self) -> u64 {
        self.meta
            .load(Ordering::Relaxed)
            .saturating_add(self.snapshots.load(Ordering::Relaxed))
            .saturating_add(self.store.stats().chunks.saturating_mul(BLOB_BYTES))
    }

    /// Uncommitted bytes held by all file contents.
    pub fn dirty(&self) -> u64 {
        self.dirty.load(Ordering::Relaxed)
    }

    /// Old versions dropped so far to make room.
    pub fn versions_dropped_for_space(&self) -> u64 {
        self.dropped_for_space.load(Ordering::Relaxed)
    }

    /// Adds `n` to `counter` if `used` stays within the cap. Concurrent charges see each
    /// other (each adds before it checks), so together they never pass the cap.
    fn try_charge(&self, counter: &AtomicU64, n: u64) -> std::result::Result<(), Fail> {
        if n == 0 {
            return Ok(());
        }
        counter.fetch_add(n, Ordering::SeqCst);
        let used = self.used();
        if used <= self.capacity {
            return Ok(());
        }
        sub(counter, n);
        Err(Fail::Short(used - self.capacity))
    }

    /// Charges `n` metadata bytes, or says how much room is missing.
    pub fn charge_meta(&self, n: u64) -> std::result::Result<(), Fail> {
        self.try_charge(&self.meta, n)
    }

    /// Charges `n` dirty bytes, or says how much room is missing.
    pub fn charge_dirty(&self, n: u64) -> std::result::Result<(), Fail> {
        self.try_charge(&self.dirty, n)
    }

    /// Charges `n` bytes of snapshot metadata, or says how much room is missing.
    pub fn charge_snapshot(&self, n: u64) -> std::result::Result<(), Fail> {
        self.try_charge(&self.snapshots, n)
    }

    pub fn release_snapshot(&self, n: u64) {
        sub(&self.snapshots, n);
    }

    /// The snapshot metadata charged now.
    pub fn snapshots(&self) -> u64 {
        self.snapshots.load(Ordering::SeqCst)
    }

    /// Charges metadata whatever the cap (for changes too small and too vital to refuse,
    /// such as a rename's longer name).
    pub fn add_meta(&self, n: u64) {
        self.meta.fetch_add(n, Ordering::SeqCst);
    }

    pub fn release_meta(&self, n: u64) {
        sub(&self.meta, n);
    }

    /// Follows a change of dirty bytes that was not charged first (a shrink, or growth
    /// past what was charged).
    pub fn add_dirty(&self, delta: i64) {
        if delta > 0 {
            self.dirty.fetch_add(delta as u64, Ordering::SeqCst);
        } else if delta < 0 {
            self.release_dirty(delta.unsigned_abs());
        }
    }

    pub fn release_dirty(&self, n: u64) {
        sub(&self.dirty, n);
    }

    pub fn add_prunable(&self, n: u64) {
        self.prunable.fetch_add(n, Ordering::Relaxed);
    }

    pub fn release_prunable(&self, n: u64) {
        sub(&self.prunable, n);
    }

    /// Whether `n` more bytes would fit, without charging them.
    pub fn room_for(&self, n: u64) -> std::result::Result<(), Fail> {
        let want = self.used().saturating_add(n);
        if want <= self.capacity {
            Ok(())
        } else {
            Err(Fail::Short(want - self.capacity))
        }
    }

    /// The turn to drop versions for room, if any version could be dropped: one pruner at
    /// a time.
    pub fn prune_turn(&self) -> Option<MutexGuard<'_, ()>> {
        if self.prunable.load(Ordering::Relaxed) == 0 {
            return None;
        }
        Some(self.prune_lock.lock())
    }

    /// Counts versions dropped to make room.
    pub fn note_dropped_for_space(&self, n: u64) {
        self.dropped_for_space.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the counters from every live inode, each locked (a repair after a panic).
    pub fn recount(&self, live: &[Locked<'_>]) {
        let (mut meta, mut dirty, mut prunable) = (0u64, 0u64, 0u64);
        for (_, data) in live {
            let (m, d, p) = counted_in(data);
            meta += m;
            dirty += d;
            prunable += p;
        }
        self.meta.store(meta, Ordering::SeqCst);
        self.dirty.store(dirty, Ordering::SeqCst);
        self.prunable.store(prunable, Ordering::SeqCst);
    }

    /// Compares the metadata and droppable-version counters with what `data` (every live
    /// inode's, read while no namespace change runs) adds up to.
    pub fn verify(
        &self,
        data: impl IntoIterator<Item = impl Deref<Target = InodeData>>,
    ) -> std::result::Result<(), String> {
        let (mut meta, mut prunable) = (0u64, 0u64);
        for data in data {
            let (m, _, p) = counted_in(&data);
            meta += m;
            prunable += p;
        }
        let counted = self.meta.load(Ordering::Relaxed);
        if counted != meta {
            return Err(format!("metadata counter {counted}, walk finds {meta}"));
        }
        let counted = self.prunable.load(Ordering::Relaxed);
        if counted != prunable {
            return Err(format!("prunable counter {counted}, walk finds {prunable}"));
        }
        Ok(())
    }

    /// The metadata, dirty and droppable-version counters (tests of the repair).
    #[cfg(test)]
    pub fn counters(&self) -> [u64; 3] {
        [&self.meta, &self.dirty, &self.prunable].map(|c| c.load(Ordering::SeqCst))
    }
}
