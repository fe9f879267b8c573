//! The reference model: a plain tree of paths and a sparse content per file, answering
//! each operation as Linux tmpfs does.

use std::collections::BTreeMap;

use memfs::fs::{Errno, FileKind};

use crate::ops::{pattern, symlink_target, Op, Out, Res, D, FALLOC_MODES, MAX};

const EBUSY: Errno = Errno(libc::EBUSY);
pub(crate) const PAGE: u64 = 4096;

/// A sparse file content.
#[derive(Clone, Debug, Default)]
pub(crate) struct Content {
    pub(crate) size: u64,
    pub(crate) pages: BTreeMap<u64, Vec<u8>>,
}

impl Content {
    fn write(&mut self, off: u64, data: &[u8]) {
        let mut at = off;
        let mut rest = data;
        while !rest.is_empty() {
            let page = self
                .pages
                .entry(at / PAGE)
                .or_insert_with(|| vec![0; PAGE as usize]);
            let start = (at % PAGE) as usize;
            let n = rest.len().min(PAGE as usize - start);
            page[start..start + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            at += n as u64;
        }
        self.size = self.size.max(off + data.len() as u64);
    }

    fn zero(&mut self, from: u64, to: u64) {
        let first = from / PAGE;
        let keys: Vec<u64> = self.pages.range(first..).map(|(k, _)| *k).collect();
        for k in keys {
            let (ps, pe) = (k * PAGE, k * PAGE + PAGE);
            if ps >= to {
                break;
            }
            let page = self.pages.get_mut(&k).unwrap();
            let (a, b) = (from.max(ps) - ps, to.min(pe) - ps);
            page[a as usize..b as usize].fill(0);
        }
    }

    fn truncate(&mut self, size: u64) {
        if size < self.size {
            self.zero(size, self.size);
            self.pages.retain(|k, _| k * PAGE < size);
        }
        self.size = size;
    }

    pub(crate) fn read(&self, off: u64, len: u64) -> Vec<u8> {
        let n = len.min(self.size.saturating_sub(off));
        let mut out = vec![0u8; n as usize];
        for (k, page) in self.pages.range(off / PAGE..) {
            let ps = k * PAGE;
            if ps >= off + n {
                break;
            }
            let (a, b) = (off.max(ps), (off + n).min(ps + PAGE));
            out[(a - off) as usize..(b - off) as usize]
                .copy_from_slice(&page[(a - ps) as usize..(b - ps) as usize]);
        }
        out
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: FileKind,
    pub(crate) nlink: u32,
    pub(crate) content: Content,
    pub(crate) target: Vec<u8>,
}

pub(crate) type Path = Vec<Vec<u8>>;

#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    pub(crate) paths: BTreeMap<Path, usize>,
    pub(crate) nodes: Vec<Node>,
}

/// What the last component of a path is.
pub(crate) enum Last {
    Normal,
    TooLong,
    Empty,
    Dot,
    DotDot,
    /// Holds '/' or NUL: never a name.
    Invalid,
}

fn classify(name: &[u8]) -> Last {
    if name.len() > 255 {
        Last::TooLong
    } else if name.is_empty() {
        Last::Empty
    } else if name == b"." {
        Last::Dot
    } else if name == b".." {
        Last::DotDot
    } else if name.contains(&b'/') || name.contains(&0) {
        Last::Invalid
    } else {
        Last::Normal
    }
}

pub(crate) fn join(dir: &Path, name: &[u8]) -> Path {
    let mut p = dir.clone();
    p.push(name.to_vec());
    p
}

fn is_prefix(a: &Path, b: &Path) -> bool {
    b.len() >= a.len() && b[..a.len()] == a[..]
}

impl Model {
    pub(crate) fn new() -> Model {
        Model::default()
    }

    /// Directories, sorted by path; the root (the empty path) first.
    pub(crate) fn dirs(&self) -> Vec<Path> {
        let mut out = vec![Vec::new()];
        out.extend(
            self.paths
                .iter()
                .filter(|(_, &n)| self.nodes[n].kind == FileKind::Directory)
                .map(|(p, _)| p.clone()),
        );
        out
    }

    pub(crate) fn kind_at(&self, p: &Path) -> Option<FileKind> {
        if p.is_empty() {
            return Some(FileKind::Directory);
        }
        self.paths.get(p).map(|&n| self.nodes[n].kind)
    }

    fn is_empty_dir(&self, p: &Path) -> bool {
        !self
            .paths
            .range(p.clone()..)
            .filter(|(q, _)| *q != p)
            .take(1)
            .any(|(q, _)| is_prefix(p, q))
    }

