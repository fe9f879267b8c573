//! The router between the FUSE adapter and what serves each inode: the core [`Fs`] for real
//! files, the [`Control`] plane for `.memfs` and everything below it. Control nodes are told
//! apart by number (at or above [`Control::floor`]); handle operations carry their inode and
//! are routed by it. Changes under `.memfs`, and to the name `.memfs` in the root, are
//! refused here (EROFS), after the same argument checks the core makes first, so every
//! errno is the one the core would give in its place.

use std::sync::Arc;

use crate::control::{Control, CONTROL_NAME};
use crate::fs::{
    check_name, check_removal_name, check_rename_names, check_xattr_name, Attr, Caller, DirEntry,
    Errno, FileKind, Fs, ReadBytes, RenameMode, Result, SetAttr, SetidChange, StatFs, NAME_MAX,
    PATH_MAX, ROOT_INO,
};

pub struct Router {
    fs: Arc<Fs>,
    control: Control,
}

impl Router {
    pub fn new(fs: Arc<Fs>) -> Router {
        Router {
            control: Control::new(fs.clone()),
            fs,
        }
    }

    /// The core.
    pub fn fs(&self) -> &Arc<Fs> {
        &self.fs
    }

    /// The control plane.
    pub fn control(&self) -> &Control {
        &self.control
    }

    /// Whether `ino` is a control node: its attributes and names change without the kernel
    /// seeing it, so the kernel must not cache them.
    pub fn is_control(&self, ino: u64) -> bool {
        ino >= self.control.floor()
    }

    /// Whether `ino` is a control node that changes without a request the kernel sees: not
    /// a snapshot's, nor a directory above them (which change only through the kernel). The
    /// kernel must not keep what it caches of it.
    pub fn changes_unseen(&self, ino: u64) -> bool {
        self.is_control(ino) && !self.control.is_frozen(ino)
    }

    /// Whether reads of `ino` must bypass the kernel's page cache (generated files).
    pub fn direct_io(&self, ino: u64) -> bool {
        self.is_control(ino) && self.control.direct_io(ino)
    }

    /// Whether `name` in `parent` is the control directory's own name in the root.
    fn is_control_name(parent: u64, name: &[u8]) -> bool {
        parent == ROOT_INO && name == CONTROL_NAME
    }

    /// Whether a new entry `name` in `parent` would be under `.memfs`, or be `.memfs`.
    fn touches_control(&self, parent: u64, name: &[u8]) -> bool {
        self.is_control(parent) || Self::is_control_name(parent, name)
    }

