//! The in-memory content store: every chunk's bytes in this process, found by id in a
//! sharded hash map whose entries carry the reference counts.
//!
//! A store made by [`MemoryStore::compressing`] (what a mount uses unless told
//! `--no-compress`) keeps a chunk LZ4-compressed when that saves at least an eighth of it:
//! source text takes about a third of its size, while bytes that do not compress (media,
//! archives, random data) are told apart by their first KiB and stored as they are at
//! little cost. A compressed chunk's bytes are not at hand (`ChunkRef::bytes` is `None`),
//! so readers ask `load`, which decompresses, as they ask a remote store.
//!
//! A new chunk that stays plain keeps its bytes where a commit cut them when it can: in the
//! file's frozen write buffer, shared with the chunks cut next to it (`put_cuts`,
//! `pinned.rs`). The memory reported (`resident_bytes`) then also counts the bytes of
//! those buffers that no live chunk uses.
//!
//! Lock order: the index's shard locks are the innermost locks in memfs. A `ChunkRef` may
//! be dropped (and `reclaim` take a shard lock) under an inode lock; the store takes a shard
//! lock only within one call, and never drops a [`ChunkRef`] or calls out while holding it,
//! except into a `for_each_chunk` visitor, which must not call back.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::chunk::{find, insert, Chunk, ChunkId, ChunkIndex, ChunkRef};
use super::engine::{
    hash_problem, par_map, ChunkInfo, ContentStore, Cut, HeldTwice, Put, StoreReport, StoreStats,
};
use super::pinned::Pinned;

pub struct MemoryStore {
    index: ChunkIndex<Arc<Chunk>>,
    /// Entries in `index`, and their bytes: kept as counters so `stats` (asked on every
    /// charge against the memory cap) does not walk the index.
    chunks: AtomicU64,
    bytes: AtomicU64,
    /// The memory the chunks' bytes take: `bytes`, less what compression saved.
    held: AtomicU64,
    /// The memory of write buffers shared with chunks that no chunk uses (`pinned.rs`).
    slack: Arc<AtomicU64>,
    /// Shared write buffers whose commit is not installed yet ([`HeldTwice`]).
    held_twice: Arc<AtomicU64>,
    /// Whether new chunks are compressed when that pays.
    compress: bool,
    /// Handed to every chunk, so its last reference can ask for it to be reclaimed.
    this: Weak<MemoryStore>,
}

impl MemoryStore {
    /// A store that keeps every chunk's bytes as they are.
    pub fn new() -> Arc<MemoryStore> {
        MemoryStore::with_compression(false)
    }

    /// A store that keeps chunks compressed when that pays (see the module doc).
    pub fn compressing() -> Arc<MemoryStore> {
        MemoryStore::with_compression(true)
    }

    fn with_compression(compress: bool) -> Arc<MemoryStore> {
        Arc::new_cyclic(|this| MemoryStore {
            index: ChunkIndex::default(),
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            held: AtomicU64::new(0),
            slack: Arc::default(),
            held_twice: Arc::default(),
            compress,
            this: this.clone(),
        })
    }
}

/// A chunk at least this long is tried for compression: below it the saving is a few
/// bytes, and a compressed chunk costs a decompression on every read.
const PACK_MIN: usize = 512;

/// How much of a chunk is compressed first to tell whether the rest will compress.
const PACK_PROBE: usize = 1024;

/// The bytes compressed (LZ4 block format), if that saves at least an eighth of them.
fn pack(bytes: &[u8]) -> Option<Box<[u8]>> {
    let saves = |plain: usize, packed: usize| packed.saturating_mul(8) <= plain.saturating_mul(7);
    if bytes.len() < PACK_MIN {
        return None;
    }
    // Incompressible bytes cost lz4 little, and the probe a fifth of that (1 KiB of each
    // 16 KiB chunk, at a slower rate per byte).
    let probe = &bytes[..bytes.len().min(PACK_PROBE)];
    if !saves(probe.len(), lz4_flex::block::compress(probe).len()) {
        return None;
    }
    let packed = lz4_flex::block::compress(bytes);
    saves(bytes.len(), packed.len()).then(|| packed.into_boxed_slice())
}

/// The bytes of a chunk kept compressed, `len` of them; `None` if they do not decompress to
/// exactly that (memory corrupted: the chunk is then reported lost, not misread).
fn unpack(packed: &[u8], len: usize) -> Option<Vec<u8>> {
    lz4_flex::block::decompress(packed, len)
        .ok()
        .filter(|bytes| bytes.len() == len)
}

