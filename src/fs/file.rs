//! Open files: open, read, write, flush/fsync/release, fallocate, lseek, copy_file_range.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::attr::FileKind;
use super::content::{checked_end, MAX_FILE_SIZE};
use super::control::is_virtual;
use super::error::{Errno, Result};
use super::inode::Inode;
use super::version::CommitCause;
use super::{is_writable, Fs};

/// `fallocate` modes memfs knows (the rest answer EOPNOTSUPP, as on tmpfs).
const FALLOC_FL_KEEP_SIZE: i32 = libc::FALLOC_FL_KEEP_SIZE;
const FALLOC_FL_PUNCH_HOLE: i32 = libc::FALLOC_FL_PUNCH_HOLE;

/// The largest piece `copy_file_range` moves at once.
const COPY_PIECE: u64 = 1 << 20;

impl Fs {
    /// Opens a regular file. `O_TRUNC` on a writable open empties it.
    pub fn open(&self, ino: u64, flags: i32) -> Result<u64> {
        if is_virtual(ino) {
            return self.control_open(ino, flags);
        }
        let inode = self.inode(ino)?;
        match inode.kind {
            FileKind::Regular => {}
            FileKind::Directory => return Err(Errno::EISDIR),
            _ => return Err(Errno::ENXIO),
        }
        let writable = is_writable(flags);
        if writable && flags & libc::O_TRUNC != 0 {
            let mut data = inode.data.write();
            let (meta, content) = data.file_mut()?;
            let delta = content.truncate(0)?;
            meta.touch_modified(SystemTime::now());
            self.add_dirty(delta);
        }
        let fh = self.new_handle(inode, flags);
        if writable && flags & libc::O_TRUNC != 0 {
            if let Ok(h) = self.handle(fh) {
                h.wrote.store(true, Ordering::Release);
            }
        }
        Ok(fh)
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        if let Some(bytes) = self.control_read(fh, offset, size) {
            return Ok(bytes);
        }
        let handle = self.handle(fh)?;
        let data = handle.inode.data.read();
        Ok(data.file()?.read(offset, size as usize))
    }

    pub fn write(&self, fh: u64, offset: u64, bytes: &[u8]) -> Result<u32> {
        let handle = self.handle(fh)?;
        // As Linux's generic_write_checks: EFBIG at or past the largest file size, and a
        // write that would cross it is cut short (the kernel cuts such writes before they
        // reach memfs; other callers get the same answer).
        if offset >= MAX_FILE_SIZE && !bytes.is_empty() {
            return Err(Errno::EFBIG);
        }
        let bytes = &bytes[..bytes
            .len()
            .min((MAX_FILE_SIZE - offset.min(MAX_FILE_SIZE)) as usize)];
        let written = u32::try_from(bytes.len()).map_err(|_| Errno::EINVAL)?;
        {
            let mut data = handle.inode.data.write();
            let (meta, content) = data.file_mut()?;
            let delta = content.write(offset, bytes)?;
            meta.touch_modified(SystemTime::now());
            self.add_dirty(delta);
        }
        handle.wrote.store(true, Ordering::Release);
        Ok(written)
    }

    /// `close(2)` of one file descriptor of the handle. A handle that may write commits
    /// the file's changes as a new version (close-to-open); returns its number.
    pub fn flush(&self, fh: u64) -> Result<Option<u64>> {
        if self.control_handle(fh, false) {
            return Ok(None);
        }
        let handle = self.handle(fh)?;
        if !is_writable(handle.flags) {
            return Ok(None);
        }
        Ok(self.commit(&handle.inode, CommitCause::Close))
    }

    /// `fsync`: commits the file's changes as a new version; returns its number.
    pub fn fsync(&self, fh: u64, _datasync: bool) -> Result<Option<u64>> {
        if self.control_handle(fh, false) {
            return Ok(None);
        }
        let handle = self.handle(fh)?;
        Ok(self.commit(&handle.inode, CommitCause::Fsync))
    }