    fn subdirs(&self, p: &Path) -> u32 {
        self.paths
            .range(p.clone()..)
            .take_while(|(q, _)| is_prefix(p, q))
            .filter(|(q, &n)| q.len() == p.len() + 1 && self.nodes[n].kind == FileKind::Directory)
            .count() as u32
    }

    /// The path `dir/name` resolves to, as a path walk would (dots included).
    fn resolve(&self, dir: &Path, name: &[u8]) -> Result<Path, Errno> {
        match classify(name) {
            Last::TooLong => Err(Errno::ENAMETOOLONG),
            Last::Empty | Last::Invalid => Err(Errno::ENOENT),
            Last::Dot => Ok(dir.clone()),
            Last::DotDot => Ok(dir[..dir.len().saturating_sub(1)].to_vec()),
            Last::Normal => {
                let p = join(dir, name);
                self.paths
                    .contains_key(&p)
                    .then_some(p)
                    .ok_or(Errno::ENOENT)
            }
        }
    }

    pub(crate) fn found(&self, p: &Path) -> Out {
        match self.paths.get(p) {
            None => Out::Found(FileKind::Directory, 2 + self.subdirs(p), 0),
            Some(&n) => {
                let node = &self.nodes[n];
                match node.kind {
                    FileKind::Directory => Out::Found(node.kind, 2 + self.subdirs(p), 0),
                    FileKind::Symlink => {
                        Out::Found(node.kind, node.nlink, node.target.len() as u64)
                    }
                    _ => Out::Found(node.kind, node.nlink, node.content.size),
                }
            }
        }
    }

    /// Checks a name for a new entry the way `mkdir`, `mknod`, `symlink` and `link` see it.
    fn new_name(&self, dir: &Path, name: &[u8]) -> Result<Path, Errno> {
        match classify(name) {
            Last::TooLong => Err(Errno::ENAMETOOLONG),
            Last::Empty => Err(Errno::ENOENT),
            Last::Dot | Last::DotDot => Err(Errno::EEXIST),
            Last::Invalid => Err(Errno::EINVAL),
            Last::Normal => {
                let p = join(dir, name);
                if self.paths.contains_key(&p) {
                    Err(Errno::EEXIST)
                } else {
                    Ok(p)
                }
            }
        }
    }

    fn add(&mut self, p: Path, kind: FileKind, target: Vec<u8>) {
        self.nodes.push(Node {
            kind,
            nlink: 1,
            content: Content::default(),
            target,
        });
        self.paths.insert(p, self.nodes.len() - 1);
    }

    /// Moves the entry at `from` (and everything below it) to `to`.
    fn take_subtree(&mut self, from: &Path) -> Vec<(Path, usize)> {
        let keys: Vec<Path> = self
            .paths
            .range(from.clone()..)
            .take_while(|(q, _)| is_prefix(from, q))
            .map(|(q, _)| q.clone())
            .collect();
        keys.into_iter()
            .map(|k| {
                let n = self.paths.remove(&k).unwrap();
                (k[from.len()..].to_vec(), n)
            })
            .collect()
    }

    fn put_subtree(&mut self, to: &Path, tree: Vec<(Path, usize)>) {
        for (rest, n) in tree {
            let mut p = to.clone();
            p.extend(rest);
            self.paths.insert(p, n);
        }
    }

    /// A file op's target: a regular file, or `None` when the op is not compared.
    fn file_target(&self, dir: &Path, name: &[u8]) -> Result<Option<usize>, Errno> {
        let p = self.resolve(dir, name)?;
        match self.paths.get(&p) {
            Some(&n) if self.nodes[n].kind == FileKind::Regular => Ok(Some(n)),
            _ => Ok(None),
        }
    }

