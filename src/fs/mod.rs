//! The core file system: inodes, directories, file contents, handles and descendant counts.
//! It knows nothing of FUSE or of `.memfs`; `crate::request` serves it to the kernel through `crate::router`.
//!
//! `Fs` is a facade over owners, each holding its state behind its own API:
//! - `namespace::Namespace` (namespace/): the inode table, inode numbers, the tree lock,
//!   descendant counts and their repair; the name operations live beside it, one file per
//!   concern (lookup, create, remove, rename, list).
//! - `data::Handles` (data/): the handle table; `data::FileContent` is a file's content with
//!   its uncommitted overlay, and data/file.rs the I/O on open files.
//! - history/: versions, commit, the open version readers (`OpenVersions`), and retention
//!   (dropping old versions to make room).
//! - `budget::Budget` (budget/): the memory counters against the cap, the prune lock and the
//!   cost constants.
//! - check/: the checks (tree, usage, store), statistics (census) and the repair after a
//!   panic that spans the namespace and the budget.
//! - meta.rs: attributes and extended attributes.
//!
//! The content store (`crate::store`) is shared by `Fs` and the budget.
//!
//! Locking, in the order locks are taken:
//! 1. The tree lock (`Namespace::tree_shared`/`tree_exclusive`): shared by every namespace
//!    change, exclusive for a rename between two directories (the one change that rewrites
//!    parent chains, so descendant counts and the "into itself" check see a still tree).
//! 2. Directory data locks, ancestor before descendant; a cross-directory rename (alone under
//!    the exclusive tree lock) takes its two parents in any order. A directory that rmdir or
//!    rename removes stays locked (after its parent) from its emptiness check to its removal.
//! 3. Leaf inode data locks.
//! 4. The inode and handle tables' DashMap shard locks (`Namespace`, `Handles`,
//!    `OpenVersions`): innermost and brief (a lookup, insert or remove plus an `Arc`
//!    clone); nothing else is locked or awaited while one is held.
//!
//! The locks and atomics come from `crate::sync`: parking_lot's, or shuttle's for the model
//! check of this locking (tests/shuttle_namespace.rs).
//!
//! Lookups, readdir and getattr take one inode lock at a time and never hold two, so they
//! cannot take part in a cycle. File reads and writes take only their file's lock.
//!
//! Panics: a request that panics while holding an inode's write lock poisons that inode
//! (`inode::InodeLock`), and the core answers EIO for it from then on; its names can still
//! be removed. A panic while a namespace change holds the tree lock (or an inode write lock)
//! leaves the tree-wide counts possibly half-updated, so the next namespace request first
//! recounts them under the exclusive tree lock (`Namespace::repair_if_needed`, with the
//! budget's `recount`).
//!
//! The budget's prune lock is taken by `make_room` with no other lock held, and each inode
//! lock under it one at a time.
//!
//! Commit workers (`history::pending`, started by a mount) chunk and hash with no lock held
//! and take one file's write lock at a time, briefly, to snapshot and to install; the pool's
//! queue mutex is innermost (taken under an inode lock to hand a file over, never the other
//! way). Waiting for a file's commits (`history::commit`, on reading its versions) happens
//! with no lock held.

mod attr;
mod budget;
mod check;
mod data;
mod error;
mod history;
mod meta;
mod namespace;
mod privilege;
pub mod snapshot;

pub use attr::{Attr, Caller, DirEntry, FileKind, RenameMode, SetAttr, SetTime, StatFs};
pub use budget::{
    default_capacity, physical_memory, BLOB_BYTES, ENTRY_BYTES, INODE_BYTES, PIECE_BYTES,
    VERSION_BYTES, XATTR_BYTES, XATTR_MAP_BYTES,
};
pub use check::{Census, StoreCheck};
pub use data::{prepare_layers, FileContent, Handle, ReadBytes, MAX_FILE_SIZE};
pub use error::{Errno, Result};
pub use history::{
    CommitCause, History, Version, VersionInfo, VersionReader, VersionStat, CHECKPOINT_MIN,
};
pub use meta::{check_xattr_name, permits, DESCENDANTS_XATTR, HASH_XATTR, VERSIONS_XATTR};
pub use namespace::merkle::{hex as hash_hex, Hash};
pub use namespace::{check_name, check_removal_name, check_rename_names};
pub use privilege::SetidChange;

