//! The core file system: inodes, directories, file contents, handles and descendant counts.
//! It knows nothing of FUSE; `crate::fuse` adapts it to the kernel.
//!
//! Locking, in the order locks are taken:
//! 1. `tree_lock`: shared by every namespace change, exclusive for a rename between two
//!    directories (the one change that rewrites parent chains, so descendant counts and the
//!    "into itself" check see a still tree).
//! 2. Directory data locks, ancestor before descendant; a cross-directory rename (alone under
//!    the exclusive tree lock) takes its two parents in any order. A directory that rmdir or
//!    rename removes stays locked (after its parent) from its emptiness check to its removal.
//! 3. Leaf inode data locks.
//! 4. The inode and handle tables' DashMap shard locks: innermost and brief (a lookup, insert
//!    or remove plus an `Arc` clone); nothing else is locked or awaited while one is held.
//!
//! The locks and atomics come from `crate::sync`: parking_lot's, or shuttle's for the model
//! check of this locking (tests/shuttle_namespace.rs).
//!
//! Lookups, readdir and getattr take one inode lock at a time and never hold two, so they
//! cannot take part in a cycle. File reads and writes take only their file's lock.

mod attr;
mod content;
mod control;
mod dir;
mod error;
mod file;
mod fsck;
mod inode;
mod meta;
mod namespace;
mod usage;
mod version;

pub use attr::{Attr, Caller, DirEntry, FileKind, RenameMode, SetAttr, SetTime, StatFs};
pub use content::{FileContent, MAX_FILE_SIZE};
pub use control::{is_virtual, Stats, VersionInfo, CONTROL_NAME, VERSIONS_XATTR};
pub use error::{Errno, Result};
pub use fsck::StoreCheck;
pub use meta::DESCENDANTS_XATTR;
pub use usage::{
    default_capacity, physical_memory, BLOB_BYTES, ENTRY_BYTES, INODE_BYTES, PIECE_BYTES,
    VERSION_BYTES, XATTR_BYTES, XATTR_MAP_BYTES,
};
pub use version::{CommitCause, History, Version};

use std::sync::Arc;
use std::time::SystemTime;

use crate::store::{BlobStore, Chunker};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::{Mutex, RwLock};
use dashmap::DashMap;

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
    /// Open files and directories under `.memfs`.
    virtual_handles: DashMap<u64, Arc<control::VirtualFile>>,
    next_fh: AtomicU64,
    tree_lock: RwLock<()>,
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
    store: Arc<BlobStore>,
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
            virtual_handles: DashMap::new(),
            next_fh: AtomicU64::new(1),
            tree_lock: RwLock::new(()),
            dirty_bytes: AtomicU64::new(0),
            meta_bytes: AtomicU64::new(usage::INODE_BYTES),
            prunable: AtomicU64::new(0),
            dropped_for_space: AtomicU64::new(0),
            prune_lock: Mutex::new(()),
            store: BlobStore::new(),
            config,
        }
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    fn inode(&self, ino: u64) -> Result<Arc<Inode>> {
        self.inodes
            .get(&ino)
            .map(|r| r.value().clone())
            .ok_or(Errno::ENOENT)
    }

    fn handle(&self, fh: u64) -> Result<Arc<Handle>> {
        self.handles
            .get(&fh)
            .map(|r| r.value().clone())
            .ok_or(Errno::EBADF)
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
        if self.inodes.remove(&inode.ino).is_none() {
            return;
        }
        let mut data = inode.data.write();
        self.release_meta(usage::inode_meta(&data));
        if let Body::File(f) = &mut data.body {
            self.release_dirty(f.content.dirty_bytes());
            self.release_prunable(f.history.len().saturating_sub(1) as u64);
            f.content = FileContent::default();
            f.history = History::default();
        }
    }

    /// Adds `delta` to the descendant count of `dir` and of every directory above it.
    /// Callers hold `tree_lock`, so the chain of parents cannot change underneath.
    fn add_descendants(&self, dir: u64, delta: i64) {
        if delta == 0 {
            return;
        }
        let mut ino = dir;
        loop {
            let Ok(inode) = self.inode(ino) else { return };
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

    /// The blob store.
    pub fn store(&self) -> &Arc<BlobStore> {
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
            let inode = fs.inode(ino).map_err(|_| format!("inode {ino} missing"))?;
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
                        .inode(child)
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
        let _tree = self.tree_lock.write();
        walk(self, ROOT_INO).map(|_| ())
    }
}

/// EROFS for anything under `.memfs`, and for `.memfs` itself as a name in the root.
fn refuse_control(parent: u64, name: &[u8]) -> Result<()> {
    if is_virtual(parent) || (parent == ROOT_INO && name == CONTROL_NAME) {
        return Err(Errno::EROFS);
    }
    Ok(())
}

/// Whether `open(2)` flags allow writing.
fn is_writable(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

/// Checks a name for a new directory entry. The kernel resolves "", "." and ".." itself and
/// never sends them; for other callers the core answers as Linux does for such a last
/// component (`mkdir("")` is ENOENT, `mkdir("d/.")` EEXIST). A name holding '/' or NUL can
/// never be made (EINVAL).
fn check_name(name: &[u8]) -> Result<()> {
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
