//! The hidden, read-only control directory `.memfs` at the root of the mount:
//!
//! ```text
//! .memfs/stats.json                 store and memory statistics, made when read
//! .memfs/fsck                       a check of the store's reference counts, made when read
//! .memfs/versions/REL/PATH/N        version N of the file REL/PATH
//! ```
//!
//! `.memfs` is reachable by name but not listed in the root. Its inodes are virtual: numbers
//! from a reserved range that encode what they show, built on demand. Nothing below it can
//! be written (EROFS).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use super::attr::{Attr, FileKind};
use super::error::{Errno, Result};
use super::inode::Body;
use super::{Fs, ROOT_INO};
use crate::store::{Recipe, RecipeRef};

/// The name of the control directory in the root.
pub const CONTROL_NAME: &[u8] = b".memfs";
/// The virtual extended attribute of a regular file that lists its versions as JSON.
pub const VERSIONS_XATTR: &[u8] = b"user.memfs.versions";

/// Inode numbers at or above this are virtual.
const VIRTUAL_BASE: u64 = 1 << 59;
pub const CONTROL_INO: u64 = (1 << 62) | 1;
pub const STATS_INO: u64 = (1 << 62) | 2;
pub const FSCK_INO: u64 = (1 << 62) | 3;
/// `versions/...`: the mirror of real directory d is `MIRROR | d`.
const MIRROR: u64 = 1 << 61;
/// `versions/.../FILE`: the directory of file f's versions is `HISTORY | f`.
const HISTORY: u64 = 1 << 60;
/// `versions/.../FILE/N`: `VERSION | f << 20 | n`.
const VERSION: u64 = 1 << 59;
const VERSION_BITS: u32 = 20;

pub fn is_virtual(ino: u64) -> bool {
    ino >= VIRTUAL_BASE
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Node {
    Control,
    Stats,
    Fsck,
    Mirror(u64),
    History(u64),
    Version(u64, u64),
}

fn decode(ino: u64) -> Option<Node> {
    Some(match ino {
        CONTROL_INO => Node::Control,
        STATS_INO => Node::Stats,
        FSCK_INO => Node::Fsck,
        i if i & (1 << 62) != 0 => return None,
        i if i & MIRROR != 0 => Node::Mirror(i & !MIRROR),
        i if i & HISTORY != 0 => Node::History(i & !HISTORY),
        i if i & VERSION != 0 => {
            let rest = i & !VERSION;
            Node::Version(rest >> VERSION_BITS, rest & ((1 << VERSION_BITS) - 1))
        }
        _ => return None,
    })
}

fn version_ino(file: u64, n: u64) -> Option<u64> {
    (file < 1 << (59 - VERSION_BITS) && n < 1 << VERSION_BITS)
        .then_some(VERSION | file << VERSION_BITS | n)
}

/// What an open virtual file reads from.
#[derive(Debug)]
pub enum VirtualFile {
    Dir,
    Bytes(Vec<u8>),
    Version(RecipeRef),
}

/// One version of a file, as `memfs log` shows it.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct VersionInfo {
    pub version: u64,
    /// Commit time, seconds since the epoch.
    pub time: f64,
    pub size: u64,
    pub chunks: u64,
    /// Bytes of chunks this version added to the store.
    pub new_bytes: u64,
    /// `close`, `fsync` or `truncate`.
    pub cause: String,
}

