//! The core file system: inodes, directories, file contents, handles and descendant counts.
//! It knows nothing of FUSE or of `.memfs`; `crate::request` serves it to the kernel through `crate::router`.
//!
//! Locking, in the order locks are taken:
//! 1. `tree_lock`: shared by every namespace change, exclusive for a rename between two
//!    directories (the one change that rewrites parent chains, so descendant counts and the
//!    "into itself" check see a still tree).
//! 2. Directory data locks, ancestor before descendant; a cross-directory rename (alone under
//!    the exclusive tree lock) takes its two parents in any order. A directory that rmdir or
//!    rename removes stays locked (after its parent) from its emptiness check to its removal.
//!    A change to a directory's entries updates the descendant counts up its parent chain
//!    (atomics) before it lets go of that directory's lock, so whoever holds a directory's
//!    lock sees a count that agrees with its entries (rmdir's weight depends on it).
//! 3. Leaf inode data locks.
//! 4. The inode and handle tables' DashMap shard locks: innermost and brief (a lookup, insert
//!    or remove plus an `Arc` clone); nothing else is locked or awaited while one is held.
//!
//! The locks and atomics come from `crate::sync`: parking_lot's, or shuttle's for the model
//! check of this locking (tests/shuttle_namespace.rs).
//!
//! Lookups, readdir and getattr take one inode lock at a time and never hold two, so they
//! cannot take part in a cycle. File reads and writes take only their file's lock.
//!
//! Panics: a request that panics while holding an inode's write lock poisons that inode
//! (`inode::InodeLock`), and the core answers EIO for it from then on; its names can still
//! be removed. A panic while a namespace change holds `tree_lock` (or an inode write lock)
//! leaves the tree-wide counts possibly half-updated, so the next namespace request first
//! recounts them under the exclusive tree lock (`Fs::repair`).

mod attr;
mod census;
mod content;
mod dir;
mod error;
mod file;
mod fsck;
mod inode;
mod meta;
mod namespace;
mod privilege;
mod usage;
mod version;
mod versions;

pub use attr::{Attr, Caller, DirEntry, FileKind, RenameMode, SetAttr, SetTime, StatFs};
pub use census::Census;
pub use content::{FileContent, MAX_FILE_SIZE};
pub use error::{Errno, Result};
pub use fsck::StoreCheck;
pub use meta::{check_xattr_name, permits, DESCENDANTS_XATTR, VERSIONS_XATTR};
pub use namespace::{check_removal_name, check_rename_names};
pub use privilege::SetidChange;
pub use usage::{
    default_capacity, physical_memory, BLOB_BYTES, ENTRY_BYTES, INODE_BYTES, PIECE_BYTES,
    VERSION_BYTES, XATTR_BYTES, XATTR_MAP_BYTES,
};
pub use version::{CommitCause, History, Version};
pub use versions::{VersionInfo, VersionReader, VersionStat};

use std::sync::Arc;
use std::time::SystemTime;

use dashmap::DashMap;

use crate::store::{Chunker, ContentStore, MemoryStore};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use dir::Directory;
use inode::{Body, Inode, Meta};

/// The inode number of the root directory.
pub const ROOT_INO: u64 = 1;
/// Versions kept per file unless configured otherwise.
pub const DEFAULT_KEEP_VERSIONS: usize = 16;
/// The longest name of a directory entry, in bytes.
pub const NAME_MAX: usize = 255;
/// The longest symlink target, in bytes.
pub const PATH_MAX: usize = 4096;

#[derive(Clone, Debug)]
pub struct FsConfig {
    /// Owner of the root directory.
    pub uid: u32,
    pub gid: u32,
    /// Permission bits of the root directory.
    pub root_perm: u16,
    /// The cap on the bytes memfs holds for contents and metadata (see `usage`); statfs
    /// reports it as the size of the file system.
    pub capacity: u64,
    /// How file contents are cut into chunks.
    pub chunker: Chunker,
    /// Versions kept per file (the oldest are dropped, freeing chunks only they held).
    pub keep_versions: usize,
    /// Writes may wait in a cache above the core (the kernel's writeback cache), so what
    /// the core holds of a file open for writing may be behind what its writer wrote.
    pub writes_cached_above: bool,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            uid: 0,
            gid: 0,
            root_perm: 0o755,
            capacity: default_capacity(),
            writes_cached_above: false,
            chunker: Chunker::default(),
            keep_versions: DEFAULT_KEEP_VERSIONS,
        }
    }
}

