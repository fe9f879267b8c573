//! The core `Fs` (no kernel) against a plain reference model: random sequences of
//! operations, valid and invalid, where every result and errno must equal the model's, and
//! the model answers what Linux tmpfs answers for the same call:
//!
//! - names: "" → ENOENT; "." and ".." as the last component get what the VFS gives for that
//!   call (EEXIST to create, EISDIR to unlink, EINVAL/ENOTEMPTY to rmdir, EBUSY to rename);
//!   255 bytes is a fine name, 256 → ENAMETOOLONG. A name holding '/' can never exist:
//!   looking it up gives ENOENT and creating it EINVAL (the kernel never sends one);
//! - EEXIST, ENOENT, EISDIR, ENOTDIR, ENOTEMPTY, EPERM (link of a directory), EINVAL (a
//!   directory into its own subtree) in the order Linux checks them;
//! - offsets near 2^63: EFBIG from the largest file size on, short writes up to it;
//! - file contents (a sparse model), sizes, link counts, fallocate and hole punching.
//!
//! After each sequence the whole tree is compared, `verify_tree` and `verify_store` must
//! pass, and removing everything must empty the store.

use std::collections::BTreeMap;

use memfs::fs::{Caller, DirEntry, Errno, FileKind, Fs, FsConfig, RenameMode, SetAttr, ROOT_INO};
use proptest::prelude::*;

const MAX: u64 = i64::MAX as u64;
const EBUSY: Errno = Errno(libc::EBUSY);
const PAGE: u64 = 4096;

// ---------------------------------------------------------------------------------------
// Operations

#[derive(Clone, Debug)]
enum Name {
    /// n0..n2: names collide often.
    Pool(u8),
    /// A valid name of exactly 255 bytes.
    Long(u8),
    /// 256 bytes.
    TooLong,
    Empty,
    Dot,
    DotDot,
    Slash,
}

impl Name {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Name::Pool(n) => format!("n{n}").into_bytes(),
            Name::Long(n) => {
                let mut v = vec![b'L'; 254];
                v.push(b'0' + n);
                v
            }
            Name::TooLong => vec![b'x'; 256],
            Name::Empty => Vec::new(),
            Name::Dot => b".".to_vec(),
            Name::DotDot => b"..".to_vec(),
            Name::Slash => b"a/b".to_vec(),
        }
    }
}

#[derive(Clone, Debug)]
enum Off {
    Small(u32),
    /// MAX plus this (may be past MAX, which no syscall can ask for but the core must
    /// refuse).
    Huge(i32),
}

impl Off {
    fn get(&self) -> u64 {
        match *self {
            Off::Small(x) => x as u64 % 300_000,
            Off::Huge(d) => (MAX as i128 + d as i128) as u64,
        }
    }
}

/// Directories are chosen by index into the model's directories (sorted by path).
type D = u8;

#[derive(Clone, Debug)]
enum Op {
    Mknod(D, Name),
    Mkdir(D, Name),
    Symlink(D, Name),
    /// O_CREAT (| O_EXCL).
    Create(D, Name, bool),
    Unlink(D, Name),
    Rmdir(D, Name),
    Rename(D, Name, D, Name, u8),
    Link(D, Name, D, Name),
    Lookup(D, Name),
    Write(D, Name, Off, u32, u8),
    Read(D, Name, Off, u32),
    Truncate(D, Name, Off),
    Fallocate(D, Name, Off, u32, u8),
    Readlink(D, Name),
}

fn name() -> impl Strategy<Value = Name> {
    prop_oneof![
        40 => (0u8..3).prop_map(Name::Pool),
        1 => (0u8..2).prop_map(Name::Long),
        1 => Just(Name::TooLong),
        1 => Just(Name::Empty),
        1 => Just(Name::Dot),
        1 => Just(Name::DotDot),
        1 => Just(Name::Slash),
    ]
}

