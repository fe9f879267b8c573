//! A Merkle hash on every node, kept lazily: a change marks the node and every directory
//! above it (one counter bump each, O(depth)), and a hash is recomputed only when read, from
//! the children's hashes, which are cached in turn. A subtree nothing changed in keeps its
//! cached hash, so reading the root's hash after one change costs O(depth × entries per
//! directory on the path).
//!
//! What a hash covers (blake3, 32 bytes):
//! - a regular file: its size and its content as the recipe of its current bytes (each
//!   piece's length and chunk id, or a run of zeros). Recipes are canonical (the same bytes
//!   give the same chunks however they were written), so equal bytes give equal hashes; a
//!   file with uncommitted writes is hashed as the commit of its current bytes would be.
//! - a symlink: its target; a FIFO, socket or device: its kind and device number.
//! - a directory: its entries sorted by name, each as (name, kind, permission bits, the
//!   child's hash). Owners, times, link counts and extended attributes are not covered.
//!
//! Why counters and not dirty flags: a reader that computes a directory's hash notes the
//! directory's counter first and files the result under that value; a change anywhere below
//! bumps the counter afterwards (changes bump after they are made), so a hash computed
//! while a change was landing is filed under a stale value and never served. A file with
//! several names (hard links) knows only one of its parents, so once linked, a change to it
//! bumps the namespace-wide epoch instead, which makes every cached hash stale (hard-linked
//! files that change are rare; the next read recomputes the whole tree once).

use std::fmt::Write as _;
use std::sync::Arc;

use crate::fs::attr::FileKind;
use crate::fs::error::Result;
use crate::fs::{Fs, ROOT_INO};
use crate::store::{PieceData, Recipe};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::Mutex;

use super::inode::{Body, Inode};
use super::table::Namespace;

/// A node's Merkle hash.
pub type Hash = [u8; 32];

/// The hash as 64 lowercase hex digits (what `user.memfs.hash` shows).
pub fn hex(hash: &Hash) -> String {
    let mut s = String::with_capacity(64);
    for b in hash {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// One kind tag per node kind, so a file and a symlink with the same bytes differ.
fn kind_tag(kind: FileKind) -> u8 {
    match kind {
        FileKind::Regular => b'f',
        FileKind::Directory => b'd',
        FileKind::Symlink => b'l',
        FileKind::Fifo => b'p',
        FileKind::Socket => b's',
        FileKind::CharDevice => b'c',
        FileKind::BlockDevice => b'b',
    }
}

/// The hash of a file whose bytes `recipe` holds. Adjacent zero runs are merged so the
/// hash depends only on the chunk boundaries of the data.
pub fn recipe_hash(recipe: &Recipe) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"f");
    h.update(&recipe.size().to_le_bytes());
    let mut zeros = 0u64;
    for piece in recipe.pieces() {
        match &piece.data {
            PieceData::Zeros => zeros += piece.len,
            PieceData::Chunk(chunk) => {
                if zeros > 0 {
                    h.update(b"z");
                    h.update(&zeros.to_le_bytes());
                    zeros = 0;
                }
                h.update(b"c");
                h.update(&piece.len.to_le_bytes());
                h.update(chunk.id().as_bytes());
            }
        }
    }
    if zeros > 0 {
        h.update(b"z");
        h.update(&zeros.to_le_bytes());
    }
    *h.finalize().as_bytes()
}

/// The hash of a symlink to `target`.
pub fn symlink_hash(target: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(b"l");
    h.update(target);
    *h.finalize().as_bytes()
}