/// An open file or directory.
#[derive(Debug)]
pub struct Handle {
    pub inode: Arc<Inode>,
    /// The `open(2)` flags.
    pub flags: i32,
    /// Whether any write went through this handle (a commit at close is owed).
    pub wrote: AtomicBool,
}

pub struct Fs {
    inodes: DashMap<u64, Arc<Inode>>,
    next_ino: AtomicU64,
    handles: DashMap<u64, Arc<Handle>>,
    /// Versions open for reading (see `versions`).
    open_versions: Arc<versions::OpenVersions>,
    next_fh: AtomicU64,
    tree_lock: RwLock<()>,
    /// `inode::damage_seen()` as of the last repair: while it is behind, a panic may have
    /// left counts half-updated.
    repaired_through: AtomicU64,
    /// Uncommitted bytes held by all file contents.
    dirty_bytes: AtomicU64,
    /// The metadata estimate (see `usage`).
    meta_bytes: AtomicU64,
    /// Kept versions that are not their file's newest: what `make_room` could drop.
    prunable: AtomicU64,
    /// Versions dropped to make room so far.
    dropped_for_space: AtomicU64,
    /// One `make_room` at a time.
    prune_lock: Mutex<()>,
    store: Arc<dyn ContentStore>,
    config: FsConfig,
}

impl Fs {
    pub fn new(config: FsConfig) -> Fs {
        let now = SystemTime::now();
        let mut meta = Meta::new(config.root_perm, config.uid, config.gid, 0, now);
        meta.nlink = 2;
        let root = Inode::new(
            ROOT_INO,
            FileKind::Directory,
            meta,
            Body::Dir(Directory::default()),
            ROOT_INO,
        );
        let inodes = DashMap::new();
        inodes.insert(ROOT_INO, Arc::new(root));
        Fs {
            inodes,
            next_ino: AtomicU64::new(ROOT_INO + 1),
            handles: DashMap::new(),
            open_versions: Arc::default(),
            next_fh: AtomicU64::new(1),
            tree_lock: RwLock::new(()),
            repaired_through: AtomicU64::new(inode::damage_seen()),
            dirty_bytes: AtomicU64::new(0),
            meta_bytes: AtomicU64::new(usage::INODE_BYTES),
            prunable: AtomicU64::new(0),
            dropped_for_space: AtomicU64::new(0),
            prune_lock: Mutex::new(()),
            store: MemoryStore::new(),
            config,
        }
    }

    /// A file system whose next new inode gets number `first` (tests of large numbers).
    #[cfg(test)]
    pub(crate) fn with_first_ino(config: FsConfig, first: u64) -> Fs {
        let fs = Fs::new(config);
        fs.next_ino.store(first, Ordering::Relaxed);
        fs
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// A live inode for a request on it: EIO if a panicking request left it half-changed.
    fn inode(&self, ino: u64) -> Result<Arc<Inode>> {
        let inode = self.inode_even_poisoned(ino)?;
        if inode.is_poisoned() {
            log_poisoned(&inode);
            return Err(Errno::EIO);
        }
        Ok(inode)
    }

    /// A live inode, poisoned or not: for removing its names, freeing it, and walks of the
    /// tree that only read its identity and counters.
    fn inode_even_poisoned(&self, ino: u64) -> Result<Arc<Inode>> {
        self.inodes
            .get(&ino)
            .map(|r| r.value().clone())
            .ok_or(Errno::ENOENT)
    }

    /// An open handle: EIO once its inode is poisoned (closing it still works).
    fn handle(&self, fh: u64) -> Result<Arc<Handle>> {
        let handle = self
            .handles
            .get(&fh)
            .map(|r| r.value().clone())
            .ok_or(Errno::EBADF)?;
        if handle.inode.is_poisoned() {
            log_poisoned(&handle.inode);
            return Err(Errno::EIO);
        }
        Ok(handle)
    }

    /// The tree lock, shared, for a namespace change; counts a panic that cuts the change
    /// short. Repairs what an earlier panic left first.
    fn tree_shared(&self) -> TreeGuard<RwLockReadGuard<'_, ()>> {
        self.repair_if_needed();
        TreeGuard {
            _lock: self.tree_lock.read(),
        }
    }

