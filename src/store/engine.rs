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

use bytes::Bytes;

use super::chunk::{ChunkId, ChunkRef};

/// What [`ContentStore::put`] did.
#[derive(Debug)]
pub struct Put {
    /// The reference it took.
    pub chunk: ChunkRef,
    /// Whether the bytes were new to the store (they take memory now).
    pub new: bool,
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
    /// Distinct chunks stored.
    pub chunks: u64,
    /// Their bytes, each chunk once.
    pub stored_bytes: u64,
}

pub trait ContentStore: Send + Sync {
    /// Takes one reference to the chunk that holds `bytes`, storing it first if it is new.
    fn put(&self, bytes: &[u8]) -> Put;

    /// [`ContentStore::put`] of bytes the caller gives away, so a new chunk can keep them
    /// without a copy.
    fn put_owned(&self, bytes: Vec<u8>) -> Put {
        self.put(&bytes)
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

    /// The last reference to `id` went: frees the chunk unless a new reference was taken
    /// meanwhile. Called by [`ChunkRef`]'s drop; a no-op for a chunk that is gone already.
    fn reclaim(&self, id: &ChunkId);
}