use std::sync::Arc;
use std::time::SystemTime;

use crate::store::{Chunker, ContentStore, MemoryStore};

use budget::Budget;
use data::Handles;
use history::{CommitQueue, OpenVersions};
use namespace::dir::Directory;
use namespace::inode::{Body, Inode, Meta};
use namespace::Namespace;

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
    /// The cap on the bytes memfs holds for contents and metadata (see `budget`); statfs
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

pub struct Fs {
    namespace: Namespace,
    handles: Handles,
    /// Versions open for reading (see `history::VersionReader`).
    open_versions: Arc<OpenVersions>,
    budget: Budget,
    store: Arc<dyn ContentStore>,
    config: FsConfig,
    /// Files with commits handed to the workers (`history::pending`).
    commit_queue: Arc<CommitQueue>,
    /// Whole-tree snapshots (`snapshot`).
    snapshots: snapshot::Snapshots,
}

impl Drop for Fs {
    fn drop(&mut self) {
        // Wake the commit workers so they exit. They hold the file system only weakly, so
        // commits still queued now cannot run: they go with the file system (unmount drains
        // the queue before it gets here).
        self.commit_queue.close();
    }
}

impl Fs {
    pub fn new(config: FsConfig) -> Fs {
        Fs::with_store(config, MemoryStore::new())
    }

    /// A file system whose contents go to `store` (the in-memory store is `Fs::new`'s).
    pub fn with_store(config: FsConfig, store: Arc<dyn ContentStore>) -> Fs {
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
        Fs {
            namespace: Namespace::new(root),
            handles: Handles::default(),
            open_versions: Arc::default(),
            budget: Budget::new(config.capacity, store.clone()),
            store,
            config,
            commit_queue: Arc::default(),
            snapshots: Default::default(),
        }
    }

    /// A file system whose next new inode gets number `first` (tests of large numbers).
    #[cfg(test)]
    pub(crate) fn with_first_ino(config: FsConfig, first: u64) -> Fs {
        let fs = Fs::new(config);
        fs.namespace.set_next_ino(first);
        fs
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// The content store.
    pub fn store(&self) -> &Arc<dyn ContentStore> {
        &self.store
    }

    /// Bytes held for file contents: unique chunks in the store plus uncommitted data.
    pub fn stored_bytes(&self) -> u64 {
        self.store.stats().stored_bytes + self.budget.dirty()
    }

    /// Bytes written but not yet committed.
    pub fn dirty_bytes(&self) -> u64 {
        self.budget.dirty()
    }

    /// The cap on what memfs holds, in bytes.
    pub fn capacity(&self) -> u64 {
        self.budget.capacity()
    }

    /// What memfs holds against the cap: unique chunk bytes and their overhead, dirty bytes
    /// and the metadata estimate.
    pub fn used_bytes(&self) -> u64 {
        self.budget.used()
    }

    /// The metadata part of [`Fs::used_bytes`], blob overhead included.
    pub fn metadata_bytes(&self) -> u64 {
        self.budget.metadata()
    }

    /// Old versions dropped so far to make room.
    pub fn versions_dropped_for_space(&self) -> u64 {
        self.budget.versions_dropped_for_space()
    }

    /// Number of live inodes (including the root).
    pub fn inode_count(&self) -> usize {
        self.namespace.len()
    }

    /// Number of open handles.
    pub fn handle_count(&self) -> usize {
        self.handles.len()
    }
}

/// Debug builds only: panics if `MEMFS_TEST_PANIC_IN` names this point, so tests can show
/// what a panic halfway through a request leaves behind. The variable holds `op:NAME` items
/// separated by commas; `op` is `lookup`, `mkdir` (NAME: the new entry), `write` (NAME: the
/// first bytes written) or `commit` (a commit worker; NAME: the first bytes of the changes). `MEMFS_TEST_PANIC_ON_LOOKUP=NAME` is the older spelling of
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
                "write" | "commit" => !want.is_empty() && name.starts_with(want),
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
