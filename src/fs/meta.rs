//! Attributes: getattr, setattr, access, statfs and extended attributes, including the
//! virtual `user.memfs.descendants`.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::attr::{Attr, Caller, FileKind, SetAttr, SetTime, StatFs};
use super::budget::{xattr_cost, ENTRY_BYTES, INODE_BYTES, XATTR_MAP_BYTES};
use super::error::{Errno, Result};
use super::history::CommitCause;
use super::namespace::inode::{attr_of, Body};
use super::{Fs, NAME_MAX};

/// The virtual extended attribute holding a directory's descendant count.
pub const DESCENDANTS_XATTR: &[u8] = b"user.memfs.descendants";
/// The virtual extended attribute of a regular file that lists its versions as JSON.
pub const VERSIONS_XATTR: &[u8] = b"user.memfs.versions";

/// The virtual extended attribute holding a node's Merkle hash in hex (see
/// `namespace::merkle` for what it covers).
pub const HASH_XATTR: &[u8] = b"user.memfs.hash";

/// The largest extended attribute value, as on Linux (`XATTR_SIZE_MAX`).
const XATTR_SIZE_MAX: usize = 65536;

/// Extended attribute namespaces memfs stores; others (`system.*`, ACLs) are unsupported.
const XATTR_NAMESPACES: [&[u8]; 3] = [b"user.", b"trusted.", b"security."];

/// The block size statfs reports.
const BLOCK_SIZE: u64 = 4096;

impl Fs {
    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        Ok(self.namespace.get(ino)?.attr())
    }

    pub fn setattr(&self, ino: u64, set: &SetAttr) -> Result<Attr> {
        let inode = self.namespace.get(ino)?;
        let now = SystemTime::now();
        let mut data = inode.data.write();
        if let Some(size) = set.size {
            let (meta, content) = data.file_mut()?;
            let delta = content.truncate(size)?;
            self.budget.add_dirty(delta);
            meta.touch_modified(now);
        }
        // A truncate with no writer open has no close to commit it: commit it now.
        let commit_now = set.size.is_some() && inode.writers.load(Ordering::Acquire) == 0;
        let meta = &mut data.meta;
        if let Some(mode) = set.mode {
            meta.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = set.uid {
            meta.uid = uid;
        }
        if let Some(gid) = set.gid {
            meta.gid = gid;
        }
        let resolve = |t: SetTime| match t {
            SetTime::At(t) => t,
            SetTime::Now => now,
        };
        if let Some(t) = set.atime {
            meta.atime = resolve(t);
        }
        if let Some(t) = set.mtime {
            meta.mtime = resolve(t);
        }
        meta.ctime = set.ctime.unwrap_or(now);
        let attr = attr_of(ino, inode.kind, &data);
        drop(data);
        if set.size.is_some() || set.mode.is_some() {
            self.namespace.merkle_changed(&inode);
        }
        if commit_now {
            // Best effort: a truncate that cannot be committed for lack of space stays
            // uncommitted (and readable), and a later commit takes it.
            let _ = self.commit(&inode, CommitCause::Truncate);
        }
        Ok(attr)
    }

    /// `access(2)`: whether `caller` may do `mask` (`R_OK|W_OK|X_OK`, or `F_OK`).
    pub fn access(&self, ino: u64, mask: i32, caller: Caller) -> Result<()> {
        permits(&self.getattr(ino)?, mask, caller)
    }

    /// The cap as the size, what memfs holds as the used part. Inodes: the free ones are
    /// how many more empty files with short names the free bytes would hold, so `df -i`
    /// shows the live inodes as used.
    pub fn statfs(&self) -> StatFs {
        let cap = self.capacity();
        let blocks = cap / BLOCK_SIZE;
        let free_bytes = cap.saturating_sub(self.used_bytes());
        let free = free_bytes / BLOCK_SIZE;
        let ffree = free_bytes / (INODE_BYTES + ENTRY_BYTES + 16);
        StatFs {
            blocks,
            bfree: free,
            bavail: free,
            files: ffree.saturating_add(self.inode_count() as u64),
            ffree,
            bsize: BLOCK_SIZE as u32,
            namelen: NAME_MAX as u32,
            frsize: BLOCK_SIZE as u32,
        }
    }

    pub fn setxattr(&self, ino: u64, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        check_xattr_name(name)?;
        if name == DESCENDANTS_XATTR || name == VERSIONS_XATTR || name == HASH_XATTR {
            return Err(Errno::EPERM);
        }
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        let inode = self.namespace.get(ino)?;
        check_user_xattr_kind(name, inode.kind)?;
        self.with_room(|_| {
            let mut data = inode.data.write();
            let old = data
                .meta
                .xattrs
                .as_ref()
                .and_then(|x| x.get(name))
                .map(|v| v.len());
            if flags & libc::XATTR_CREATE != 0 && old.is_some() {
                return Err(Errno::EEXIST.into());
            }
            if flags & libc::XATTR_REPLACE != 0 && old.is_none() {
                return Err(Errno::ENODATA.into());
            }
            let mut now = xattr_cost(name.len(), value.len());
            if data.meta.xattrs.is_none() {
                now = now.saturating_add(XATTR_MAP_BYTES);
            }
            let before = old.map_or(0, |len| xattr_cost(name.len(), len));
            self.budget.charge_meta(now.saturating_sub(before))?;
            self.budget.release_meta(before.saturating_sub(now));
            let xattrs = data.meta.xattrs.get_or_insert_with(Default::default);
            xattrs.insert(name.into(), value.into());
            data.meta.ctime = SystemTime::now();
            Ok(())
        })
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        check_xattr_name(name)?;
        let inode = self.namespace.get(ino)?;
        if name == DESCENDANTS_XATTR && inode.kind == FileKind::Directory {
            self.repair_if_needed();
            return Ok(inode.descendants().to_string().into_bytes());
        }
        if name == HASH_XATTR {
            let hash = self.merkle_hash(ino)?;
            return Ok(super::namespace::merkle::hex(&hash).into_bytes());
        }
        if name == VERSIONS_XATTR && inode.kind == FileKind::Regular {
            return serde_json::to_vec(&self.versions(ino)?).map_err(|_| Errno::EIO);
        }
        let data = inode.data.read();
        data.meta
            .xattrs
            .as_ref()
            .and_then(|x| x.get(name))
            .map(|v| v.to_vec())
            .ok_or(Errno::ENODATA)
    }

    /// Names of the stored extended attributes, each followed by a NUL byte.
    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        let inode = self.namespace.get(ino)?;
        let data = inode.data.read();
        let mut out = Vec::new();
        for name in data.meta.xattrs.iter().flat_map(|x| x.keys()) {
            out.extend_from_slice(name);
            out.push(0);
        }
        Ok(out)
    }

    pub fn removexattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        check_xattr_name(name)?;
        if name == DESCENDANTS_XATTR || name == VERSIONS_XATTR || name == HASH_XATTR {
            return Err(Errno::EPERM);
        }
        let inode = self.namespace.get(ino)?;
        let mut data = inode.data.write();
        let removed = data.meta.xattrs.as_mut().and_then(|x| x.remove(name));
        let Some(value) = removed else {
            return Err(Errno::ENODATA);
        };
        self.budget
            .release_meta(xattr_cost(name.len(), value.len()));
        if data.meta.xattrs.as_ref().is_some_and(|x| x.is_empty()) {
            data.meta.xattrs = None;
            self.budget.release_meta(XATTR_MAP_BYTES);
        }
        data.meta.ctime = SystemTime::now();
        Ok(())
    }

    /// The descendant count of a directory.
    pub fn descendants(&self, ino: u64) -> Result<u64> {
        let inode = self.namespace.get(ino)?;
        let is_dir = matches!(inode.data.read().body, Body::Dir(_));
        if is_dir {
            self.repair_if_needed();
            Ok(inode.descendants())
        } else {
            Err(Errno::ENOTDIR)
        }
    }
}

