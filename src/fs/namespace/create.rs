//! Making names: mknod, mkdir, symlink, create, and hard links.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use crate::fs::attr::{Attr, Caller, FileKind};
use crate::fs::budget::{entry_cost, Fail, INODE_BYTES};
use crate::fs::error::{Errno, Result};
use crate::fs::{test_panic_point, Fs, PATH_MAX};

use super::dir::Directory;
use super::inode::{attr_of, Body, FileState, Inode, Meta};
use super::names::check_name;

/// A node to create: its name, what it is, and who makes it.
struct NewNode<'a> {
    name: &'a [u8],
    kind: FileKind,
    /// The requested mode; only its permission bits are used.
    perm: u32,
    /// The device number of a device node (0 for anything else).
    rdev: u32,
    body: Body,
    caller: Caller,
}

impl Fs {
    /// Creates the inode `node` describes in `parent`. ENOSPC when its metadata would not fit.
    fn create_node(&self, parent: u64, node: NewNode) -> Result<Arc<Inode>> {
        // The inode, its entry and name, and a symlink's target.
        let target = match &node.body {
            Body::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        let cost = INODE_BYTES
            .saturating_add(entry_cost(node.name))
            .saturating_add(target);
        // The node moves into the file system on the attempt that succeeds; a retry after
        // making room finds it still here.
        let mut node = Some(node);
        self.with_room(|_| self.try_create_node(parent, &mut node, cost))
    }

    fn try_create_node(
        &self,
        parent: u64,
        node: &mut Option<NewNode>,
        cost: u64,
    ) -> std::result::Result<Arc<Inode>, Fail> {
        let Some(&NewNode {
            name,
            kind,
            perm,
            rdev,
            caller,
            ..
        }) = node.as_ref()
        else {
            return Err(Errno::EIO.into());
        };
        check_name(name)?;
        let _tree = self.tree_shared();
        let dir = self.namespace.get(parent)?;
        let now = SystemTime::now();
        let inode = {
            let mut data = dir.data.write();
            let (dmeta, entries) = data.dir_for_new(name)?;
            self.budget.charge_meta(cost)?;
            let Some(NewNode { body, .. }) = node.take() else {
                self.budget.release_meta(cost);
                return Err(Errno::EIO.into());
            };
            let mut perm = perm & 0o7777;
            if kind == FileKind::Directory && dmeta.perm as u32 & libc::S_ISGID != 0 {
                perm |= libc::S_ISGID;
            }
            let gid = group_for_new(dmeta, caller);
            let mut meta = Meta::new(perm as u16, caller.uid, gid, rdev, now);
            if kind == FileKind::Directory {
                meta.nlink = 2;
                dmeta.nlink += 1;
            }
            let inode = self.namespace.add(|ino| {
                let inode = Inode::new(ino, kind, meta, body, parent);
                // The kernel's reference, before any other request can see the inode.
                inode.lookups.store(1, Ordering::Release);
                inode
            });
            entries.set(name, inode.ino, kind);
            if kind == FileKind::Directory {
                test_panic_point("mkdir", name);
            }
            dmeta.touch_modified(now);
            inode
        };
        self.namespace.add_descendants(parent, 1);
        self.namespace.merkle_dir_changed(parent);
        Ok(inode)
    }

    /// `mknod`: a regular file, FIFO, socket or device node.
    pub fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        caller: Caller,
    ) -> Result<Attr> {
        let kind = FileKind::from_mode(mode).ok_or(Errno::EINVAL)?;
        let body = match kind {
            FileKind::Regular => Body::File(FileState::default()),
            FileKind::Directory | FileKind::Symlink => return Err(Errno::EINVAL),
            _ => Body::Special,
        };
        let rdev = match kind {
            FileKind::CharDevice | FileKind::BlockDevice => rdev,
            _ => 0,
        };
        Ok(self
            .create_node(
                parent,
                NewNode {
                    name,
                    kind,
                    perm: mode,
                    rdev,
                    body,
                    caller,
                },
            )?
            .attr())
    }

    pub fn mkdir(&self, parent: u64, name: &[u8], mode: u32, caller: Caller) -> Result<Attr> {
        let body = Body::Dir(Directory::default());
        Ok(self
            .create_node(
                parent,
                NewNode {
                    name,
                    kind: FileKind::Directory,
                    perm: mode,
                    rdev: 0,
                    body,
                    caller,
                },
            )?
            .attr())
    }

    pub fn symlink(&self, parent: u64, name: &[u8], target: &[u8], caller: Caller) -> Result<Attr> {
        if target.len() >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let body = Body::Symlink(target.into());
        Ok(self
            .create_node(
                parent,
                NewNode {
                    name,
                    kind: FileKind::Symlink,
                    perm: 0o777,
                    rdev: 0,
                    body,
                    caller,
                },
            )?
            .attr())
    }