    /// The tree lock, exclusive (a rename between directories); as `tree_shared`.
    fn tree_exclusive(&self) -> TreeGuard<RwLockWriteGuard<'_, ()>> {
        self.repair_if_needed();
        TreeGuard {
            _lock: self.tree_lock.write(),
        }
    }

    /// Repairs the counts if a panic may have left them half-updated since the last repair.
    /// One atomic load when none did.
    fn repair_if_needed(&self) {
        if inode::damage_seen() == self.repaired_through.load(Ordering::Acquire) {
            return;
        }
        let _tree = self.tree_lock.write();
        let seen = inode::damage_seen();
        if seen == self.repaired_through.load(Ordering::Acquire) {
            return;
        }
        self.repair();
        self.repaired_through.store(seen, Ordering::Release);
    }

    /// Recounts, from a walk, everything a panicking change may have left half-updated: the
    /// descendant counts, directory link counts and parent links (from the root down), and
    /// the budget counters (metadata, dirty bytes, droppable versions, over every inode).
    /// Logs each inode newly poisoned.
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
    fn repair(&self) {
        let mut inodes: Vec<Arc<Inode>> = self.inodes.iter().map(|e| e.value().clone()).collect();
        inodes.sort_unstable_by_key(|i| i.ino);
        let guards: Vec<_> = inodes.iter().map(|i| i.data.read()).collect();
        // One freed between the snapshot and the lock has its metadata released already.
        let live: Vec<bool> = inodes
            .iter()
            .map(|i| self.inodes.contains_key(&i.ino))
            .collect();
        let (mut meta, mut dirty, mut prunable) = (0u64, 0u64, 0u64);
        for ((inode, data), _) in inodes.iter().zip(&guards).zip(&live).filter(|(_, &l)| l) {
            log_poisoned(inode);
            meta += usage::inode_meta(data);
            match &data.body {
                Body::Dir(d) => {
                    meta += d.entries().map(|e| usage::entry_cost(&e.name)).sum::<u64>()
                }
                Body::File(f) => {
                    dirty += f.content.dirty_bytes();
                    prunable += f.history.len().saturating_sub(1) as u64;
                }
                _ => {}
            }
        }
        self.meta_bytes.store(meta, Ordering::SeqCst);
        self.dirty_bytes.store(dirty, Ordering::SeqCst);
        self.prunable.store(prunable, Ordering::SeqCst);

        // Directories from the root down: (ino, descendants, subdirectories) in post-order.
        let index: std::collections::HashMap<u64, usize> = inodes
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
        let mut totals: std::collections::HashMap<usize, (u64, u32)> = Default::default();
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

    fn new_handle(&self, inode: Arc<Inode>, flags: i32) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        inode.opens.fetch_add(1, Ordering::AcqRel);
        if is_writable(flags) {
            inode.writers.fetch_add(1, Ordering::AcqRel);
        }
        self.handles.insert(
            fh,
            Arc::new(Handle {
                inode,
                flags,
                wrote: AtomicBool::new(false),
            }),
        );
        fh
    }

    fn drop_handle(&self, fh: u64) -> Result<Arc<Handle>> {
        let (_, handle) = self.handles.remove(&fh).ok_or(Errno::EBADF)?;
        if is_writable(handle.flags) {
            handle.inode.writers.fetch_sub(1, Ordering::AcqRel);
        }
        handle.inode.opens.fetch_sub(1, Ordering::AcqRel);
        self.maybe_free(&handle.inode);
        Ok(handle)
    }

    /// Forgets an inode once nothing can reach it any more: no directory entry, no kernel
    /// reference and no open handle. Its contents, versions and metadata are let go (and
    /// their space released) at once, whoever still holds the `Arc`. Callers hold no lock
    /// of the inode.
    fn maybe_free(&self, inode: &Inode) {
        if inode.ino == ROOT_INO
            || inode.lookups.load(Ordering::Acquire) != 0
            || inode.opens.load(Ordering::Acquire) != 0
            || inode.data.read().meta.nlink != 0
        {
            return;
        }
        // Released, then taken out of the table, under its own lock: a repair (which holds
        // the lock of every inode in the table) sees each either in the table with what it
        // holds counted, or gone with that released.
        let mut data = inode.data.write();
        if !self.inodes.contains_key(&inode.ino) {
            return;
        }
        self.release_meta(usage::inode_meta(&data));
        if let Body::File(f) = &mut data.body {
            self.release_dirty(f.content.dirty_bytes());
            self.release_prunable(f.history.len().saturating_sub(1) as u64);
            f.content = FileContent::default();
            f.history = History::default();
        }
        self.inodes.remove(&inode.ino);
    }

    /// Adds `delta` to the descendant count of `dir` and of every directory above it.
    /// Callers hold `tree_lock`, so the chain of parents cannot change underneath.
    fn add_descendants(&self, dir: u64, delta: i64) {
        if delta == 0 {
            return;
        }
        let mut ino = dir;
        loop {
            let Ok(inode) = self.inode_even_poisoned(ino) else {
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
    fn weight(inode: &Inode) -> i64 {
        1 + inode.descendants() as i64
    }

    fn add_dirty(&self, delta: i64) {
        if delta > 0 {
            self.dirty_bytes.fetch_add(delta as u64, Ordering::SeqCst);
        } else if delta < 0 {
            self.release_dirty(delta.unsigned_abs());
        }
    }

    /// Bytes held for file contents: unique chunks in the store plus uncommitted data.
    pub fn stored_bytes(&self) -> u64 {
        self.store.stats().stored_bytes + self.dirty_bytes.load(Ordering::Relaxed)
    }

    /// The content store.
    pub fn store(&self) -> &Arc<dyn ContentStore> {
        &self.store
    }

    /// Number of live inodes (including the root).
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// Number of open handles.
    pub fn handle_count(&self) -> usize {
        self.handles.len()
    }

    /// Walks the whole tree and checks every directory's descendant count and link count
    /// against what the walk finds. Returns the first mismatch.
    pub fn verify_tree(&self) -> std::result::Result<(), String> {
        fn walk(fs: &Fs, ino: u64) -> std::result::Result<u64, String> {
            let inode = fs
                .inode_even_poisoned(ino)
                .map_err(|_| format!("inode {ino} missing"))?;
            let children: Vec<(u64, FileKind)> = {
                let data = inode.data.read();
                let dir = data
                    .dir()
                    .map_err(|_| format!("{ino} is not a directory"))?;
                dir.entries().map(|e| (e.ino, e.kind)).collect()
            };
            let mut total = 0u64;
            let mut subdirs = 0u32;
            for (child, kind) in children {
                total += 1;
                if kind == FileKind::Directory {
                    subdirs += 1;
                    let c = fs
                        .inode_even_poisoned(child)
                        .map_err(|_| format!("inode {child} missing"))?;
                    if c.parent() != ino {
                        return Err(format!("dir {child} has parent {} not {ino}", c.parent()));
                    }
                    total += walk(fs, child)?;
                }
            }
            let counted = inode.descendants();
            if counted != total {
                return Err(format!("dir {ino}: count {counted}, walk finds {total}"));
            }
            let nlink = inode.data.read().meta.nlink;
            if nlink != 2 + subdirs {
                return Err(format!(
                    "dir {ino}: nlink {nlink}, expected {}",
                    2 + subdirs
                ));
            }
            Ok(total)
        }
        self.repair_if_needed();
        let _tree = self.tree_lock.write();
        walk(self, ROOT_INO).map(|_| ())
    }
}

/// Says once per inode, when it is first refused or met by a repair, that it is poisoned
/// (the write guard that poisons it does not know its number).
fn log_poisoned(inode: &Inode) {
    if inode.data.take_unlogged_poison() {
        tracing::error!(
            ino = inode.ino,
            "inode {} was left half-changed by a panicking request; it answers EIO until it \
             is removed",
            inode.ino
        );
    }
}

/// Holds the tree lock for a namespace change. A panic that drops it counts as one that
/// may have left the descendant counts half-updated (they are updated after the directory
/// locks are let go), so the next namespace request repairs them.
struct TreeGuard<G> {
    _lock: G,
}

impl<G> Drop for TreeGuard<G> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            inode::note_damage();
        }
    }
}