fn off() -> impl Strategy<Value = Off> {
    prop_oneof![
        6 => any::<u32>().prop_map(Off::Small),
        1 => (-70_000i32..70_000).prop_map(Off::Huge),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let d = || 0u8..8;
    prop_oneof![
        3 => (d(), name()).prop_map(|(d, n)| Op::Mknod(d, n)),
        3 => (d(), name()).prop_map(|(d, n)| Op::Mkdir(d, n)),
        1 => (d(), name()).prop_map(|(d, n)| Op::Symlink(d, n)),
        3 => (d(), name(), any::<bool>()).prop_map(|(d, n, x)| Op::Create(d, n, x)),
        3 => (d(), name()).prop_map(|(d, n)| Op::Unlink(d, n)),
        2 => (d(), name()).prop_map(|(d, n)| Op::Rmdir(d, n)),
        5 => (d(), name(), d(), name(), 0u8..3).prop_map(|(a, n, b, m, f)| Op::Rename(a, n, b, m, f)),
        2 => (d(), name(), d(), name()).prop_map(|(a, n, b, m)| Op::Link(a, n, b, m)),
        2 => (d(), name()).prop_map(|(d, n)| Op::Lookup(d, n)),
        5 => (d(), name(), off(), 1u32..70_000, any::<u8>())
            .prop_map(|(d, n, o, l, s)| Op::Write(d, n, o, l, s)),
        3 => (d(), name(), off(), 0u32..70_000).prop_map(|(d, n, o, l)| Op::Read(d, n, o, l)),
        2 => (d(), name(), off()).prop_map(|(d, n, o)| Op::Truncate(d, n, o)),
        2 => (d(), name(), off(), 0u32..70_000, 0u8..5)
            .prop_map(|(d, n, o, l, m)| Op::Fallocate(d, n, o, l, m)),
        1 => (d(), name()).prop_map(|(d, n)| Op::Readlink(d, n)),
    ]
}

fn pattern(len: u32, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31).wrapping_add(i >> 9) as u8) ^ seed)
        .collect()
}

const FALLOC_MODES: [i32; 5] = [
    0,
    libc::FALLOC_FL_KEEP_SIZE,
    libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
    libc::FALLOC_FL_PUNCH_HOLE,
    libc::FALLOC_FL_ZERO_RANGE,
];

/// What an operation returned, beyond success.
#[derive(Clone, Debug, PartialEq)]
enum Out {
    Done,
    Found(FileKind, u32, u64),
    Bytes(Vec<u8>),
    Wrote(u32),
    Target(Vec<u8>),
    /// Not compared (an open of a symlink: the kernel would have followed it).
    Skipped,
}

type Res = Result<Out, Errno>;

// ---------------------------------------------------------------------------------------
// The model

/// A sparse file content.
#[derive(Clone, Debug, Default)]
struct Content {
    size: u64,
    pages: BTreeMap<u64, Vec<u8>>,
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

