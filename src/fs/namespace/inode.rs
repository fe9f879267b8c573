//! Inodes: fixed identity and kind, mutable state behind one lock, and the counters the
//! kernel protocol and the descendant counts need outside that lock.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::time::SystemTime;

use crate::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use crate::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::fs::attr::{Attr, FileKind};
use crate::fs::data::FileContent;
use crate::fs::error::{Errno, Result};
use crate::fs::history::{History, PendingCommits};

use super::dir::Directory;
use super::merkle::MerkleCell;

/// Size `stat` shows for a directory: 20 bytes per entry plus "." and "..", as tmpfs does.
const DIRENT_SIZE: u64 = 20;

pub type Xattrs = BTreeMap<Box<[u8]>, Box<[u8]>>;

#[derive(Debug)]
pub struct Meta {
    pub perm: u16,
    /// An `O_TMPFILE` file made without `O_EXCL`, not linked yet: a `link` may give it its
    /// first name (Linux's `I_LINKABLE`). In the padding after `perm`: it costs no bytes.
    pub linkable: bool,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub rdev: u32,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub crtime: SystemTime,
    pub xattrs: Option<Box<Xattrs>>,
}

impl Meta {
    pub fn new(perm: u16, uid: u32, gid: u32, rdev: u32, now: SystemTime) -> Meta {
        Meta {
            perm,
            linkable: false,
            uid,
            gid,
            nlink: 1,
            rdev,
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            xattrs: None,
        }
    }

    /// Marks a change of content: mtime and ctime become `now`.
    pub fn touch_modified(&mut self, now: SystemTime) {
        self.mtime = now;
        self.ctime = now;
    }
}

/// A regular file: its live bytes and its committed versions.
#[derive(Debug, Default)]
pub struct FileState {
    pub content: FileContent,
    pub history: History,
    /// Commits handed to a worker and not yet installed.
    pub commits: PendingCommits,
}

#[derive(Debug)]
pub enum Body {
    File(FileState),
    Dir(Directory),
    Symlink(Box<[u8]>),
    /// FIFOs, sockets and device nodes: only their metadata lives here.
    Special,
}

#[derive(Debug)]
pub struct InodeData {
    pub meta: Meta,
    pub body: Body,
}