/// What `.memfs/stats.json` holds.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Stats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// Sum of the sizes of the live files.
    pub logical_bytes: u64,
    /// Bytes written but not yet committed.
    pub dirty_bytes: u64,
    pub versions: u64,
    /// Sum of the sizes of all kept versions.
    pub version_bytes: u64,
    pub blobs: u64,
    /// Unique bytes held in blobs.
    pub stored_bytes: u64,
    /// Bytes all kept recipes refer to (what they would take without dedup, holes excluded).
    pub referenced_bytes: u64,
    /// referenced_bytes / stored_bytes.
    pub dedup_ratio: f64,
    /// Chunk count per log2 bucket of chunk size: key "2^k" counts sizes in [2^k, 2^(k+1)).
    pub chunk_size_histogram: std::collections::BTreeMap<String, u64>,
    /// Blob count per log2 bucket of reference count.
    pub refcount_histogram: std::collections::BTreeMap<String, u64>,
    /// Resident memory of the memfs process.
    pub rss_bytes: u64,
    pub rss_per_stored_byte: f64,
    pub chunker: String,
    pub keep_versions: usize,
    /// The cap on what memfs holds (`--max-memory`).
    #[serde(default)]
    pub capacity_bytes: u64,
    /// What memfs holds against the cap: stored and dirty bytes plus the metadata estimate.
    #[serde(default)]
    pub used_bytes: u64,
    /// The metadata part of `used_bytes` (inodes, names, xattrs, versions, blob overhead).
    #[serde(default)]
    pub metadata_bytes: u64,
    /// Old versions dropped to make room for new data.
    #[serde(default)]
    pub versions_dropped_for_space: u64,
}

fn log2_bucket(v: u64) -> String {
    format!("2^{}", 63 - v.max(1).leading_zeros())
}

/// Resident set size of this process, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64
}

fn seconds(t: SystemTime) -> f64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

impl Fs {
    fn virtual_attr(&self, ino: u64, kind: FileKind, size: u64, time: SystemTime) -> Attr {
        let (perm, nlink) = match kind {
            FileKind::Directory => (0o555, 2),
            _ => (0o444, 1),
        };
        Attr {
            ino,
            kind,
            perm,
            nlink,
            uid: self.config().uid,
            gid: self.config().gid,
            rdev: 0,
            size,
            blocks: size.div_ceil(512),
            atime: time,
            mtime: time,
            ctime: time,
            crtime: time,
        }
    }

    /// Attributes of a virtual inode.
    pub(super) fn control_attr(&self, ino: u64) -> Result<Attr> {
        let now = SystemTime::now();
        match decode(ino).ok_or(Errno::ENOENT)? {
            Node::Control => Ok(self.virtual_attr(ino, FileKind::Directory, 0, now)),
            Node::Stats | Node::Fsck => Ok(self.virtual_attr(ino, FileKind::Regular, 0, now)),
            Node::Mirror(dir) => {
                let real = self.getattr(dir)?;
                if real.kind != FileKind::Directory {
                    return Err(Errno::ENOENT);
                }
                Ok(self.virtual_attr(ino, FileKind::Directory, 0, real.mtime))
            }
            Node::History(file) => {
                let real = self.getattr(file)?;
                if real.kind != FileKind::Regular {
                    return Err(Errno::ENOENT);
                }
                Ok(self.virtual_attr(ino, FileKind::Directory, 0, real.mtime))
            }
            Node::Version(file, n) => {
                let inode = self.inode(file)?;
                let data = inode.data.read();
                let Body::File(f) = &data.body else {
                    return Err(Errno::ENOENT);
                };
                let v = f.history.get(n).ok_or(Errno::ENOENT)?;
                Ok(self.virtual_attr(ino, FileKind::Regular, v.size, v.time))
            }
        }
    }

    /// Looks `name` up in a virtual directory.
    pub(super) fn control_lookup(&self, parent: u64, name: &[u8]) -> Result<Attr> {
        let child = match decode(parent).ok_or(Errno::ENOENT)? {
            // One entry of the mirrored directory, not a listing of all of them.
            Node::Mirror(dir) => {
                let inode = self.inode(dir)?;
                let data = inode.data.read();
                let entry = data.dir()?.get(name).ok_or(Errno::ENOENT)?;
                match entry.kind {
                    FileKind::Directory => MIRROR | entry.ino,
                    FileKind::Regular => HISTORY | entry.ino,
                    _ => return Err(Errno::ENOENT),
                }
            }
            Node::History(file) => {
                let n: u64 = std::str::from_utf8(name)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .filter(|n: &u64| n.to_string().as_bytes() == name)
                    .ok_or(Errno::ENOENT)?;
                version_ino(file, n).ok_or(Errno::ENOENT)?
            }
            _ => {
                self.control_entries(parent)?
                    .into_iter()
                    .find(|(n, _, _)| n == name)
                    .ok_or(Errno::ENOENT)?
                    .1
            }
        };
        self.control_attr(child)
    }