/// Debug builds only: panics if `MEMFS_TEST_PANIC_IN` names this point, so tests can show
/// what a panic halfway through a request leaves behind. The variable holds `op:NAME` items
/// separated by commas; `op` is `lookup`, `mkdir` (NAME: the new entry) or `write` (NAME: the
/// first bytes written). `MEMFS_TEST_PANIC_ON_LOOKUP=NAME` is the older spelling of
/// `lookup:NAME`.
#[cfg(debug_assertions)]
fn test_panic_point(op: &str, name: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let hit = |spec: &[u8]| {
        spec.split(|&b| b == b',').any(|item| {
            let Some(want) = item
                .strip_prefix(op.as_bytes())
                .and_then(|rest| rest.strip_prefix(b":"))
            else {
                return false;
            };
            match op {
                "write" => !want.is_empty() && name.starts_with(want),
                _ => want == name,
            }
        })
    };
    let asked = std::env::var_os("MEMFS_TEST_PANIC_IN").is_some_and(|v| hit(v.as_bytes()))
        || (op == "lookup"
            && std::env::var_os("MEMFS_TEST_PANIC_ON_LOOKUP")
                .is_some_and(|n| n.as_bytes() == name));
    if asked {
        panic!(
            "injected panic in {op} of {:?}",
            String::from_utf8_lossy(name)
        );
    }
}