    /// The last close of a handle. Changes that reached memfs after the last flush (the
    /// kernel writing back mmap'd pages) are committed here.
    pub fn release(&self, fh: u64) -> Result<Option<u64>> {
        if self.control_handle(fh, true) {
            return Ok(None);
        }
        let handle = self.drop_handle(fh)?;
        if !is_writable(handle.flags) {
            return Ok(None);
        }
        Ok(self.commit(&handle.inode, CommitCause::Close))
    }

    /// Commits a file's uncommitted changes as a new version, if there are any. Returns the
    /// new version's number.
    pub(super) fn commit(&self, inode: &Inode, cause: CommitCause) -> Option<u64> {
        let mut data = inode.data.write();
        let state = data.file_state_mut().ok()?;
        if !state.content.is_dirty() {
            return None;
        }
        let before = state.content.dirty_bytes();
        let committed = state.content.commit(&self.config().chunker, self.store());
        self.add_dirty(-(before as i64));
        let committed = committed?;
        let number = state.history.push(
            committed.recipe,
            cause,
            committed.new_bytes,
            SystemTime::now(),
            self.config().keep_versions,
        );
        Some(number)
    }

    pub fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> Result<()> {
        let handle = self.handle(fh)?;
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        // Linux refuses a hole punch without KEEP_SIZE before it looks at the range.
        if mode & FALLOC_FL_PUNCH_HOLE != 0 && mode & FALLOC_FL_KEEP_SIZE == 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let end = checked_end(offset, len)?;
        let mut data = handle.inode.data.write();
        let (meta, content) = data.file_mut()?;
        let now = SystemTime::now();
        match mode {
            0 => {
                if end > content.size() {
                    let delta = content.truncate(end)?;
                    self.add_dirty(delta);
                }
            }
            FALLOC_FL_KEEP_SIZE => {}
            m if m == FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE => {
                let delta = content.punch_hole(offset, len);
                self.add_dirty(delta);
            }
            _ => return Err(Errno::EOPNOTSUPP),
        }
        meta.touch_modified(now);
        handle.wrote.store(true, Ordering::Release);
        Ok(())
    }

    /// `lseek` with `SEEK_DATA` or `SEEK_HOLE` (the kernel answers the other whences).
    pub fn lseek(&self, fh: u64, offset: i64, whence: i32) -> Result<i64> {
        let handle = self.handle(fh)?;
        let offset = u64::try_from(offset).map_err(|_| Errno::ENXIO)?;
        // Bytes a writer wrote may still wait in the kernel's cache, where our holes would
        // hide them from `cp`/`tar`: while anyone may write, call the whole file data
        // (always a correct answer).
        let coarse =
            self.config().writes_cached_above && handle.inode.writers.load(Ordering::Acquire) > 0;
        let data = handle.inode.data.read();
        let content = data.file()?;
        let found = match whence {
            _ if offset >= content.size()
                && matches!(whence, libc::SEEK_DATA | libc::SEEK_HOLE) =>
            {
                return Err(Errno::ENXIO)
            }
            libc::SEEK_DATA if coarse => offset,
            libc::SEEK_HOLE if coarse => content.size(),
            libc::SEEK_DATA => content.seek_data(offset)?,
            libc::SEEK_HOLE => content.seek_hole(offset)?,
            _ => return Err(Errno::EINVAL),
        };
        i64::try_from(found).map_err(|_| Errno::EINVAL)
    }

    /// Copies up to `len` bytes between two open files; returns the bytes copied.
    pub fn copy_file_range(
        &self,
        fh_in: u64,
        offset_in: u64,
        fh_out: u64,
        offset_out: u64,
        len: u64,
    ) -> Result<u64> {
        checked_end(offset_out, len.min(COPY_PIECE))?;
        let mut copied = 0u64;
        while copied < len {
            let piece = (len - copied).min(COPY_PIECE) as u32;
            let bytes = self.read(fh_in, offset_in.saturating_add(copied), piece)?;
            if bytes.is_empty() {
                break;
            }
            let n = self.write(fh_out, offset_out + copied, &bytes)?;
            copied += n as u64;
            if (n as usize) < piece as usize {
                break;
            }
        }
        Ok(copied)
    }
}