    /// The answer to a new entry under `.memfs` (EROFS) or named `.memfs` in the root
    /// (EEXIST: it exists), after the name checks the core makes first.
    fn refuse_new_entry(&self, parent: u64, name: &[u8]) -> Result<()> {
        check_name(name)?;
        Err(if self.is_control(parent) {
            Errno::EROFS
        } else {
            Errno::EEXIST
        })
    }

    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        if Self::is_control_name(parent, name) {
            return self.control.lookup_root();
        }
        if self.is_control(parent) {
            return self.control.lookup(parent, name);
        }
        self.fs.lookup(parent, name)
    }

    pub fn forget(&self, ino: u64, n: u64) {
        if self.is_control(ino) {
            self.control.forget(ino, n);
        } else {
            self.fs.forget(ino, n);
        }
    }

    pub fn getattr(&self, ino: u64) -> Result<Attr> {
        if self.is_control(ino) {
            return self.control.getattr(ino);
        }
        self.fs.getattr(ino)
    }

    pub fn setattr(&self, ino: u64, set: &SetAttr) -> Result<Attr> {
        if self.is_control(ino) {
            return Err(Errno::EROFS);
        }
        self.fs.setattr(ino, set)
    }

    /// Clears setuid/setgid as the kernel asked along with a write, truncate or chown.
    /// Control files have none to clear.
    pub fn clear_setid(&self, ino: u64, change: SetidChange, caller: Caller) -> Result<bool> {
        if self.is_control(ino) {
            return Ok(false);
        }
        self.fs.clear_setid(ino, change, caller)
    }

    pub fn readlink(&self, ino: u64) -> Result<Vec<u8>> {
        if self.is_control(ino) {
            return self.control.readlink(ino);
        }
        self.fs.readlink(ino)
    }

    pub fn mknod(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        caller: Caller,
    ) -> Result<Attr> {
        if self.touches_control(parent, name) {
            // The core refuses these kinds before it looks at the name.
            match FileKind::from_mode(mode) {
                None | Some(FileKind::Directory | FileKind::Symlink) => return Err(Errno::EINVAL),
                Some(_) => {}
            }
            self.refuse_new_entry(parent, name)?;
        }
        self.fs.mknod(parent, name, mode, rdev, caller)
    }

    pub fn mkdir(&self, parent: u64, name: &[u8], mode: u32, caller: Caller) -> Result<Attr> {
        if self.is_control(parent) {
            // A snapshot in `.memfs/snapshots`; EROFS elsewhere.
            return self.control.mkdir(parent, name);
        }
        if self.touches_control(parent, name) {
            self.refuse_new_entry(parent, name)?;
        }
        self.fs.mkdir(parent, name, mode, caller)
    }

    pub fn symlink(&self, parent: u64, name: &[u8], target: &[u8], caller: Caller) -> Result<Attr> {
        if self.touches_control(parent, name) {
            if target.len() >= PATH_MAX {
                return Err(Errno::ENAMETOOLONG);
            }
            self.refuse_new_entry(parent, name)?;
        }
        self.fs.symlink(parent, name, target, caller)
    }

    /// Creates and opens a regular file. `.memfs` in the root exists, so without `O_EXCL`
    /// it is opened instead, as the core does for an existing name.
    pub fn create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64)> {
        if self.is_control(parent) {
            self.refuse_new_entry(parent, name)?;
        }
        if Self::is_control_name(parent, name) {
            if flags & libc::O_EXCL != 0 {
                return Err(Errno::EEXIST);
            }
            let attr = self.control.lookup_root()?;
            return match self.control.open(attr.ino, flags) {
                Ok(fh) => Ok((self.control.getattr(attr.ino)?, fh)),
                Err(e) => {
                    self.control.forget(attr.ino, 1);
                    Err(e)
                }
            };
        }
        self.fs.create(parent, name, mode, flags, caller)
    }

    /// `open(O_TMPFILE)` in `parent`: EROFS under `.memfs`.
    pub fn tmpfile(
        &self,
        parent: u64,
        mode: u32,
        flags: i32,
        caller: Caller,
    ) -> Result<(Attr, u64)> {
        if self.is_control(parent) {
            return Err(Errno::EROFS);
        }
        self.fs.tmpfile(parent, mode, flags, caller)
    }

    pub fn unlink(&self, parent: u64, name: &[u8]) -> Result<()> {
        if self.touches_control(parent, name) {
            check_removal_name(name, false)?;
            return Err(Errno::EROFS);
        }
        self.fs.unlink(parent, name)
    }

    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        if self.is_control(parent) {
            // Deletes a snapshot in `.memfs/snapshots`; EROFS elsewhere.
            return self.control.rmdir(parent, name);
        }
        if self.touches_control(parent, name) {
            check_removal_name(name, true)?;
            return Err(Errno::EROFS);
        }
        self.fs.rmdir(parent, name)
    }

    pub fn rename(
        &self,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        mode: RenameMode,
        whiteout: Option<Caller>,
    ) -> Result<()> {
        if self.touches_control(parent, name) || self.touches_control(newparent, newname) {
            check_rename_names(name, newname, mode)?;
            return Err(Errno::EROFS);
        }
        match whiteout {
            Some(caller) => self
                .fs
                .rename_whiteout(parent, name, newparent, newname, mode, caller),
            None => self.fs.rename(parent, name, newparent, newname, mode),
        }
    }

    pub fn link(&self, ino: u64, newparent: u64, newname: &[u8]) -> Result<Attr> {
        if self.is_control(ino) || self.touches_control(newparent, newname) {
            check_name(newname)?;
            return Err(Errno::EROFS);
        }
        self.fs.link(ino, newparent, newname)
    }

    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        if self.is_control(ino) {
            return self.control.open(ino, flags);
        }
        self.fs.open(ino, flags)
    }

    pub fn read(&self, ino: u64, fh: u64, offset: u64, size: u32) -> Result<ReadBytes> {
        if self.is_control(ino) {
            return self.control.read(fh, offset, size);
        }
        self.fs.read_bytes(fh, offset, size)
    }

    pub fn write(&self, ino: u64, fh: u64, offset: u64, bytes: &[u8]) -> Result<u32> {
        if self.is_control(ino) {
            // Control files only open read-only: no such writable handle.
            return Err(Errno::EBADF);
        }
        self.fs.write(fh, offset, bytes)
    }

    pub fn flush(&self, ino: u64, fh: u64) -> Result<Option<u64>> {
        if self.is_control(ino) {
            return self.control.flush(fh);
        }
        self.fs.flush(fh)
    }

    pub fn release(&self, ino: u64, fh: u64) -> Result<Option<u64>> {
        if self.is_control(ino) {
            return self.control.release(fh);
        }
        self.fs.release(fh)
    }

    pub fn fsync(&self, ino: u64, fh: u64, datasync: bool) -> Result<Option<u64>> {
        if self.is_control(ino) {
            return self.control.flush(fh);
        }
        self.fs.fsync(fh, datasync)
    }

    pub fn opendir(&self, ino: u64, flags: i32) -> Result<u64> {
        if self.is_control(ino) {
            return self.control.opendir(ino, flags);
        }
        self.fs.opendir(ino, flags)
    }

    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
        emit: impl FnMut(&DirEntry) -> bool,
    ) -> Result<()> {
        if self.is_control(ino) {
            return self.control.readdir(ino, offset, emit);
        }
        self.fs.readdir(ino, offset, emit)
    }

    pub fn readdirplus(
        &self,
        ino: u64,
        offset: u64,
        emit: impl FnMut(&DirEntry, &Attr) -> bool,
    ) -> Result<()> {
        if self.is_control(ino) {
            return self.control.readdirplus(ino, offset, emit);
        }
        self.fs.readdirplus(ino, offset, emit)
    }

    pub fn releasedir(&self, ino: u64, fh: u64) -> Result<()> {
        if self.is_control(ino) {
            return self.control.release(fh).map(|_| ());
        }
        self.fs.releasedir(fh)
    }

    pub fn statfs(&self) -> StatFs {
        self.fs.statfs()
    }

    pub fn setxattr(&self, ino: u64, name: &[u8], value: &[u8], flags: i32) -> Result<()> {
        if self.is_control(ino) {
            check_xattr_name(name)?;
            return Err(Errno::EROFS);
        }
        self.fs.setxattr(ino, name, value, flags)
    }

    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>> {
        if self.is_control(ino) {
            check_xattr_name(name)?;
            return self.control.getxattr(ino, name);
        }
        self.fs.getxattr(ino, name)
    }

    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>> {
        if self.is_control(ino) {
            return Ok(Vec::new());
        }
        self.fs.listxattr(ino)
    }

    pub fn removexattr(&self, ino: u64, name: &[u8]) -> Result<()> {
        if self.is_control(ino) {
            check_xattr_name(name)?;
            return Err(Errno::EROFS);
        }
        self.fs.removexattr(ino, name)
    }

    pub fn access(&self, ino: u64, mask: i32, caller: Caller) -> Result<()> {
        if self.is_control(ino) {
            return self.control.access(ino, mask, caller);
        }
        self.fs.access(ino, mask, caller)
    }

    pub fn fallocate(&self, ino: u64, fh: u64, offset: u64, len: u64, mode: i32) -> Result<()> {
        if self.is_control(ino) {
            return Err(Errno::EBADF);
        }
        self.fs.fallocate(fh, offset, len, mode)
    }

    pub fn lseek(
        &self,
        ino: u64,
        fh: u64,
        offset: i64,
        whence: i32,
        written_back: bool,
    ) -> Result<i64> {
        if self.is_control(ino) {
            return Err(Errno::EBADF);
        }
        self.fs.lseek(fh, offset, whence, written_back)
    }

    /// Whether writes to the open file may still sit in the kernel's cache.
    pub fn may_cache_writes(&self, ino: u64, fh: u64) -> bool {
        !self.is_control(ino) && self.fs.may_cache_writes(fh).unwrap_or(false)
    }

    /// Copies up to `len` bytes between two open files, a control file (a version, say)
    /// being a fine source; returns the bytes copied.
    pub fn copy_file_range(&self, from: CopyEnd, to: CopyEnd, len: u64) -> Result<u64> {
        if self.is_control(to.ino) {
            return Err(Errno::EBADF);
        }
        if self.is_control(from.ino) {
            return self.fs.copy_into(to.fh, to.offset, len, |done, piece| {
                self.control
                    .read(from.fh, from.offset.saturating_add(done), piece)
                    .map(ReadBytes::into_vec)
            });
        }
        self.fs
            .copy_file_range(from.fh, from.offset, to.fh, to.offset, len)
    }
}

