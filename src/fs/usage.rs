//! Bounded memory (`--max-memory`): what memfs holds, kept in atomic counters, against a cap.
//!
//! ```text
//! used = unique bytes in blobs + BLOB_BYTES per blob      the store's own counters
//!      + dirty bytes (written, not yet committed)         Fs::dirty_bytes
//!      + a metadata estimate                               Fs::meta_bytes
//! ```
//!
//! The metadata estimate is charged where metadata is made and released where it goes: per
//! inode, per directory entry and its name, per symlink target byte, per extended attribute
//! with its name and value, and per kept version with each piece of its recipe. The live
//! content's recipe is its newest version's, so it is counted once. No operation walks
//! anything to know the total.
//!
//! Growth that would take `used` past the cap fails with ENOSPC, but first memfs drops old
//! versions (oldest commit first, never a file's newest) to make room: history is
//! best-effort. Shrinking never fails. A commit is checked on its result: it stores its new
//! chunks, and if the result does not fit it drops them again and leaves the file's dirty
//! data as it was, readable and committable later.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use super::attr::FileKind;
use super::error::{Errno, Result};
use super::inode::{Body, Inode, InodeData};
use super::Fs;
use crate::store::blob::{Blob, Hash};
use crate::store::{PieceData, Recipe, RecipeRef};

// What each thing costs, in heap bytes: measured with a counting allocator (glibc on x86-64,
// usable size plus malloc's 8-byte header) over 100,000 of each, then rounded up a little.
// The hash maps and B-trees are measured full-grown, so their spare slots are included.

/// An inode: the `Arc<Inode>` (identity, counters, lock, times and ids, the largest body: a
/// regular file's empty content and history) and its slot in the inode table. Measured:
/// 375 bytes for a file, 311 for a directory.
pub const INODE_BYTES: u64 = 384;
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
/// One stored blob besides its bytes: the refcounted header (hash, pointers) and its entry
/// in the hash index (measured 149).
pub const BLOB_BYTES: u64 = 160;

/// Dropping versions for room frees at least this much more than asked (at most 1/16 of
/// the cap), so a run of writes on a full file system does not walk the inodes each time.
const PRUNE_SLACK: u64 = 1 << 20;

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
pub(super) enum Fail {
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
pub(super) fn version_cost(recipe: &Recipe) -> u64 {
    (recipe.pieces().len() as u64)
        .saturating_mul(PIECE_BYTES)
        .saturating_add(VERSION_BYTES)
}

/// The metadata cost of an extended attribute.
pub(super) fn xattr_cost(name: usize, value: usize) -> u64 {
    XATTR_BYTES
        .saturating_add(name as u64)
        .saturating_add(value as u64)
}

/// The metadata cost of a directory entry named `name`.
pub(super) fn entry_cost(name: &[u8]) -> u64 {
    ENTRY_BYTES.saturating_add(name.len() as u64)
}

/// The metadata an inode holds apart from the entries naming it: the inode, its extended
/// attributes, a symlink's target, a file's versions. Released when it is freed.
pub(super) fn inode_meta(data: &InodeData) -> u64 {
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

/// Bytes that dropping these recipes would free: the chunks no one else holds, each with
/// its overhead. Each recipe comes with how many of its holders go away; one that someone
/// else also holds (a reader of a version) frees nothing.
pub(super) fn bytes_freed(dropped: &[(&RecipeRef, usize)]) -> u64 {
    let mut refs: HashMap<&Hash, (usize, &Blob)> = HashMap::new();
    for (recipe, holders) in dropped {
        if Arc::strong_count(recipe) > *holders {
            continue;
        }
        for piece in recipe.pieces() {
            if let PieceData::Chunk(blob) = &piece.data {
                refs.entry(blob.hash()).or_insert((0, blob)).0 += 1;
            }
        }
    }
    refs.values()
        .filter(|(n, blob)| blob.refcount() == *n)
        .map(|(_, blob)| (blob.len() as u64).saturating_add(BLOB_BYTES))
        .sum()
}

fn sub(counter: &AtomicU64, n: u64) {
    let _ = counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
        Some(v.saturating_sub(n))
    });
}