/// The hash of a FIFO, socket or device node.
pub fn special_hash(kind: FileKind, rdev: u32) -> Hash {
    let mut h = blake3::Hasher::new();
    h.update(&[kind_tag(kind)]);
    h.update(&rdev.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The hash of a directory, fed its entries in name order.
pub struct DirHasher(blake3::Hasher);

impl Default for DirHasher {
    fn default() -> Self {
        let mut h = blake3::Hasher::new();
        h.update(b"d");
        DirHasher(h)
    }
}

impl DirHasher {
    pub fn add(&mut self, name: &[u8], kind: FileKind, perm: u16, child: &Hash) {
        self.0.update(&(name.len() as u32).to_le_bytes());
        self.0.update(name);
        self.0.update(&[kind_tag(kind)]);
        self.0.update(&perm.to_le_bytes());
        self.0.update(child);
    }

    pub fn finish(self) -> Hash {
        *self.0.finalize().as_bytes()
    }
}

/// What an inode keeps for its hash.
#[derive(Debug)]
pub struct MerkleCell {
    /// Bumped by every change at or below this node.
    stamp: AtomicU64,
    /// A regular file that has had more than one name: its parent link is not trusted.
    linked: AtomicBool,
    /// The last hash computed, with the epoch and stamp it was computed at.
    cached: Mutex<Cached>,
}

/// A hash and when it was computed. Epochs start at 1, so the default (epoch 0) matches
/// nothing: no `Option` tag, which keeps the cell at 72 bytes.
#[derive(Debug, Default)]
struct Cached {
    epoch: u64,
    stamp: u64,
    hash: Hash,
}

impl Default for MerkleCell {
    // By hand: the model check's mutex has no `Default`.
    fn default() -> Self {
        MerkleCell {
            stamp: AtomicU64::new(0),
            linked: AtomicBool::new(false),
            cached: Mutex::new(Cached::default()),
        }
    }
}

impl MerkleCell {
    fn cached(&self, epoch: u64, stamp: u64) -> Option<Hash> {
        let c = self.cached.lock();
        (c.epoch == epoch && c.stamp == stamp).then_some(c.hash)
    }

    fn store(&self, epoch: u64, stamp: u64, hash: Hash) {
        *self.cached.lock() = Cached { epoch, stamp, hash };
    }

    /// Notes that the file got a second name.
    pub fn mark_linked(&self) {
        self.linked.store(true, Ordering::Release);
    }
}

/// The namespace-wide part: an epoch that makes every cached hash stale at once.
#[derive(Debug)]
pub struct MerkleEpoch(AtomicU64);

impl Default for MerkleEpoch {
    fn default() -> Self {
        MerkleEpoch(AtomicU64::new(1))
    }
}

impl Namespace {
    /// Marks `inode` and every directory above it as changed. Call after the change is
    /// made (and its locks let go, or not: it takes none).
    pub fn merkle_changed(&self, inode: &Inode) {
        inode.merkle.stamp.fetch_add(1, Ordering::AcqRel);
        if inode.kind != FileKind::Directory && inode.merkle.linked.load(Ordering::Acquire) {
            self.merkle_epoch().0.fetch_add(1, Ordering::AcqRel);
            return;
        }
        if inode.ino == ROOT_INO {
            return;
        }
        let mut ino = inode.parent();
        loop {
            let Ok(dir) = self.get_even_poisoned(ino) else {
                return;
            };
            dir.merkle.stamp.fetch_add(1, Ordering::AcqRel);
            if ino == ROOT_INO {
                return;
            }
            ino = dir.parent();
        }
    }

    /// Marks directory `ino` and those above it as changed (its entries changed).
    pub fn merkle_dir_changed(&self, ino: u64) {
        if let Ok(dir) = self.get_even_poisoned(ino) {
            self.merkle_changed(&dir);
        }
    }

    /// Makes every cached hash stale (after a repair rewrote parent links).
    pub fn merkle_forget_all(&self) {
        self.merkle_epoch().0.fetch_add(1, Ordering::AcqRel);
    }

    fn epoch_now(&self) -> u64 {
        self.merkle_epoch().0.load(Ordering::Acquire)
    }

    /// Where `inode`'s hash stands now; read before reading the inode, so a hash computed
    /// from what is read after can be filed under it (`merkle_seed`).
    pub fn merkle_mark(&self, inode: &Inode) -> MerkleMark {
        MerkleMark {
            epoch: self.epoch_now(),
            stamp: inode.merkle.stamp.load(Ordering::Acquire),
        }
    }

    /// Files a hash computed elsewhere (a snapshot's) as `inode`'s, as of `mark`: served
    /// only if nothing changed since.
    pub fn merkle_seed(&self, inode: &Inode, mark: MerkleMark, hash: &Hash) {
        inode.merkle.store(mark.epoch, mark.stamp, *hash);
    }
}

/// Where an inode's hash stood when it was read (see `Namespace::merkle_mark`).
#[derive(Clone, Copy, Debug)]
pub struct MerkleMark {
    epoch: u64,
    stamp: u64,
}

/// An entry as a directory's hash covers it: name, kind, permission bits, and the inode.
type Child = (Arc<[u8]>, FileKind, u16, Arc<Inode>);

/// A directory whose hash is being computed: the children still to hash.
struct Frame {
    inode: Arc<Inode>,
    epoch: u64,
    stamp: u64,
    /// Name, kind, permission bits and inode of each entry, sorted by name.
    entries: Vec<Child>,
    next: usize,
    hasher: DirHasher,
}

impl Frame {
    /// Feeds the hash of the entry at `next` and moves on.
    fn add_current(&mut self, child: &Hash) {
        if let Some((name, kind, perm, _)) = self.entries.get(self.next) {
            self.hasher.add(name, *kind, *perm, child);
        }
        self.next += 1;
    }
}

impl Fs {
    /// The Merkle hash of live inode `ino` (see the module doc for what it covers).
    pub fn merkle_hash(&self, ino: u64) -> Result<Hash> {
        let inode = self.namespace.get_even_poisoned(ino)?;
        self.hash_of(inode)
    }

    /// Computes from the children up, reusing every cached hash still current, with an
    /// explicit stack (trees can be deeper than a thread's stack allows recursion). EIO
    /// when a file's changed bytes need chunks the store cannot serve.
    fn hash_of(&self, top: Arc<Inode>) -> Result<Hash> {
        let mut stack: Vec<Frame> = Vec::new();
        let mut value = self.begin_hash(top, &mut stack)?;
        loop {
            if let Some(h) = value.take() {
                match stack.last_mut() {
                    None => return Ok(h),
                    Some(frame) => frame.add_current(&h),
                }
            }
            let Some(frame) = stack.last_mut() else {
                return Ok(DirHasher::default().finish());
            };
            if let Some(child) = frame.entries.get(frame.next).map(|e| e.3.clone()) {
                value = self.begin_hash(child, &mut stack)?;
                continue;
            }
            let Some(frame) = stack.pop() else { continue };
            let h = frame.hasher.finish();
            frame.inode.merkle.store(frame.epoch, frame.stamp, h);
            value = Some(h);
        }
    }

    /// The hash of `inode` if it is cached or a leaf; otherwise pushes its frame.
    fn begin_hash(&self, inode: Arc<Inode>, stack: &mut Vec<Frame>) -> Result<Option<Hash>> {
        // Read before anything of the node is, so a change landing meanwhile files this
        // computation under a stale stamp.
        let epoch = self.namespace.epoch_now();
        let stamp = inode.merkle.stamp.load(Ordering::Acquire);
        if let Some(h) = inode.merkle.cached(epoch, stamp) {
            return Ok(Some(h));
        }
        if inode.kind == FileKind::Directory {
            let listed: Vec<(Arc<[u8]>, FileKind, u64)> = match &inode.data.read().body {
                Body::Dir(d) => d
                    .entries()
                    .map(|e| (e.name.clone(), e.kind, e.ino))
                    .collect(),
                _ => Vec::new(),
            };
            let mut entries: Vec<_> = listed
                .into_iter()
                .filter_map(|(name, kind, ino)| {
                    // One removed meanwhile changed this directory: the result is stale.
                    let child = self.namespace.get_even_poisoned(ino).ok()?;
                    let perm = child.data.read().meta.perm;
                    Some((name, kind, perm, child))
                })
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            stack.push(Frame {
                inode,
                epoch,
                stamp,
                entries,
                next: 0,
                hasher: DirHasher::default(),
            });
            return Ok(None);
        }
        let h = self.leaf_hash(&inode)?;
        inode.merkle.store(epoch, stamp, h);
        Ok(Some(h))
    }

    /// The hash of a file, symlink or special node.
    fn leaf_hash(&self, inode: &Inode) -> Result<Hash> {
        let data = inode.data.read();
        Ok(match &data.body {
            Body::File(f) if f.content.is_dirty() => {
                // Chunked as its commit would be; the chunks go with the result.
                match f
                    .content
                    .prepare_commit(&self.config.chunker, &*self.store)?
                    .and_then(|p| p.recipe)
                {
                    Some(recipe) => recipe_hash(&recipe),
                    None => recipe_hash(f.content.base()),
                }
            }
            Body::File(f) => recipe_hash(f.content.base()),
            Body::Symlink(target) => symlink_hash(target),
            Body::Special => special_hash(inode.kind, data.meta.rdev),
            Body::Dir(_) => DirHasher::default().finish(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_cell_fits_what_the_budget_adds_for_it() {
        let size = std::mem::size_of::<super::MerkleCell>() as u64;
        assert!(size <= 72, "{size}");
    }
}