/// `access(2)`'s answer for an inode with attributes `attr`: whether `caller` may do `mask`
/// (`R_OK|W_OK|X_OK`, or `F_OK`) as far as the permission bits go.
pub fn permits(attr: &Attr, mask: i32, caller: Caller) -> Result<()> {
    if mask == libc::F_OK {
        return Ok(());
    }
    let perm = attr.perm as i32;
    let granted = if caller.uid == 0 {
        let any_exec = perm & 0o111 != 0 || attr.kind == FileKind::Directory;
        libc::R_OK | libc::W_OK | if any_exec { libc::X_OK } else { 0 }
    } else if caller.uid == attr.uid {
        (perm >> 6) & 7
    } else if caller.gid == attr.gid {
        (perm >> 3) & 7
    } else {
        perm & 7
    };
    if mask & !granted & 7 != 0 {
        return Err(Errno::EACCES);
    }
    Ok(())
}

/// The checks of an extended attribute's name that come before anything else: its length
/// (ERANGE) and its namespace (EOPNOTSUPP).
pub fn check_xattr_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > NAME_MAX {
        return Err(Errno::ERANGE);
    }
    if !XATTR_NAMESPACES.iter().any(|ns| name.starts_with(ns)) {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// Linux allows `user.*` attributes only on regular files and directories.
fn check_user_xattr_kind(name: &[u8], kind: FileKind) -> Result<()> {
    if name.starts_with(b"user.") && !matches!(kind, FileKind::Regular | FileKind::Directory) {
        return Err(Errno::EPERM);
    }
    Ok(())
}