#[cfg(not(debug_assertions))]
#[inline(always)]
fn test_panic_point(_op: &str, _name: &[u8]) {}

/// Whether `open(2)` flags allow writing.
fn is_writable(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

/// Checks a name for a new directory entry. The kernel resolves "", "." and ".." itself and
/// never sends them; for other callers the core answers as Linux does for such a last
/// component (`mkdir("")` is ENOENT, `mkdir("d/.")` EEXIST). A name holding '/' or NUL can
/// never be made (EINVAL).
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if is_dots(name) {
        return Err(Errno::EEXIST);
    }
    if name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Whether `name` is "." or "..".
fn is_dots(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHO: Caller = Caller::ROOT;

    fn check(fs: &Fs) {
        fs.verify_tree().unwrap();
        fs.verify_usage().unwrap();
        let store = fs.verify_store();
        assert!(store.ok, "{store:?}");
    }

    fn counters(fs: &Fs) -> [u64; 3] {
        [&fs.meta_bytes, &fs.dirty_bytes, &fs.prunable].map(|c| c.load(Ordering::SeqCst))
    }

    #[test]
    fn repairs_while_other_requests_run_leave_every_count_exact() {
        let fs = Fs::new(FsConfig::default());
        std::thread::scope(|s| {
            for t in 0..3 {
                let fs = &fs;
                s.spawn(move || {
                    let name = format!("t{t}");
                    let dir = fs.mkdir(ROOT_INO, name.as_bytes(), 0o755, WHO).unwrap().ino;
                    for i in 0..150u32 {
                        let name = format!("f{i}");
                        let (attr, fh) = fs
                            .create(dir, name.as_bytes(), 0o644, libc::O_RDWR, WHO)
                            .unwrap();
                        fs.write(fh, 0, &vec![i as u8; 3000]).unwrap();
                        fs.setxattr(attr.ino, b"user.x", b"v", 0).unwrap();
                        fs.flush(fh).unwrap();
                        fs.write(fh, 100, b"dirty again").unwrap();
                        if i % 2 == 0 {
                            fs.unlink(dir, name.as_bytes()).unwrap();
                            fs.forget(attr.ino, 1);
                        }
                        fs.release(fh).unwrap();
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..100 {
                    inode::note_damage();
                    fs.repair_if_needed();
                    std::thread::yield_now();
                }
            });
        });
        // What the counters say now must be what a fresh walk finds.
        let kept = counters(&fs);
        {
            let _tree = fs.tree_lock.write();
            fs.repair();
        }
        assert_eq!(kept, counters(&fs));
        check(&fs);
        assert_eq!(fs.inode(ROOT_INO).unwrap().descendants(), 3 + 3 * 75);
    }

    // The injection points exist in debug builds only.
    #[cfg(debug_assertions)]
    #[test]
    fn a_panic_halfway_through_a_change_poisons_what_it_held_and_the_counts_are_repaired() {
        use std::panic::{catch_unwind, AssertUnwindSafe};

        // Names no other test uses, so the injection points fire only here.
        std::env::set_var(
            "MEMFS_TEST_PANIC_IN",
            "mkdir:zz-unit-panic-dir,write:zz-unit-panic-bytes",
        );
        let fs = Fs::new(FsConfig::default());
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, WHO).unwrap().ino;
        let (keep, fh) = fs
            .create(ROOT_INO, b"keep", 0o644, libc::O_RDWR, WHO)
            .unwrap();
        fs.write(fh, 0, b"kept").unwrap();
        fs.release(fh).unwrap();

        // mkdir panics with the entry set in d, before d's times and the counts.
        let out = catch_unwind(AssertUnwindSafe(|| {
            fs.mkdir(d, b"zz-unit-panic-dir", 0o755, WHO)
        }));
        assert!(out.is_err());
        assert_eq!(fs.getattr(d).unwrap_err(), Errno::EIO);
        assert_eq!(fs.lookup(d, b"zz-unit-panic-dir").unwrap_err(), Errno::EIO);
        assert_eq!(fs.opendir(d, 0).unwrap_err(), Errno::EIO);
        assert_eq!(fs.mkdir(d, b"more", 0o755, WHO).unwrap_err(), Errno::EIO);
        // The walk sees the new entry; the repair made the counts agree with it.
        check(&fs);
        assert_eq!(fs.inode(ROOT_INO).unwrap().descendants(), 3);
        let fh = fs.open(keep.ino, libc::O_RDONLY).unwrap();
        assert_eq!(fs.read(fh, 0, 100).unwrap(), b"kept");
        fs.release(fh).unwrap();

        // A write panics holding the file's lock, before the dirty bytes are counted.
        let (victim, fh) = fs
            .create(ROOT_INO, b"victim", 0o644, libc::O_RDWR, WHO)
            .unwrap();
        fs.write(fh, 0, &[7u8; 10_000]).unwrap();
        let out = catch_unwind(AssertUnwindSafe(|| {
            fs.write(fh, 20_000, b"zz-unit-panic-bytes")
        }));
        assert!(out.is_err());
        assert_eq!(fs.read(fh, 0, 10).unwrap_err(), Errno::EIO);
        assert_eq!(fs.write(fh, 0, b"x").unwrap_err(), Errno::EIO);
        assert_eq!(fs.getattr(victim.ino).unwrap_err(), Errno::EIO);
        assert_eq!(fs.open(victim.ino, libc::O_RDONLY).unwrap_err(), Errno::EIO);
        // Never committed as a version.
        assert_eq!(fs.release(fh).unwrap_err(), Errno::EIO);
        check(&fs);

        // The damage can be removed, and the rest goes on.
        fs.unlink(ROOT_INO, b"victim").unwrap();
        fs.forget(victim.ino, 1);
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.forget(d, 1);
        check(&fs);
        assert_eq!(fs.inode(ROOT_INO).unwrap().descendants(), 1);
        let e = fs.mkdir(ROOT_INO, b"e", 0o755, WHO).unwrap().ino;
        fs.mkdir(e, b"f", 0o755, WHO).unwrap();
        check(&fs);
        assert_eq!(fs.inode(ROOT_INO).unwrap().descendants(), 3);
    }
}
