//! Names: lookup, creating and removing entries, rename, link, and listing directories.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use super::attr::{Attr, Caller, DirEntry, FileKind, RenameMode};
use super::dir::Directory;
use super::error::{Errno, Result};
use super::inode::{attr_of, Body, FileState, Inode, InodeData, Meta};
use super::usage::{entry_cost, Fail, INODE_BYTES};
use super::{check_name, is_dots, test_panic_point, Fs, NAME_MAX, PATH_MAX, ROOT_INO};

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

/// "." or ".." in a listing: its cookie, its name and its inode, if still live.
type Dot<'a> = (u64, &'static [u8], Option<&'a Arc<Inode>>);

/// How many entries `readdir` collects under the directory lock before handing them out.
const READDIR_BATCH: usize = 128;

impl Fs {
    /// Finds `name` in `parent` and takes a kernel reference on it.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        test_panic_point("lookup", name);
        let dir = self.inode(parent)?;
        if is_dots(name) {
            return self.lookup_dots(&dir, name);
        }
        let child = {
            let data = dir.data.read();
            let entry = data.dir()?.get(name).ok_or(Errno::ENOENT)?;
            // A poisoned child is still found, so that its name can be removed; every
            // request on the inode itself answers EIO.
            let child = self.inode_even_poisoned(entry.ino)?;
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
            self.inode(dir.parent())?
        };
        target.lookups.fetch_add(1, Ordering::AcqRel);
        Ok(target.attr())
    }

    /// Finds `name` in directory `parent` without taking a kernel reference: its inode
    /// number and kind. For callers that only look, such as a read-only view of the tree.
    pub fn peek_entry(&self, parent: u64, name: &[u8]) -> Result<(u64, FileKind)> {
        let dir = self.inode(parent)?;
        let data = dir.data.read();
        let entry = data.dir()?.get(name).ok_or(Errno::ENOENT)?;
        Ok((entry.ino, entry.kind))
    }

    /// The directory that holds directory `ino` (the root for the root), without taking a
    /// kernel reference.
    pub fn parent_of(&self, ino: u64) -> Result<u64> {
        Ok(self.inode(ino)?.parent())
    }

    /// Drops `n` kernel references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        let Ok(inode) = self.inode_even_poisoned(ino) else {
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
        let dir = self.inode(parent)?;
        let now = SystemTime::now();
        let inode = {
            let mut data = dir.data.write();
            let (dmeta, entries) = data.dir_mut()?;
            if dmeta.nlink == 0 {
                return Err(Errno::ENOENT.into());
            }
            if entries.get(name).is_some() {
                return Err(Errno::EEXIST.into());
            }
            self.charge_meta(cost)?;
            let Some(NewNode { body, .. }) = node.take() else {
                self.release_meta(cost);
                return Err(Errno::EIO.into());
            };
            let mut perm = perm & 0o7777;
            let gid = if dmeta.perm as u32 & libc::S_ISGID != 0 {
                if kind == FileKind::Directory {
                    perm |= libc::S_ISGID;
                }
                dmeta.gid
            } else {
                caller.gid
            };
            let mut meta = Meta::new(perm as u16, caller.uid, gid, rdev, now);
            if kind == FileKind::Directory {
                meta.nlink = 2;
                dmeta.nlink += 1;
            }
            let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
            let inode = Arc::new(Inode::new(ino, kind, meta, body, parent));
            inode.lookups.store(1, Ordering::Release);
            self.inodes.insert(ino, inode.clone());
            entries.set(name, ino, kind);
            if kind == FileKind::Directory {
                test_panic_point("mkdir", name);
            }
            dmeta.touch_modified(now);
            // Under the directory's lock, like every count change for its entries: a
            // remover that holds it sees counts that agree with the entries.
            self.add_descendants(parent, 1);
            inode
        };
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
                let fh = self.new_handle(inode, flags);
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

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        let inode = self.inode(ino)?;
        let data = inode.data.read();
        match &data.body {
            Body::Symlink(target) => Ok(target.to_vec()),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn unlink(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove_entry(parent, name, false)
    }

    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.remove_entry(parent, name, true)
    }

    fn remove_entry(&self, parent: u64, name: &[u8], want_dir: bool) -> Result<()> {
        check_removal_name(name, want_dir)?;
        let _tree = self.tree_shared();
        let dir = self.inode(parent)?;
        let now = SystemTime::now();
        let child = {
            let mut data = dir.data.write();
            let (dmeta, entries) = data.dir_mut()?;
            let entry = entries.get(name).ok_or(Errno::ENOENT)?;
            let is_dir = entry.kind == FileKind::Directory;
            match (want_dir, is_dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
            let child = self.inode_even_poisoned(entry.ino)?;
            let weight = {
                let mut cdata = child.data.write();
                if is_dir {
                    // A poisoned directory goes with whatever it holds: nothing in it can
                    // be reached to be removed first.
                    if !cdata.dir()?.is_empty() && !child.is_poisoned() {
                        return Err(Errno::ENOTEMPTY);
                    }
                    cdata.meta.nlink = 0;
                    dmeta.nlink -= 1;
                } else {
                    cdata.meta.nlink = cdata.meta.nlink.saturating_sub(1);
                }
                cdata.meta.ctime = now;
                // Exact while both locks are held: every change below an empty directory
                // finished its count updates under that directory's lock (and a repair ran
                // before this request took the tree lock).
                Self::weight(&child)
            };
            entries.remove(name);
            dmeta.touch_modified(now);
            self.add_descendants(parent, -weight);
            child
        };
        self.release_meta(entry_cost(name));
        if want_dir && child.is_poisoned() {
            self.discard_below(&child);
            // Entries below it may have been changing concurrently (their own directories
            // are healthy): recount before the next namespace request rather than trust it.
            super::inode::note_damage();
        }
        self.maybe_free(&child);
        Ok(())
    }

    /// Removes every entry below a directory that has just lost its last name (only a
    /// poisoned one can still hold any), freeing what nothing else holds.
    fn discard_below(&self, dir: &Inode) {
        let entries: Vec<_> = match &mut dir.data.write().body {
            Body::Dir(d) => {
                let names: Vec<_> = d.entries().map(|e| e.name.clone()).collect();
                names.iter().filter_map(|n| d.remove(n)).collect()
            }
            _ => return,
        };
        dir.descendants.store(0, Ordering::Release);
        for entry in entries {
            self.release_meta(entry_cost(&entry.name));
            let Ok(child) = self.inode_even_poisoned(entry.ino) else {
                continue;
            };
            if entry.kind == FileKind::Directory {
                child.data.write().meta.nlink = 0;
                self.discard_below(&child);
            } else {
                let mut cdata = child.data.write();
                cdata.meta.nlink = cdata.meta.nlink.saturating_sub(1);
            }
            self.maybe_free(&child);
        }
    }

    /// A hard link to `ino` named `name` in `parent`. ENOSPC when the entry would not fit.
    pub fn link(&self, ino: u64, parent: u64, name: &[u8]) -> Result<Attr> {
        check_name(name)?;
        self.with_room(|_| self.try_link(ino, parent, name))
    }

    fn try_link(&self, ino: u64, parent: u64, name: &[u8]) -> std::result::Result<Attr, Fail> {
        let _tree = self.tree_shared();
        let inode = self.inode(ino)?;
        let dir = self.inode(parent)?;
        let now = SystemTime::now();
        let attr = {
            let mut data = dir.data.write();
            let (dmeta, entries) = data.dir_mut()?;
            if dmeta.nlink == 0 {
                return Err(Errno::ENOENT.into());
            }
            if entries.get(name).is_some() {
                return Err(Errno::EEXIST.into());
            }
            // After EEXIST, as Linux checks them (linkat looks the new name up first).
            if inode.kind == FileKind::Directory {
                return Err(Errno::EPERM.into());
            }
            let mut idata = inode.data.write();
            if idata.meta.nlink == 0 {
                return Err(Errno::ENOENT.into());
            }
            self.charge_meta(entry_cost(name))?;
            idata.meta.nlink += 1;
            idata.meta.ctime = now;
            entries.set(name, ino, inode.kind);
            dmeta.touch_modified(now);
            inode.lookups.fetch_add(1, Ordering::AcqRel);
            self.add_descendants(parent, 1);
            attr_of(ino, inode.kind, &idata)
        };
        Ok(attr)
    }

    /// Renames `parent/name` to `newparent/newname`.
    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        mode: RenameMode,
    ) -> Result<()> {
        check_rename_names(name, newname, mode)?;
        // Moving between directories may change parent chains: run alone among namespace
        // changes, so counts move as a whole and the "into itself" check sees a still tree.
        let (_shared, _exclusive);
        if parent == newparent {
            _shared = self.tree_shared();
        } else {
            _exclusive = self.tree_exclusive();
        }
        let src_dir = self.inode(parent)?;
        let dst_dir = self.inode(newparent)?;
        let mut src_guard = src_dir.data.write();
        let mut dst_guard = if parent == newparent {
            None
        } else {
            Some(dst_dir.data.write())
        };

        let src_entry = src_guard.dir()?.get(name).ok_or(Errno::ENOENT)?.clone();
        check_name(newname)?;
        let dst_entry = match &dst_guard {
            Some(g) => g.dir()?.get(newname).cloned(),
            None => src_guard.dir()?.get(newname).cloned(),
        };
        if dst_guard.as_ref().is_some_and(|g| g.meta.nlink == 0) {
            return Err(Errno::ENOENT);
        }
        // NOREPLACE refuses any existing target, even another name of the same inode (Linux
        // checks it before the same-inode case below).
        match (mode, &dst_entry) {
            (RenameMode::NoReplace, Some(_)) => return Err(Errno::EEXIST),
            (RenameMode::Exchange, None) => return Err(Errno::ENOENT),
            _ => {}
        }
        if dst_entry.as_ref().is_some_and(|d| d.ino == src_entry.ino) {
            // Two names of one inode (or one name): POSIX says do nothing.
            return Ok(());
        }
        let src = self.inode(src_entry.ino)?;
        let dst = match &dst_entry {
            Some(e) => Some(self.inode(e.ino)?),
            None => None,
        };
        if parent != newparent {
            if src.kind == FileKind::Directory && self.is_within(newparent, src.ino) {
                return Err(Errno::EINVAL);
            }
            if mode == RenameMode::Exchange
                && dst
                    .as_ref()
                    .is_some_and(|d| d.kind == FileKind::Directory && self.is_within(parent, d.ino))
            {
                return Err(Errno::EINVAL);
            }
        }
        // A directory being replaced stays locked from its emptiness check to its removal
        // (as rmdir holds it), so nothing can be made in it in between and orphaned.
        let mut replaced_dir = None;
        if mode != RenameMode::Exchange {
            if let Some(dst) = &dst {
                // A target that is an ancestor of the source is not empty (and may be the
                // source's parent, whose lock we hold): ENOTEMPTY, as Linux answers.
                if dst.kind == FileKind::Directory
                    && parent != newparent
                    && self.is_within(parent, dst.ino)
                {
                    return Err(Errno::ENOTEMPTY);
                }
                match (
                    src.kind == FileKind::Directory,
                    dst.kind == FileKind::Directory,
                ) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) => {
                        // A child of the target parent, which is not above the source's
                        // parent (checked above): ancestor before descendant.
                        let data = dst.data.write();
                        if !data.dir()?.is_empty() {
                            return Err(Errno::ENOTEMPTY);
                        }
                        replaced_dir = Some(data);
                    }
                    _ => {}
                }
            }
        }

        let now = SystemTime::now();
        let src_weight = Self::weight(&src);
        let src_is_dir = src.kind == FileKind::Directory;
        if mode == RenameMode::Exchange {
            let dst = dst.as_ref().ok_or(Errno::ENOENT)?;
            let dst_weight = Self::weight(dst);
            let dst_is_dir = dst.kind == FileKind::Directory;
            {
                let (smeta, sdir) = src_guard.dir_mut()?;
                sdir.set(name, dst.ino, dst.kind);
                smeta.touch_modified(now);
                if parent != newparent {
                    smeta.nlink = smeta.nlink + dst_is_dir as u32 - src_is_dir as u32;
                }
            }
            {
                let target: &mut InodeData = match dst_guard.as_mut() {
                    Some(g) => g,
                    None => &mut src_guard,
                };
                let (dmeta, ddir) = target.dir_mut()?;
                ddir.set(newname, src.ino, src.kind);
                dmeta.touch_modified(now);
                if parent != newparent {
                    dmeta.nlink = dmeta.nlink + src_is_dir as u32 - dst_is_dir as u32;
                }
            }
            drop(dst_guard);
            drop(src_guard);
            src.data.write().meta.ctime = now;
            dst.data.write().meta.ctime = now;
            if parent != newparent {
                if src_is_dir {
                    src.parent.store(newparent, Ordering::Release);
                }
                if dst_is_dir {
                    dst.parent.store(parent, Ordering::Release);
                }
                self.add_descendants(parent, dst_weight - src_weight);
                self.add_descendants(newparent, src_weight - dst_weight);
            }
            return Ok(());
        }

        {
            let (smeta, sdir) = src_guard.dir_mut()?;
            sdir.remove(name);
            smeta.touch_modified(now);
            if src_is_dir && parent != newparent {
                smeta.nlink -= 1;
            }
        }
        {
            let target: &mut InodeData = match dst_guard.as_mut() {
                Some(g) => g,
                None => &mut src_guard,
            };
            let (dmeta, ddir) = target.dir_mut()?;
            ddir.set(newname, src.ino, src.kind);
            dmeta.touch_modified(now);
            if src_is_dir && parent != newparent {
                dmeta.nlink += 1;
            }
            if let Some(dst) = &dst {
                let mut ddata = match replaced_dir.take() {
                    Some(data) => data,
                    None => dst.data.write(),
                };
                if dst.kind == FileKind::Directory {
                    ddata.meta.nlink = 0;
                    dmeta.nlink -= 1;
                } else {
                    ddata.meta.nlink = ddata.meta.nlink.saturating_sub(1);
                }
                ddata.meta.ctime = now;
            }
        }
        drop(replaced_dir);
        drop(dst_guard);
        drop(src_guard);
        // One entry is left where there were one or two; its name may be longer.
        match &dst {
            Some(_) => self.release_meta(entry_cost(name)),
            None => {
                self.add_meta(newname.len() as u64);
                self.release_meta(name.len() as u64);
            }
        }
        src.data.write().meta.ctime = now;
        if src_is_dir && parent != newparent {
            src.parent.store(newparent, Ordering::Release);
        }
        if parent != newparent {
            self.add_descendants(parent, -src_weight);
            self.add_descendants(newparent, src_weight);
        }
        if let Some(dst) = dst {
            self.add_descendants(newparent, -1);
            self.maybe_free(&dst);
        }
        Ok(())
    }

    /// Whether directory `ino` is `ancestor` or lies below it.
    fn is_within(&self, mut ino: u64, ancestor: u64) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            if ino == ROOT_INO {
                return false;
            }
            match self.inode_even_poisoned(ino) {
                Ok(inode) => ino = inode.parent(),
                Err(_) => return false,
            }
        }
    }

    pub fn opendir(&self, ino: u64, flags: i32) -> Result<u64> {
        let inode = self.inode(ino)?;
        if inode.kind != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(self.new_handle(inode, flags))
    }

    pub fn releasedir(&self, fh: u64) -> Result<()> {
        self.drop_handle(fh).map(|_| ())
    }

    /// Lists `ino` after cookie `offset`: `emit` gets each entry and returns true once the
    /// caller's buffer is full (that entry was not taken).
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
        self.list(ino, offset, |entry, inode| {
            let Some(inode) = inode else {
                return false;
            };
            let attr = inode.attr();
            if emit(entry, &attr) {
                return true;
            }
            if entry.offset > 2 {
                inode.lookups.fetch_add(1, Ordering::AcqRel);
            }
            false
        })
    }

    /// Walks a directory in cookie order, in batches, holding its lock only while a batch is
    /// collected. `emit` gets the entry and (for "." and ".." too) its inode, if still live.
    fn list(
        &self,
        ino: u64,
        mut offset: u64,
        mut emit: impl FnMut(&DirEntry, Option<&Arc<Inode>>) -> bool,
    ) -> Result<()> {
        let dir = self.inode(ino)?;
        if offset < 2 {
            let parent = self.inode(dir.parent()).ok();
            let dots: [Dot; 2] = [(1, b".", Some(&dir)), (2, b"..", parent.as_ref())];
            for (cookie, name, inode) in dots {
                if offset >= cookie {
                    continue;
                }
                let entry = DirEntry {
                    ino: inode.map_or(ino, |i| i.ino),
                    offset: cookie,
                    kind: FileKind::Directory,
                    name: name.to_vec(),
                };
                if emit(&entry, inode) {
                    return Ok(());
                }
                offset = cookie;
            }
        }
        loop {
            let batch: Vec<(DirEntry, Option<Arc<Inode>>)> = {
                let data = dir.data.read();
                data.dir()?
                    .after(offset)
                    .take(READDIR_BATCH)
                    .map(|(cookie, e)| {
                        let entry = DirEntry {
                            ino: e.ino,
                            offset: cookie,
                            kind: e.kind,
                            name: e.name.to_vec(),
                        };
                        (entry, self.inode_even_poisoned(e.ino).ok())
                    })
                    .collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            for (entry, inode) in &batch {
                if inode.is_none() {
                    continue;
                }
                if emit(entry, inode.as_ref()) {
                    return Ok(());
                }
                offset = entry.offset;
            }
            offset = batch.last().map_or(offset, |(e, _)| e.offset);
        }
    }
}

/// The checks of a name to unlink or rmdir (`want_dir`) that come before any lookup: its
/// length, then what Linux answers for a last component "." or ".." (the kernel resolves
/// those itself and never sends them).
pub fn check_removal_name(name: &[u8], want_dir: bool) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    match (name, want_dir) {
        (b".", true) => Err(Errno::EINVAL),
        (b"..", true) => Err(Errno::ENOTEMPTY),
        (b"." | b"..", false) => Err(Errno::EISDIR),
        _ => Ok(()),
    }
}

/// The checks of a rename's names that come before any lookup, in the order Linux's
/// do_renameat2 makes them: empty names, "." and ".." (which the kernel resolves itself and
/// never sends), the source's length (its existence is checked later), and only after that
/// the new name.
pub fn check_rename_names(name: &[u8], newname: &[u8], mode: RenameMode) -> Result<()> {
    if name.is_empty() || newname.is_empty() {
        return Err(Errno::ENOENT);
    }
    if is_dots(name) {
        return Err(Errno::EBUSY);
    }
    if is_dots(newname) {
        return Err(match mode {
            RenameMode::NoReplace => Errno::EEXIST,
            _ => Errno::EBUSY,
        });
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}