    /// The entries of a virtual directory: name, inode, kind.
    pub(super) fn control_entries(&self, ino: u64) -> Result<Vec<(Vec<u8>, u64, FileKind)>> {
        match decode(ino).ok_or(Errno::ENOENT)? {
            Node::Control => Ok(vec![
                (b"stats.json".to_vec(), STATS_INO, FileKind::Regular),
                (b"fsck".to_vec(), FSCK_INO, FileKind::Regular),
                (b"versions".to_vec(), MIRROR | ROOT_INO, FileKind::Directory),
            ]),
            Node::Mirror(dir) => {
                let inode = self.inode(dir)?;
                let data = inode.data.read();
                Ok(data
                    .dir()?
                    .entries()
                    .filter_map(|e| match e.kind {
                        FileKind::Directory => Some((e.name.to_vec(), MIRROR | e.ino, e.kind)),
                        FileKind::Regular => {
                            Some((e.name.to_vec(), HISTORY | e.ino, FileKind::Directory))
                        }
                        _ => None,
                    })
                    .collect())
            }
            Node::History(file) => {
                let inode = self.inode(file)?;
                let data = inode.data.read();
                let Body::File(f) = &data.body else {
                    return Err(Errno::ENOENT);
                };
                Ok(f.history
                    .versions()
                    .filter_map(|v| {
                        let ino = version_ino(file, v.number)?;
                        Some((v.number.to_string().into_bytes(), ino, FileKind::Regular))
                    })
                    .collect())
            }
            Node::Stats | Node::Fsck | Node::Version(..) => Err(Errno::ENOTDIR),
        }
    }

    /// The parent of a virtual directory (for "..").
    pub(super) fn control_parent(&self, ino: u64) -> u64 {
        match decode(ino) {
            Some(Node::Mirror(ROOT_INO)) => CONTROL_INO,
            Some(Node::Mirror(dir)) => self
                .inode(dir)
                .map(|i| MIRROR | i.parent())
                .unwrap_or(CONTROL_INO),
            Some(Node::History(_)) => MIRROR | ROOT_INO,
            _ => ROOT_INO,
        }
    }

