//! The content store: chunk bytes kept once per [`ChunkId`], each with an explicit count of
//! the references to it.
//!
//! memfs holds its store as `Arc<dyn ContentStore>`, so the engine behind it can be picked
//! at start. [`MemoryStore`](super::MemoryStore) keeps everything in this process; an engine
//! on a server (Redis Cluster: chunks keyed by id, written with SET NX) implements the same
//! operations, keeping its index entries (and their counts) in this process and talking to
//! the server when a chunk is new or reclaimed.
//!
//! References are [`ChunkRef`] values (see [`super::chunk`]): `put` and `reference` take
//! one, cloning a `ChunkRef` takes another, dropping one releases it, and the last one to
//! go calls [`ContentStore::reclaim`]. Everything else only looks: `get`, `refs`,
//! `contains`, `stats` and `for_each_chunk` never change a count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use rayon::prelude::*;

use super::chunk::{ChunkId, ChunkRef};
use super::recipe::Recipe;

/// What [`ContentStore::put`] did.
#[derive(Debug)]
pub struct Put {
    /// The reference it took.
    pub chunk: ChunkRef,
    /// Whether the bytes were new to the store (they take memory now).
    pub new: bool,
}

/// A chunk a commit cut, for [`ContentStore::put_cuts`].
#[derive(Clone)]
pub struct Cut {
    pub bytes: Bytes,
    /// The buffer `bytes` is a slice of (a frozen write buffer), when it is one: a store
    /// that keeps chunks in this process may keep that slice instead of a copy.
    pub buffer: Option<Bytes>,
}

impl Cut {
    /// The bytes of all of `cuts`.
    pub fn total_len(cuts: &[Cut]) -> usize {
        cuts.iter().map(|c| c.bytes.len()).sum()
    }
}

/// One stored chunk, as [`ContentStore::for_each_chunk`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    pub id: ChunkId,
    /// References to it: the `ChunkRef` values alive for it.
    pub refs: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// Statistics of the store at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Distinct chunks stored (for a remote engine: that this process references).
    pub chunks: u64,
    /// Their bytes, each chunk once.
    pub stored_bytes: u64,
    /// The memory this process must keep `stored_bytes` in: for the in-memory store all of
    /// them, less what compression saves and with the unused bytes of the write buffers
    /// chunks are kept in; for a remote engine, the chunks not yet stored on the server.
    /// This is what counts against `--max-memory` (a remote engine's cache has its own
    /// bound).
    pub resident_bytes: u64,
    /// Of `resident_bytes`, the write buffers chunks began to keep in a commit that is not
    /// installed yet: the file's pending layers hold the same memory and count it as dirty
    /// bytes until then (see [`HeldTwice`]).
    pub held_twice_bytes: u64,
}

/// The write buffers a [`ContentStore::put_cuts`] began to keep as chunks, while the frozen
/// layers they were cut from still hold them too: the memory is counted in the store's
/// `resident_bytes` and in the file's dirty bytes at once, until the commit is installed
/// (the layers go) or given up (the chunks go). The store counts them in
/// [`StoreStats::held_twice_bytes`] until this is dropped, and the memory cap counts them
/// once. Without that, a write near `--max-memory` failed with ENOSPC although what it
/// held fitted: the fsync of 256 MiB of random bytes under a 280 MiB cap failed, 22.7 MiB
/// short.
#[derive(Debug, Default)]
pub struct HeldTwice {
    bytes: u64,
    counter: Option<Arc<AtomicU64>>,
}

impl HeldTwice {
    /// Counts `bytes` in `counter` until dropped.
    pub(super) fn count(counter: &Arc<AtomicU64>, bytes: u64) -> HeldTwice {
        counter.fetch_add(bytes, Ordering::Relaxed);
        HeldTwice {
            bytes,
            counter: Some(counter.clone()),
        }
    }

    /// Takes over what `other` counts (in the same store).
    pub fn absorb(&mut self, mut other: HeldTwice) {
        if self.counter.is_none() {
            std::mem::swap(self, &mut other);
        } else {
            self.bytes += std::mem::take(&mut other.bytes);
        }
    }
}

impl Drop for HeldTwice {
    fn drop(&mut self) {
        if let Some(counter) = &self.counter {
            counter.fetch_sub(self.bytes, Ordering::Relaxed);
        }
    }
}