impl Fs {
    /// The cap on what memfs holds, in bytes.
    pub fn capacity(&self) -> u64 {
        self.config.capacity
    }

    /// What memfs holds against the cap: unique chunk bytes and their overhead, dirty bytes
    /// and the metadata estimate.
    pub fn used_bytes(&self) -> u64 {
        let store = self.store.stats();
        store
            .stored_bytes
            .saturating_add(store.blobs.saturating_mul(BLOB_BYTES))
            .saturating_add(self.dirty_bytes.load(Ordering::SeqCst))
            .saturating_add(self.meta_bytes.load(Ordering::SeqCst))
    }

    /// The metadata part of [`Fs::used_bytes`], blob overhead included.
    pub fn metadata_bytes(&self) -> u64 {
        self.meta_bytes
            .load(Ordering::Relaxed)
            .saturating_add(self.store.stats().blobs.saturating_mul(BLOB_BYTES))
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
        let used = self.used_bytes();
        if used <= self.config.capacity {
            return Ok(());
        }
        sub(counter, n);
        Err(Fail::Short(used - self.config.capacity))
    }

    /// Charges `n` metadata bytes, or says how much room is missing.
    pub(super) fn charge_meta(&self, n: u64) -> std::result::Result<(), Fail> {
        self.try_charge(&self.meta_bytes, n)
    }

    /// Charges `n` dirty bytes, or says how much room is missing.
    pub(super) fn charge_dirty(&self, n: u64) -> std::result::Result<(), Fail> {
        self.try_charge(&self.dirty_bytes, n)
    }

    /// Charges metadata whatever the cap (for changes too small and too vital to refuse,
    /// such as a rename's longer name).
    pub(super) fn add_meta(&self, n: u64) {
        self.meta_bytes.fetch_add(n, Ordering::SeqCst);
    }

    pub(super) fn release_meta(&self, n: u64) {
        sub(&self.meta_bytes, n);
    }

    pub(super) fn release_dirty(&self, n: u64) {
        sub(&self.dirty_bytes, n);
    }

