//! Chunk ids and counted references to stored chunks.
//!
//! A [`ChunkRef`] is the only way to hold on to a stored chunk, and the store's reference
//! count of a chunk is exactly the number of `ChunkRef` values alive for it:
//!
//! ```text
//! store.refs(id) == number of ChunkRef values alive for id
//! ```
//!
//! A store hands out a `ChunkRef` when it takes a reference (`put`, `reference`); cloning
//! one takes another reference and dropping one releases it. The count is an explicit
//! counter kept in the chunk's index entry and changed only here, so nothing that merely
//! looks at a chunk can skew it: readers, statistics and checks never keep a `ChunkRef` for
//! a while, they ask the store for a chunk's count (`refs`) and bytes (`get`). When the last
//! reference goes, the store is asked to reclaim the chunk, and it frees the chunk then
//! unless a `put` of the same bytes took a new reference in the meantime.
//!
//! Why the count lives in the shared entry rather than behind a lookup by id: a commit
//! copies every piece of the old recipe after the edit, and dropping a version releases
//! every piece of it, so taking and releasing a reference must stay one atomic operation,
//! as it was when the count was the `Arc`'s own.

use std::fmt;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use super::engine::{ContentStore, Put};

/// The id of a stored chunk: the blake3 hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkId([u8; 32]);

/// An id is a cryptographic hash already, uniform in every bit: its first eight bytes are a
/// map hash as good as SipHash's over all 32, at no cost (see [`ChunkIndex`]).
impl std::hash::Hash for ChunkId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_ne_bytes(head));
    }
}

/// A map keyed by chunk id that hashes ids by [`IdHasher`]. Lookups in the chunk index are
/// on every put and every reference count, and SipHash showed in `perf` of a 1 GiB commit.
pub type ChunkIndex<V> = DashMap<ChunkId, V, std::hash::BuildHasherDefault<IdHasher>>;

/// Takes the `u64` that [`ChunkId`]'s `Hash` writes as the hash.
#[derive(Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; anything else still hashes (FNV-1a), if slowly.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl ChunkId {
    /// The id of the chunk that holds `bytes`.
    pub fn of(bytes: &[u8]) -> ChunkId {
        ChunkId(*blake3::hash(bytes).as_bytes())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> ChunkId {
        ChunkId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 12 hex digits: enough to tell chunks apart in listings and messages.
    pub fn short(&self) -> String {
        hex(&self.0[..6])
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// All 64 hex digits.
impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", self.short())
    }
}

/// A stored chunk as this process holds it: the entry a store keeps in its index, shared
/// with every [`ChunkRef`] to it. Only stores make one (see [`Chunk::acquire`]).
pub(crate) struct Chunk {
    id: ChunkId,
    /// The `ChunkRef` values alive for this chunk.
    refs: AtomicU64,
    len: usize,
    /// The bytes, when this process keeps every chunk's bytes for as long as it is stored
    /// (the in-memory store). `None` for an engine that keeps them elsewhere (a server, with
    /// a bounded cache here) or compressed (`packed`): readers then ask the store
    /// ([`ContentStore::load`]).
    /// Often a slice of a file's frozen write buffer, shared with the chunks cut next to it.
    resident: Option<Bytes>,
    /// The bytes compressed (LZ4 block), when the in-memory store keeps them so.
    packed: Option<Box<[u8]>>,
    /// Asked to reclaim the chunk when its last reference goes. Weak: the store's index
    /// holds the chunk.
    store: Weak<dyn ContentStore>,
}

impl Chunk {
    /// A chunk with no reference yet, whose bytes live in this process.
    pub(crate) fn new(id: ChunkId, bytes: Bytes, store: Weak<dyn ContentStore>) -> Arc<Chunk> {
        Arc::new(Chunk {
            id,
            refs: AtomicU64::new(0),
            len: bytes.len(),
            resident: Some(bytes),
            packed: None,
            store,
        })
    }

    /// A chunk with no reference yet, of `len` bytes this process keeps compressed.
    pub(crate) fn packed(
        id: ChunkId,
        len: usize,
        packed: Box<[u8]>,
        store: Weak<dyn ContentStore>,
    ) -> Arc<Chunk> {
        Arc::new(Chunk {
            id,
            refs: AtomicU64::new(0),
            len,
            resident: None,
            packed: Some(packed),
            store,
        })
    }

    /// A chunk with no reference yet, of `len` bytes that its store keeps elsewhere.
    pub(crate) fn remote(id: ChunkId, len: usize, store: Weak<dyn ContentStore>) -> Arc<Chunk> {
        Arc::new(Chunk {
            id,
            refs: AtomicU64::new(0),
            len,
            resident: None,
            packed: None,
            store,
        })
    }

    /// The compressed bytes, if this process keeps them so (see `packed`).
    pub(crate) fn packed_bytes(&self) -> Option<&[u8]> {
        self.packed.as_deref()
    }

    /// The bytes of memory this chunk's data takes in this process.
    pub(crate) fn held(&self) -> usize {
        self.resident
            .as_deref()
            .or(self.packed.as_deref())
            .map_or(0, <[u8]>::len)
    }

    /// The bytes, if this process keeps them (see `resident`).
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        self.resident.as_deref()
    }

    /// The bytes as a shared buffer, if this process keeps them uncompressed.
    pub(crate) fn shared_bytes(&self) -> Option<Bytes> {
        self.resident.clone()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The number of references: exact, whoever asks.
    pub(crate) fn refs(&self) -> u64 {
        self.refs.load(Ordering::Acquire)
    }

    /// Takes a reference. Only for stores, and only under the lock their `reclaim` takes:
    /// the count may be at zero here (its last reference just went and the reclaim has not
    /// run yet), and taking it from zero must keep that reclaim from freeing the chunk.
    pub(crate) fn acquire(self: &Arc<Chunk>) -> ChunkRef {
        self.refs.fetch_add(1, Ordering::Relaxed);
        ChunkRef(self.clone())
    }
}

/// One counted reference to a stored chunk (see the module documentation). Recipe pieces
/// hold these, so a recipe is a plain value whose clones and drops keep the counts exact.
pub struct ChunkRef(Arc<Chunk>);

impl ChunkRef {
    pub fn id(&self) -> &ChunkId {
        &self.0.id
    }

    /// The chunk's bytes when they are at hand without asking the store (the in-memory
    /// store's read path); `None` when the store keeps them elsewhere.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.0.bytes()
    }

    /// The store that holds the chunk, while it exists.
    pub fn store(&self) -> Option<Arc<dyn ContentStore>> {
        self.0.store.upgrade()
    }

    pub fn len(&self) -> usize {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }
}