    pub(crate) fn apply(&mut self, op: &Op, dirs: &[Path]) -> Res {
        let dir = |d: &D| &dirs[*d as usize % dirs.len()];
        match op {
            Op::Mknod(d, n) | Op::Mkdir(d, n) | Op::Symlink(d, n) => {
                let p = self.new_name(dir(d), &n.bytes())?;
                let (kind, target) = match op {
                    Op::Mknod(..) => (FileKind::Regular, Vec::new()),
                    Op::Mkdir(..) => (FileKind::Directory, Vec::new()),
                    _ => (FileKind::Symlink, symlink_target(n)),
                };
                self.add(p, kind, target);
                Ok(Out::Done)
            }
            Op::Create(d, n, excl) => {
                let name = n.bytes();
                match classify(&name) {
                    Last::TooLong => return Err(Errno::ENAMETOOLONG),
                    Last::Empty => return Err(Errno::ENOENT),
                    Last::Dot | Last::DotDot if *excl => return Err(Errno::EEXIST),
                    Last::Dot | Last::DotDot => return Err(Errno::EISDIR),
                    Last::Invalid => return Err(Errno::EINVAL),
                    Last::Normal => {}
                }
                let p = join(dir(d), &name);
                match self.kind_at(&p) {
                    None => {
                        self.add(p, FileKind::Regular, Vec::new());
                        Ok(Out::Done)
                    }
                    Some(_) if *excl => Err(Errno::EEXIST),
                    Some(FileKind::Directory) => Err(Errno::EISDIR),
                    // A whiteout (0:0) opens no device, as on Linux.
                    Some(FileKind::CharDevice) => Err(Errno::ENXIO),
                    Some(FileKind::Symlink) => Ok(Out::Skipped),
                    Some(_) => Ok(Out::Done),
                }
            }
            Op::Unlink(d, n) => {
                let name = n.bytes();
                let p = match classify(&name) {
                    Last::TooLong => return Err(Errno::ENAMETOOLONG),
                    Last::Empty | Last::Invalid => return Err(Errno::ENOENT),
                    Last::Dot | Last::DotDot => return Err(Errno::EISDIR),
                    Last::Normal => join(dir(d), &name),
                };
                match self.kind_at(&p) {
                    None => Err(Errno::ENOENT),
                    Some(FileKind::Directory) => Err(Errno::EISDIR),
                    Some(_) => {
                        let node = self.paths.remove(&p).unwrap();
                        self.nodes[node].nlink -= 1;
                        Ok(Out::Done)
                    }
                }
            }
            Op::Rmdir(d, n) => {
                let name = n.bytes();
                let p = match classify(&name) {
                    Last::TooLong => return Err(Errno::ENAMETOOLONG),
                    Last::Empty | Last::Invalid => return Err(Errno::ENOENT),
                    Last::Dot => return Err(Errno::EINVAL),
                    Last::DotDot => return Err(Errno::ENOTEMPTY),
                    Last::Normal => join(dir(d), &name),
                };
                match self.kind_at(&p) {
                    None => Err(Errno::ENOENT),
                    Some(FileKind::Directory) if !self.is_empty_dir(&p) => Err(Errno::ENOTEMPTY),
                    Some(FileKind::Directory) => {
                        self.paths.remove(&p);
                        Ok(Out::Done)
                    }
                    Some(_) => Err(Errno::ENOTDIR),
                }
            }
            Op::Link(sd, sn, dd, dn) => {
                let src = self.resolve(dir(sd), &sn.bytes())?;
                let p = self.new_name(dir(dd), &dn.bytes())?;
                if self.kind_at(&src) == Some(FileKind::Directory) {
                    return Err(Errno::EPERM);
                }
                let node = self.paths[&src];
                self.nodes[node].nlink += 1;
                self.paths.insert(p, node);
                Ok(Out::Done)
            }
            Op::Rename(sd, sn, dd, dn, mode) => {
                self.rename(dir(sd), &sn.bytes(), dir(dd), &dn.bytes(), *mode)
            }
            Op::Lookup(d, n) => {
                let p = self.resolve(dir(d), &n.bytes())?;
                Ok(self.found(&p))
            }
            Op::Readlink(d, n) => {
                let p = self.resolve(dir(d), &n.bytes())?;
                match self.paths.get(&p) {
                    Some(&n) if self.nodes[n].kind == FileKind::Symlink => {
                        Ok(Out::Target(self.nodes[n].target.clone()))
                    }
                    _ => Err(Errno::EINVAL),
                }
            }
            Op::Write(d, n, off, len, seed) => {
                let Some(node) = self.file_target(dir(d), &n.bytes())? else {
                    return Ok(Out::Skipped);
                };
                let off = off.get();
                // As generic_write_checks: EFBIG from the largest size on, short before it.
                if off >= MAX {
                    return Err(Errno::EFBIG);
                }
                let len = (*len as u64).min(MAX - off) as u32;
                self.nodes[node].content.write(off, &pattern(len, *seed));
                Ok(Out::Wrote(len))
            }
            Op::Read(d, n, off, len) => {
                let Some(node) = self.file_target(dir(d), &n.bytes())? else {
                    return Ok(Out::Skipped);
                };
                Ok(Out::Bytes(
                    self.nodes[node].content.read(off.get(), *len as u64),
                ))
            }
            Op::Truncate(d, n, size) => {
                let Some(node) = self.file_target(dir(d), &n.bytes())? else {
                    return Ok(Out::Skipped);
                };
                let size = size.get();
                if size > MAX {
                    return Err(Errno::EFBIG);
                }
                self.nodes[node].content.truncate(size);
                Ok(Out::Done)
            }
            Op::Fallocate(d, n, off, len, mode) => {
                let Some(node) = self.file_target(dir(d), &n.bytes())? else {
                    return Ok(Out::Skipped);
                };
                let (off, len, mode) = (off.get(), *len as u64, FALLOC_MODES[*mode as usize]);
                // vfs_fallocate's order, then shmem_fallocate's.
                if len == 0 {
                    return Err(Errno::EINVAL);
                }
                if mode & libc::FALLOC_FL_PUNCH_HOLE != 0 && mode & libc::FALLOC_FL_KEEP_SIZE == 0 {
                    return Err(Errno::EOPNOTSUPP);
                }
                if off.checked_add(len).is_none_or(|e| e > MAX) {
                    return Err(Errno::EFBIG);
                }
                let c = &mut self.nodes[node].content;
                match mode {
                    0 => {
                        if off + len > c.size {
                            c.truncate(off + len);
                        }
                    }
                    libc::FALLOC_FL_KEEP_SIZE => {}
                    m if m == libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE => {
                        let end = (off + len).min(c.size);
                        if off < end {
                            c.zero(off, end);
                        }
                    }
                    _ => return Err(Errno::EOPNOTSUPP),
                }
                Ok(Out::Done)
            }
        }
    }