/// One side of `copy_file_range`: an open file and where in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopyEnd {
    pub ino: u64,
    pub fh: u64,
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::FsConfig;

    fn router_with_first_ino(first: u64) -> Router {
        Router::new(Arc::new(Fs::with_first_ino(FsConfig::default(), first)))
    }

    /// Writes `bytes` to a new file `name` in the root and closes it (one version).
    fn put(r: &Router, name: &[u8], bytes: &[u8]) -> u64 {
        let (attr, fh) = r
            .create(ROOT_INO, name, 0o644, libc::O_RDWR, Caller::ROOT)
            .unwrap();
        r.write(attr.ino, fh, 0, bytes).unwrap();
        r.flush(attr.ino, fh).unwrap();
        r.release(attr.ino, fh).unwrap();
        attr.ino
    }

    fn names(r: &Router, dir: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        r.readdir(dir, 0, |e| {
            out.push(e.name.clone());
            false
        })
        .unwrap();
        out
    }

    #[test]
    fn real_inodes_with_large_numbers_are_served_by_the_core() {
        // Numbers the old bit-encoding took for control nodes: the old `.memfs`, and far up.
        for first in [(1 << 59) - 1, (1 << 62) | 1, (1 << 63) - 10] {
            let r = router_with_first_ino(first);
            let ino = put(&r, b"f", b"hello");
            assert_eq!(ino, first);
            assert!(!r.is_control(ino));
            let attr = r.lookup(ROOT_INO, b"f").unwrap();
            assert_eq!(
                (attr.ino, attr.kind, attr.size),
                (ino, FileKind::Regular, 5)
            );
            assert_eq!(r.getattr(ino).unwrap().size, 5);
            let fh = r.open(ino, libc::O_RDONLY).unwrap();
            assert_eq!(r.read(ino, fh, 0, 100).unwrap().into_vec(), b"hello");
            r.release(ino, fh).unwrap();
            let d = r.mkdir(ROOT_INO, b"d", 0o755, Caller::ROOT).unwrap();
            assert_eq!(d.ino, first + 1);
            assert!(!r.is_control(d.ino));
            assert_eq!(names(&r, ROOT_INO), [&b"."[..], b"..", b"f", b"d"]);
            r.setxattr(ino, b"user.x", b"1", 0).unwrap();
            assert_eq!(r.getxattr(ino, b"user.x").unwrap(), b"1");
            // Its versions show under .memfs as usual.
            let control = r.lookup(ROOT_INO, CONTROL_NAME).unwrap().ino;
            assert!(r.is_control(control));
            let versions = r.lookup(control, b"versions").unwrap().ino;
            let history = r.lookup(versions, b"f").unwrap().ino;
            let v1 = r.lookup(history, b"1").unwrap();
            assert_eq!(v1.size, 5);
            assert!(r.is_control(v1.ino) && v1.ino > ino);
        }
    }

    #[test]
    fn every_change_under_dot_memfs_is_refused() {
        let r = router_with_first_ino(2);
        let f = put(&r, b"f", b"content");
        let d = r.mkdir(ROOT_INO, b"d", 0o755, Caller::ROOT).unwrap().ino;
        let control = r.lookup(ROOT_INO, CONTROL_NAME).unwrap().ino;
        let stats = r.lookup(control, b"stats.json").unwrap().ino;
        let versions = r.lookup(control, b"versions").unwrap().ino;
        let mirror = r.lookup(versions, b"d").unwrap().ino;
        let history = r.lookup(versions, b"f").unwrap().ino;
        let v1 = r.lookup(history, b"1").unwrap().ino;
        let who = Caller::ROOT;
        let erofs = Err(Errno::EROFS);
        for dir in [control, versions, mirror, history] {
            assert_eq!(r.mkdir(dir, b"x", 0o755, who).map(|_| ()), erofs);
            assert_eq!(r.mknod(dir, b"x", 0o644, 0, who).map(|_| ()), erofs);
            assert_eq!(r.symlink(dir, b"x", b"t", who).map(|_| ()), erofs);
            assert_eq!(
                r.create(dir, b"x", 0o644, libc::O_RDWR, who).map(|_| ()),
                erofs
            );
            assert_eq!(r.link(f, dir, b"x").map(|_| ()), erofs);
            assert_eq!(
                r.rename(ROOT_INO, b"f", dir, b"x", RenameMode::Replace, None),
                erofs
            );
        }
        for (dir, name) in [
            (control, &b"stats.json"[..]),
            (control, b"versions"),
            (versions, b"f"),
            (history, b"1"),
        ] {
            assert_eq!(r.unlink(dir, name), erofs);
            assert_eq!(r.rmdir(dir, name), erofs);
            assert_eq!(
                r.rename(dir, name, ROOT_INO, b"y", RenameMode::Replace, None),
                erofs
            );
        }
        for node in [control, stats, versions, mirror, history, v1] {
            let set = SetAttr {
                mode: Some(0o777),
                ..SetAttr::default()
            };
            assert_eq!(r.setattr(node, &set).map(|_| ()), erofs);
            assert_eq!(r.setxattr(node, b"user.x", b"1", 0), erofs);
            assert_eq!(r.removexattr(node, b"user.x"), erofs);
            assert_eq!(r.access(node, libc::W_OK, who), erofs);
            assert_eq!(r.link(node, ROOT_INO, b"x").map(|_| ()), erofs);
            for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDWR | libc::O_TRUNC] {
                assert_eq!(r.open(node, flags).map(|_| ()), erofs);
            }
        }
        // The name `.memfs` in the root: it cannot go, be replaced or be made again.
        assert_eq!(r.unlink(ROOT_INO, CONTROL_NAME), erofs);
        assert_eq!(r.rmdir(ROOT_INO, CONTROL_NAME), erofs);
        let plain = RenameMode::Replace;
        assert_eq!(
            r.rename(ROOT_INO, CONTROL_NAME, ROOT_INO, b"g", plain, None),
            erofs
        );
        assert_eq!(
            r.rename(ROOT_INO, b"f", ROOT_INO, CONTROL_NAME, plain, None),
            erofs
        );
        assert_eq!(
            r.rename(d, b"x", ROOT_INO, CONTROL_NAME, plain, None),
            erofs
        );
        assert_eq!(r.link(f, ROOT_INO, CONTROL_NAME).map(|_| ()), erofs);
        // It exists, so making it is EEXIST, as for any existing name.
        let eexist = Err(Errno::EEXIST);
        assert_eq!(
            r.mkdir(ROOT_INO, CONTROL_NAME, 0o755, who).map(|_| ()),
            eexist
        );
        assert_eq!(
            r.mknod(ROOT_INO, CONTROL_NAME, 0o644, 0, who).map(|_| ()),
            eexist
        );
        assert_eq!(
            r.symlink(ROOT_INO, CONTROL_NAME, b"t", who).map(|_| ()),
            eexist
        );
        let excl = libc::O_RDWR | libc::O_CREAT | libc::O_EXCL;
        assert_eq!(
            r.create(ROOT_INO, CONTROL_NAME, 0o644, excl, who)
                .map(|_| ()),
            eexist
        );
        assert_eq!(
            r.create(ROOT_INO, CONTROL_NAME, 0o644, libc::O_RDWR, who)
                .map(|_| ()),
            erofs
        );
        // Name checks still come first, as in the core.
        assert_eq!(
            r.mkdir(control, &[b'x'; 300], 0o755, who).map(|_| ()),
            Err(Errno::ENAMETOOLONG)
        );
        assert_eq!(r.rmdir(control, b"."), Err(Errno::EINVAL));
        assert_eq!(r.setxattr(control, b"bad", b"1", 0), Err(Errno::EOPNOTSUPP));
        // Nothing changed.
        assert_eq!(names(&r, ROOT_INO), [&b"."[..], b"..", b"f", b"d"]);
        assert_eq!(r.fs().verify_tree(), Ok(()));
    }

    #[test]
    fn control_numbers_are_stable_while_held_and_let_go_on_forget() {
        let r = router_with_first_ino(2);
        let f = put(&r, b"f", b"one");
        let control = r.lookup(ROOT_INO, CONTROL_NAME).unwrap().ino;
        let versions = r.lookup(control, b"versions").unwrap().ino;
        let history = r.lookup(versions, b"f").unwrap().ino;
        assert_eq!(r.lookup(versions, b"f").unwrap().ino, history);
        assert_eq!(
            names(&r, control),
            [
                &b"."[..],
                b"..",
                b"stats.json",
                b"fsck",
                b"versions",
                b"snapshots"
            ]
        );
        // A listing shows the numbers a lookup gives.
        let mut listed = Vec::new();
        r.readdir(versions, 0, |e| {
            listed.push((e.name.clone(), e.ino));
            false
        })
        .unwrap();
        assert_eq!(listed[0], (b".".to_vec(), versions));
        assert_eq!(listed[1], (b"..".to_vec(), control));
        assert_eq!(listed[2], (b"f".to_vec(), history));
        r.forget(history, 2);
        assert_eq!(r.getattr(history), Err(Errno::ENOENT), "let go");
        let again = r.lookup(versions, b"f").unwrap().ino;
        assert_ne!(again, history);
        assert!(r.is_control(again));
        // Unrelated real numbers are untouched by all this.
        assert_eq!(r.getattr(f).unwrap().size, 3);
    }

    #[test]
    fn an_open_version_stays_readable_and_counted_after_its_file_drops_it() {
        let r = router_with_first_ino(2);
        let f = put(&r, b"f", &crate::testdata::noise(100_000, 1));
        let control = r.lookup(ROOT_INO, CONTROL_NAME).unwrap().ino;
        let versions = r.lookup(control, b"versions").unwrap().ino;
        let history = r.lookup(versions, b"f").unwrap().ino;
        let v1 = r.lookup(history, b"1").unwrap().ino;
        let fh = r.open(v1, libc::O_RDONLY).unwrap();
        r.unlink(ROOT_INO, b"f").unwrap();
        r.forget(f, 1);
        assert!(r.fs().verify_store().ok);
        let mut out = Vec::new();
        while out.len() < 100_000 {
            let piece = r.read(v1, fh, out.len() as u64, 30_000).unwrap();
            assert!(!piece.is_empty());
            out.extend(piece.into_vec());
        }
        assert_eq!(out, crate::testdata::noise(100_000, 1));
        // Copied out to a real file.
        let (g, gfh) = r
            .create(ROOT_INO, b"g", 0o644, libc::O_RDWR, Caller::ROOT)
            .unwrap();
        let from = CopyEnd {
            ino: v1,
            fh,
            offset: 0,
        };
        let to = CopyEnd {
            ino: g.ino,
            fh: gfh,
            offset: 0,
        };
        assert_eq!(r.copy_file_range(from, to, 200_000), Ok(100_000));
        r.release(g.ino, gfh).unwrap();
        r.release(v1, fh).unwrap();
        assert_eq!(r.release(v1, fh), Err(Errno::EBADF));
        let check = r.fs().verify_store();
        assert!(check.ok, "{check:?}");
        assert_eq!(r.control().handle_count(), 0);
    }

    #[test]
    fn generated_files_read_whole_and_bypass_the_page_cache() {
        let r = router_with_first_ino(2);
        put(&r, b"f", b"x");
        let control = r.lookup(ROOT_INO, CONTROL_NAME).unwrap().ino;
        let stats = r.lookup(control, b"stats.json").unwrap().ino;
        assert!(r.direct_io(stats) && !r.direct_io(control));
        let fh = r.open(stats, libc::O_RDONLY).unwrap();
        let json = r.read(stats, fh, 0, 1 << 20).unwrap().into_vec();
        let s: crate::control::Stats = serde_json::from_slice(&json).unwrap();
        assert_eq!(s.files, 1);
        r.release(stats, fh).unwrap();
        // readdirplus holds what it hands out (not "." and ".."), as lookups do.
        let mut got = Vec::new();
        r.readdirplus(control, 0, |e, a| {
            got.push((e.name.clone(), a.ino == e.ino));
            false
        })
        .unwrap();
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|(_, same)| *same));
    }
}
