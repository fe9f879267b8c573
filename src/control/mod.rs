//! The hidden, read-only control directory `.memfs` at the root of the mount:
//!
//! ```text
//! .memfs/stats.json                 store and memory statistics, made when read
//! .memfs/fsck                       a check of the store's reference counts, made when read
//! .memfs/versions/REL/PATH/N        version N of the file REL/PATH
//! .memfs/snapshots/NAME/REL/PATH    REL/PATH as it was in snapshot NAME (mkdir takes one)
//! ```
//!
//! `.memfs` is reachable by name but not listed in the root. It lives outside the core: its
//! nodes have numbers of their own from the top of the range down (see `nodes`), its open
//! files a handle table of their own, and it reads the core only through `Fs`'s public
//! methods. [`crate::router::Router`] sends it every request on one of its numbers. Nothing
//! below it can be written; the router answers EROFS for changes.

mod nodes;
mod snapshots;
mod stats;
mod tree;

pub use stats::{stats, Stats};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::fs::snapshot::{NodeId, Snapshot};
use crate::fs::{
    check_name, permits, Attr, Caller, DirEntry, Errno, FileKind, Fs, ReadBytes, Result,
    VersionReader, NAME_MAX,
};
use nodes::{Node, NodeTable};
use tree::Parent;

/// The most entries of a control directory one readdir call looks at (the kernel asks
/// again from the last cookie for more).
const LIST_WINDOW: usize = 1024;

/// The name of the control directory in the root.
pub const CONTROL_NAME: &[u8] = b".memfs";

/// What an open control file reads from.
enum OpenFile {
    /// A directory (listings do not need the handle).
    Dir,
    /// A generated file, made at open.
    Bytes(Vec<u8>),
    /// A kept version of a real file, readable until closed whatever the file does.
    Version(VersionReader),
    /// A file of a snapshot, readable until closed even if the snapshot is deleted.
    Snap(Arc<Snapshot>, NodeId),
}

/// The control plane: `.memfs` and everything below it.
pub struct Control {
    fs: Arc<Fs>,
    nodes: NodeTable,
    handles: DashMap<u64, Arc<OpenFile>>,
    next_fh: AtomicU64,
    /// What serves the mount (`dev-fuse`, `io-uring`), for stats.json.
    transport: std::sync::OnceLock<&'static str>,
}

/// Whether `open(2)` flags allow writing.
fn is_writable(flags: i32) -> bool {
    flags & libc::O_ACCMODE != libc::O_RDONLY
}

fn json(value: &impl serde::Serialize) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|_| Errno::EIO)?;
    bytes.push(b'\n');
    Ok(bytes)
}

impl Control {
    pub fn new(fs: Arc<Fs>) -> Control {
        Control {
            fs,
            nodes: NodeTable::new(),
            handles: DashMap::new(),
            next_fh: AtomicU64::new(1),
            transport: std::sync::OnceLock::new(),
        }
    }

    /// Names the transport serving the mount, once, for stats.json.
    pub fn set_transport(&self, name: &'static str) {
        let _ = self.transport.set(name);
    }

    /// stats.json: the core's statistics and the transport.
    pub fn stats(&self) -> Stats {
        let mut s = stats(&self.fs);
        s.transport = self
            .transport
            .get()
            .copied()
            .unwrap_or_default()
            .to_string();
        s
    }

    /// Every inode number at or above this is a control node; real inodes lie below.
    pub fn floor(&self) -> u64 {
        self.nodes.floor()
    }

    /// Whether reads of `ino` must bypass the kernel's page cache: generated files have no
    /// size until read.
    pub fn direct_io(&self, ino: u64) -> bool {
        matches!(self.nodes.node(ino), Some(Node::Stats | Node::Fsck))
    }

    /// Whether `ino` changes only through requests the kernel sees, so the kernel may cache
    /// it as it caches real files: a snapshot's nodes (they never change, their numbers are
    /// never another node's, and a snapshot goes only by an rmdir), and the two directories
    /// on the way to them, `.memfs` (fixed entries) and `.memfs/snapshots` (mkdir, rmdir).
    /// Path walks into a snapshot then cost no lookups of those two.
    pub fn is_frozen(&self, ino: u64) -> bool {
        matches!(
            self.nodes.node(ino),
            Some(Node::Snap(..) | Node::Control | Node::Snapshots)
        )
    }