    pub(super) fn add_prunable(&self, n: u64) {
        self.prunable.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn release_prunable(&self, n: u64) {
        sub(&self.prunable, n);
    }

    /// Whether `n` more bytes would fit, without charging them.
    pub(super) fn room_for(&self, n: u64) -> std::result::Result<(), Fail> {
        let want = self.used_bytes().saturating_add(n);
        if want <= self.config.capacity {
            Ok(())
        } else {
            Err(Fail::Short(want - self.config.capacity))
        }
    }

    /// Runs `op`; if it is short of room, drops old versions to make some and runs it once
    /// more (told it is the second try). Still short: ENOSPC. `op` must return holding no
    /// lock.
    pub(super) fn with_room<T>(
        &self,
        mut op: impl FnMut(bool) -> std::result::Result<T, Fail>,
    ) -> Result<T> {
        match op(false) {
            Ok(v) => Ok(v),
            Err(Fail::Errno(e)) => Err(e),
            Err(Fail::Short(short)) => {
                self.make_room(short);
                match op(true) {
                    Ok(v) => Ok(v),
                    Err(Fail::Errno(e)) => Err(e),
                    Err(Fail::Short(_)) => Err(Errno::ENOSPC),
                }
            }
        }
    }

    /// Drops old versions, oldest commit first and never a file's newest, until `short`
    /// bytes (and some slack) are freed or none is left. Returns whether it dropped any.
    /// The caller holds no inode lock. Only runs under pressure, so it may walk the inodes.
    pub(super) fn make_room(&self, short: u64) -> bool {
        if self.prunable.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let _alone = self.prune_lock.lock();
        let start = self.used_bytes();
        let goal = short.saturating_add(PRUNE_SLACK.min(self.config.capacity / 16));
        let files: Vec<Arc<Inode>> = self
            .inodes
            .iter()
            // A poisoned file's history may be half-changed: left alone until it is freed.
            .filter(|e| e.value().kind == FileKind::Regular && !e.value().is_poisoned())
            .map(|e| e.value().clone())
            .collect();
        let mut old: Vec<(SystemTime, u64, u64, usize)> = Vec::new();
        for (i, inode) in files.iter().enumerate() {
            let data = inode.data.read();
            if let Body::File(f) = &data.body {
                let n = f.history.len().saturating_sub(1);
                old.extend(
                    f.history
                        .versions()
                        .take(n)
                        .map(|v| (v.time, inode.ino, v.number, i)),
                );
            }
        }
        old.sort_unstable();
        let mut dropped = 0u64;
        for (_, _, number, i) in old {
            let version = match &mut files[i].data.write().body {
                Body::File(f) => f.history.remove_old(number),
                _ => None,
            };
            if let Some(v) = version {
                self.release_meta(version_cost(&v.recipe));
                self.release_prunable(1);
                dropped += 1;
                drop(v);
            }
            if start.saturating_sub(self.used_bytes()) >= goal {
                break;
            }
        }
        self.dropped_for_space.fetch_add(dropped, Ordering::Relaxed);
        dropped > 0
    }

    /// Recomputes the metadata estimate and the count of droppable versions by walking
    /// every inode, and compares them with the counters (for tests; takes the tree lock).
    pub fn verify_usage(&self) -> std::result::Result<(), String> {
        self.repair_if_needed();
        let _tree = self.tree_lock.write();
        let mut meta = 0u64;
        let mut prunable = 0u64;
        let inodes: Vec<Arc<Inode>> = self.inodes.iter().map(|e| e.value().clone()).collect();
        for inode in inodes {
            let data = inode.data.read();
            meta += inode_meta(&data);
            match &data.body {
                Body::Dir(d) => meta += d.entries().map(|e| entry_cost(&e.name)).sum::<u64>(),
                Body::File(f) => prunable += f.history.len().saturating_sub(1) as u64,
                _ => {}
            }
        }
        let counted = self.meta_bytes.load(Ordering::Relaxed);
        if counted != meta {
            return Err(format!("metadata counter {counted}, walk finds {meta}"));
        }
        let counted = self.prunable.load(Ordering::Relaxed);
        if counted != prunable {
            return Err(format!("prunable counter {counted}, walk finds {prunable}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{Caller, FsConfig, SetAttr, ROOT_INO};
    use crate::testdata::noise;

    const WHO: Caller = Caller::ROOT;
    const KIB: u64 = 1 << 10;
    const MIB: u64 = 1 << 20;

    fn fs_with_cap(capacity: u64) -> Fs {
        Fs::new(FsConfig {
            capacity,
            ..FsConfig::default()
        })
    }

    /// A new file opened for reading and writing: (ino, fh).
    fn create(fs: &Fs, parent: u64, name: &str) -> (u64, u64) {
        let (attr, fh) = fs
            .create(parent, name.as_bytes(), 0o644, libc::O_RDWR, WHO)
            .unwrap();
        (attr.ino, fh)
    }

    /// Writes `data` in pieces of `piece` bytes from offset 0; stops at the first error.
    fn write_all(fs: &Fs, fh: u64, data: &[u8], piece: usize) -> Result<()> {
        for (i, c) in data.chunks(piece).enumerate() {
            fs.write(fh, (i * piece) as u64, c)?;
        }
        Ok(())
    }

    fn read_all(fs: &Fs, fh: u64) -> Vec<u8> {
        fs.read(fh, 0, u32::MAX).unwrap()
    }

    /// Writes, closes, and returns the version committed.
    fn put(fs: &Fs, parent: u64, name: &str, data: &[u8]) -> u64 {
        let (ino, fh) = create(fs, parent, name);
        write_all(fs, fh, data, 128 << 10).unwrap();
        fs.flush(fh).unwrap();
        fs.release(fh).unwrap();
        ino
    }

    fn check(fs: &Fs) {
        fs.verify_usage().unwrap();
        fs.verify_tree().unwrap();
    }

    #[test]
    fn used_returns_to_its_baseline_after_deleting_everything() {
        let fs = fs_with_cap(1 << 30);
        let baseline = fs.used_bytes();
        assert_eq!(baseline, INODE_BYTES);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, WHO).unwrap().ino;
        let shared = noise(300_000, 1);
        let a = put(&fs, d, "a", &shared);
        let b = put(&fs, d, "b", &shared); // the same chunks: dedup
        let stored_once = fs.store().stats().stored_bytes;
        assert_eq!(stored_once, 300_000);
        // More versions of a, one left uncommitted.
        let fh = fs.open(a, libc::O_RDWR).unwrap();
        for i in 0..5u64 {
            fs.write(fh, i * 1000, &noise(5000, 11 + 2 * i)).unwrap();
            fs.fsync(fh, false).unwrap();
        }
        fs.write(fh, 1 << 20, b"dirty, never committed").unwrap();
        assert!(fs.stats().dirty_bytes > 0);
        fs.setxattr(a, b"user.x", b"value", 0).unwrap();
        fs.setxattr(a, b"user.x", b"a longer value", 0).unwrap();
        fs.setxattr(b, b"user.y", &[7u8; 1000], 0).unwrap();
        fs.removexattr(b, b"user.y").unwrap();
        fs.setxattr(d, b"user.z", b"on a directory", 0).unwrap();
        let s = fs.symlink(d, b"s", b"a/target/path", WHO).unwrap().ino;
        let p = fs
            .mknod(d, b"p", libc::S_IFIFO | 0o644, 0, WHO)
            .unwrap()
            .ino;
        fs.link(b, ROOT_INO, b"b-link").unwrap();
        fs.rename(
            d,
            b"s",
            d,
            b"a-much-longer-symlink-name",
            crate::fs::RenameMode::Replace,
        )
        .unwrap();
        // Renaming over b's other name drops an entry.
        fs.rename(ROOT_INO, b"b-link", d, b"p", crate::fs::RenameMode::Replace)
            .unwrap();
        fs.setattr(
            b,
            &SetAttr {
                size: Some(1000),
                ..SetAttr::default()
            },
        )
        .unwrap();
        check(&fs);
        assert!(fs.used_bytes() > baseline + stored_once);

        // Delete everything; a is still open, so it lives until released.
        for name in ["a", "b", "a-much-longer-symlink-name", "p"] {
            fs.unlink(d, name.as_bytes()).unwrap();
        }
        fs.rmdir(ROOT_INO, b"d").unwrap();
        for ino in [a, b, s, p, d] {
            fs.forget(ino, 1000);
        }
        assert!(
            fs.used_bytes() > baseline,
            "a is open: its data is still there"
        );
        fs.release(fh).unwrap();
        check(&fs);
        assert_eq!(fs.used_bytes(), baseline);
        assert_eq!(fs.store().stats().blobs, 0);
        assert_eq!(fs.stats().dirty_bytes, 0);
        assert_eq!(fs.inode_count(), 1);
    }

    #[test]
    fn a_write_past_the_cap_is_enospc_and_changes_nothing() {
        let fs = fs_with_cap(2 * MIB);
        let (_, fh) = create(&fs, ROOT_INO, "f");
        let first = noise((3 * MIB / 2) as usize, 1);
        write_all(&fs, fh, &first, 64 << 10).unwrap();
        let used = fs.used_bytes();
        assert_eq!(
            fs.write(fh, first.len() as u64, &noise(MIB as usize, 2)),
            Err(Errno::ENOSPC)
        );
        assert_eq!(fs.used_bytes(), used);
        assert_eq!(read_all(&fs, fh), first);
        // Overwriting dirty bytes costs nothing, so it fits even now.
        fs.write(fh, 0, &[1u8; 4096]).unwrap();
        assert_eq!(fs.used_bytes(), used);
        // What fits still fits.
        fs.write(fh, first.len() as u64, &[2u8; 4096]).unwrap();
        fs.flush(fh).unwrap();
        assert!(fs.used_bytes() <= fs.capacity());
        check(&fs);
    }

    #[test]
    fn a_commit_that_does_not_fit_keeps_its_data_dirty_until_room_is_made() {
        let fs = fs_with_cap(4 * MIB);
        let other = put(&fs, ROOT_INO, "other", &noise(MIB as usize, 9));
        let (ino, fh) = create(&fs, ROOT_INO, "f");
        // Fill with dirty data to within a page of the cap: committing it needs chunk and
        // recipe metadata that is no longer there.
        let data = noise((4 * MIB) as usize, 1);
        let mut len = 0;
        for c in data.chunks(4096) {
            if fs.write(fh, len as u64, c).is_err() {
                break;
            }
            len += c.len();
        }
        assert!(fs.capacity() - fs.used_bytes() < 4096);
        let dirty = fs.stats().dirty_bytes;
        assert_eq!(dirty, len as u64);
        assert_eq!(fs.flush(fh), Err(Errno::ENOSPC));
        assert_eq!(fs.fsync(fh, false), Err(Errno::ENOSPC));
        assert_eq!(fs.stats().dirty_bytes, dirty);
        assert_eq!(read_all(&fs, fh), data[..len]);
        assert!(fs.versions(ino).unwrap().is_empty());
        assert!(fs.used_bytes() <= fs.capacity());
        check(&fs);
        // Free room: the commit goes through, the data is intact.
        fs.unlink(ROOT_INO, b"other").unwrap();
        fs.forget(other, 1);
        assert_eq!(fs.flush(fh), Ok(Some(1)));
        assert_eq!(fs.stats().dirty_bytes, 0);
        assert_eq!(read_all(&fs, fh), data[..len]);
        fs.release(fh).unwrap();
        assert!(fs.used_bytes() <= fs.capacity());
        check(&fs);
    }

    #[test]
    fn old_versions_are_dropped_oldest_first_to_make_room() {
        let fs = fs_with_cap(4 * MIB);
        let a = put(&fs, ROOT_INO, "a", &noise(MIB as usize, 1));
        let fh = fs.open(a, libc::O_RDWR).unwrap();
        // (Seeds are odd: noise() ignores the low bit.)
        for seed in [3, 5] {
            write_all(&fs, fh, &noise(MIB as usize, seed), 128 << 10).unwrap();
            fs.flush(fh).unwrap();
        }
        fs.release(fh).unwrap();
        let b = put(&fs, ROOT_INO, "b", &noise(100_000, 7));
        let fh = fs.open(b, libc::O_RDWR).unwrap();
        write_all(&fs, fh, &noise(200_000, 9), 128 << 10).unwrap();
        fs.flush(fh).unwrap();
        fs.release(fh).unwrap();
        let numbers = |ino| -> Vec<u64> {
            fs.versions(ino)
                .unwrap()
                .iter()
                .map(|v| v.version)
                .collect()
        };
        assert_eq!(numbers(a), vec![1, 2, 3]);
        assert_eq!(numbers(b), vec![1, 2]);
        check(&fs);
        // 3 MiB of versions and 300 KB of b leave under 1 MiB: 2 MiB more fit only without
        // a's two old versions.
        let used = fs.used_bytes();
        let c_data = noise((2 * MIB) as usize, 13);
        let c = put(&fs, ROOT_INO, "c", &c_data);
        assert!(fs.versions_dropped_for_space() >= 2);
        assert!(fs.used_bytes() < used + c_data.len() as u64);
        // The oldest went first; every file keeps its newest.
        assert_eq!(numbers(a), vec![3]);
        assert_eq!(*numbers(b).last().unwrap(), 2);
        assert_eq!(numbers(c), vec![1]);
        let fh = fs.open(a, libc::O_RDONLY).unwrap();
        assert_eq!(read_all(&fs, fh), noise(MIB as usize, 5));
        fs.release(fh).unwrap();
        check(&fs);
        // Nothing old is left to drop: the next big write fails.
        let (_, fh) = create(&fs, ROOT_INO, "d");
        assert_eq!(
            write_all(&fs, fh, &noise((2 * MIB) as usize, 5), 128 << 10),
            Err(Errno::ENOSPC)
        );
        fs.release(fh).unwrap();
        check(&fs);
    }

    #[test]
    fn truncating_a_file_on_a_full_file_system_frees_its_chunks() {
        let fs = fs_with_cap(4 * MIB);
        let big = put(&fs, ROOT_INO, "big", &noise((3 * MIB) as usize, 1));
        let (_, fh) = create(&fs, ROOT_INO, "fill");
        let fill = noise((2 * MIB) as usize, 3);
        let mut len = 0;
        while fs
            .write(fh, len, &fill[len as usize..len as usize + 1])
            .is_ok()
        {
            len += 1;
        }
        assert_eq!(fs.used_bytes(), fs.capacity());
        let used = fs.used_bytes();
        // No writer has big open: the truncate commits at once, dropping big's old version
        // (its only one until now) because the new one would not fit beside it.
        fs.setattr(
            big,
            &SetAttr {
                size: Some(0),
                ..SetAttr::default()
            },
        )
        .unwrap();
        let versions = fs.versions(big).unwrap();
        assert_eq!(versions.len(), 1);
        assert_eq!((versions[0].version, versions[0].size), (2, 0));
        assert!(
            fs.used_bytes() + 3 * MIB - 64 * KIB < used,
            "{}",
            fs.used_bytes()
        );
        fs.write(fh, len, &noise(MIB as usize, 5)).unwrap();
        fs.flush(fh).unwrap();
        fs.release(fh).unwrap();
        check(&fs);
    }

    #[test]
    fn metadata_past_the_cap_is_enospc_and_unlinking_restores_room() {
        let fs = fs_with_cap(256 * KIB);
        let baseline = fs.used_bytes();
        let mut n = 0;
        let err = loop {
            match fs.mknod(
                ROOT_INO,
                format!("f{n}").as_bytes(),
                libc::S_IFREG | 0o644,
                0,
                WHO,
            ) {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
            assert!(n < 100_000, "never ran out");
        };
        assert_eq!(err, Errno::ENOSPC);
        let per_file = INODE_BYTES + ENTRY_BYTES;
        assert!(
            n as u64 >= (256 * KIB - baseline) / (per_file + 8) - 1,
            "{n}"
        );
        let st = fs.statfs();
        assert_eq!(st.bfree, 0);
        assert_eq!(st.ffree, 0);
        assert_eq!(st.files, fs.inode_count() as u64);
        // Everything that grows metadata fails now; what shrinks does not.
        let f0 = fs.lookup(ROOT_INO, b"f0").unwrap().ino;
        assert_eq!(
            fs.mkdir(ROOT_INO, b"d", 0o755, WHO).unwrap_err(),
            Errno::ENOSPC
        );
        assert_eq!(
            fs.symlink(ROOT_INO, b"s", b"t", WHO).unwrap_err(),
            Errno::ENOSPC
        );
        assert_eq!(fs.link(f0, ROOT_INO, b"l").unwrap_err(), Errno::ENOSPC);
        assert_eq!(
            fs.create(ROOT_INO, b"c", 0o644, libc::O_RDWR, WHO)
                .unwrap_err(),
            Errno::ENOSPC
        );
        assert_eq!(
            fs.setxattr(f0, b"user.a", &[0u8; 4096], 0),
            Err(Errno::ENOSPC)
        );
        // Opening an existing name through create is no new metadata.
        let (_, fh) = fs
            .create(ROOT_INO, b"f1", 0o644, libc::O_RDWR, WHO)
            .unwrap();
        assert_eq!(fs.fallocate(fh, 0, MIB, 0), Err(Errno::ENOSPC));
        fs.fallocate(
            fh,
            0,
            4096,
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        )
        .unwrap();
        fs.release(fh).unwrap();
        fs.forget(f0, 1);
        check(&fs);
        for i in 0..n {
            fs.unlink(ROOT_INO, format!("f{i}").as_bytes()).unwrap();
        }
        // The kernel's references keep the inodes (and their cost) until forgotten.
        assert!(fs.used_bytes() > baseline);
        for ino in 2..fs.next_ino.load(Ordering::Relaxed) {
            fs.forget(ino, 1000);
        }
        assert_eq!(fs.used_bytes(), baseline);
        for i in 0..n {
            fs.mknod(
                ROOT_INO,
                format!("f{i}").as_bytes(),
                libc::S_IFREG | 0o644,
                0,
                WHO,
            )
            .unwrap();
        }
        check(&fs);
    }

    #[test]
    fn statfs_reports_the_cap_and_the_use() {
        let fs = fs_with_cap(64 * MIB);
        let st = fs.statfs();
        assert_eq!(st.blocks * st.bsize as u64, 64 * MIB);
        assert_eq!(st.bfree, (64 * MIB - fs.used_bytes()) / 4096);
        assert_eq!(st.bavail, st.bfree);
        assert_eq!(st.files - st.ffree, 1);
        let (_, fh) = create(&fs, ROOT_INO, "f");
        write_all(&fs, fh, &noise(MIB as usize, 1), 128 << 10).unwrap();
        let after = fs.statfs();
        assert!(
            st.bfree - after.bfree >= 256,
            "{} -> {}",
            st.bfree,
            after.bfree
        );
        assert_eq!(after.files - after.ffree, 2);
        fs.flush(fh).unwrap();
        fs.release(fh).unwrap();
        let s = fs.stats();
        assert_eq!(s.capacity_bytes, 64 * MIB);
        assert_eq!(s.used_bytes, fs.used_bytes());
        assert!(s.used_bytes >= s.stored_bytes + s.metadata_bytes);
    }

    #[test]
    fn concurrent_writers_never_pass_the_cap() {
        let fs = Arc::new(fs_with_cap(8 * MIB));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let fs = fs.clone();
                std::thread::spawn(move || {
                    let (_, fh) = create(&fs, ROOT_INO, &format!("t{t}"));
                    let piece = noise(64 << 10, 0);
                    let mut off = 0u64;
                    let mut fails = 0;
                    for round in 0..200u64 {
                        let mut bytes = piece.clone();
                        bytes[..16].copy_from_slice(&[t as u8, round as u8].repeat(8));
                        match fs.write(fh, off, &bytes) {
                            Ok(_) => off += bytes.len() as u64,
                            Err(e) => {
                                assert_eq!(e, Errno::ENOSPC);
                                fails += 1;
                            }
                        }
                        assert!(fs.used_bytes() <= fs.capacity() + (1 << 20));
                        if round % 16 == 15 {
                            let _ = fs.flush(fh);
                        }
                    }
                    let _ = fs.release(fh);
                    fails
                })
            })
            .collect();
        let fails: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(fails > 0);
        assert!(fs.used_bytes() <= fs.capacity());
        check(&fs);
    }
}