    fn read(&self, off: u64, len: u64) -> Vec<u8> {
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
struct Node {
    kind: FileKind,
    nlink: u32,
    content: Content,
    target: Vec<u8>,
}

type Path = Vec<Vec<u8>>;

#[derive(Clone, Debug, Default)]
struct Model {
    paths: BTreeMap<Path, usize>,
    nodes: Vec<Node>,
}

/// What the last component of a path is.
enum Last {
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

fn join(dir: &Path, name: &[u8]) -> Path {
    let mut p = dir.clone();
    p.push(name.to_vec());
    p
}

fn is_prefix(a: &Path, b: &Path) -> bool {
    b.len() >= a.len() && b[..a.len()] == a[..]
}

impl Model {
    fn new() -> Model {
        Model::default()
    }

    /// Directories, sorted by path; the root (the empty path) first.
    fn dirs(&self) -> Vec<Path> {
        let mut out = vec![Vec::new()];
        out.extend(
            self.paths
                .iter()
                .filter(|(_, &n)| self.nodes[n].kind == FileKind::Directory)
                .map(|(p, _)| p.clone()),
        );
        out
    }

    fn kind_at(&self, p: &Path) -> Option<FileKind> {
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

    fn found(&self, p: &Path) -> Out {
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

    fn apply(&mut self, op: &Op, dirs: &[Path]) -> Res {
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
        Ok(Out::Done)
    }
}

fn symlink_target(n: &Name) -> Vec<u8> {
    format!("target-of-{n:?}").into_bytes()
}

// ---------------------------------------------------------------------------------------
// The core, driven the way the kernel drives it

struct Core {
    fs: Fs,
    /// Kernel references taken during one operation, dropped at its end.
    refs: Vec<u64>,
}

const WHO: Caller = Caller::ROOT;

impl Core {
    fn lookup(&mut self, dir: u64, name: &[u8]) -> Result<memfs::fs::Attr, Errno> {
        let attr = self.fs.lookup(dir, name)?;
        self.refs.push(attr.ino);
        Ok(attr)
    }

    fn resolve_dir(&mut self, path: &Path) -> u64 {
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
    fn with_file<T>(
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

    fn apply(&mut self, op: &Op, dirs: &[Path], model: &Model) -> Res {
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
                let mode = [
                    RenameMode::Replace,
                    RenameMode::NoReplace,
                    RenameMode::Exchange,
                ][*mode as usize];
                self.fs
                    .rename(sp, &sn.bytes(), dp, &dn.bytes(), mode)
                    .map(|_| Out::Done)
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

// ---------------------------------------------------------------------------------------
// Whole-tree comparison

/// The entries of directory `ino`, after `.` and `..` (cookies 1 and 2).
fn entries(fs: &Fs, ino: u64) -> Vec<DirEntry> {
    let mut out = Vec::new();
    fs.readdir(ino, 2, |e| {
        out.push(e.clone());
        false
    })
    .unwrap();
    out
}

/// Every path below `ino` in the core, with (kind, nlink, size).
fn core_tree(fs: &Fs, ino: u64, prefix: &Path, out: &mut BTreeMap<Path, (FileKind, u32, u64)>) {
    for e in entries(fs, ino) {
        let path = join(prefix, &e.name);
        let a = fs.getattr(e.ino).unwrap();
        let size = if a.kind == FileKind::Directory {
            0
        } else {
            a.size
        };
        out.insert(path.clone(), (a.kind, a.nlink, size));
        if e.kind == FileKind::Directory {
            core_tree(fs, e.ino, &path, out);
        }
    }
}

fn compare_trees(core: &mut Core, model: &Model) {
    let mut got = BTreeMap::new();
    core_tree(&core.fs, ROOT_INO, &Vec::new(), &mut got);
    let want: BTreeMap<Path, (FileKind, u32, u64)> = model
        .paths
        .keys()
        .map(|p| match model.found(p) {
            Out::Found(k, n, s) => (p.clone(), (k, n, s)),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(got, want, "the trees differ");
    // Contents: every page the model holds, and the first and last bytes.
    for (p, &n) in &model.paths {
        let node = &model.nodes[n];
        if node.kind != FileKind::Regular {
            continue;
        }
        let dir = core.resolve_dir(&p[..p.len() - 1].to_vec());
        let c = &node.content;
        let mut ranges: Vec<(u64, u64)> = c.pages.keys().map(|k| (k * PAGE, PAGE)).collect();
        ranges.push((0, 8192));
        ranges.push((c.size.saturating_sub(8192), 8192));
        let got: Vec<Vec<u8>> = core
            .with_file(dir, p.last().unwrap(), libc::O_RDONLY, |fs, fh| {
                ranges
                    .iter()
                    .map(|&(o, l)| fs.read(fh, o, l as u32))
                    .collect()
            })
            .unwrap();
        for ((o, l), bytes) in ranges.iter().zip(got) {
            assert!(bytes == c.read(*o, *l), "content of {p:?} at {o} differs");
        }
        for ino in core.refs.drain(..) {
            core.fs.forget(ino, 1);
        }
    }
}

/// Removes everything below `ino`.
fn remove_all(fs: &Fs, ino: u64) {
    for e in entries(fs, ino) {
        if e.kind == FileKind::Directory {
            remove_all(fs, e.ino);
            fs.rmdir(ino, &e.name).unwrap();
        } else {
            fs.unlink(ino, &e.name).unwrap();
        }
    }
}

/// Runs `ops` on the core and the model, which must agree; `expect`, when not empty, gives
/// each op's errno (`None`: success).
fn run(ops: &[Op], expect: &[Option<i32>]) {
    let mut model = Model::new();
    let mut core = Core {
        fs: Fs::new(FsConfig::default()),
        refs: Vec::new(),
    };
    for (i, op) in ops.iter().enumerate() {
        let dirs = model.dirs();
        let got = core.apply(op, &dirs, &model);
        let want = model.apply(op, &dirs);
        let show = |r: &Res| match r {
            Ok(Out::Bytes(b)) => format!("Ok({} bytes)", b.len()),
            Err(e) => format!("Err({})", e.name()),
            r => format!("{r:?}"),
        };
        assert!(
            got == want || want == Ok(Out::Skipped),
            "op {i} {op:?}: core {} model {}",
            show(&got),
            show(&want)
        );
        if let Some(want) = expect.get(i) {
            assert_eq!(
                got.as_ref().err().map(|e| e.0),
                *want,
                "op {i} {op:?}: {}",
                show(&got)
            );
        }
        if let Err(e) = core.fs.verify_tree() {
            panic!("after op {i} {op:?}: {e}");
        }
    }
    compare_trees(&mut core, &model);
    let check = core.fs.verify_store();
    assert!(check.ok, "store: {check:?}");
    remove_all(&core.fs, ROOT_INO);
    let check = core.fs.verify_store();
    assert!(
        check.ok && check.blobs == 0,
        "store after removing all: {check:?}"
    );
    assert_eq!(core.fs.inode_count(), 1, "inodes left after removing all");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn core_answers_as_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops, &[]);
    }
}

/// Each error case named in the module docs once, with the result Linux gives, so they run
/// even when the random search misses one. `None` is success.
#[test]
fn every_named_error_case() {
    use Name::*;
    let e = |n: i32| Some(n);
    let steps: Vec<(Op, Option<i32>)> = vec![
        (Op::Mkdir(0, Pool(0)), None), // /n0; directories: / /n0
        (Op::Mkdir(1, Pool(1)), None), // /n0/n1; directories: / /n0 /n0/n1
        (Op::Mknod(0, Pool(2)), None), // /n2
        (Op::Mknod(0, Long(0)), None), // 255 bytes is a name
        (Op::Mknod(0, TooLong), e(libc::ENAMETOOLONG)),
        (Op::Lookup(0, TooLong), e(libc::ENAMETOOLONG)),
        (Op::Mknod(0, Empty), e(libc::ENOENT)),
        (Op::Mknod(0, Dot), e(libc::EEXIST)),
        (Op::Mkdir(0, DotDot), e(libc::EEXIST)),
        (Op::Mknod(0, Slash), e(libc::EINVAL)),
        (Op::Unlink(0, Slash), e(libc::ENOENT)),
        (Op::Lookup(1, Dot), None),
        (Op::Lookup(1, DotDot), None),
        (Op::Unlink(1, Dot), e(libc::EISDIR)),
        (Op::Rmdir(1, Dot), e(libc::EINVAL)),
        (Op::Rmdir(1, DotDot), e(libc::ENOTEMPTY)),
        (Op::Rename(1, Dot, 0, Pool(3), 0), e(libc::EBUSY)),
        (Op::Rename(0, Pool(2), 1, DotDot, 1), e(libc::EEXIST)),
        (Op::Link(0, Pool(2), 1, Dot), e(libc::EEXIST)),
        (Op::Create(1, Dot, false), e(libc::EISDIR)),
        (Op::Create(1, DotDot, true), e(libc::EEXIST)),
        (Op::Write(0, Pool(2), Off::Huge(0), 10, 1), e(libc::EFBIG)),
        (Op::Write(0, Pool(2), Off::Huge(-4), 10, 1), None), // a short write of 4 bytes
        (Op::Truncate(0, Pool(2), Off::Huge(1)), e(libc::EFBIG)),
        (
            Op::Fallocate(0, Pool(2), Off::Huge(-10), 11, 0),
            e(libc::EFBIG),
        ),
        (
            Op::Fallocate(0, Pool(2), Off::Small(0), 0, 0),
            e(libc::EINVAL),
        ),
        (
            Op::Fallocate(0, Pool(2), Off::Huge(-10), 11, 3),
            e(libc::EOPNOTSUPP),
        ),
        (Op::Read(0, Pool(2), Off::Huge(-8), 100), None),
        (Op::Truncate(0, Pool(2), Off::Small(100)), None),
        (Op::Rename(0, Pool(0), 2, Pool(3), 0), e(libc::EINVAL)), // into its own child
        (Op::Rmdir(0, Pool(0)), e(libc::ENOTEMPTY)),
        (Op::Unlink(0, Pool(0)), e(libc::EISDIR)),
        (Op::Rmdir(0, Pool(2)), e(libc::ENOTDIR)),
        (Op::Mknod(0, Pool(2)), e(libc::EEXIST)),
        (Op::Mkdir(0, Pool(2)), e(libc::EEXIST)),
        (Op::Unlink(0, Pool(3)), e(libc::ENOENT)),
        (Op::Lookup(0, Pool(3)), e(libc::ENOENT)),
        (Op::Link(0, Pool(0), 0, Pool(3)), e(libc::EPERM)),
        (Op::Link(0, Pool(0), 0, Pool(2)), e(libc::EEXIST)), // checked before EPERM
        (Op::Rename(0, Pool(2), 0, Pool(0), 0), e(libc::EISDIR)), // file over directory
        (Op::Mkdir(0, Pool(3)), None),                       // directories: / /n0 /n0/n1 /n3
        (Op::Rename(0, Pool(3), 0, Pool(2), 0), e(libc::ENOTDIR)), // directory over file
        (Op::Rename(0, Pool(3), 0, Pool(0), 0), e(libc::ENOTEMPTY)), // over a non-empty one
        (Op::Mknod(2, Pool(0)), None),                       // /n0/n1/n0
        (Op::Rename(2, Pool(0), 0, Pool(0), 0), e(libc::ENOTEMPTY)), // over its ancestor
        (Op::Link(0, Pool(2), 0, Pool(1)), None),            // /n1 and /n2: one file
        (Op::Rename(0, Pool(2), 0, Pool(1), 1), e(libc::EEXIST)), // NOREPLACE, same file
        (Op::Rename(0, Pool(2), 0, Pool(1), 0), None),       // the same file: nothing happens
        (Op::Rename(0, Pool(3), 3, TooLong, 0), e(libc::ENAMETOOLONG)),
        (Op::Rename(3, Pool(0), 0, TooLong, 0), e(libc::ENOENT)), // the source first
        (Op::Rename(0, Pool(0), 0, Pool(3), 2), None),            // exchange /n0 and /n3
        (Op::Rmdir(0, Pool(3)), e(libc::ENOTEMPTY)),
        (Op::Rmdir(0, Pool(0)), None),
    ];
    let (ops, want): (Vec<Op>, Vec<Option<i32>>) = steps.into_iter().unzip();
    run(&ops, &want);
}
