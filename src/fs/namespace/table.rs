//! The inode table and the tree lock: the one owner of which inodes exist, how they are
//! numbered, the descendant counts along parent chains, and the repair of those counts
//! after a panic.

use std::collections::HashMap;
use std::sync::Arc;

use dashmap::DashMap;

use crate::fs::attr::FileKind;
use crate::fs::error::{Errno, Result};
use crate::fs::ROOT_INO;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::inode::{damage_seen, log_poisoned, note_damage, Body, Inode, InodeData};
use super::merkle::MerkleEpoch;

/// Every live inode, by number, and the lock that orders namespace changes.
pub struct Namespace {
    inodes: DashMap<u64, Arc<Inode>>,
    next_ino: AtomicU64,
    tree_lock: RwLock<()>,
    /// `inode::damage_seen()` as of the last repair: while it is behind, a panic may have
    /// left counts half-updated.
    repaired_through: AtomicU64,
    /// Makes every cached Merkle hash stale when bumped.
    merkle_epoch: MerkleEpoch,
}

/// A live inode with its data locked for reading, as a repair sees it.
pub type Locked<'a> = (&'a Inode, &'a InodeData);

impl Namespace {
    /// A table holding only `root` (number `ROOT_INO`).
    pub fn new(root: Inode) -> Namespace {
        let inodes = DashMap::new();
        inodes.insert(ROOT_INO, Arc::new(root));
        Namespace {
            inodes,
            next_ino: AtomicU64::new(ROOT_INO + 1),
            tree_lock: RwLock::new(()),
            repaired_through: AtomicU64::new(damage_seen()),
            merkle_epoch: MerkleEpoch::default(),
        }
    }

    /// The epoch of every cached Merkle hash.
    pub(super) fn merkle_epoch(&self) -> &MerkleEpoch {
        &self.merkle_epoch
    }

    /// Makes `first` the number of the next new inode (tests of large numbers).
    #[cfg(test)]
    pub fn set_next_ino(&self, first: u64) {
        self.next_ino.store(first, Ordering::Relaxed);
    }

    /// The number the next new inode gets (tests that forget every inode made).
    #[cfg(test)]
    pub fn next_ino(&self) -> u64 {
        self.next_ino.load(Ordering::Relaxed)
    }

    /// A live inode for a request on it: EIO if a panicking request left it half-changed.
    pub fn get(&self, ino: u64) -> Result<Arc<Inode>> {
        let inode = self.get_even_poisoned(ino)?;
        if inode.is_poisoned() {
            log_poisoned(&inode);
            return Err(Errno::EIO);
        }
        Ok(inode)
    }

    /// A live inode, poisoned or not: for removing its names, freeing it, and walks of the
    /// tree that only read its identity and counters.
    pub fn get_even_poisoned(&self, ino: u64) -> Result<Arc<Inode>> {
        self.inodes
            .get(&ino)
            .map(|r| r.value().clone())
            .ok_or(Errno::ENOENT)
    }

    /// Whether `ino` is still in the table.
    pub fn contains(&self, ino: u64) -> bool {
        self.inodes.contains_key(&ino)
    }

    /// Numbers a new inode, built by `make` from its number, and puts it in the table.
    pub fn add(&self, make: impl FnOnce(u64) -> Inode) -> Arc<Inode> {
        let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
        let inode = Arc::new(make(ino));
        self.inodes.insert(ino, inode.clone());
        inode
    }

    /// Takes `ino` out of the table (its last name, reference and handle are gone).
    pub fn remove(&self, ino: u64) {
        self.inodes.remove(&ino);
    }

    /// Number of live inodes (including the root).
    pub fn len(&self) -> usize {
        self.inodes.len()
    }

    /// The live inodes `keep` accepts, as of now (for walks that must not hold the
    /// table's shard locks while they lock inodes).
    pub fn collect(&self, keep: impl Fn(&Inode) -> bool) -> Vec<Arc<Inode>> {
        self.inodes
            .iter()
            .filter(|e| keep(e.value()))
            .map(|e| e.value().clone())
            .collect()
    }

