//! Moving names: rename (plain, no-replace, exchange, and leaving a whiteout).

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::fs::attr::{Caller, FileKind, RenameMode};
use crate::fs::budget::{entry_cost, Fail, INODE_BYTES};
use crate::fs::error::{Errno, Result};
use crate::fs::{Fs, NAME_MAX};

use super::create::group_for_new;
use super::inode::{Body, Inode, InodeData, Meta};
use super::names::{check_name, is_dots};
use super::table::Namespace;

impl Fs {
    /// Renames `parent/name` to `newparent/newname`.
    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        mode: RenameMode,
    ) -> Result<()> {
        self.with_room(|_| self.try_rename(parent, name, newparent, newname, mode, None))
    }

    /// A rename that leaves at the old name a whiteout made by `caller` (`RENAME_WHITEOUT`,
    /// which overlayfs asks of its upper layer): a character device 0:0 with mode 0, as on
    /// tmpfs. EINVAL with `Exchange`. Only the whiteout takes room (an inode); the retry
    /// after making room starts over.
    pub fn rename_whiteout(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        mode: RenameMode,
        caller: Caller,
    ) -> Result<()> {
        let whiteout = Some(caller);
        self.with_room(|_| self.try_rename(parent, name, newparent, newname, mode, whiteout))
    }

    fn try_rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        mode: RenameMode,
        whiteout: Option<Caller>,
    ) -> std::result::Result<(), Fail> {
        check_rename_names(name, newname, mode)?;
        if whiteout.is_some() && mode == RenameMode::Exchange {
            return Err(Errno::EINVAL.into());
        }
        // Moving between directories may change parent chains: run alone among namespace
        // changes, so counts move as a whole and the "into itself" check sees a still tree.
        let (_shared, _exclusive);
        if parent == newparent {
            _shared = self.tree_shared();
        } else {
            _exclusive = self.tree_exclusive();
        }
        let src_dir = self.namespace.get(parent)?;
        let dst_dir = self.namespace.get(newparent)?;
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
            return Err(Errno::ENOENT.into());
        }
        // NOREPLACE refuses any existing target, even another name of the same inode (Linux
        // checks it before the same-inode case below).
        match (mode, &dst_entry) {
            (RenameMode::NoReplace, Some(_)) => return Err(Errno::EEXIST.into()),
            (RenameMode::Exchange, None) => return Err(Errno::ENOENT.into()),
            _ => {}
        }
        if dst_entry.as_ref().is_some_and(|d| d.ino == src_entry.ino) {
            // Two names of one inode (or one name): POSIX says do nothing (Linux's VFS does
            // not send it, whiteout or not).
            return Ok(());
        }
        let src = self.namespace.get(src_entry.ino)?;
        let dst = match &dst_entry {
            Some(e) => Some(self.namespace.get(e.ino)?),
            None => None,
        };
        if parent != newparent {
            if src.kind == FileKind::Directory && self.namespace.is_within(newparent, src.ino) {
                return Err(Errno::EINVAL.into());
            }
            if mode == RenameMode::Exchange
                && dst.as_ref().is_some_and(|d| {
                    d.kind == FileKind::Directory && self.namespace.is_within(parent, d.ino)
                })
            {
                return Err(Errno::EINVAL.into());
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
                    && self.namespace.is_within(parent, dst.ino)
                {
                    return Err(Errno::ENOTEMPTY.into());
                }
                match (
                    src.kind == FileKind::Directory,
                    dst.kind == FileKind::Directory,
                ) {
                    (true, false) => return Err(Errno::ENOTDIR.into()),
                    (false, true) => return Err(Errno::EISDIR.into()),
                    (true, true) => {
                        // A child of the target parent, which is not above the source's
                        // parent (checked above): ancestor before descendant.
                        let data = dst.data.write();
                        if !data.dir()?.is_empty() {
                            return Err(Errno::ENOTEMPTY.into());
                        }
                        replaced_dir = Some(data);
                    }
                    _ => {}
                }
            }
        }

        let now = SystemTime::now();
        let src_weight = Namespace::weight(&src);
        let src_is_dir = src.kind == FileKind::Directory;
        if mode == RenameMode::Exchange {
            let dst = dst.as_ref().ok_or(Errno::ENOENT)?;
            let dst_weight = Namespace::weight(dst);
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
                // Files too: their parent link is where their Merkle change marks go.
                src.parent.store(newparent, Ordering::Release);
                dst.parent.store(parent, Ordering::Release);
                self.namespace.merkle_dir_changed(newparent);
                self.namespace
                    .add_descendants(parent, dst_weight - src_weight);
                self.namespace
                    .add_descendants(newparent, src_weight - dst_weight);
            }
            self.namespace.merkle_dir_changed(parent);
            return Ok(());
        }

        // The whiteout is charged and made before anything moves: ENOSPC leaves all as it was.
        let whiteout = match whiteout {
            Some(caller) => Some(self.make_whiteout(parent, name, &src_guard.meta, caller, now)?),
            None => None,
        };
        {
            let (smeta, sdir) = src_guard.dir_mut()?;
            match &whiteout {
                Some(w) => sdir.set(name, w.ino, FileKind::CharDevice),
                None => {
                    sdir.remove(name);
                }
            }
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
            Some(_) => self.budget.release_meta(entry_cost(name)),
            None => {
                self.budget.add_meta(newname.len() as u64);
                self.budget.release_meta(name.len() as u64);
            }
        }
        src.data.write().meta.ctime = now;
        if parent != newparent {
            // Files too: their parent link is where their Merkle change marks go.
            src.parent.store(newparent, Ordering::Release);
        }
        if parent != newparent {
            self.namespace.add_descendants(parent, -src_weight);
            self.namespace.add_descendants(newparent, src_weight);
        }
        if let Some(dst) = dst {
            self.namespace.add_descendants(newparent, -1);
            self.maybe_free(&dst);
        }
        if whiteout.is_some() {
            self.namespace.add_descendants(parent, 1);
        }
        self.namespace.merkle_dir_changed(parent);
        if parent != newparent {
            self.namespace.merkle_dir_changed(newparent);
        }
        Ok(())
    }
}

impl Fs {
    /// A whiteout for `name` in directory `parent` (whose metadata is `dir`): charged with its
    /// entry, in the inode table, in no directory yet.
    fn make_whiteout(
        &self,
        parent: u64,
        name: &[u8],
        dir: &Meta,
        caller: Caller,
        now: SystemTime,
    ) -> std::result::Result<std::sync::Arc<Inode>, Fail> {
        // Its inode and its entry: the rename's own accounting moves the old entry.
        self.budget.charge_meta(INODE_BYTES + entry_cost(name))?;
        let meta = Meta::new(0, caller.uid, group_for_new(dir, caller), WHITEOUT_DEV, now);
        Ok(self
            .namespace
            .add(|ino| Inode::new(ino, FileKind::CharDevice, meta, Body::Special, parent)))
    }
}

/// A whiteout's device number, 0:0 (Linux's `WHITEOUT_DEV`).
const WHITEOUT_DEV: u32 = 0;

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