/// Why a store could not serve a chunk. Never answered with other bytes: the request fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The server cannot be reached (the engine retries in the background).
    Unavailable(String),
    /// The chunk is not stored.
    Missing(ChunkId),
    /// The bytes found do not hash to the chunk's id.
    Corrupt(ChunkId),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Unavailable(why) => write!(f, "store unavailable: {why}"),
            StoreError::Missing(id) => write!(f, "chunk {} is not stored", id.short()),
            StoreError::Corrupt(id) => write!(f, "chunk {} does not hash to its id", id.short()),
        }
    }
}

/// The engine behind the store as `.memfs/stats.json` shows it (`store`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StoreReport {
    /// `memory` or `redis`.
    pub kind: String,
    /// The servers given at mount (a remote engine).
    pub nodes: Vec<String>,
    /// `ok`, or `lost` while the server cannot be reached (writes are retried).
    pub state: String,
    /// Chunks and bytes this mount references, each chunk once.
    pub chunks: u64,
    pub bytes: u64,
    /// Chunks written by this mount and not yet acknowledged by the server (kept in memory).
    pub unsaved_chunks: u64,
    pub unsaved_bytes: u64,
    pub cache_bytes: u64,
    pub cache_capacity: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Failed round trips to the server (each retried with backoff).
    pub errors: u64,
    pub last_error: Option<String>,
    /// The lease after which a mount that stops renewing it loses its references.
    pub lease_seconds: f64,
    /// Dead mounts whose references this mount released, and how many references.
    pub mounts_swept: u64,
    pub references_swept: u64,
    /// The memory the in-memory store's chunk bytes take (less than `bytes` by what
    /// compression saves, see `--no-compress`; more by the unused bytes of the write buffers
    /// chunks are kept in, see `pinned.rs`).
    #[serde(default)]
    pub held_bytes: u64,
    /// The part of `held_bytes` that is write buffers kept for the chunks cut from them but
    /// used by none (`pinned.rs`).
    #[serde(default)]
    pub unused_buffer_bytes: u64,
}

impl StoreReport {
    /// The report of a store that keeps everything in this process.
    pub(crate) fn in_memory(stats: &StoreStats) -> StoreReport {
        StoreReport {
            kind: "memory".into(),
            state: "ok".into(),
            chunks: stats.chunks,
            bytes: stats.stored_bytes,
            held_bytes: stats.resident_bytes,
            ..StoreReport::default()
        }
    }
}

/// Starts the pool `par_map` hashes on, once per process, with its threads named
/// `memfs-hash-N` (one per CPU, as rayon's default pool). Unnamed, they took the name of
/// the thread that first used the pool, a commit worker's, and `perf` and `top` counted
/// their hashing as that worker's. Does nothing if the pool is running already (a second
/// mount in one process).
pub fn start_hash_pool() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("memfs-hash-{i}"))
        .build_global();
}

/// Chunks of fewer bytes than this in all are hashed on the calling thread. Handing them to
/// the pool wakes its threads, on other CPUs, and the caller waits for them: for a small
/// commit that costs more than hashing it does (blake3 takes about 25 µs for 100 KiB).
pub(crate) const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// `f` of each item, in order: on the hashing pool's threads when there are several items
/// of `bytes` in all, at least [`PARALLEL_MIN_BYTES`]; on the calling thread otherwise.
pub(crate) fn par_map<T: Send, U: Send>(
    items: Vec<T>,
    bytes: usize,
    f: impl Fn(T) -> U + Sync + Send,
) -> Vec<U> {
    if items.len() > 2 && bytes >= PARALLEL_MIN_BYTES {
        items.into_par_iter().map(f).collect()
    } else {
        items.into_iter().map(f).collect()
    }
}

/// The problem a store check reports when `bytes`, stored as chunk `id`, do not hash to it.
pub(crate) fn hash_problem(id: &ChunkId, bytes: &[u8]) -> Option<String> {
    (ChunkId::of(bytes) != *id)
        .then(|| format!("blob {}: bytes do not hash to its name", id.short()))
}

pub trait ContentStore: Send + Sync {
    /// Takes one reference to the chunk that holds `bytes`, storing it first if it is new.
    fn put(&self, bytes: &[u8]) -> Put;