    /// The tree lock, shared, for a namespace change; counts a panic that cuts the change
    /// short. Callers repair what an earlier panic left first (`Fs::tree_shared`).
    pub fn tree_shared(&self) -> TreeGuard<RwLockReadGuard<'_, ()>> {
        TreeGuard {
            _lock: self.tree_lock.read(),
        }
    }

    /// The tree lock, exclusive (a rename between directories); as `tree_shared`.
    pub fn tree_exclusive(&self) -> TreeGuard<RwLockWriteGuard<'_, ()>> {
        TreeGuard {
            _lock: self.tree_lock.write(),
        }
    }

    /// The tree lock, exclusive, for a check that only reads: no namespace change runs
    /// while it is held.
    pub fn still(&self) -> RwLockWriteGuard<'_, ()> {
        self.tree_lock.write()
    }

    /// Adds `delta` to the descendant count of `dir` and of every directory above it.
    /// Callers hold the tree lock, so the chain of parents cannot change underneath.
    pub fn add_descendants(&self, dir: u64, delta: i64) {
        if delta == 0 {
            return;
        }
        let mut ino = dir;
        loop {
            let Ok(inode) = self.get_even_poisoned(ino) else {
                return;
            };
            if delta > 0 {
                inode.descendants.fetch_add(delta as u64, Ordering::AcqRel);
            } else {
                inode
                    .descendants
                    .fetch_sub(delta.unsigned_abs(), Ordering::AcqRel);
            }
            if ino == ROOT_INO {
                return;
            }
            ino = inode.parent();
        }
    }

    /// The count a directory entry adds to every directory above it.
    pub fn weight(inode: &Inode) -> i64 {
        1 + inode.descendants() as i64
    }

    /// Whether directory `ino` is `ancestor` or lies below it.
    pub fn is_within(&self, mut ino: u64, ancestor: u64) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            if ino == ROOT_INO {
                return false;
            }
            match self.get_even_poisoned(ino) {
                Ok(inode) => ino = inode.parent(),
                Err(_) => return false,
            }
        }
    }

    /// Repairs the counts if a panic may have left them half-updated since the last repair;
    /// `recount` sets the counters kept outside the namespace (the budget's) from every
    /// live inode. One atomic load when nothing needs it.
    pub fn repair_if_needed(&self, recount: impl FnOnce(&[Locked<'_>])) {
        if damage_seen() == self.repaired_through.load(Ordering::Acquire) {
            return;
        }
        let _tree = self.tree_lock.write();
        let seen = damage_seen();
        if seen == self.repaired_through.load(Ordering::Acquire) {
            return;
        }
        self.repair(recount);
        self.merkle_forget_all();
        self.repaired_through.store(seen, Ordering::Release);
    }

    /// A repair whether or not one is needed (tests of the repair itself).
    #[cfg(test)]
    pub fn repair_now(&self, recount: impl FnOnce(&[Locked<'_>])) {
        let _tree = self.tree_lock.write();
        self.repair(recount);
    }

    /// Recounts, from a walk, everything a panicking change may have left half-updated: the
    /// descendant counts, directory link counts and parent links (from the root down), and
    /// (through `recount`) the budget counters over every inode. Logs each inode newly
    /// poisoned.
    ///
    /// Sound because nothing else changes what it counts meanwhile: the caller holds the
    /// tree lock exclusively, so no namespace change runs (they alone change entries,
    /// descendant counts, parents and directory link counts), and every inode's data lock is
    /// held for reading while the counters are summed and set, so no write, commit, xattr
    /// change or free runs either (each changes its counter under its inode's write lock;
    /// a free also leaves the table under it). What may run meanwhile holds at most one
    /// inode lock and takes no other inode or tree lock while holding it, so taking them
    /// all cannot deadlock. Repairs are rare (only after a panic), so the walk's cost is
    /// not on any normal path.
    fn repair(&self, recount: impl FnOnce(&[Locked<'_>])) {
        let mut inodes: Vec<Arc<Inode>> = self.collect(|_| true);
        inodes.sort_unstable_by_key(|i| i.ino);
        let guards: Vec<_> = inodes.iter().map(|i| i.data.read()).collect();
        // One freed between the snapshot and the lock has its metadata released already.
        let live: Vec<bool> = inodes.iter().map(|i| self.contains(i.ino)).collect();
        let locked: Vec<Locked<'_>> = inodes
            .iter()
            .zip(&guards)
            .zip(&live)
            .filter(|(_, &l)| l)
            .map(|((inode, data), _)| {
                log_poisoned(inode);
                (&**inode, &**data)
            })
            .collect();
        recount(&locked);
        drop(locked);

        // Directories from the root down: (ino, descendants, subdirectories) in post-order.
        let index: HashMap<u64, usize> = inodes
            .iter()
            .enumerate()
            .filter(|&(i, _)| live[i])
            .map(|(i, n)| (n.ino, i))
            .collect();
        let mut counted: Vec<(usize, u64, u32)> = Vec::new();
        let mut stack: Vec<(usize, bool)> = index
            .get(&ROOT_INO)
            .map(|&i| (i, false))
            .into_iter()
            .collect();
        let mut totals: HashMap<usize, (u64, u32)> = Default::default();
        while let Some((at, children_done)) = stack.pop() {
            let Body::Dir(dir) = &guards[at].body else {
                continue;
            };
            if !children_done {
                stack.push((at, true));
                for e in dir.entries().filter(|e| e.kind == FileKind::Directory) {
                    if let Some(&child) = index.get(&e.ino) {
                        inodes[child]
                            .parent
                            .store(inodes[at].ino, Ordering::Release);
                        stack.push((child, false));
                    }
                }
                continue;
            }
            let (mut total, mut subdirs) = (0u64, 0u32);
            for e in dir.entries() {
                total += 1;
                if e.kind == FileKind::Directory {
                    subdirs += 1;
                    total += index
                        .get(&e.ino)
                        .and_then(|c| totals.get(c))
                        .map_or(0, |t| t.0);
                }
            }
            totals.insert(at, (total, subdirs));
            counted.push((at, total, subdirs));
        }
        drop(guards);
        for (at, total, subdirs) in counted {
            let inode = &inodes[at];
            inode.descendants.store(total, Ordering::Release);
            let nlink = 2 + subdirs;
            if inode.data.read().meta.nlink != nlink {
                inode.data.write().meta.nlink = nlink;
            }
        }
    }
}

/// Holds the tree lock for a namespace change. A panic that drops it counts as one that
/// may have left the descendant counts half-updated (they are updated after the directory
/// locks are let go), so the next namespace request repairs them.
pub struct TreeGuard<G> {
    _lock: G,
}

impl<G> Drop for TreeGuard<G> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            note_damage();
        }
    }
}