    fn node(&self, ino: u64) -> Result<Node> {
        self.nodes.node(ino).ok_or(Errno::ENOENT)
    }

    /// `.memfs` as an entry of the root; takes a kernel reference.
    pub fn lookup_root(&self) -> Result<Attr> {
        self.hold(Node::Control)
    }

    /// Finds `name` in control directory `parent`; takes a kernel reference.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let child = tree::child(&self.fs, self.node(parent)?, name)?;
        self.hold(child)
    }

    /// The attributes of `node` with a kernel reference on its number.
    fn hold(&self, node: Node) -> Result<Attr> {
        // Checked before a number is handed out, so a miss leaves nothing behind.
        let mut attr = tree::attr_of(&self.fs, node, 0)?;
        attr.ino = self.nodes.hold(node)?;
        Ok(attr)
    }

    /// Drops `n` kernel references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        self.nodes.forget(ino, n);
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        tree::attr_of(&self.fs, self.node(ino)?, ino)
    }

    /// `access(2)`: never writable, else as the permission bits say.
    pub fn access(&self, ino: u64, mask: i32, caller: Caller) -> Result<()> {
        let attr = self.getattr(ino)?;
        if mask & libc::W_OK != 0 {
            return Err(Errno::EROFS);
        }
        permits(&attr, mask, caller)
    }

    /// Opens a control file (read-only) or directory. Generated files are made now, so a
    /// reader sees one consistent snapshot however it reads.
    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        if is_writable(flags) {
            return Err(Errno::EROFS);
        }
        let file = match self.node(ino)? {
            Node::Stats => OpenFile::Bytes(json(&self.stats())?),
            Node::Fsck => OpenFile::Bytes(json(&self.fs.verify_store())?),
            Node::Version(file, n) => OpenFile::Version(
                self.fs
                    .open_version(file, n)
                    .map_err(tree::no_file_is_enoent)?,
            ),
            Node::Snap(snap, id) => {
                let s = self.fs.snapshot_by_id(snap)?;
                match s.node(id)?.kind() {
                    FileKind::Regular => OpenFile::Snap(s, id),
                    FileKind::Directory => OpenFile::Dir,
                    _ => return Err(Errno::ENXIO),
                }
            }
            _ => OpenFile::Dir,
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.insert(fh, Arc::new(file));
        Ok(fh)
    }

    /// Opens a control directory. ENOTDIR for a file, ENOENT if what it shows is gone.
    pub fn opendir(&self, ino: u64, flags: i32) -> Result<u64> {
        tree::entries(&self.fs, self.node(ino)?)?;
        self.open(ino, flags)
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<ReadBytes> {
        let file = self.handles.get(&fh).ok_or(Errno::EBADF)?.value().clone();
        Ok(match &*file {
            OpenFile::Dir => Vec::new().into(),
            OpenFile::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = start.saturating_add(size as usize).min(b.len());
                b[start..end].to_vec().into()
            }
            OpenFile::Version(reader) => reader.read(offset, size)?,
            OpenFile::Snap(s, id) => s.read(*id, offset, size)?,
        })
    }

    /// `flush` and `fsync`: nothing to commit, only the handle is checked.
    pub fn flush(&self, fh: u64) -> Result<Option<u64>> {
        if self.handles.contains_key(&fh) {
            Ok(None)
        } else {
            Err(Errno::EBADF)
        }
    }

    /// Closes a control file or directory.
    pub fn release(&self, fh: u64) -> Result<Option<u64>> {
        self.handles.remove(&fh).ok_or(Errno::EBADF)?;
        Ok(None)
    }

    /// `mkdir .memfs/snapshots/NAME`: takes a snapshot of the whole tree; a kernel
    /// reference on its directory. EROFS anywhere else under `.memfs`.
    pub fn mkdir(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        check_name(name)?;
        if self.node(parent)? != Node::Snapshots {
            return Err(Errno::EROFS);
        }
        let snapshot = self.fs.create_snapshot(name)?;
        self.hold(Node::Snap(snapshot.id(), 0))
    }

    /// `rmdir .memfs/snapshots/NAME`: deletes the snapshot. EROFS anywhere else.
    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        crate::fs::check_removal_name(name, true)?;
        if self.node(parent)? != Node::Snapshots {
            return Err(Errno::EROFS);
        }
        self.fs.delete_snapshot(name)
    }

    /// The target of a symlink in a snapshot.
    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        match self.node(ino)? {
            Node::Snap(snap, id) => Ok(self.fs.snapshot_by_id(snap)?.readlink(id)?.to_vec()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// The virtual attributes of snapshot nodes (`user.memfs.hash`, and a directory's
    /// `user.memfs.descendants`); other control nodes have none.
    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        match self.node(ino)? {
            Node::Snap(snap, id) => snapshots::getxattr(&self.fs, snap, id, name),
            _ => Err(Errno::ENODATA),
        }
    }

    /// Number of open control handles.
    pub fn handle_count(&self) -> usize {
        self.handles.len()
    }

    /// Lists control directory `ino` after cookie `offset`: ".", "..", then its entries at
    /// cookies 3, 4, ... `emit` returns true once the caller's buffer is full.
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        mut emit: impl FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        self.list(ino, offset, |entry, _| emit(entry))
    }

    /// Like `readdir`, with each entry's attributes. Every entry taken (other than "." and
    /// "..") counts as a kernel reference, as a lookup does.
    pub fn readdirplus(
        &self,
        ino: u64,
        offset: u64,
        mut emit: impl FnMut(&DirEntry, &Attr) -> bool,
    ) -> Result<()> {
        self.list(ino, offset, |entry, target| {
            let attr = match target {
                Target::Real(real) => self.fs.getattr(real),
                Target::Control(node) => tree::attr_of(&self.fs, node, entry.ino),
            };
            // An entry whose target went meanwhile is left out.
            let Ok(attr) = attr else { return false };
            let Target::Control(node) = target else {
                return emit(entry, &attr);
            };
            if entry.offset <= 2 {
                return emit(entry, &attr);
            }
            // Held before the kernel can see it, let go if the buffer is full.
            let Ok(held) = self.nodes.hold(node) else {
                return false;
            };
            let mut entry = entry.clone();
            let mut attr = attr;
            entry.ino = held;
            attr.ino = held;
            let full = emit(&entry, &attr);
            if full {
                self.nodes.forget(held, 1);
            }
            full
        })
    }

    /// Walks ".", ".." and the entries of control directory `ino` from cookie `offset + 1`.
    fn list(
        &self,
        ino: u64,
        offset: u64,
        mut emit: impl FnMut(&DirEntry, Target) -> bool,
    ) -> Result<()> {
        let node = self.node(ino)?;
        let dotdot = match tree::parent(&self.fs, node) {
            Parent::Real(real) => Target::Real(real),
            Parent::Control(up) => Target::Control(up),
        };
        let mut entries = vec![
            (b".".to_vec(), Target::Control(node), FileKind::Directory),
            (b"..".to_vec(), dotdot, FileKind::Directory),
        ];
        // Entries past the offset only, a window at a time: a snapshot directory may hold
        // 100,000 entries, and each call is one buffer of them.
        let skip = usize::try_from(offset.saturating_sub(2)).unwrap_or(usize::MAX);
        entries.extend(
            tree::entries_window(&self.fs, node, skip, LIST_WINDOW)?
                .into_iter()
                .map(|(name, child, kind)| (name, Target::Control(child), kind)),
        );
        for (i, (name, target, kind)) in entries.into_iter().enumerate() {
            // Entry i of the directory is cookie i + 3 (after "." and "..").
            let cookie = match i {
                0 | 1 => i as u64 + 1,
                _ => (i - 2 + skip) as u64 + 3,
            };
            if cookie <= offset {
                continue;
            }
            let number = match target {
                Target::Real(real) => real,
                Target::Control(n) if n == node => ino,
                Target::Control(n) => self.nodes.number(n)?,
            };
            let entry = DirEntry {
                ino: number,
                offset: cookie,
                kind,
                name,
            };
            if emit(&entry, target) {
                break;
            }
        }
        Ok(())
    }
}

/// What a listed entry is.
#[derive(Clone, Copy)]
enum Target {
    Real(u64),
    Control(Node),
}