    /// [`ContentStore::put`] of each of a commit's cuts, in order, on every core when there
    /// are several holding `PARALLEL_MIN_BYTES` or more (see `par_map`). A store may keep a
    /// new chunk as the slice of its buffer it is; it then counts the buffers it began to
    /// keep until the [`HeldTwice`] returned is dropped.
    fn put_cuts(&self, cuts: Vec<Cut>) -> (Vec<Put>, HeldTwice) {
        let bytes = Cut::total_len(&cuts);
        (
            par_map(cuts, bytes, |cut| self.put(&cut.bytes)),
            HeldTwice::default(),
        )
    }

    /// Takes one more reference to a stored chunk; `None` if it is not stored.
    fn reference(&self, id: &ChunkId) -> Option<ChunkRef>;

    /// A chunk's bytes, without taking a reference: the chunk may be reclaimed while they
    /// are held, the bytes stay valid. `None` if it is not stored.
    fn get(&self, id: &ChunkId) -> Option<Bytes>;

    /// How many references a chunk has (0 if it is not stored).
    fn refs(&self, id: &ChunkId) -> u64;

    /// Whether a chunk is stored.
    fn contains(&self, id: &ChunkId) -> bool;

    fn stats(&self) -> StoreStats;

    /// Shows every stored chunk to `visit` (for statistics and checks). `visit` may run
    /// under the store's own locks: it must not call into the store or drop a `ChunkRef`.
    fn for_each_chunk(&self, visit: &mut dyn FnMut(&ChunkInfo));

    /// The bytes of `ids`, in order, fetching what is not in this process from the server in
    /// one round trip. Used for chunks whose `ChunkRef::bytes` is `None`.
    fn load(&self, ids: &[ChunkId]) -> Result<Vec<Bytes>, StoreError> {
        ids.iter()
            .map(|id| self.get(id).ok_or(StoreError::Missing(*id)))
            .collect()
    }

    /// Whether chunks live on a server rather than in this process (then `fsync` waits for
    /// them to be stored).
    fn is_remote(&self) -> bool {
        false
    }

    /// Waits until every chunk of `recipe` is stored durably (a remote engine: acknowledged
    /// by the server). An error once the server has been lost for `patience` during the
    /// wait: the chunks stay in memory and are retried.
    fn wait_stored(
        &self,
        _recipe: &Recipe,
        _patience: std::time::Duration,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Checks that each of `ids` is stored and hashes to its id (a remote engine: on the
    /// server itself, not in a cache); one line per problem.
    fn verify_chunks(&self, ids: &[ChunkId]) -> Vec<String> {
        let mut problems = Vec::new();
        for id in ids {
            // Gone since it was listed: nothing left to hash.
            if let Some(bytes) = self.get(id) {
                problems.extend(hash_problem(id, &bytes));
            }
        }
        problems
    }

    /// What `.memfs/stats.json` shows of the engine.
    fn report(&self) -> StoreReport {
        StoreReport::in_memory(&self.stats())
    }

    /// Stops background work and hands back what this mount holds on a server (a clean
    /// unmount); waits up to `patience` for unsaved chunks first.
    fn shutdown(&self, _patience: std::time::Duration) {}

    /// The last reference to `id` went: frees the chunk unless a new reference was taken
    /// meanwhile. Called by [`ChunkRef`]'s drop; a no-op for a chunk that is gone already.
    fn reclaim(&self, id: &ChunkId);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The threads `par_map` ran its items on, seen from a thread outside the pool.
    fn threads_of(items: usize, bytes: usize) -> Vec<std::thread::ThreadId> {
        par_map((0..items).collect(), bytes, |_: usize| {
            std::thread::current().id()
        })
    }

    #[test]
    fn small_batches_are_hashed_on_the_calling_thread_and_big_ones_on_the_pool() {
        let here = std::thread::current().id();
        assert!(threads_of(8, PARALLEL_MIN_BYTES - 1)
            .iter()
            .all(|&t| t == here));
        assert!(threads_of(8, PARALLEL_MIN_BYTES).iter().all(|&t| t != here));
        // Two items are never worth a hand-off, however big.
        assert!(threads_of(2, 64 << 20).iter().all(|&t| t == here));
    }
}