    /// rename(2) as do_renameat2 and vfs_rename check it, in their order.
    fn rename(&mut self, sdir: &Path, sname: &[u8], ddir: &Path, dname: &[u8], mode: u8) -> Res {
        let (sl, dl) = (classify(sname), classify(dname));
        if matches!(sl, Last::Empty) || matches!(dl, Last::Empty) {
            return Err(Errno::ENOENT);
        }
        if matches!(sl, Last::Dot | Last::DotDot) {
            return Err(EBUSY);
        }
        if matches!(dl, Last::Dot | Last::DotDot) {
            return Err(if mode == 1 { Errno::EEXIST } else { EBUSY });
        }
        // The source is looked up first.
        let src = match sl {
            Last::TooLong => return Err(Errno::ENAMETOOLONG),
            Last::Invalid => return Err(Errno::ENOENT),
            _ => join(sdir, sname),
        };
        let Some(&snode) = self.paths.get(&src) else {
            return Err(Errno::ENOENT);
        };
        let dst = match dl {
            Last::TooLong => return Err(Errno::ENAMETOOLONG),
            Last::Invalid => return Err(Errno::EINVAL),
            _ => join(ddir, dname),
        };
        let dnode = self.paths.get(&dst).copied();
        match (mode, dnode) {
            (1, Some(_)) => return Err(Errno::EEXIST),
            (2, None) => return Err(Errno::ENOENT),
            _ => {}
        }
        let skind = self.nodes[snode].kind;
        let dkind = dnode.map(|n| self.nodes[n].kind);
        if sdir != ddir {
            // The source may not be an ancestor of the target's directory ...
            if is_prefix(&src, ddir) {
                return Err(Errno::EINVAL);
            }
            // ... nor the target of the source's.
            if dnode.is_some() && is_prefix(&dst, sdir) {
                return Err(if mode == 2 {
                    Errno::EINVAL
                } else {
                    Errno::ENOTEMPTY
                });
            }
        }
        if dnode == Some(snode) {
            return Ok(Out::Done);
        }
        if mode == 2 {
            let a = self.take_subtree(&src);
            let b = self.take_subtree(&dst);
            self.put_subtree(&dst, a);
            self.put_subtree(&src, b);
            return Ok(Out::Done);
        }
        if let Some(dkind) = dkind {
            match (skind == FileKind::Directory, dkind == FileKind::Directory) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.is_empty_dir(&dst) => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
            let n = self.paths.remove(&dst).unwrap();
            self.nodes[n].nlink -= 1;
        }
        let tree = self.take_subtree(&src);
        self.put_subtree(&dst, tree);
        if mode == 3 {
            // RENAME_WHITEOUT: a character device 0:0 is left at the old name.
            self.add(src, FileKind::CharDevice, Vec::new());
        }
        Ok(Out::Done)
    }
}