    /// Creates a regular file and opens it. An existing file is opened instead, unless
    /// `O_EXCL` asks for a new one.
    pub fn create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64)> {
        let body = Body::File(FileState::default());
        let node = NewNode {
            name,
            kind: FileKind::Regular,
            perm: mode,
            rdev: 0,
            body,
            caller,
        };
        match self.create_node(parent, node) {
            Ok(inode) => {
                let attr = inode.attr();
                let fh = self.handles.open(inode, flags);
                Ok((attr, fh))
            }
            Err(Errno::EEXIST) if flags & libc::O_EXCL == 0 => {
                let attr = self.lookup(parent, name)?;
                match self.open(attr.ino, flags) {
                    Ok(fh) => Ok((self.getattr(attr.ino)?, fh)),
                    Err(e) => {
                        self.forget(attr.ino, 1);
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `open(O_TMPFILE)`: a regular file in no directory (its link count 0), opened. `parent`
    /// is where a later `link` may name it, which only a file made without `O_EXCL` allows.
    /// Until then nothing counts it (descendants, the Merkle tree); its last close frees
    /// it, as it does an unlinked file.
    pub fn tmpfile(
        &self,
        parent: u64,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64)> {
        let inode = self.with_room(|_| self.try_tmpfile(parent, mode, flags, caller))?;
        let attr = inode.attr();
        let fh = self.handles.open(inode, flags);
        Ok((attr, fh))
    }

    fn try_tmpfile(
        &self,
        parent: u64,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> std::result::Result<Arc<Inode>, Fail> {
        let dir = self.namespace.get(parent)?;
        let data = dir.data.read();
        // A removed directory still takes one, as on tmpfs (it cannot be linked there).
        let (dmeta, _) = (&data.meta, data.dir()?);
        self.budget.charge_meta(INODE_BYTES)?;
        let gid = group_for_new(dmeta, caller);
        let mut meta = Meta::new(
            (mode & 0o7777) as u16,
            caller.uid,
            gid,
            0,
            SystemTime::now(),
        );
        meta.nlink = 0;
        meta.linkable = flags & libc::O_EXCL == 0;
        let body = Body::File(FileState::default());
        Ok(self.namespace.add(|ino| {
            let inode = Inode::new(ino, FileKind::Regular, meta, body, parent);
            inode.lookups.store(1, Ordering::Release);
            inode
        }))
    }

    /// A hard link to `ino` named `name` in `parent`. ENOSPC when the entry would not fit.
    pub fn link(&self, ino: u64, parent: u64, name: &[u8]) -> Result<Attr> {
        check_name(name)?;
        self.with_room(|_| self.try_link(ino, parent, name))
    }

    fn try_link(&self, ino: u64, parent: u64, name: &[u8]) -> std::result::Result<Attr, Fail> {
        let _tree = self.tree_shared();
        let inode = self.namespace.get(ino)?;
        let dir = self.namespace.get(parent)?;
        let now = SystemTime::now();
        let attr = {
            let mut data = dir.data.write();
            let (dmeta, entries) = data.dir_for_new(name)?;
            // After EEXIST, as Linux checks them (linkat looks the new name up first).
            if inode.kind == FileKind::Directory {
                return Err(Errno::EPERM.into());
            }
            let mut idata = inode.data.write();
            if idata.meta.nlink == 0 && !idata.meta.linkable {
                return Err(Errno::ENOENT.into());
            }
            self.budget.charge_meta(entry_cost(name))?;
            if idata.meta.nlink == 0 {
                // A tmpfile's first name: it now lives in `parent`, with one name.
                inode.parent.store(parent, Ordering::Release);
            } else {
                inode.merkle.mark_linked();
            }
            idata.meta.nlink += 1;
            idata.meta.linkable = false;
            idata.meta.ctime = now;
            entries.set(name, ino, inode.kind);
            dmeta.touch_modified(now);
            inode.lookups.fetch_add(1, Ordering::AcqRel);
            attr_of(ino, inode.kind, &idata)
        };
        self.namespace.add_descendants(parent, 1);
        self.namespace.merkle_dir_changed(parent);
        self.namespace.merkle_changed(&inode);
        Ok(attr)
    }
}

/// The group of a node `caller` makes in a directory whose metadata is `dir`: the
/// directory's if it is setgid, else the caller's.
pub(super) fn group_for_new(dir: &Meta, caller: Caller) -> u32 {
    if dir.perm as u32 & libc::S_ISGID != 0 {
        dir.gid
    } else {
        caller.gid
    }
}
