//! Listing directories: opendir, readdir, readdirplus, releasedir.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::fs::attr::{Attr, DirEntry, FileKind};
use crate::fs::error::{Errno, Result};
use crate::fs::Fs;

use super::inode::Inode;

/// "." or ".." in a listing: its cookie, its name and its inode, if still live.
type Dot<'a> = (u64, &'static [u8], Option<&'a Arc<Inode>>);

/// How many entries `readdir` collects under the directory lock before handing them out.
const READDIR_BATCH: usize = 128;

impl Fs {
    pub fn opendir(&self, ino: u64, flags: i32) -> Result<u64> {
        let inode = self.namespace.get(ino)?;
        if inode.kind != FileKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        Ok(self.handles.open(inode, flags))
    }

    pub fn releasedir(&self, fh: u64) -> Result<()> {
        self.close_handle(fh).map(|_| ())
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
        let dir = self.namespace.get(ino)?;
        if offset < 2 {
            let parent = self.namespace.get(dir.parent()).ok();
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
                        (entry, self.namespace.get_even_poisoned(e.ino).ok())
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
