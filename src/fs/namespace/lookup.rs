//! Finding names: lookup, peeking at entries, kernel references (forget) and freeing
//! what nothing reaches any more, readlink.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::fs::attr::{Attr, FileKind};
use crate::fs::budget::inode_meta;
use crate::fs::data::FileContent;
use crate::fs::error::{Errno, Result};
use crate::fs::history::History;
use crate::fs::{test_panic_point, Fs, NAME_MAX, ROOT_INO};

use super::inode::{Body, Inode};
use super::names::is_dots;

impl Fs {
    /// Finds `name` in `parent` and takes a kernel reference on it.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        test_panic_point("lookup", name);
        let dir = self.namespace.get(parent)?;
        if is_dots(name) {
            return self.lookup_dots(&dir, name);
        }
        let child = {
            let data = dir.data.read();
            let entry = data.dir()?.get(name).ok_or(Errno::ENOENT)?;
            // A poisoned child is still found, so that its name can be removed; every
            // request on the inode itself answers EIO.
            let child = self.namespace.get_even_poisoned(entry.ino)?;
            // Counted while the entry is pinned by the directory lock, so an unlink that
            // follows sees the reference and keeps the inode.
            child.lookups.fetch_add(1, Ordering::AcqRel);
            child
        };
        Ok(child.attr())
    }

    /// "." and ".." in `dir`: the directory itself and its parent, as a path walk finds them.
    /// The kernel resolves these itself and never asks; the core answers other callers.
    fn lookup_dots(&self, dir: &Arc<Inode>, name: &[u8]) -> Result<Attr> {
        // Shared, so no rename can move `dir` away from its parent meanwhile; the parent
        // holds `dir` and so cannot be removed either.
        let _tree = self.tree_shared();
        dir.data.read().dir()?;
        let target = if name == b"." {
            dir.clone()
        } else {
            self.namespace.get(dir.parent())?
        };
        target.lookups.fetch_add(1, Ordering::AcqRel);
        Ok(target.attr())
    }

    /// Finds `name` in directory `parent` without taking a kernel reference: its inode
    /// number and kind. For callers that only look, such as a read-only view of the tree.
    pub fn peek_entry(&self, parent: u64, name: &[u8]) -> Result<(u64, FileKind)> {
        let dir = self.namespace.get(parent)?;
        let data = dir.data.read();
        let entry = data.dir()?.get(name).ok_or(Errno::ENOENT)?;
        Ok((entry.ino, entry.kind))
    }

    /// The directory that holds directory `ino` (the root for the root), without taking a
    /// kernel reference.
    pub fn parent_of(&self, ino: u64) -> Result<u64> {
        Ok(self.namespace.get(ino)?.parent())
    }

    /// Drops `n` kernel references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        let Ok(inode) = self.namespace.get_even_poisoned(ino) else {
            return;
        };
        let prev = inode
            .lookups
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_sub(n))
            })
            .unwrap_or(0);
        if prev <= n {
            self.maybe_free(&inode);
        }
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let inode = self.namespace.get(ino)?;
        let data = inode.data.read();
        match &data.body {
            Body::Symlink(target) => Ok(target.to_vec()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Forgets an inode once nothing can reach it any more: no directory entry, no kernel
    /// reference and no open handle. Its contents, versions and metadata are let go (and
    /// their space released) at once, whoever still holds the `Arc`. Callers hold no lock
    /// of the inode.
    pub(crate) fn maybe_free(&self, inode: &Inode) {
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
        if !self.namespace.contains(inode.ino) {
            return;
        }
        self.budget.release_meta(inode_meta(&data));
        if let Body::File(f) = &mut data.body {
            self.budget.release_dirty(f.content.dirty_bytes());
            self.budget
                .release_prunable(f.history.len().saturating_sub(1) as u64);
            f.content = FileContent::default();
            f.history = History::default();
            f.commits.abandon();
        }
        self.namespace.remove(inode.ino);
    }
}
