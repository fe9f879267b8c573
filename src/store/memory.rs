//! The in-memory content store: every chunk's bytes in this process, found by id in a
//! sharded hash map whose entries carry the reference counts.
//!
//! Lock order: the index's shard locks are the innermost locks in memfs. A `ChunkRef` may
//! be dropped (and `reclaim` take a shard lock) under an inode lock; the store takes a shard
//! lock only within one call, and never drops a [`ChunkRef`] or calls out while holding it,
//! except into a `for_each_chunk` visitor, which must not call back.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;

use super::chunk::{find_or_insert, Chunk, ChunkId, ChunkIndex, ChunkRef};
use super::engine::{ChunkInfo, ContentStore, Put, StoreStats};

pub struct MemoryStore {
    index: ChunkIndex<Arc<Chunk>>,
    /// Entries in `index`, and their bytes: kept as counters so `stats` (asked on every
    /// charge against the memory cap) does not walk the index.
    chunks: AtomicU64,
    bytes: AtomicU64,
    /// Handed to every chunk, so its last reference can ask for it to be reclaimed.
    this: Weak<MemoryStore>,
}

impl MemoryStore {
    pub fn new() -> Arc<MemoryStore> {
        Arc::new_cyclic(|this| MemoryStore {
            index: ChunkIndex::default(),
            chunks: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            this: this.clone(),
        })
    }
}

/// A chunk's bytes lent out by `get`: keeps the memory alive, not the chunk's count.
struct Lent(Arc<Chunk>);

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        self.0.bytes().unwrap_or_default()
    }
}

impl MemoryStore {
    /// `put` and `put_owned`: a new chunk keeps owned bytes as they are.
    fn put_cow(&self, bytes: Cow<'_, [u8]>) -> Put {
        let id = ChunkId::of(&bytes);
        find_or_insert(&self.index, id, || {
            let this: Weak<dyn ContentStore> = self.this.clone();
            self.chunks.fetch_add(1, Ordering::Relaxed);
            self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            Chunk::new(id, bytes.into_owned().into_boxed_slice(), this)
        })
    }
}

impl ContentStore for MemoryStore {
    fn put(&self, bytes: &[u8]) -> Put {
        self.put_cow(Cow::Borrowed(bytes))
    }

    fn put_owned(&self, bytes: Vec<u8>) -> Put {
        self.put_cow(Cow::Owned(bytes))
    }

    fn reference(&self, id: &ChunkId) -> Option<ChunkRef> {
        self.index.get(id).map(|c| c.acquire())
    }

    fn get(&self, id: &ChunkId) -> Option<Bytes> {
        let chunk = self.index.get(id)?.value().clone();
        Some(Bytes::from_owner(Lent(chunk)))
    }

    fn refs(&self, id: &ChunkId) -> u64 {
        self.index.get(id).map_or(0, |c| c.refs())
    }

    fn contains(&self, id: &ChunkId) -> bool {
        self.index.contains_key(id)
    }

    fn stats(&self) -> StoreStats {
        let stored_bytes = self.bytes.load(Ordering::Relaxed);
        StoreStats {
            chunks: self.chunks.load(Ordering::Relaxed),
            stored_bytes,
            resident_bytes: stored_bytes,
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

    fn reclaim(&self, id: &ChunkId) {
        // Under the shard's write lock no reference can be taken, so a count of zero here
        // stays zero. A put that took one first keeps the chunk; a chunk reclaimed already
        // is not found (or is a newer entry for the same bytes, freed only at zero too).
        let removed = self.index.remove_if(id, |_, chunk| chunk.refs() == 0);
        if let Some((_, chunk)) = removed {
            self.chunks.fetch_sub(1, Ordering::Relaxed);
            self.bytes.fetch_sub(chunk.len() as u64, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                }
            );
            drop(again);
            assert_eq!(store.stats(), StoreStats::default());
        }
    }
}