impl MemoryStore {
    /// The first half of a put: the chunk, if its bytes are stored already; otherwise its
    /// id, and the bytes compressed if they are to be kept so. Compressed before the shard's
    /// lock is taken (`store_new` makes the chunk under it); a put of the same bytes racing
    /// this one may make the work useless, not wrong.
    fn look_up(&self, bytes: &[u8]) -> Looked {
        let id = ChunkId::of(bytes);
        if let Some(found) = find(&self.index, &id) {
            return Looked::Stored(found);
        }
        let packed = match self.compress {
            true => pack(bytes),
            false => None,
        };
        Looked::New { id, packed }
    }

    /// The second half: stores a new chunk of `len` bytes, compressed, or as `keep` makes
    /// them (a copy, or a slice of a shared buffer). A put of the same bytes that got there
    /// first is taken instead, and `keep` is not called.
    fn store_new(
        &self,
        id: ChunkId,
        len: usize,
        packed: Option<Box<[u8]>>,
        keep: impl FnOnce() -> Bytes,
    ) -> Put {
        insert(&self.index, id, || {
            let this: Weak<dyn ContentStore> = self.this.clone();
            let chunk = match packed {
                Some(packed) => Chunk::packed(id, len, packed, this),
                None => Chunk::new(id, keep(), this),
            };
            self.chunks.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(len as u64, Ordering::Relaxed);
            self.held.fetch_add(chunk.held() as u64, Ordering::Relaxed);
            chunk
        })
    }

    /// The buffers of `cuts` worth sharing with their new chunks, by address: those the
    /// chunks that keep plain bytes use at least [`SHARE_MIN`] of. Sharing a buffer whose
    /// other chunks were stored already or are compressed would pin all of it for a few.
    fn buffers_to_share(&self, cuts: &[(Cut, Looked)]) -> HashMap<usize, Arc<Pinned>> {
        let mut used: HashMap<usize, (&Bytes, usize)> = HashMap::new();
        for (cut, looked) in cuts {
            if let (Some(buffer), Looked::New { packed: None, .. }) = (&cut.buffer, looked) {
                used.entry(buffer.as_ptr() as usize)
                    .or_insert((buffer, 0))
                    .1 += cut.bytes.len();
            }
        }
        used.into_iter()
            .filter(|(_, (buffer, used))| *used as f64 >= buffer.len() as f64 * SHARE_MIN)
            .map(|(at, (buffer, _))| (at, Pinned::new(buffer.clone(), self.slack.clone())))
            .collect()
    }
}

/// What the first half of a put found (`MemoryStore::look_up`).
enum Looked {
    /// The bytes are stored already: a reference to them.
    Stored(Put),
    /// New bytes: their id, and the bytes compressed if they are to be kept so.
    New {
        id: ChunkId,
        packed: Option<Box<[u8]>>,
    },
}

/// The least share of a write buffer its new chunks must use for them to keep their bytes
/// in it (see `pinned.rs`); chunks of a buffer used less are copied out of it. A buffer of
/// a sequential write loses only the chunks cut across its ends (0.6% of 4 MiB).
const SHARE_MIN: f64 = 0.875;

impl ContentStore for MemoryStore {
    fn put(&self, bytes: &[u8]) -> Put {
        match self.look_up(bytes) {
            Looked::Stored(found) => found,
            Looked::New { id, packed } => {
                self.store_new(id, bytes.len(), packed, || Bytes::copy_from_slice(bytes))
            }
        }
    }

    /// Looks every cut up first, so that a buffer is shared only if its new chunks use
    /// nearly all of it; the others are copied.
    fn put_cuts(&self, cuts: Vec<Cut>) -> (Vec<Put>, HeldTwice) {
        let bytes = Cut::total_len(&cuts);
        let looked: Vec<_> = par_map(cuts, bytes, |cut| {
            let looked = self.look_up(&cut.bytes);
            (cut, looked)
        });
        let shared = self.buffers_to_share(&looked);
        // All of a shared buffer is resident (its slack too), and all of it is its frozen
        // layer's dirty bytes.
        let held_twice = shared.values().map(|p| p.len() as u64).sum();
        let held_twice = HeldTwice::count(&self.held_twice, held_twice);
        let puts = par_map(looked, bytes, |(cut, looked)| match looked {
            Looked::Stored(found) => found,
            Looked::New { id, packed } => self.store_new(id, cut.bytes.len(), packed, || {
                let pinned = cut
                    .buffer
                    .as_ref()
                    .and_then(|b| shared.get(&(b.as_ptr() as usize)));
                match pinned {
                    Some(pinned) => pinned.share(&cut.bytes),
                    None => Bytes::copy_from_slice(&cut.bytes),
                }
            }),
        });
        (puts, held_twice)
    }

