//! The blob store: chunk bytes keyed by their blake3 hash, each kept once.
//!
//! A [`Blob`] is a counted reference (`Arc`) to stored bytes; every recipe piece holds one.
//! The store itself keeps only weak references for finding a blob by hash, so a blob is
//! freed exactly when the last recipe (live content, version, or open snapshot) lets go of
//! it, and it removes its own entry on the way out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use dashmap::DashMap;

pub type Hash = [u8; 32];

#[derive(Default)]
struct Counters {
    blobs: AtomicU64,
    bytes: AtomicU64,
}

pub struct BlobStore {
    index: DashMap<Hash, Weak<BlobData>>,
    counters: Arc<Counters>,
    /// Shared with every blob so it can find its index entry when it dies.
    this: Weak<BlobStore>,
}

pub struct BlobData {
    hash: Hash,
    bytes: Box<[u8]>,
    store: Weak<BlobStore>,
    counters: Arc<Counters>,
}

/// A counted reference to stored chunk bytes.
#[derive(Clone)]
pub struct Blob(Arc<BlobData>);

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Blob({}, {} B)",
            short_hash(&self.0.hash),
            self.0.bytes.len()
        )
    }
}

impl PartialEq for Blob {
    fn eq(&self, other: &Blob) -> bool {
        self.0.hash == other.0.hash
    }
}

impl Eq for Blob {}

impl Blob {
    pub fn hash(&self) -> &Hash {
        &self.0.hash
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    /// How many references exist right now (recipe pieces and transient readers).
    pub fn refcount(&self) -> usize {
        Arc::strong_count(&self.0)
    }
}

impl Drop for BlobData {
    fn drop(&mut self) {
        self.counters.blobs.fetch_sub(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_sub(self.bytes.len() as u64, Ordering::Relaxed);
        if let Some(store) = self.store.upgrade() {
            let me = self as *const BlobData;
            // Only our own entry: a new blob with the same hash may already have replaced it.
            store.index.remove_if(&self.hash, |_, w| w.as_ptr() == me);
        }
    }
}

/// The first 12 hex digits of a hash.
pub fn short_hash(hash: &Hash) -> String {
    hash[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// Statistics of the store at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub blobs: u64,
    pub stored_bytes: u64,
}

impl BlobStore {
    pub fn new() -> Arc<BlobStore> {
        Arc::new_cyclic(|this| BlobStore {
            index: DashMap::new(),
            counters: Arc::new(Counters::default()),
            this: this.clone(),
        })
    }

    /// A reference to the blob holding `bytes`, stored now if it is new. Returns the blob and
    /// whether it was new.
    pub fn insert(&self, bytes: &[u8]) -> (Blob, bool) {
        let hash: Hash = *blake3::hash(bytes).as_bytes();
        if let Some(found) = self.index.get(&hash).and_then(|w| w.upgrade()) {
            return (Blob(found), false);
        }
        match self.index.entry(hash) {
            dashmap::mapref::entry::Entry::Occupied(mut e) => {
                if let Some(found) = e.get().upgrade() {
                    return (Blob(found), false);
                }
                let blob = self.new_blob(hash, bytes);
                e.insert(Arc::downgrade(&blob.0));
                (blob, true)
            }
            dashmap::mapref::entry::Entry::Vacant(e) => {
                let blob = self.new_blob(hash, bytes);
                e.insert(Arc::downgrade(&blob.0));
                (blob, true)
            }
        }
    }

    fn new_blob(&self, hash: Hash, bytes: &[u8]) -> Blob {
        self.counters.blobs.fetch_add(1, Ordering::Relaxed);
        self.counters
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Blob(Arc::new(BlobData {
            hash,
            bytes: bytes.into(),
            store: self.this.clone(),
            counters: self.counters.clone(),
        }))
    }

    /// Whether a blob with this hash is stored.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.index.get(hash).is_some_and(|w| w.strong_count() > 0)
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            blobs: self.counters.blobs.load(Ordering::Relaxed),
            stored_bytes: self.counters.bytes.load(Ordering::Relaxed),
        }
    }

    /// Every live blob (for statistics and consistency checks).
    pub fn blobs(&self) -> Vec<Blob> {
        self.index
            .iter()
            .filter_map(|e| e.value().upgrade().map(Blob))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_bytes_are_stored_once_and_freed_with_the_last_reference() {
        let store = BlobStore::new();
        let (a, new_a) = store.insert(b"hello");
        let (b, new_b) = store.insert(b"hello");
        assert!(new_a && !new_b);
        assert_eq!(a, b);
        assert_eq!(store.stats().blobs, 1);
        assert_eq!(a.refcount(), 2);
        drop(a);
        assert_eq!(store.stats().blobs, 1);
        drop(b);
        assert_eq!(store.stats(), StoreStats::default());
        assert_eq!(store.index.len(), 0);
    }
}