impl Clone for ChunkRef {
    fn clone(&self) -> ChunkRef {
        // Relaxed as in `Arc`: this reference already keeps the count above zero.
        self.0.refs.fetch_add(1, Ordering::Relaxed);
        ChunkRef(self.0.clone())
    }
}

impl Drop for ChunkRef {
    fn drop(&mut self) {
        if self.0.refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every use of the chunk through other references happens before it is reclaimed.
        fence(Ordering::Acquire);
        if let Some(store) = self.0.store.upgrade() {
            store.reclaim(&self.0.id);
        }
    }
}

impl PartialEq for ChunkRef {
    fn eq(&self, other: &ChunkRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.id == other.0.id
    }
}

impl Eq for ChunkRef {}

impl fmt::Debug for ChunkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkRef({}, {} B)", self.0.id.short(), self.len())
    }
}

/// A store's `put`: a reference to chunk `id` from `index`, inserting the chunk `make`
/// builds when it is new. `make` runs under the index shard's write lock, so what must
/// follow the index's order (the store's counters, an upload queue) belongs in it.
pub(crate) fn find_or_insert(
    index: &ChunkIndex<Arc<Chunk>>,
    id: ChunkId,
    make: impl FnOnce() -> Arc<Chunk>,
) -> Put {
    find(index, &id).unwrap_or_else(|| insert(index, id, make))
}

/// A reference to chunk `id` if `index` holds it. Most chunks of a commit are already
/// stored: a shard read lock finds them. Taking a reference under it keeps `reclaim`
/// (which needs the write lock) from freeing a chunk whose count is at zero on its way out.
pub(crate) fn find(index: &ChunkIndex<Arc<Chunk>>, id: &ChunkId) -> Option<Put> {
    index.get(id).map(|found| Put {
        chunk: found.acquire(),
        new: false,
    })
}

/// The second half of [`find_or_insert`], for a store that has looked with [`find`] already
/// and done work of its own (outside the lock) before it inserts.
pub(crate) fn insert(
    index: &ChunkIndex<Arc<Chunk>>,
    id: ChunkId,
    make: impl FnOnce() -> Arc<Chunk>,
) -> Put {
    match index.entry(id) {
        Entry::Occupied(e) => Put {
            chunk: e.get().acquire(),
            new: false,
        },
        Entry::Vacant(e) => {
            let chunk = make();
            let taken = chunk.acquire();
            e.insert(chunk);
            Put {
                chunk: taken,
                new: true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_as_hex() {
        let id = ChunkId::of(b"hello");
        let full = id.to_string();
        assert_eq!(full.len(), 64);
        assert_eq!(full, blake3::hash(b"hello").to_hex().as_str());
        assert_eq!(id.short(), full[..12]);
        assert_eq!(ChunkId::from_bytes(*id.as_bytes()), id);
    }
}