impl InodeData {
    pub fn dir(&self) -> Result<&Directory> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    pub fn dir_mut(&mut self) -> Result<(&mut Meta, &mut Directory)> {
        match &mut self.body {
            Body::Dir(d) => Ok((&mut self.meta, d)),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The directory, to add the entry `name` to: ENOENT once it was removed (a rmdir got
    /// there first), EEXIST if `name` is taken.
    pub fn dir_for_new(&mut self, name: &[u8]) -> Result<(&mut Meta, &mut Directory)> {
        let (meta, entries) = self.dir_mut()?;
        if meta.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if entries.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        Ok((meta, entries))
    }

    pub fn file(&self) -> Result<&FileContent> {
        match &self.body {
            Body::File(f) => Ok(&f.content),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn file_mut(&mut self) -> Result<(&mut Meta, &mut FileContent)> {
        match &mut self.body {
            Body::File(f) => Ok((&mut self.meta, &mut f.content)),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn file_state_mut(&mut self) -> Result<&mut FileState> {
        match &mut self.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }
}

/// Events that may have left counts half-updated, in this process: each inode write lock
/// or namespace change a panic cut short, and each removal of a poisoned directory, adds
/// one. Process-wide because the guards that see the panic know no `Fs`; a file system
/// that finds it moved repairs itself (see `Namespace::repair_if_needed`), and a repair
/// where nothing was wrong changes nothing.
///
/// Always std's atomic, even in the shuttle model check: a static outlives shuttle's
/// executions (and is shared by tests that run side by side), which its atomics do not
/// support.
static DAMAGE_SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many such events there have been so far.
pub fn damage_seen() -> u64 {
    DAMAGE_SEEN.load(Ordering::Acquire)
}

/// Counts an event after which the counts must be recounted before they are trusted.
pub fn note_damage() {
    DAMAGE_SEEN.fetch_add(1, Ordering::AcqRel);
}

/// `InodeLock::state`: no writer has panicked holding the lock.
const CLEAN: u8 = 0;
/// A writer panicked; not yet logged.
const POISONED: u8 = 1;
/// A writer panicked, and that has been logged.
const POISONED_LOGGED: u8 = 2;

/// An inode's data behind a read-write lock that remembers a writer that panicked.
/// parking_lot locks do not poison, so without this a request that panicked halfway through
/// a change would leave the change half-made for the next one to serve. A write guard
/// dropped while its thread unwinds marks the inode poisoned instead; from then on the core
/// answers EIO for it (`Namespace::get`, `Handles::get`), and only removing its names and letting
/// it be freed is allowed.
#[derive(Debug)]
pub struct InodeLock {
    lock: RwLock<InodeData>,
    state: AtomicU8,
}

impl InodeLock {
    fn new(data: InodeData) -> InodeLock {
        InodeLock {
            lock: RwLock::new(data),
            state: AtomicU8::new(CLEAN),
        }
    }

    pub fn read(&self) -> RwLockReadGuard<'_, InodeData> {
        self.lock.read()
    }

    pub fn write(&self) -> InodeWriteGuard<'_> {
        InodeWriteGuard {
            guard: self.lock.write(),
            state: &self.state,
        }
    }

    /// Marks the inode poisoned: a commit worker panicked on its data outside the lock.
    pub fn poison(&self) {
        let _ = self
            .state
            .compare_exchange(CLEAN, POISONED, Ordering::AcqRel, Ordering::Acquire);
        note_damage();
    }

    /// Whether a writer panicked while holding the lock: the data may be half-changed.
    pub fn is_poisoned(&self) -> bool {
        self.state.load(Ordering::Acquire) != CLEAN
    }

    /// Whether the inode was poisoned since the last call (so that it is logged once).
    pub fn take_unlogged_poison(&self) -> bool {
        self.state
            .compare_exchange(
                POISONED,
                POISONED_LOGGED,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }
}

/// Write access to an inode's data; poisons the inode if dropped by a panic.
pub struct InodeWriteGuard<'a> {
    guard: RwLockWriteGuard<'a, InodeData>,
    state: &'a AtomicU8,
}

impl Deref for InodeWriteGuard<'_> {
    type Target = InodeData;

    fn deref(&self) -> &InodeData {
        &self.guard
    }
}

impl DerefMut for InodeWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut InodeData {
        &mut self.guard
    }
}

impl Drop for InodeWriteGuard<'_> {
    fn drop(&mut self) {
        // One relaxed load of a global counter on the normal path.
        if std::thread::panicking() {
            if self.state.load(Ordering::Acquire) == CLEAN {
                self.state.store(POISONED, Ordering::Release);
            }
            note_damage();
        }
    }
}

#[derive(Debug)]
pub struct Inode {
    pub ino: u64,
    pub kind: FileKind,
    pub data: InodeLock,
    /// References the kernel holds (lookup counts, released by forget).
    pub lookups: AtomicU64,
    /// Open file and directory handles.
    pub opens: AtomicU64,
    /// Open handles that may write.
    pub writers: AtomicU64,
    /// Directories: entries below, recursively (the directory itself not included).
    pub descendants: AtomicU64,
    /// Directories: the one directory that holds this one (the root holds itself). Other
    /// kinds: the directory that holds their first name (for the Merkle hash's change
    /// marks; untrusted once the inode has had a second name).
    pub parent: AtomicU64,
    /// The inode's Merkle hash, cached (see `merkle`).
    pub merkle: MerkleCell,
}

impl Inode {
    pub fn new(ino: u64, kind: FileKind, meta: Meta, body: Body, parent: u64) -> Inode {
        Inode {
            ino,
            kind,
            data: InodeLock::new(InodeData { meta, body }),
            lookups: AtomicU64::new(0),
            opens: AtomicU64::new(0),
            writers: AtomicU64::new(0),
            descendants: AtomicU64::new(0),
            parent: AtomicU64::new(parent),
            merkle: MerkleCell::default(),
        }
    }

    pub fn attr(&self) -> Attr {
        attr_of(self.ino, self.kind, &self.data.read())
    }

    pub fn parent(&self) -> u64 {
        self.parent.load(Ordering::Acquire)
    }

    pub fn descendants(&self) -> u64 {
        self.descendants.load(Ordering::Acquire)
    }

    pub fn is_poisoned(&self) -> bool {
        self.data.is_poisoned()
    }
}

/// The attributes of an inode whose data the caller has locked.
pub fn attr_of(ino: u64, kind: FileKind, data: &InodeData) -> Attr {
    let m = &data.meta;
    let (size, blocks) = match &data.body {
        Body::File(f) => (f.content.size(), f.content.allocated().div_ceil(4096) * 8),
        Body::Dir(d) => ((d.len() as u64 + 2) * DIRENT_SIZE, 0),
        Body::Symlink(t) => (t.len() as u64, 0),
        Body::Special => (0, 0),
    };
    Attr {
        ino,
        kind,
        perm: m.perm,
        nlink: m.nlink,
        uid: m.uid,
        gid: m.gid,
        rdev: m.rdev,
        size,
        blocks,
        atime: m.atime,
        mtime: m.mtime,
        ctime: m.ctime,
        crtime: m.crtime,
    }
}

/// Says once per inode, when it is first refused or met by a repair, that it is poisoned
/// (the write guard that poisons it does not know its number).
pub fn log_poisoned(inode: &Inode) {
    if inode.data.take_unlogged_poison() {
        tracing::error!(
            ino = inode.ino,
            "inode {} was left half-changed by a panicking request; it answers EIO until it \
             is removed",
            inode.ino
        );
    }
}