    fn reference(&self, id: &ChunkId) -> Option<ChunkRef> {
        self.index.get(id).map(|c| c.acquire())
    }

    fn get(&self, id: &ChunkId) -> Option<Bytes> {
        let chunk = self.index.get(id)?.value().clone();
        match chunk.packed_bytes() {
            Some(packed) => unpack(packed, chunk.len()).map(Bytes::from),
            None => chunk.shared_bytes(),
        }
    }

    fn refs(&self, id: &ChunkId) -> u64 {
        self.index.get(id).map_or(0, |c| c.refs())
    }

    fn contains(&self, id: &ChunkId) -> bool {
        self.index.contains_key(id)
    }

    fn stats(&self) -> StoreStats {
        StoreStats {
            chunks: self.chunks.load(Ordering::Relaxed),
            stored_bytes: self.bytes.load(Ordering::Relaxed),
            resident_bytes: self.held.load(Ordering::Relaxed) + self.slack.load(Ordering::Relaxed),
            held_twice_bytes: self.held_twice.load(Ordering::Relaxed),
        }
    }

    fn report(&self) -> StoreReport {
        StoreReport {
            unused_buffer_bytes: self.slack.load(Ordering::Relaxed),
            ..StoreReport::in_memory(&self.stats())
        }
    }

    fn for_each_chunk(&self, visit: &mut dyn FnMut(&ChunkInfo)) {
        for entry in self.index.iter() {
            visit(&ChunkInfo {
                id: *entry.key(),
                refs: entry.refs(),
                len: entry.len() as u64,
            });
        }
    }

    fn verify_chunks(&self, ids: &[ChunkId]) -> Vec<String> {
        let mut problems = Vec::new();
        for id in ids {
            // Gone since it was listed: nothing left to hash.
            let Some(chunk) = self.index.get(id).map(|c| c.value().clone()) else {
                continue;
            };
            let bytes = match chunk.packed_bytes() {
                None => Cow::Borrowed(chunk.bytes().unwrap_or_default()),
                Some(packed) => match unpack(packed, chunk.len()) {
                    Some(bytes) => Cow::Owned(bytes),
                    None => {
                        problems.push(format!(
                            "blob {}: does not decompress to its {} bytes",
                            id.short(),
                            chunk.len()
                        ));
                        continue;
                    }
                },
            };
            problems.extend(hash_problem(id, &bytes));
        }
        problems
    }

