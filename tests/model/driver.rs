//! The core, driven the way the kernel drives it: a lookup for each path component, an
//! open handle for each file op, and every reference forgotten at the end of the op.

use memfs::fs::{Caller, Errno, FileKind, Fs, RenameMode, SetAttr, ROOT_INO};

use crate::ops::{pattern, symlink_target, Op, Out, Res, D, FALLOC_MODES};
use crate::reference::{join, Model, Path};

pub(crate) struct Core {
    pub(crate) fs: Fs,
    /// Kernel references taken during one operation, dropped at its end.
    pub(crate) refs: Vec<u64>,
}

const WHO: Caller = Caller::ROOT;

impl Core {
    fn lookup(&mut self, dir: u64, name: &[u8]) -> Result<memfs::fs::Attr, Errno> {
        let attr = self.fs.lookup(dir, name)?;
        self.refs.push(attr.ino);
        Ok(attr)
    }

    pub(crate) fn resolve_dir(&mut self, path: &Path) -> u64 {
        let mut ino = ROOT_INO;
        for c in path {
            ino = self
                .lookup(ino, c)
                .unwrap_or_else(|e| panic!("core lost directory {path:?}: {e:?}"))
                .ino;
        }
        ino
    }

    fn took(&mut self, r: Result<memfs::fs::Attr, Errno>) -> Res {
        let attr = r?;
        self.refs.push(attr.ino);
        Ok(Out::Done)
    }

    /// Runs a file op on an open handle, then closes it.
    pub(crate) fn with_file<T>(
        &mut self,
        dir: u64,
        name: &[u8],
        flags: i32,
        f: impl FnOnce(&Fs, u64) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let attr = self.lookup(dir, name)?;
        let fh = self.fs.open(attr.ino, flags)?;
        let r = f(&self.fs, fh);
        self.fs.flush(fh).unwrap();
        self.fs.release(fh).unwrap();
        r
    }

    pub(crate) fn apply(&mut self, op: &Op, dirs: &[Path], model: &Model) -> Res {
        let r = self.apply_op(op, dirs, model);
        for ino in self.refs.drain(..) {
            self.fs.forget(ino, 1);
        }
        r
    }

    fn apply_op(&mut self, op: &Op, dirs: &[Path], model: &Model) -> Res {
        let dir = |s: &mut Core, d: &D| s.resolve_dir(&dirs[*d as usize % dirs.len()]);
        match op {
            Op::Mknod(d, n) => {
                let p = dir(self, d);
                let r = self.fs.mknod(p, &n.bytes(), libc::S_IFREG | 0o644, 0, WHO);
                self.took(r)
            }
            Op::Mkdir(d, n) => {
                let p = dir(self, d);
                let r = self.fs.mkdir(p, &n.bytes(), 0o755, WHO);
                self.took(r)
            }
            Op::Symlink(d, n) => {
                let p = dir(self, d);
                let r = self.fs.symlink(p, &n.bytes(), &symlink_target(n), WHO);
                self.took(r)
            }
            Op::Create(d, n, excl) => {
                let path = join(&dirs[*d as usize % dirs.len()], &n.bytes());
                if model.kind_at(&path) == Some(FileKind::Symlink) && !excl {
                    return Ok(Out::Skipped);
                }
                let p = dir(self, d);
                let flags = libc::O_CREAT | libc::O_RDWR | if *excl { libc::O_EXCL } else { 0 };
                let (attr, fh) = self.fs.create(p, &n.bytes(), 0o644, flags, WHO)?;
                self.refs.push(attr.ino);
                self.fs.release(fh).unwrap();
                Ok(Out::Done)
            }
            Op::Unlink(d, n) => {
                let p = dir(self, d);
                self.fs.unlink(p, &n.bytes()).map(|_| Out::Done)
            }
            Op::Rmdir(d, n) => {
                let p = dir(self, d);
                self.fs.rmdir(p, &n.bytes()).map(|_| Out::Done)
            }
            Op::Link(sd, sn, dd, dn) => {
                let sp = dir(self, sd);
                let dp = dir(self, dd);
                let src = self.lookup(sp, &sn.bytes())?;
                let r = self.fs.link(src.ino, dp, &dn.bytes());
                self.took(r)
            }
            Op::Rename(sd, sn, dd, dn, mode) => {
                let sp = dir(self, sd);
                let dp = dir(self, dd);
                let (sn, dn) = (sn.bytes(), dn.bytes());
                let renamed = match mode {
                    0 => self.fs.rename(sp, &sn, dp, &dn, RenameMode::Replace),
                    1 => self.fs.rename(sp, &sn, dp, &dn, RenameMode::NoReplace),
                    2 => self.fs.rename(sp, &sn, dp, &dn, RenameMode::Exchange),
                    // RENAME_WHITEOUT, as overlayfs asks.
                    _ => self
                        .fs
                        .rename_whiteout(sp, &sn, dp, &dn, RenameMode::Replace, WHO),
                };
                renamed.map(|_| Out::Done)
            }
            Op::Lookup(d, n) => {
                let p = dir(self, d);
                let a = self.lookup(p, &n.bytes())?;
                let size = if a.kind == FileKind::Directory {
                    0
                } else {
                    a.size
                };
                Ok(Out::Found(a.kind, a.nlink, size))
            }
            Op::Readlink(d, n) => {
                let p = dir(self, d);
                let a = self.lookup(p, &n.bytes())?;
                self.fs.readlink(a.ino).map(Out::Target)
            }
            Op::Write(d, n, off, len, seed) => {
                let p = dir(self, d);
                if !self.is_file(p, &n.bytes())? {
                    return Ok(Out::Skipped);
                }
                let bytes = pattern(*len, *seed);
                self.with_file(p, &n.bytes(), libc::O_RDWR, |fs, fh| {
                    fs.write(fh, off.get(), &bytes).map(Out::Wrote)
                })
            }
            Op::Read(d, n, off, len) => {
                let p = dir(self, d);
                if !self.is_file(p, &n.bytes())? {
                    return Ok(Out::Skipped);
                }
                self.with_file(p, &n.bytes(), libc::O_RDONLY, |fs, fh| {
                    fs.read(fh, off.get(), *len).map(Out::Bytes)
                })
            }
            Op::Truncate(d, n, size) => {
                let p = dir(self, d);
                if !self.is_file(p, &n.bytes())? {
                    return Ok(Out::Skipped);
                }
                let a = self.lookup(p, &n.bytes())?;
                let set = SetAttr {
                    size: Some(size.get()),
                    ..SetAttr::default()
                };
                self.fs.setattr(a.ino, &set).map(|_| Out::Done)
            }
            Op::Fallocate(d, n, off, len, mode) => {
                let p = dir(self, d);
                if !self.is_file(p, &n.bytes())? {
                    return Ok(Out::Skipped);
                }
                let mode = FALLOC_MODES[*mode as usize];
                self.with_file(p, &n.bytes(), libc::O_RDWR, |fs, fh| {
                    fs.fallocate(fh, off.get(), *len as u64, mode)
                        .map(|_| Out::Done)
                })
            }
        }
    }

    /// Whether `dir/name` is a regular file (file ops on others are not compared).
    fn is_file(&mut self, dir: u64, name: &[u8]) -> Result<bool, Errno> {
        Ok(self.lookup(dir, name)?.kind == FileKind::Regular)
    }
}