    /// Opens a virtual file (read-only) or directory.
    pub(super) fn control_open(&self, ino: u64, flags: i32) -> Result<u64> {
        if super::is_writable(flags) {
            return Err(Errno::EROFS);
        }
        let file = match decode(ino).ok_or(Errno::ENOENT)? {
            Node::Stats => {
                let mut json = serde_json::to_vec_pretty(&self.stats()).map_err(|_| Errno::EIO)?;
                json.push(b'\n');
                VirtualFile::Bytes(json)
            }
            Node::Fsck => {
                let check = self.verify_store();
                let mut json = serde_json::to_vec_pretty(&check).map_err(|_| Errno::EIO)?;
                json.push(b'\n');
                VirtualFile::Bytes(json)
            }
            Node::Version(file, n) => {
                let inode = self.inode(file)?;
                let data = inode.data.read();
                let Body::File(f) = &data.body else {
                    return Err(Errno::ENOENT);
                };
                // The reader holds its own references (a copy of the recipe), so the
                // store's counts see them and dropping the version meanwhile frees nothing
                // the reader still needs.
                let recipe = &f.history.get(n).ok_or(Errno::ENOENT)?.recipe;
                VirtualFile::Version(Arc::new(Recipe::clone(recipe)))
            }
            _ => VirtualFile::Dir,
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.virtual_handles.insert(fh, Arc::new(file));
        Ok(fh)
    }

    /// Reads from a virtual file handle; `None` when `fh` is not one.
    pub(super) fn control_read(&self, fh: u64, offset: u64, size: u32) -> Option<Vec<u8>> {
        let file = self.virtual_handles.get(&fh)?.value().clone();
        Some(match &*file {
            VirtualFile::Dir => Vec::new(),
            VirtualFile::Bytes(b) => {
                let start = (offset as usize).min(b.len());
                let end = start.saturating_add(size as usize).min(b.len());
                b[start..end].to_vec()
            }
            VirtualFile::Version(recipe) => {
                let end = offset.saturating_add(size as u64).min(recipe.size());
                let mut out = vec![0u8; end.saturating_sub(offset) as usize];
                recipe.read_into(offset, &mut out);
                out
            }
        })
    }

    /// Whether `fh` is a virtual handle; closes it if `close`.
    pub(super) fn control_handle(&self, fh: u64, close: bool) -> bool {
        if close {
            self.virtual_handles.remove(&fh).is_some()
        } else {
            self.virtual_handles.contains_key(&fh)
        }
    }

    /// Whether reads of `ino` must bypass the kernel's page cache (generated files).
    pub fn is_generated(&self, ino: u64) -> bool {
        ino == STATS_INO || ino == FSCK_INO
    }

    /// The versions a regular file keeps, oldest first.
    pub fn versions(&self, ino: u64) -> Result<Vec<VersionInfo>> {
        let inode = self.inode(ino)?;
        let data = inode.data.read();
        let Body::File(f) = &data.body else {
            return Err(Errno::ENODATA);
        };
        let zero_cut = self.config().chunker.zero_cut() as u64;
        Ok(f.history
            .versions()
            .map(|v| VersionInfo {
                version: v.number,
                time: seconds(v.time),
                size: v.size,
                chunks: v.recipe.chunk_count(zero_cut),
                new_bytes: v.new_bytes,
                cause: v.cause.name().to_string(),
            })
            .collect())
    }

    /// Statistics of the whole file system and its store, computed now.
    pub fn stats(&self) -> Stats {
        let mut s = Stats {
            files: 0,
            dirs: 0,
            symlinks: 0,
            logical_bytes: 0,
            dirty_bytes: self.dirty_bytes.load(Ordering::Relaxed),
            versions: 0,
            version_bytes: 0,
            blobs: 0,
            stored_bytes: 0,
            referenced_bytes: 0,
            dedup_ratio: 1.0,
            chunk_size_histogram: Default::default(),
            refcount_histogram: Default::default(),
            rss_bytes: 0,
            rss_per_stored_byte: 0.0,
            chunker: format!(
                "{:?} min {} avg {} max {}",
                self.config().chunker.kind,
                self.config().chunker.min,
                self.config().chunker.avg,
                self.config().chunker.max
            ),
            keep_versions: self.config().keep_versions,
            capacity_bytes: self.capacity(),
            used_bytes: self.used_bytes(),
            metadata_bytes: self.metadata_bytes(),
            versions_dropped_for_space: self.versions_dropped_for_space(),
        };
        let inodes: Vec<_> = self.inodes.iter().map(|e| e.value().clone()).collect();
        for inode in inodes {
            let data = inode.data.read();
            match &data.body {
                Body::File(f) => {
                    if data.meta.nlink > 0 {
                        s.files += 1;
                        s.logical_bytes += f.content.size();
                    }
                    s.versions += f.history.len() as u64;
                    s.version_bytes += f.history.versions().map(|v| v.size).sum::<u64>();
                }
                Body::Dir(_) => s.dirs += 1,
                Body::Symlink(_) => s.symlinks += 1,
                Body::Special => {}
            }
        }
        self.store().for_each_chunk(&mut |chunk| {
            s.blobs += 1;
            s.stored_bytes += chunk.len;
            s.referenced_bytes += chunk.len * chunk.refs;
            *s.chunk_size_histogram
                .entry(log2_bucket(chunk.len))
                .or_default() += 1;
            *s.refcount_histogram
                .entry(log2_bucket(chunk.refs))
                .or_default() += 1;
        });
        if s.stored_bytes > 0 {
            s.dedup_ratio = s.referenced_bytes as f64 / s.stored_bytes as f64;
        }
        s.rss_bytes = rss_bytes();
        if s.stored_bytes > 0 {
            s.rss_per_stored_byte = s.rss_bytes as f64 / s.stored_bytes as f64;
        }
        s
    }
}