    fn reclaim(&self, id: &ChunkId) {
        // Under the shard's write lock no reference can be taken, so a count of zero here
        // stays zero. A put that took one first keeps the chunk; a chunk reclaimed already
        // is not found (or is a newer entry for the same bytes, freed only at zero too).
        let removed = self.index.remove_if(id, |_, chunk| chunk.refs() == 0);
        if let Some((_, chunk)) = removed {
            self.chunks.fetch_sub(1, Ordering::Relaxed);
            self.bytes.fetch_sub(chunk.len() as u64, Ordering::Relaxed);
            self.held.fetch_sub(chunk.held() as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::source_text;

    fn listed(store: &MemoryStore) -> Vec<ChunkInfo> {
        let mut all = Vec::new();
        store.for_each_chunk(&mut |c| all.push(*c));
        all
    }

    #[test]
    fn identical_bytes_are_stored_once_and_freed_with_the_last_reference() {
        let store = MemoryStore::new();
        let a = store.put(b"hello");
        let b = store.put(b"hello");
        assert!(a.new && !b.new);
        assert_eq!(a.chunk, b.chunk);
        let id = *a.chunk.id();
        assert_eq!(id, ChunkId::of(b"hello"));
        assert_eq!(
            store.stats(),
            StoreStats {
                chunks: 1,
                stored_bytes: 5,
                resident_bytes: 5,
                held_twice_bytes: 0,
            }
        );
        assert_eq!(store.refs(&id), 2);
        drop(a);
        assert_eq!(store.refs(&id), 1);
        assert!(store.contains(&id));
        drop(b);
        assert_eq!(store.refs(&id), 0);
        assert!(!store.contains(&id));
        assert_eq!(store.stats(), StoreStats::default());
        assert_eq!(store.index.len(), 0);
    }

    #[test]
    fn counts_equal_the_references_alive() {
        let store = MemoryStore::new();
        let first = store.put(b"chunk").chunk;
        let id = *first.id();
        let clones: Vec<ChunkRef> = (0..5).map(|_| first.clone()).collect();
        let by_id = store.reference(&id).expect("stored");
        assert_eq!(store.refs(&id), 7);
        drop(clones);
        assert_eq!(store.refs(&id), 2);
        drop(first);
        drop(by_id);
        assert_eq!(store.refs(&id), 0);
        assert!(store.reference(&id).is_none());
        assert_eq!(store.stats(), StoreStats::default());
    }

    #[test]
    fn looking_does_not_change_a_count() {
        let store = MemoryStore::new();
        let kept = store.put(b"looked at").chunk;
        let id = *kept.id();
        let bytes = store.get(&id).expect("stored");
        assert_eq!(&bytes[..], b"looked at");
        assert!(store.contains(&id));
        let seen = listed(&store);
        assert_eq!(
            seen,
            vec![ChunkInfo {
                id,
                refs: 1,
                len: 9
            }]
        );
        assert_eq!(store.refs(&id), 1);
        // Bytes lent by `get` outlive the chunk without keeping it stored.
        drop(kept);
        assert_eq!(store.stats(), StoreStats::default());
        assert_eq!(&bytes[..], b"looked at");
    }

    #[test]
    fn a_compressing_store_packs_what_compresses_and_gives_back_the_same_bytes() {
        let store = MemoryStore::compressing();
        let text = source_text(16 << 10);
        let noise = crate::testdata::noise(16 << 10, 7);
        let packed = store.put(&text).chunk;
        let plain = store.put(&noise).chunk;
        // Packed bytes are not at hand: readers load them, decompressed.
        assert_eq!(packed.bytes(), None);
        assert_eq!(plain.bytes(), Some(&noise[..]));
        let loaded = store.load(&[*packed.id(), *plain.id()]).expect("stored");
        assert_eq!(&loaded[0][..], &text[..]);
        assert_eq!(&loaded[1][..], &noise[..]);
        let stats = store.stats();
        assert_eq!(stats.stored_bytes, (32 << 10) as u64);
        let held = stats.resident_bytes - noise.len() as u64;
        assert!(held * 2 < text.len() as u64, "text held in {held} bytes");
        assert!(store.verify_chunks(&[*packed.id(), *plain.id()]).is_empty());
        // The same text again is found, not packed again.
        let again = store.put(&text);
        assert!(!again.new);
        drop((packed, plain, again));
        assert_eq!(store.stats(), StoreStats::default());
    }

    #[test]
    fn small_and_incompressible_chunks_stay_as_they_are() {
        let store = MemoryStore::compressing();
        let tiny = store.put(&[b'a'; PACK_MIN - 1]).chunk;
        // Noise first, then text: the first KiB decides.
        let mut mixed = crate::testdata::noise(PACK_PROBE, 9);
        mixed.extend(source_text(15 << 10));
        let probed = store.put(&mixed).chunk;
        assert!(tiny.bytes().is_some() && probed.bytes().is_some());
        let stats = store.stats();
        assert_eq!(stats.resident_bytes, stats.stored_bytes);
        assert!(MemoryStore::new()
            .put(&source_text(16 << 10))
            .chunk
            .bytes()
            .is_some());
    }

    #[test]
    fn a_packed_chunk_that_does_not_decompress_is_reported() {
        let store = MemoryStore::compressing();
        let text = source_text(16 << 10);
        let kept = store.put(&text).chunk;
        let id = *kept.id();
        // Memory gone bad: a chunk whose packed bytes are cut short.
        let this: Weak<dyn ContentStore> = store.this.clone();
        let packed = pack(&text).expect("text packs");
        let cut = packed[..packed.len() / 2].to_vec().into_boxed_slice();
        store
            .index
            .insert(id, Chunk::packed(id, text.len(), cut, this));
        assert_eq!(store.get(&id), None);
        let problems = store.verify_chunks(&[id]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("does not decompress"), "{problems:?}");
        // The reference's chunk is no longer the index's: its release finds nothing to free.
        store.index.clear();
        drop(kept);
    }

    #[test]
    fn a_put_racing_the_last_release_keeps_the_chunk_or_stores_it_again() {
        let store = MemoryStore::new();
        for _ in 0..200 {
            let held = store.put(b"contended").chunk;
            let racer = {
                let store = store.clone();
                std::thread::spawn(move || store.put(b"contended").chunk)
            };
            drop(held);
            let again = racer.join().expect("no panic");
            assert_eq!(store.refs(again.id()), 1);
            assert_eq!(
                store.stats(),
                StoreStats {
                    chunks: 1,
                    stored_bytes: 9,
                    resident_bytes: 9,
                    held_twice_bytes: 0,
                }
            );
            drop(again);
            assert_eq!(store.stats(), StoreStats::default());
        }
    }
}
